"""The reliability report's reads: a fixed number of queries whatever the number of
incidents or tailnets (nine, seven with the ended months cached, two when the whole
report is).

Per incident, the database aggregates its impact windows and updates; per month, it
sums tailnet-seconds (placements, and affected-tailnet rows each second once at its
worst level) with window functions, so no tailnet ever passes through Python.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from incidents import levels
from incidents.models import (
    FollowUp,
    FollowUpStatus,
    Incident,
    IncidentUpdate,
    MonitoringGap,
    Placement,
    ShardImpact,
    TailnetImpact,
)
from incidents.queries import incidents_blast_radius
from incidents.uptime import Tally, epoch_second
from plumbing.cache import cache_failed
from public.snapshot import published_version

from .report import (
    IncidentTimes,
    MonthFigures,
    incident_figures,
    month_index,
    month_start,
    months_report,
)

logger = logging.getLogger(__name__)

CACHE_SECONDS = 120
ENDED_MONTHS_SECONDS = 3600
_RANK = {level: rank for rank, level in enumerate(levels.BY_RANK)}


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes (stored in UTC); PostgreSQL aware ones.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _sql(vendor: str) -> dict[str, str]:
    """The few spellings that differ: an instant's whole epoch second, max and min."""
    if vendor == "postgresql":
        return {
            "epoch": "CAST(FLOOR(EXTRACT(EPOCH FROM {})) AS BIGINT)",
            "greatest": "GREATEST",
            "least": "LEAST",
            # The owned pieces are few and joined once to many rows: computed once.
            "materialized": "MATERIALIZED",
        }
    return {
        "epoch": "CAST(strftime('%%s', {}) AS INTEGER)",
        "greatest": "MAX",
        "least": "MIN",
        "materialized": "",
    }


def _months_cte(first: int, last: int, stop: int) -> tuple[str, list[int]]:
    """``months(idx, ms, me)``: each month's first and stop second, cut at ``stop``."""
    rows, params = [], []
    for index in range(first, last + 1):
        begin = epoch_second(month_start(index))
        end = min(epoch_second(month_start(index + 1)), stop)
        if end > begin:
            rows.append("(%s, %s, %s)")
            params += [index, begin, end]
    if not rows:
        rows, params = ["(%s, %s, %s)"], [first, 0, 0]
    return f"months (idx, ms, me) AS (VALUES {', '.join(rows)})", params


# Monitoring gaps in the range: seconds no probe region reported on a shard.
_GAPS_CTE = """
gaps AS (
    SELECT g.shard_id AS sh,
           {greatest}({epoch_gap_start}, {lo}) AS s,
           {least}(COALESCE({epoch_gap_end}, {hi}), {hi}) AS e
    FROM {gap} g
    WHERE g.starts_at < %s AND (g.ends_at IS NULL OR g.ends_at > %s)
)"""

# Each tailnet's affected time, per month and level, and the part of it inside a
# monitoring gap of its shard (which is data all the same). An affected-tailnet row is
# a placement clipped to its shard's window, and a tailnet is on one shard at a time;
# so a shard's timeline is cut at every window, gap and month boundary, each piece is
# owned by its worst window (a second counts once, at its worst), and each row adds its
# overlap with the pieces its own window owns. The grouping runs over the shards'
# pieces and the rows' index on their window, never over tailnets.
_LOST_SQL = """
WITH {months}, {gaps},
windows AS (
    SELECT si.id, si.shard_id AS sh, {rank} AS r,
           {greatest}({epoch_start}, {lo}) AS s,
           {least}(COALESCE({epoch_end}, {hi}), {hi}) AS e
    FROM {shardimpact} si JOIN {incident} i ON i.id = si.incident_id
    WHERE i.published = %s AND si.starts_at < %s AND (si.ends_at IS NULL OR si.ends_at > %s)
),
live AS (SELECT id, sh, r, s, e FROM windows WHERE e > s AND r > 0),
cuts AS (
    SELECT sh, s AS at FROM live UNION SELECT sh, e FROM live
    UNION SELECT sh, s FROM gaps UNION SELECT sh, e FROM gaps
    UNION SELECT w.sh, m.ms FROM live w JOIN months m ON w.s < m.ms AND w.e > m.ms
),
pieces AS (
    SELECT sh, at AS s, LEAD(at) OVER (PARTITION BY sh ORDER BY at) AS e FROM cuts
),
ranked AS (
    SELECT w.id AS owner, p.sh, p.s, p.e, w.r,
           ROW_NUMBER() OVER (PARTITION BY p.sh, p.s ORDER BY w.r DESC, w.id) AS n
    FROM pieces p JOIN live w ON w.sh = p.sh AND w.s <= p.s AND w.e >= p.e
    WHERE p.e > p.s
),
owned AS {materialized} (
    SELECT o.owner, o.s, o.e, o.r, m.idx,
           CASE WHEN EXISTS (
               SELECT 1 FROM gaps g WHERE g.sh = o.sh AND g.s <= o.s AND g.e >= o.e
           ) THEN 1 ELSE 0 END AS in_gap
    FROM ranked o JOIN months m ON o.s >= m.ms AND o.s < m.me
    WHERE o.n = 1
),
overlap AS (
    SELECT o.idx, o.in_gap, o.r,
           {least}(COALESCE({epoch_row_end}, {hi}), o.e)
           - {greatest}({epoch_row_start}, o.s) AS secs
    FROM owned o JOIN {tailnetimpact} ti ON ti.shard_impact_id = o.owner
)
SELECT idx, in_gap, r, SUM(secs) FROM overlap WHERE secs > 0 GROUP BY idx, in_gap, r
"""

