"""Reads for pages and the API: a fixed number of queries each, whatever the size."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import (
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest, Least, TruncSecond
from django.utils import timezone

from . import levels
from .impact import BlastRadius, incident_window_end, overlap, span_seconds, union_seconds
from .models import (
    Component,
    FollowUp,
    Incident,
    IncidentComponent,
    IncidentUpdate,
    MonitoringGap,
    Placement,
    Shard,
    ShardImpact,
    Tailnet,
    TailnetImpact,
)
from .uptime import (
    DayUptime,
    Interval,
    Tally,
    component_intervals,
    component_status_from_shards,
    daily_uptime,
    silent_everywhere,
    total,
)
from .uptime import fleet_uptime as fleet_tally


def incident_blast_radius(*, incident: Incident, as_of: datetime | None = None) -> BlastRadius:
    """``incidents_blast_radius`` of one incident. Three queries."""
    return incidents_blast_radius(incidents=[incident], as_of=as_of)[incident.pk]


@dataclass(frozen=True)
class IncidentRef:
    """The few fields of an incident that a tailnet's history shows."""

    pk: int
    title: str
    kind: str
    status: str
    impact: str
    started_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class AffectedWindow:
    """One TailnetImpact row: when and how badly the tailnet was hit."""

    pk: int
    incident_id: int
    shard_id: int
    level: str
    starts_at: datetime
    ends_at: datetime | None
    seconds: int


@dataclass
class TailnetIncident:
    """One incident as one tailnet lived it."""

    incident: IncidentRef
    worst_level: str
    first_affected_at: datetime
    last_affected_at: datetime | None  # None while still affected
    affected_seconds: int
    windows: list[AffectedWindow] = field(default_factory=list)


# Raw SQL, not a queryset: buys 38-50 % of `make bench-impact`'s "history: ours=" (ORM 1.04 ms).
_HISTORY_SQL = """
    SELECT ti.id, ti.incident_id, ti.shard_id, ti.level, ti.starts_at, ti.ends_at, ti.seconds,
           i.title, i.kind, i.status, i.impact, i.started_at, i.resolved_at
    FROM incidents_tailnetimpact ti
    JOIN incidents_incident i ON i.id = ti.incident_id
    WHERE ti.tailnet_id = %s
      AND (ti.ends_at IS NULL OR ti.ends_at > %s)
      AND ti.starts_at < %s
      AND (i.published OR %s)
    ORDER BY ti.starts_at, ti.id
"""


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored in UTC); PostgreSQL aware ones.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def tailnet_incident_history(
    *,
    tailnet_id: int,
    since: datetime,
    until: datetime | None = None,
    as_of: datetime | None = None,
    include_drafts: bool = False,
) -> list[TailnetIncident]:
    """The incidents that touched this tailnet in [since, until), newest first, with
    the exact affected time (clipped to when it was on the affected shard). One query."""
    as_of = as_of or timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    far_future = datetime(9999, 1, 1, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            _HISTORY_SQL, [tailnet_id, adapt(since), adapt(until or far_future), include_drafts]
        )
        rows = cursor.fetchall()
    grouped: dict[int, list[AffectedWindow]] = {}
    incidents: dict[int, IncidentRef] = {}
    for pk, incident_id, shard_id, level, s, e, seconds, *incident in rows:
        starts_at, ends_at = _aware(s), _aware_or_none(e)
        if ends_at is None:
            # The stored count is as of the last rebuild; the totals below are as of
            # ``as_of``, and so is an ongoing window, or the two would disagree.
            seconds = union_seconds([(starts_at, None)], as_of=as_of)
        grouped.setdefault(incident_id, []).append(
            AffectedWindow(pk, incident_id, shard_id, level, starts_at, ends_at, seconds)
        )
        if incident_id not in incidents:
            title, kind, status, impact, started_at, resolved_at = incident
            incidents[incident_id] = IncidentRef(
                incident_id,
                title,
                kind,
                status,
                impact,
                _aware(started_at),
                _aware_or_none(resolved_at),
            )
    history = []
    for incident_id, windows in grouped.items():
        ends = [w.ends_at for w in windows]
        history.append(
            TailnetIncident(
                incident=incidents[incident_id],
                worst_level=levels.worst(w.level for w in windows) or "degraded",
                first_affected_at=windows[0].starts_at,
                last_affected_at=None if None in ends else max(e for e in ends if e),
                affected_seconds=union_seconds(
                    ((w.starts_at, w.ends_at) for w in windows), as_of=as_of
                ),
                windows=windows,
            )
        )
    history.sort(key=lambda item: item.first_affected_at, reverse=True)
    return history


