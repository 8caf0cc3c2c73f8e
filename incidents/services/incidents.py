"""Incidents and maintenance: open, edit, publish, post updates, resolve."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import signals, tasks
from ..audit import By, actor_of, audit_record
from ..models import (
    CLOSED_STATUSES,
    Component,
    ComponentStatus,
    Incident,
    IncidentComponent,
    IncidentImpact,
    IncidentKind,
    IncidentSource,
    IncidentStatus,
    IncidentUpdate,
    ShardImpact,
    status_problem,
)
from .common import diff, impacts_changed, require_aware, when
from .windows import WindowSpec, check_no_overlap, clean_window, window_changes


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
            f"The maintenance ends ({when(scheduled_until)}) before it begins "
            f"({when(scheduled_for)})."
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
    require_aware(
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
    windows = [clean_window(spec) for spec in shard_impacts]
    check_no_overlap(windows)
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
        first = IncidentUpdate.objects.create(
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
        if published:
            signals.announce_incident(incident, first)
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
                "shard_impacts": [window_changes(window) for window in windows],
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
    require_aware(**{k: v for k, v in changes.items() if isinstance(v, datetime)})
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
                    "started_at": f"It was resolved at {when(locked.resolved_at)}: "
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
    return _set_published(incident=incident, published=True, by=by, at=at)


def incident_unpublish(
    *, incident: Incident, by: By = None, at: datetime | None = None
) -> Incident:
    """Take an incident off the public pages (back to a draft)."""
    return _set_published(incident=incident, published=False, by=by, at=at)


def _set_published(*, incident: Incident, published: bool, by: By, at: datetime | None) -> Incident:
    now = at or timezone.now()
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if locked.published == published:
            return locked
        incident.published = locked.published = published
        incident.published_at = locked.published_at = now if published else None
        incident.updated_at = locked.updated_at = now
        locked.save(update_fields=["published", "published_at", "updated_at"])
        if published:
            signals.announce_incident(locked)
        audit_record(
            by=by,
            action="incident.publish" if published else "incident.unpublish",
            incident_id=locked.pk,
            changes={"published": [not published, published]},
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
    require_aware(at=now)
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
                f"{when(late.starts_at)}, after this resolution, so resolving cannot end "
                "it: remove it (or resolve once it has started)."
            )
        if open_windows.update(ends_at=now):
            impacts_changed([incident.pk])
    elif not closing and incident.resolved_at is not None:
        incident.resolved_at = None  # reopened
        fields.append("resolved_at")
    incident.save(update_fields=fields)
    if incident.published:
        signals.announce_incident(incident, update)
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
    require_aware(display_at=display_at)
    with transaction.atomic():
        before = IncidentUpdate.objects.select_for_update().get(pk=update.pk)
        edit = diff(
            {"body": before.body, "display_at": before.display_at},
            {"body": body, "display_at": display_at},
        )
        if not edit:
            return update
        update.body, update.display_at = body, display_at
        update.save(update_fields=["body", "display_at"])
        Incident.objects.filter(pk=update.incident_id).update(updated_at=timezone.now())
        audit_record(
            by=by,
            action="update.edit",
            incident_id=update.incident_id,
            changes={"update_id": update.pk, **edit},
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
