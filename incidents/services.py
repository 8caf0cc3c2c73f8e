"""Everything that writes incidents, their updates and impact windows, tailnets and
placements — from every door: the admin, the operator API, probe detection, report
triage and management commands.

Each service validates before writing (a ``ValidationError`` naming the problem, by
field where there is one), runs in one transaction, leaves an ``AuditEntry`` saying
who did it (``by``: a user, an ``audit.Actor``, or None for the system), and queues
the affected-tailnet recompute after commit when windows or placements changed.
"""

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from . import signals, tasks
from .audit import By, actor_of, audit_record
from .models import (
    CLOSED_STATUSES,
    Component,
    ComponentStatus,
    ImpactLevel,
    Incident,
    IncidentComponent,
    IncidentImpact,
    IncidentKind,
    IncidentSource,
    IncidentStatus,
    IncidentUpdate,
    Placement,
    Shard,
    ShardImpact,
    Tailnet,
    status_problem,
)


def _require_aware(**values: datetime | None) -> None:
    for name, value in values.items():
        if value is not None and timezone.is_naive(value):
            raise ValidationError(f"{name} must be a timezone-aware datetime, got {value}.")


def _when(value: datetime | None, empty: str = "now") -> str:
    return empty if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _shard(shard: Shard | str) -> Shard:
    if isinstance(shard, Shard):
        return shard
    try:
        return Shard.objects.get(slug=shard)
    except Shard.DoesNotExist:
        raise ValidationError(f"Unknown shard {shard!r}.") from None


def overlapping(queryset: QuerySet[Any], *, starts_at: datetime, ends_at: datetime | None) -> Any:
    """Rows of ``queryset`` whose half-open [starts_at, ends_at) overlaps the given
    window (an empty end is "still going on"): the overlap rule of placements and
    windows in the database, as ``impact.overlap`` is for plain values."""
    queryset = queryset.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=starts_at))
    if ends_at is not None:
        queryset = queryset.filter(starts_at__lt=ends_at)
    return queryset


# --- Tailnets and placements -----------------------------------------------------------
# The fleet's own life (a tailnet created, live-migrated) is not audited here: it
# comes from the fleet. A change an operator makes (``by`` given) is.


def tailnet_create(
    *,
    slug: str,
    display_name: str,
    shard: Shard | str,
    at: datetime | None = None,
    by: By = None,
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
        if by is not None:
            audit_record(
                by=by,
                action="tailnet.create",
                incident_id=None,
                changes={"tailnet": slug, "display_name": display_name, "shard": target, "at": at},
            )
    return tailnet


def tailnet_edit(*, tailnet: Tailnet, display_name: str, by: By = None) -> Tailnet:
    """Rename a tailnet (its slug is its identity and never changes)."""
    old = Tailnet.objects.filter(pk=tailnet.pk).values_list("display_name", flat=True).first()
    if old == display_name:
        return tailnet
    tailnet.display_name = display_name
    tailnet.full_clean(validate_unique=False)
    with transaction.atomic():
        tailnet.save(update_fields=["display_name"])
        if by is not None:
            audit_record(
                by=by,
                action="tailnet.edit",
                incident_id=None,
                changes={"tailnet": tailnet.slug, "display_name": [old, display_name]},
            )
    return tailnet


def placement_migrate(
    *, tailnet: Tailnet, to_shard: Shard | str, at: datetime, by: By = None
) -> Placement:
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
                f"Migration at {_when(at)} is not after the current placement "
                f"began ({_when(current.starts_at)}); placements cannot overlap."
            )
        current.ends_at = at
        current.save(update_fields=["ends_at"])
        placement = Placement.objects.create(tailnet=tailnet, shard=target, starts_at=at)
        _placements_changed(shards=[current.shard_id, target.pk], at=at)
        if by is not None:
            audit_record(
                by=by,
                action="placement.migrate",
                incident_id=None,
                changes={"tailnet": tailnet.slug, "from": current.shard_id, "to": target, "at": at},
            )
    return placement