# Every tailnet's placed seconds per month (k = 0), and those of them in a monitoring
# gap of the shard it was on (k = 1): the T of the uptime rule is the difference.
_PLACED_SQL = """
WITH {months}, {gaps},
placed AS (
    SELECT p.shard_id AS sh, {epoch_start} AS s, COALESCE({epoch_end}, {hi}) AS e
    FROM {placement} p
    WHERE p.starts_at < %s AND (p.ends_at IS NULL OR p.ends_at > %s)
)
SELECT 0, m.idx, SUM({least}(p.e, m.me) - {greatest}(p.s, m.ms))
FROM placed p JOIN months m ON p.s < m.me AND p.e > m.ms
GROUP BY m.idx
UNION ALL
SELECT 1, m.idx, SUM({least}(p.e, g.e, m.me) - {greatest}(p.s, g.s, m.ms))
FROM placed p JOIN gaps g ON g.sh = p.sh AND p.s < g.e AND p.e > g.s
JOIN months m ON p.s < m.me AND p.e > m.ms AND g.s < m.me AND g.e > m.ms
GROUP BY m.idx
"""


def monthly_tallies(*, first: int, last: int, now: datetime) -> dict[int, Tally]:
    """Per month index: tailnet-seconds with data, and those in outage, partial outage
    and degraded performance by published incidents and maintenance. Seconds in a
    monitoring gap of a tailnet's shard have no data unless an impact covers them
    (``incidents.queries.fleet_uptime_tally``'s rule, and the same figures). Two queries."""
    sql = _sql(connection.vendor)
    start, end = month_start(first), min(month_start(last + 1), now)
    if end <= start:
        return {}
    lo, hi = epoch_second(start), epoch_second(end)
    months, month_params = _months_cte(first, last, hi)
    adapt = connection.ops.adapt_datetimefield_value
    epoch = sql["epoch"].format
    bounds = {"lo": lo, "hi": hi, **sql}  # whole numbers computed here, not input
    gaps = _GAPS_CTE.format(
        epoch_gap_start=epoch("g.starts_at"),
        epoch_gap_end=epoch("g.ends_at"),
        gap=MonitoringGap._meta.db_table,
        **bounds,
    )
    in_range = [adapt(end), adapt(start)]
    lost: dict[tuple[int, int], dict[int, int]] = {}
    placed: dict[tuple[int, int], int] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            _LOST_SQL.format(
                months=months,
                gaps=gaps,
                epoch_start=epoch("si.starts_at"),
                epoch_end=epoch("si.ends_at"),
                epoch_row_start=epoch("ti.starts_at"),
                epoch_row_end=epoch("ti.ends_at"),
                rank=levels.sql_rank("si.level"),
                shardimpact=ShardImpact._meta.db_table,
                tailnetimpact=TailnetImpact._meta.db_table,
                incident=Incident._meta.db_table,
                **bounds,
            ),
            [*month_params, *in_range, True, *in_range],
        )
        # Per month: seconds by level (0), and in a monitoring gap by level (1).
        for index, in_gap, rank, seconds in cursor.fetchall():
            by_rank = lost.setdefault((0, index), {})
            by_rank[rank] = by_rank.get(rank, 0) + int(seconds)
            if in_gap:
                in_gaps = lost.setdefault((1, index), {})
                in_gaps[rank] = in_gaps.get(rank, 0) + int(seconds)
        cursor.execute(
            _PLACED_SQL.format(
                months=months,
                gaps=gaps,
                epoch_start=epoch("p.starts_at"),
                epoch_end=epoch("p.ends_at"),
                placement=Placement._meta.db_table,
                **bounds,
            ),
            [*month_params, *in_range, *in_range],
        )
        for kind, index, seconds in cursor.fetchall():
            placed[(kind, index)] = int(seconds or 0)
    tallies = {}
    for index in range(first, last + 1):
        by_rank = lost.get((0, index), {})
        outage = by_rank.get(_RANK["outage"], 0)
        partial = by_rank.get(_RANK["partial"], 0)
        degraded = by_rank.get(_RANK["degraded"], 0)
        with_data = (
            placed.get((0, index), 0)
            - placed.get((1, index), 0)
            + sum(lost.get((1, index), {}).values())
        )
        tallies[index] = Tally(
            total_seconds=max(with_data, outage + partial + degraded),
            outage_seconds=outage,
            partial_seconds=partial,
            degraded_seconds=degraded,
        )
    return tallies


