"""Everything that writes incidents, impact windows and placements.

Each service runs in one transaction and raises ``ValidationError`` with a message
naming the problem before writing anything, so bad input never half-writes.
"""

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import signals, tasks
from .models import (
    CLOSED_STATUSES,
    INCIDENT_STATUSES,
    MAINTENANCE_STATUSES,
    Component,
    ComponentStatus,
    ImpactLevel,
    Incident,
    IncidentComponent,
    IncidentImpact,
    IncidentKind,
    IncidentSource,
    IncidentUpdate,
    Placement,
    Shard,
    ShardImpact,
    Tailnet,
)

User = AbstractBaseUser | AnonymousUser | None


def _require_aware(**values: datetime | None) -> None:
    for name, value in values.items():
        if value is not None and timezone.is_naive(value):
            raise ValidationError(f"{name} must be a timezone-aware datetime, got {value}.")


def _shard(shard: Shard | str) -> Shard:
    if isinstance(shard, Shard):
        return shard
    try:
        return Shard.objects.get(slug=shard)
    except Shard.DoesNotExist:
        raise ValidationError(f"Unknown shard {shard!r}.") from None


def _user_or_none(by: User) -> Any:
    return by if by is not None and by.is_authenticated else None


# --- Tailnets and placements -----------------------------------------------------------


def tailnet_create(
    *, slug: str, display_name: str, shard: Shard | str, at: datetime | None = None
) -> Tailnet:
    """A new tailnet, placed on ``shard`` from ``at`` (default now)."""
    at = at or timezone.now()
    _require_aware(at=at)
    target = _shard(shard)
    tailnet = Tailnet(slug=slug, display_name=display_name, created_at=at)
    tailnet.full_clean()
    with transaction.atomic():
        tailnet.save()
        Placement.objects.create(tailnet=tailnet, shard=target, starts_at=at)
        _placements_changed(shards=[target.pk], at=at)
    return tailnet


def placement_migrate(*, tailnet: Tailnet, to_shard: Shard | str, at: datetime) -> Placement:
    """Live-migrate a tailnet: close its current placement at ``at`` and open the
    next one on ``to_shard`` at the same instant, in one transaction."""
    _require_aware(at=at)
    target = _shard(to_shard)
    with transaction.atomic():
        # Serialises concurrent migrations of one tailnet (on SQLite the IMMEDIATE
        # transaction already does).
        Tailnet.objects.select_for_update().filter(pk=tailnet.pk).first()
        current = Placement.objects.filter(tailnet=tailnet, ends_at__isnull=True).first()
        if current is None:
            raise ValidationError(f"Tailnet {tailnet.slug!r} has no current placement to move.")
        if current.shard_id == target.pk:
            raise ValidationError(
                f"Tailnet {tailnet.slug!r} is already on shard {target.slug!r}; nothing to migrate."
            )
        if not target.active:
            raise ValidationError(f"Shard {target.slug!r} is not active.")
        if at <= current.starts_at:
            raise ValidationError(
                f"Migration at {at:%Y-%m-%d %H:%M:%S} is not after the current placement "
                f"began ({current.starts_at:%Y-%m-%d %H:%M:%S}); placements cannot overlap."
            )
        current.ends_at = at
        current.save(update_fields=["ends_at"])
        placement = Placement.objects.create(tailnet=tailnet, shard=target, starts_at=at)
        _placements_changed(shards=[current.shard_id, target.pk], at=at)
    return placement


def placement_add(
    *, tailnet: Tailnet, shard: Shard | str, starts_at: datetime, ends_at: datetime | None
) -> Placement:
    """Record a placement directly (imports, corrections). Refuses overlaps."""
    _require_aware(starts_at=starts_at, ends_at=ends_at)
    target = _shard(shard)
    if ends_at is not None and ends_at <= starts_at:
        raise ValidationError("A placement must end after it starts.")
    with transaction.atomic():
        Tailnet.objects.select_for_update().filter(pk=tailnet.pk).first()
        clash = _overlapping(
            Placement.objects.filter(tailnet=tailnet), starts_at=starts_at, ends_at=ends_at
        ).first()
        if clash is not None:
            raise ValidationError(
                f"Tailnet {tailnet.slug!r} is already placed on shard {clash.shard_id} "
                f"from {clash.starts_at:%Y-%m-%d %H:%M:%S}; placements cannot overlap."
            )
        placement = Placement.objects.create(
            tailnet=tailnet, shard=target, starts_at=starts_at, ends_at=ends_at
        )
        _placements_changed(shards=[target.pk], at=starts_at)
    return placement