def _check_placement(
    *,
    tailnet: Tailnet,
    starts_at: datetime,
    ends_at: datetime | None,
    exclude: int | None = None,
) -> None:
    """A tailnet lives on one shard at a time: its placements never overlap (the rule
    of the PostgreSQL exclusion constraint, checked first for a clear error)."""
    _require_aware(starts_at=starts_at, ends_at=ends_at)
    if ends_at is not None and ends_at <= starts_at:
        raise ValidationError({"ends_at": "A placement must end after it starts."})
    others = Placement.objects.filter(tailnet=tailnet).select_related("shard")
    if exclude is not None:
        others = others.exclude(pk=exclude)
    clash = overlapping(others, starts_at=starts_at, ends_at=ends_at).order_by("starts_at").first()
    if clash is not None:
        raise ValidationError(
            f"Tailnet {tailnet.slug!r} is already placed on shard {clash.shard.slug!r} from "
            f"{_when(clash.starts_at)} until {_when(clash.ends_at, 'now (current)')}; a tailnet "
            "lives on one shard at a time, so its placements cannot overlap. End that "
            "placement first, or live-migrate the tailnet."
        )


def placement_add(
    *,
    tailnet: Tailnet,
    shard: Shard | str,
    starts_at: datetime,
    ends_at: datetime | None,
    by: By = None,
) -> Placement:
    """Record a placement directly (imports, corrections). Refuses overlaps."""
    target = _shard(shard)
    with transaction.atomic():
        Tailnet.objects.select_for_update().filter(pk=tailnet.pk).first()
        _check_placement(tailnet=tailnet, starts_at=starts_at, ends_at=ends_at)
        placement = Placement.objects.create(
            tailnet=tailnet, shard=target, starts_at=starts_at, ends_at=ends_at
        )
        _placements_changed(shards=[target.pk], at=starts_at)
        if by is not None:
            audit_record(
                by=by,
                action="placement.add",
                incident_id=None,
                changes=_placement_changes(placement),
            )
    return placement


def placement_update(
    *,
    placement: Placement,
    shard: Shard | str,
    starts_at: datetime,
    ends_at: datetime | None,
    by: By = None,
) -> Placement:
    """Correct a placement's shard or times (it stays its tailnet's). Refuses overlaps;
    incidents on the old and the new shard recompute their affected tailnets."""
    target = _shard(shard)
    with transaction.atomic():
        Tailnet.objects.select_for_update().filter(pk=placement.tailnet_id).first()
        before = Placement.objects.select_related("shard", "tailnet").get(pk=placement.pk)
        _check_placement(
            tailnet=before.tailnet, starts_at=starts_at, ends_at=ends_at, exclude=placement.pk
        )
        placement.shard, placement.starts_at, placement.ends_at = target, starts_at, ends_at
        placement.save(update_fields=["shard", "starts_at", "ends_at"])
        _placements_changed(
            shards=sorted({before.shard_id, target.pk}), at=min(before.starts_at, starts_at)
        )
        if by is not None:
            audit_record(
                by=by,
                action="placement.edit",
                incident_id=None,
                changes={
                    "tailnet": before.tailnet.slug,
                    "placement_id": placement.pk,
                    **_diff(
                        _placement_changes(before),
                        _placement_changes(placement),
                        keep=("tailnet", "placement_id"),
                    ),
                },
            )
    return placement


def placement_delete(*, placement: Placement, by: By = None) -> None:
    with transaction.atomic():
        Tailnet.objects.select_for_update().filter(pk=placement.tailnet_id).first()
        changes = _placement_changes(placement)
        shard_id, starts_at = placement.shard_id, placement.starts_at
        placement.delete()
        _placements_changed(shards=[shard_id], at=starts_at)
        if by is not None:
            audit_record(by=by, action="placement.delete", incident_id=None, changes=changes)


def _placement_changes(placement: Placement) -> dict[str, Any]:
    return {
        "tailnet": placement.tailnet.slug,
        "placement_id": placement.pk,
        "shard": placement.shard.slug,
        "starts_at": placement.starts_at,
        "ends_at": placement.ends_at,
    }


