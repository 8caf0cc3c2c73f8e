"""One tailnet's API, ``/api/v1/tailnets/<slug>/…``: its status now, the incidents
that touched it, its uptime and its shard's latency, for members' scripts and
dashboards.

Who may call it: a member's session (with CSRF on writes, as DRF's
SessionAuthentication enforces; there are none yet), or that tailnet's own
bearer token (scope "tailnet", created on the tailnet's tokens page). Nobody else
learns whether the tailnet exists: authentication and permission run first (401,
the same for every slug), then the one door (404 for unknown and foreign alike),
and only then the method (405).

Responses are never cached by anyone but the caller (``Cache-Control: private``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from incidents.figures import floor_pct
from incidents.queries import TailnetIncident
from incidents.uptime import Tally
from plumbing.models import ApiToken
from plumbing.site import absolute
from plumbing.throttles import PerTokenThrottle
from plumbing.tokens import BearerTokenAuthentication

from .access import TailnetAccess, tailnet_access
from .pagecache import cached_fragment
from .queries import (
    LATENCY_DAYS,
    Happening,
    LatencyHour,
    MonthUptime,
    Stay,
    tailnet_history,
    tailnet_latency,
    tailnet_now,
    tailnet_stays,
    tailnet_uptime_report,
)
from .serializers import (
    TailnetIncidentsSerializer,
    TailnetLatencySerializer,
    TailnetStatusSerializer,
    TailnetUptimeSerializer,
    UptimeRangeSerializer,
)

THROTTLE_SCOPE = "tailnet_api"
NOT_FOUND = OpenApiResponse(description="No such tailnet, or not one you may see (the same).")
UNAUTHENTICATED = OpenApiResponse(description="No session and no valid bearer token.")


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents ``Authorization: Bearer sp_…`` in the schema (registered on import)."""

    target_class = "plumbing.tokens.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A tailnet's API token (sp_…), created on its API tokens page.",
        }


class IsMemberOrTailnetToken(BasePermission):
    """A signed-in person or a bearer token; which tailnet they may see is the
    door's business (``customers.access``), not this class's."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiToken):
            return True
        return bool(request.user and request.user.is_authenticated)


class TailnetRateThrottle(PerTokenThrottle):
    """Per token (or person), failing open when the cache is down."""

    default_rate = "120/min"


class TailnetApi(APIView):
    # Bearer first: its WWW-Authenticate header turns "not signed in" into a 401.
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [IsMemberOrTailnetToken]
    throttle_classes = [TailnetRateThrottle]
    throttle_scope = THROTTLE_SCOPE
    access: TailnetAccess

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # The door, before the method is looked at: a foreign tailnet is a 404 for
        # every method, never a 405 that would tell it exists.
        self.access = tailnet_access(user=request.user, slug=kwargs["slug"], auth=request.auth)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    def cached_json(self, kind: str, build: Callable[[], dict[str, Any]]) -> HttpResponse:
        """``build()`` as the JSON bytes JSONRenderer gives (the only renderer of this
        API), cached per tailnet, data version and minute (``customers.pagecache``): the
        answer every member and dashboard polling this tailnet shares. Links in it are
        on the site's configured address (``plumbing.site``), the same for everyone."""
        body = cached_fragment(
            kind=kind,
            tailnet_id=self.access.tailnet.pk,
            now=timezone.now(),
            build=lambda: JSONRenderer().render(build()),
        )
        return HttpResponse(body, content_type="application/json")

    def tailnet_data(self) -> dict[str, str]:
        tailnet = self.access.tailnet
        return {"slug": tailnet.slug, "name": tailnet.display_name}

    def incident_url(self, incident_id: int) -> str:
        return absolute(reverse("public:incident", args=[incident_id]))


def _shard(stay: Stay | None) -> dict[str, str] | None:
    return None if stay is None else {"name": stay.shard_name, "region": stay.region}


