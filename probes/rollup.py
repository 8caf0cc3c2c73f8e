"""Latency histograms with fixed buckets: pure functions, no ORM.

Every rollup (minute, hour, day) stores counts per fixed latency bucket, so
rollups add up exactly (an hour is the sum of its minutes) and any percentile
is derivable at any level, to the resolution of the buckets.
"""

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import accumulate
from math import ceil

# Upper bounds (inclusive) in ms; a last, open bucket takes everything slower.
BUCKET_BOUNDS_MS: tuple[float, ...] = (
    5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 10000, 30000,
)  # fmt: skip
N_BUCKETS = len(BUCKET_BOUNDS_MS) + 1


def bucket_of(latency_ms: float) -> int:
    for index, bound in enumerate(BUCKET_BOUNDS_MS):
        if latency_ms <= bound:
            return index
    return len(BUCKET_BOUNDS_MS)


def histogram(latencies_ms: Iterable[float]) -> list[int]:
    counts = [0] * N_BUCKETS
    for latency in latencies_ms:
        counts[bucket_of(latency)] += 1
    return counts


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    total = [0] * N_BUCKETS
    for counts in histograms:
        if len(counts) != N_BUCKETS:
            raise ValueError(f"a histogram has {N_BUCKETS} buckets, not {len(counts)}")
        for index, count in enumerate(counts):
            total[index] += count
    return total


def quantile_ms(counts: Sequence[int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (0 < q <= 1); the open
    last bucket reports its lower bound. None without any sample."""
    if not 0 < q <= 1:
        raise ValueError("q must be in (0, 1]")
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, ceil(q * total))
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return BUCKET_BOUNDS_MS[min(index, len(BUCKET_BOUNDS_MS) - 1)]
    return BUCKET_BOUNDS_MS[-1]


def quantiles_ms(counts: Sequence[int], qs: Sequence[float]) -> list[float | None]:
    """``[quantile_ms(counts, q) for q in qs]`` in one pass over the buckets (the
    customer page asks for p50 and p95 of every hour of a week)."""
    if not all(0 < q <= 1 for q in qs):
        raise ValueError("q must be in (0, 1]")
    cumulative = list(accumulate(counts))
    total = cumulative[-1] if cumulative else 0
    if total == 0:
        return [None] * len(qs)
    last = len(BUCKET_BOUNDS_MS) - 1
    return [
        BUCKET_BOUNDS_MS[min(bisect_left(cumulative, max(1, ceil(q * total))), last)] for q in qs
    ]


def bucket_start(at: datetime, granularity: str) -> datetime:
    if granularity == "minute":
        return at.replace(second=0, microsecond=0)
    if granularity == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    if granularity == "day":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown granularity {granularity!r}")


BUCKET_LENGTH = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
PARENT = {"minute": "hour", "hour": "day"}
