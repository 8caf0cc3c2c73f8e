"""Reads for one tailnet's own page and API: "were we affected?".

Every function here takes a tailnet that already came through the one door
(``customers.access.tailnet_access``) and makes a fixed number of queries,
whatever the number of incidents, migrations or probe rollups. The arithmetic is
``incidents.uptime`` (day bars stitched across migrations), ``incidents.queries``
(history), ``incidents.wording`` (plain words) and ``probes.rollup`` (percentiles).

Customers are shown a shard by its public name and region, never by its slug.

Plain Django first. Three reads (now, uptime, latency) are fixed SQL statements
instead, as ``incidents.queries.tailnet_incident_history`` is, because each buys
more than 10 % of ``make bench-tailnet``'s "tailnet: ours=" figure (the comment on
each says how much; bench/README.md has the runs): on a page that reads a few dozen
rows, building and compiling querysets cost more than the statements. The
placements read did not (about 5 %) and is a queryset. Plain values go into
dataclasses; model instances are made only where a template needs one (open
incidents, usually none).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from incidents import levels, wording
from incidents.impact import overlap
from incidents.models import (
    Incident,
    IncidentKind,
    IncidentStatus,
    Placement,
    ShardImpact,
    Tailnet,
)
from incidents.queries import DayIncident, TailnetIncident, tailnet_incident_history
from incidents.uptime import DayUptime, Interval, Tally, daily_uptime, total
from probes.models import Granularity
from probes.rollup import merge, quantiles_ms

UPTIME_DAYS = 90
SLA_MONTHS = 12
LATENCY_DAYS = 7
# The longest range /uptime and the CSV answer at once (a year and a bit: an annual
# SLA report with a margin), so one request can't ask for decades of days.
MAX_RANGE_DAYS = 400

HOUR = timedelta(hours=1)
_MAINTENANCE_NOW = (IncidentStatus.IN_PROGRESS, IncidentStatus.VERIFYING)


def _rows(sql: str, params: Sequence[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored in UTC); PostgreSQL aware ones.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def _db_datetime(value: datetime) -> object:
    return connection.ops.adapt_datetimefield_value(value)


# --- Placements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stay:
    """One placement as a customer sees it: which shard (by public name), when."""

    shard_id: int
    shard_name: str
    region: str
    component_id: int
    component_name: str
    component_kind: str
    latency_threshold_ms: int
    starts_at: datetime
    ends_at: datetime | None

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at and (self.ends_at is None or at < self.ends_at)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.starts_at < end and (self.ends_at is None or self.ends_at > start)


@dataclass(frozen=True)
class Migration:
    """A live migration: the tailnet left one shard for another at ``at``."""

    at: datetime
    from_name: str
    to_name: str


def tailnet_stays(*, tailnet_id: int) -> list[Stay]:
    """Every placement of the tailnet, oldest first, with its shard. One query."""
    default_threshold = settings.SHARD_LATENCY_THRESHOLD_MS  # Shard.effective_latency_...
    return [
        Stay(
            shard_id=shard_id,
            shard_name=name,
            region=region,
            component_id=component_id,
            component_name=component_name,
            component_kind=component_kind,
            latency_threshold_ms=threshold or default_threshold,
            starts_at=starts_at,
            ends_at=ends_at,
        )
        for (
            shard_id,
            name,
            region,
            component_id,
            component_name,
            component_kind,
            threshold,
            starts_at,
            ends_at,
        ) in Placement.objects.filter(tailnet_id=tailnet_id)
        .order_by("starts_at")
        .values_list(
            "shard_id",
            "shard__public_name",
            "shard__region",
            "shard__component_id",
            "shard__component__name",
            "shard__component__kind",
            "shard__latency_threshold_ms",
            "starts_at",
            "ends_at",
        )
    ]


def current_stay(stays: Sequence[Stay]) -> Stay | None:
    return next((stay for stay in reversed(stays) if stay.ends_at is None), None)


def migrations_between(stays: Sequence[Stay], *, start: datetime, end: datetime) -> list[Migration]:
    """The moves from one shard to another in [start, end), oldest first."""
    return [
        Migration(at=stay.starts_at, from_name=before.shard_name, to_name=stay.shard_name)
        for before, stay in pairwise(stays)
        if start <= stay.starts_at < end
    ]


# --- Now ----------------------------------------------------------------------------------


@dataclass
class Happening:
    """An open incident or a not-yet-completed maintenance touching the tailnet's
    shard, in plain words about that shard only."""

    incident: Incident
    phase: str  # "upcoming" | "ongoing" | "past" (open, but its shard has recovered)
    level: str | None  # worst level on the tailnet's shard (now, if ongoing)
    words: wording.Words
    windows: list[ShardImpact] = field(default_factory=list)

    @property
    def pk(self) -> int:
        return self.incident.pk


@dataclass
class TailnetNow:
    stay: Stay | None
    status: str  # a component status: operational, degraded_performance, ...
    incidents: list[Happening]
    maintenance: list[Happening]

    @property
    def affected(self) -> bool:
        return self.status not in ("operational", "under_maintenance")


def _live(window: ShardImpact, now: datetime) -> bool:
    return window.starts_at <= now and (window.ends_at is None or window.ends_at > now)


def _happening(
    incident: Incident, windows: list[ShardImpact], stay: Stay, now: datetime
) -> Happening:
    if incident.kind == IncidentKind.MAINTENANCE:
        phase = "upcoming" if incident.status == IncidentStatus.SCHEDULED else "ongoing"
        level = levels.worst(w.level for w in windows)
    else:
        live = [w.level for w in windows if _live(w, now)]
        phase = "ongoing" if live else "past"
        level = levels.worst(live) if live else levels.worst(w.level for w in windows)
    affected = [wording.Affected(stay.component_kind, level, stay.component_name)]
    words = wording.describe(affected=affected, incident_kind=incident.kind, phase=phase)
    return Happening(incident=incident, phase=phase, level=level, words=words, windows=windows)


# Raw SQL, not querysets: buys 13-25 % of `make bench-tailnet`'s "tailnet: ours=" (ORM +0.9 ms).
# Open published incidents with a window on the shard, each window a row (the
# incident's columns, then the window's), oldest window first.
_OPEN_WINDOWS_SQL = """
    SELECT i.*, si.id AS window_id, si.level AS window_level,
           si.starts_at AS window_starts_at, si.ends_at AS window_ends_at
    FROM incidents_shardimpact si
    JOIN incidents_incident i ON i.id = si.incident_id
    WHERE si.shard_id = %s AND i.published AND i.resolved_at IS NULL
    ORDER BY si.starts_at, si.id
