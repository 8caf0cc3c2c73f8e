"""Statuspage-v2-compatible JSON: the paths, field names, enum values and shapes of
Atlassian Statuspage's public API, so that existing clients, widgets and
integrations read this page unchanged (checked against real responses in
``tests/api/fixtures``).

The builders are plain functions ``(request, now) -> dict``. Absolute links are on
the site's configured address (``plumbing.site``), never the request's Host: the
answers are cached publicly. Their output is a pure function of the database and ``now``,
so a snapshot layer can capture it; the views are thin wrappers that add the
headers. Every builder runs a fixed number of queries, however many components,
incidents or updates there are.

Where our data is richer or differently shaped than Statuspage's, the choices are:

* **ids** are strings, as in Statuspage. A component's id is its slug, because an
  update's ``affected_components[].code`` *is* the component id in Statuspage and
  our updates store the slug there, so clients can join the two. A group's id is
  ``group-<pk>``; incidents and updates use ``str(pk)``.
* **times** are UTC with milliseconds and ``Z`` (``2026-01-05T10:02:00.000Z``), as
  Statuspage writes them for a page whose ``time_zone`` is ``Etc/UTC``.
* **page status** follows Statuspage's rule: it is computed from the components'
  statuses (GitHub's real summary shows an incident of impact ``major`` under a
  page that says ``minor`` / "Minor Service Outage", because its component was by
  then only ``partial_outage``). Only when no component is impacted does an open
  incident's impact (or a maintenance in progress) decide it.
* **extra keys**, which clients ignore: each incident and maintenance carries
  ``affected_tailnets``, ``affected_tailnets_share`` (of the tailnets that existed
  during its window) and ``affected_shards`` (public shard names).
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Max, Q, QuerySet
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents.levels import worst_impact, worst_status
from incidents.models import (
    Component,
    ComponentGroup,
    ComponentStatus,
    Incident,
    IncidentComponent,
    IncidentImpact,
    IncidentKind,
    IncidentStatus,
    IncidentUpdate,
    ShardImpact,
)
from incidents.queries import component_statuses_now, incidents_blast_radius
from plumbing.site import absolute

JSON = dict[str, Any]
Builder = Callable[[HttpRequest, datetime], JSON]

# Statuspage lists at most this many incidents or maintenances.
LIMIT = 50
TIME_ZONE = "Etc/UTC"
ACTIVE_MAINTENANCE = ("in_progress", "verifying")
UPCOMING_OR_ACTIVE_MAINTENANCE = ("scheduled", *ACTIVE_MAINTENANCE)

# Statuspage's page indicators and the descriptions it pairs with them.
INDICATORS = ("none", "minor", "major", "critical", "maintenance")
ALL_OPERATIONAL = ("none", "All Systems Operational")
UNDER_MAINTENANCE = ("maintenance", "Service Under Maintenance")
_IMPACT_STATUS = {
    "minor": ("minor", "Minor Service Outage"),
    "major": ("major", "Partial System Outage"),
    "critical": ("critical", "Major System Outage"),
}

# Statuspage allows cross-origin GETs (its widgets depend on it); 30 s of caching
# absorbs the polling of every client during an incident.
RESPONSE_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=30"}


def timestamp(value: datetime | None) -> str | None:
    """``2026-01-05T10:02:00.000Z``: Statuspage's format for a UTC page."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def page_status(
    component_statuses: Sequence[str],
    *,
    open_impacts: Iterable[str] = (),
    maintenance_in_progress: bool = False,
) -> tuple[str, str]:
    """Statuspage's top-level ``(indicator, description)`` from the status of every
    (non-group) component: all of them in major outage is "Major System Outage",
    some is "Partial System Outage"; all in partial outage is that too, some is
    "Minor Service Outage"; degraded is "Degraded System Service" (all) or
    "Partially Degraded Service" (some). With no component impacted, the worst
    open incident's impact decides, then maintenance."""
    total = len(component_statuses)

    def share(status: str) -> str | None:
        n = sum(1 for s in component_statuses if s == status)
        return None if n == 0 else "all" if n == total else "some"

    if major := share("major_outage"):
        return ("critical", "Major System Outage") if major == "all" else _IMPACT_STATUS["major"]
    if partial := share("partial_outage"):
        return _IMPACT_STATUS["major"] if partial == "all" else _IMPACT_STATUS["minor"]
    if degraded := share("degraded_performance"):
        if degraded == "all":
            return ("minor", "Degraded System Service")
        return ("minor", "Partially Degraded Service")
    worst = worst_impact(open_impacts)
    if worst in _IMPACT_STATUS:
        return _IMPACT_STATUS[worst]
    if share("under_maintenance") or maintenance_in_progress or worst == "maintenance":
        return UNDER_MAINTENANCE
    return ALL_OPERATIONAL