def component_statuses_now(*, now: datetime | None = None) -> dict[int, str]:
    """Each component's current Statuspage status: what operators set on open
    published incidents, else derived from its shards' open impact windows.
    Four queries, however many components."""
    now = now or timezone.now()
    statuses = dict.fromkeys(Component.objects.values_list("pk", flat=True), "operational")
    # Only what is happening now: a maintenance counts once it is in progress, so an
    # upcoming one neither shows as "under maintenance" nor hides live impact.
    open_published = Incident.objects.filter(published=True, resolved_at__isnull=True).filter(
        Q(kind="incident", started_at__lte=now)
        | Q(kind="maintenance", status__in=["in_progress", "verifying"])
    )
    operator: dict[int, list[str]] = {}
    for component_id, status in IncidentComponent.objects.filter(
        incident__in=open_published
    ).values_list("component_id", "status"):
        operator.setdefault(component_id, []).append(status)
    shard_levels: dict[int, dict[int, str]] = {}
    for component_id, shard_id, level in (
        ShardImpact.objects.filter(incident__published=True, starts_at__lte=now)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .values_list("shard__component_id", "shard_id", "level")
    ):
        per_shard = shard_levels.setdefault(component_id, {})
        per_shard[shard_id] = levels.worst([level, per_shard.get(shard_id, level)]) or level
    shard_count = dict(
        Shard.objects.filter(active=True)
        .values("component_id")
        .annotate(n=Count("pk"))
        .values_list("component_id", "n")
    )
    for pk in statuses:
        if pk in operator:
            statuses[pk] = levels.worst_status(operator[pk])
        elif pk in shard_levels:
            hit: list[str | None] = list(shard_levels[pk].values())
            unhurt: list[str | None] = [None] * max(0, shard_count.get(pk, 0) - len(hit))
            statuses[pk] = component_status_from_shards(hit + unhurt)
    return statuses


def _day_bounds(first_day: date, last_day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    return start, datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def operator_status_spans(
    incident: Incident, component: Component, set_status: str
) -> list[tuple[datetime, datetime | None, str]]:
    """The statuses an operator gave ``component`` over the incident's life: each
    update that changed it starts a new span; the incident's resolution ends the
    last. ``incident.updates`` should be prefetched."""
    changes = sorted(
        (update.display_at, change["new_status"])
        for update in incident.updates.all()
        for change in update.affected_components
        if change.get("code") == component.slug
    )
    if not changes:
        changes = [(incident.started_at, set_status)]
    spans: list[tuple[datetime, datetime | None, str]] = []
    for (at, status), following in zip(changes, [*changes[1:], None], strict=True):
        start = max(at, incident.started_at)
        end = following[0] if following else incident.resolved_at
        if end is None or end > start:
            spans.append((start, end, status))
    return spans


def components_uptime(
    *, first_day: date, last_day: date, now: datetime | None = None
) -> dict[int, list[DayUptime]]:
    """Per component, per day: its status over time (operator-set on published
    incidents, else derived from its shards' impact windows), counted with
    Statuspage's rule. Minutes before a component existed are grey. Five queries
    however many components, shards or incidents."""
    now = now or timezone.now()
    start, end = _day_bounds(first_day, last_day)
    components = list(Component.objects.order_by())
    shard_count = dict(
        Shard.objects.filter(active=True)
        .values("component_id")
        .annotate(n=Count("pk"))
        .values_list("component_id", "n")
    )
    shard_windows: dict[int, dict[int, list[Interval]]] = {}
    for component_id, shard_id, s, e, level in (
        ShardImpact.objects.filter(incident__published=True, starts_at__lt=end)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=start))
        .values_list("shard__component_id", "shard_id", "starts_at", "ends_at", "level")
    ):
        shard_windows.setdefault(component_id, {}).setdefault(shard_id, []).append(
            Interval(s, e, level)
        )
    operator: dict[int, list[tuple[datetime, datetime | None, str]]] = {}
    by_pk = {component.pk: component for component in components}
    links = (
        IncidentComponent.objects.filter(incident__published=True, incident__started_at__lt=end)
        .filter(Q(incident__resolved_at__isnull=True) | Q(incident__resolved_at__gt=start))
        .select_related("incident")
        .prefetch_related("incident__updates")
    )
    for link in links:
        operator.setdefault(link.component_id, []).extend(
            operator_status_spans(link.incident, by_pk[link.component_id], link.status)
        )
    gaps: dict[int, dict[int, list[tuple[datetime, datetime | None]]]] = {}
    for component_id, shard_id, s, e in _gaps_between(start, end).values_list(
        "shard__component_id", "shard_id", "starts_at", "ends_at"
    ):
        gaps.setdefault(component_id, {}).setdefault(shard_id, []).append((s, e))
    result = {}
    for component in components:
        shards = shard_windows.get(component.pk, {})
        count = max(shard_count.get(component.pk, 0), len(shards))
        intervals = component_intervals(
            operator=operator.get(component.pk, []), shards=shards, shard_count=count, now=now
        )
        result[component.pk] = daily_uptime(
            intervals=intervals,
            covered=[(component.created_at, None)],
            # No data while no region reported on any of its shards.
            uncovered=silent_everywhere(gaps.get(component.pk, {}), shard_count=count, now=now),
            first_day=first_day,
            last_day=last_day,
            now=now,
        )
    return result