def _diff(
    old: Mapping[str, Any], new: Mapping[str, Any], *, keep: Sequence[str] = ()
) -> dict[str, Any]:
    """``{field: [old, new]}`` of what changed."""
    return {
        key: [old.get(key), value]
        for key, value in new.items()
        if key not in keep and old.get(key) != value
    }


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
    """Who these incidents affected has changed: what the public sees of them moved
    (``updated_at``), and their affected tailnets are rebuilt after commit."""
    ids = sorted(set(incident_ids))
    if not ids:
        return
    now = timezone.now()
    Incident.objects.filter(pk__in=ids).update(impacts_changed_at=now, updated_at=now)
    tasks.enqueue_recompute(ids)


def tailnet_impacts_queue(*, incident_ids: Iterable[int]) -> int:
    """Ask for a rebuild of these incidents' affected tailnets although nothing they
    show changed (an operator's "recompute"). Returns how many were queued."""
    ids = sorted(set(incident_ids))
    if ids:
        with transaction.atomic():
            Incident.objects.filter(pk__in=ids).update(impacts_changed_at=timezone.now())
            tasks.enqueue_recompute(ids)
    return len(ids)


# --- Incidents -------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowSpec:
    """An impact window as given to a service."""

    shard: Shard | str
    level: str
    starts_at: datetime
    ends_at: datetime | None = None


def _check_status(kind: str, status: str) -> None:
    problem = status_problem(kind, status)
    if problem is not None:
        raise ValidationError({"status": problem})


def _check_schedule(
    kind: str, scheduled_for: datetime | None, scheduled_until: datetime | None
) -> None:
    errors: dict[str, str] = {}
    if kind == IncidentKind.MAINTENANCE:
        for name, value in (("scheduled_for", scheduled_for), ("scheduled_until", scheduled_until)):
            if value is None:
                errors[name] = "A maintenance needs a schedule: when it begins and ends."
    if (
        scheduled_for is not None
        and scheduled_until is not None
        and scheduled_until <= scheduled_for
    ):
        errors["scheduled_until"] = (
            f"The maintenance ends ({_when(scheduled_until)}) before it begins "
            f"({_when(scheduled_for)})."
        )
    if errors:
        raise ValidationError(errors)


def _check_component_statuses(components: Mapping[Component, str]) -> None:
    for component, component_status in components.items():
        if component_status not in ComponentStatus.values:
            raise ValidationError(
                f"Unknown status {component_status!r} for component {component.name!r}; "
                f"use one of {', '.join(ComponentStatus.values)}."
            )


def _component_change(component: Component, old: str, new: str) -> dict[str, str]:
    return {"code": component.slug, "name": component.name, "old_status": old, "new_status": new}


def _window_changes(window: "_Window | ShardImpact") -> dict[str, Any]:
    return {
        "shard": window.shard,
        "level": window.level,
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
    }


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
    by: By = None,
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
        raise ValidationError({"title": "An incident needs a title."})
    if not body.strip():
        raise ValidationError({"body": "The first update needs a body: say what is happening."})
    _check_status(kind, status)
    _check_schedule(kind, scheduled_for, scheduled_until)
    components = dict(components or {})
    _check_component_statuses(components)
    author = actor_of(by).user
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
        created_by=author,
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
            created_by=author,
            created_at=now,
            display_at=now,
        )
        if windows:
            tasks.enqueue_recompute([incident.pk])
        audit_record(
            by=by,
            action="incident.create",
            incident_id=incident.pk,
            changes={
                "title": incident.title,
                "body": body,
                "kind": kind,
                "status": status,
                "impact": impact,
                "source": source,
                "published": published,
                "started_at": started_at,
                "detected_at": detected_at,
                "scheduled_for": scheduled_for,
                "scheduled_until": scheduled_until,
                "components": components,
                "shard_impacts": [_window_changes(window) for window in windows],
            },
        )
    return incident


# Fields an incident's edit may change; the status changes with an update, windows
# and publishing with their own services.
EDITABLE_FIELDS = (
    "title",
    "impact",
    "source",
    "started_at",
    "detected_at",
    "scheduled_for",
    "scheduled_until",
    "postmortem",
)


