"""Uptime arithmetic for the status page: pure functions, no Django, no clock.

Everything here is computed from half-open intervals ``[start, end)`` of aware
datetimes. Results are in UTC, and "days" and "months" are UTC calendar days and
months. ``now`` is always a parameter, never read from a clock.

Levels
    An impact has one of three levels, in ascending severity (``levels.LEVELS``):
    ``"degraded" < "partial" < "outage"``. An interval whose ``end`` is ``None``
    is still ongoing and is treated as ending at ``now``.

Seconds
    Uptime is counted in exact seconds. Every instant is first cut to its whole
    second (``10:02:30.7`` is second ``10:02:30``), so ``[start, end)`` counts the
    seconds from ``start``'s up to, not including, ``end``'s: ``[05:19:25, 05:20:30)``
    is 65 seconds, and so is the same window with any fractions of a second on
    either end. A second counts once, at the worst level of the intervals covering
    it, however many there are. ``incidents.impact.span_seconds`` follows the same
    rule, so a tailnet's "affected for" and its uptime figures always agree.

Coverage
    Seconds without data are grey: excluded from the count, never counted as up.
    The caller says when data exists with ``covered`` intervals (while a shard
    existed, while a tailnet was placed, ...). Impact outside coverage is ignored.
    ``uncovered`` intervals (monitoring gaps: no probe region reported) are grey
    too, except where an impact covers them: an incident window is a statement of
    impact whoever made it, and counts.

Now
    Every interval, impact or coverage, is cut at ``now`` (itself cut to its
    second) before seconds are counted: the future has no data.

Uptime (Statuspage's rule)
    ``uptime = 100 * (T - (M + 0.3 * P)) / T`` where ``T`` is the seconds with
    data, ``M`` the outage seconds and ``P`` the partial-outage seconds. Degraded
    seconds cost nothing but are still reported. ``Tally.uptime`` is the exact
    value (a ``Fraction``), ``Tally.uptime_pct`` the same as a float; how either is
    shown is ``incidents.figures``'s rule. With ``T == 0`` there is no
    uptime (``None``: a grey day).

Fleet uptime
    The fleet figure weights customers by how long they were around: it is the
    plain sum of the per-tailnet tallies, so its ``uptime_pct`` is the share of
    tailnet-seconds that were disrupted. A tailnet with one day of data moves it
    1/90th as much as a tailnet with 90 days; it is not an average of percentages.

Components
    A component's status at a time is derived from the impact of its active
    shards (see ``component_status_from_shards``), except where an operator set
    a status on an incident: there the operator's word wins outright, including
    "operational" or "under_maintenance", which mean no impact.

Implementation: intervals become half-open ranges of second indices (seconds
since the Unix epoch) and are combined by sweeping over their boundaries, so the
cost depends on the number of intervals and days, never on the number of seconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from typing import Any

from .levels import BY_RANK, LEVELS, check_level, check_status, level_for_status
from .levels import rank as level_rank

PARTIAL_WEIGHT = 0.3

# Internally a level is its rank (``levels.rank``), so "worst" is "max" and 0 means
# "no impact".
_NO_IMPACT = 0
_RANKS = len(BY_RANK)
_GAP = _RANKS  # the sweep's slot for monitoring gaps, after the ranks

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_SECOND = timedelta(seconds=1)
_SECONDS_PER_DAY = 24 * 60 * 60

# A range of second indices [first, stop), optionally with a rank.
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
    """Second counts over any span: a day, a month, 90 days, a whole fleet."""

    total_seconds: int = 0
    outage_seconds: int = 0
    partial_seconds: int = 0
    degraded_seconds: int = 0

    def __post_init__(self) -> None:
        impacted = (self.outage_seconds, self.partial_seconds, self.degraded_seconds)
        if min(self.total_seconds, *impacted) < 0:
            raise ValueError(f"second counts cannot be negative: {self!r}")
        if sum(impacted) > self.total_seconds:
            raise ValueError(f"more impacted seconds than seconds with data: {self!r}")

    @property
    def affected_seconds(self) -> int:
        """Seconds with any impact at all, slow ones included."""
        return self.outage_seconds + self.partial_seconds + self.degraded_seconds

    @property
    def downtime_seconds(self) -> float:
        return self.outage_seconds + PARTIAL_WEIGHT * self.partial_seconds

    @property
    def uptime(self) -> Fraction | None:
        """The exact uptime percentage; ``None`` without data."""
        if self.total_seconds == 0:
            return None
        if not self.outage_seconds and not self.partial_seconds:
            return Fraction(100)
        # 0.3 is 3/10: in tenths of a second everything is a whole number.
        lost = 10 * self.outage_seconds + 3 * self.partial_seconds
        return Fraction(100 * (10 * self.total_seconds - lost), 10 * self.total_seconds)

    @property
    def uptime_pct(self) -> float | None:
        uptime = self.uptime
        return None if uptime is None else float(uptime)

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            total_seconds=self.total_seconds + other.total_seconds,
            outage_seconds=self.outage_seconds + other.outage_seconds,
            partial_seconds=self.partial_seconds + other.partial_seconds,
            degraded_seconds=self.degraded_seconds + other.degraded_seconds,
        )


@dataclass(frozen=True)
class DayUptime:
    """One UTC day of an uptime bar."""

    day: date
    tally: Tally

    @property
    def uptime(self) -> Fraction | None:
        return self.tally.uptime

    @property
    def uptime_pct(self) -> float | None:
        return self.tally.uptime_pct

    @property
    def worst_level(self) -> str | None:
        if self.tally.outage_seconds:
            return "outage"
        if self.tally.partial_seconds:
            return "partial"
        if self.tally.degraded_seconds:
            return "degraded"
        return None


# --- second arithmetic -------------------------------------------------------


def epoch_second(value: datetime) -> int:
    """The instant's whole second, as seconds since the epoch (fractions cut off):
    the one place where time becomes countable seconds."""
    return (value - _EPOCH) // _SECOND


def _second_start(index: int) -> datetime:
    return _EPOCH + index * _SECOND


def _seconds(start: datetime, end: datetime | None, now: datetime) -> _Span | None:
    """The seconds counted for ``[start, end)`` once cut at ``now``, if any."""
    first = epoch_second(start)
    stop = epoch_second(now if end is None else min(end, now))
    if stop <= first:
        return None
    return first, stop


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
            span = _seconds(interval.start, interval.end, now)
            if span is not None:
                yield (*span, level_rank(interval.level))

    slots = _RANKS
    return _merged((first, stop, _worst(live)) for first, stop, live in _sweep(ranges(), slots))


def _as_intervals(segments: Iterable[_Segment]) -> list[Interval]:
    return [
        Interval(_second_start(first), _second_start(stop), LEVELS[rank - 1])
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
    uncovered: Iterable[tuple[datetime, datetime | None]] = (),
) -> list[DayUptime]:
    """One ``DayUptime`` per UTC day from ``first_day`` to ``last_day`` inclusive."""
    _check_aware(now, "now")
    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    first_day_index = _day_index(first_day)
    n_days = _day_index(last_day) - first_day_index + 1
    first_second = first_day_index * _SECONDS_PER_DAY
    stop_second = first_second + n_days * _SECONDS_PER_DAY

    # Coverage rides in the sweep as rank 0 ("data, no impact"), so one pass
    # finds both the seconds with data and the worst impact on each of them.
    def ranges() -> Iterator[_Segment]:
        for start, end in covered:
            _check_span(start, end, "covered interval")
            span = _seconds(start, end, now)
            if span is not None:
                first, stop = max(span[0], first_second), min(span[1], stop_second)
                if first < stop:
                    yield first, stop, _NO_IMPACT
        for start, end in uncovered:
            _check_span(start, end, "uncovered interval")
            span = _seconds(start, end, now)
            if span is not None:
                yield (*span, _GAP)
        yield from _worst_segments(intervals, now)

    # Per day, indexed by rank: seconds with data, then seconds at each level.
    counts = [[0] * _RANKS for _ in range(n_days)]
    for first, stop, live in _sweep(ranges(), _RANKS + 1):
        if not live[_NO_IMPACT]:
            continue  # impact without data
        rank = _worst(live)
        if live[_GAP] and rank == _NO_IMPACT:
            continue  # nobody measured it, and no incident says anything
        while first < stop:
            day = first // _SECONDS_PER_DAY
            day_stop = min(stop, (day + 1) * _SECONDS_PER_DAY)
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
                total_seconds=row[_NO_IMPACT],
                outage_seconds=row[level_rank("outage")],
                partial_seconds=row[level_rank("partial")],
                degraded_seconds=row[level_rank("degraded")],
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

    Summing seconds weights each tailnet by how long it had data, so the result's
    ``uptime_pct`` is the share of tailnet-seconds disrupted, not a mean of
    per-tailnet percentages (which would let a day-old tailnet's bad day count
    as much as a long-lived tailnet's whole quarter).
    """
    return sum(tallies, Tally())


