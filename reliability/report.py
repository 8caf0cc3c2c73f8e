"""The reliability report's arithmetic: pure functions on plain values, no Django,
no clock.

Months are UTC calendar months, named by an index (``year * 12 + month - 1``) so
that ranges and steps are integer arithmetic. An incident belongs to the month it
started; the downtime figures (tailnet-seconds lost, fleet uptime) are counted in
the months the seconds happened, by the database (``queries``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fractions import Fraction

from incidents.impact import incident_window_end
from incidents.uptime import Tally

IMPACTS = ("critical", "major", "minor", "none", "maintenance")


def month_index(value: date | datetime) -> int:
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
    return value.year * 12 + value.month - 1


def month_start(index: int) -> datetime:
    year, month = divmod(index, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


def median(values: Sequence[float | Fraction]) -> float | Fraction | None:
    """The middle value (the mean of the two middle ones for an even count)."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True)
class IncidentTimes:
    """What the database says about one counted incident."""

    pk: int
    kind: str
    impact: str
    started_at: datetime
    detected_at: datetime | None
    resolved_at: datetime | None
    published_at: datetime | None
    first_window_at: datetime | None  # the earliest impact window's start
    window_ends: tuple[datetime | None, ...]  # () without windows, (None,) while one is open
    first_update_at: datetime | None  # the earliest update's display time
    # Its follow-ups, open and done, once its postmortem is published (else 0, 0).
    follow_ups_open: int = 0
    follow_ups_done: int = 0


def _seconds(start: datetime, end: datetime) -> int:
    """Whole seconds from ``start`` to ``end`` (never negative): each instant cut to
    its second, the rule of every other figure (``uptime.epoch_second``)."""
    first = int(start.timestamp() // 1)
    last = int(end.timestamp() // 1)
    return max(0, last - first)


@dataclass(frozen=True)
class IncidentFigures:
    pk: int
    month: int
    kind: str
    impact: str
    duration: int
    detect: int | None  # None: not measured (no detected_at)
    first_update: int | None  # None: no update published yet
    resolve: int | None  # None: not resolved yet
    follow_ups_open: int = 0
    follow_ups_done: int = 0


def incident_figures(times: IncidentTimes, *, now: datetime) -> IncidentFigures:
    """Impact starts at the incident's start or its first window, whichever is first;
    it ends where ``impact.incident_window_end`` says. The public first heard of it
    at its first update, or when it was published if that was later."""
    start = min(times.started_at, times.first_window_at or times.started_at)
    end = incident_window_end(
        resolved_at=times.resolved_at, window_ends=times.window_ends, as_of=now
    )
    heard = times.first_update_at
    if heard is not None and times.published_at is not None:
        heard = max(heard, times.published_at)
    return IncidentFigures(
        pk=times.pk,
        month=month_index(times.started_at),
        kind=times.kind,
        impact=times.impact,
        duration=_seconds(start, max(start, end)),
        detect=None if times.detected_at is None else _seconds(start, times.detected_at),
        first_update=None if heard is None else _seconds(start, heard),
        resolve=None if times.resolved_at is None else _seconds(start, times.resolved_at),
        follow_ups_open=times.follow_ups_open,
        follow_ups_done=times.follow_ups_done,
    )


@dataclass(frozen=True)
class Spread:
    """A figure over a month's incidents: how many had it, how many did not (not
    measured, or not yet), the total, the median and the worst."""

    measured: int = 0
    missing: int = 0
    total: float | Fraction = 0
    median: float | Fraction | None = None
    worst: float | Fraction | None = None

    @classmethod
    def of(cls, values: Iterable[float | Fraction | None]) -> Spread:
        values = list(values)
        present = [v for v in values if v is not None]
        return cls(
            measured=len(present),
            missing=len(values) - len(present),
            total=sum(present),
            median=median(present),
            worst=max(present) if present else None,
        )


@dataclass(frozen=True)
class MonthFigures:
    index: int
    incidents: int = 0
    by_impact: dict[str, int] = field(default_factory=dict)
    duration: Spread = Spread()
    detect: Spread = Spread()
    first_update: Spread = Spread()
    resolve: Spread = Spread()
    blast: Spread = Spread()  # shares in percent, of incidents with impact windows
    tally: Tally = field(default_factory=Tally)  # tailnet-seconds: with data, at each level
    # The month's incidents' follow-ups (of those whose postmortem is published), by
    # their status now.
    follow_ups_open: int = 0
    follow_ups_done: int = 0

    @property
    def start(self) -> datetime:
        return month_start(self.index)

    @property
    def tailnet_minutes_lost(self) -> float:
        """Outage minutes plus 0.3 x partial-outage minutes, summed over tailnets."""
        return self.tally.downtime_seconds / 60

    @property
    def uptime(self) -> Fraction | None:
        return self.tally.uptime


def months_report(
    *,
    first: int,
    last: int,
    incidents: Iterable[IncidentFigures],
    blast_percent: dict[int, Fraction],
    tallies: dict[int, Tally],
) -> list[MonthFigures]:
    """One ``MonthFigures`` per month from ``first`` to ``last`` (indexes, both
    included), oldest first. ``blast_percent`` has the incidents with windows."""
    grouped: dict[int, list[IncidentFigures]] = {index: [] for index in range(first, last + 1)}
    for figures in incidents:
        if figures.month in grouped:
            grouped[figures.month].append(figures)
    report = []
    for index, items in grouped.items():
        by_impact = dict.fromkeys(IMPACTS, 0)
        for item in items:
            by_impact[item.impact] = by_impact.get(item.impact, 0) + 1
        report.append(
            MonthFigures(
                index=index,
                incidents=len(items),
                by_impact=by_impact,
                duration=Spread.of(item.duration for item in items),
                detect=Spread.of(item.detect for item in items),
                first_update=Spread.of(item.first_update for item in items),
                resolve=Spread.of(item.resolve for item in items),
                blast=Spread.of(
                    blast_percent[item.pk] for item in items if item.pk in blast_percent
                ),
                tally=tallies.get(index, Tally()),
                follow_ups_open=sum(item.follow_ups_open for item in items),
                follow_ups_done=sum(item.follow_ups_done for item in items),
            )
        )
    return report
