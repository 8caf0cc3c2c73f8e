"""Tailnets and their placements on shards. The fleet's own life (a tailnet
created, live-migrated) is not audited here: it comes from the fleet. A change an
operator makes (``by`` given) is."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..audit import By, audit_record
from ..models import (
    Placement,
    Shard,
    ShardImpact,
    Tailnet,
)
from .common import diff, impacts_changed, overlapping, require_aware, shard_of, when

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
    require_aware(at=at)
    target = shard_of(shard)
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
    require_aware(at=at)
    target = shard_of(to_shard)
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
                f"Migration at {when(at)} is not after the current placement "
                f"began ({when(current.starts_at)}); placements cannot overlap."
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
    require_aware(starts_at=starts_at, ends_at=ends_at)
    if ends_at is not None and ends_at <= starts_at:
        raise ValidationError({"ends_at": "A placement must end after it starts."})
    others = Placement.objects.filter(tailnet=tailnet).select_related("shard")
    if exclude is not None:
        others = others.exclude(pk=exclude)
    clash = overlapping(others, starts_at=starts_at, ends_at=ends_at).order_by("starts_at").first()
    if clash is not None:
        raise ValidationError(
            f"Tailnet {tailnet.slug!r} is already placed on shard {clash.shard.slug!r} from "
            f"{when(clash.starts_at)} until {when(clash.ends_at, 'now (current)')}; a tailnet "
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
    target = shard_of(shard)
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
    target = shard_of(shard)
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
                    **diff(
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
    impacts_changed(incident_ids)
