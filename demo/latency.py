"""The demo's probe history: what every probe region measured of every demo shard,
hour by hour, as hourly and daily rollups (``probes.models.ProbeRollup``).

Plain values, no ORM: ``demo.seed`` writes the result. Deterministic: an hour's
probes come from a generator seeded with the seed, the shard, the region and the
hour, so the same hour reads the same whatever "now" the seed ran at.

What it looks like:

- a p50 of 30-80 ms, by how far the probe region is from the shard's region, with a
  long tail (p99 about three times p50);
- a daily rhythm, busiest mid-afternoon in the shard's region and calmer at weekends,
  and a little noise per hour;
- the story's incidents (the shard impact windows the seed wrote): during an outage
  every probe fails, during a partial outage a third of them fail and the rest answer
  slowly, and a degraded (slow) shard answers in well over a second.

Probes run every ``INTERVAL_SECONDS`` from each region; the current hour holds only
the probes before "now". Latency histograms are ``probes.rollup``'s.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from statistics import NormalDist

from probes import rollup

INTERVAL_SECONDS = 60  # one probe a minute from each region: a week is ~16,000 rows
HOUR = timedelta(hours=1)

# Median latency (ms) of a shard's key endpoint as each probe region sees it.
BASE_MS: dict[tuple[str, str], float] = {
    ("nyc", "us-east"): 31, ("nyc", "us-west"): 52, ("nyc", "eu-central"): 64,
    ("nyc", "ap-southeast"): 79,
    ("sfo", "us-east"): 50, ("sfo", "us-west"): 30, ("sfo", "eu-central"): 74,
    ("sfo", "ap-southeast"): 68,
    ("ams", "us-east"): 61, ("ams", "us-west"): 76, ("ams", "eu-central"): 30,
    ("ams", "ap-southeast"): 78,
    ("sin", "us-east"): 80, ("sin", "us-west"): 66, ("sin", "eu-central"): 73,
    ("sin", "ap-southeast"): 34,
}  # fmt: skip
DEFAULT_BASE_MS = 60.0  # a probe region or shard region not in the table
# Hours from UTC of each shard region's working day (for the daily rhythm).
UTC_OFFSET_HOURS = {"us-east": -5, "us-west": -8, "eu-central": 1, "ap-southeast": 8}
BUSIEST_LOCAL_HOUR = 15
RHYTHM = 0.2  # +-20 % over a weekday
WEEKEND_RHYTHM = 0.08
HOUR_NOISE = 0.06  # sigma of an hour's log-normal wobble

# While the story says a shard was in trouble.
PARTIAL_FAILING = 0.35  # share of probes failing during a partial outage
PARTIAL_SLOWER = 3.0  # the others answer this many times slower
DEGRADED_MS = 1800.0  # median answer of a slow shard: well above its threshold
LEVEL_RANK = {"degraded": 1, "partial": 2, "outage": 3}


def _spread(quantiles: int = 1000) -> tuple[float, ...]:
    """One probe's latency as a multiple of the median, at evenly spaced quantiles:
    log-normal, with the slowest 3 % up to 2.5 times slower still (a long tail)."""
    normal = NormalDist()
    spread = []
    for k in range(quantiles):
        q = (k + 0.5) / quantiles
        tail = 1 + 1.5 * max(0.0, q - 0.97) / 0.03
        spread.append(math.exp(0.22 * normal.inv_cdf(q)) * tail)
    return tuple(spread)


SPREAD = _spread()


@dataclass(frozen=True)
class ShardSpec:
    slug: str
    region: str
    created_at: datetime


@dataclass(frozen=True)
class Window:
    """A shard impact window of the story; ``ends_at`` None: still open."""

    shard: str
    level: str
    starts_at: datetime
    ends_at: datetime | None


@dataclass(frozen=True)
class Rollup:
    """One rollup row: the probes of one shard from one region in one bucket."""

    shard: str
    region: str
    granularity: str
    bucket_start: datetime
    count: int
    failures: int
    latency_sum_ms: float
    latency_max_ms: float | None
    histogram: list[int]


def window_start(now: datetime, days: int) -> datetime:
    """The first hour of the ``days`` days up to ``now``'s hour (included), as the
    tailnet page counts them (``customers.queries.tailnet_latency``)."""
    return rollup.bucket_start(now.astimezone(UTC), "hour") + HOUR - timedelta(days=days)


def _load(at: datetime, shard_region: str) -> float:
    """The daily rhythm: how busy the shard is at ``at`` (1 on average)."""
    local = at + timedelta(hours=UTC_OFFSET_HOURS.get(shard_region, 0))
    amplitude = WEEKEND_RHYTHM if local.weekday() >= 5 else RHYTHM
    return 1 + amplitude * math.cos(2 * math.pi * (local.hour - BUSIEST_LOCAL_HOUR) / 24)


@cache
def _shard_factor(seed: int, shard: str) -> float:
    """Some shards are a little slower than others."""
    return random.Random(f"{seed}:latency:{shard}").uniform(0.9, 1.2)  # noqa: S311 - demo data


def _level(windows: Sequence[Window], at: datetime) -> str | None:
    """The worst level of the windows covering ``at``."""
    found = [
        w.level for w in windows if w.starts_at <= at and (w.ends_at is None or at < w.ends_at)
    ]
    return max(found, key=lambda level: LEVEL_RANK.get(level, 0)) if found else None


def _probe_times(hour: datetime, offset: int, since: datetime, until: datetime) -> list[datetime]:
    """When the region probed in the hour: every INTERVAL_SECONDS from ``offset``
    seconds past it, within [since, until)."""
    times = (hour + timedelta(seconds=s) for s in range(offset, 3600, INTERVAL_SECONDS))
    return [at for at in times if since <= at < until]


def hour_rollup(
    *,
    seed: int,
    shard: ShardSpec,
    region: str,
    region_index: int,
    hour: datetime,
    now: datetime,
    windows: Sequence[Window],
) -> Rollup | None:
    """The hour's rollup of ``shard`` seen from ``region``, or None without probes."""
    # Each region probes a few seconds apart from the others, as real rounds do.
    offset = (7 * region_index) % INTERVAL_SECONDS
    hour_end = hour + HOUR
    whole = shard.created_at <= hour and hour_end <= now
    here = [
        w for w in windows if w.starts_at < hour_end and (w.ends_at is None or w.ends_at > hour)
    ]
    times = [] if whole and not here else _probe_times(hour, offset, shard.created_at, now)
    count = len(range(offset, 3600, INTERVAL_SECONDS)) if whole else len(times)
    if not count:
        return None
    stream = f"{seed}:latency:{shard.slug}:{region}:{int(hour.timestamp())}"
    rng = random.Random(stream)  # noqa: S311 - demo data, not secrets
    median = (
        BASE_MS.get((region, shard.region), DEFAULT_BASE_MS)
        * _shard_factor(seed, shard.slug)
        * _load(hour + HOUR / 2, shard.region)
        * rng.lognormvariate(0, HOUR_NOISE)
    )
    spreads = rng.choices(SPREAD, k=count)
    latencies: list[float] = []
    failures = 0
    if not here:
        latencies = [median * spread for spread in spreads]
    else:
        for at, spread in zip(times, spreads, strict=True):
            level = _level(here, at)
            if level is None:
                latencies.append(median * spread)
            elif level == "outage" or (level == "partial" and rng.random() < PARTIAL_FAILING):
                failures += 1
            elif level == "partial":
                latencies.append(median * PARTIAL_SLOWER * spread)
            else:
                latencies.append(DEGRADED_MS * spread)
    return Rollup(
        shard=shard.slug,
        region=region,
        granularity="hour",
        bucket_start=hour,
        count=count,
        failures=failures,
        latency_sum_ms=round(sum(latencies), 1),
        latency_max_ms=round(max(latencies), 1) if latencies else None,
        histogram=rollup.histogram(latencies),
    )


