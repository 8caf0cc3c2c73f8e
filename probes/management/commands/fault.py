"""Break a simulated shard on purpose: ``manage.py fault use-1 down --for 2m``.

Talks to a running ``manage.py simulate_fleet`` through its control endpoint.
"""

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from probes.simulator import FAILURE_MODES, KINDS

TIMEOUT_S = 3.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_LATENCY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$")
_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600, "ms": 0.001}


def parse_duration(text: str) -> float:
    """Seconds from ``120``, ``120s``, ``2m``, ``1h`` (or ``1.5m``)."""
    match = _DURATION.match(text)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"{text!r} is not a duration; use e.g. 120, 120s, 2m or 1h")
    return float(match[1]) * _UNITS[match[2]]


def parse_latency(text: str) -> float:
    """Milliseconds from ``1500``, ``1500ms`` or ``1.5s``."""
    match = _LATENCY.match(text)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"{text!r} is not a latency; use e.g. 1500, 1500ms or 1.5s")
    return float(match[1]) * (1000 if match[2] == "s" else 1)


def describe(fault: dict[str, Any], *, listing: bool = False) -> str:
    """A fault in plain words: "use-1 is now down (answering 500) for 120 s (all regions)".

    ``listing`` words it for ``--list``: "use-1 is down ... (all regions), 118 s left".
    """
    kind, mode = fault["kind"], fault.get("mode") or ""
    if kind == "down":
        states = {"refused": "down (dropping connections)", "http_503": "down (answering 503)"}
        state = states.get(mode, "down (answering 500)")
    elif kind == "slow":
        state = f"slow (+{fault.get('latency_ms') or 0:g} ms)"
    elif kind == "hang":
        state = "hanging (never answering)"
    elif kind == "wrong":
        state = "answering wrong (" + ("not JSON)" if mode == "bad_json" else "no key in the JSON)")
    elif kind == "flapping":
        period = fault.get("period_s")
        every = f"every other {period:g} s" if period else "every other request"
        how = "dropping connections" if mode == "refused" else mode
        state = f"flapping (failing {every}, {how})"
    else:
        state = kind
    where = f"(only from region {fault['region']})" if fault.get("region") else "(all regions)"
    if listing:
        left = fault.get("expires_in_s")
        until = f", {left:.0f} s left" if left is not None else ", until cleared"
        return f"{fault['shard']} is {state} {where}{until}"
    seconds = fault.get("for_seconds")
    how_long = f"for {seconds:g} s" if seconds else "until cleared"
    return f"{fault['shard']} is now {state} {how_long} {where}"


class Command(BaseCommand):
    help = (
        "Inject a fault into a running fleet simulator (manage.py simulate_fleet), "
        "clear it, or list the faults: `fault use-1 down --for 2m`, `fault use-1 clear`, "
        "`fault --list`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("shard", nargs="?", help="The shard's slug.")
        parser.add_argument("kind", nargs="?", help=f"{' | '.join(KINDS)} | clear")
        parser.add_argument("--list", action="store_true", help="List the faults in force.")
        parser.add_argument("--clear-all", action="store_true", help="Clear every fault.")
        parser.add_argument(
            "--for", dest="for_", metavar="DURATION", help="Clear by itself after 120s, 2m, 1h."
        )
        parser.add_argument("--region", help="Only probes from this region see the fault.")
        parser.add_argument("--latency", help="For slow: extra delay, 1500ms or 1.5s.")
        parser.add_argument(
            "--mode",
            help=f"For down/flapping: {' | '.join(FAILURE_MODES)}; for wrong: bad_json | "
            "wrong_fields.",
        )
        parser.add_argument(
            "--period",
            metavar="DURATION",
            help="For flapping: alternate every 30s (default: every other request).",
        )
        parser.add_argument(
            "--url",
            default=getattr(settings, "PROBE_SIMULATOR_URL", "http://127.0.0.1:8787"),
            help="The simulator's base URL (setting PROBE_SIMULATOR_URL).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        base = str(options["url"]).rstrip("/")
        if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
            raise CommandError(f"--url must be an http:// URL, not {base!r}")
        shard, kind = options["shard"], options["kind"]
        if options["list"] or options["clear_all"]:
            if shard or kind:
                raise CommandError("--list and --clear-all take no shard or kind")
            if options["list"]:
                self._list(base)
            else:
                cleared = self._call(base, "DELETE", "/_control/faults")["cleared"]
                self.stdout.write(f"Cleared {_faults(cleared)}; every shard answers normally.")
            return
        if not shard or not kind:
            raise CommandError("usage: fault <shard> <kind|clear> [options], or fault --list")
        if kind == "clear":
            query = f"?{urllib.parse.urlencode({'region': options['region']})}"
            path = f"/_control/faults/{urllib.parse.quote(shard, safe='')}"
            result = self._call(base, "DELETE", path + (query if options["region"] else ""))
            where = f" in region {options['region']}" if options["region"] else ""
            if result["cleared"]:
                self.stdout.write(f"{shard}: cleared {_faults(result['cleared'])}{where}.")
            else:
                self.stdout.write(f"{shard} had no faults{where} to clear.")
            return
        if kind not in KINDS:
            raise CommandError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)} or clear")
        try:
            payload = {
                "shard": shard,
                "kind": kind,
                "region": options["region"] or None,
                "mode": options["mode"] or None,
                "for_seconds": parse_duration(options["for_"]) if options["for_"] else None,
                "latency_ms": parse_latency(options["latency"]) if options["latency"] else None,
                "period_s": parse_duration(options["period"]) if options["period"] else None,
            }
        except ValueError as error:
            raise CommandError(str(error)) from error
        fault = self._call(base, "POST", "/_control/faults", payload)
        self.stdout.write(describe(fault))

    def _list(self, base: str) -> None:
        faults = self._call(base, "GET", "/_control/faults")["faults"]
        if not faults:
            self.stdout.write("No faults: every shard answers normally.")
            return
        for fault in faults:
            self.stdout.write(describe(fault, listing=True))

    def _call(
        self, base: str, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in handle()
            base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
                return json.load(response)
        except urllib.error.HTTPError as error:
            try:
                message = json.load(error).get("error") or error.reason
            except (ValueError, AttributeError):
                message = error.reason
            raise CommandError(f"the simulator refused: {message}") from error
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CommandError(
                f"the fleet simulator is not answering at {base} ({reason}); start it with "
                "`manage.py simulate_fleet` or pass --url"
            ) from error


def _faults(count: int) -> str:
    return f"{count} fault" + ("" if count == 1 else "s")
