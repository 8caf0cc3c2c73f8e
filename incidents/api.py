"""The operator API, ``/api/v1/incidents/…``: what alerting tools and operators'
scripts use to open, update, publish and resolve incidents and maintenance, and to
record the follow-ups (improvements) an incident led to.

Who may call it: a staff-scoped bearer token, or a staff user's session (with
CSRF, as DRF's SessionAuthentication enforces). Views are thin: a serializer
validates the input (unknown fields are refused, not ignored), a service in
``incidents.services`` writes, and the same transaction records an ``AuditEntry``
(who, with which token, what, from where): a write that fails leaves neither
rows nor an audit entry.

Responses use Statuspage's field names where they overlap (``name``,
``incident_updates``, ``components``, ``shortlink``, ``postmortem_body``) so
tools written for its manage API feel at home; ``title`` is there too.

Retries: ``POST /incidents/``, ``POST /incidents/<id>/updates`` and ``POST
/incidents/<id>/follow-ups`` accept an ``Idempotency-Key`` header. The key is stored
in the audit entry of the write it made (in the same transaction), so a retry with
the same key from the same token (or user) within 24 hours returns the incident (or
the follow-up) instead of writing twice. The database rather than the cache: a key
is recorded exactly when its write commits, retries are serialised by a row lock on
the caller's token (or user), and the API keeps working when Redis is down — which
is when it is needed most.
"""

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from plumbing.models import ApiToken
from plumbing.params import iso_datetime
from plumbing.parsers import StrictJSONParser
from plumbing.site import absolute
from plumbing.throttles import PerTokenThrottle
from plumbing.tokens import BearerTokenAuthentication, HasScope

from . import services
from .audit import Actor, actor_for_request, request_digest
from .models import (
    CLOSED_STATUSES,
    AuditEntry,
    Component,
    ComponentStatus,
    FollowUp,
    FollowUpStatus,
    ImpactLevel,
    Incident,
    IncidentComponent,
    IncidentImpact,
    IncidentKind,
    IncidentStatus,
    IncidentUpdate,
    Shard,
    ShardImpact,
    TailnetImpact,
)
from .queries import incident_blast_radius

logger = logging.getLogger(__name__)

THROTTLE_SCOPE = "operator_api"
# Used when REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] has no "operator_api" entry.
DEFAULT_RATE = "300/min"
IDEMPOTENCY_WINDOW = timedelta(hours=24)
IDEMPOTENCY_KEY_MAX = 255


# --- Access ------------------------------------------------------------------------------

_StaffScope = HasScope.of(ApiToken.Scope.STAFF)


class IsOperator(BasePermission):
    """A staff-scoped token, or a staff user's session. A token of any other scope
    is refused even when its creator is staff (request.user is the creator)."""

    message = "The operator API needs a staff-scoped token or a staff user's session."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.auth is not None:
            return bool(_StaffScope().has_permission(request, view))
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "is_staff", False))


class OperatorRateThrottle(PerTokenThrottle):
    default_rate = DEFAULT_RATE


# --- Input -------------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know: a typo (or a status sent to PATCH) must not
    be silently ignored while the answer says 200."""

    hints: Mapping[str, str] = {}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [
                            self.hints.get(
                                name, f"Unknown field; expected one of {', '.join(self.fields)}."
                            )
                        ]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a time zone; a naive time is refused rather than guessed."""

    default_error_messages = {
        "invalid": (
            "Not a date and time: ISO 8601 with a time zone, e.g. 2026-01-05T10:00:00Z "
            "(month 1-12, a day the month has, an offset within ±23:59)."
        ),
        "naive": "The time zone is missing (use Z or +00:00).",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str):
            parsed = iso_datetime(value)
            if parsed is None:
                self.fail("invalid")
            if timezone.is_naive(parsed):
                self.fail("naive")
        return super().to_internal_value(value)


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class ComponentStatusesField(serializers.DictField):
    """``{component slug: Statuspage status}`` → ``{Component: status}``, one query."""

    child = serializers.ChoiceField(choices=ComponentStatus.choices)

    def to_internal_value(self, data: Any) -> dict[Component, str]:
        statuses: dict[str, str] = super().to_internal_value(data)
        # A slug no column can hold (a NUL byte, which PostgreSQL refuses) is unknown.
        names = [slug for slug in statuses if "\x00" not in slug]
        found = {c.slug: c for c in Component.objects.filter(slug__in=names)}
        unknown = sorted(set(statuses) - set(found))
        if unknown:
            raise serializers.ValidationError([f"Unknown component {slug!r}." for slug in unknown])
        return {found[slug]: value for slug, value in statuses.items()}