# --- The page and its components --------------------------------------------------------


@dataclass
class _Page:
    """What every endpoint shares: the page object and the component objects (in the
    public page's order), built once per request."""

    request: HttpRequest
    now: datetime
    id: str
    components: list[JSON] = field(default_factory=list)
    by_pk: dict[int, JSON] = field(default_factory=dict)
    order: dict[int, int] = field(default_factory=dict)
    leaf_statuses: list[str] = field(default_factory=list)
    updated_at: datetime | None = None

    def absolute(self, path: str) -> str:
        return absolute(path)

    def as_json(self) -> JSON:
        return {
            "id": self.id,
            "name": getattr(settings, "STATUSPAGE_NAME", "Coordination service status"),
            "url": self.absolute("/").rstrip("/"),
            "time_zone": TIME_ZONE,
            # Never after ``now``: a snapshot taken then could not have seen it.
            "updated_at": timestamp(min(self.updated_at or self.now, self.now)),
        }

    def touched(self, at: datetime | None) -> None:
        if at is not None and (self.updated_at is None or at > self.updated_at):
            self.updated_at = at


def _component_changes(now: datetime) -> dict[int, datetime]:
    """When each component's status last changed, as far as published data tells: the
    last change of an incident that set its status (a maintenance only once it has
    begun), or the last start or end of an impact window on one of its shards. Two
    queries."""
    changes: dict[int, datetime] = {}

    def note(pk: int, at: datetime | None) -> None:
        if at is not None and (pk not in changes or at > changes[pk]):
            changes[pk] = at

    for pk, at in (
        IncidentComponent.objects.filter(incident__published=True)
        .exclude(incident__kind=IncidentKind.MAINTENANCE, incident__status="scheduled")
        .order_by()
        .values("component_id")
        .annotate(at=Max("incident__updated_at"))
        .values_list("component_id", "at")
    ):
        note(pk, at)
    for pk, started, ended in (
        ShardImpact.objects.filter(incident__published=True, starts_at__lte=now)
        .order_by()
        .values("shard__component_id")
        .annotate(started=Max("starts_at"), ended=Max("ends_at", filter=Q(ends_at__lte=now)))
        .values_list("shard__component_id", "started", "ended")
    ):
        note(pk, started)
        note(pk, ended)
    return changes


@dataclass
class _Group:
    json: JSON
    statuses: list[str] = field(default_factory=list)
    updated_at: datetime | None = None


def _group_json(group: ComponentGroup, page_id: str) -> JSON:
    return {
        "id": f"group-{group.pk}",
        "name": group.name,
        "status": "operational",
        "created_at": timestamp(group.created_at),
        "updated_at": timestamp(group.created_at),
        "position": group.position,
        "description": group.description or None,
        "showcase": False,
        "start_date": None,
        "group_id": None,
        "page_id": page_id,
        "group": True,
        "only_show_if_degraded": False,
        "components": [],
    }


