"""The operator and probe-ingestion APIs' request and response shapes, for the staff
schema (``statuspage.api_docs``).

Their views validate by hand or with serializers the generator cannot see, so these
annotations are attached from here with drf-spectacular's view extensions, which
describe a view without changing it; the serializers are the views' own.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from incidents import api as operator
from probes import api as probes
from probes.models import ProbeError

_ID = OpenApiParameter("incident_id", int, OpenApiParameter.PATH)
_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="A retry with the same key within 24 hours returns the incident it wrote.",
)
_REFUSED = {
    400: OpenApiResponse(description="Field errors, by field."),
    401: OpenApiResponse(description="No valid bearer token or session."),
    403: OpenApiResponse(description="Not a staff token or staff session."),
    429: OpenApiResponse(description="Too many requests; see Retry-After."),
}
_NOT_FOUND = {404: OpenApiResponse(description="No such incident (or window).")}
_DETAIL = operator.IncidentDetailOut
_FOLLOW_UP_ID = OpenApiParameter("follow_up_id", int, OpenApiParameter.PATH)
_FOLLOW_UP_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="A retry with the same key within 24 hours returns the follow-up it recorded.",
)
_FOLLOW_UP_NOT_FOUND = {
    404: OpenApiResponse(description="No such incident, or no such follow-up on it.")
}

_IncidentPage = inline_serializer(
    "IncidentPage",
    {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": operator.IncidentOut(many=True),
    },
)
_ProbeSamples = inline_serializer(
    "ProbeSample",
    many=True,
    fields={
        "shard": serializers.CharField(help_text="The shard's slug."),
        "started_at": serializers.DateTimeField(help_text="ISO 8601 with a time zone."),
        "ok": serializers.BooleanField(),
        "latency_ms": serializers.FloatField(allow_null=True, min_value=0, required=False),
        "connect_ms": serializers.FloatField(allow_null=True, min_value=0, required=False),
        "error": serializers.ChoiceField(
            choices=ProbeError.values, required=False, help_text="Empty when ok."
        ),
        "status_code": serializers.IntegerField(
            allow_null=True, min_value=100, max_value=599, required=False
        ),
        "detail": serializers.CharField(required=False, allow_blank=True),
    },
)

ANNOTATIONS: dict[type, dict[str, Any]] = {
    operator.IncidentListCreateApi: {
        "get": extend_schema(
            operation_id="incidents_list",
            summary="Incidents and maintenances, drafts included, newest first",
            parameters=[
                operator.ListFilterIn,
                OpenApiParameter("limit", int, description="At most 200; default 50."),
                OpenApiParameter("offset", int),
            ],
            responses={200: _IncidentPage, **_REFUSED},
        ),
        "post": extend_schema(
            summary="Open an incident or schedule a maintenance",
            parameters=[_IDEMPOTENCY_KEY],
            request=operator.IncidentCreateIn,
            responses={
                201: _DETAIL,
                409: OpenApiResponse(description="The key's incident was deleted since."),
                422: OpenApiResponse(description="The key was used for another request."),
                **_REFUSED,
            },
        ),
    },
    operator.IncidentDetailApi: {
        "get": extend_schema(
            summary="An incident with its timeline, windows and blast radius",
            parameters=[_ID],
            responses={200: _DETAIL, **_REFUSED, **_NOT_FOUND},
        ),
        "patch": extend_schema(
            summary="Change its title, impact or postmortem",
            parameters=[_ID],
            request=operator.IncidentEditIn,
            responses={200: _DETAIL, **_REFUSED, **_NOT_FOUND},
        ),
    },
    operator.IncidentUpdateCreateApi: {
        "post": extend_schema(
            summary="Post a timeline update",
            parameters=[_ID, _IDEMPOTENCY_KEY],
            request=operator.UpdateIn,
            responses={201: _DETAIL, 422: OpenApiResponse(), **_REFUSED, **_NOT_FOUND},
        ),
    },
    operator.IncidentPublishApi: {
        "post": extend_schema(
            summary="Publish a draft",
            parameters=[_ID],
            request=None,
            responses={200: _DETAIL, **_REFUSED, **_NOT_FOUND},
        ),
    },
    operator.IncidentResolveApi: {
        "post": extend_schema(
            summary="Resolve (or complete) it",
            parameters=[_ID],
            request=operator.ResolveIn,
            responses={200: _DETAIL, **_REFUSED, **_NOT_FOUND},
        ),
    },
    operator.ShardImpactAddApi: {
        "post": extend_schema(
            summary="Add a shard impact window",
            parameters=[_ID],
            request=operator.ImpactAddIn,
            responses={201: operator.WindowOut, **_REFUSED, **_NOT_FOUND},
        ),
    },
    operator.ShardImpactCloseApi: {
        "post": extend_schema(
            summary="End an open window",
            parameters=[_ID, OpenApiParameter("impact_id", int, OpenApiParameter.PATH)],
            request=operator.ImpactCloseIn,
            responses={200: operator.WindowOut, **_REFUSED, **_NOT_FOUND},
        ),
    },
    operator.FollowUpListCreateApi: {
        "get": extend_schema(
            operation_id="incident_follow_ups_list",
            summary="The follow-ups an incident led to, oldest first",
            parameters=[_ID],
            responses={200: operator.FollowUpOut(many=True), **_REFUSED, **_NOT_FOUND},
        ),
        "post": extend_schema(
            summary="Record a follow-up",
            description="Public on the incident's page once its postmortem is published.",
            parameters=[_ID, _FOLLOW_UP_IDEMPOTENCY_KEY],
            request=operator.FollowUpIn,
            responses={
                201: operator.FollowUpOut,
                409: OpenApiResponse(description="The key's follow-up was removed since."),
                422: OpenApiResponse(description="The key was used for another request."),
                **_REFUSED,
                **_NOT_FOUND,
            },
        ),
    },
    operator.FollowUpDetailApi: {
        "patch": extend_schema(
            summary="Change a follow-up (reopening clears its done date)",
            parameters=[_ID, _FOLLOW_UP_ID],
            request=operator.FollowUpEditIn,
            responses={200: operator.FollowUpOut, **_REFUSED, **_FOLLOW_UP_NOT_FOUND},
        ),
        "delete": extend_schema(
            summary="Remove a follow-up",
            parameters=[_ID, _FOLLOW_UP_ID],
            request=None,
            responses={
                204: OpenApiResponse(description="Removed."),
                **_REFUSED,
                **_FOLLOW_UP_NOT_FOUND,
            },
        ),
    },
    probes.ProbeSamplesIngestApi: {
        "post": extend_schema(
            summary="Store a batch of probe samples",
            description=f"All or nothing, at most {probes.MAX_BATCH:,} samples; sending a "
            "batch again stores each sample once. A sample starting more than "
            "max_clock_skew_seconds (see /api/v1/probes/shards) in the future is refused and "
            "counted, not stored. Needs a probe-scoped token bound to the region.",
            request=inline_serializer(
                "ProbeSamplesIn",
                {
                    "region": serializers.CharField(help_text="The probe region's slug."),
                    "samples": _ProbeSamples,
                    "agent": inline_serializer(
                        "ProbeAgentHealth",
                        {
                            "buffer_depth": serializers.IntegerField(
                                min_value=0, help_text="Samples still waiting on its disk."
                            ),
                            "dropped_total": serializers.IntegerField(
                                min_value=0,
                                required=False,
                                help_text="Samples dropped since its buffer began (full).",
                            ),
                            "sent_at": serializers.DateTimeField(
                                help_text="The agent's clock when it sent the batch."
                            ),
                        },
                        required=False,
                        help_text="The agent's health, for /metrics and the admin.",
                    ),
                },
            ),
            responses={
                200: inline_serializer(
                    "ProbeSamplesReceived",
                    {
                        "received": serializers.IntegerField(help_text="Samples stored."),
                        "refused_future": serializers.IntegerField(
                            help_text="Samples refused: they start too far in the future."
                        ),
                    },
                ),
                **_REFUSED,
            },
        ),
    },
    probes.ProbeShardsApi: {
        "get": extend_schema(
            summary="The shards a probe agent probes",
            description="For the region the probe token is bound to: every active shard "
            "with a probe URL, how often to probe it and its timeout. With an ETag; send it "
            "back in If-None-Match for a 304 while nothing changed.",
            responses={
                200: inline_serializer(
                    "ProbeShards",
                    {
                        "region": serializers.CharField(),
                        "active": serializers.BooleanField(
                            help_text="False: the region is switched off; no shards."
                        ),
                        "max_batch": serializers.IntegerField(),
                        "max_clock_skew_seconds": serializers.IntegerField(),
                        "shards": inline_serializer(
                            "ProbeShard",
                            {
                                "slug": serializers.CharField(),
                                "probe_url": serializers.URLField(),
                                "interval_seconds": serializers.IntegerField(),
                                "timeout_seconds": serializers.FloatField(),
                            },
                            many=True,
                        ),
                    },
                ),
                304: OpenApiResponse(description="Not modified since the ETag sent."),
                **_REFUSED,
            },
        ),
    },
}


def _annotated(view: type, methods: dict[str, Any]) -> type[OpenApiViewExtension]:
    class Annotated(OpenApiViewExtension):
        target_class = view

        def view_replacement(self) -> type:
            return extend_schema_view(**methods)(type(view.__name__, (view,), {}))

    return Annotated


EXTENSIONS = [_annotated(view, methods) for view, methods in ANNOTATIONS.items()]