def incident_edit(
    *, incident: Incident, changes: Mapping[str, Any], by: By = None, at: datetime | None = None
) -> Incident:
    """Change some of ``EDITABLE_FIELDS``. Nothing is written (or audited) if nothing
    really changed. A postmortem's first appearance stamps ``postmortem_published_at``
    (the public page shows it at once); removing it clears the stamp."""
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError(
            f"{', '.join(unknown)} cannot be edited; edit {', '.join(EDITABLE_FIELDS)}."
        )
    now = at or timezone.now()
    _require_aware(**{k: v for k, v in changes.items() if isinstance(v, datetime)})
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        diff: dict[str, list[Any]] = {}
        for field, new in changes.items():
            old = getattr(locked, field)
            if old != new:
                diff[field] = [old, new]
                setattr(locked, field, new)
        if not diff:
            return locked
        if "title" in diff and not locked.title.strip():
            raise ValidationError({"title": "An incident needs a title."})
        if locked.resolved_at is not None and locked.started_at > locked.resolved_at:
            raise ValidationError(
                {
                    "started_at": f"It was resolved at {_when(locked.resolved_at)}: "
                    "it cannot start later."
                }
            )
        _check_schedule(locked.kind, locked.scheduled_for, locked.scheduled_until)
        fields = [*diff, "updated_at"]
        if "postmortem" in diff:
            stamped = locked.postmortem_published_at
            if locked.postmortem.strip() and stamped is None:
                locked.postmortem_published_at = now
            elif not locked.postmortem.strip():
                locked.postmortem_published_at = None
            if locked.postmortem_published_at != stamped:
                diff["postmortem_published_at"] = [stamped, locked.postmortem_published_at]
                fields.append("postmortem_published_at")
        locked.updated_at = now
        # Only the edited fields: an old row's other fields are not this edit's business.
        locked.clean_fields(exclude=[f.name for f in Incident._meta.fields if f.name not in diff])
        locked.save(update_fields=fields)
        audit_record(by=by, action="incident.edit", incident_id=locked.pk, changes=diff)
    for field in fields:  # the caller's copy shows the edit too
        setattr(incident, field, getattr(locked, field))
    return locked


def incident_publish(*, incident: Incident, by: By = None, at: datetime | None = None) -> Incident:
    """Make a draft public. Publishing a published incident changes nothing."""
    now = at or timezone.now()
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if locked.published:
            return locked
        incident.published = locked.published = True
        incident.published_at = locked.published_at = now
        incident.updated_at = locked.updated_at = now
        locked.save(update_fields=["published", "published_at", "updated_at"])
        audit_record(
            by=by,
            action="incident.publish",
            incident_id=locked.pk,
            changes={"published": [False, True]},
        )
    return locked


def incident_unpublish(
    *, incident: Incident, by: By = None, at: datetime | None = None
) -> Incident:
    """Take an incident off the public pages (back to a draft)."""
    now = at or timezone.now()
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if not locked.published:
            return locked
        incident.published = locked.published = False
        incident.published_at = locked.published_at = None
        incident.updated_at = locked.updated_at = now
        locked.save(update_fields=["published", "published_at", "updated_at"])
        audit_record(
            by=by,
            action="incident.unpublish",
            incident_id=locked.pk,
            changes={"published": [True, False]},
        )
    return locked


def incident_components_save(
    *,
    incident: Incident,
    statuses: Mapping[Component, str],
    remove: Sequence[Component] = (),
    by: By = None,
) -> Incident:
    """Set the status an operator gives some components of an incident (without a
    timeline entry: an update with components does that), or unlink some."""
    statuses = dict(statuses)
    _check_component_statuses(statuses)
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        links = {link.component_id: link for link in locked.affected_components.all()}
        diff: dict[str, list[Any]] = {}
        for component in remove:
            link = links.get(component.pk)
            if link is not None:
                diff[component.slug] = [link.status, None]
                link.delete()
        for component, component_status in statuses.items():
            link = links.get(component.pk)
            old = link.status if link is not None else None
            if old == component_status:
                continue
            if link is None:
                IncidentComponent.objects.create(
                    incident=locked, component=component, status=component_status
                )
            else:
                link.status = component_status
                link.save(update_fields=["status"])
            diff[component.slug] = [old, component_status]
        if diff:
            locked.updated_at = timezone.now()
            locked.save(update_fields=["updated_at"])
            audit_record(by=by, action="components.edit", incident_id=locked.pk, changes=diff)
    return locked


