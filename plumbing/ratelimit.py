"""Fixed-window rate limits over the Django cache, failing open.

Use it for anything a person (or a script) could repeat to do harm: sign-in
attempts, invitation emails, outage reports::

    from plumbing import ratelimit

    limit, period = ratelimit.parse_rate(settings.REPORT_RATE_PER_IP)  # "5/10min"
    if not ratelimit.hit(f"report:ip:{ip}", limit, period):
        ...  # refuse, say when to try again

A window is ``period`` seconds long and starts at a multiple of ``period`` (so at
most ``2 * limit`` hits can pass around a window's edge; good enough against brute
force and floods, and one cache key per window). Keys are hashed, so any text
(an email address, a username with spaces) is a safe key on every cache backend.

**Fails open**: when the cache raises (Redis down, a full disk under the file
cache), every function answers as if no limit had been reached and logs a
warning. A status page is used most when things break; a dead cache must not lock
people out or lose their reports.
"""

import hashlib
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from django.core.cache import cache, caches

from plumbing.cache import BreakerRedis, CacheSkipped, redis_client

logger = logging.getLogger(__name__)

_UNITS = {
    **dict.fromkeys(("s", "sec", "second"), 1),
    **dict.fromkeys(("m", "min", "minute"), 60),
    **dict.fromkeys(("h", "hour"), 3600),
    **dict.fromkeys(("d", "day"), 86400),
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*$")


def parse_rate(rate: str) -> tuple[int, int]:
    """``"5/10min"`` -> ``(5, 600)``: (hits allowed, period in seconds).

    Units: s/sec/second, m/min/minute, h/hour, d/day (plurals too), with an
    optional multiplier ("5/10min", "20/hours").
    Raises ``ValueError`` for anything else.
    """
    match = _RATE.match(rate.lower())
    if match is None or match.group(3) not in _UNITS:
        raise ValueError(f"A rate looks like '5/10min' or '100/hour', not {rate!r}.")
    limit, multiplier, unit = match.groups()
    period = int(multiplier or 1) * _UNITS[unit]
    if int(limit) < 1 or period < 1:
        raise ValueError(f"A rate needs at least one hit per period, not {rate!r}.")
    return int(limit), period


def _window_key(key: str, period: int, now: float) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"ratelimit:{period}:{int(now // period)}:{digest}"


def hit(key: str, limit: int, period: int) -> bool:
    """Count one hit for ``key``; ``True`` if it is within ``limit`` hits per
    ``period`` seconds (go ahead), ``False`` once it is over (refuse).

    Fails open: ``True`` when the cache is unavailable.
    """
    return hit_many([(key, limit, period)])[0]


def hit_many(limits: Sequence[tuple[str, int, int]]) -> list[bool]:
    """Count one hit for each ``(key, limit, period)``; for each, whether it is
    within its limit. On Redis all of them cost one round trip (a pipeline of
    ``SET NX EX`` and ``INCR`` per key); on other caches two operations per key.

    Fails open: all ``True`` when the cache is unavailable.
    """
    now = time.time()
    windows = [(_window_key(key, period, now), period) for key, _, period in limits]
    try:
        client = _redis_client()
        if client is not None:
            counts = _redis_counts(client, windows)
        else:
            counts = [_cache_count(window, period) for window, period in windows]
    except CacheSkipped:  # the cache failed moments ago, and said so then
        return [True] * len(limits)
    except Exception:
        keys = [key for key, _, _ in limits]
        logger.warning("rate limits %r not checked: the cache is unavailable", keys, exc_info=True)
        return [True] * len(limits)
    return [count <= limit for count, (_, limit, _) in zip(counts, limits, strict=True)]


def _redis_client() -> Any:
    return redis_client(caches["default"])


def _redis_counts(client: BreakerRedis, windows: list[tuple[str, int]]) -> list[int]:
    backend = caches["default"]

    def fill(pipe: Any) -> None:
        for window, period in windows:
            # The key Django's cache would use, so is_limited()/reset() see the same
            # counter; integers are stored unpickled, so INCR works on them.
            stored = backend.make_and_validate_key(window)
            pipe.set(stored, 0, ex=period + 1, nx=True)
            pipe.incr(stored)

    results = client.pipelined(fill)
    return [int(count) for count in results[1::2]]


def _cache_count(window: str, period: int) -> int:
    # add() is a no-op when the key exists, so the window's expiry is set once.
    cache.add(window, 0, timeout=period + 1)
    try:
        return int(cache.incr(window))
    except ValueError:  # expired between add() and incr()
        cache.set(window, 1, timeout=period + 1)
        return 1


def is_limited(key: str, limit: int, period: int) -> bool:
    """Whether ``key`` has used up its ``limit`` in this window, without counting a
    hit (check first, count only failures: see customers.signin).

    Fails open: ``False`` when the cache is unavailable.
    """
    try:
        count = cache.get(_window_key(key, period, time.time()), 0)
    except Exception:
        logger.warning("rate limit %r not checked: the cache is unavailable", key, exc_info=True)
        return False
    return int(count) >= limit


def reset(key: str, period: int) -> None:
    """Forget ``key``'s hits in this window (after a successful sign-in, say)."""
    try:
        cache.delete(_window_key(key, period, time.time()))
    except Exception:
        logger.warning("rate limit %r not reset: the cache is unavailable", key, exc_info=True)


def retry_after(period: int) -> int:
    """Seconds until the current window of ``period`` seconds ends."""
    return max(1, period - int(time.time() % period))