def hourly_rollups(
    *,
    seed: int,
    now: datetime,
    days: int,
    shards: Iterable[ShardSpec],
    regions: Sequence[str],
    windows: Iterable[Window],
) -> Iterator[Rollup]:
    """Every shard's hourly rollups from every region over the ``days`` days up to
    ``now`` (its current hour up to ``now`` only)."""
    now = now.astimezone(UTC)
    start = window_start(now, days)
    by_shard: dict[str, list[Window]] = {}
    for window in windows:
        by_shard.setdefault(window.shard, []).append(window)
    hours = [start + k * HOUR for k in range(days * 24)]
    for shard in shards:
        shard_windows = by_shard.get(shard.slug, [])
        for index, region in enumerate(regions):
            for hour in hours:
                found = hour_rollup(
                    seed=seed,
                    shard=shard,
                    region=region,
                    region_index=index,
                    hour=hour,
                    now=now,
                    windows=shard_windows,
                )
                if found is not None:
                    yield found


def daily_rollups(hours: Iterable[Rollup]) -> list[Rollup]:
    """The day rollups of these hourly ones: each the sum of its hours."""
    days: dict[tuple[str, str, datetime], list[Rollup]] = {}
    for hour in hours:
        key = (hour.shard, hour.region, rollup.bucket_start(hour.bucket_start, "day"))
        days.setdefault(key, []).append(hour)
    return [
        Rollup(
            shard=shard,
            region=region,
            granularity="day",
            bucket_start=day,
            count=sum(h.count for h in children),
            failures=sum(h.failures for h in children),
            latency_sum_ms=round(sum(h.latency_sum_ms for h in children), 1),
            latency_max_ms=max(
                (h.latency_max_ms for h in children if h.latency_max_ms is not None),
                default=None,
            ),
            histogram=rollup.merge(h.histogram for h in children),
        )
        for (shard, region, day), children in days.items()
    ]
