"""What a delivery says, built when it is sent from what is stored then (so a resend
says the same, with the final seconds once they are final): the webhook's JSON, the
Slack message, and an email's subject and text. The words are the product's own
(``incidents.wording``, ``incidents.figures``)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse

from incidents import figures, levels, wording
from incidents.models import Incident, IncidentUpdate, Shard, TailnetImpact
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
    incident_url: str = ""


def _clock(at: datetime | None, since: datetime | None = None) -> str:
    """10:02 UTC, with the date when it is not the day of ``since`` (or always)."""
    if at is None:
        return "now"
    if since is not None and at.date() == since.date():
        return f"{at:%H:%M} UTC"
    return f"{at:%-d %b %H:%M} UTC"


def incident_url(incident_id: int) -> str:
    return absolute(reverse("public:incident", args=[incident_id]))


def incident_json(incident: Incident, url: str | None = None) -> dict[str, Any]:
    return {
        "id": incident.pk,
        "name": incident.title,
        "status": incident.status,
        "impact": incident.impact,
        "url": url or incident_url(incident.pk),
    }


@dataclass
class Loaded:
    """What a batch of deliveries says, read in three queries whatever its size: the
    updates they name, and the affected-tailnet rows of their (incident, tailnet) with
    their shards."""

    updates: dict[int, IncidentUpdate] = field(default_factory=dict)
    stays: dict[tuple[int, int], list[Stay]] = field(default_factory=dict)
    seconds: dict[tuple[int, int], int] = field(default_factory=dict)
    urls: dict[int, str] = field(default_factory=dict)  # each incident's page

    def url_of(self, incident_id: int) -> str:
        if incident_id not in self.urls:
            self.urls[incident_id] = incident_url(incident_id)
        return self.urls[incident_id]


def load(deliveries: Sequence[Delivery]) -> Loaded:
    loaded = Loaded()
    update_ids = {d.update_id for d in deliveries if d.update_id}
    if update_ids:
        loaded.updates = IncidentUpdate.objects.in_bulk(update_ids)
    pairs = {
        (d.incident_id, d.tailnet_id)
        for d in deliveries
        if d.incident_id is not None and d.tailnet_id is not None
    }
    if not pairs:
        return loaded
    rows = list(
        TailnetImpact.objects.filter(
            incident_id__in={i for i, _ in pairs}, tailnet_id__in={t for _, t in pairs}
        )
        .order_by("starts_at", "id")
        .values_list(
            "incident_id", "tailnet_id", "shard_id", "starts_at", "ends_at", "level", "seconds"
        )
    )
    shards = Shard.objects.select_related("component").in_bulk({row[2] for row in rows})
    for incident_id, tailnet_id, shard_id, starts_at, ends_at, level, seconds in rows:
        key = (incident_id, tailnet_id)
        if key not in pairs:
            continue
        shard = shards[shard_id]
        loaded.stays.setdefault(key, []).append(
            Stay(
                starts_at,
                ends_at,
                shard.public_name,
                level,
                shard.component.kind,
                shard.component.name,
            )
        )
        loaded.seconds[key] = loaded.seconds.get(key, 0) + seconds
    return loaded


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


def notice_for(delivery: Delivery, loaded: Loaded | None = None) -> Notice:
    """The notice a delivery carries (its incident and tailnet loaded; the rest from
    ``loaded``, the batch's reads, or read now)."""
    loaded = loaded or load([delivery])
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
    link = loaded.url_of(incident.pk)
    update = loaded.updates.get(delivery.update_id)
    body = update.body if update is not None else ""
    status = (update.status if update is not None else incident.status).replace("_", " ")
    if delivery.tailnet is None:
        notice = _public_notice(delivery, incident, status, body, link, page)
        notice.incident_url = link
        return notice
    name = delivery.tailnet.display_name
    key = (incident.pk, delivery.tailnet.pk)
    stays, seconds = loaded.stays.get(key, []), loaded.seconds.get(key, 0)
    notice = Notice(
        delivery,
        subject="",
        text="",
        body=body,
        link=absolute(reverse("customers:tailnet", args=[delivery.tailnet.slug])),
        stays=stays,
        seconds=seconds,
        incident_url=link,
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


def webhook_json(
    delivery: Delivery, *, sent_at: datetime, loaded: Loaded | None = None
) -> dict[str, Any]:
    """The JSON a webhook receives (format ``json``): facts only, so no words are
    built for it."""
    loaded = loaded or load([delivery])
    payload: dict[str, Any] = {
        "id": str(delivery.pk),
        "type": delivery.type,
        "sent_at": _iso(sent_at),
    }
    if delivery.tailnet is not None:
        payload["tailnet"] = delivery.tailnet.slug
    if delivery.incident is not None:
        payload["incident"] = incident_json(delivery.incident, loaded.url_of(delivery.incident.pk))
    if delivery.tailnet is not None and delivery.incident is not None:
        key = (delivery.incident.pk, delivery.tailnet.pk)
        payload["affected"] = {
            "seconds": loaded.seconds.get(key, 0),
            "windows": [
                {
                    "from": _iso(stay.starts_at),
                    "to": _iso(stay.ends_at) if stay.ends_at is not None else None,
                    "shard": stay.shard,
                }
                for stay in loaded.stays.get(key, [])
            ],
        }
    return payload


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
