"""What a delivery says, built when it is sent from what is stored then (so a resend
says the same, with the final seconds once they are final): the webhook's JSON, the
Slack message, and an email's subject and text. The words are the product's own
(``incidents.wording``, ``incidents.figures``)."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse

from incidents import figures, levels, wording
from incidents.models import Incident, IncidentUpdate, TailnetImpact
from plumbing.site import absolute

from .models import Delivery, EventType


@dataclass(frozen=True)
class Stay:
    """One affected-tailnet row: the tailnet on one shard, hit at one level."""

    starts_at: datetime
    ends_at: datetime | None
    shard: str  # public name
    level: str
    component_kind: str
    component_name: str


@dataclass
class Notice:
    """Everything one delivery tells, before it is put in a format."""

    delivery: Delivery
    subject: str
    text: str  # the message in one paragraph
    body: str = ""  # the update's own words, when there is one
    link: str = ""
    stays: list[Stay] = field(default_factory=list)
    seconds: int = 0  # the tailnet's affected seconds: the sum of its stored rows


def _clock(at: datetime | None, since: datetime | None = None) -> str:
    """10:02 UTC, with the date when it is not the day of ``since`` (or always)."""
    if at is None:
        return "now"
    if since is not None and at.date() == since.date():
        return f"{at:%H:%M} UTC"
    return f"{at:%-d %b %H:%M} UTC"


def incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.pk,
        "name": incident.title,
        "status": incident.status,
        "impact": incident.impact,
        "url": absolute(reverse("public:incident", args=[incident.pk])),
    }


def _stays(delivery: Delivery) -> tuple[list[Stay], int]:
    assert delivery.incident_id is not None
    assert delivery.tailnet_id is not None
    rows = (
        TailnetImpact.objects.filter(
            incident_id=delivery.incident_id, tailnet_id=delivery.tailnet_id
        )
        .select_related("shard__component")
        .order_by("starts_at", "id")
    )
    stays, seconds = [], 0
    for row in rows:
        stays.append(
            Stay(
                row.starts_at,
                row.ends_at,
                row.shard.public_name,
                row.level,
                row.shard.component.kind,
                row.shard.component.name,
            )
        )
        seconds += row.seconds
    return stays, seconds


def _when(stays: list[Stay], duration: str = "") -> str:
    """ "from 10:02 to 10:07 UTC (5 min) on US East 3", or "since 10:02 UTC on …"."""
    first, last = stays[0].starts_at, stays[-1].ends_at
    places: list[str] = []
    for stay in stays:
        if stay.shard not in places:
            places.append(stay.shard)
    where = places[0] if len(places) == 1 else ", ".join(places[:-1]) + " and " + places[-1]
    if last is None:
        return f"since {_clock(first)} on {where}"
    took = f" ({duration})" if duration else ""
    return f"from {first:%H:%M} to {_clock(last, since=first)}{took} on {where}"


def _kept(incident: Incident, stays: list[Stay], phase: str) -> str:
    """What kept working and what did not, in the page's words, to follow a "; "."""
    worst = levels.worst(stay.level for stay in stays)
    first = stays[0]
    affected = [wording.Affected(first.component_kind, worst, first.component_name)]
    sentence = wording.describe(
        affected=affected, incident_kind=incident.kind, phase=phase
    ).sentence
    return sentence[0].lower() + sentence[1:]


