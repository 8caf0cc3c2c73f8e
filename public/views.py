"""Public pages. Thin: queries, then a template.

Every public page is a pure function of the database and the clock: templates are
rendered without the request (no user, no session, no CSRF token), so a snapshot
layer can capture the bytes and serve them to everyone. Each page makes a fixed
number of queries however many components, incidents or updates there are.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_safe

from incidents import levels, wording
from incidents.figures import duration_text
from incidents.impact import BlastRadius, span_seconds
from incidents.models import (
    Component,
    ComponentGroup,
    ComponentStatus,
    Incident,
    IncidentUpdate,
    ShardImpact,
)
from incidents.queries import (
    DayIncident,
    component_statuses_now,
    components_day_incidents,
    components_uptime,
    history_incidents,
    incidents_blast_radius,
    oldest_published_incident_start,
    postmortem_published,
    public_follow_ups,
    public_incident,
    quarter_resolve_median,
    resolve_seconds,
    status_page_incidents,
)
from incidents.uptime import DayUptime, total
from plumbing.params import whole_number

from . import previews
from .badge import badge_for_status

logger = logging.getLogger(__name__)

UPTIME_DAYS = 90
RECENT_DAYS = 14
MONTHS_PER_PAGE = 3
FOLD_GROUPS_OVER = 6  # components: a longer group starts folded while all is well
CLOSED = Incident.CLOSED_STATUSES


def _page(template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    # No request: no context processors, so nothing per-user can reach the page.
    return HttpResponse(render_to_string(template, context), status=status)


# --- Incidents in plain words --------------------------------------------------------------


def phase_of(incident: Incident) -> str:
    """upcoming (scheduled maintenance), ongoing, or past."""
    if incident.kind == Incident.Kind.MAINTENANCE:
        if incident.status == Incident.Status.SCHEDULED:
            return "upcoming"
        return "past" if incident.status in CLOSED else "ongoing"
    return "past" if incident.status in CLOSED else "ongoing"


def _level(status: str) -> str | None:
    return levels.level_for_status(status) if status in levels.COMPONENT_STATUSES else None


def _live(window: ShardImpact, now: datetime) -> bool:
    return window.starts_at <= now and (window.ends_at is None or window.ends_at > now)


@dataclass
class ShardLine:
    """An affected shard as customers may see it: its public name, never its slug."""

    name: str
    component: str
    windows: list[ShardImpact]

    @property
    def worst(self) -> str | None:
        return levels.worst(w.level for w in self.windows)

    def hit_at(self, now: datetime) -> bool:
        return any(_live(window, now) for window in self.windows)


@dataclass
class Card:
    """One incident as a public page shows it."""

    incident: Incident
    phase: str
    words: wording.Words
    latest: IncidentUpdate | None
    duration: str
    blast_radius: BlastRadius | None
    shards: list[ShardLine] = field(default_factory=list)

    @property
    def pk(self) -> int:
        return self.incident.pk


def _affected(
    incident: Incident, *, now: datetime, current_only: bool
) -> tuple[list[wording.Affected], list[str]]:
    """The components the incident touched, each at its worst level (only what is
    happening right now if ``current_only``), and the public names of its shards.

    A component hit through its shards at several levels (one shard down, its
    neighbours only slow) becomes one item per level, each naming its shards. An
    operator's status for the component counts when it is worse than its shards'.
    """
    components: dict[int, Component] = {}
    shard_levels: dict[int, dict[str, str]] = {}
    for window in incident.shard_impacts.all():
        if current_only and not _live(window, now):
            continue
        component = window.shard.component
        components[component.pk] = component
        per_shard = shard_levels.setdefault(component.pk, {})
        name = window.shard.public_name
        per_shard[name] = levels.worst([per_shard.get(name), window.level]) or window.level
    operator: dict[int, str | None] = {}
    for link in incident.affected_components.all():
        statuses = [link.status]
        if not current_only:
            statuses += [
                str(change.get("new_status", ""))
                for update in incident.updates.all()
                for change in update.affected_components
                if isinstance(change, dict) and change.get("code") == link.component.slug
            ]
        components.setdefault(link.component_id, link.component)
        operator[link.component_id] = levels.worst(_level(status) for status in statuses)
    affected = []
    for pk, component in components.items():
        shards = shard_levels.get(pk, {})
        worst_shard = levels.worst(shards.values())
        stated = operator.get(pk)
        if not shards or levels.rank(stated) > levels.rank(worst_shard):
            affected.append(wording.Affected(component.kind, stated, component.name))
            continue
        by_level: dict[str, list[str]] = {}
        for name, level in shards.items():
            by_level.setdefault(level, []).append(name)
        if len(by_level) == 1:
            affected.append(wording.Affected(component.kind, worst_shard, component.name))
            continue
        for level, names in by_level.items():
            affected.append(
                wording.Affected(component.kind, level, component.name, tuple(sorted(names)))
            )
    places = sorted({name for per_shard in shard_levels.values() for name in per_shard})
    return affected, places


def incident_card(incident: Incident, *, now: datetime, blast_radius: BlastRadius | None) -> Card:
    """Plain words and figures for one incident (its relations prefetched)."""
    phase = phase_of(incident)
    affected, places = _affected(incident, now=now, current_only=phase == "ongoing")
    if phase == "ongoing" and not any(item.level for item in affected):
        # Nothing is hit right now (recovered, being monitored): say what happened.
        past, past_places = _affected(incident, now=now, current_only=False)
        if any(item.level for item in past):
            affected, places, phase = past, past_places, "past"
    windows = list(incident.shard_impacts.all())
    words = wording.describe(
        affected=affected,
        incident_kind=incident.kind,
        phase=phase,
        blast_radius=blast_radius if windows else None,
        places=places,
    )
    updates = list(incident.updates.all())
    if phase_of(incident) == "upcoming" and incident.scheduled_for and incident.scheduled_until:
        seconds = span_seconds(incident.scheduled_for, incident.scheduled_until, as_of=now)
        duration = f"planned for {duration_text(seconds)}"
    else:
        seconds = span_seconds(incident.started_at, incident.resolved_at, as_of=now)
        duration = duration_text(seconds) + (" so far" if incident.resolved_at is None else "")
    shards: dict[int, ShardLine] = {}
    for window in windows:
        line = shards.setdefault(
            window.shard_id,
            ShardLine(window.shard.public_name, window.shard.component.name, []),
        )
        line.windows.append(window)
    return Card(
        incident=incident,
        phase=phase_of(incident),
        words=words,
        latest=updates[0] if updates else None,
        duration=duration,
        blast_radius=blast_radius if windows else None,
        shards=sorted(shards.values(), key=lambda line: (line.component, line.name)),
    )


def incident_cards(incidents: Sequence[Incident], *, now: datetime) -> list[Card]:
    """Cards for many incidents: three more queries for all their blast radii."""
    with_windows = [i for i in incidents if i.shard_impacts.all()]
    radii = incidents_blast_radius(incidents=with_windows, as_of=now)
    return [incident_card(i, now=now, blast_radius=radii.get(i.pk)) for i in incidents]


# --- The status page ---------------------------------------------------------------------


@dataclass
class ComponentRow:
    component: Component
    status: str
    days: list[DayUptime]
    incidents: dict[date, list[DayIncident]]

    @functools.cached_property
    def uptime(self) -> Fraction | None:
        return total(self.days).uptime


@dataclass
class GroupBlock:
    group: ComponentGroup | None
    rows: list[ComponentRow]

    @property
    def status(self) -> str:
        return levels.worst_status(row.status for row in self.rows)

    @property
    def open(self) -> bool:
        """Open unless it is long and all is well: a problem is never folded away."""
        return self.status != ComponentStatus.OPERATIONAL or len(self.rows) <= FOLD_GROUPS_OVER


@dataclass
class Banner:
    status: str
    lines: list[tuple[str, list[str]]]  # (status, component names), worst first


def _banner(statuses: Iterable[tuple[Component, str]]) -> Banner:
    by_status: dict[str, list[str]] = {}
    for component, status in statuses:
        if status != ComponentStatus.OPERATIONAL:
            by_status.setdefault(status, []).append(component.name)
    lines = sorted(by_status.items(), key=lambda item: -levels.status_rank(item[0]))
    return Banner(status=levels.worst_status(by_status), lines=lines)


@require_safe
def status_page(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    today = now.astimezone(UTC).date()
    first_day = today - timedelta(days=UPTIME_DAYS - 1)
    statuses = component_statuses_now(now=now)
    uptime = components_uptime(first_day=first_day, last_day=today, now=now)
    day_incidents = components_day_incidents(first_day=first_day, last_day=today, now=now)
    groups: dict[int | None, GroupBlock] = {}
    rows = []
    for component in Component.objects.select_related("group"):
        row = ComponentRow(
            component=component,
            status=statuses.get(component.pk, ComponentStatus.OPERATIONAL),
            days=uptime.get(component.pk, []),
            incidents=day_incidents.get(component.pk, {}),
        )
        rows.append(row)
        groups.setdefault(component.group_id, GroupBlock(component.group, [])).rows.append(row)
    cards = incident_cards(status_page_incidents(now=now, recent_days=RECENT_DAYS), now=now)
    open_incidents = [
        c for c in cards if c.incident.kind == Incident.Kind.INCIDENT and c.phase != "past"
    ]
    maintenance_now = [
        c for c in cards if c.incident.kind == Incident.Kind.MAINTENANCE and c.phase == "ongoing"
    ]
    upcoming = sorted(
        (c for c in cards if c.phase == "upcoming"),
        key=lambda c: (c.incident.scheduled_for or c.incident.started_at, c.pk),
    )
    recent = [c for c in cards if c.phase == "past"]
    banner = _banner((row.component, row.status) for row in rows)
    context = {
        "banner": banner,
        "groups": list(groups.values()),
        "open_incidents": open_incidents,
        "maintenance_now": maintenance_now,
        "upcoming": upcoming,
        "recent": recent,
        "recent_days": RECENT_DAYS,
        "uptime_days": UPTIME_DAYS,
        "now": now,
        "nav": "status",
        "preview": previews.current(
            banner=banner, cards=cards, now=now, path=reverse("public:status")
        ),
    }
    return _page("status/index.html", context)


# --- An incident's permalink ---------------------------------------------------------------


def _time_to_detect(incident: Incident) -> str | None:
    if incident.detected_at is None:
        return None
    if incident.detected_at <= incident.started_at:
        ahead = span_seconds(incident.detected_at, incident.started_at, as_of=incident.started_at)
        return f"found {duration_text(ahead)} before any impact" if ahead else "at once"
    return duration_text(
        span_seconds(incident.started_at, incident.detected_at, as_of=incident.detected_at)
    )


def _time_to_resolve(incident: Incident) -> str | None:
    if incident.resolved_at is None:
        return None
    detected = incident.detected_at
    if detected is not None and detected > incident.started_at:
        seconds = span_seconds(detected, incident.resolved_at, as_of=incident.resolved_at)
        return f"{duration_text(seconds)} after detection"
    seconds = span_seconds(incident.started_at, incident.resolved_at, as_of=incident.resolved_at)
    return f"{duration_text(seconds)} from the start"


@dataclass(frozen=True)
class AgainstQuarter:
    """Where a resolved incident stands against its UTC quarter, as text."""

    line: str  # "Resolved in 24 min; median this quarter 41 min"
    quarter: str  # "Q1 2026"
    incidents: int  # the quarter's resolved incidents the median is of


def _against_quarter(incident: Incident) -> AgainstQuarter | None:
    """A resolved incident's time to resolve beside the median of its quarter's
    (both as /reliability/ counts them); None for maintenance and open incidents.
    One query."""
    if incident.kind != Incident.Kind.INCIDENT or incident.resolved_at is None:
        return None
    windows = [window.starts_at for window in incident.shard_impacts.all()]  # prefetched
    own = resolve_seconds(
        started_at=incident.started_at,
        first_window_at=min(windows, default=None),
        resolved_at=incident.resolved_at,
    )
    quarter = quarter_resolve_median(at=incident.started_at)
    if quarter.median_seconds is None:  # it is one of them: only if the clock went back
        return None
    return AgainstQuarter(
        line=f"Resolved in {duration_text(own)}; median this quarter "
        f"{duration_text(quarter.median_seconds)}",
        quarter=quarter.label,
        incidents=quarter.incidents,
    )


def _component_statuses(incident: Incident, *, ongoing: bool) -> list[tuple[Component, str]]:
    """Each component an operator named, at its status now (ongoing) or at the
    worst status it had during the incident (afterwards)."""
    result = []
    for link in incident.affected_components.all():
        statuses = [link.status]
        if not ongoing:
            statuses += [
                str(change.get("new_status"))
                for update in incident.updates.all()
                for change in update.affected_components
                if isinstance(change, dict) and change.get("code") == link.component.slug
            ]
        known = [status for status in statuses if status in levels.COMPONENT_STATUSES]
        result.append((link.component, levels.worst_status(known)))
    return result


@require_safe
def incident_detail(request: HttpRequest, incident_id: int) -> HttpResponse:
    try:
        incident = public_incident(incident_id=incident_id)
    except Incident.DoesNotExist:
        raise Http404("No such incident.") from None
    now = timezone.now()
    (card,) = incident_cards([incident], now=now)
    postmortem_public = postmortem_published(incident, now=now)
    context = {
        "card": card,
        "incident": incident,
        "updates": list(incident.updates.all()),
        "components": _component_statuses(incident, ongoing=card.phase == "ongoing"),
        "time_to_detect": _time_to_detect(incident),
        "time_to_resolve": _time_to_resolve(incident),
        "nav": None,
        "postmortem_public": postmortem_public,
        "follow_ups": public_follow_ups(incident=incident, now=now),
        "against_quarter": _against_quarter(incident),
        "now": now,
        "preview": previews.incident(
            card=card, now=now, path=reverse("public:incident", args=[incident.pk])
        ),
    }
    return _page("status/incident.html", context)


# --- History -----------------------------------------------------------------------------


def _month_start(index: int) -> datetime:
    year, month = divmod(index, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


def _month_index(value: datetime) -> int:
    value = value.astimezone(UTC)
    return value.year * 12 + value.month - 1


@dataclass
class Month:
    start: datetime
    cards: list[Card]


@require_safe
def history(request: HttpRequest) -> HttpResponse:
    """Incidents and maintenance by month, newest first, three months a page,
    optionally only those that touched one component (``?component=<slug>``)."""
    now = timezone.now()
    raw_page = request.GET.get("page") or "1"
    page = whole_number(raw_page, minimum=1)
    if page is None:
        return HttpResponseBadRequest(
            "Bad page number: page must be a whole number, 1 or more.\n",
            content_type="text/plain; charset=utf-8",
        )
    slug = request.GET.get("component", "")
    components = list(Component.objects.select_related("group"))
    component = next((c for c in components if c.slug == slug), None)
    newest = _month_index(now)
    oldest = oldest_published_incident_start()
    pages = 1 if oldest is None else max(1, (newest - _month_index(oldest)) // MONTHS_PER_PAGE + 1)
    if page > pages:
        raise Http404("No such page.")
    first = newest - page * MONTHS_PER_PAGE + 1
    last = newest - (page - 1) * MONTHS_PER_PAGE
    unknown = bool(slug) and component is None
    incidents = (
        []
        if unknown
        else history_incidents(
            start=_month_start(first), end=_month_start(last + 1), component=component
        )
    )
    cards = incident_cards(incidents, now=now)
    path = reverse("public:history")
    if component is not None:
        path += f"?{urlencode({'component': component.slug})}"
    months = [Month(_month_start(index), []) for index in range(last, first - 1, -1)]
    for card in cards:
        months[last - _month_index(card.incident.started_at)].cards.append(card)
    context = {
        "months": months,
        "page": page,
        "pages": pages,
        "newer": page - 1 if page > 1 else None,
        "older": page + 1 if page < pages else None,
        "components": components,
        "component": component,
        "unknown_slug": slug if unknown else None,
        "now": now,
        "nav": "history",
        "preview": _current_preview(components=components, now=now, path=path),
    }
    return _page("status/history.html", context)


# --- Any other public page ------------------------------------------------------------------


def _current_preview(
    *, components: Sequence[Component], now: datetime, path: str
) -> previews.Preview:
    """The current state's link preview for a page that does not show it: at most eight
    queries (the components' statuses, the incidents and maintenance not closed)."""
    statuses = component_statuses_now(now=now)
    banner = _banner(
        (component, statuses.get(component.pk, ComponentStatus.OPERATIONAL))
        for component in components
    )
    cards = [
        incident_card(incident, now=now, blast_radius=None)
        for incident in status_page_incidents(now=now, recent_days=0)
    ]
    return previews.current(banner=banner, cards=cards, now=now, path=path)


# --- Badges ----------------------------------------------------------------------------


def _svg(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="image/svg+xml; charset=utf-8")


@require_safe
def badge(request: HttpRequest) -> HttpResponse:
    """The overall status as a shields-style SVG badge."""
    statuses = component_statuses_now(now=timezone.now())
    return _svg(badge_for_status(label="status", status=levels.worst_status(statuses.values())))


@require_safe
def component_badge(request: HttpRequest, slug: str) -> HttpResponse:
    component = Component.objects.filter(slug=slug).first()
    if component is None:
        raise Http404("No such component.")
    status = component_statuses_now(now=timezone.now()).get(
        component.pk, ComponentStatus.OPERATIONAL
    )
    return _svg(badge_for_status(label=component.name, status=status))


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the process answers and the database does."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # any database error means "not ready"
        # The error names the database's host and port: for the log, not the world.
        logger.warning("healthz: database unavailable (%s)", error)
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
