"""The affected-tailnet computation: placements overlapping an incident's shard
impact windows, clipped to the overlap, in one INSERT … SELECT."""

from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from .. import signals, tasks
from ..models import (
    Incident,
    ShardImpact,
)


def tailnet_impacts_queue(*, incident_ids: Iterable[int]) -> int:
    """Ask for a rebuild of these incidents' affected tailnets although nothing they
    show changed (an operator's "recompute"). Returns how many were queued."""
    ids = sorted(set(incident_ids))
    if ids:
        with transaction.atomic():
            Incident.objects.filter(pk__in=ids).update(impacts_changed_at=timezone.now())
            tasks.enqueue_recompute(ids)
    return len(ids)


# Placements overlapping each impact window of the incident, clipped to the overlap.
# On PostgreSQL the range expression is exactly the one of the GiST index
# placement_shard_during (migration 0002), so the join is an index scan; LEAST and
# GREATEST ignore NULLs there, so an open end only stays open if both are open.
# ``seconds`` cuts each instant to its whole second first, as ``uptime.epoch_second``
# does: the rule every figure counts by.
_RECOMPUTE_SQL = {
    "postgresql": """
        INSERT INTO incidents_tailnetimpact
            (incident_id, shard_impact_id, tailnet_id, shard_id, level, starts_at, ends_at, seconds)
        SELECT si.incident_id, si.id, p.tailnet_id, si.shard_id, si.level,
               GREATEST(p.starts_at, si.starts_at),
               LEAST(p.ends_at, si.ends_at),
               GREATEST(0, EXTRACT(EPOCH FROM
                   date_trunc('second', COALESCE(LEAST(p.ends_at, si.ends_at), %(as_of)s))
                   - date_trunc('second', GREATEST(p.starts_at, si.starts_at))))::bigint
        FROM incidents_shardimpact si
        JOIN incidents_placement p
          ON p.shard_id = si.shard_id
         AND tstzrange(p.starts_at, p.ends_at) && tstzrange(si.starts_at, si.ends_at)
        WHERE si.incident_id = %(incident)s
    """,
    # SQLite: datetimes are ISO text, so they compare in order; MAX/MIN of two
    # values return NULL if either is NULL, hence the explicit CASEs.
    # django_timestamp_diff is registered by Django on every SQLite connection.
    "sqlite": """
        INSERT INTO incidents_tailnetimpact
            (incident_id, shard_impact_id, tailnet_id, shard_id, level, starts_at, ends_at, seconds)
        SELECT incident_id, shard_impact_id, tailnet_id, shard_id, level, s, e,
               MAX(0, django_timestamp_diff(
                   substr(COALESCE(e, %(as_of)s), 1, 19), substr(s, 1, 19)) / 1000000)
        FROM (
            SELECT si.incident_id, si.id AS shard_impact_id, p.tailnet_id, si.shard_id, si.level,
                   MAX(p.starts_at, si.starts_at) AS s,
                   CASE WHEN p.ends_at IS NULL THEN si.ends_at
                        WHEN si.ends_at IS NULL THEN p.ends_at
                        ELSE MIN(p.ends_at, si.ends_at) END AS e
            FROM incidents_shardimpact si
            JOIN incidents_placement p
              ON p.shard_id = si.shard_id
             AND (si.ends_at IS NULL OR p.starts_at < si.ends_at)
             AND (p.ends_at IS NULL OR si.starts_at < p.ends_at)
            WHERE si.incident_id = %(incident)s
        )
    """,
}


def tailnet_impacts_recompute(
    *, incident_id: int, as_of: datetime | None = None, only_if_stale: bool = False
) -> int:
    """Rebuild the TailnetImpact rows of one incident from its windows and the
    placements, in the database, in one transaction. Idempotent: running it twice
    gives the same rows. Ongoing overlaps are counted up to ``as_of`` (now), so
    rerunning it while a window is open makes the rows grow. With ``only_if_stale``
    it does nothing if no window or placement changed since the last rebuild.
    Returns the row count (0 when skipped).
    """
    as_of = as_of or timezone.now()
    sql = _RECOMPUTE_SQL.get(connection.vendor)
    if sql is None:
        raise NotImplementedError(f"No recompute query for database {connection.vendor!r}.")
    with transaction.atomic():
        # Serialises concurrent rebuilds of one incident: two DELETE+INSERT pairs
        # interleaving under READ COMMITTED would otherwise leave duplicates.
        locked = Incident.objects.select_for_update().filter(pk=incident_id).first()
        if locked is None:
            return 0
        if (
            only_if_stale
            and locked.impacts_computed_at is not None
            and locked.impacts_computed_at >= locked.impacts_changed_at
        ):
            return 0
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM incidents_tailnetimpact WHERE incident_id = %s", [incident_id]
            )
            cursor.execute(
                sql,
                {"incident": incident_id, "as_of": connection.ops.adapt_datetimefield_value(as_of)},
            )
            rows = cursor.rowcount
        Incident.objects.filter(pk=incident_id).update(impacts_computed_at=as_of)
        signals.impacts_rebuilt.send(sender=None, incident_id=incident_id)
        if locked.published:
            # Who was affected is on the public pages; a bulk INSERT sends no signals.
            signals.announce_published()
    return rows


def incidents_needing_recompute() -> list[int]:
    """Incidents whose affected tailnets are stale: a window is still open (its rows
    grow), or windows/placements changed after the last rebuild (e.g. the broker
    was down when the change was made)."""
    open_windows = ShardImpact.objects.filter(ends_at__isnull=True).values("incident_id")
    return list(
        Incident.objects.filter(
            Q(pk__in=open_windows)
            | Q(impacts_computed_at__isnull=True, shard_impacts__isnull=False)
            | Q(impacts_computed_at__lt=F("impacts_changed_at"))
        )
        .values_list("pk", flat=True)
        .distinct()
        .order_by("pk")
    )