def _follow_ups(status: str) -> Coalesce:
    counted = (
        FollowUp.objects.filter(incident=OuterRef("pk"), status=status)
        .order_by()
        .values("incident")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted), 0)


def counted_incidents(
    *, start: datetime, end: datetime, tailnet_id: int | None = None
) -> list[Incident]:
    """Published incidents that started in [start, end), and published maintenance
    that had impact windows (planned work that hurt no one is not counted), each
    with its windows, updates and follow-ups aggregated (and whether its postmortem
    is published); with ``tailnet_id``, only those that affected that tailnet. One
    query."""
    windows = ShardImpact.objects.filter(incident=OuterRef("pk")).order_by().values("incident")
    updates = IncidentUpdate.objects.filter(incident=OuterRef("pk")).order_by().values("incident")
    has_windows = Exists(ShardImpact.objects.filter(incident=OuterRef("pk")))
    counted = Incident.objects.filter(published=True, started_at__gte=start, started_at__lt=end)
    if tailnet_id is not None:
        counted = counted.filter(
            Exists(TailnetImpact.objects.filter(incident=OuterRef("pk"), tailnet_id=tailnet_id))
        )
    return list(
        counted.filter(Q(kind=Incident.Kind.INCIDENT) | has_windows)
        .annotate(
            has_windows=has_windows,
            open_windows=Exists(
                ShardImpact.objects.filter(incident=OuterRef("pk"), ends_at__isnull=True)
            ),
            first_window_at=Subquery(windows.annotate(m=Min("starts_at")).values("m")),
            last_window_end=Subquery(windows.annotate(m=Max("ends_at")).values("m")),
            first_update_at=Subquery(updates.annotate(m=Min("display_at")).values("m")),
            postmortem_public=ExpressionWrapper(
                Q(postmortem_published_at__isnull=False) & ~Q(postmortem=""),
                output_field=BooleanField(),
            ),
            follow_ups_open=_follow_ups(FollowUpStatus.OPEN),
            follow_ups_done=_follow_ups(FollowUpStatus.DONE),
        )
        .only(
            "id",
            "kind",
            "impact",
            "started_at",
            "detected_at",
            "resolved_at",
            "published_at",
        )
        .order_by("started_at", "id")
    )


