"""Follow-ups: the improvements an incident led to (text, owner, open or done).

They are public once the incident's postmortem is published (its page lists them,
/reliability/ counts them), so a change to one of those announces the published
data changed; before that they are the operators' alone."""

import unicodedata
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import signals
from ..audit import By, audit_record
from ..models import FollowUp, FollowUpStatus, Incident
from .common import require_aware

# What a follow-up's change may touch.
FOLLOW_UP_FIELDS = ("text", "owner", "status", "done_on")
_LIMITS = {"text": 500, "owner": 120}
_WHAT = {"text": "the improvement", "owner": "who owns it (a person or team name)"}


def _plain(field: str, value: Any) -> str:
    """One line of plain text, trimmed, not empty, within the column."""
    if not isinstance(value, str):
        raise ValidationError({field: "Plain text, please."})
    value = value.strip()
    if not value:
        raise ValidationError({field: f"Say {_WHAT[field]}."})
    if len(value) > _LIMITS[field]:
        raise ValidationError(
            {field: f"At most {_LIMITS[field]} characters (this is {len(value)})."}
        )
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        raise ValidationError(
            {field: "Plain text on one line: no line breaks or control characters."}
        )
    return value


def _check(values: Mapping[str, Any]) -> dict[str, Any]:
    checked = dict(values)
    for field in ("text", "owner"):
        if field in checked:
            checked[field] = _plain(field, checked[field])
    if "status" in checked and checked["status"] not in FollowUpStatus.values:
        raise ValidationError(
            {"status": f"Unknown status {checked['status']!r}; use open or done."}
        )
    done_on = checked.get("done_on")
    if done_on is not None and (isinstance(done_on, datetime) or not isinstance(done_on, date)):
        raise ValidationError({"done_on": "A date (YYYY-MM-DD), UTC."})
    return checked


def _postmortem_published(incident: Incident, now: datetime) -> bool:
    stamped = incident.postmortem_published_at
    return stamped is not None and stamped <= now


def _announce(incident: Incident, now: datetime) -> None:
    """Its public page and /reliability/ show this change: the incident moved, and
    the published data changed (the snapshot and caches refresh after commit)."""
    if _postmortem_published(incident, now):
        Incident.objects.filter(pk=incident.pk).update(updated_at=now)
        signals.announce_published()


def _shown(follow_up: FollowUp) -> dict[str, Any]:
    return {
        "follow_up_id": follow_up.pk,
        "text": follow_up.text,
        "owner": follow_up.owner,
        "status": follow_up.status,
        "done_on": None if follow_up.done_on is None else follow_up.done_on.isoformat(),
    }


def follow_up_add(
    *,
    incident: Incident,
    text: str,
    owner: str,
    status: str = FollowUpStatus.OPEN,
    done_on: date | None = None,
    by: By = None,
    at: datetime | None = None,
) -> FollowUp:
    """Record an improvement an incident led to. A done one needs its done date; an
    open one has none."""
    now = at or timezone.now()
    require_aware(at=now)
    values = _check({"text": text, "owner": owner, "status": status, "done_on": done_on})
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        follow_up = FollowUp(incident=locked, created_at=now, updated_at=now, **values)
        follow_up.full_clean()
        follow_up.save()
        audit_record(
            by=by, action="follow_up.add", incident_id=locked.pk, changes=_shown(follow_up)
        )
        _announce(locked, now)
    return follow_up


def follow_up_change(
    *,
    follow_up: FollowUp,
    changes: Mapping[str, Any],
    by: By = None,
    at: datetime | None = None,
) -> FollowUp:
    """Change some of ``FOLLOW_UP_FIELDS``. Reopening a done follow-up clears its done
    date (unless one is given, which is refused). Nothing is written (or audited)
    if nothing really changed."""
    unknown = sorted(set(changes) - set(FOLLOW_UP_FIELDS))
    if unknown:
        raise ValidationError(
            f"{', '.join(unknown)} cannot be changed; change {', '.join(FOLLOW_UP_FIELDS)}."
        )
    now = at or timezone.now()
    require_aware(at=now)
    checked = _check(changes)
    if checked.get("status") == FollowUpStatus.OPEN and "done_on" not in checked:
        checked["done_on"] = None  # reopened: it is not done any more
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=follow_up.incident_id)
        locked = FollowUp.objects.select_for_update().get(pk=follow_up.pk)
        locked.incident = incident
        edit: dict[str, list[Any]] = {}
        for field, new in checked.items():
            old = getattr(locked, field)
            if old != new:
                edit[field] = [old, new]
                setattr(locked, field, new)
        if not edit:
            return locked
        locked.updated_at = now
        locked.full_clean()
        locked.save(update_fields=[*edit, "updated_at"])
        shown = {
            field: [value.isoformat() if isinstance(value, date) else value for value in pair]
            for field, pair in edit.items()
        }
        audit_record(
            by=by,
            action="follow_up.change",
            incident_id=incident.pk,
            changes={"follow_up_id": locked.pk, **shown},
        )
        _announce(incident, now)
    for field in [*edit, "updated_at"]:  # the caller's copy shows the change too
        setattr(follow_up, field, getattr(locked, field))
    return locked


def follow_up_remove(*, follow_up: FollowUp, by: By = None, at: datetime | None = None) -> None:
    """Remove a follow-up recorded by mistake."""
    now = at or timezone.now()
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=follow_up.incident_id)
        locked = FollowUp.objects.select_for_update().filter(pk=follow_up.pk).first()
        if locked is None:  # removed meanwhile: nothing left to do
            return
        shown = _shown(locked)
        locked.delete()
        audit_record(by=by, action="follow_up.remove", incident_id=incident.pk, changes=shown)
        _announce(incident, now)