def _placed_seconds(placements: QuerySet[Placement], start: datetime, stop: datetime) -> int:
    """The placements' seconds within [start, stop) (whole seconds), summed in the database."""
    if stop <= start:
        return 0
    placed = (
        placements.filter(starts_at__lt=stop)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=start))
        .aggregate(
            total=Sum(
                ExpressionWrapper(
                    Least(Coalesce(TruncSecond("ends_at"), Value(stop)), Value(stop))
                    - Greatest(TruncSecond("starts_at"), Value(start)),
                    output_field=DurationField(),
                )
            )
        )["total"]
    )
    return max(0, int((placed or timedelta(0)) // timedelta(seconds=1)))


def _gaps_between(start: datetime, end: datetime) -> QuerySet[MonitoringGap]:
    return MonitoringGap.objects.filter(starts_at__lt=end).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=start)
    )


def fleet_uptime_tally(*, first_day: date, last_day: date, now: datetime | None = None) -> Tally:
    """What share of customer-time was disrupted: tailnet-seconds weighted.

    T is every tailnet's placed seconds in the range, summed in the database (each
    instant cut to its second, as ``uptime.epoch_second`` does); the
    outage/partial/degraded seconds come from the affected tailnets only, each
    tailnet's seconds counted once at their worst level (published incidents).
    Seconds in a monitoring gap of the shard a tailnet was on have no data, unless
    an impact covers them (``uptime.daily_uptime``'s rule): a query per gap."""
    now = now or timezone.now()
    start, end = _day_bounds(first_day, last_day)
    stop = min(end, now.replace(microsecond=0))
    if stop <= start:
        return Tally()
    total_seconds = _placed_seconds(Placement.objects.all(), start, stop)
    gaps: dict[int, list[tuple[datetime, datetime | None]]] = {}
    for gap in _gaps_between(start, stop):
        gaps.setdefault(gap.shard_id, []).append((gap.starts_at, gap.ends_at))
        total_seconds -= _placed_seconds(
            Placement.objects.filter(shard_id=gap.shard_id),
            max(start, gap.starts_at.replace(microsecond=0)),
            stop if gap.ends_at is None else min(stop, gap.ends_at.replace(microsecond=0)),
        )
    per_tailnet: dict[int, list[Interval]] = {}
    silent_impact: dict[int, list[tuple[datetime, datetime | None]]] = {}
    for tailnet_id, shard_id, s, e, level in (
        TailnetImpact.objects.filter(incident__published=True, starts_at__lt=stop)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=start))
        .values_list("tailnet_id", "shard_id", "starts_at", "ends_at", "level")
        .order_by()
    ):
        per_tailnet.setdefault(tailnet_id, []).append(Interval(s, e, level))
        # Impact in a gap is data all the same: give those seconds back.
        for gap_start, gap_end in gaps.get(shard_id, ()):
            clipped = overlap(s, e, gap_start, gap_end)
            if clipped is not None:
                silent_impact.setdefault(tailnet_id, []).append(clipped)
    impacted = fleet_tally(
        total(
            daily_uptime(
                intervals=intervals,
                covered=[(i.start, i.end) for i in intervals],
                first_day=first_day,
                last_day=last_day,
                now=now,
            )
        )
        for intervals in per_tailnet.values()
    )
    for spans in silent_impact.values():
        total_seconds += union_seconds(
            [(max(s, start), stop if e is None else min(e, stop)) for s, e in spans], as_of=stop
        )
    return Tally(
        total_seconds=max(total_seconds, impacted.total_seconds),
        outage_seconds=impacted.outage_seconds,
        partial_seconds=impacted.partial_seconds,
        degraded_seconds=impacted.degraded_seconds,
    )