def _overlapping(queryset: Any, *, starts_at: datetime, ends_at: datetime | None) -> Any:
    """Rows of ``queryset`` whose [starts_at, ends_at) overlaps the given window."""
    queryset = queryset.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=starts_at))
    if ends_at is not None:
        queryset = queryset.filter(starts_at__lt=ends_at)
    return queryset


def _placements_changed(*, shards: Sequence[int], at: datetime) -> None:
    """Placements changed on ``shards`` from ``at`` on: incidents whose windows on
    those shards reach past ``at`` must recompute (moving tailnets off a failing
    shard is the usual fix, so this is the common case, not an edge)."""
    incident_ids = list(
        ShardImpact.objects.filter(shard_id__in=shards)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at))
        .values_list("incident_id", flat=True)
        .distinct()
    )
    _impacts_changed(incident_ids)


def _impacts_changed(incident_ids: Iterable[int]) -> None:
    ids = sorted(set(incident_ids))
    if not ids:
        return
    now = timezone.now()
    Incident.objects.filter(pk__in=ids).update(impacts_changed_at=now, updated_at=now)
    tasks.enqueue_recompute(ids)


# --- Incidents -------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowSpec:
    """An impact window as given to a service."""

    shard: Shard | str
    level: str
    starts_at: datetime
    ends_at: datetime | None = None


def incident_create(
    *,
    title: str,
    body: str,
    kind: str = IncidentKind.INCIDENT,
    status: str | None = None,
    impact: str | None = None,
    started_at: datetime | None = None,
    detected_at: datetime | None = None,
    scheduled_for: datetime | None = None,
    scheduled_until: datetime | None = None,
    components: Mapping[Component, str] | None = None,
    shard_impacts: Sequence[WindowSpec] = (),
    published: bool = False,
    source: str = IncidentSource.MANUAL,
    by: User = None,
    at: datetime | None = None,
) -> Incident:
    """Open an incident (or schedule a maintenance) with its first update, the
    components it affects and its shard impact windows."""
    now = at or timezone.now()
    if status is None:
        status = "scheduled" if kind == IncidentKind.MAINTENANCE else "investigating"
    if impact is None:  # Statuspage's defaults
        impact = IncidentImpact.MAINTENANCE if kind == IncidentKind.MAINTENANCE else "minor"
    if started_at is None:
        started_at = scheduled_for if kind == IncidentKind.MAINTENANCE and scheduled_for else now
    _require_aware(
        started_at=started_at,
        detected_at=detected_at,
        scheduled_for=scheduled_for,
        scheduled_until=scheduled_until,
        at=now,
    )
    if not title.strip():
        raise ValidationError("An incident needs a title.")
    if not body.strip():
        raise ValidationError("The first update needs a body: say what is happening.")
    _check_status(kind, status)
    components = dict(components or {})
    _check_component_statuses(components)
    incident = Incident(
        title=title.strip(),
        kind=kind,
        status=status,
        impact=impact,
        source=source,
        published=published,
        published_at=now if published else None,
        started_at=started_at,
        detected_at=detected_at,
        resolved_at=now if status in CLOSED_STATUSES else None,
        scheduled_for=scheduled_for,
        scheduled_until=scheduled_until,
        created_by=_user_or_none(by),
        created_at=now,
        updated_at=now,
        impacts_changed_at=now,
    )
    incident.full_clean()
    windows = [_clean_window(spec) for spec in shard_impacts]
    _check_no_overlap(windows)
    with transaction.atomic():
        incident.save()
        IncidentComponent.objects.bulk_create(
            IncidentComponent(incident=incident, component=component, status=component_status)
            for component, component_status in components.items()
        )
        ShardImpact.objects.bulk_create(
            ShardImpact(
                incident=incident,
                shard=window.shard,
                level=window.level,
                starts_at=window.starts_at,
                ends_at=window.ends_at,
            )
            for window in windows
        )
        IncidentUpdate.objects.create(
            incident=incident,
            status=status,
            body=body,
            affected_components=[
                _component_change(component, ComponentStatus.OPERATIONAL, component_status)
                for component, component_status in components.items()
            ],
            created_by=_user_or_none(by),
            created_at=now,
            display_at=now,
        )
        if windows:
            tasks.enqueue_recompute([incident.pk])
    return incident