def _load_page(request: HttpRequest, now: datetime) -> _Page:
    """The page and its components with their current status, groups (with their
    worst child's status) before their children. Eight queries."""
    page = _Page(request=request, now=now, id=getattr(settings, "STATUSPAGE_ID", "coordination"))
    statuses = component_statuses_now(now=now)
    changes = _component_changes(now)
    groups: dict[int, _Group] = {}
    for component in Component.objects.select_related("group"):
        status = statuses[component.pk]
        updated = max(filter(None, [component.created_at, changes.get(component.pk)]))
        page.touched(updated)
        group = None
        if component.group is not None:
            if component.group.pk not in groups:
                groups[component.group.pk] = _Group(
                    _group_json(component.group, page.id), updated_at=component.group.created_at
                )
                page.components.append(groups[component.group.pk].json)
                page.touched(component.group.created_at)
            group = groups[component.group.pk]
            group.json["components"].append(component.slug)
            group.statuses.append(status)
            if group.updated_at is None or updated > group.updated_at:
                group.updated_at = updated
        item = {
            "id": component.slug,
            "name": component.name,
            "status": status,
            "created_at": timestamp(component.created_at),
            "updated_at": timestamp(updated),
            "position": component.position,
            "description": component.description or None,
            "showcase": component.showcase,
            "start_date": component.created_at.astimezone(UTC).date().isoformat(),
            "group_id": None if group is None else group.json["id"],
            "page_id": page.id,
            "group": False,
            "only_show_if_degraded": False,
        }
        page.order[component.pk] = len(page.components)
        page.components.append(item)
        page.by_pk[component.pk] = item
        page.leaf_statuses.append(status)
    for group in groups.values():
        group.json["status"] = worst_status(group.statuses)
        group.json["updated_at"] = timestamp(group.updated_at)
    page.touched(Incident.objects.filter(published=True).aggregate(at=Max("updated_at"))["at"])
    return page


# --- Incidents and maintenances ---------------------------------------------------------


def _published() -> QuerySet[Incident]:
    return Incident.objects.filter(published=True)


def _fetch(incidents: QuerySet[Incident]) -> list[Incident]:
    """The incidents with their updates (newest first) and affected components.
    Three queries."""
    return list(incidents.prefetch_related("updates", "affected_components"))


def _affected_shards(incidents: Sequence[Incident]) -> dict[int, list[str]]:
    """The public names of the shards each incident has impact windows on. One query."""
    shards: dict[int, set[str]] = {}
    for incident_id, shard_name in (
        ShardImpact.objects.filter(incident_id__in=[incident.pk for incident in incidents])
        .order_by()
        .values_list("incident_id", "shard__public_name")
    ):
        shards.setdefault(incident_id, set()).add(shard_name)
    return {pk: sorted(names) for pk, names in shards.items()}


def _update_json(update: IncidentUpdate) -> JSON:
    changes = [
        {key: change.get(key) for key in ("code", "name", "old_status", "new_status")}
        for change in update.affected_components or ()
        if isinstance(change, dict)
    ]
    return {
        "id": str(update.pk),
        "status": update.status,
        # Statuspage gives the text as written; ours is Markdown.
        "body": update.body,
        "incident_id": str(update.incident_id),
        "created_at": timestamp(update.created_at),
        # Updates are never edited here, so they last changed when created.
        "updated_at": timestamp(update.created_at),
        "display_at": timestamp(update.display_at),
        "affected_components": changes or None,
        "deliver_notifications": True,
        "custom_tweet": None,
        "tweet_id": None,
    }


def _incidents_json(page: _Page, incidents: Sequence[Incident]) -> list[JSON]:
    """Statuspage incident (or scheduled maintenance) objects. Four queries for the
    blast radii and shards (none when there is nothing to show); the rest is prefetched."""
    if not incidents:
        return []
    radii = incidents_blast_radius(incidents=incidents, as_of=page.now)
    shards = _affected_shards(incidents)
    result = []
    for incident in incidents:
        updates = list(incident.updates.all())
        monitoring = [update.created_at for update in updates if update.status == "monitoring"]
        links = sorted(
            incident.affected_components.all(),
            key=lambda link: page.order.get(link.component_id, len(page.order)),
        )
        radius = radii[incident.pk]
        item: JSON = {
            "id": str(incident.pk),
            "name": incident.title,
            "status": incident.status,
            "created_at": timestamp(incident.created_at),
            "updated_at": timestamp(incident.updated_at),
            "monitoring_at": timestamp(min(monitoring)) if monitoring else None,
            "resolved_at": timestamp(incident.resolved_at),
            "impact": incident.impact,
            "shortlink": page.absolute(reverse("public:incident", args=[incident.pk])),
            "started_at": timestamp(incident.started_at),
            "page_id": page.id,
            "incident_updates": [_update_json(update) for update in updates],
            "components": [
                page.by_pk[link.component_id] for link in links if link.component_id in page.by_pk
            ],
        }
        if incident.kind == IncidentKind.MAINTENANCE:
            item["scheduled_for"] = timestamp(incident.scheduled_for)
            item["scheduled_until"] = timestamp(incident.scheduled_until)
        item["affected_tailnets"] = radius.affected
        item["affected_tailnets_share"] = radius.share
        item["affected_shards"] = shards.get(incident.pk, [])
        result.append(item)
    return result


