"""``POST /api/v1/reports``: the report form for clients and scripts.

The same form validates (``ReportForm``), the same service saves, the same query
answers. Anyone may post; a tailnet API token (or a member's session, with CSRF)
files the report for that tailnet and gets the answer for its shard.
"""

import logging
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.access import member_tailnets
from customers.models import Membership
from plumbing.models import ApiToken
from plumbing.parsers import StrictJSONParser
from plumbing.site import absolute
from plumbing.throttles import FailOpenScopedThrottle
from plumbing.tokens import BearerTokenAuthentication

from . import queries, services
from .forms import ReportForm
from .models import Via
from .views import TOO_MANY

logger = logging.getLogger(__name__)

DEFAULT_RATE = "10/min"
FIELDS = ("what", "started_at", "tailnet", "email", "description")


class ReportRateThrottle(FailOpenScopedThrottle):
    default_rate = DEFAULT_RATE


def _token_membership(token: ApiToken) -> list[Membership]:
    """A tailnet token stands for a member of its tailnet (unsaved, never stored)."""
    if token.scope == ApiToken.Scope.TAILNET and token.tailnet is not None:
        return [Membership(tailnet=token.tailnet)]
    return []


def answer_json(answer: queries.Answer) -> dict[str, Any]:
    public = answer.public
    out: dict[str, Any] = {
        "public_status": {
            "overall": public.overall,
            "components": [{"name": c.name, "status": c.status} for c in public.troubled],
            "incidents": [
                {"title": i.title, "url": i.url, "started_at": i.started_at.isoformat()}
                for i in public.incidents
            ],
        },
        "your_shard": None,
    }
    if answer.shard is not None:
        known = answer.known
        out["your_shard"] = {
            "name": answer.shard.public_name,
            "known_incident": None
            if known is None
            else {
                "title": known.title,
                "url": known.url,
                "started_at": known.started_at.isoformat(),
                "resolved_at": known.resolved_at.isoformat() if known.resolved_at else None,
                "where": known.where,
                "headline": known.headline,
                "what_still_works": known.sentence,
                "latest_update_at": (
                    known.latest_update_at.isoformat() if known.latest_update_at else None
                ),
            },
        }
    return out


_ReportIn = inline_serializer(
    "ReportIn",
    {
        "what": serializers.ChoiceField(choices=ReportForm.base_fields["what"].choices),  # type: ignore[attr-defined]
        "started_at": serializers.DateTimeField(required=False, help_text="Default: now."),
        "tailnet": serializers.CharField(required=False),
        "email": serializers.EmailField(required=False),
        "description": serializers.CharField(required=False),
    },
)


class ReportCreateApi(APIView):
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [ReportRateThrottle]
    throttle_scope = "report_api"
    parser_classes = [StrictJSONParser]

    @extend_schema(
        request=_ReportIn,
        responses={
            201: OpenApiResponse(description="Saved; the body has its id and the answer."),
            400: OpenApiResponse(description="Field errors, by field."),
            429: OpenApiResponse(description="Too many reports; wait a few minutes."),
        },
    )
    def post(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            return Response(
                {"detail": "Send a JSON object with the report's fields."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        errors: dict[str, list[str]] = {}
        for name, value in body.items():
            if name not in FIELDS:
                errors[name] = [f"Unknown field; the fields are {', '.join(FIELDS)}."]
            elif value is not None and not isinstance(value, str):
                errors[name] = ["Must be a string."]
        token = request.auth if isinstance(request.auth, ApiToken) else None
        memberships = (
            _token_membership(token) if token else list(member_tailnets(user=request.user))
        )
        locked = memberships[0].tailnet.slug if token and memberships else None
        if locked and body.get("tailnet") not in (None, "", locked):
            errors["tailnet"] = ["This token is for another tailnet: leave tailnet out."]
        if errors:
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        data = {name: value for name, value in body.items() if value is not None}
        data.setdefault("started_at", timezone.now().isoformat())  # "just now"
        form = ReportForm(data, memberships=memberships)
        if not form.is_valid():
            problems = {
                field: [error["message"] for error in field_errors]
                for field, field_errors in form.errors.get_json_data().items()
            }
            return Response(problems, status=status.HTTP_400_BAD_REQUEST)
        report, limited = services.report_submit_limited(
            cleaned=form.cleaned_data,
            tailnet=form.member_tailnet,
            client_address=request.META.get("REMOTE_ADDR"),
            reporter=request.user,
            via=Via.API,
        )
        if report is None:
            assert limited is not None
            return Response(
                {"detail": TOO_MANY[limited.by]},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(limited.wait)},
            )
        answer = queries.report_answer(report=report, user=request.user, auth=token)
        url = absolute(reverse("reports:thanks", args=[report.public_id]))
        return Response(
            {
                "id": report.public_id,
                "status": report.status,
                "url": url,
                "answer": answer_json(answer),
            },
            status=status.HTTP_201_CREATED,
            headers={"Location": url},
        )