def incident_post_update(
    *,
    incident: Incident,
    status: str,
    body: str,
    components: Mapping[Component, str] | None = None,
    by: User = None,
    at: datetime | None = None,
) -> IncidentUpdate:
    """Add a timeline entry; it may change the status and the components' statuses.
    Closing the incident (resolved/completed) closes its open impact windows."""
    now = at or timezone.now()
    _require_aware(at=now)
    if not body.strip():
        raise ValidationError("An update needs a body: say what changed.")
    _check_status(incident.kind, status)
    components = dict(components or {})
    _check_component_statuses(components)
    closing = status in CLOSED_STATUSES
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident.pk)
        if closing and now < incident.started_at:
            raise ValidationError("An incident cannot be resolved before it started.")
        current = {ic.component_id: ic for ic in incident.affected_components.all()}
        changes = []
        for component, new_status in components.items():
            link = current.get(component.pk)
            old_status = link.status if link else ComponentStatus.OPERATIONAL
            if link is None:
                IncidentComponent.objects.create(
                    incident=incident, component=component, status=new_status
                )
            elif link.status != new_status:
                link.status = new_status
                link.save(update_fields=["status"])
            changes.append(_component_change(component, old_status, new_status))
        update = IncidentUpdate.objects.create(
            incident=incident,
            status=status,
            body=body,
            affected_components=changes,
            created_by=_user_or_none(by),
            created_at=now,
            display_at=now,
        )
        fields = ["status", "updated_at"]
        incident.status = status
        incident.updated_at = now
        if closing and incident.resolved_at is None:
            incident.resolved_at = now
            fields.append("resolved_at")
            open_windows = incident.shard_impacts.filter(ends_at__isnull=True)
            late = open_windows.filter(starts_at__gte=now).select_related("shard").first()
            if late is not None:
                raise ValidationError(
                    f"The {late.level} window on shard {late.shard.slug!r} starts at "
                    f"{late.starts_at:%Y-%m-%d %H:%M:%S}, after this resolution; "
                    "end or remove it first."
                )
            if open_windows.update(ends_at=now):
                _impacts_changed([incident.pk])
        elif not closing and incident.resolved_at is not None:
            incident.resolved_at = None  # reopened
            fields.append("resolved_at")
        incident.save(update_fields=fields)
    return update


def incident_publish(
    *, incident: Incident, by: User = None, at: datetime | None = None
) -> Incident:
    now = at or timezone.now()
    if incident.published:
        return incident
    incident.published = True
    incident.published_at = now
    incident.updated_at = now
    incident.save(update_fields=["published", "published_at", "updated_at"])
    return incident


def shard_impact_add(
    *,
    incident: Incident,
    shard: Shard | str,
    level: str,
    starts_at: datetime,
    ends_at: datetime | None = None,
) -> ShardImpact:
    """Record that ``shard`` was hit at ``level`` during [starts_at, ends_at)."""
    window = _clean_window(WindowSpec(shard, level, starts_at, ends_at))
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if locked.resolved_at is not None and (
            window.ends_at is None or window.ends_at > locked.resolved_at
        ):
            raise ValidationError(
                "This incident is resolved: a window on it must end by its resolution "
                f"({locked.resolved_at:%Y-%m-%d %H:%M:%S})."
            )
        existing = [
            _Window(w.shard, w.level, w.starts_at, w.ends_at)
            for w in incident.shard_impacts.filter(shard=window.shard)
        ]
        _check_no_overlap([*existing, window])
        impact = ShardImpact.objects.create(
            incident=incident,
            shard=window.shard,
            level=window.level,
            starts_at=window.starts_at,
            ends_at=window.ends_at,
        )
        _impacts_changed([incident.pk])
    return impact


def shard_impact_close(*, impact: ShardImpact, at: datetime) -> ShardImpact:
    _require_aware(at=at)
    if impact.ends_at is not None:
        raise ValidationError(
            f"The {impact.level} window on shard {impact.shard.slug!r} is already closed."
        )
    if at <= impact.starts_at:
        raise ValidationError("An impact window must end after it starts.")
    with transaction.atomic():
        impact.ends_at = at
        impact.save(update_fields=["ends_at"])
        _impacts_changed([impact.incident_id])
    return impact