def _iso(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


class TailnetStatusApi(TailnetApi):
    @extend_schema(
        summary="Is this tailnet affected now?",
        description="The state of the tailnet's coordination shard, the open incidents "
        "touching it in plain words, and maintenance scheduled on it.",
        responses={200: TailnetStatusSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        return self.cached_json("status", self.status_data)

    def status_data(self) -> dict[str, Any]:
        now = timezone.now()
        current = tailnet_now(stays=tailnet_stays(tailnet_id=self.access.tailnet.pk), now=now)

        def item(h: Happening) -> dict[str, Any]:
            incident = h.incident
            return {
                "id": incident.pk,
                "title": incident.title,
                "kind": incident.kind,
                "status": incident.status,
                "phase": h.phase,
                "level": h.level,
                "headline": h.words.headline,
                "what": h.words.sentence,
                "started_at": _iso(incident.started_at),
                "scheduled_for": _iso(incident.scheduled_for),
                "scheduled_until": _iso(incident.scheduled_until),
                "url": self.incident_url(incident.pk),
            }

        data = {
            "tailnet": self.tailnet_data(),
            "shard": _shard(current.stay),
            "status": current.status,
            "affected": current.affected,
            "incidents": [item(h) for h in current.incidents],
            "maintenance": [item(h) for h in current.maintenance],
            "as_of": now,
        }
        return TailnetStatusSerializer(data).data


class TailnetIncidentsApi(TailnetApi):
    @extend_schema(
        summary="The incidents that touched this tailnet",
        description="Every published incident that touched the tailnet, newest first, "
        "with exactly how long it was affected: only while it was placed on an affected "
        "shard (a live migration off the shard ends its impact).",
        responses={200: TailnetIncidentsSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        return self.cached_json("incidents", self.incidents_data)

    def incidents_data(self) -> dict[str, Any]:
        now = timezone.now()
        tailnet = self.access.tailnet
        stays = {stay.shard_id: stay for stay in tailnet_stays(tailnet_id=tailnet.pk)}

        def item(h: TailnetIncident) -> dict[str, Any]:
            return {
                "id": h.incident.pk,
                "title": h.incident.title,
                "kind": h.incident.kind,
                "status": h.incident.status,
                "impact": h.incident.impact,
                "level": h.worst_level,
                "affected_from": h.first_affected_at,
                "affected_until": h.last_affected_at,
                "affected_seconds": h.affected_seconds,
                "affected_minutes": _minutes(h.affected_seconds),
                "windows": [
                    {
                        "shard": _shard(stays.get(w.shard_id)),
                        "level": w.level,
                        "starts_at": w.starts_at,
                        "ends_at": w.ends_at,
                        "seconds": w.seconds,
                    }
                    for w in h.windows
                ],
                "url": self.incident_url(h.incident.pk),
            }

        history = tailnet_history(tailnet=tailnet, now=now)
        data = {"tailnet": self.tailnet_data(), "incidents": [item(h) for h in history]}
        return TailnetIncidentsSerializer(data).data


def _minutes(seconds: float) -> float:
    """Exact seconds as minutes, to four decimals (65 s is 1.0833 min)."""
    return round(seconds / 60, 4)


def tally_data(tally: Tally) -> dict[str, Any]:
    """A tally as ``TallySerializer`` represents it (same fields, order and types),
    and as ``uptime.csv`` writes it."""
    return {
        "minutes_with_data": _minutes(tally.total_seconds),
        "outage_minutes": _minutes(tally.outage_seconds),
        "partial_minutes": _minutes(tally.partial_seconds),
        "degraded_minutes": _minutes(tally.degraded_seconds),
        "affected_minutes": _minutes(tally.affected_seconds),
        "downtime_minutes": _minutes(tally.downtime_seconds),
        "uptime_pct": floor_pct(tally.uptime),
        "seconds_with_data": tally.total_seconds,
        "outage_seconds": tally.outage_seconds,
        "partial_seconds": tally.partial_seconds,
        "degraded_seconds": tally.degraded_seconds,
        "affected_seconds": tally.affected_seconds,
        "downtime_seconds": round(tally.downtime_seconds, 1),
    }


def _month_data(month: MonthUptime) -> dict[str, Any]:
    """A month as ``MonthTallySerializer`` represents it."""
    return {
        **tally_data(month.tally),
        "month": str(month.label),
        "first_day": month.first_day.isoformat(),
        "last_day": month.last_day.isoformat(),
    }


class TailnetUptimeApi(TailnetApi):
    @extend_schema(
        summary="This tailnet's uptime, per day and per month",
        description="Uptime stitched across live migrations: the share of the tailnet's "
        "minutes during which its own shard (wherever it was placed) was in outage, a "
        "partial outage weighing 0.3. Minutes before the tailnet existed are excluded. "
        "What an SLA claim needs: affected and downtime minutes per month.",
        parameters=[UptimeRangeSerializer],
        responses={
            200: TailnetUptimeSerializer,
            400: OpenApiResponse(description="A bad date or range, with what is wrong."),
            401: UNAUTHENTICATED,
            404: NOT_FOUND,
        },
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        now = timezone.now()
        query = UptimeRangeSerializer(
            data=request.query_params, context={"today": now.astimezone(UTC).date()}
        )
        query.is_valid(raise_exception=True)
        first_day, last_day = query.validated_data["first_day"], query.validated_data["last_day"]
        return self.cached_json(
            f"uptime:{first_day}:{last_day}",
            lambda: self.uptime_data(first_day=first_day, last_day=last_day, now=now),
        )

    def uptime_data(self, *, first_day: date, last_day: date, now: datetime) -> dict[str, Any]:
        report = tailnet_uptime_report(
            tailnet_id=self.access.tailnet.pk, first_day=first_day, last_day=last_day, now=now
        )
        # Already in TailnetUptimeSerializer's representation (the schema above; its
        # field order, dates as ISO 8601): running ~100 rows through it per request
        # would cost more than the rest of the view's Python.
        return {
            "tailnet": self.tailnet_data(),
            "first_day": report.first_day.isoformat(),
            "last_day": report.last_day.isoformat(),
            "total": tally_data(report.tally),
            "months": [_month_data(month) for month in report.months],
            "days": [{**tally_data(day.tally), "date": day.day.isoformat()} for day in report.days],
        }


class TailnetLatencyApi(TailnetApi):
    @extend_schema(
        summary="This tailnet's control-plane latency, per hour",
        description="p50, p95 and p99 latency of the shard the tailnet was on, for every "
        f"hour of the last {LATENCY_DAYS} days (oldest first), merged over the probe "
        "regions, with how many probes ran and how many failed. An hour without a "
        "successful probe has null percentiles.",
        responses={200: TailnetLatencySerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        return self.cached_json("latency", self.latency_data)

    def latency_data(self) -> dict[str, Any]:
        stays = tailnet_stays(tailnet_id=self.access.tailnet.pk)
        by_name = {stay.shard_name: stay for stay in stays}

        def item(hour: LatencyHour) -> dict[str, Any]:
            return {
                "start": hour.start,
                "shard": _shard(by_name.get(hour.shard_name or "")),
                "p50_ms": hour.p50_ms,
                "p95_ms": hour.p95_ms,
                "p99_ms": hour.p99_ms,
                "samples": hour.samples,
                "failures": hour.failures,
            }

        hours = tailnet_latency(stays=stays, now=timezone.now())
        data = {
            "tailnet": self.tailnet_data(),
            "days": LATENCY_DAYS,
            "hours": [item(hour) for hour in hours],
        }
        return TailnetLatencySerializer(data).data
