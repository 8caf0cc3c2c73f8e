"""The probe agents' API, with a probe-scoped token bound to one region (403 for any
other region, and for a token bound to none):

- ``GET /api/v1/probes/shards``: the shards to probe, with an ETag (``ProbeShardsApi``);
- ``POST /api/v1/probes/samples``: a batch of samples, with the agent's health.

A batch is validated whole before anything is stored (all or nothing; a sample from
too far in the future is refused and counted, not an error), then
stored idempotently in one statement: sending the same batch twice stores each sample
once. Detection looks at it right after, in the ``probes.detect`` task, not in the
request.

Items are validated by hand rather than by a nested DRF serializer: batches
hold thousands of samples and a serializer per item costs several times the
insert itself (see bench/probes.py). Errors keep DRF's shape: one dict per item.
"""

import contextlib
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import parse_etags
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from incidents.models import Shard
from plumbing.models import ApiToken
from plumbing.throttles import PerTokenThrottle
from plumbing.tokens import BearerTokenAuthentication, HasScope

from .models import ProbeError, ProbeRegion
from .services import AgentHealth, SampleIn, agent_batch_record, samples_store

MAX_BATCH = 5000
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


@dataclass(frozen=True)
class Batch:
    samples: list[SampleIn]
    # One error dict per item (empty when the item is fine), or empty when every item is.
    errors: list[dict[str, list[str]]]
    # Well-formed samples that start too far in the future: refused and counted, not
    # an error that would hold the rest of the batch back (the probe's clock is wrong).
    refused_future: int


def validate_batch(items: Any, *, shards: Mapping[str, int], now: datetime) -> Batch:
    """Turn the JSON items into samples, or say what is wrong with each."""
    oldest = now - timedelta(days=settings.PROBE_RAW_RETENTION_DAYS)
    latest = now + timedelta(seconds=settings.PROBE_MAX_CLOCK_SKEW_SECONDS)
    samples: list[SampleIn] = []
    errors: list[dict[str, list[str]]] = []
    refused_future = 0
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
        if started_at is not None and started_at < oldest:
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
        if not problems and started_at is not None and started_at > latest:
            refused_future += 1
        elif not problems and shard_id is not None and started_at is not None:
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
    return Batch(samples=samples, errors=errors, refused_future=refused_future)


class ProbeSamplesIngestApi(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [HasScope.of("probe")]
    throttle_classes = [PerTokenThrottle]  # fails open: samples go in while Redis is down
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
        now = timezone.now()
        agent, agent_problems = _agent_health(data.get("agent"))
        if agent_problems:
            return Response({"agent": agent_problems}, status=status.HTTP_400_BAD_REQUEST)
        shards = dict(Shard.objects.filter(slug__in=slugs).values_list("slug", "pk"))
        batch = validate_batch(items, shards=shards, now=now)
        if batch.errors:
            return Response({"samples": batch.errors}, status=status.HTTP_400_BAD_REQUEST)
        with transaction.atomic():
            # One statement; detection runs in its own task after the commit.
            received = samples_store(region=region, samples=batch.samples, now=now)
            agent_batch_record(
                region=region, agent=agent, refused_future=batch.refused_future, at=now
            )
        return Response(
            {"received": received, "refused_future": batch.refused_future},
            status=status.HTTP_200_OK,
        )


def _agent_health(value: Any) -> tuple[AgentHealth | None, list[str]]:
    """The optional ``agent`` object of a batch: what the region's agent says of itself."""
    if value is None:
        return None, []
    if not isinstance(value, dict):
        return None, ["Must be an object: buffer_depth, dropped_total, sent_at."]
    problems = []
    counts = {}
    for name in ("buffer_depth", "dropped_total"):
        number = value.get(name, 0)
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 2**53:
            problems.append(f"{name} must be a whole number, 0 or more.")
        counts[name] = number
    sent_at, problem = _time(value.get("sent_at"))
    if problem is not None or sent_at is None:
        problems.append(f"sent_at: {problem or 'required'}")
    if problems or sent_at is None:
        return None, problems
    return AgentHealth(
        buffer_depth=counts["buffer_depth"], dropped_total=counts["dropped_total"], sent_at=sent_at
    ), []


class ProbeShardsApi(APIView):
    """``GET /api/v1/probes/shards``: what the region's agent probes, and how often.

    Answered for the region the probe token is bound to, with an ETag: an agent
    re-reads it every minute and gets a 304 while nothing changed. An inactive region
    gets an empty list (its agent stops probing, and its samples would be refused)."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [HasScope.of("probe")]
    throttle_classes = [PerTokenThrottle]  # fails open: samples go in while Redis is down
    throttle_scope = "probe_ingest"

    def get(self, request: Request) -> HttpResponse:
        token = request.auth
        assert isinstance(token, ApiToken)  # HasScope
        region = token.probe_region
        if region is None:
            raise exceptions.PermissionDenied(
                "This probe token has no region: an operator binds it to the region it "
                "probes from (admin, API tokens)."
            )
        interval = settings.PROBE_INTERVAL_SECONDS
        timeout = settings.PROBE_TIMEOUT_SECONDS
        rows = (
            Shard.objects.filter(active=True).exclude(probe_url="").order_by("slug")
            if region.active
            else Shard.objects.none()
        )
        body = {
            "region": region.slug,
            "active": region.active,
            "max_batch": MAX_BATCH,
            "max_clock_skew_seconds": settings.PROBE_MAX_CLOCK_SKEW_SECONDS,
            "shards": [
                {
                    "slug": slug,
                    "probe_url": url,
                    "interval_seconds": interval,
                    "timeout_seconds": timeout,
                }
                for slug, url in rows.values_list("slug", "probe_url")
            ],
        }
        content = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        etag = f'"{hashlib.sha256(content).hexdigest()[:32]}"'
        wanted = request.headers.get("If-None-Match", "")
        if etag in parse_etags(wanted) or wanted.strip() == "*":
            response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
        else:
            response = HttpResponse(content, content_type="application/json")
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        return response