# --- Public pages: the status page, incident pages, history, feeds ---------------------
# Appended for the public pages (views.py, feeds.py). Each is a fixed number of
# queries however many components, incidents or updates there are.


def _public_incidents() -> QuerySet[Incident]:
    """Published incidents with everything a card on a public page shows: the
    timeline (newest first), the components an operator named and the shard impact
    windows with their shards and components. Four queries when evaluated."""
    return Incident.objects.filter(published=True).prefetch_related(
        Prefetch("updates", queryset=IncidentUpdate.objects.order_by("-display_at", "-id")),
        Prefetch(
            "affected_components", queryset=IncidentComponent.objects.select_related("component")
        ),
        Prefetch(
            "shard_impacts",
            queryset=ShardImpact.objects.select_related("shard__component").order_by(
                "starts_at", "id"
            ),
        ),
    )


def public_incident(*, incident_id: int) -> Incident:
    """One published incident for its public page (raises Incident.DoesNotExist
    for drafts and unknown ids). Four queries."""
    return _public_incidents().get(pk=incident_id)


def postmortem_published(incident: Incident, *, now: datetime) -> bool:
    """Its postmortem is public: written, and stamped published by ``now``."""
    stamped = incident.postmortem_published_at
    return bool(incident.postmortem.strip()) and stamped is not None and stamped <= now


def public_follow_ups(*, incident: Incident, now: datetime) -> list[FollowUp]:
    """The improvements an incident led to, oldest first, once its postmortem is
    published; none before (and no query). One query."""
    if not postmortem_published(incident, now=now):
        return []
    return list(FollowUp.objects.filter(incident=incident).order_by("created_at", "id"))


