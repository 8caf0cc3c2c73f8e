"""Probe shards' control planes over HTTP: one round, all shards at once. I/O only.

A probe asks a shard's key endpoint (``GET /key?v=NN``, as a Tailscale client does
first) and expects 200 with a JSON object whose ``publicKey`` is a machine key.
Every probe has a hard deadline and **never raises**: a failure is a sample with an
error kind (``probes.models.ProbeError``), never retried. Storing the results is the
caller's business (``services``); nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import errno
import json
import math
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import perf_counter

import aiohttp

from .connection_timing import Scratch, TimingConnector, timed
from .startup_gc import freeze_startup_objects

REGION_HEADER = "X-Probe-Region"
USER_AGENT = "coordination-status-probe/1.0"
MAX_BODY_BYTES = 64 * 1024
MAX_DETAIL = 200
# The outer deadline sits a little past aiohttp's own, so it only fires if something
# outside aiohttp's timeout (a stuck resolver, a slow callback) holds a probe up.
GUARD_S = 0.1
_ERRNO = re.compile(r"\[Errno (\d+)\]")

OK = ""
TIMEOUT = "timeout"
REFUSED = "refused"
HTTP_STATUS = "http_status"
BAD_BODY = "bad_body"
NETWORK = "network"


@dataclass(frozen=True)
class ProbeTarget:
    shard: str  # the shard's slug
    url: str  # its probe URL


@dataclass(frozen=True)
class ProbeResult:
    shard: str
    started_at: datetime  # aware UTC, when the request began
    ok: bool
    # From the request (or the new connection it needed) until the answer was read;
    # None if none came. Waiting for a free connection slot is not the shard's time.
    latency_ms: float | None
    connect_ms: float | None  # None when a kept-alive connection was reused
    error: str  # "" when ok, else one of ProbeError's values
    status_code: int | None
    detail: str  # short and human-readable, at most 200 characters


def _never_resend_dropped_requests(session: aiohttp.ClientSession) -> None:
    """aiohttp re-sends a GET once when the server drops the connection (RFC 9112's
    retry of idempotent requests). A probe must see that drop: a shard that resets
    every other connection would otherwise look healthy. No public switch exists, so
    this is the one place that sets aiohttp's private flag; pinned by
    tests/probes/test_checks.py (test_a_probe_session_never_resends_a_dropped_get)."""
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False


def probe_session(*, concurrency: int = 1000, keepalive_s: float = 15.0) -> aiohttp.ClientSession:
    """A session for probing: keep-alive, ``concurrency`` connections, connect timing.

    Must be created inside the event loop that uses it. Pass it to several
    ``probe_all`` calls to reuse connections between rounds; ``keepalive_s`` must then
    exceed the time between rounds (aiohttp's default, 15 s, does not).
    """
    connector = TimingConnector(
        limit=concurrency,
        limit_per_host=0,
        ttl_dns_cache=300,
        keepalive_timeout=keepalive_s,
    )
    session = aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": USER_AGENT},
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    _never_resend_dropped_requests(session)
    return session


class _RoundClock:
    """Wall-clock start times for one round, from one reading of the wall clock plus
    the monotonic clock, so they are ordered and a shard probed twice gets two
    distinct times (started_at is part of a sample's unique key)."""

    def __init__(self) -> None:
        self._wall = datetime.now(UTC)
        self._perf = perf_counter()
        self._last: dict[str, datetime] = {}

    def now(self, shard: str) -> datetime:
        at = self._wall + timedelta(seconds=perf_counter() - self._perf)
        last = self._last.get(shard)
        if last is not None and at <= last:
            at = last + timedelta(microseconds=1)
        self._last[shard] = at
        return at


async def probe_all(
    targets: Sequence[ProbeTarget],
    *,
    region: str,
    timeout_s: float,
    session: aiohttp.ClientSession | None = None,
    concurrency: int = 1000,
) -> list[ProbeResult]:
    """Probe every target at once (at most ``concurrency`` in flight); results in
    target order. Each probe ends within ``timeout_s`` (plus a hair) however the
    shard misbehaves; a failed probe is a result, never an exception.

    Without ``session``, one is made for the round (see ``probe_session``) and
    closed after. A session made elsewhere should allow ``concurrency`` connections
    (waiting for one counts against the timeout) and reports ``connect_ms`` as None
    unless it is a ``probe_session``.

    Raises only for nonsense arguments (a timeout or concurrency below 1 probe).
    """
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError("timeout_s must be a positive number of seconds")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if not targets:
        return []
    own_session = session is None
    active = session if session is not None else probe_session(concurrency=concurrency)
    # Below the limit a gate would only cost an acquire and a release per probe.
    gate = asyncio.Semaphore(concurrency) if len(targets) > concurrency else None
    clock = _RoundClock()
    headers = {REGION_HEADER: region}
    timeout = aiohttp.ClientTimeout(total=timeout_s, ceil_threshold=math.inf)
    try:
        return list(
            await asyncio.gather(
                *(
                    _probe(active, target, headers=headers, timeout=timeout, gate=gate, clock=clock)
                    for target in targets
                )
            )
        )
    finally:
        if own_session:
            await active.close()


async def probe_one(
    session: aiohttp.ClientSession, target: ProbeTarget, *, region: str, timeout_s: float
) -> ProbeResult:
    """One probe on its own (a probe agent runs one loop per shard, so a slow shard
    holds back nobody else): the same checks, deadline and classification as
    ``probe_all``. Never raises."""
    if not (math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError("timeout_s must be a positive number of seconds")
    timeout = aiohttp.ClientTimeout(total=timeout_s, ceil_threshold=math.inf)
    return await _probe_now(
        session, target, headers={REGION_HEADER: region}, timeout=timeout, clock=_RoundClock()
    )


def probe_round(
    targets: Sequence[ProbeTarget], *, region: str, timeout_s: float, concurrency: int = 1000
) -> list[ProbeResult]:
    """``probe_all`` for synchronous callers, on a new event loop and session (fresh
    connections). A worker probing round after round uses ``Prober`` instead."""
    return asyncio.run(
        probe_all(targets, region=region, timeout_s=timeout_s, concurrency=concurrency)
    )


class Prober:
    """One event loop and one ``probe_session`` for many rounds, so a worker reuses
    its connections instead of opening one per shard every round (1,000 fresh
    connections cost the worker and every shard CPU, and land in the latency).

    For synchronous callers; not thread-safe: one per thread (see ``thread_prober``).
    """

    def __init__(self, *, keepalive_s: float, concurrency: int = 1000) -> None:
        self.keepalive_s = keepalive_s
        self.concurrency = concurrency
        self._loop = asyncio.new_event_loop()
        self._session = self._loop.run_until_complete(self._open())

    async def _open(self) -> aiohttp.ClientSession:
        return probe_session(concurrency=self.concurrency, keepalive_s=self.keepalive_s)

    async def _round(
        self, targets: Sequence[ProbeTarget], region: str, timeout_s: float
    ) -> list[ProbeResult]:
        # The loop sat idle since the last round: let it read the closes and resets
        # shards sent meanwhile first, so no probe is handed a connection that is gone.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return await probe_all(
            targets,
            region=region,
            timeout_s=timeout_s,
            session=self._session,
            concurrency=self.concurrency,
        )

    @property
    def closed(self) -> bool:
        return self._loop.is_closed()

    def probe(
        self, targets: Sequence[ProbeTarget], *, region: str, timeout_s: float
    ) -> list[ProbeResult]:
        """``probe_all`` on the prober's session. If anything escapes (a task's time
        limit), the prober closes itself: it is never reused in an unknown state."""
        try:
            return self._loop.run_until_complete(self._round(targets, region, timeout_s))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            # Closing on the way out (or after a failure): nothing left to save.
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._shutdown())
        finally:
            self._loop.close()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._session.close()


_per_thread = threading.local()


def thread_prober(*, keepalive_s: float, concurrency: int = 1000) -> Prober:
    """This thread's ``Prober``, made on first use and reused by its later rounds. A
    forked child (a Celery prefork worker) makes its own: a loop and sockets inherited
    across fork are not usable."""
    prober: Prober | None = getattr(_per_thread, "prober", None)
    if (
        prober is None
        or prober.closed
        or _per_thread.pid != os.getpid()
        or (prober.keepalive_s, prober.concurrency) != (keepalive_s, concurrency)
    ):
        if prober is not None and _per_thread.pid == os.getpid():
            prober.close()
        if getattr(_per_thread, "pid", None) != os.getpid():
            freeze_startup_objects()
        prober = Prober(keepalive_s=keepalive_s, concurrency=concurrency)
        _per_thread.prober, _per_thread.pid = prober, os.getpid()
        if not getattr(_per_thread, "atexit", False):
            atexit.register(_close_thread_prober, _per_thread)
            _per_thread.atexit = True
    return prober


def _close_thread_prober(per_thread: threading.local) -> None:
    prober = getattr(per_thread, "prober", None)
    if prober is not None and getattr(per_thread, "pid", None) == os.getpid():
        prober.close()


async def _probe(
    session: aiohttp.ClientSession,
    target: ProbeTarget,
    *,
    headers: dict[str, str],
    timeout: aiohttp.ClientTimeout,
    gate: asyncio.Semaphore | None,
    clock: _RoundClock,
) -> ProbeResult:
    if gate is None:
        return await _probe_now(session, target, headers=headers, timeout=timeout, clock=clock)
    # Waiting for a free slot is not the shard's latency: the clock starts after.
    async with gate:
        return await _probe_now(session, target, headers=headers, timeout=timeout, clock=clock)


async def _probe_now(
    session: aiohttp.ClientSession,
    target: ProbeTarget,
    *,
    headers: dict[str, str],
    timeout: aiohttp.ClientTimeout,
    clock: _RoundClock,
) -> ProbeResult:
    assert timeout.total is not None
    started_at = clock.now(target.shard)
    start = perf_counter()
    scratch = Scratch()
    timed(scratch)
    status: int | None = None
    reason = ""
    try:
        async with asyncio.timeout(timeout.total + GUARD_S):
            async with session.get(
                target.url,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                status, reason = response.status, response.reason or ""
                body, complete = await _read_capped(response)
    except Exception as exc:  # a failed probe is data: classify it, never raise
        kind, detail = _classify(exc, timeout.total)
        return ProbeResult(
            shard=target.shard,
            started_at=started_at,
            ok=False,
            latency_ms=None,
            connect_ms=scratch.connect_ms,
            error=kind,
            status_code=status,
            detail=_short(detail),
        )
    latency_ms = (perf_counter() - start - scratch.waited_s) * 1000
    if not 200 <= status < 300:
        error, detail = HTTP_STATUS, f"HTTP {status} {reason}".strip()
    elif not complete:
        error, detail = BAD_BODY, f"answer larger than {MAX_BODY_BYTES // 1024} KiB"
    else:
        error, detail = _check_body(body)
    return ProbeResult(
        shard=target.shard,
        started_at=started_at,
        ok=not error,
        latency_ms=latency_ms,
        connect_ms=scratch.connect_ms,
        error=error,
        status_code=status,
        detail=_short(detail),
    )


async def _read_capped(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    """The body, up to MAX_BODY_BYTES; False if there was more."""
    length = response.content_length
    if length is not None and length <= MAX_BODY_BYTES:
        # The usual small answer: one read (aiohttp stops at Content-Length).
        return await response.read(), True
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(16384):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return b"".join(chunks)[:MAX_BODY_BYTES], False
    return b"".join(chunks), True


def _check_body(body: bytes) -> tuple[str, str]:
    try:
        data = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        return BAD_BODY, "answer is not JSON"
    if not isinstance(data, dict):
        return BAD_BODY, f"answer is JSON but not an object ({type(data).__name__})"
    key = data.get("publicKey")
    if not isinstance(key, str):
        return BAD_BODY, "answer has no publicKey string"
    if not key.startswith("mkey:"):
        return BAD_BODY, "publicKey is not a machine key (mkey:...)"
    return OK, ""


def _classify(error: Exception, timeout_s: float) -> tuple[str, str]:
    """The ProbeError kind of an exception, and a few words about it."""
    # ServerTimeoutError and ConnectionTimeoutError are TimeoutErrors too.
    if isinstance(error, TimeoutError):
        return TIMEOUT, f"no answer within {timeout_s:g} s"
    if _errno(error) == errno.ECONNREFUSED:
        where = ""
        if isinstance(error, aiohttp.ClientConnectorError):
            where = f" by {error.host}:{error.port}"
        return REFUSED, f"connection refused{where}"
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return NETWORK, f"cannot resolve host: {error.os_error}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return NETWORK, "server closed the connection without answering"
    if isinstance(error, aiohttp.ClientConnectorError):
        return NETWORK, f"cannot connect: {error.os_error}"
    if _errno(error) == errno.ECONNRESET:
        return NETWORK, "connection reset by the server"
    if isinstance(error, aiohttp.ClientPayloadError):
        return NETWORK, "answer cut off"
    if isinstance(error, aiohttp.InvalidURL):
        return NETWORK, f"invalid probe URL: {error}"
    return NETWORK, f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _errno(error: BaseException) -> int | None:
    """The errno behind an error; for a host with several addresses that all failed
    the same way (asyncio's "Multiple exceptions: [Errno 111] ..."), that errno."""
    if isinstance(error, aiohttp.ClientConnectorError):
        error = error.os_error
    elif not isinstance(error, OSError) and isinstance(error.__cause__, OSError):
        error = error.__cause__
    if not isinstance(error, OSError):
        return None
    if error.errno is None:
        found = set(_ERRNO.findall(str(error)))
        return int(found.pop()) if len(found) == 1 else None
    return error.errno


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"