def shard_impact_change_level(*, impact: ShardImpact, level: str, at: datetime) -> ShardImpact:
    """A level change closes the open window at ``at`` and opens the next one there,
    so every second is counted at the level it really had."""
    if level not in ImpactLevel.values:
        raise ValidationError(f"Unknown impact level {level!r}; use one of {ImpactLevel.values}.")
    if level == impact.level:
        return impact
    with transaction.atomic():
        shard_impact_close(impact=impact, at=at)
        return ShardImpact.objects.create(
            incident_id=impact.incident_id, shard_id=impact.shard_id, level=level, starts_at=at
        )


@dataclass(frozen=True)
class _Window:
    shard: Shard
    level: str
    starts_at: datetime
    ends_at: datetime | None


def _clean_window(spec: WindowSpec) -> _Window:
    shard = _shard(spec.shard)
    _require_aware(starts_at=spec.starts_at, ends_at=spec.ends_at)
    if spec.level not in ImpactLevel.values:
        raise ValidationError(
            f"Unknown impact level {spec.level!r} on shard {shard.slug!r}; "
            f"use one of {', '.join(ImpactLevel.values)}."
        )
    if spec.ends_at is not None and spec.ends_at <= spec.starts_at:
        raise ValidationError(
            f"The impact window on shard {shard.slug!r} ends ({spec.ends_at:%Y-%m-%d %H:%M:%S}) "
            f"before it starts ({spec.starts_at:%Y-%m-%d %H:%M:%S})."
        )
    return _Window(shard, spec.level, spec.starts_at, spec.ends_at)


def _check_no_overlap(windows: Sequence[_Window]) -> None:
    by_shard: dict[int, list[_Window]] = {}
    for window in windows:
        by_shard.setdefault(window.shard.pk, []).append(window)
    for shard_windows in by_shard.values():
        shard_windows.sort(key=lambda w: w.starts_at)
        for before, after in itertools.pairwise(shard_windows):
            if before.ends_at is None or before.ends_at > after.starts_at:
                raise ValidationError(
                    f"Impact windows on shard {after.shard.slug!r} overlap "
                    f"(one from {before.starts_at:%H:%M:%S}, one from {after.starts_at:%H:%M:%S});"
                    " change the level by closing one window where the next begins."
                )


def _check_status(kind: str, status: str) -> None:
    allowed = MAINTENANCE_STATUSES if kind == IncidentKind.MAINTENANCE else INCIDENT_STATUSES
    if kind not in IncidentKind.values:
        raise ValidationError(f"Unknown kind {kind!r}; use incident or maintenance.")
    if status not in allowed:
        raise ValidationError(
            f"Status {status!r} is not valid for {kind}; use one of {', '.join(allowed)}."
        )


def _check_component_statuses(components: Mapping[Component, str]) -> None:
    for component, component_status in components.items():
        if component_status not in ComponentStatus.values:
            raise ValidationError(
                f"Unknown status {component_status!r} for component {component.name!r}; "
                f"use one of {', '.join(ComponentStatus.values)}."
            )


def _component_change(component: Component, old: str, new: str) -> dict[str, str]:
    return {"code": component.slug, "name": component.name, "old_status": old, "new_status": new}


# --- The affected-tailnet computation ---------------------------------------------------

# Placements overlapping each impact window of the incident, clipped to the overlap.
# On PostgreSQL the range expression is exactly the one of the GiST index
# placement_shard_during (migration 0002), so the join is an index scan; LEAST and
# GREATEST ignore NULLs there, so an open end only stays open if both are open.
_RECOMPUTE_SQL = {
    "postgresql": """
        INSERT INTO incidents_tailnetimpact
            (incident_id, shard_impact_id, tailnet_id, shard_id, level, starts_at, ends_at, seconds)
        SELECT si.incident_id, si.id, p.tailnet_id, si.shard_id, si.level,
               GREATEST(p.starts_at, si.starts_at),
               LEAST(p.ends_at, si.ends_at),
               GREATEST(0, FLOOR(EXTRACT(EPOCH FROM
                   COALESCE(LEAST(p.ends_at, si.ends_at), %(as_of)s)
                   - GREATEST(p.starts_at, si.starts_at))))::bigint
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
               MAX(0, django_timestamp_diff(COALESCE(e, %(as_of)s), s) / 1000000)
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
        transaction.on_commit(
            lambda: signals.impacts_rebuilt.send(sender=Incident, incident_id=incident_id)
        )
        if locked.published:
            # Blast radius is on the public pages; a bulk INSERT sends no signals.
            from .snapshot import request_rebuild

            request_rebuild()
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
