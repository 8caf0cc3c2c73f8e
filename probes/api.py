"""Remote probe ingestion: POST /api/v1/probes/samples with a probe-scoped token,
for the one region the token is bound to (403 for any other, and for a token bound
to none).

A batch is validated whole before anything is stored (all or nothing), then
stored idempotently in one statement: sending the same batch twice stores each sample
once. Detection looks at it right after, in the ``probes.detect`` task, not in the
request.

Items are validated by hand rather than by a nested DRF serializer: batches
hold thousands of samples and a serializer per item costs several times the
insert itself (see bench/probes.py). Errors keep DRF's shape: one dict per item.
"""

import contextlib
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from incidents.models import Shard
from plumbing.models import ApiToken
from plumbing.tokens import BearerTokenAuthentication, HasScope

from .models import ProbeError, ProbeRegion
from .services import SampleIn, samples_store

MAX_BATCH = 5000
MAX_CLOCK_SKEW = timedelta(minutes=5)
ERROR_KINDS = {e.value for e in ProbeError if e.value}


def _number(value: Any, field: str, errors: dict[str, list[str]]) -> float | None:
    if value is None:
        return None
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):  # an integer of hundreds of digits
            number = float(value)
    if not math.isfinite(number) or number < 0:
        errors.setdefault(field, []).append("Must be a finite, non-negative number or null.")
        return None
    return number


def _text(value: Any) -> str | None:
    """Why ``value`` can't be stored as text (PostgreSQL refuses NUL), or None."""
    if not isinstance(value, str):
        return "Must be a string."
    if "\x00" in value:
        return "Must not contain a NUL character."
    return None


def _time(value: Any) -> tuple[datetime | None, str | None]:
    """An aware date-time, or why ``value`` is not one."""
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except (ValueError, OverflowError):  # 2026-13-45, an offset of 24 hours or more
        return None, "Not a valid date-time: a month, day, hour or offset is out of range."
    if parsed is None:
        return None, "An ISO 8601 date-time with a time zone is required."
    if timezone.is_naive(parsed):
        return None, "The time zone is missing (use Z or +00:00)."
    return parsed, None


def validate_batch(
    items: Any, *, shards: Mapping[str, int], now: datetime
) -> tuple[list[SampleIn], list[dict[str, list[str]]]]:
    """Turn the JSON items into samples; the second value has one error dict per
    item (empty when the item is fine), or is empty when every item is."""
    oldest = now - timedelta(days=settings.PROBE_RAW_RETENTION_DAYS)
    samples: list[SampleIn] = []
    errors: list[dict[str, list[str]]] = []
    for item in items:
        problems: dict[str, list[str]] = {}
        if not isinstance(item, dict):
            errors.append({"non_field_errors": ["Each sample must be a JSON object."]})
            continue
        slug = item.get("shard")
        shard_id = shards.get(slug) if isinstance(slug, str) else None
        if isinstance(slug, str) and (problem := _text(slug)):
            problems["shard"] = [problem]
        elif shard_id is None:
            problems["shard"] = [f"Unknown shard {str(slug)[:64]!r}."]
        started_at, problem = _time(item.get("started_at"))
        if started_at is not None and started_at > now + MAX_CLOCK_SKEW:
            problem = "In the future: check the probe's clock."
        elif started_at is not None and started_at < oldest:
            problem = "Older than raw sample retention; not accepted."
        if problem is not None:
            problems["started_at"] = [problem]
        ok = item.get("ok")
        if not isinstance(ok, bool):
            problems["ok"] = ["Must be true or false."]
        latency = _number(item.get("latency_ms"), "latency_ms", problems)
        connect = _number(item.get("connect_ms"), "connect_ms", problems)
        error = item.get("error") or ""
        if ok is True and error:
            problems["error"] = ["A successful probe has no error."]
        elif ok is False and (not isinstance(error, str) or error not in ERROR_KINDS):
            problems["error"] = [f"A failed probe needs an error: one of {sorted(ERROR_KINDS)}."]
        if ok is True and latency is None and "latency_ms" not in problems:
            problems["latency_ms"] = ["A successful probe needs its latency."]
        code = item.get("status_code")
        if code is not None and (
            isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599
        ):
            problems["status_code"] = ["Must be an HTTP status code or null."]
        detail = item.get("detail") or ""
        if problem := _text(detail):
            problems["detail"] = [problem]
        errors.append(problems)
        if not problems and shard_id is not None and started_at is not None:
            samples.append(
                SampleIn(
                    shard_id=shard_id,
                    started_at=started_at,
                    ok=bool(ok),
                    latency_ms=latency,
                    connect_ms=connect,
                    error=str(error),
                    status_code=code,
                    detail=str(detail)[:200],
                )
            )
    if not any(errors):
        errors = []
    return samples, errors


class ProbeSamplesIngestApi(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [HasScope.of("probe")]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "probe_ingest"

    def post(self, request: Request) -> Response:
        token = request.auth
        assert isinstance(token, ApiToken)  # HasScope
        if token.probe_region_id is None:
            raise exceptions.PermissionDenied(
                "This probe token has no region: an operator binds it to the region it "
                "posts for (admin, API tokens), or creates a new one for that region."
            )
        data = request.data
        if not isinstance(data, dict):
            return Response(
                {"non_field_errors": ["Send a JSON object with region and samples."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        slug = data.get("region")
        region = (
            ProbeRegion.objects.filter(slug=slug, active=True).first()
            if _text(slug) is None
            else None
        )
        items = data.get("samples")
        problems: dict[str, Any] = {}
        if region is None:
            problems["region"] = [f"Unknown or inactive probe region {str(slug)[:64]!r}."]
        if not isinstance(items, list) or not items:
            problems["samples"] = ["A non-empty list of samples is required."]
        elif len(items) > MAX_BATCH:
            problems["samples"] = [f"At most {MAX_BATCH} samples per batch."]
        if problems:
            return Response(problems, status=status.HTTP_400_BAD_REQUEST)
        assert region is not None
        assert isinstance(items, list)
        if region.pk != token.probe_region_id:
            # One token, one vantage point: it cannot make up a quorum of regions alone.
            raise exceptions.PermissionDenied(
                f"This probe token posts samples for its own region only, not {region.slug!r}."
            )
        slugs = {
            item["shard"]
            for item in items
            if isinstance(item, dict) and _text(item.get("shard")) is None
        }
        shards = dict(Shard.objects.filter(slug__in=slugs).values_list("slug", "pk"))
        samples, item_errors = validate_batch(items, shards=shards, now=timezone.now())
        if item_errors:
            return Response({"samples": item_errors}, status=status.HTTP_400_BAD_REQUEST)
        # One statement; detection runs in its own task after the commit.
        received = samples_store(region=region, samples=samples)
        return Response({"received": received}, status=status.HTTP_200_OK)
