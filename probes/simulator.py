"""A fleet of fake coordination shards on loopback, with faults injectable at run time.

One aiohttp server answers ``GET /s/<shard>/key?v=NN`` for any shard slug, the way a
Tailscale coordination server answers its key endpoint, so probes, detection and the
demo run without the internet. Faults are set per shard, optionally per probe region
(the probe names its region in the ``X-Probe-Region`` header, so a region-scoped fault
models a network partition), and can clear themselves after a while:

- ``down``: answer 500 (mode ``http_500``) or 503 (``http_503``), or drop the
  connection without answering (``refused``);
- ``slow``: answer after an extra ``latency_ms``;
- ``hang``: never answer until the client gives up (capped, and released on shutdown);
- ``flapping``: fail like ``down`` every other request, or every other ``period_s``;
- ``wrong``: answer 200 with a body that is not JSON (``bad_json``) or JSON without a
  machine key (``wrong_fields``).

The control endpoints (``/_control/...``) are unauthenticated, which is why the
server only binds a loopback address unless told otherwise.

``Fleet`` holds the faults and decides each answer (no I/O, injectable clock and
random source); ``make_app`` wraps it in HTTP; ``serve``/``run`` run it, and
``BackgroundSimulator`` runs it in a thread for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import math
import random
import re
import signal
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from aiohttp import web

logger = logging.getLogger(__name__)

REGION_HEADER = "X-Probe-Region"
KINDS = ("down", "slow", "hang", "flapping", "wrong")
FAILURE_MODES = ("http_500", "http_503", "refused")
MODES: dict[str, tuple[str, ...]] = {
    "down": FAILURE_MODES,
    "flapping": FAILURE_MODES,
    "wrong": ("bad_json", "wrong_fields"),
    "slow": (),
    "hang": (),
}
DEFAULT_SLOW_MS = 1500.0
MAX_LATENCY_MS = 600_000.0
HANG_CAP_S = 300.0
# A thousand probes connect at once; the default backlog of 128 would drop SYNs and
# add the kernel's one-second retransmit to a few of them.
BACKLOG = 4096
KEEPALIVE_S = 75.0
SHUTDOWN_TIMEOUT_S = 5.0
NO_REGION = "(none)"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_FAULT_FIELDS = frozenset(
    {"shard", "kind", "region", "for_seconds", "latency_ms", "mode", "period_s"}
)


class FaultError(ValueError):
    """A fault request that makes no sense; the message says why, for a 400."""


def shard_names(count: int) -> list[str]:
    """The names ``--shards N`` announces: shard-0001, shard-0002, ..."""
    return [f"shard-{i:04d}" for i in range(1, count + 1)]


@lru_cache(maxsize=65536)
def key_body(shard: str) -> bytes:
    """The key endpoint's answer for a shard: deterministic, like a real server's."""
    legacy = hashlib.sha256(f"{shard}/legacy".encode()).hexdigest()
    current = hashlib.sha256(f"{shard}/machine".encode()).hexdigest()
    return json.dumps(
        {"legacyPublicKey": f"mkey:{legacy}", "publicKey": f"mkey:{current}"}
    ).encode()


@dataclass(frozen=True)
class Fault:
    shard: str
    kind: str
    region: str | None
    mode: str
    latency_ms: float | None
    period_s: float | None
    for_seconds: float | None
    created_at: float

    @property
    def expires_at(self) -> float | None:
        return None if self.for_seconds is None else self.created_at + self.for_seconds

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.shard, self.region)

    def as_json(self, now: float) -> dict[str, Any]:
        expires_in = None if self.expires_at is None else max(0.0, self.expires_at - now)
        return {
            "shard": self.shard,
            "kind": self.kind,
            "region": self.region,
            "mode": self.mode,
            "latency_ms": self.latency_ms,
            "period_s": self.period_s,
            "for_seconds": self.for_seconds,
            "expires_in_s": None if expires_in is None else round(expires_in, 3),
        }


Action = Literal["ok", "status", "drop", "hang", "bad_json", "wrong_fields"]


@dataclass(frozen=True)
class Answer:
    """What to do with one request: wait ``delay_s``, then act."""

    action: Action
    delay_s: float = 0.0
    status: int = 200


@dataclass
class Fleet:
    """The faults currently set, and the answer each request gets.

    Thread-safe (a lock around every change), so a test may set faults directly
    while the server answers from its own thread.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    shards: int = 0
    hang_cap_s: float = HANG_CAP_S
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    _faults: dict[tuple[str, str | None], Fault] = field(
        default_factory=dict, init=False, repr=False
    )
    # Requests per flapping fault and asking region, so each region sees it alternate.
    _flap_counts: dict[tuple[str, str | None], Counter[str]] = field(
        default_factory=dict, init=False, repr=False
    )
    _requests: Counter[tuple[str, str]] = field(default_factory=Counter, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("latency_ms", "jitter_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= MAX_LATENCY_MS):
                raise FaultError(f"{name} must be between 0 and {MAX_LATENCY_MS:g}")

    # Faults --------------------------------------------------------------------------

    def set_fault(
        self,
        shard: str,
        kind: str,
        *,
        region: str | None = None,
        for_seconds: float | None = None,
        latency_ms: float | None = None,
        mode: str | None = None,
        period_s: float | None = None,
    ) -> Fault:
        """Set (or replace) the fault of ``shard`` as seen from ``region`` (None: all)."""
        _check_name("shard", shard)
        if region is not None:
            _check_name("region", region)
        if kind not in KINDS:
            raise FaultError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        modes = MODES[kind]
        if mode is None:
            mode = modes[0] if modes else ""
        elif mode not in modes:
            allowed = f"one of {', '.join(modes)}" if modes else "no mode"
            raise FaultError(f"mode {mode!r} does not apply to {kind}; expected {allowed}")
        if for_seconds is not None:
            _check_number("for_seconds", for_seconds, upper=365 * 86400.0)
        if latency_ms is not None:
            if kind != "slow":
                raise FaultError("latency_ms only applies to kind slow")
            _check_number("latency_ms", latency_ms, upper=MAX_LATENCY_MS)
        elif kind == "slow":
            latency_ms = DEFAULT_SLOW_MS
        if period_s is not None:
            if kind != "flapping":
                raise FaultError("period_s only applies to kind flapping")
            _check_number("period_s", period_s, upper=86400.0)
        with self._lock:
            now = self.clock()
            fault = Fault(
                shard=shard,
                kind=kind,
                region=region,
                mode=mode,
                latency_ms=None if latency_ms is None else float(latency_ms),
                period_s=None if period_s is None else float(period_s),
                for_seconds=None if for_seconds is None else float(for_seconds),
                created_at=now,
            )
            self._faults[fault.key] = fault
            self._flap_counts.pop(fault.key, None)
        logger.info(
            "fault set: %s %s%s in %s, %s",
            shard,
            kind,
            f" ({mode})" if mode else f" (+{fault.latency_ms:g} ms)" if fault.latency_ms else "",
            f"region {region}" if region else "all regions",
            f"for {for_seconds:g} s" if for_seconds else "until cleared",
        )
        return fault

    def set_fault_from_json(self, data: object) -> Fault:
        """``set_fault`` from a control request's JSON, rejecting anything odd."""
        if not isinstance(data, dict):
            raise FaultError("expected a JSON object")
        unknown = sorted(set(data) - _FAULT_FIELDS)
        if unknown:
            raise FaultError(f"unknown field(s): {', '.join(unknown)}")
        for name in ("shard", "kind"):
            if not isinstance(data.get(name), str):
                raise FaultError(f"{name} is required and must be a string")
        for name in ("region", "mode"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise FaultError(f"{name} must be a string or null")
        numbers: dict[str, float | None] = {}
        for name in ("for_seconds", "latency_ms", "period_s"):
            value = data.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise FaultError(f"{name} must be a number or null")
            numbers[name] = value
        return self.set_fault(
            data["shard"],
            data["kind"],
            region=data.get("region") or None,
            mode=data.get("mode") or None,
            **numbers,
        )

    def clear(self, shard: str | None = None, *, region: str | None = None) -> int:
        """Clear faults: all of them, all of one shard's, or one shard's in one region.

        Returns how many were cleared.
        """
        with self._lock:
            keys = [
                key
                for key in self._faults
                if (shard is None or key[0] == shard) and (region is None or key[1] == region)
            ]
            for key in keys:
                del self._faults[key]
                self._flap_counts.pop(key, None)
        if keys:
            logger.info("faults cleared: %s", keys)
        return len(keys)

    def faults(self) -> list[Fault]:
        """The faults in force, by shard then region (all-region faults first)."""
        with self._lock:
            self._expire(self.clock())
            return sorted(self._faults.values(), key=lambda f: (f.shard, f.region or ""))

    def fault_for(self, shard: str, region: str | None) -> Fault | None:
        """The fault a probe of ``shard`` from ``region`` meets: a region's own first."""
        with self._lock:
            return self._fault_for(shard, region, self.clock())

    def _fault_for(self, shard: str, region: str | None, now: float) -> Fault | None:
        for key in ((shard, region), (shard, None)) if region else ((shard, None),):
            fault = self._faults.get(key)
            if fault is not None:
                if fault.expires_at is not None and fault.expires_at <= now:
                    del self._faults[key]
                    self._flap_counts.pop(key, None)
                    logger.info("fault expired: %s/%s %s", shard, key[1] or "*", fault.kind)
                    continue
                return fault
        return None

    def _expire(self, now: float) -> None:
        for key, fault in list(self._faults.items()):
            if fault.expires_at is not None and fault.expires_at <= now:
                del self._faults[key]
                self._flap_counts.pop(key, None)

    # Answers -------------------------------------------------------------------------

    def answer(self, shard: str, region: str | None) -> Answer:
        """Count one request and decide its answer."""
        with self._lock:
            now = self.clock()
            self._requests[(shard, region or NO_REGION)] += 1
            fault = self._fault_for(shard, region, now)
            delay = self.latency_ms
            if self.jitter_ms:
                delay += self.rng.uniform(0, self.jitter_ms)
            delay_s = delay / 1000
            if fault is None:
                return Answer("ok", delay_s)
            if fault.kind == "hang":
                return Answer("hang", self.hang_cap_s)
            if fault.kind == "slow":
                return Answer("ok", delay_s + (fault.latency_ms or 0) / 1000)
            if fault.kind == "wrong":
                return Answer("bad_json" if fault.mode == "bad_json" else "wrong_fields", delay_s)
            if fault.kind == "flapping":
                if fault.period_s:
                    failing = int((now - fault.created_at) // fault.period_s) % 2 == 0
                else:
                    counts = self._flap_counts.setdefault(fault.key, Counter())
                    counts[region or NO_REGION] += 1
                    failing = counts[region or NO_REGION] % 2 == 1
                if not failing:
                    return Answer("ok", delay_s)
            if fault.mode == "refused":
                return Answer("drop", delay_s)
            return Answer("status", delay_s, status=503 if fault.mode == "http_503" else 500)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            shards: dict[str, dict[str, Any]] = {}
            for (shard, region), count in sorted(self._requests.items()):
                entry = shards.setdefault(shard, {"requests": 0, "regions": {}})
                entry["requests"] += count
                entry["regions"][region] = count
            return {"requests": sum(self._requests.values()), "shards": shards}

    def reset_stats(self) -> None:
        with self._lock:
            self._requests.clear()


def _check_name(what: str, value: str) -> None:
    if not _NAME.fullmatch(value):
        raise FaultError(
            f"{what} {value!r} is not a valid name (letters, digits, '-', '_', '.'; "
            "at most 100 characters)"
        )


def _check_number(what: str, value: float, *, upper: float) -> None:
    if not (math.isfinite(value) and 0 < value <= upper):
        raise FaultError(f"{what} must be a number above 0 and at most {upper:g}")


# HTTP ----------------------------------------------------------------------------------

FLEET: web.AppKey[Fleet] = web.AppKey("fleet", Fleet)
STOPPING: web.AppKey[asyncio.Event] = web.AppKey("stopping", asyncio.Event)
HANGING: web.AppKey[Counter[str]] = web.AppKey("hanging", Counter)


def make_app(fleet: Fleet) -> web.Application:
    """The simulator as an aiohttp application: shards under /s/, control under /_control/."""
    app = web.Application()
    app[FLEET] = fleet
    app[HANGING] = Counter()
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    app.router.add_get("/s/{shard}/key", _key)
    app.router.add_get("/_control/health", _health)
    app.router.add_get("/_control/faults", _list_faults)
    app.router.add_post("/_control/faults", _add_fault)
    app.router.add_delete("/_control/faults", _clear_all)
    app.router.add_delete("/_control/faults/{shard}", _clear_shard)
    app.router.add_get("/_control/stats", _stats)
    app.router.add_delete("/_control/stats", _reset_stats)
    return app


async def _on_startup(app: web.Application) -> None:
    app[STOPPING] = asyncio.Event()


async def _on_shutdown(app: web.Application) -> None:
    # Wakes every hanging or slow answer so shutdown does not wait for them.
    app[STOPPING].set()


async def _pause(request: web.Request, seconds: float) -> bool:
    """Sleep, or return True at once when the server is shutting down."""
    stopping = request.app[STOPPING]
    try:
        async with asyncio.timeout(seconds):
            await stopping.wait()
    except TimeoutError:
        return False
    return True


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer (RST, as a crashed server's kernel would)."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # Never written: the transport is gone. Returning keeps aiohttp's handler quiet.
    return web.Response(status=500)


async def _key(request: web.Request) -> web.StreamResponse:
    fleet = request.app[FLEET]
    shard = request.match_info["shard"]
    answer = fleet.answer(shard, request.headers.get(REGION_HEADER) or None)
    if answer.action == "hang":
        hanging = request.app[HANGING]
        hanging[shard] += 1
        try:
            await _pause(request, answer.delay_s)
        finally:
            hanging[shard] -= 1
            if hanging[shard] <= 0:
                del hanging[shard]
        return _drop(request)
    if answer.delay_s > 0 and await _pause(request, answer.delay_s):
        return _drop(request)
    if answer.action == "drop":
        return _drop(request)
    if answer.action == "status":
        return web.json_response({"error": "simulated failure"}, status=answer.status)
    if answer.action == "bad_json":
        return web.Response(body=b'{"publicKey": "mkey:', content_type="application/json")
    if answer.action == "wrong_fields":
        return web.json_response({"error": "no such key", "key": None})
    return web.Response(body=key_body(shard), content_type="application/json")


async def _health(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    return web.json_response(
        {
            "status": "ok",
            "shards": fleet.shards,
            "latency_ms": fleet.latency_ms,
            "jitter_ms": fleet.jitter_ms,
            "faults": len(fleet.faults()),
        }
    )


async def _list_faults(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    now = fleet.clock()
    return web.json_response({"faults": [fault.as_json(now) for fault in fleet.faults()]})


async def _add_fault(request: web.Request) -> web.Response:
    fleet = request.app[FLEET]
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _bad_request("the body must be a JSON object")
    try:
        fault = fleet.set_fault_from_json(data)
    except FaultError as error:
        return _bad_request(str(error))
    return web.json_response(fault.as_json(fleet.clock()), status=201)


async def _clear_all(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[FLEET].clear()})


async def _clear_shard(request: web.Request) -> web.Response:
    region = request.query.get("region") or None
    cleared = request.app[FLEET].clear(request.match_info["shard"], region=region)
    return web.json_response({"cleared": cleared})


async def _stats(request: web.Request) -> web.Response:
    stats = request.app[FLEET].stats()
    stats["hanging"] = sum(request.app[HANGING].values())
    return web.json_response(stats)


async def _reset_stats(request: web.Request) -> web.Response:
    request.app[FLEET].reset_stats()
    return web.json_response({"status": "ok"})


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


# Running -------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, *, allow_remote: bool = False) -> None:
    """Refuse to expose the unauthenticated control endpoints beyond this machine."""
    if not allow_remote and not is_loopback(host):
        raise ValueError(
            f"refusing to listen on {host}: the simulator's control endpoints have no "
            "authentication, so it binds loopback only (pass allow_remote to override)"
        )


async def serve(
    fleet: Fleet,
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    stop: asyncio.Event | None = None,
    ready: Callable[[str], None] | None = None,
    allow_remote: bool = False,
) -> None:
    """Serve until ``stop`` is set (or this task is cancelled), then shut down cleanly.

    ``ready`` is called with the base URL once listening (port 0 picks a free port).
    """
    check_host(host, allow_remote=allow_remote)
    stop = stop or asyncio.Event()
    runner = web.AppRunner(
        make_app(fleet),
        access_log=None,
        # A client that gives up cancels its handler, so hanging answers don't pile up.
        handler_cancellation=True,
        keepalive_timeout=KEEPALIVE_S,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=BACKLOG, reuse_address=True)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        if ready is not None:
            url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
            ready(f"http://{url_host}:{bound_port}")
        await stop.wait()
    finally:
        await runner.cleanup()


def run(
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    shards: int = 0,
    latency_ms: float = 0.0,
    jitter_ms: float = 0.0,
    allow_remote: bool = False,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run the simulator in the foreground until SIGINT or SIGTERM."""
    check_host(host, allow_remote=allow_remote)
    fleet = Fleet(latency_ms=latency_ms, jitter_ms=jitter_ms, shards=shards)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Not possible outside the main thread; Ctrl-C still cancels asyncio.run there.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        await serve(fleet, host, port, stop=stop, ready=ready, allow_remote=allow_remote)

    asyncio.run(main())


class BackgroundSimulator:
    """The simulator on its own event loop in a daemon thread (tests, benchmarks).

    >>> with BackgroundSimulator() as sim:
    ...     url = f"{sim.url}/s/use-1/key?v=88"
    """

    def __init__(self, fleet: Fleet | None = None, host: str = "127.0.0.1", port: int = 0):
        self.fleet = fleet or Fleet()
        self.host = host
        self.port = port
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> str:
        started = threading.Event()

        def ready(url: str) -> None:
            self.url = url
            started.set()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            try:
                loop.run_until_complete(
                    serve(self.fleet, self.host, self.port, stop=self._stop, ready=ready)
                )
            except BaseException as error:  # reported to the starting thread
                self._error = error
            finally:
                started.set()
                loop.close()

        self._thread = threading.Thread(target=main, name="fleet-simulator", daemon=True)
        self._thread.start()
        if not started.wait(timeout) or not self.url:
            self.stop()
            raise RuntimeError(f"the simulator did not start: {self._error!r}")
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError("the simulator did not stop in time")
        self._thread = None

    def __enter__(self) -> BackgroundSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def shard_url(self, shard: str) -> str:
        return f"{self.url}/s/{shard}/key?v=88"