def _status_json(page: _Page, open_now: Iterable[tuple[str, str]]) -> JSON:
    """``open_now``: ``(kind, impact)`` of the published incidents going on now and of
    the maintenances in progress."""
    impacts: list[str] = []
    maintenance = False
    for kind, impact in open_now:
        if kind == IncidentKind.MAINTENANCE:
            maintenance = True
        else:
            impacts.append(impact)
    indicator, description = page_status(
        page.leaf_statuses, open_impacts=impacts, maintenance_in_progress=maintenance
    )
    return {"indicator": indicator, "description": description}


def _going_on(incident: Incident, now: datetime) -> bool:
    if incident.resolved_at is not None:
        return False
    if incident.kind == IncidentKind.MAINTENANCE:
        return incident.status in ACTIVE_MAINTENANCE
    return incident.started_at <= now


# --- The endpoints ----------------------------------------------------------------------


def summary(request: HttpRequest, now: datetime) -> JSON:
    """``summary.json``: the page, its status, every component, the unresolved
    incidents and the upcoming or in-progress maintenances."""
    page = _load_page(request, now)
    fetched = _fetch(
        _published()
        .filter(
            Q(kind=IncidentKind.INCIDENT, resolved_at__isnull=True)
            | Q(kind=IncidentKind.MAINTENANCE, status__in=UPCOMING_OR_ACTIVE_MAINTENANCE)
        )
        .order_by("-started_at", "-id")
    )
    incidents = [i for i in fetched if i.kind == IncidentKind.INCIDENT]
    maintenances = sorted(
        (i for i in fetched if i.kind == IncidentKind.MAINTENANCE),
        key=lambda i: (i.scheduled_for or i.started_at, i.pk),
    )
    return {
        "page": page.as_json(),
        "components": page.components,
        "incidents": _incidents_json(page, incidents),
        "scheduled_maintenances": _incidents_json(page, maintenances),
        "status": _status_json(page, [(i.kind, i.impact) for i in fetched if _going_on(i, now)]),
    }


def status(request: HttpRequest, now: datetime) -> JSON:
    """``status.json``: the page and its status indicator and description."""
    page = _load_page(request, now)
    open_now = (
        _published()
        .filter(resolved_at__isnull=True)
        .filter(
            Q(kind=IncidentKind.INCIDENT, started_at__lte=now)
            | Q(kind=IncidentKind.MAINTENANCE, status__in=ACTIVE_MAINTENANCE)
        )
        .order_by()
        .values_list("kind", "impact")
    )
    return {"page": page.as_json(), "status": _status_json(page, open_now)}


def components(request: HttpRequest, now: datetime) -> JSON:
    """``components.json``: every component, groups included (``group: true``, with
    their children's ids)."""
    page = _load_page(request, now)
    return {"page": page.as_json(), "components": page.components}


def _incident_list(request: HttpRequest, now: datetime, incidents: QuerySet[Incident]) -> JSON:
    page = _load_page(request, now)
    return {"page": page.as_json(), "incidents": _incidents_json(page, _fetch(incidents))}


def _maintenance_list(
    request: HttpRequest, now: datetime, maintenances: QuerySet[Incident]
) -> JSON:
    page = _load_page(request, now)
    return {
        "page": page.as_json(),
        "scheduled_maintenances": _incidents_json(page, _fetch(maintenances)),
    }


def incidents(request: HttpRequest, now: datetime) -> JSON:
    """``incidents.json``: the 50 most recent incidents, resolved or not."""
    return _incident_list(
        request,
        now,
        _published().filter(kind=IncidentKind.INCIDENT).order_by("-started_at", "-id")[:LIMIT],
    )


def incidents_unresolved(request: HttpRequest, now: datetime) -> JSON:
    """``incidents/unresolved.json``: the incidents not yet resolved."""
    return _incident_list(
        request,
        now,
        _published()
        .filter(kind=IncidentKind.INCIDENT, resolved_at__isnull=True)
        .order_by("-started_at", "-id"),
    )


