"""What the services share: checks of times, shard lookup, diffs for the audit
trail, and "who was affected changed"."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from .. import tasks
from ..models import (
    Incident,
    Shard,
)


def require_aware(**values: datetime | None) -> None:
    for name, value in values.items():
        if value is not None and timezone.is_naive(value):
            raise ValidationError(f"{name} must be a timezone-aware datetime, got {value}.")


def when(value: datetime | None, empty: str = "now") -> str:
    return empty if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def shard_of(shard: Shard | str) -> Shard:
    if isinstance(shard, Shard):
        return shard
    try:
        return Shard.objects.get(slug=shard)
    except Shard.DoesNotExist:
        raise ValidationError(f"Unknown shard {shard!r}.") from None


def diff(
    old: Mapping[str, Any], new: Mapping[str, Any], *, keep: Sequence[str] = ()
) -> dict[str, Any]:
    """``{field: [old, new]}`` of what changed."""
    return {
        key: [old.get(key), value]
        for key, value in new.items()
        if key not in keep and old.get(key) != value
    }


def impacts_changed(incident_ids: Iterable[int]) -> None:
    """Who these incidents affected has changed: what the public sees of them moved
    (``updated_at``), and their affected tailnets are rebuilt after commit."""
    ids = sorted(set(incident_ids))
    if not ids:
        return
    now = timezone.now()
    Incident.objects.filter(pk__in=ids).update(impacts_changed_at=now, updated_at=now)
    tasks.enqueue_recompute(ids)
