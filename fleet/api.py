"""``POST /api/v1/fleet/events``: the coordination service's control plane sends what
happened in the fleet (tailnets created, migrated, renamed, deleted; shards added,
updated, retired), with a ``fleet``-scoped bearer token.

A batch is all or nothing: ``400 {"events": [...]}`` has one error object per event
sent (empty for good ones), ``409 {"conflicts": [ids]}`` lists stored ids sent with
other content; otherwise ``200 {"accepted": n, "duplicates": m}``. At most
``MAX_EVENTS`` events and ``MAX_BYTES`` bytes per request (``413`` beyond).

``/api/v1/fleet/placements?as_of=…``: ``GET`` the map we believe at ``as_of``
(default now) as NDJSON, one ``{"tailnet", "shard", "display_name"}`` a line in slug
order; ``PUT`` the control plane's whole map (NDJSON, at most ``MAX_MAP_LINES``
lines) to reconcile it (``fleet/reconcile.py``): ``200`` with the counts, ``400``
with the bad lines and nothing written.
"""

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from plumbing.models import ApiToken
from plumbing.parsers import strict_loads
from plumbing.throttles import PerTokenThrottle
from plumbing.tokens import BearerTokenAuthentication, HasScope

from .events import FIELDS, ID_MAX, TYPES, parse_at
from .models import FleetEventSource, FleetRejection
from .queries import believed_map
from .reconcile import MapInvalid, fleet_reconcile
from .services import FleetEventsConflict, FleetEventsInvalid, fleet_events_ingest

MAX_EVENTS = 10_000
MAX_BYTES = 10 * 1024 * 1024
MAX_MAP_LINES = 100_000
# 100,000 lines of the longest slugs and names fit; larger maps use manage.py fleet_reconcile.
MAX_MAP_BYTES = 50 * 1024 * 1024
NDJSON = "application/x-ndjson"
NDJSON_TYPES = (NDJSON, "application/ndjson", "application/jsonl", "application/x-jsonlines")
THROTTLE_SCOPE = "fleet_api"


class FleetRateThrottle(PerTokenThrottle):
    default_rate = "600/min"


# How long one fleet feed request may work in the database (a map of 100,000 lines).
FLEET_DATABASE_DEADLINE_SECONDS = 600


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"At most {MAX_BYTES // (1024 * 1024)} MB per request."


def _json_body(request: Request) -> Any:
    """The body as JSON, read from the stream: not request.body (nor request.data,
    which reads it), where Django refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE
    (2.5 MB), since this API's limit is its own, MAX_BYTES. Parsed as every API's
    JSON is (``plumbing.parsers``): no NaN or Infinity, no deep nesting."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BYTES:
        raise PayloadTooLarge()
    if request.content_type.split(";")[0].strip() != "application/json":
        raise exceptions.UnsupportedMediaType(request.content_type)
    raw = request.stream.read(MAX_BYTES + 1) if request.stream is not None else b""
    if len(raw) > MAX_BYTES:
        raise PayloadTooLarge()
    return strict_loads(raw)


# --- The OpenAPI schema (the staff schema, /api/staff/docs/): the views read raw bodies,
# so their shapes are declared here.

_FleetEvents = inline_serializer(
    "FleetEvent",
    many=True,
    fields={
        "id": serializers.CharField(max_length=ID_MAX, help_text="The producer's id."),
        "type": serializers.ChoiceField(choices=TYPES),
        "at": serializers.DateTimeField(help_text="RFC 3339 with a time zone."),
        "tailnet": serializers.SlugField(max_length=100, required=False),
        "display_name": serializers.CharField(max_length=200, required=False),
        "shard": serializers.SlugField(max_length=64, required=False),
        "region": serializers.SlugField(max_length=32, required=False),
        "public_name": serializers.CharField(max_length=100, required=False),
        "probe_url": serializers.CharField(max_length=300, required=False),
        "component": serializers.SlugField(max_length=64, required=False),
    },
    help_text="Beyond id, type and at, each type takes: "
    + "; ".join(
        f"{kind}: {', '.join(required)}"
        + (f" (optional: {', '.join(optional)})" if optional else "")
        for kind, (required, optional) in FIELDS.items()
    )
    + ".",
)
_AS_OF = OpenApiParameter(
    "as_of",
    OpenApiTypes.DATETIME,
    OpenApiParameter.QUERY,
    description="RFC 3339 with a time zone; default now.",
)
_REFUSED = {
    400: OpenApiResponse(description="Errors, one per event or line; nothing written."),
    401: OpenApiResponse(description="No valid bearer token."),
    403: OpenApiResponse(description="Not a fleet-scoped token."),
    413: OpenApiResponse(description="Too many events, lines or bytes."),
    415: OpenApiResponse(description="Not the media type this takes."),
    429: OpenApiResponse(description="Too many requests; see Retry-After."),
}


def _refused(status_code: int, body: dict[str, Any], *, events: int, reason: str) -> Response:
    """A refused batch: answered, and kept for the feed's health (/metrics, admin)."""
    FleetRejection.objects.create(status=status_code, events=events, reason=reason[:500])
    return Response(body, status=status_code)


