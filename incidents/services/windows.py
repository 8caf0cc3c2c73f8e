"""Shard impact windows: when and how badly a shard was hit in an incident."""

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from ..audit import By, audit_record
from ..models import (
    ImpactLevel,
    Incident,
    Shard,
    ShardImpact,
)
from .common import diff, impacts_changed, require_aware, shard_of, when


@dataclass(frozen=True)
class WindowSpec:
    """An impact window as given to a service."""

    shard: Shard | str
    level: str
    starts_at: datetime
    ends_at: datetime | None = None


def window_changes(window: "Window | ShardImpact") -> dict[str, Any]:
    return {
        "shard": window.shard,
        "level": window.level,
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
    }


@dataclass(frozen=True)
class Window:
    shard: Shard
    level: str
    starts_at: datetime
    ends_at: datetime | None


def window_problem(shard: str, starts_at: datetime, ends_at: datetime | None) -> str | None:
    """Why a window's times cannot be (the API shows it on the field), or None."""
    if ends_at is not None and ends_at <= starts_at:
        return (
            f"The window on shard {shard!r} ends ({when(ends_at)}) "
            f"before it starts ({when(starts_at)})."
        )
    return None


def clean_window(spec: WindowSpec) -> Window:
    shard = shard_of(spec.shard)
    require_aware(starts_at=spec.starts_at, ends_at=spec.ends_at)
    if spec.level not in ImpactLevel.values:
        raise ValidationError(
            f"Unknown impact level {spec.level!r} on shard {shard.slug!r}; "
            f"use one of {', '.join(ImpactLevel.values)}."
        )
    problem = window_problem(shard.slug, spec.starts_at, spec.ends_at)
    if problem is not None:
        raise ValidationError(problem)
    return Window(shard, spec.level, spec.starts_at, spec.ends_at)


def check_no_overlap(windows: Sequence[Window]) -> None:
    """Windows of one shard in one incident never overlap: a level change ends one
    window where the next begins, so each second has one level."""
    by_shard: dict[int, list[Window]] = {}
    for window in windows:
        by_shard.setdefault(window.shard.pk, []).append(window)
    for shard_windows in by_shard.values():
        shard_windows.sort(key=lambda w: w.starts_at)
        for before, after in itertools.pairwise(shard_windows):
            if before.ends_at is None or before.ends_at > after.starts_at:
                raise ValidationError(
                    f"Impact windows on shard {after.shard.slug!r} overlap "
                    f"(one from {when(before.starts_at)}, one from {when(after.starts_at)});"
                    " to change the level, end one window where the next begins."
                )


def _check_within_resolution(incident: Incident, window: Window) -> None:
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
            f"({when(incident.resolved_at)})."
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
        added = [clean_window(spec) for spec in add]
        changed = {stored[w.pk]: clean_window(spec) for w, spec in change.items()}
        for clean in [*added, *changed.values()]:
            _check_within_resolution(locked, clean)
        untouched = [
            Window(w.shard, w.level, w.starts_at, w.ends_at)
            for pk, w in stored.items()
            if pk not in touched
        ]
        check_no_overlap([*untouched, *changed.values(), *added])
        for gone in (stored[w.pk] for w in delete):
            audit_record(
                by=by,
                action="impact.delete",
                incident_id=locked.pk,
                changes={"impact_id": gone.pk, **window_changes(gone)},
            )
            gone.delete()
        for row, new in changed.items():
            before = window_changes(row)
            row.shard, row.level = new.shard, new.level
            row.starts_at, row.ends_at = new.starts_at, new.ends_at
            row.save(update_fields=["shard", "level", "starts_at", "ends_at"])
            edit = diff(before, window_changes(row))
            if edit:
                audit_record(
                    by=by,
                    action="impact.edit",
                    incident_id=locked.pk,
                    changes={"impact_id": row.pk, "shard": row.shard, **edit},
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
                changes={"impact_id": window.pk, **window_changes(window)},
            )
            created.append(window)
        if added or changed or delete:
            impacts_changed([locked.pk])
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
    require_aware(at=at)
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
        impacts_changed([impact.incident_id])
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