def scheduled_maintenances(request: HttpRequest, now: datetime) -> JSON:
    """``scheduled-maintenances.json``: the 50 most recent maintenances."""
    return _maintenance_list(
        request,
        now,
        _published()
        .filter(kind=IncidentKind.MAINTENANCE)
        .order_by("-scheduled_for", "-id")[:LIMIT],
    )


def scheduled_maintenances_upcoming(request: HttpRequest, now: datetime) -> JSON:
    """``scheduled-maintenances/upcoming.json``: maintenances still ``scheduled``,
    soonest first."""
    return _maintenance_list(
        request,
        now,
        _published()
        .filter(kind=IncidentKind.MAINTENANCE, status="scheduled")
        .order_by("scheduled_for", "id"),
    )


def scheduled_maintenances_active(request: HttpRequest, now: datetime) -> JSON:
    """``scheduled-maintenances/active.json``: maintenances ``in_progress`` or
    ``verifying``."""
    return _maintenance_list(
        request,
        now,
        _published()
        .filter(kind=IncidentKind.MAINTENANCE, status__in=ACTIVE_MAINTENANCE)
        .order_by("scheduled_for", "id"),
    )


# Path under /api/v2/ -> builder, for the views below and for anything that captures
# their output (a snapshot of each, served with ETags).
BUILDERS: dict[str, Builder] = {
    "summary.json": summary,
    "status.json": status,
    "components.json": components,
    "incidents.json": incidents,
    "incidents/unresolved.json": incidents_unresolved,
    "scheduled-maintenances.json": scheduled_maintenances,
    "scheduled-maintenances/upcoming.json": scheduled_maintenances_upcoming,
    "scheduled-maintenances/active.json": scheduled_maintenances_active,
}


def render(data: JSON) -> JsonResponse:
    """The response for a builder's output: compact JSON with Statuspage's headers."""
    response = JsonResponse(data, json_dumps_params={"separators": (",", ":")})
    for header, value in RESPONSE_HEADERS.items():
        response[header] = value
    return response


def _view(build: Builder) -> Callable[[HttpRequest], JsonResponse]:
    # Read-only and cookie-free: a POST is answered 405 (not CSRF's 403), as by
    # Statuspage.
    @csrf_exempt
    @require_safe
    def view(request: HttpRequest) -> JsonResponse:
        return render(build(request, timezone.now()))

    view.__name__ = view.__qualname__ = f"{build.__name__}_view"
    view.__doc__ = build.__doc__
    _describe(view, build)
    return view


# --- The OpenAPI schema -----------------------------------------------------------------
# The shapes the builders above return, for the published schema and /api/docs/. They
# describe and never render: the builders write Statuspage's exact JSON themselves.

# Statuspage's values are plain strings here: enums named by drf-spectacular would
# collide with the customer API's (both have a "status").


def _time(*, allow_null: bool = False) -> serializers.CharField:
    return serializers.CharField(
        allow_null=allow_null, help_text="UTC with milliseconds: 2026-01-05T10:02:00.000Z."
    )


def _one_of(values: Iterable[str]) -> str:
    return "One of " + ", ".join(values) + "."


class V2Page(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    url = serializers.CharField()
    time_zone = serializers.CharField(help_text=f"Always {TIME_ZONE}.")
    updated_at = _time()


class V2Status(serializers.Serializer):
    indicator = serializers.CharField(help_text=_one_of(INDICATORS))
    description = serializers.CharField(help_text="In Statuspage's words.")


class V2Component(serializers.Serializer):
    id = serializers.CharField(help_text="The component's slug, or group-<id> for a group.")
    name = serializers.CharField()
    status = serializers.CharField(help_text=_one_of(ComponentStatus.values))
    created_at = _time()
    updated_at = _time()
    position = serializers.IntegerField()
    description = serializers.CharField(allow_null=True)
    showcase = serializers.BooleanField()
    start_date = serializers.DateField(allow_null=True)
    group_id = serializers.CharField(allow_null=True)
    page_id = serializers.CharField()
    group = serializers.BooleanField()
    only_show_if_degraded = serializers.BooleanField()
    components = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="A group's components' ids."
    )


