"""Who an incident touched, as plain functions on plain values.

The production computation runs in SQL (``services.tailnet_impacts_recompute``);
``affected_windows`` here is the same rule in Python, small enough to read and
to property-test the SQL against. Windows are half-open [start, end); an end of
None means "still going on".
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from .figures import percent_text
from .uptime import epoch_second


@dataclass(frozen=True)
class PlacementSpan:
    tailnet: object
    shard: object
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class ImpactWindow:
    key: object  # the ShardImpact it came from
    shard: object
    level: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class TailnetWindow:
    key: object
    tailnet: object
    shard: object
    level: str
    start: datetime
    end: datetime | None

    def seconds(self, *, as_of: datetime) -> int:
        return span_seconds(self.start, self.end, as_of=as_of)


def overlap(
    a_start: datetime, a_end: datetime | None, b_start: datetime, b_end: datetime | None
) -> tuple[datetime, datetime | None] | None:
    """The overlap of two half-open windows, or None when they only touch or miss."""
    start = max(a_start, b_start)
    ends = [e for e in (a_end, b_end) if e is not None]
    end = min(ends) if ends else None
    if end is not None and end <= start:
        return None
    return start, end


def span_seconds(start: datetime, end: datetime | None, *, as_of: datetime) -> int:
    """Seconds in [start, end), an open end counted up to ``as_of``; never negative.
    Each instant is cut to its whole second first (``uptime.epoch_second``), the
    rule every uptime figure follows."""
    stop = end if end is not None else as_of
    return max(0, epoch_second(stop) - epoch_second(start))


def affected_windows(
    placements: Iterable[PlacementSpan], impacts: Iterable[ImpactWindow]
) -> list[TailnetWindow]:
    """Placements overlapping impact windows of the same shard, clipped to the overlap.

    A tailnet migrated off a failing shard is affected until it left; one migrated
    onto it is affected from its arrival.
    """
    by_shard: dict[object, list[PlacementSpan]] = {}
    for placement in placements:
        by_shard.setdefault(placement.shard, []).append(placement)
    result = []
    for window in impacts:
        for placement in by_shard.get(window.shard, ()):
            clipped = overlap(placement.start, placement.end, window.start, window.end)
            if clipped is not None:
                result.append(
                    TailnetWindow(
                        window.key, placement.tailnet, window.shard, window.level, *clipped
                    )
                )
    return result


def union_seconds(spans: Iterable[tuple[datetime, datetime | None]], *, as_of: datetime) -> int:
    """Seconds covered by any of the spans, each second once (open ends stop at
    ``as_of``; instants cut to their whole second, as in ``span_seconds``)."""
    clipped = sorted(
        (epoch_second(start), epoch_second(end if end is not None else as_of))
        for start, end in spans
    )
    total = 0
    current_start = current_end = None
    for start, end in clipped:
        if end <= start:
            continue
        if current_end is None or start > current_end:
            if current_start is not None and current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_start is not None and current_end is not None:
        total += current_end - current_start
    return total


def incident_window_end(
    *, resolved_at: datetime | None, window_ends: Sequence[datetime | None], as_of: datetime
) -> datetime:
    """Where an incident's window ends: ``as_of`` while any impact window is open (or,
    with no windows, while unresolved), else the later of the last window end and the
    resolution."""
    if not window_ends:
        return as_of if resolved_at is None else resolved_at
    if None in window_ends:
        return as_of
    last = max(end for end in window_ends if end is not None)
    return last if resolved_at is None else max(last, resolved_at)


@dataclass(frozen=True)
class BlastRadius:
    """How many tailnets an incident touched, of those that existed at the time."""

    affected: int
    total: int
    # Each affected tailnet counted once, at the worst level it saw.
    by_level: dict[str, int] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return self.affected / self.total if self.total else 0.0

    @property
    def percent(self) -> Fraction:
        """The exact share, as a percentage (0 without tailnets)."""
        return Fraction(100 * self.affected, self.total) if self.total else Fraction(0)

    @property
    def percent_text(self) -> str:
        """The share as every percentage is shown (``figures.percent_text``): floored,
        so a real impact never reads "0.00%" and a share never reads above itself."""
        return percent_text(self.percent)

    def __str__(self) -> str:
        noun = "tailnet" if self.affected == 1 else "tailnets"
        return f"{self.affected:,} {noun}, {self.percent_text} of tailnets"
