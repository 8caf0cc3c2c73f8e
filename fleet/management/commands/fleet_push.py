"""``manage.py fleet_push events.ndjson --api https://status.example.com``: send a
file (or stdin) of fleet events, one JSON object a line, to ``POST
/api/v1/fleet/events`` in batches.

Safe to run again: the feed stores each event id once, so a retried or repeated push
only counts duplicates. A batch the server cannot take right now (429, 5xx, a network
error) is retried with exponential backoff, honouring ``Retry-After``; a batch it
refuses (400, 409) stops the push with the reasons, by line number. A 413 splits the
batch in two. The token comes from ``--token`` or the ``FLEET_TOKEN`` environment
variable (better: it stays out of the shell history).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

MAX_EVENTS = 10_000  # the API's limit per request
MAX_BYTES = 9 * 1024 * 1024  # under the API's 10 MB, with room for the envelope
PATH = "/api/v1/fleet/events"


@dataclass
class Batch:
    lines: list[int] = field(default_factory=list)  # the input line of each event
    events: list[bytes] = field(default_factory=list)  # each event as sent
    size: int = 0

    def body(self) -> bytes:
        return b'{"events": [' + b", ".join(self.events) + b"]}"

    def halves(self) -> tuple[Batch, Batch]:
        middle = len(self.events) // 2
        first, second = Batch(), Batch()
        for batch, part in ((first, slice(None, middle)), (second, slice(middle, None))):
            batch.lines, batch.events = self.lines[part], self.events[part]
            batch.size = sum(len(e) + 2 for e in batch.events)
        return first, second


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would arrive as a GET without its events: say where it went."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class Refused(CommandError):
    """The server said no to a batch; retrying the same batch cannot help."""


def batches(source: IO[str], size: int) -> Iterator[Batch]:
    """The events of ``source`` in batches of at most ``size`` events and MAX_BYTES.
    Each line is checked to be a JSON object before anything of its batch is sent."""
    batch = Batch()
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as error:
            raise CommandError(f"line {number}: not JSON ({error})") from None
        if not isinstance(event, dict):
            raise CommandError(f"line {number}: an event is a JSON object, got {line.strip()!r}")
        encoded = json.dumps(event, separators=(",", ":"), allow_nan=False).encode()
        if len(encoded) + 64 > MAX_BYTES:
            raise CommandError(f"line {number}: one event of {len(encoded):,} bytes is too big")
        if batch.events and (len(batch.events) >= size or batch.size + len(encoded) > MAX_BYTES):
            yield batch
            batch = Batch()
        batch.lines.append(number)
        batch.events.append(encoded)
        batch.size += len(encoded) + 2
    if batch.events:
        yield batch


class Command(BaseCommand):
    help = "Send fleet events (NDJSON, one event a line) to the fleet feed API in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="an NDJSON file of events, or - for stdin")
        parser.add_argument(
            "--api", required=True, help="the status page, e.g. https://status.example.com"
        )
        parser.add_argument(
            "--token",
            default=os.environ.get("FLEET_TOKEN", ""),
            help="a token with the fleet scope (default: $FLEET_TOKEN)",
        )
        parser.add_argument(
            "--batch", type=int, default=2_000, help="events per request (at most 10,000)"
        )
        parser.add_argument(
            "--retries", type=int, default=8, help="tries per batch before giving up"
        )
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["token"]:
            raise CommandError(
                "No token: pass --token or set FLEET_TOKEN (a token with scope fleet)."
            )
        if not 1 <= options["batch"] <= MAX_EVENTS:
            raise CommandError(f"--batch must be between 1 and {MAX_EVENTS:,}.")
        if not options["api"].startswith(("http://", "https://")):
            raise CommandError("--api must be an http:// or https:// address.")
        self.url = options["api"].rstrip("/") + PATH
        self.token = options["token"]
        self.retries = max(1, options["retries"])
        self.timeout = options["timeout"]
        totals = {"sent": 0, "accepted": 0, "duplicates": 0}
        progress = tqdm(unit=" events", disable=options["no_progress"], file=sys.stderr)
        try:
            if options["source"] == "-":
                self.push(sys.stdin, options["batch"], progress, totals)
            else:
                with open(options["source"], encoding="utf-8") as source:
                    self.push(source, options["batch"], progress, totals)
        except OSError as error:
            raise CommandError(f"cannot read {options['source']}: {error}") from None
        finally:
            progress.close()
        self.stdout.write(
            f"sent {totals['sent']:,} events: {totals['accepted']:,} new, "
            f"{totals['duplicates']:,} duplicates"
        )

    def push(self, source: IO[str], size: int, progress: Any, totals: dict[str, int]) -> None:
        try:
            for batch in batches(source, size):
                for counts in self.send(batch):
                    totals["accepted"] += counts["accepted"]
                    totals["duplicates"] += counts["duplicates"]
                totals["sent"] += len(batch.events)
                progress.update(len(batch.events))
        except CommandError as error:
            raise CommandError(
                f"{error}\n{totals['sent']:,} events before it were sent and stored; fix the "
                "cause and run again (events already stored count as duplicates)."
            ) from None

    def send(self, batch: Batch) -> Iterator[dict[str, int]]:
        """POST one batch (split in two on a 413); yields the counts of each request."""
        delay = 1.0
        for attempt in range(1, self.retries + 1):
            # The scheme is http(s), checked in handle().
            request = urllib.request.Request(  # noqa: S310
                self.url,
                data=batch.body(),
                method="POST",
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
            )
            try:
                with _OPENER.open(request, timeout=self.timeout) as response:
                    yield json.loads(response.read())
                    return
            except urllib.error.HTTPError as error:
                body = error.read()
                if error.code == 413 and len(batch.events) > 1:
                    for half in batch.halves():
                        yield from self.send(half)
                    return
                if error.code in (429, 502, 503, 504) or error.code >= 500:
                    wait = _retry_after(error.headers.get("Retry-After"), delay)
                    reason = f"HTTP {error.code}"
                elif 300 <= error.code < 400:
                    moved = error.headers.get("Location", "?")
                    raise Refused(
                        f"HTTP {error.code}: the feed moved to {moved}; use that address as --api"
                    ) from None
                else:
                    raise Refused(_refusal(error.code, body, batch)) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                wait, reason = delay, f"{getattr(error, 'reason', error)}"
            if attempt == self.retries:
                raise CommandError(f"gave up after {attempt} tries: {reason}")
            self.stderr.write(f"{reason}; retrying in {wait:.0f} s ({attempt}/{self.retries})")
            time.sleep(wait)
            delay = min(delay * 2, 60.0)


def _retry_after(header: str | None, default: float) -> float:
    try:
        return min(max(float(header or default), 0.0), 300.0)
    except ValueError:
        return default


def _refusal(status: int, body: bytes, batch: Batch) -> str:
    """What the server refused, with input line numbers where it says which event."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if status == 400 and isinstance(data, dict) and isinstance(data.get("events"), list):
        problems = [
            f"line {line}: {json.dumps(errors, ensure_ascii=False)}"
            for line, errors in zip(batch.lines, data["events"], strict=False)
            if errors
        ]
        return "the feed refused the batch (nothing of it was stored):\n" + "\n".join(problems)
    if status == 409 and isinstance(data, dict):
        ids = ", ".join(str(i) for i in data.get("conflicts", []))
        return (
            "the feed refused the batch (nothing of it was stored): these ids were already "
            f"stored with other content: {ids}"
        )
    if status in (401, 403):
        return f"HTTP {status}: the token is not accepted for the fleet feed (it needs scope fleet)"
    return f"HTTP {status}: {body[:500].decode(errors='replace')}"
