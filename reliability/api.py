"""``GET /api/v1/reliability?from=YYYY-MM&to=YYYY-MM``: the report's figures as JSON.

Public, like the page, and answered from the same cached figures."""

from __future__ import annotations

import re
from datetime import UTC
from fractions import Fraction
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from incidents.figures import floor_pct

from .queries import cached_reliability_report
from .report import IMPACTS, MonthFigures, Spread, month_index, month_start

MAX_MONTHS = 36
DEFAULT_MONTHS = 12
EARLIEST_MONTH = 2000 * 12  # January 2000
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


def _month(name: str, raw: str) -> int:
    match = _MONTH.match(raw)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise serializers.ValidationError({name: [f"{raw!r} is not a month: use YYYY-MM."]})
    index = int(match[1]) * 12 + int(match[2]) - 1
    if index < EARLIEST_MONTH:
        raise serializers.ValidationError({name: [f"{raw} is before 2000-01: no data."]})
    return index


class ReliabilityRangeSerializer(serializers.Serializer):
    """``?from=YYYY-MM&to=YYYY-MM``, UTC months, both included. Needs
    ``context["this_month"]`` (a month index)."""

    # "from" is a Python keyword: declared through the class namespace.
    vars()["from"] = serializers.CharField(
        required=False,
        help_text=f"First UTC month, included (YYYY-MM). Default: {DEFAULT_MONTHS - 1} "
        "months before `to`.",
    )
    to = serializers.CharField(
        required=False, help_text="Last UTC month, included (YYYY-MM). Default: this month."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, int]:
        this_month: int = self.context["this_month"]
        last = _month("to", attrs["to"]) if "to" in attrs else this_month
        if last > this_month:
            raise serializers.ValidationError(
                {"to": [f"{attrs['to']} is in the future; the last month is this one."]}
            )
        first = _month("from", attrs["from"]) if "from" in attrs else last - DEFAULT_MONTHS + 1
        if first > last:
            raise serializers.ValidationError({"from": [f"{attrs['from']} is after `to`."]})
        if last - first + 1 > MAX_MONTHS:
            raise serializers.ValidationError(
                {"from": [f"The range is {last - first + 1} months; ask for at most {MAX_MONTHS}."]}
            )
        return {"first": first, "last": last}


# --- Output (the schema; the view writes the same shape directly) ---------------------


class _SpreadSerializer(serializers.Serializer):
    measured = serializers.IntegerField(help_text="Incidents with this figure.")
    unavailable = serializers.IntegerField(
        help_text="Incidents without it: not measured (no detection time), no update yet, "
        "or not resolved yet."
    )
    median_seconds = serializers.FloatField(allow_null=True)
    worst_seconds = serializers.FloatField(allow_null=True)


class _DurationSerializer(_SpreadSerializer):
    total_seconds = serializers.FloatField()


class _BlastSerializer(serializers.Serializer):
    incidents = serializers.IntegerField(help_text="Incidents with impact windows.")
    median_pct = serializers.FloatField(allow_null=True)
    worst_pct = serializers.FloatField(allow_null=True)


class _TailnetSecondsSerializer(serializers.Serializer):
    seconds_with_data = serializers.IntegerField(help_text="Every tailnet's placed seconds.")
    outage_seconds = serializers.IntegerField()
    partial_seconds = serializers.IntegerField()
    degraded_seconds = serializers.IntegerField()


class _FollowUpsSerializer(serializers.Serializer):
    open = serializers.IntegerField(help_text="Not done yet.")
    done = serializers.IntegerField()


class _MonthSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM (UTC).")
    incidents = serializers.IntegerField()
    by_impact = serializers.DictField(child=serializers.IntegerField())
    duration = _DurationSerializer()
    time_to_detect = _SpreadSerializer()
    time_to_first_update = _SpreadSerializer()
    time_to_resolve = _SpreadSerializer()
    blast_radius = _BlastSerializer()
    tailnet_seconds = _TailnetSecondsSerializer()
    tailnet_minutes_lost = serializers.FloatField(help_text="outage + 0.3 x partial, in minutes.")
    uptime_pct = serializers.FloatField(
        allow_null=True, help_text="Fleet uptime weighted by tailnet time, floored to 4 places."
    )
    follow_ups = _FollowUpsSerializer(
        help_text="The follow-ups of the month's incidents whose postmortem is published, "
        "by their status now."
    )


class ReliabilityReportSerializer(serializers.Serializer):
    vars()["from"] = serializers.CharField(help_text="YYYY-MM")
    to = serializers.CharField(help_text="YYYY-MM")
    as_of = serializers.DateTimeField()
    months = _MonthSerializer(many=True)


def _number(value: float | Fraction | None) -> float | None:
    return None if value is None else float(value)


def _spread(spread: Spread) -> dict[str, Any]:
    return {
        "measured": spread.measured,
        "unavailable": spread.missing,
        "median_seconds": _number(spread.median),
        "worst_seconds": _number(spread.worst),
    }


def month_data(month: MonthFigures) -> dict[str, Any]:
    tally = month.tally
    return {
        "month": f"{month.start:%Y-%m}",
        "incidents": month.incidents,
        "by_impact": {impact: month.by_impact.get(impact, 0) for impact in IMPACTS},
        "duration": {**_spread(month.duration), "total_seconds": float(month.duration.total)},
        "time_to_detect": _spread(month.detect),
        "time_to_first_update": _spread(month.first_update),
        "time_to_resolve": _spread(month.resolve),
        "blast_radius": {
            "incidents": month.blast.measured,
            "median_pct": floor_pct(month.blast.median),
            "worst_pct": floor_pct(month.blast.worst),
        },
        "tailnet_seconds": {
            "seconds_with_data": tally.total_seconds,
            "outage_seconds": tally.outage_seconds,
            "partial_seconds": tally.partial_seconds,
            "degraded_seconds": tally.degraded_seconds,
        },
        "tailnet_minutes_lost": round(month.tailnet_minutes_lost, 4),
        "uptime_pct": floor_pct(month.uptime),
        "follow_ups": {"open": month.follow_ups_open, "done": month.follow_ups_done},
    }


class ReliabilityReportApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="The reliability report, per UTC month",
        description="Per month: incidents by impact (an incident belongs to the month it "
        "started; maintenance counts only if it had impact windows), duration, time to "
        "detect, to first public update and to resolve, blast radius, tailnet-minutes lost "
        "and fleet uptime weighted by tailnet time (counted in the months it happened); "
        "the follow-ups (open, done) of the month's incidents whose postmortem is published. "
        f"At most {MAX_MONTHS} months; by default the last {DEFAULT_MONTHS}.",
        parameters=[ReliabilityRangeSerializer],
        responses={
            200: ReliabilityReportSerializer,
            400: OpenApiResponse(description="A bad month or range, by field (from, to)."),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        now = timezone.now()
        query = ReliabilityRangeSerializer(
            data=request.query_params, context={"this_month": month_index(now)}
        )
        query.is_valid(raise_exception=True)
        first, last = query.validated_data["first"], query.validated_data["last"]
        as_of, months = cached_reliability_report(first=first, last=last, now=now)
        body = {
            "from": f"{month_start(first):%Y-%m}",
            "to": f"{month_start(last):%Y-%m}",
            "as_of": as_of.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "months": [month_data(month) for month in months],
        }
        return HttpResponse(JSONRenderer().render(body), content_type="application/json")
