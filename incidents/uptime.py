"""Uptime arithmetic for the status page: pure functions, no Django, no clock.

Everything here is computed from half-open intervals ``[start, end)`` of aware
datetimes. Results are in UTC, and "days" and "months" are UTC calendar days and
months. ``now`` is always a parameter, never read from a clock.

Levels
    An impact has one of three levels, in ascending severity (``levels.LEVELS``):
    ``"degraded" < "partial" < "outage"``. An interval whose ``end`` is ``None``
    is still ongoing and is treated as ending at ``now``.

Minutes
    Uptime is counted per UTC minute. A minute is touched by an interval when the
    interval overlaps it by a positive amount, so ``[10:02:30, 10:03:00)`` touches
    minute 10:02 and ``[10:02, 10:26)`` is exactly 24 minutes. A minute counts
    once, at the worst level of the intervals touching it, however many there are.

Coverage
    Minutes without data are grey: excluded from the count, never counted as up.
    The caller says when data exists with ``covered`` intervals (while a shard
    existed, while a tailnet was placed, ...); a minute has data when a covered
    interval touches it. Impact outside coverage is ignored.

Now
    Every interval, impact or coverage, is cut at ``now`` before minutes are
    counted: the future has no data. The minute in progress therefore counts
    (at whatever level touched it so far), and nothing after it does.

Uptime (Statuspage's rule)
    ``uptime = 100 * (T - (M + 0.3 * P)) / T`` where ``T`` is the minutes with
    data, ``M`` the outage minutes and ``P`` the partial-outage minutes. Degraded
    minutes cost nothing but are still reported. With ``T == 0`` there is no
    uptime (``None``: a grey day).

Fleet uptime
    The fleet figure weights customers by how long they were around: it is the
    plain sum of the per-tailnet tallies, so its ``uptime_pct`` is the share of
    tailnet-minutes that were disrupted. A tailnet with one day of data moves it
    1/90th as much as a tailnet with 90 days; it is not an average of percentages.

Components
    A component's status at a time is derived from the impact of its active
    shards (see ``component_status_from_shards``), except where an operator set
    a status on an incident: there the operator's word wins outright, including
    "operational" or "under_maintenance", which mean no impact.

Implementation: intervals become half-open ranges of minute indices (minutes
since the Unix epoch) and are combined by sweeping over their boundaries, so the
cost depends on the number of intervals and days, never on the number of minutes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

from .levels import BY_RANK, LEVELS, check_level, check_status, level_for_status
from .levels import rank as level_rank

PARTIAL_WEIGHT = 0.3

# Internally a level is its rank (``levels.rank``), so "worst" is "max" and 0 means
# "no impact".
_NO_IMPACT = 0
_RANKS = len(BY_RANK)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_MINUTE = timedelta(minutes=1)
_MINUTES_PER_DAY = 24 * 60

# A range of minute indices [first, stop), optionally with a rank.
_Span = tuple[int, int]
_Segment = tuple[int, int, int]


# --- validation --------------------------------------------------------------


def _check_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got naive {value!r}")


def _check_span(start: datetime, end: datetime | None, what: str) -> None:
    _check_aware(start, f"{what} start")
    if end is not None:
        _check_aware(end, f"{what} end")
        if end <= start:
            raise ValueError(f"{what} must end after it starts, got [{start}, {end})")


# --- public types ------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """An impact at ``level`` during ``[start, end)``; ``end=None`` means ongoing."""

    start: datetime
    end: datetime | None
    level: str

    def __post_init__(self) -> None:
        check_level(self.level)
        _check_span(self.start, self.end, "interval")


@dataclass(frozen=True)
class Tally:
    """Minute counts over any span: a day, a month, 90 days, a whole fleet."""

    total_minutes: int = 0
    outage_minutes: int = 0
    partial_minutes: int = 0
    degraded_minutes: int = 0

    def __post_init__(self) -> None:
        impacted = (self.outage_minutes, self.partial_minutes, self.degraded_minutes)
        if min(self.total_minutes, *impacted) < 0:
            raise ValueError(f"minute counts cannot be negative: {self!r}")
        if sum(impacted) > self.total_minutes:
            raise ValueError(f"more impacted minutes than minutes with data: {self!r}")

    @property
    def downtime_minutes(self) -> float:
        return self.outage_minutes + PARTIAL_WEIGHT * self.partial_minutes

    @property
    def uptime_pct(self) -> float | None:
        if self.total_minutes == 0:
            return None
        return 100 * (self.total_minutes - self.downtime_minutes) / self.total_minutes

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            total_minutes=self.total_minutes + other.total_minutes,
            outage_minutes=self.outage_minutes + other.outage_minutes,
            partial_minutes=self.partial_minutes + other.partial_minutes,
            degraded_minutes=self.degraded_minutes + other.degraded_minutes,
        )


@dataclass(frozen=True)
class DayUptime:
    """One UTC day of an uptime bar."""

    day: date
    tally: Tally

    @property
    def uptime_pct(self) -> float | None:
        return self.tally.uptime_pct

    @property
    def worst_level(self) -> str | None:
        if self.tally.outage_minutes:
            return "outage"
        if self.tally.partial_minutes:
            return "partial"
        if self.tally.degraded_minutes:
            return "degraded"
        return None


# --- minute arithmetic -------------------------------------------------------


def _minute_floor(value: datetime) -> int:
    return (value - _EPOCH) // _MINUTE


def _minute_ceil(value: datetime) -> int:
    return -((_EPOCH - value) // _MINUTE)


def _minute_start(index: int) -> datetime:
    return _EPOCH + index * _MINUTE


def _minutes(start: datetime, end: datetime | None, now: datetime) -> _Span | None:
    """The minutes touched by ``[start, end)`` once cut at ``now``, if any.

    The cut happens on the datetimes, before rounding out to whole minutes, so an
    interval starting later in the current minute than ``now`` touches nothing.
    """
    stop = now if end is None else min(end, now)
    if stop <= start:
        return None
    return _minute_floor(start), _minute_ceil(stop)


def _day_index(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def _sweep(segments: Iterable[_Segment], slots: int) -> Iterator[tuple[int, int, list[int]]]:
    """Cut the segments at all their boundaries and yield each covered piece.

    Yields ``(first, stop, live)`` in order, where ``live[slot]`` is how many
    segments of that slot cover ``[first, stop)``. ``live`` is reused between
    pieces: read it, don't keep it.
    """
    deltas: defaultdict[int, list[int]] = defaultdict(lambda: [0] * slots)
    for first, stop, slot in segments:
        deltas[first][slot] += 1
        deltas[stop][slot] -= 1
    live = [0] * slots
    for first, stop in pairwise(sorted(deltas)):
        for slot, delta in enumerate(deltas[first]):
            live[slot] += delta
        if any(live):
            yield first, stop, live


def _worst(live: Sequence[int]) -> int:
    """The highest rank with a live count in the first ``_RANKS`` slots."""
    for rank in range(_RANKS - 1, _NO_IMPACT, -1):
        if live[rank]:
            return rank
    return _NO_IMPACT


def _merged(pieces: Iterable[_Segment]) -> list[_Segment]:
    """Drop unimpacted pieces and merge touching pieces of equal rank."""
    merged: list[_Segment] = []
    for first, stop, rank in pieces:
        if rank == _NO_IMPACT:
            continue
        if merged and merged[-1][1] == first and merged[-1][2] == rank:
            merged[-1] = (merged[-1][0], stop, rank)
        else:
            merged.append((first, stop, rank))
    return merged


def _worst_segments(intervals: Iterable[Interval], now: datetime) -> list[_Segment]:
    def ranges() -> Iterator[_Segment]:
        for interval in intervals:
            span = _minutes(interval.start, interval.end, now)
            if span is not None:
                yield (*span, level_rank(interval.level))

    slots = _RANKS
    return _merged((first, stop, _worst(live)) for first, stop, live in _sweep(ranges(), slots))


def _as_intervals(segments: Iterable[_Segment]) -> list[Interval]:
    return [
        Interval(_minute_start(first), _minute_start(stop), LEVELS[rank - 1])
        for first, stop, rank in segments
    ]


# --- uptime ------------------------------------------------------------------


def daily_uptime(
    *,
    intervals: Iterable[Interval],
    covered: Iterable[tuple[datetime, datetime | None]],
    first_day: date,
    last_day: date,
    now: datetime,
) -> list[DayUptime]:
    """One ``DayUptime`` per UTC day from ``first_day`` to ``last_day`` inclusive."""
    _check_aware(now, "now")
    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    first_day_index = _day_index(first_day)
    n_days = _day_index(last_day) - first_day_index + 1
    first_minute = first_day_index * _MINUTES_PER_DAY
    stop_minute = first_minute + n_days * _MINUTES_PER_DAY

    # Coverage rides in the sweep as rank 0 ("data, no impact"), so one pass
    # finds both the minutes with data and the worst impact on each of them.
    def ranges() -> Iterator[_Segment]:
        for start, end in covered:
            _check_span(start, end, "covered interval")
            span = _minutes(start, end, now)
            if span is not None:
                first, stop = max(span[0], first_minute), min(span[1], stop_minute)
                if first < stop:
                    yield first, stop, _NO_IMPACT
        yield from _worst_segments(intervals, now)

    # Per day, indexed by rank: minutes with data, then minutes at each level.
    counts = [[0] * _RANKS for _ in range(n_days)]
    for first, stop, live in _sweep(ranges(), _RANKS):
        if not live[_NO_IMPACT]:
            continue  # impact without data
        rank = _worst(live)
        while first < stop:
            day = first // _MINUTES_PER_DAY
            day_stop = min(stop, (day + 1) * _MINUTES_PER_DAY)
            row = counts[day - first_day_index]
            row[_NO_IMPACT] += day_stop - first
            if rank != _NO_IMPACT:
                row[rank] += day_stop - first
            first = day_stop

    # Tallies are immutable and most days look alike (a whole day with data and no
    # impact), so equal rows share one Tally: a year of days builds a handful.
    tallies: dict[tuple[int, ...], Tally] = {}
    days = []
    first_ordinal = first_day.toordinal()
    for offset, row in enumerate(counts):
        key = tuple(row)
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = Tally(
                total_minutes=row[_NO_IMPACT],
                outage_minutes=row[level_rank("outage")],
                partial_minutes=row[level_rank("partial")],
                degraded_minutes=row[level_rank("degraded")],
            )
        days.append(DayUptime(day=date.fromordinal(first_ordinal + offset), tally=tally))
    return days


def total(days: Iterable[DayUptime]) -> Tally:
    """The tally over all the given days (e.g. the 90-day figure under a bar)."""
    return sum((day.tally for day in days), Tally())


def monthly(days: Iterable[DayUptime]) -> dict[tuple[int, int], Tally]:
    """Tallies per UTC ``(year, month)``, in the order the months first appear."""
    months: dict[tuple[int, int], Tally] = {}
    for day in days:
        key = (day.day.year, day.day.month)
        months[key] = months.get(key, Tally()) + day.tally
    return months


def fleet_uptime(tallies: Iterable[Tally]) -> Tally:
    """The fleet tally: the plain sum of per-tailnet tallies.

    Summing minutes weights each tailnet by how long it had data, so the result's
    ``uptime_pct`` is the share of tailnet-minutes disrupted, not a mean of
    per-tailnet percentages (which would let a day-old tailnet's bad day count
    as much as a long-lived tailnet's whole quarter).
    """
    return sum(tallies, Tally())


# --- components --------------------------------------------------------------


def component_status_from_shards(levels: Sequence[str | None]) -> str:
    """A component's Statuspage status from the current level of each active shard.

    ``None`` means the shard is fine. Every shard down is a major outage; some
    shards down, or any partially down, is a partial outage.
    """
    for level in levels:
        if level is not None:
            check_level(level)
    if "outage" in levels and all(level == "outage" for level in levels):
        return "major_outage"
    if "outage" in levels or "partial" in levels:
        return "partial_outage"
    if "degraded" in levels:
        return "degraded_performance"
    return "operational"


def component_intervals(
    *,
    operator: Iterable[tuple[datetime, datetime | None, str]],
    shards: Mapping[Any, Iterable[Interval]],
    shard_count: int,
    now: datetime,
) -> list[Interval]:
    """A component's impact over time, as minute-aligned worst-level segments.

    Minutes touched by an operator-set status take the worst such status, and
    nothing else: an operator "operational" hides whatever the shards say.
    Other minutes take ``component_status_from_shards`` of the shards' levels at
    that minute, the ``shard_count - len(shards)`` shards without intervals being
    fine.
    """
    _check_aware(now, "now")
    if len(shards) > shard_count:
        raise ValueError(f"{len(shards)} shards given but shard_count is {shard_count}")

    # Slots of the sweep: operator statuses by rank, then shards by their rank.
    # A shard is flattened first so that it counts once however many of its
    # intervals overlap.
    shard_slot = _RANKS

    def ranges() -> Iterator[_Segment]:
        for start, end, status in operator:
            check_status(status)
            _check_span(start, end, "operator status interval")
            span = _minutes(start, end, now)
            if span is not None:
                yield (*span, level_rank(level_for_status(status)))
        for intervals in shards.values():
            for first, stop, rank in _worst_segments(intervals, now):
                yield first, stop, shard_slot + rank

    def rank_at(live: Sequence[int]) -> int:
        if any(live[:shard_slot]):
            return _worst(live)
        shard_levels = [
            level for rank, level in enumerate(BY_RANK) for _ in range(live[shard_slot + rank])
        ]
        shard_levels += [None] * (shard_count - len(shard_levels))
        status = component_status_from_shards(shard_levels)
        return level_rank(level_for_status(status))

    pieces = _sweep(ranges(), 2 * shard_slot)
    return _as_intervals(_merged((first, stop, rank_at(live)) for first, stop, live in pieces))