class V2ComponentChange(serializers.Serializer):
    code = serializers.CharField(allow_null=True, help_text="The component's id.")
    name = serializers.CharField(allow_null=True)
    old_status = serializers.CharField(allow_null=True)
    new_status = serializers.CharField(allow_null=True)


class V2IncidentUpdate(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField(help_text=_one_of(IncidentStatus.values))
    body = serializers.CharField(help_text="Markdown.")
    incident_id = serializers.CharField()
    created_at = _time()
    updated_at = _time()
    display_at = _time()
    affected_components = V2ComponentChange(many=True, allow_null=True)
    deliver_notifications = serializers.BooleanField()
    custom_tweet = serializers.CharField(allow_null=True)
    tweet_id = serializers.CharField(allow_null=True)


class V2Incident(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField(help_text=_one_of(IncidentStatus.values))
    created_at = _time()
    updated_at = _time()
    monitoring_at = _time(allow_null=True)
    resolved_at = _time(allow_null=True)
    impact = serializers.CharField(help_text=_one_of(IncidentImpact.values))
    shortlink = serializers.CharField()
    started_at = _time()
    page_id = serializers.CharField()
    incident_updates = V2IncidentUpdate(many=True, help_text="Newest first.")
    components = V2Component(many=True)
    scheduled_for = serializers.CharField(
        allow_null=True, required=False, help_text="Maintenances only."
    )
    scheduled_until = serializers.CharField(
        allow_null=True, required=False, help_text="Maintenances only."
    )
    affected_tailnets = serializers.IntegerField()
    affected_tailnets_share = serializers.FloatField(
        help_text="Of the tailnets that existed during its window, 0 to 1."
    )
    affected_shards = serializers.ListField(
        child=serializers.CharField(), help_text="Public shard names."
    )


class V2Summary(serializers.Serializer):
    page = V2Page()
    components = V2Component(many=True)
    incidents = V2Incident(many=True)
    scheduled_maintenances = V2Incident(many=True)
    status = V2Status()


class V2PageStatus(serializers.Serializer):
    page = V2Page()
    status = V2Status()


class V2Components(serializers.Serializer):
    page = V2Page()
    components = V2Component(many=True)


class V2Incidents(serializers.Serializer):
    page = V2Page()
    incidents = V2Incident(many=True)


class V2Maintenances(serializers.Serializer):
    page = V2Page()
    scheduled_maintenances = V2Incident(many=True)


SHAPES: dict[str, type[serializers.Serializer]] = {
    "summary": V2Summary,
    "status": V2PageStatus,
    "components": V2Components,
    "incidents": V2Incidents,
    "incidents_unresolved": V2Incidents,
    "scheduled_maintenances": V2Maintenances,
    "scheduled_maintenances_upcoming": V2Maintenances,
    "scheduled_maintenances_active": V2Maintenances,
}


def _describe(view: Callable[..., Any], build: Builder) -> None:
    """Let drf-spectacular list this plain Django view: its generator takes a view
    whose ``cls`` attribute is an APIView (the mark ``APIView.as_view()`` and
    ``@api_view`` leave) and reads the operation off that class's ``get``. The class
    only describes; ``view`` answers (Statuspage's headers, its 405, no DRF)."""
    words = " ".join((build.__doc__ or "").replace("``", "").split())

    class Described(APIView):
        authentication_classes = []
        permission_classes = [AllowAny]

        @extend_schema(
            operation_id=f"v2_{build.__name__}",
            summary=words,
            tags=["statuspage-v2"],
            responses={200: SHAPES[build.__name__]},
        )
        def get(self, request: Request) -> Response:
            raise NotImplementedError

    Described.__name__ = Described.__qualname__ = f"{build.__name__}_view"
    view.cls = Described  # type: ignore[attr-defined]
    view.initkwargs = {}  # type: ignore[attr-defined]


summary_view = _view(summary)
status_view = _view(status)
components_view = _view(components)
incidents_view = _view(incidents)
incidents_unresolved_view = _view(incidents_unresolved)
scheduled_maintenances_view = _view(scheduled_maintenances)
scheduled_maintenances_upcoming_view = _view(scheduled_maintenances_upcoming)
scheduled_maintenances_active_view = _view(scheduled_maintenances_active)