def notice_for(delivery: Delivery) -> Notice:
    """The notice a delivery carries (its incident, tailnet and update loaded)."""
    incident = delivery.incident
    page = settings.STATUSPAGE_NAME
    if incident is None:  # a test delivery
        return Notice(
            delivery,
            subject=f"[{page}] Test notification",
            text=f"This is a test notification from {page}: this address will hear about "
            + (
                f"incidents that affect {delivery.tailnet.display_name}."
                if delivery.tailnet is not None
                else "incidents on the components it subscribed to."
            ),
            link=absolute("/"),
        )
    link = absolute(reverse("public:incident", args=[incident.pk]))
    update = None
    if delivery.update_id:
        update = IncidentUpdate.objects.filter(pk=delivery.update_id).first()
    body = update.body if update is not None else ""
    status = (update.status if update is not None else incident.status).replace("_", " ")
    if delivery.tailnet is None:
        return _public_notice(delivery, incident, status, body, link, page)
    name = delivery.tailnet.display_name
    stays, seconds = _stays(delivery)
    link = absolute(reverse("customers:tailnet", args=[delivery.tailnet.slug]))
    notice = Notice(
        delivery, subject="", text="", body=body, link=link, stays=stays, seconds=seconds
    )
    kind = delivery.type
    if not stays:  # its rows changed since: say what is known
        notice.subject = f"[{name}] {incident.title}"
        notice.text = f"{incident.title}: {status}."
        return notice
    duration = figures.duration_text(seconds)
    if kind == EventType.INCIDENT_AFFECTED:
        notice.subject = f"[{name}] Affected: {incident.title}"
        notice.text = (
            f"{name} is affected by {incident.title} {_when(stays)}; "
            f"{_kept(incident, stays, 'ongoing')}"
        )
    elif kind == EventType.INCIDENT_IMPACT_ENDED:
        ended = max(stay.ends_at for stay in stays if stay.ends_at is not None)
        notice.subject = f"[{name}] Your impact ended: {incident.title}"
        notice.text = (
            f"{name}'s impact ended at {_clock(ended, since=stays[0].starts_at)}: it was "
            f"affected {_when(stays, duration)}; {_kept(incident, stays, 'past')} "
            "The incident goes on elsewhere."
        )
    elif kind == EventType.INCIDENT_UPDATED:
        notice.subject = f"[{name}] Update: {incident.title}"
        notice.text = f"{incident.title} ({status}): {name} is affected {_when(stays)}."
    else:  # resolved
        notice.subject = f"[{name}] Resolved: {incident.title}"
        notice.text = (
            f"{incident.title} is resolved. {name} was affected "
            f"{_when(stays, duration)}; {_kept(incident, stays, 'past')}"
        )
    return notice


def _public_notice(
    delivery: Delivery, incident: Incident, status: str, body: str, link: str, page: str
) -> Notice:
    kind = delivery.type
    title = incident.title
    if kind == EventType.MAINTENANCE_SCHEDULED:
        subject = f"[{page}] Scheduled maintenance: {title}"
        text = f"Scheduled maintenance: {title}, {_span(incident)}."
    elif kind == EventType.MAINTENANCE_REMINDER:
        subject = f"[{page}] Maintenance soon: {title}"
        text = f"Reminder: {title} starts at {_clock(incident.scheduled_for)} ({_span(incident)})."
    elif kind == EventType.MAINTENANCE_STARTED:
        subject = f"[{page}] Maintenance started: {title}"
        text = f"{title} has started."
    elif kind == EventType.MAINTENANCE_COMPLETED:
        subject = f"[{page}] Maintenance completed: {title}"
        text = f"{title} is completed."
    elif kind == EventType.INCIDENT_RESOLVED:
        subject = f"[{page}] Resolved: {title}"
        text = f"{title} is resolved."
    elif kind == EventType.INCIDENT_PUBLISHED:
        subject = f"[{page}] {title}"
        text = f"{title} ({status}), since {_clock(incident.started_at)}."
    else:
        subject = f"[{page}] Update: {title}"
        text = f"{title} ({status})."
    return Notice(delivery, subject=subject, text=text, body=body, link=link)


def _span(incident: Incident) -> str:
    if incident.scheduled_for is None:
        return "time to be announced"
    if incident.scheduled_until is None:
        return f"from {_clock(incident.scheduled_for)}"
    return (
        f"from {_clock(incident.scheduled_for)} to "
        f"{_clock(incident.scheduled_until, since=incident.scheduled_for)}"
    )


def webhook_json(notice: Notice, *, sent_at: datetime) -> dict[str, Any]:
    """The JSON a webhook receives (format ``json``)."""
    delivery = notice.delivery
    payload: dict[str, Any] = {
        "id": str(delivery.pk),
        "type": delivery.type,
        "sent_at": sent_at.isoformat().replace("+00:00", "Z"),
    }
    if delivery.tailnet is not None:
        payload["tailnet"] = delivery.tailnet.slug
    if delivery.incident is not None:
        payload["incident"] = incident_json(delivery.incident)
    if delivery.tailnet is not None and delivery.incident is not None:
        payload["affected"] = {
            "seconds": notice.seconds,
            "windows": [
                {
                    "from": _iso(stay.starts_at),
                    "to": _iso(stay.ends_at) if stay.ends_at is not None else None,
                    "shard": stay.shard,
                }
                for stay in notice.stays
            ],
        }
    return payload


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
