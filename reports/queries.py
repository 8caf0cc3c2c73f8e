"""Reads for the report pages: the instant answer, a tailnet's reports, the sweep.

The instant answer has one door: ``report_answer`` asks customers.access whether
whoever is looking may see the report's tailnet. Only then does it name a shard;
everyone else gets the public status, the same whether the typed tailnet exists,
belongs to someone else, or was never typed at all.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F, Prefetch, Q
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from customers.access import tailnet_access
from incidents import levels, wording
from incidents.models import (
    Component,
    ComponentStatus,
    Incident,
    IncidentUpdate,
    Shard,
    ShardImpact,
    Tailnet,
)
from incidents.queries import component_statuses_now

from .models import Report, ReportStatus
from .services import shard_at


@dataclass(frozen=True)
class ComponentLine:
    name: str
    status: str  # Statuspage's component status value


@dataclass(frozen=True)
class IncidentLine:
    title: str
    url: str
    started_at: datetime


@dataclass(frozen=True)
class PublicStatus:
    """What the public page says right now, briefly: nothing here is per-tailnet."""

    overall: str
    troubled: tuple[ComponentLine, ...]  # components not operational, worst first
    incidents: tuple[IncidentLine, ...]  # open published incidents and maintenance

    @property
    def all_ok(self) -> bool:
        return self.overall == ComponentStatus.OPERATIONAL and not self.incidents


@dataclass(frozen=True)
class KnownIncident:
    """A published incident on the member's own shard, in plain words."""

    title: str
    url: str
    started_at: datetime
    resolved_at: datetime | None
    where: str  # the component, e.g. "Coordination (us-east)"
    headline: str
    sentence: str  # "Existing connections keep working; logging in ... are blocked."
    latest_update_at: datetime | None
    latest_status: str


@dataclass(frozen=True)
class Answer:
    """What the confirmation page (and the API) says. ``shard`` is set only for
    someone who may see the report's tailnet."""

    public: PublicStatus
    shard: Shard | None = None
    known: KnownIncident | None = None

    @property
    def specific(self) -> bool:
        return self.shard is not None


def public_status(*, now: datetime | None = None) -> PublicStatus:
    """Non-operational components and open published incidents. Six queries."""
    now = now or timezone.now()
    statuses = component_statuses_now(now=now)
    names = dict(Component.objects.values_list("pk", "name"))
    troubled = sorted(
        (
            ComponentLine(names[pk], status)
            for pk, status in statuses.items()
            if status != ComponentStatus.OPERATIONAL and pk in names
        ),
        key=lambda line: (-levels.status_rank(line.status), line.name),
    )
    incidents = Incident.objects.filter(published=True, resolved_at__isnull=True).filter(
        Q(kind="incident", started_at__lte=now)
        | Q(kind="maintenance", status__in=["in_progress", "verifying"])
    )
    overall = levels.worst_status(statuses.values())
    return PublicStatus(
        overall=overall,
        troubled=tuple(troubled),
        incidents=tuple(
            IncidentLine(i.title, reverse("public:incident", args=[i.pk]), i.started_at)
            for i in incidents.order_by("-started_at", "-id")
        ),
    )


def known_incident(*, shard: Shard, since: datetime, now: datetime) -> KnownIncident | None:
    """The newest published incident with an impact window on ``shard`` that
    overlaps [since, now]: open ones first. Three queries."""
    impacts = ShardImpact.objects.filter(shard=shard, starts_at__lte=now).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=since)
    )
    incident = (
        Incident.objects.filter(published=True, shard_impacts__in=impacts)
        .exclude(status=Incident.Status.SCHEDULED)
        .prefetch_related(
            Prefetch("shard_impacts", queryset=impacts.order_by("starts_at"), to_attr="here"),
            Prefetch(
                "updates",
                queryset=IncidentUpdate.objects.order_by("-display_at", "-id"),
                to_attr="timeline",
            ),
        )
        .order_by(F("resolved_at").desc(nulls_first=True), "-started_at", "-id")
        .first()
    )
    if incident is None:
        return None
    ongoing = incident.resolved_at is None
    live = [w for w in incident.here if w.ends_at is None or w.ends_at > now]
    windows = live if ongoing and live else incident.here
    phase = "ongoing" if ongoing and live else "past"
    level = levels.worst(window.level for window in windows)
    component = shard.component
    affected = [wording.Affected(component.kind, level, component.name)]
    words = wording.describe(affected=affected, incident_kind=incident.kind, phase=phase)
    latest = incident.timeline[0] if incident.timeline else None
    return KnownIncident(
        title=incident.title,
        url=reverse("public:incident", args=[incident.pk]),
        started_at=min(window.starts_at for window in windows),
        resolved_at=incident.resolved_at,
        where=component.name,
        headline=words.headline,
        sentence=words.sentence,
        latest_update_at=latest.display_at if latest else None,
        latest_status=latest.get_status_display() if latest else "",
    )


def _visible_tailnet(report: Report, *, user: Any, auth: Any) -> Tailnet | None:
    """The report's tailnet if the viewer is one of its members (or holds its
    token); else None, the same for a foreign tailnet as for no tailnet."""
    if report.tailnet_id is None:
        return None
    try:
        slug = Tailnet.objects.values_list("slug", flat=True).get(pk=report.tailnet_id)
        return tailnet_access(user=user, slug=slug, auth=auth).tailnet
    except (Http404, Tailnet.DoesNotExist):
        return None


def report_answer(
    *, report: Report, user: Any, auth: Any = None, now: datetime | None = None
) -> Answer:
    """The instant answer to ``report`` as ``user`` (or the token ``auth``) may see it."""
    now = now or timezone.now()
    public = public_status(now=now)
    tailnet = _visible_tailnet(report, user=user, auth=auth)
    if tailnet is None:
        return Answer(public=public)
    shard = shard_at(tailnet=tailnet, at=min(report.started_at, now))
    if shard is None:
        return Answer(public=public)
    known = known_incident(shard=shard, since=min(report.started_at, now), now=now)
    return Answer(public=public, shard=shard, known=known)


def tailnet_reports(tailnet: Tailnet, *, limit: int = 50) -> list[Report]:
    """A tailnet's reports for its members, newest first, without bots' reports.
    One query."""
    return list(
        Report.objects.filter(tailnet=tailnet, honeypot=False)
        .select_related("incident")
        .order_by("-created_at", "-id")[:limit]
    )


def untriaged_report_ids(*, older_than: datetime, limit: int = 500) -> list[int]:
    """Reports still new that were saved before ``older_than``, oldest first."""
    return list(
        Report.objects.filter(status=ReportStatus.NEW, created_at__lt=older_than)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