"""
_WINDOW_COLUMNS = ("window_id", "window_level", "window_starts_at", "window_ends_at")
# Open published maintenance naming the shard's component.
_OPEN_MAINTENANCE_SQL = """
    SELECT i.*
    FROM incidents_incident i
    WHERE i.published AND i.kind = %s AND i.resolved_at IS NULL
      AND EXISTS (
          SELECT 1 FROM incidents_incidentcomponent ic
          WHERE ic.incident_id = i.id AND ic.component_id = %s
      )
"""


def tailnet_now(*, stays: Sequence[Stay], now: datetime) -> TailnetNow:
    """The state of the tailnet's current shard: open published incidents with an
    impact window on it, and maintenance not yet completed on it (by a window on
    the shard, or naming the shard's component). Two queries."""
    stay = current_stay(stays)
    if stay is None:
        return TailnetNow(stay=None, status="operational", incidents=[], maintenance=[])
    by_incident: dict[int, tuple[Incident, list[ShardImpact]]] = {}
    for incident in Incident.objects.raw(_OPEN_WINDOWS_SQL, [stay.shard_id]):
        # The window's columns came along as attributes of the incident: off it.
        window_id, level, starts_at, ends_at = (
            incident.__dict__.pop(column) for column in _WINDOW_COLUMNS
        )
        known, windows = by_incident.setdefault(incident.pk, (incident, []))
        windows.append(
            ShardImpact(
                pk=window_id,
                incident=known,
                shard_id=stay.shard_id,
                level=level,
                starts_at=_aware(starts_at),
                ends_at=_aware_or_none(ends_at),
            )
        )
    for incident in Incident.objects.raw(
        _OPEN_MAINTENANCE_SQL, [IncidentKind.MAINTENANCE.value, stay.component_id]
    ):
        by_incident.setdefault(incident.pk, (incident, []))
    happenings = [
        _happening(incident, windows, stay, now) for incident, windows in by_incident.values()
    ]
    incidents = sorted(
        (h for h in happenings if h.incident.kind == IncidentKind.INCIDENT),
        key=lambda h: (h.incident.started_at, h.pk),
        reverse=True,
    )
    maintenance = sorted(
        (h for h in happenings if h.incident.kind == IncidentKind.MAINTENANCE),
        key=lambda h: (h.incident.scheduled_for or h.incident.started_at, h.pk),
    )
    live = [w.level for h in happenings for w in h.windows if _live(w, now)]
    status = levels.status_for_level(levels.worst(live))
    if status == "operational" and any(h.incident.status in _MAINTENANCE_NOW for h in maintenance):
        status = "under_maintenance"
    return TailnetNow(stay=stay, status=status, incidents=incidents, maintenance=maintenance)


# --- History ------------------------------------------------------------------------------


def tailnet_history(*, tailnet: Tailnet, now: datetime) -> list[TailnetIncident]:
    """Every published incident that touched the tailnet, newest first, with its
    exact affected time (clipped to its placements). One query."""
    return tailnet_incident_history(tailnet_id=tailnet.pk, since=tailnet.created_at, as_of=now)


def day_incidents(
    history: Sequence[TailnetIncident], *, first_day: date, last_day: date, now: datetime
) -> dict[date, list[DayIncident]]:
    """Per UTC day, the incidents that touched the tailnet that day, oldest first,
    each at its worst level that day: the tooltips of the day bar."""
    found: dict[date, dict[int, DayIncident]] = {}
    for item in sorted(history, key=lambda h: (h.first_affected_at, h.incident.pk)):
        for window in item.windows:
            start = window.starts_at.astimezone(UTC)
            end = min(window.ends_at or now, now).astimezone(UTC)
            last = (end - timedelta(microseconds=1)).date() if end > start else start.date()
            day = max(start.date(), first_day)
            while day <= min(last, last_day):
                entries = found.setdefault(day, {})
                known = entries.get(item.incident.pk)
                level = levels.worst([known.level if known else None, window.level])
                entries[item.incident.pk] = DayIncident(
                    pk=item.incident.pk,
                    title=item.incident.title,
                    kind=item.incident.kind,
                    level=level,
                )
                day += timedelta(days=1)
    return {day: list(entries.values()) for day, entries in found.items()}


# --- Uptime -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthUptime:
    """One calendar month (clipped to the range asked for) of a tailnet's uptime."""

    year: int
    month: int
    first_day: date
    last_day: date
    tally: Tally

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def uptime(self) -> Fraction | None:
        return self.tally.uptime


@dataclass(frozen=True)
class UptimeReport:
    first_day: date
    last_day: date
    days: list[DayUptime]
    months: list[MonthUptime]

    @property
    def tally(self) -> Tally:
        return total(self.days)


def tailnet_uptime_report(
    *,
    tailnet_id: int,
    first_day: date,
    last_day: date,
    now: datetime,
    excluded: Mapping[int, tuple[datetime, datetime]] | None = None,
) -> UptimeReport:
    """Per day and per month, the tailnet's uptime stitched across migrations (its
    own shard's impact wherever it was placed; published incidents only; minutes
    before it existed excluded). Three queries.

    ``excluded`` (an SLA's announced maintenance): per incident id, a window in which
    that incident's impact on the tailnet is not counted, and its seconds are not
    measured at all, unless another incident's impact covers them."""
    days = _tailnet_days(
        tailnet_id=tailnet_id,
        first_day=first_day,
        last_day=last_day,
        now=now,
        excluded=excluded or {},
    )
    return UptimeReport(first_day=first_day, last_day=last_day, days=days, months=_months(days))


# Raw SQL, not querysets: buys ~17 % of `make bench-tailnet`'s "tailnet: ours=" (ORM +1.3 ms).
_UPTIME_IMPACTS_SQL = """
    SELECT ti.starts_at, ti.ends_at, ti.level, ti.incident_id
    FROM incidents_tailnetimpact ti
    JOIN incidents_incident i ON i.id = ti.incident_id
    WHERE ti.tailnet_id = %s AND i.published
      AND (ti.ends_at IS NULL OR ti.ends_at > %s) AND ti.starts_at < %s
"""
_UPTIME_PLACEMENTS_SQL = """
    SELECT starts_at, ends_at, shard_id
    FROM incidents_placement
    WHERE tailnet_id = %s AND (ends_at IS NULL OR ends_at > %s) AND starts_at < %s
"""
# Monitoring gaps of the shards the tailnet was on in the range: grey while it was there.
_UPTIME_GAPS_SQL = """
    SELECT g.shard_id, g.starts_at, g.ends_at
    FROM incidents_monitoringgap g
    WHERE g.shard_id IN (
        SELECT shard_id FROM incidents_placement
        WHERE tailnet_id = %s AND (ends_at IS NULL OR ends_at > %s) AND starts_at < %s
    ) AND (g.ends_at IS NULL OR g.ends_at > %s) AND g.starts_at < %s
"""


def _tailnet_days(
    *,
    tailnet_id: int,
    first_day: date,
    last_day: date,
    now: datetime,
    excluded: Mapping[int, tuple[datetime, datetime]],
) -> list[DayUptime]:
    """Per-day uptime of one tailnet, stitched across live migrations: its own shard's
    impact wherever it was placed (published incidents only), seconds when it was on
    no shard or its shard was unmeasured (monitoring gaps) excluded. Three fixed
    statements, then ``incidents.uptime.daily_uptime``."""
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    params = [tailnet_id, _db_datetime(start), _db_datetime(end)]
    placed = [
        (_aware(s), _aware_or_none(e), shard)
        for s, e, shard in _rows(_UPTIME_PLACEMENTS_SQL, params)
    ]
    intervals, unmeasured = _impacts_outside(_rows(_UPTIME_IMPACTS_SQL, params), excluded)
    return daily_uptime(
        intervals=intervals,
        covered=[(s, e) for s, e, _ in placed],
        uncovered=[
            *_silent_while_placed(placed, _rows(_UPTIME_GAPS_SQL, [*params, *params[1:]])),
            *unmeasured,
        ],
        first_day=first_day,
        last_day=last_day,
        now=now,
    )


def _impacts_outside(
    rows: Iterable[Sequence[Any]], excluded: Mapping[int, tuple[datetime, datetime]]
) -> tuple[list[Interval], list[tuple[datetime, datetime | None]]]:
    """The impact rows as intervals, each cut where its incident's excluded window
    is; the cut-out parts come back as unmeasured time."""
    intervals, unmeasured = [], []
    for s, e, level, incident_id in rows:
        start, end = _aware(s), _aware_or_none(e)
        window = excluded.get(incident_id)
        inside = None if window is None else overlap(start, end, *window)
        if inside is None:
            intervals.append(Interval(start, end, level))
            continue
        unmeasured.append(inside)
        if start < inside[0]:
            intervals.append(Interval(start, inside[0], level))
        if inside[1] is not None and (end is None or inside[1] < end):
            intervals.append(Interval(inside[1], end, level))
    return intervals, unmeasured


def _silent_while_placed(
    placed: Sequence[tuple[datetime, datetime | None, int]], gaps: Iterable[Sequence[Any]]
) -> list[tuple[datetime, datetime | None]]:
    """The shards' monitoring gaps, clipped to when the tailnet was on each shard."""
    silent = []
    for shard_id, gap_start, gap_end in gaps:
        for start, end, shard in placed:
            if shard == shard_id:
                clipped = overlap(start, end, _aware(gap_start), _aware_or_none(gap_end))
                if clipped is not None:
                    silent.append(clipped)
    return silent


def _months(days: Sequence[DayUptime]) -> list[MonthUptime]:
    """The days (consecutive, oldest first) per calendar month: what
    ``incidents.uptime.monthly`` gives, in one pass over plain sums (adding up a
    Tally per day cost more than the rest of the report, bench/tailnet.py)."""
    months: list[MonthUptime] = []
    run: list[DayUptime] = []
    for day in days:
        if run and (day.day.year, day.day.month) != (run[0].day.year, run[0].day.month):
            months.append(_month(run))
            run = []
        run.append(day)
    if run:
        months.append(_month(run))
    return months


def _month(days: Sequence[DayUptime]) -> MonthUptime:
    first = days[0].day
    total = outage = partial = degraded = 0
    for day in days:  # one pass: this runs for every day of a year per page
        tally = day.tally
        total += tally.total_seconds
        outage += tally.outage_seconds
        partial += tally.partial_seconds
        degraded += tally.degraded_seconds
    month = Tally(
        total_seconds=total,
        outage_seconds=outage,
        partial_seconds=partial,
        degraded_seconds=degraded,
    )
    return MonthUptime(first.year, first.month, first, days[-1].day, month)


def sla_months_start(today: date, months: int = SLA_MONTHS) -> date:
    """The first day of the month ``months - 1`` months before today's."""
    index = today.year * 12 + today.month - 1 - (months - 1)
    return date(index // 12, index % 12 + 1, 1)


# --- Latency ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyHour:
    """One hour of control-plane latency of the shard the tailnet was on then."""

    start: datetime
    shard_name: str | None  # None: the tailnet was on no shard (did not exist yet)
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    samples: int
    failures: int


# Raw SQL, not a queryset: buys 27-31 % of `make bench-tailnet`'s "tailnet: ours=" (ORM +1.9 ms).
# The hourly rollups of the hours the tailnet spent on each shard: one
# "(shard, from, to)" condition per placement.
_LATENCY_SQL = """
    SELECT shard_id, {bucket_epoch}, count, failures, histogram
    FROM probes_proberollup
    WHERE granularity = %s AND ({hours_on_shard})
"""
# The hour as Unix seconds: a week is ~500 rows, and Django's timestamptz loader (in
# Python) cost more than the rest of this read (bench/tailnet.py).
_BUCKET_EPOCH = {
    "postgresql": "CAST(EXTRACT(EPOCH FROM bucket_start) AS bigint)",
    "sqlite": "CAST(strftime('%%s', bucket_start) AS integer)",
}


def tailnet_latency(
    *, stays: Sequence[Stay], now: datetime, days: int = LATENCY_DAYS
) -> list[LatencyHour]:
    """p50/p95/p99 per hour over the last ``days`` days, oldest first, of whichever
    shard the tailnet was on in that hour (at its middle), merged over the probe
    regions, from the hourly rollups. One query; hours without samples have
    no percentiles."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + HOUR
    start = end - timedelta(days=days)
    here = [stay for stay in stays if stay.overlaps(start, end)]
    histograms: dict[tuple[int, int], list[list[int]]] = {}
    counts: dict[tuple[int, int], tuple[int, int]] = {}
    if here:
        # Only the hours the tailnet spent on each shard (an hour is the shard's it
        # was on at the hour's middle): a tailnet that moved twice this week would
        # otherwise read three shards' whole week.
        hours_on_shard = " OR ".join(
            "(shard_id = %s AND bucket_start >= %s AND bucket_start < %s)" for _ in here
        )
        params: list[object] = [Granularity.HOUR.value]
        for placed in here:
            ends = end if placed.ends_at is None else min(placed.ends_at - HOUR / 2, end)
            params += [
                placed.shard_id,
                _db_datetime(max(placed.starts_at - HOUR / 2, start)),
                _db_datetime(ends),
            ]
        sql = _LATENCY_SQL.format(
            bucket_epoch=_BUCKET_EPOCH[connection.vendor], hours_on_shard=hours_on_shard
        )
        for shard_id, bucket, count, failures, histogram in _rows(sql, params):
            key = (shard_id, int(bucket))
            # JSON as text from both databases (Django loads jsonb as text).
            loaded = json.loads(histogram) if isinstance(histogram, str | bytes) else histogram
            histograms.setdefault(key, []).append(loaded)
            seen = counts.get(key, (0, 0))
            counts[key] = (seen[0] + count, seen[1] + failures)
    hours = []
    at = start
    while at < end:
        middle = at + HOUR / 2
        stay = next((s for s in here if s.covers(middle)), None)
        if stay is None:
            hours.append(LatencyHour(at, None, None, None, None, samples=0, failures=0))
        else:
            key = (stay.shard_id, int(at.timestamp()))
            found = histograms.get(key)
            p50, p95, p99 = (
                quantiles_ms(merge(found), (0.5, 0.95, 0.99)) if found else (None, None, None)
            )
            samples, failures = counts.get(key, (0, 0))
            hours.append(
                LatencyHour(
                    start=at,
                    shard_name=stay.shard_name,
                    p50_ms=p50,
                    p95_ms=p95,
                    p99_ms=p99,
                    samples=samples,
                    failures=failures,
                )
            )
        at += HOUR
    return hours


# --- The page -----------------------------------------------------------------------------


@dataclass
class TailnetPage:
    tailnet: Tailnet
    now: datetime
    stays: list[Stay]
    current: TailnetNow
    history: list[TailnetIncident]
    days: list[DayUptime]
    day_incidents: dict[date, list[DayIncident]]
    migrations: list[Migration]
    sla: UptimeReport
    latency: list[LatencyHour]

    @property
    def uptime(self) -> Fraction | None:
        return total(self.days).uptime


def tailnet_page(*, tailnet: Tailnet, now: datetime | None = None) -> TailnetPage:
    """Everything the tailnet's page shows. Eight queries, whatever the number of
    incidents, migrations or probe regions."""
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    stays = tailnet_stays(tailnet_id=tailnet.pk)  # 1
    current = tailnet_now(stays=stays, now=now)  # 2
    history = tailnet_history(tailnet=tailnet, now=now)  # 1
    first_bar_day = today - timedelta(days=UPTIME_DAYS - 1)
    sla_start = min(sla_months_start(today), first_bar_day)
    report = tailnet_uptime_report(  # 3
        tailnet_id=tailnet.pk, first_day=sla_start, last_day=today, now=now
    )
    days = [d for d in report.days if d.day >= first_bar_day]
    bar_start = datetime.combine(first_bar_day, datetime.min.time(), tzinfo=UTC)
    sla_first = sla_months_start(today)
    sla = UptimeReport(
        first_day=sla_first,
        last_day=today,
        days=[d for d in report.days if d.day >= sla_first],
        months=[m for m in report.months if m.first_day >= sla_first],
    )
    return TailnetPage(
        tailnet=tailnet,
        now=now,
        stays=stays,
        current=current,
        history=history,
        days=days,
        day_incidents=day_incidents(history, first_day=first_bar_day, last_day=today, now=now),
        migrations=migrations_between(stays, start=bar_start, end=now),
        sla=sla,
        latency=tailnet_latency(stays=stays, now=now),  # 1
    )


# --- The list of one's tailnets -------------------------------------------------------------


@dataclass(frozen=True)
class TailnetSummary:
    shard_name: str | None
    region: str | None
    status: str


def tailnets_summary(
    *, tailnet_ids: Sequence[int], now: datetime | None = None
) -> dict[int, TailnetSummary]:
    """Each tailnet's current shard and its status (a component status), for the
    list of one's tailnets. Two queries however many tailnets (none for none)."""
    now = now or timezone.now()
    if not tailnet_ids:
        return {}
    placed = {
        tailnet_id: (shard_id, name, region)
        for tailnet_id, shard_id, name, region in Placement.objects.filter(
            tailnet_id__in=tailnet_ids, ends_at__isnull=True
        ).values_list("tailnet_id", "shard_id", "shard__public_name", "shard__region")
    }
    live: dict[int, list[str]] = {}
    for shard_id, level in (
        ShardImpact.objects.filter(
            shard_id__in={shard_id for shard_id, _, _ in placed.values()},
            incident__published=True,
            starts_at__lte=now,
        )
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .values_list("shard_id", "level")
    ):
        live.setdefault(shard_id, []).append(level)
    summary = {}
    for tailnet_id in tailnet_ids:
        if tailnet_id not in placed:
            summary[tailnet_id] = TailnetSummary(None, None, "operational")
            continue
        shard_id, name, region = placed[tailnet_id]
        status = levels.status_for_level(levels.worst(live.get(shard_id, [])))
        summary[tailnet_id] = TailnetSummary(name, region, status)
    return summary