def incident_post_update(
    *,
    incident: Incident,
    status: str,
    body: str,
    components: Mapping[Component, str] | None = None,
    by: By = None,
    at: datetime | None = None,
) -> IncidentUpdate:
    """Add a timeline entry; it may change the status and the components' statuses.
    Closing the incident (resolved/completed) closes its open impact windows."""
    with transaction.atomic():
        update = _post_update(
            incident=incident, status=status, body=body, components=components, by=by, at=at
        )
        audit_record(
            by=by,
            action="incident.update",
            incident_id=incident.pk,
            changes={"status": status, "body": body, "components": dict(components or {})},
        )
    return update


RESOLVED_BODY = {
    IncidentKind.INCIDENT: "This incident has been resolved.",
    IncidentKind.MAINTENANCE: "The scheduled maintenance has been completed.",
}


def incident_resolve(
    *,
    incident: Incident,
    body: str | None = None,
    components: Mapping[Component, str] | None = None,
    by: By = None,
    at: datetime | None = None,
) -> Incident:
    """Resolve an incident (complete a maintenance) with a closing update: its open
    windows end at ``at`` (now) and, unless ``components`` says otherwise, every
    component it affected goes back to operational. The same from every door.
    Resolving a closed incident changes nothing, so retries are harmless."""
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if locked.status in CLOSED_STATUSES:
            return locked
        maintenance = locked.kind == IncidentKind.MAINTENANCE
        closing = IncidentStatus.COMPLETED if maintenance else IncidentStatus.RESOLVED
        body = body or RESOLVED_BODY[IncidentKind(locked.kind)]
        if components is None:
            components = {
                link.component: ComponentStatus.OPERATIONAL
                for link in locked.affected_components.select_related("component")
                if link.status != ComponentStatus.OPERATIONAL
            }
        _post_update(
            incident=locked, status=closing, body=body, components=components, by=by, at=at
        )
        audit_record(
            by=by,
            action="incident.resolve",
            incident_id=locked.pk,
            changes={"status": closing, "body": body, "components": dict(components)},
        )
        locked.refresh_from_db()
    return locked


def _post_update(
    *,
    incident: Incident,
    status: str,
    body: str,
    components: Mapping[Component, str] | None,
    by: By,
    at: datetime | None,
) -> IncidentUpdate:
    now = at or timezone.now()
    _require_aware(at=now)
    if not body.strip():
        raise ValidationError({"body": "An update needs a body: say what changed."})
    _check_status(incident.kind, status)
    components = dict(components or {})
    _check_component_statuses(components)
    closing = status in CLOSED_STATUSES
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
        created_by=actor_of(by).user,
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
                f"The open {late.level} window on shard {late.shard.slug!r} starts at "
                f"{_when(late.starts_at)}, after this resolution, so resolving cannot end "
                "it: remove it (or resolve once it has started)."
            )
        if open_windows.update(ends_at=now):
            _impacts_changed([incident.pk])
    elif not closing and incident.resolved_at is not None:
        incident.resolved_at = None  # reopened
        fields.append("resolved_at")
    incident.save(update_fields=fields)
    return update


def incident_update_edit(
    *,
    update: IncidentUpdate,
    body: str,
    display_at: datetime | None = None,
    by: By = None,
) -> IncidentUpdate:
    """Correct a posted update's text or the time it shows. Its status is history."""
    if not body.strip():
        raise ValidationError({"body": "An update needs a body: say what changed."})
    display_at = display_at or update.display_at
    _require_aware(display_at=display_at)
    with transaction.atomic():
        before = IncidentUpdate.objects.select_for_update().get(pk=update.pk)
        diff = _diff(
            {"body": before.body, "display_at": before.display_at},
            {"body": body, "display_at": display_at},
        )
        if not diff:
            return update
        update.body, update.display_at = body, display_at
        update.save(update_fields=["body", "display_at"])
        Incident.objects.filter(pk=update.incident_id).update(updated_at=timezone.now())
        audit_record(
            by=by,
            action="update.edit",
            incident_id=update.incident_id,
            changes={"update_id": update.pk, **diff},
        )
    return update