def quarter_of(value: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar quarter ``value`` is in: [its first instant, the next's)."""
    value = value.astimezone(UTC)
    first_month = (value.month - 1) // 3 * 3 + 1
    start = datetime(value.year, first_month, 1, tzinfo=UTC)
    year, month = divmod(first_month - 1 + 3, 12)
    return start, datetime(value.year + year, month + 1, 1, tzinfo=UTC)


def resolve_seconds(
    *, started_at: datetime, first_window_at: datetime | None, resolved_at: datetime
) -> int:
    """Time to resolve, as /reliability/ counts it: from impact start (the incident's
    start or its first impact window, whichever was earlier) to its resolution, in
    whole seconds (each instant cut to its second)."""
    start = min(started_at, first_window_at or started_at)
    return span_seconds(start, resolved_at, as_of=resolved_at)


@dataclass(frozen=True)
class QuarterResolve:
    """The median time to resolve of a UTC quarter's resolved incidents."""

    start: datetime  # the quarter's first instant
    incidents: int
    median_seconds: float | None

    @property
    def label(self) -> str:
        return f"Q{(self.start.month - 1) // 3 + 1} {self.start.year}"


def quarter_resolve_median(*, at: datetime) -> QuarterResolve:
    """Of the published incidents (maintenance aside) that started in the UTC quarter
    of ``at`` and are resolved: how many, and the median of their times to resolve
    (``resolve_seconds``; the mean of the middle two for an even count). One query."""
    start, end = quarter_of(at)
    first_window = (
        ShardImpact.objects.filter(incident=OuterRef("pk"))
        .order_by()
        .values("incident")
        .annotate(m=Min("starts_at"))
        .values("m")
    )
    rows = (
        Incident.objects.filter(
            published=True,
            kind=Incident.Kind.INCIDENT,
            started_at__gte=start,
            started_at__lt=end,
            resolved_at__isnull=False,
        )
        .annotate(first_window_at=Subquery(first_window))
        .order_by()
        .values_list("started_at", "first_window_at", "resolved_at")
    )
    seconds = sorted(
        resolve_seconds(
            started_at=started_at,
            first_window_at=_aware_or_none(first_window_at),
            resolved_at=resolved_at,
        )
        for started_at, first_window_at, resolved_at in rows
        if resolved_at is not None  # the filter's promise, for the type checker
    )
    if not seconds:
        return QuarterResolve(start=start, incidents=0, median_seconds=None)
    middle = len(seconds) // 2
    median = (
        float(seconds[middle]) if len(seconds) % 2 else (seconds[middle - 1] + seconds[middle]) / 2
    )
    return QuarterResolve(start=start, incidents=len(seconds), median_seconds=median)


def status_page_incidents(*, now: datetime, recent_days: int = 14) -> list[Incident]:
    """Published incidents and maintenance that are not closed (open incidents,
    maintenance in progress or upcoming) plus those that started in the last
    ``recent_days``, newest first. Four queries."""
    return list(
        _public_incidents().filter(
            Q(resolved_at__isnull=True) | Q(started_at__gte=now - timedelta(days=recent_days))
        )
    )


def history_incidents(
    *, start: datetime, end: datetime, component: Component | None = None
) -> list[Incident]:
    """Published incidents that started in [start, end), newest first, optionally
    only those that touched ``component`` (named by an operator, or through an
    impact window on one of its shards). Four queries."""
    incidents = _public_incidents().filter(started_at__gte=start, started_at__lt=end)
    if component is not None:
        incidents = incidents.filter(
            Exists(IncidentComponent.objects.filter(incident=OuterRef("pk"), component=component))
            | Exists(
                ShardImpact.objects.filter(incident=OuterRef("pk"), shard__component=component)
            )
        )
    return list(incidents)


def oldest_published_incident_start() -> datetime | None:
    """When the oldest published incident started (how far back history goes)."""
    return Incident.objects.filter(published=True).aggregate(first=Min("started_at"))["first"]


def public_updates(*, limit: int = 50) -> list[IncidentUpdate]:
    """The latest updates of published incidents, newest first, each with its
    incident (for feeds). One query."""
    return list(
        IncidentUpdate.objects.filter(incident__published=True)
        .select_related("incident")
        .order_by("-display_at", "-id")[:limit]
    )


_WORST_PER_TAILNET_SQL = """
    SELECT incident_id, worst, COUNT(*) FROM (
        SELECT incident_id, tailnet_id, MAX({rank}) AS worst
        FROM {table}
        WHERE incident_id IN ({ids})
        GROUP BY incident_id, tailnet_id
    ) per_tailnet
    GROUP BY incident_id, worst
"""


# "Existed during the window [s, e)" is "created before e, less those deleted by s" (a
# tailnet deleted by s was created before it). Both counts for every window in one pass
# over the tailnets: each window's bounds are sorted in among the creation (deletion)
# times, and a running sum counts what precedes them (ties: a creation at e is not
# before it, a deletion at s is). Counting per window instead (an index range scan of
# up to every tailnet each) cost a year's report at 1M tailnets 42-48 s for its 463
# windows, and about an hour with parallel workers (bench/reliability.py).
_EXISTED_SQL = """
WITH windows (k, s, e) AS (VALUES {windows}),
born AS (
    SELECT k, SUM(n) OVER (ORDER BY at, n ROWS UNBOUNDED PRECEDING) AS before
    FROM (
        SELECT created_at AS at, 1 AS n, CAST(NULL AS BIGINT) AS k FROM {table}
        UNION ALL SELECT e, 0, k FROM windows
    ) marks
),
gone AS (
    SELECT k, SUM(n) OVER (ORDER BY at, n DESC ROWS UNBOUNDED PRECEDING) AS before
    FROM (
        SELECT deleted_at AS at, 1 AS n, CAST(NULL AS BIGINT) AS k
        FROM {table} WHERE deleted_at IS NOT NULL
        UNION ALL SELECT s, 0, k FROM windows
    ) marks
)
SELECT born.k, born.before - gone.before
FROM born JOIN gone ON gone.k = born.k
WHERE born.k IS NOT NULL
"""


def incidents_blast_radius(
    *, incidents: Sequence[Incident], as_of: datetime | None = None
) -> dict[int, BlastRadius]:
    """Each incident's affected tailnets (each once, at its worst level) out of the
    tailnets that existed during its window: created before the window ended
    (``impact.incident_window_end``) and not deleted by the time it started (its
    start or its first impact window's, whichever is earlier). Three queries however
    many incidents (none for none); the counts are aggregated in the database."""
    as_of = as_of or timezone.now()
    if not incidents:
        return {}
    ids = [incident.pk for incident in incidents]
    window_ends: dict[int, list[datetime | None]] = {pk: [] for pk in ids}
    starts = {incident.pk: incident.started_at for incident in incidents}
    for incident_id, starts_at, ends_at in (
        ShardImpact.objects.filter(incident_id__in=ids)
        .order_by()
        .values_list("incident_id", "starts_at", "ends_at")
    ):
        window_ends[incident_id].append(ends_at)
        starts[incident_id] = min(starts[incident_id], starts_at)
    ends = {
        incident.pk: incident_window_end(
            resolved_at=incident.resolved_at, window_ends=window_ends[incident.pk], as_of=as_of
        )
        for incident in incidents
    }
    by_level: dict[int, dict[str, int]] = {pk: {} for pk in ids}
    with connection.cursor() as cursor:
        cursor.execute(
            _WORST_PER_TAILNET_SQL.format(
                rank=levels.sql_rank("level"),
                table=TailnetImpact._meta.db_table,
                ids=", ".join(["%s"] * len(ids)),
            ),
            ids,
        )
        for incident_id, rank, count in cursor.fetchall():
            level = levels.BY_RANK[rank]
            if level is not None:  # rank 0: no level the services would have written
                by_level[incident_id][level] = count
    spans = {pk: (starts[pk], ends[pk]) for pk in ids}
    distinct = sorted(set(spans.values()))
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _EXISTED_SQL.format(
                windows=", ".join(["(%s, %s, %s)"] * len(distinct)),
                table=Tailnet._meta.db_table,
            ),
            [v for k, (start, end) in enumerate(distinct) for v in (k, adapt(start), adapt(end))],
        )
        existed = dict(cursor.fetchall())
    totals = {span: int(existed.get(k) or 0) for k, span in enumerate(distinct)}
    return {
        pk: BlastRadius(
            affected=sum(by_level[pk].values()), total=totals[spans[pk]], by_level=by_level[pk]
        )
        for pk in ids
    }


@dataclass(frozen=True)
class DayIncident:
    """An incident as a day of an uptime bar lists it."""

    pk: int
    title: str
    kind: str
    level: str | None  # the worst shard impact level of that component that day


def components_day_incidents(
    *, first_day: date, last_day: date, now: datetime | None = None
) -> dict[int, dict[date, list[DayIncident]]]:
    """Per component, per UTC day: the published incidents that touched it that day,
    oldest first. A component is touched on the days its shards had impact windows
    of the incident, and on every day of an incident that names it. Two queries."""
    now = now or timezone.now()
    start, end = _day_bounds(first_day, last_day)
    # (component, day) -> incident pk -> (started_at, title, kind, level)
    found: dict[tuple[int, date], dict[int, tuple[datetime, str, str, str | None]]] = {}

    def mark(
        component_id: int,
        span: tuple[datetime, datetime | None],
        incident: tuple[int, datetime, str, str],
        level: str | None,
    ) -> None:
        span_start = _aware(span[0])
        s, e = max(span_start, start), min(_aware_or_none(span[1]) or now, end)
        if e < s or (e == s and s != span_start):
            return  # outside the days shown (an instant-long incident still counts)
        last = (e - timedelta(microseconds=1)).date() if e > s else s.date()
        day = s.date()
        pk, started_at, title, kind = incident
        while day <= last:
            entries = found.setdefault((component_id, day), {})
            known = entries.get(pk)
            known_level = known[3] if known else None
            entries[pk] = (started_at, title, kind, levels.worst([known_level, level]))
            day += timedelta(days=1)

    for pk, title, kind, started_at, component_id, s, e, level in (
        ShardImpact.objects.filter(incident__published=True, starts_at__lt=end)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=start))
        .values_list(
            "incident_id",
            "incident__title",
            "incident__kind",
            "incident__started_at",
            "shard__component_id",
            "starts_at",
            "ends_at",
            "level",
        )
    ):
        mark(component_id, (s, e), (pk, _aware(started_at), title, kind), level)
    for pk, title, kind, started_at, resolved_at, component_id in (
        IncidentComponent.objects.filter(
            incident__published=True, incident__started_at__lt=min(end, now)
        )
        .filter(Q(incident__resolved_at__isnull=True) | Q(incident__resolved_at__gte=start))
        .values_list(
            "incident_id",
            "incident__title",
            "incident__kind",
            "incident__started_at",
            "incident__resolved_at",
            "component_id",
        )
    ):
        mark(component_id, (started_at, resolved_at), (pk, _aware(started_at), title, kind), None)
    result: dict[int, dict[date, list[DayIncident]]] = {}
    for (component_id, day), entries in found.items():
        result.setdefault(component_id, {})[day] = [
            DayIncident(pk=pk, title=title, kind=kind, level=level)
            for pk, (_, title, kind, level) in sorted(
                entries.items(), key=lambda item: (item[1][0], item[0])
            )
        ]
    return result
