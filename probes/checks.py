"""Probe shards' control planes over HTTP: one round, all shards at once. I/O only.

A probe asks a shard's key endpoint (``GET /key?v=NN``, as a Tailscale client does
first) and expects 200 with a JSON object whose ``publicKey`` is a machine key.
Every probe has a hard deadline and **never raises**: a failure is a sample with an
error kind (``probes.models.ProbeError``), never retried. Storing the results is the
caller's business (``services``); nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import perf_counter
from types import SimpleNamespace

import aiohttp

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
    latency_ms: float | None  # until the answer was read; None if none came
    connect_ms: float | None  # None when a kept-alive connection was reused
    error: str  # "" when ok, else one of ProbeError's values
    status_code: int | None
    detail: str  # short and human-readable, at most 200 characters


class _Trace:
    """Per-request scratch space the connection tracing writes into."""

    __slots__ = ("connect_ms", "connect_start")

    def __init__(self) -> None:
        self.connect_start: float | None = None
        self.connect_ms: float | None = None


async def _on_connect_start(
    session: aiohttp.ClientSession,
    ctx: SimpleNamespace,
    params: aiohttp.TraceConnectionCreateStartParams,
) -> None:
    if isinstance(ctx.trace_request_ctx, _Trace):
        ctx.trace_request_ctx.connect_start = perf_counter()


async def _on_connect_end(
    session: aiohttp.ClientSession,
    ctx: SimpleNamespace,
    params: aiohttp.TraceConnectionCreateEndParams,
) -> None:
    trace = ctx.trace_request_ctx
    if isinstance(trace, _Trace) and trace.connect_start is not None:
        trace.connect_ms = (perf_counter() - trace.connect_start) * 1000


def probe_session(*, concurrency: int = 1000) -> aiohttp.ClientSession:
    """A session for probing: keep-alive, ``concurrency`` connections, connect timing.

    Must be created inside the event loop that uses it. Pass it to several
    ``probe_all`` calls to reuse connections between rounds.
    """
    trace_config = aiohttp.TraceConfig()
    trace_config.on_connection_create_start.append(_on_connect_start)
    trace_config.on_connection_create_end.append(_on_connect_end)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, ttl_dns_cache=300),
        headers={"User-Agent": USER_AGENT},
        cookie_jar=aiohttp.DummyCookieJar(),
        trace_configs=[trace_config],
    )
    # aiohttp re-sends a GET once when the server drops the connection (RFC 9112's
    # retry of idempotent requests). A probe must see that drop: a shard that resets
    # every other connection would otherwise look healthy. No public switch exists;
    # tests/probes/test_checks.py pins the behaviour.
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
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
    unless it carries ``probe_session``'s tracing.

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
    gate = asyncio.Semaphore(concurrency)
    clock = _RoundClock()
    try:
        return list(
            await asyncio.gather(
                *(
                    _probe(
                        active, target, region=region, timeout_s=timeout_s, gate=gate, clock=clock
                    )
                    for target in targets
                )
            )
        )
    finally:
        if own_session:
            await active.close()


def probe_round(
    targets: Sequence[ProbeTarget], *, region: str, timeout_s: float, concurrency: int = 1000
) -> list[ProbeResult]:
    """``probe_all`` for synchronous callers (a Celery task): one event loop per round."""
    return asyncio.run(
        probe_all(targets, region=region, timeout_s=timeout_s, concurrency=concurrency)
    )


async def _probe(
    session: aiohttp.ClientSession,
    target: ProbeTarget,
    *,
    region: str,
    timeout_s: float,
    gate: asyncio.Semaphore,
    clock: _RoundClock,
) -> ProbeResult:
    # Waiting for a free slot is not the shard's latency: the clock starts after.
    async with gate:
        started_at = clock.now(target.shard)
        start = perf_counter()
        trace = _Trace()
        status: int | None = None
        reason = ""
        try:
            async with asyncio.timeout(timeout_s + GUARD_S):
                async with session.get(
                    target.url,
                    headers={REGION_HEADER: region},
                    timeout=aiohttp.ClientTimeout(total=timeout_s, ceil_threshold=math.inf),
                    allow_redirects=False,
                    trace_request_ctx=trace,
                ) as response:
                    status, reason = response.status, response.reason or ""
                    body, complete = await _read_capped(response)
        except Exception as exc:  # a failed probe is data: classify it, never raise
            kind, detail = _classify(exc, timeout_s)
            return ProbeResult(
                shard=target.shard,
                started_at=started_at,
                ok=False,
                latency_ms=None,
                connect_ms=trace.connect_ms,
                error=kind,
                status_code=status,
                detail=_short(detail),
            )
        latency_ms = (perf_counter() - start) * 1000
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
            connect_ms=trace.connect_ms,
            error=error,
            status_code=status,
            detail=_short(detail),
        )


async def _read_capped(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    """The body, up to MAX_BODY_BYTES; False if there was more."""
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