class FleetEventsIngestApi(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [HasScope.of(ApiToken.Scope.FLEET.value)]
    throttle_classes = [FleetRateThrottle]
    throttle_scope = THROTTLE_SCOPE
    # Whole batches and whole maps: longer than a page's database deadline
    # (plumbing/deadline.py), so that the control plane's big requests are not cut off.
    database_deadline_seconds = FLEET_DATABASE_DEADLINE_SECONDS

    @extend_schema(
        summary="Send the fleet's events",
        description="A batch is all or nothing; an id sent again with the same content "
        "is a duplicate, with other content a conflict.",
        request=inline_serializer("FleetEventsIn", {"events": _FleetEvents}),
        responses={
            200: inline_serializer(
                "FleetEventsAccepted",
                {"accepted": serializers.IntegerField(), "duplicates": serializers.IntegerField()},
            ),
            409: OpenApiResponse(description="Ids stored with other content: {conflicts}."),
            **_REFUSED,
        },
    )
    def post(self, request: Request) -> Response:
        try:
            data = _json_body(request)
        except PayloadTooLarge as error:
            FleetRejection.objects.create(status=413, events=0, reason=str(error.detail))
            raise
        items = data.get("events") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return Response(
                {"events": ['Send {"events": [...]}, a list of event objects.']},
                status=status.HTTP_400_BAD_REQUEST,
            )
        if unknown := sorted(set(data) - {"events"}):
            return Response(
                {name: ["Unknown field; the body has only events."] for name in unknown},
                status=status.HTTP_400_BAD_REQUEST,
            )
        if len(items) > MAX_EVENTS:
            message = f"At most {MAX_EVENTS:,} events per request."
            FleetRejection.objects.create(status=413, events=len(items), reason=message)
            raise PayloadTooLarge(message)
        try:
            counts = fleet_events_ingest(events=items, source=FleetEventSource.API)
        except FleetEventsInvalid as error:
            bad = sum(1 for errors in error.errors if errors)
            first = next((e for e in error.errors if e), {})
            return _refused(
                status.HTTP_400_BAD_REQUEST,
                {"events": error.errors},
                events=len(items),
                reason=f"{bad} invalid event(s); first: {first}",
            )
        except FleetEventsConflict as error:
            return _refused(
                status.HTTP_409_CONFLICT,
                {"conflicts": error.ids},
                events=len(items),
                reason=f"{len(error.ids)} id(s) stored with other content: {error.ids[:5]}",
            )
        return Response(counts, status=status.HTTP_200_OK)


def _as_of(request: Request) -> datetime:
    """``?as_of=`` (RFC 3339 with a zone), default now. A ``+`` left unencoded in a
    query string arrives as a space: read it as the ``+`` it was."""
    value = request.query_params.get("as_of")
    if value is None:
        return timezone.now()
    value = re.sub(r" (\d{2}:\d{2})$", r"+\1", value)
    as_of, problem = parse_at(value)
    if as_of is None:
        raise exceptions.ValidationError({"as_of": [problem]})
    return as_of


class MapTooLarge(PayloadTooLarge):
    default_detail = (
        f"At most {MAX_MAP_LINES:,} lines per request; reconcile a larger map with "
        "manage.py fleet_reconcile."
    )


def _map_lines(request: Request) -> Iterator[bytes]:
    """The request body's lines, read as they arrive; 413 past ``MAX_MAP_LINES``."""
    if request.stream is None:  # no body at all: an empty map, which reconcile refuses
        return
    for number, line in enumerate(request.stream, start=1):
        if number > MAX_MAP_LINES and line.strip():
            raise MapTooLarge()
        yield line


class FleetPlacementsApi(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [HasScope.of(ApiToken.Scope.FLEET.value)]
    throttle_classes = [FleetRateThrottle]
    throttle_scope = THROTTLE_SCOPE
    # Whole batches and whole maps: longer than a page's database deadline
    # (plumbing/deadline.py), so that the control plane's big requests are not cut off.
    database_deadline_seconds = FLEET_DATABASE_DEADLINE_SECONDS

    @extend_schema(
        summary="The placements we believe",
        description="Every tailnet's shard at as_of, as NDJSON in slug order.",
        parameters=[_AS_OF],
        responses={
            (200, NDJSON): OpenApiResponse(OpenApiTypes.STR),
            400: OpenApiResponse(description="A bad as_of."),
            **{code: _REFUSED[code] for code in (401, 403, 429)},
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        lines = (
            json.dumps({"tailnet": slug, "shard": shard, "display_name": name}) + "\n"
            for slug, shard, name in believed_map(_as_of(request))
        )
        return StreamingHttpResponse(lines, content_type=NDJSON)

    @extend_schema(
        summary="Reconcile the whole map",
        description=f"The control plane's map as NDJSON, one {{tailnet, shard, display_name}} "
        f"object a line, at most {MAX_MAP_LINES:,} lines; what differs is corrected with "
        "events at as_of.",
        parameters=[_AS_OF],
        request={NDJSON: OpenApiTypes.STR},
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="What changed, counted."),
            **_REFUSED,
        },
    )
    def put(self, request: Request) -> Response:
        as_of = _as_of(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_MAP_BYTES:
            raise PayloadTooLarge(f"At most {MAX_MAP_BYTES // (1024 * 1024)} MB per request.")
        if request.content_type.split(";")[0].strip() not in NDJSON_TYPES:
            raise exceptions.UnsupportedMediaType(
                request.content_type, f"Send the map as {NDJSON}, one JSON object a line."
            )
        try:
            counts = fleet_reconcile(lines=_map_lines(request), as_of=as_of)
        except MapInvalid as error:
            return _refused(
                status.HTTP_400_BAD_REQUEST,
                {
                    "lines": [{"line": line, "error": message} for line, message in error.errors],
                    "count": error.count,
                },
                events=0,
                reason=f"Map refused: {error.count} bad line(s); first: {error.errors[:1]}",
            )
        except ValidationError as error:
            raise exceptions.ValidationError({"as_of": error.messages}) from None
        except MapTooLarge:
            FleetRejection.objects.create(status=413, events=0, reason=MapTooLarge.default_detail)
            raise
        return Response(counts, status=status.HTTP_200_OK)