def _times(incident: Incident) -> IncidentTimes:
    extra = incident.__dict__
    window_ends: tuple[datetime | None, ...] = ()
    if extra["has_windows"]:
        window_ends = (None,) if extra["open_windows"] else (_aware(extra["last_window_end"]),)
    return IncidentTimes(
        pk=incident.pk,
        kind=incident.kind,
        impact=incident.impact,
        started_at=incident.started_at,
        detected_at=incident.detected_at,
        resolved_at=incident.resolved_at,
        published_at=incident.published_at,
        first_window_at=_aware(extra["first_window_at"]),
        window_ends=window_ends,
        first_update_at=_aware(extra["first_update_at"]),
        # Follow-ups are public once the postmortem is; before, they count nowhere.
        follow_ups_open=extra["follow_ups_open"] if extra["postmortem_public"] else 0,
        follow_ups_done=extra["follow_ups_done"] if extra["postmortem_public"] else 0,
    )


def reliability_report(*, first: int, last: int, now: datetime) -> list[MonthFigures]:
    """The figures of the months ``first`` to ``last`` (indexes), oldest first, as of
    ``now``. Nine queries (incidents, blast radius, published version, tallies of
    the months ended and of the month in progress), seven once the ended are cached."""
    return months_of(
        first=first,
        last=last,
        now=now,
        incidents=counted_incidents(start=month_start(first), end=range_end(last, now)),
        tallies=tallies_with_ended_cached(first=first, last=last, now=now),
    )


def tallies_with_ended_cached(*, first: int, last: int, now: datetime) -> dict[int, Tally]:
    """``monthly_tallies``, with those of the months that have ended cached per version
    of the published data, for ENDED_MONTHS_SECONDS: they no longer change with time,
    and they are most of the cost (seconds at a million tailnets, on every rebuild of
    the snapshot). The month in progress is computed each time. What can still change
    an ended month without a new published version, a late fleet event or a
    correction of old placements, shows within that time."""
    current = month_index(now)
    ended_last = min(last, current - 1)
    tallies: dict[int, Tally] = {}
    if first <= ended_last:
        key = f"reliability:ended:v1:{first}:{ended_last}:{published_version()}"
        ended = _cache_get(key)
        if ended is None:
            ended = monthly_tallies(first=first, last=ended_last, now=now)
            _cache_set(key, ended, ENDED_MONTHS_SECONDS)
        tallies.update(ended)
    if max(first, current) <= last:
        tallies.update(monthly_tallies(first=max(first, current), last=last, now=now))
    return tallies


def _cache_get(key: str) -> Any:
    try:
        return cache.get(key)
    except Exception as error:  # best effort: a cache that is down costs the queries
        cache_failed(logger, "reliability cache: get", error)
        return None


def _cache_set(key: str, value: object, seconds: int) -> None:
    try:
        cache.set(key, value, seconds)
    except Exception as error:
        cache_failed(logger, "reliability cache: set", error)


def range_end(last: int, now: datetime) -> datetime:
    """Where counting stops: the end of the last month, or now. (Not yet started,
    like maintenance scheduled later this month, is not yet counted.)"""
    return min(month_start(last + 1), now)


def months_of(
    *, first: int, last: int, now: datetime, incidents: list[Incident], tallies: dict[int, Tally]
) -> list[MonthFigures]:
    """The month figures of ``counted_incidents`` and the months' tallies (three
    queries: the blast radius of the incidents with windows)."""
    with_windows = [incident for incident in incidents if incident.__dict__["has_windows"]]
    blast = incidents_blast_radius(incidents=with_windows, as_of=now)
    return months_report(
        first=first,
        last=last,
        incidents=[incident_figures(_times(incident), now=now) for incident in incidents],
        blast_percent={pk: Fraction(radius.percent) for pk, radius in blast.items()},
        tallies=tallies,
    )


def report_as_of(now: datetime | None = None) -> datetime:
    """The figures are as of the start of the minute, on the page and in the API alike."""
    return (now or timezone.now()).replace(second=0, microsecond=0)


def cached_reliability_report(
    *, first: int, last: int, now: datetime | None = None
) -> tuple[datetime, list[MonthFigures]]:
    """``reliability_report`` as of the start of the current minute, cached per range,
    minute and version of the published data (a change is seen at once; one query
    when cached). Returns the figures' "as of" with them."""
    as_of = report_as_of(now)
    key = f"reliability:v2:{first}:{last}:{as_of:%Y%m%d%H%M}:{published_version()}"
    report = _cache_get(key)
    if report is None:
        report = reliability_report(first=first, last=last, now=as_of)
        _cache_set(key, report, CACHE_SECONDS)
    return as_of, report