def silent_everywhere(
    gaps: Mapping[Any, Iterable[tuple[datetime, datetime | None]]],
    *,
    shard_count: int,
    now: datetime,
) -> list[tuple[datetime, datetime]]:
    """The spans when every one of ``shard_count`` shards was in a monitoring gap:
    when a component has no data at all. ``gaps`` maps a shard to its gaps."""
    _check_aware(now, "now")
    if shard_count == 0 or len(gaps) < shard_count:
        return []

    def ranges() -> Iterator[_Segment]:
        for spans in gaps.values():
            # Flatten one shard's gaps first, so that it counts once where they overlap.
            flat = _worst_segments((Interval(s, e, LEVELS[0]) for s, e in spans), now)
            for first, stop, _ in flat:
                yield first, stop, 0

    return [
        (_second_start(first), _second_start(stop))
        for first, stop, live in _sweep(ranges(), 1)
        if live[0] >= shard_count
    ]


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
    """A component's impact over time, as second-aligned worst-level segments.

    Seconds covered by an operator-set status take the worst such status, and
    nothing else: an operator "operational" hides whatever the shards say.
    Other seconds take ``component_status_from_shards`` of the shards' levels at
    that second, the ``shard_count - len(shards)`` shards without intervals being
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
            span = _seconds(start, end, now)
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