def incident_update_delete(*, update: IncidentUpdate, by: By = None) -> None:
    """Remove an update from the timeline (a mistaken post). The incident's status
    stays what it is: post a new update to change it."""
    with transaction.atomic():
        incident_id, pk = update.incident_id, update.pk
        changes = {"update_id": pk, "status": update.status, "body": update.body}
        update.delete()
        Incident.objects.filter(pk=incident_id).update(updated_at=timezone.now())
        audit_record(by=by, action="update.delete", incident_id=incident_id, changes=changes)


# --- Shard impact windows --------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    shard: Shard
    level: str
    starts_at: datetime
    ends_at: datetime | None


def window_problem(shard: str, starts_at: datetime, ends_at: datetime | None) -> str | None:
    """Why a window's times cannot be (the API shows it on the field), or None."""
    if ends_at is not None and ends_at <= starts_at:
        return (
            f"The window on shard {shard!r} ends ({_when(ends_at)}) "
            f"before it starts ({_when(starts_at)})."
        )
    return None


def _clean_window(spec: WindowSpec) -> _Window:
    shard = _shard(spec.shard)
    _require_aware(starts_at=spec.starts_at, ends_at=spec.ends_at)
    if spec.level not in ImpactLevel.values:
        raise ValidationError(
            f"Unknown impact level {spec.level!r} on shard {shard.slug!r}; "
            f"use one of {', '.join(ImpactLevel.values)}."
        )
    problem = window_problem(shard.slug, spec.starts_at, spec.ends_at)
    if problem is not None:
        raise ValidationError(problem)
    return _Window(shard, spec.level, spec.starts_at, spec.ends_at)


def _check_no_overlap(windows: Sequence[_Window]) -> None:
    """Windows of one shard in one incident never overlap: a level change ends one
    window where the next begins, so each second has one level."""
    by_shard: dict[int, list[_Window]] = {}
    for window in windows:
        by_shard.setdefault(window.shard.pk, []).append(window)
    for shard_windows in by_shard.values():
        shard_windows.sort(key=lambda w: w.starts_at)
        for before, after in itertools.pairwise(shard_windows):
            if before.ends_at is None or before.ends_at > after.starts_at:
                raise ValidationError(
                    f"Impact windows on shard {after.shard.slug!r} overlap "
                    f"(one from {_when(before.starts_at)}, one from {_when(after.starts_at)});"
                    " to change the level, end one window where the next begins."
                )


def _check_within_resolution(incident: Incident, window: _Window) -> None:
    if incident.resolved_at is None:
        return
    if window.ends_at is None:
        raise ValidationError(
            f"Incident {incident.pk} is {incident.status}: a window added now needs an "
            "end (ends_at), or it would count as ongoing forever."
        )
    if window.ends_at > incident.resolved_at:
        raise ValidationError(
            "This incident is resolved: a window on it must end by its resolution "
            f"({_when(incident.resolved_at)})."
        )