class WindowIn(StrictSerializer):
    shard = serializers.CharField(max_length=64)
    level = serializers.ChoiceField(choices=ImpactLevel.choices)
    starts_at = AwareDateTimeField()
    ends_at = AwareDateTimeField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        shard = getattr(attrs["shard"], "slug", attrs["shard"])
        problem = services.window_problem(shard, attrs["starts_at"], attrs.get("ends_at"))
        if problem is not None:
            raise serializers.ValidationError({"ends_at": [problem]})
        return attrs


def _resolve_shards(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shard slugs → Shards, one query; unknown slugs are a field error."""
    slugs = {window["shard"] for window in windows}
    found = {s.slug: s for s in Shard.objects.filter(slug__in=slugs)}
    unknown = sorted(slugs - set(found))
    if unknown:
        raise serializers.ValidationError([f"Unknown shard {slug!r}." for slug in unknown])
    return [{**window, "shard": found[window["shard"]]} for window in windows]


class IncidentCreateIn(StrictSerializer):
    title = serializers.CharField(max_length=200)
    body = serializers.CharField(help_text="The first update, in Markdown.")
    kind = serializers.ChoiceField(choices=IncidentKind.choices, default=IncidentKind.INCIDENT)
    status = serializers.ChoiceField(choices=IncidentStatus.choices, required=False)
    impact = serializers.ChoiceField(choices=IncidentImpact.choices, required=False)
    started_at = AwareDateTimeField(required=False)
    detected_at = AwareDateTimeField(required=False, allow_null=True)
    scheduled_for = AwareDateTimeField(required=False, allow_null=True)
    scheduled_until = AwareDateTimeField(required=False, allow_null=True)
    components = ComponentStatusesField(required=False)
    shard_impacts = serializers.ListField(child=WindowIn(), required=False, max_length=500)
    published = serializers.BooleanField(default=False)

    hints = {"name": "Send the incident's name as 'title'."}

    def validate_shard_impacts(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _resolve_shards(value)


class IncidentEditIn(StrictSerializer):
    title = serializers.CharField(max_length=200, required=False)
    impact = serializers.ChoiceField(choices=IncidentImpact.choices, required=False)
    postmortem = serializers.CharField(allow_blank=True, required=False, help_text="Markdown.")

    hints = {
        "status": "The status changes with an update: POST /api/v1/incidents/<id>/updates.",
        "components": "Components change with an update: POST /api/v1/incidents/<id>/updates.",
        "shard_impacts": "Impact windows: POST /api/v1/incidents/<id>/impacts.",
        "published": "POST /api/v1/incidents/<id>/publish.",
        "name": "Send the incident's name as 'title'.",
    }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(
                {"detail": ["Nothing to change: send title, impact or postmortem."]}
            )
        return attrs


class UpdateIn(StrictSerializer):
    status = serializers.ChoiceField(choices=IncidentStatus.choices)
    body = serializers.CharField(help_text="Markdown.")
    components = ComponentStatusesField(required=False)


class ResolveIn(StrictSerializer):
    body = serializers.CharField(required=False, help_text="Markdown; a default if empty.")
    components = ComponentStatusesField(
        required=False, help_text="Default: every affected component back to operational."
    )


class ImpactAddIn(WindowIn):
    def validate_shard(self, value: str) -> Shard:
        shard = Shard.objects.filter(slug=value).first()
        if shard is None:
            raise serializers.ValidationError(f"Unknown shard {value!r}.")
        return shard


class ImpactCloseIn(StrictSerializer):
    at = AwareDateTimeField(required=False, help_text="When the window ended; default now.")


class FollowUpIn(StrictSerializer):
    text = serializers.CharField(max_length=500, help_text="Plain text: the improvement.")
    owner = serializers.CharField(
        max_length=120, help_text="Plain text: who owns it, a person or team name."
    )
    status = serializers.ChoiceField(choices=FollowUpStatus.choices, default=FollowUpStatus.OPEN)
    done_on = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="The UTC date it was done (YYYY-MM-DD): required when done, none when open.",
    )


class FollowUpEditIn(StrictSerializer):
    text = serializers.CharField(max_length=500, required=False)
    owner = serializers.CharField(max_length=120, required=False)
    status = serializers.ChoiceField(choices=FollowUpStatus.choices, required=False)
    done_on = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="Required when it becomes done; reopening clears it.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(
                {"detail": ["Nothing to change: send text, owner, status or done_on."]}
            )
        return attrs


class ListFilterIn(serializers.Serializer):
    status = serializers.CharField(required=False, help_text="One or more, comma-separated.")
    kind = serializers.ChoiceField(choices=IncidentKind.choices, required=False)
    published = serializers.BooleanField(required=False, allow_null=True, default=None)
    open = serializers.BooleanField(required=False, allow_null=True, default=None)

    def validate_status(self, value: str) -> list[str]:
        statuses = [s.strip() for s in value.split(",") if s.strip()]
        unknown = [s for s in statuses if s not in IncidentStatus.values]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown status {unknown[0]!r}; use one of {', '.join(IncidentStatus.values)}."
            )
        return statuses


# --- Output ------------------------------------------------------------------------------


class ComponentOut(serializers.Serializer):
    id = serializers.IntegerField(source="component.pk")
    code = serializers.CharField(source="component.slug")
    name = serializers.CharField(source="component.name")
    status = serializers.CharField()


class UpdateOut(serializers.Serializer):
    id = serializers.IntegerField()
    incident_id = serializers.IntegerField()
    status = serializers.CharField()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(source="created_at")
    display_at = serializers.DateTimeField()
    affected_components = serializers.JSONField()


class WindowOut(serializers.Serializer):
    id = serializers.IntegerField()
    incident_id = serializers.IntegerField()
    shard = serializers.CharField(source="shard.slug")
    level = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True)


class FollowUpOut(serializers.Serializer):
    id = serializers.IntegerField()
    incident_id = serializers.IntegerField()
    text = serializers.CharField()
    owner = serializers.CharField()
    status = serializers.ChoiceField(choices=FollowUpStatus.choices)
    done_on = serializers.DateField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class IncidentOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="title")
    title = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    impact = serializers.CharField()
    # A declared field named like Field.source: DRF's metaclass pops it from the class.
    source = serializers.CharField()  # type: ignore[assignment]
    published = serializers.BooleanField()
    published_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    detected_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    scheduled_for = serializers.DateTimeField(allow_null=True)
    scheduled_until = serializers.DateTimeField(allow_null=True)
    shortlink = serializers.SerializerMethodField()
    postmortem_body = serializers.CharField(source="postmortem")
    postmortem_published_at = serializers.DateTimeField(allow_null=True)
    affected_tailnets = serializers.IntegerField(source="affected_count")
    incident_updates = UpdateOut(source="updates", many=True)
    components = ComponentOut(source="affected_components", many=True)

    def get_shortlink(self, incident: Incident) -> str:
        return absolute(reverse("public:incident", args=[incident.pk]))


class IncidentDetailOut(IncidentOut):
    shard_impacts = WindowOut(many=True)
    affected_tailnets_pending = serializers.SerializerMethodField(
        help_text="True until the affected tailnets are recomputed after a change."
    )
    blast_radius = serializers.SerializerMethodField()

    def get_affected_tailnets_pending(self, incident: Incident) -> bool:
        computed = incident.impacts_computed_at
        has_windows = bool(incident.shard_impacts.all())
        return has_windows and (computed is None or computed < incident.impacts_changed_at)

    def get_blast_radius(self, incident: Incident) -> dict[str, Any]:
        radius = self.context["blast_radius"]
        return {
            "affected": radius.affected,
            "total": radius.total,
            "share": radius.share,
            "percent": radius.percent_text,
            "by_level": radius.by_level,
            "summary": str(radius),
        }


def _incidents() -> QuerySet[Incident]:
    """Incidents with everything a response shows: a fixed number of queries."""
    affected = (
        TailnetImpact.objects.filter(incident=OuterRef("pk"))
        .order_by()
        .values("incident")
        .annotate(n=Count("tailnet", distinct=True))
        .values("n")
    )
    return Incident.objects.annotate(
        affected_count=Coalesce(Subquery(affected), 0)
    ).prefetch_related(
        Prefetch("updates", queryset=IncidentUpdate.objects.order_by("-display_at", "-id")),
        Prefetch(
            "affected_components",
            queryset=IncidentComponent.objects.select_related("component").order_by(
                "component__position", "component__name"
            ),
        ),
    )


def _incident_or_404(incident_id: int, queryset: QuerySet[Incident] | None = None) -> Incident:
    incident = (
        (queryset if queryset is not None else Incident.objects).filter(pk=incident_id).first()
    )
    if incident is None:
        raise exceptions.NotFound(f"No incident {incident_id}.")
    return incident


def _detail(request: Request, incident_id: int) -> dict[str, Any]:
    incident = _incident_or_404(
        incident_id,
        _incidents().prefetch_related(
            Prefetch("shard_impacts", queryset=ShardImpact.objects.select_related("shard"))
        ),
    )
    context = {"request": request, "blast_radius": incident_blast_radius(incident=incident)}
    return IncidentDetailOut(incident, context=context).data


def _lock_caller(request: Request) -> None:
    """Serialise one caller's writes, so a retry waits for the first attempt and
    then finds its idempotency key instead of writing twice."""
    if isinstance(request.auth, ApiToken):
        ApiToken.objects.select_for_update().filter(pk=request.auth.pk).first()
    elif request.user.is_authenticated:
        get_user_model().objects.select_for_update().filter(pk=request.user.pk).first()


def _idempotency_key(request: Request) -> str:
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return ""
    key = raw.strip().strip('"')
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise exceptions.ValidationError(
            {"Idempotency-Key": [f"1 to {IDEMPOTENCY_KEY_MAX} printable characters."]}
        )
    return key


def _actor(request: Request, *, key: str = "", data: Mapping[str, Any] | None = None) -> Actor:
    """The caller: the token (if any) and the user (a token's creator, or the session's)."""
    token = request.auth if isinstance(request.auth, ApiToken) else None
    return actor_for_request(request, token=token, idempotency_key=key, request_data=data)


def _earlier_write(
    request: Request, *, key: str, action: str, incident_id: int | None = None
) -> AuditEntry | None:
    """The audit entry of the write this caller made with this key in the last 24 h."""
    entries = AuditEntry.objects.filter(
        action=action, at__gte=timezone.now() - IDEMPOTENCY_WINDOW, idempotency_key=key
    )
    if isinstance(request.auth, ApiToken):
        entries = entries.filter(token=request.auth)
    else:
        entries = entries.filter(token__isnull=True, user_id=request.user.pk or 0)
    if incident_id is not None:
        entries = entries.filter(incident_id=incident_id)
    return entries.order_by("at", "id").first()


def _replay(request: Request, entry: AuditEntry, data: Mapping[str, Any]) -> Response:
    if entry.request_digest != request_digest(data):
        return Response(
            {
                "detail": "This Idempotency-Key was already used for a different request; "
                "send a new key for a new request."
            },
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if entry.incident_id is None:
        return Response(
            {"detail": "The incident written with this Idempotency-Key was deleted since."},
            status=status.HTTP_409_CONFLICT,
        )
    return Response(
        _detail(request, entry.incident_id),
        status=status.HTTP_201_CREATED,
        headers={"Idempotent-Replayed": "true"},
    )


# --- Views -------------------------------------------------------------------------------


def _problem(error: DjangoValidationError) -> dict[str, Any]:
    """A service's ValidationError as DRF's error shape: field errors when it names
    fields, else ``{"detail": "<message>"}``."""
    if hasattr(error, "error_dict"):
        problem: dict[str, Any] = {}
        for field, messages in error.message_dict.items():
            if field == NON_FIELD_ERRORS:
                problem["detail"] = " ".join(messages)
            else:
                problem[field] = messages
        return problem
    return {"detail": " ".join(error.messages)}


class OperatorApi(APIView):
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [IsOperator]
    throttle_classes = [OperatorRateThrottle]
    throttle_scope = THROTTLE_SCOPE
    parser_classes = [StrictJSONParser]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DjangoValidationError):
            return Response(_problem(exc), status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)


class IncidentPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class IncidentListCreateApi(OperatorApi):
    """GET: every incident and maintenance, drafts included, newest first;
    ``?status=a,b``, ``?kind=``, ``?published=``, ``?open=``; ``?limit=&offset=``.
    POST: open an incident or schedule a maintenance."""

    def get(self, request: Request) -> Response:
        # A plain dict: as form input, a missing boolean would read as False.
        filters = ListFilterIn(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        incidents = _incidents().order_by("-started_at", "-id")
        if wanted.get("status"):
            incidents = incidents.filter(status__in=wanted["status"])
        if wanted.get("kind"):
            incidents = incidents.filter(kind=wanted["kind"])
        if wanted.get("published") is not None:
            incidents = incidents.filter(published=wanted["published"])
        if wanted.get("open") is True:
            incidents = incidents.exclude(status__in=CLOSED_STATUSES)
        elif wanted.get("open") is False:
            incidents = incidents.filter(status__in=CLOSED_STATUSES)
        paginator = IncidentPagination()
        page = paginator.paginate_queryset(incidents, request, view=self)
        data = IncidentOut(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)

    def post(self, request: Request) -> Response:
        key = _idempotency_key(request)
        given = IncidentCreateIn(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        with transaction.atomic():
            if key:
                _lock_caller(request)
                earlier = _earlier_write(request, key=key, action="incident.create")
                if earlier is not None:
                    return _replay(request, earlier, data)
            incident = services.incident_create(
                title=data["title"],
                body=data["body"],
                kind=data["kind"],
                status=data.get("status"),
                started_at=data.get("started_at"),
                detected_at=data.get("detected_at"),
                scheduled_for=data.get("scheduled_for"),
                scheduled_until=data.get("scheduled_until"),
                components=data.get("components"),
                shard_impacts=[
                    services.WindowSpec(w["shard"], w["level"], w["starts_at"], w.get("ends_at"))
                    for w in data.get("shard_impacts", [])
                ],
                published=data["published"],
                by=_actor(request, key=key, data=data),
                **({"impact": data["impact"]} if "impact" in data else {}),
            )
        return Response(_detail(request, incident.pk), status=status.HTTP_201_CREATED)


class IncidentDetailApi(OperatorApi):
    """GET: the incident, its timeline, components, windows and blast radius.
    PATCH: title, impact, postmortem (status changes go through updates)."""

    def get(self, request: Request, incident_id: int) -> Response:
        return Response(_detail(request, incident_id))

    def patch(self, request: Request, incident_id: int) -> Response:
        incident = _incident_or_404(incident_id)
        given = IncidentEditIn(data=request.data)
        given.is_valid(raise_exception=True)
        services.incident_edit(incident=incident, changes=given.validated_data, by=_actor(request))
        return Response(_detail(request, incident_id))


class IncidentUpdateCreateApi(OperatorApi):
    """POST: a timeline update (status, body, component statuses). A closing status
    (resolved, completed) ends the open impact windows. Takes an Idempotency-Key."""

    def post(self, request: Request, incident_id: int) -> Response:
        incident = _incident_or_404(incident_id)
        key = _idempotency_key(request)
        given = UpdateIn(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        with transaction.atomic():
            if key:
                _lock_caller(request)
                earlier = _earlier_write(
                    request, key=key, action="incident.update", incident_id=incident_id
                )
                if earlier is not None:
                    return _replay(request, earlier, data)
            services.incident_post_update(
                incident=incident,
                status=data["status"],
                body=data["body"],
                components=data.get("components"),
                by=_actor(request, key=key, data=data),
            )
        return Response(_detail(request, incident_id), status=status.HTTP_201_CREATED)


class IncidentPublishApi(OperatorApi):
    """POST: make a draft public. Publishing a published incident changes nothing."""

    def post(self, request: Request, incident_id: int) -> Response:
        services.incident_publish(incident=_incident_or_404(incident_id), by=_actor(request))
        return Response(_detail(request, incident_id))


class IncidentResolveApi(OperatorApi):
    """POST: resolve an incident (complete a maintenance) with a closing update; its
    open windows end now and its components go back to operational unless given.
    Resolving a resolved incident changes nothing, so retries are harmless."""

    def post(self, request: Request, incident_id: int) -> Response:
        incident = _incident_or_404(incident_id)
        given = ResolveIn(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        services.incident_resolve(
            incident=incident,
            body=data.get("body"),
            components=data.get("components"),
            by=_actor(request),
        )
        return Response(_detail(request, incident_id))


class ShardImpactAddApi(OperatorApi):
    """POST: a shard impact window (shard slug, level, starts_at, ends_at or open)."""

    def post(self, request: Request, incident_id: int) -> Response:
        incident = _incident_or_404(incident_id)
        given = ImpactAddIn(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        impact = services.shard_impact_add(
            incident=incident,
            shard=data["shard"],
            level=data["level"],
            starts_at=data["starts_at"],
            ends_at=data.get("ends_at"),
            by=_actor(request),
        )
        return Response(WindowOut(impact).data, status=status.HTTP_201_CREATED)


class ShardImpactCloseApi(OperatorApi):
    """POST: end an open window at ``at`` (default now)."""

    def post(self, request: Request, incident_id: int, impact_id: int) -> Response:
        given = ImpactCloseIn(data=request.data)
        given.is_valid(raise_exception=True)
        at = given.validated_data.get("at") or timezone.now()
        impact = (
            ShardImpact.objects.select_related("shard", "incident")
            .filter(pk=impact_id, incident_id=incident_id)
            .first()
        )
        if impact is None:
            raise exceptions.NotFound(f"No impact window {impact_id} on incident {incident_id}.")
        services.shard_impact_close(impact=impact, at=at, by=_actor(request))
        return Response(WindowOut(impact).data)


def _follow_up_or_404(incident_id: int, follow_up_id: int) -> FollowUp:
    """The follow-up of this incident: another incident's is not found here."""
    _incident_or_404(incident_id)
    follow_up = (
        FollowUp.objects.select_related("incident")
        .filter(pk=follow_up_id, incident_id=incident_id)
        .first()
    )
    if follow_up is None:
        raise exceptions.NotFound(f"No follow-up {follow_up_id} on incident {incident_id}.")
    return follow_up


def _replay_follow_up(entry: AuditEntry, data: Mapping[str, Any]) -> Response:
    """The follow-up an earlier POST with the same Idempotency-Key recorded."""
    if entry.request_digest != request_digest(data):
        return Response(
            {
                "detail": "This Idempotency-Key was already used for a different request; "
                "send a new key for a new request."
            },
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    changes = entry.changes if isinstance(entry.changes, dict) else {}
    recorded = changes.get("follow_up_id")
    follow_up = (
        FollowUp.objects.filter(pk=recorded, incident_id=entry.incident_id).first()
        if isinstance(recorded, int) and entry.incident_id is not None
        else None
    )
    if follow_up is None:
        return Response(
            {"detail": "The follow-up recorded with this Idempotency-Key was removed since."},
            status=status.HTTP_409_CONFLICT,
        )
    return Response(
        FollowUpOut(follow_up).data,
        status=status.HTTP_201_CREATED,
        headers={"Idempotent-Replayed": "true"},
    )


class FollowUpListCreateApi(OperatorApi):
    """GET: the incident's follow-ups, oldest first. POST: record one (text, owner,
    status open or done, done_on when done); takes an Idempotency-Key."""

    def get(self, request: Request, incident_id: int) -> Response:
        incident = _incident_or_404(incident_id)
        follow_ups = incident.follow_ups.order_by("created_at", "id")
        return Response(FollowUpOut(follow_ups, many=True).data)

    def post(self, request: Request, incident_id: int) -> Response:
        incident = _incident_or_404(incident_id)
        key = _idempotency_key(request)
        given = FollowUpIn(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        done_on = data.get("done_on")
        # The request as its digest sees it (a date is not JSON).
        digested = {**data, "done_on": None if done_on is None else done_on.isoformat()}
        with transaction.atomic():
            if key:
                _lock_caller(request)
                earlier = _earlier_write(
                    request, key=key, action="follow_up.add", incident_id=incident_id
                )
                if earlier is not None:
                    return _replay_follow_up(earlier, digested)
            follow_up = services.follow_up_add(
                incident=incident,
                text=data["text"],
                owner=data["owner"],
                status=data["status"],
                done_on=done_on,
                by=_actor(request, key=key, data=digested),
            )
        return Response(FollowUpOut(follow_up).data, status=status.HTTP_201_CREATED)


class FollowUpDetailApi(OperatorApi):
    """PATCH: change its text, owner, status or done date. DELETE: remove it."""

    def patch(self, request: Request, incident_id: int, follow_up_id: int) -> Response:
        follow_up = _follow_up_or_404(incident_id, follow_up_id)
        given = FollowUpEditIn(data=request.data)
        given.is_valid(raise_exception=True)
        changed = services.follow_up_change(
            follow_up=follow_up, changes=given.validated_data, by=_actor(request)
        )
        return Response(FollowUpOut(changed).data)

    def delete(self, request: Request, incident_id: int, follow_up_id: int) -> Response:
        follow_up = _follow_up_or_404(incident_id, follow_up_id)
        services.follow_up_remove(follow_up=follow_up, by=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