def shard_impacts_save(
    *,
    incident: Incident,
    add: Sequence[WindowSpec] = (),
    change: Mapping[ShardImpact, WindowSpec] | None = None,
    delete: Sequence[ShardImpact] = (),
    by: By = None,
) -> list[ShardImpact]:
    """Add, change and delete some of an incident's windows at once, checked as the
    set they leave behind (a level change may move one window's end and the next
    one's start together). Returns the added windows."""
    change = dict(change or {})
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        stored = {w.pk: w for w in locked.shard_impacts.select_related("shard")}
        touched = {w.pk for w in [*change, *delete]}
        if not touched <= set(stored):
            raise ValidationError("A window can only be changed on its own incident.")
        added = [_clean_window(spec) for spec in add]
        changed = {stored[w.pk]: _clean_window(spec) for w, spec in change.items()}
        for clean in [*added, *changed.values()]:
            _check_within_resolution(locked, clean)
        kept = [
            _Window(w.shard, w.level, w.starts_at, w.ends_at)
            for pk, w in stored.items()
            if pk not in touched
        ]
        _check_no_overlap([*kept, *changed.values(), *added])
        for gone in (stored[w.pk] for w in delete):
            audit_record(
                by=by,
                action="impact.delete",
                incident_id=locked.pk,
                changes={"impact_id": gone.pk, **_window_changes(gone)},
            )
            gone.delete()
        for row, new in changed.items():
            before = _window_changes(row)
            row.shard, row.level = new.shard, new.level
            row.starts_at, row.ends_at = new.starts_at, new.ends_at
            row.save(update_fields=["shard", "level", "starts_at", "ends_at"])
            diff = _diff(before, _window_changes(row))
            if diff:
                audit_record(
                    by=by,
                    action="impact.edit",
                    incident_id=locked.pk,
                    changes={"impact_id": row.pk, "shard": row.shard, **diff},
                )
        created: list[ShardImpact] = []
        for new in added:
            window = ShardImpact.objects.create(
                incident=locked,
                shard=new.shard,
                level=new.level,
                starts_at=new.starts_at,
                ends_at=new.ends_at,
            )
            audit_record(
                by=by,
                action="impact.add",
                incident_id=locked.pk,
                changes={"impact_id": window.pk, **_window_changes(window)},
            )
            created.append(window)
        if added or changed or delete:
            _impacts_changed([locked.pk])
    for given in change:  # the caller's copies show what was saved
        given.refresh_from_db()
    return created


def shard_impact_add(
    *,
    incident: Incident,
    shard: Shard | str,
    level: str,
    starts_at: datetime,
    ends_at: datetime | None = None,
    by: By = None,
) -> ShardImpact:
    """Record that ``shard`` was hit at ``level`` during [starts_at, ends_at)."""
    (window,) = shard_impacts_save(
        incident=incident, add=[WindowSpec(shard, level, starts_at, ends_at)], by=by
    )
    return window


def shard_impact_update(
    *,
    impact: ShardImpact,
    shard: Shard | str | None = None,
    level: str | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    keep_end: bool = True,
    by: By = None,
) -> ShardImpact:
    """Correct a window: each argument left out keeps its value (``ends_at=None``
    with ``keep_end=False`` reopens it)."""
    spec = WindowSpec(
        shard if shard is not None else impact.shard,
        level if level is not None else impact.level,
        starts_at if starts_at is not None else impact.starts_at,
        impact.ends_at if ends_at is None and keep_end else ends_at,
    )
    shard_impacts_save(incident=impact.incident, change={impact: spec}, by=by)
    return impact


def shard_impact_delete(*, impact: ShardImpact, by: By = None) -> None:
    shard_impacts_save(incident=impact.incident, delete=[impact], by=by)


def shard_impact_close(*, impact: ShardImpact, at: datetime, by: By = None) -> ShardImpact:
    """End an open window at ``at``."""
    _require_aware(at=at)
    with transaction.atomic():
        Incident.objects.select_for_update().filter(pk=impact.incident_id).first()
        ends_at = ShardImpact.objects.filter(pk=impact.pk).values_list("ends_at", flat=True).get()
        if ends_at is not None:
            raise ValidationError(
                f"The {impact.level} window on shard {impact.shard.slug!r} is already closed."
            )
        if at <= impact.starts_at:
            raise ValidationError("An impact window must end after it starts.")
        impact.ends_at = at
        impact.save(update_fields=["ends_at"])
        _impacts_changed([impact.incident_id])
        audit_record(
            by=by,
            action="impact.close",
            incident_id=impact.incident_id,
            changes={"impact_id": impact.pk, "shard": impact.shard, "ends_at": [None, at]},
        )
    return impact


def shard_impact_change_level(
    *, impact: ShardImpact, level: str, at: datetime, by: By = None
) -> ShardImpact:
    """A level change closes the open window at ``at`` and opens the next one there,
    so every second is counted at the level it really had."""
    if level not in ImpactLevel.values:
        raise ValidationError(f"Unknown impact level {level!r}; use one of {ImpactLevel.values}.")
    if level == impact.level:
        return impact
    with transaction.atomic():
        shard_impact_close(impact=impact, at=at, by=by)
        return shard_impact_add(
            incident=impact.incident, shard=impact.shard, level=level, starts_at=at, by=by
        )


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
