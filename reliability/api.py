"""The reliability figures as JSON.

- ``GET /api/v1/reliability?from=YYYY-MM&to=YYYY-MM``: public, like the page, and
  answered from the same cached figures.
- ``GET /api/v1/tailnets/<tailnet>/reliability`` and ``…/sla``: one tailnet's, through
  the customers' door (``customers.api.TailnetApi``: members and the tailnet's token,
  a 404 for anyone else), cached per tailnet like the rest of its API.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
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

from customers.api import NOT_FOUND, UNAUTHENTICATED, TailnetApi
from incidents.figures import floor_pct

from .queries import cached_reliability_report, report_as_of
from .report import IMPACTS, MonthFigures, Spread, month_index, month_start
from .sla import Policy
from .tailnet import SlaMonth, tailnet_reliability, tailnet_sla

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
        most: int = self.context.get("max_months", MAX_MONTHS)
        last = _month("to", attrs["to"]) if "to" in attrs else this_month
        if last > this_month:
            raise serializers.ValidationError(
                {"to": [f"{attrs['to']} is in the future; the last month is this one."]}
            )
        first = _month("from", attrs["from"]) if "from" in attrs else last - DEFAULT_MONTHS + 1
        if first > last:
            raise serializers.ValidationError({"from": [f"{attrs['from']} is after `to`."]})
        if last - first + 1 > most:
            raise serializers.ValidationError(
                {"from": [f"The range is {last - first + 1} months; ask for at most {most}."]}
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


# --- One tailnet: its figures and its SLA statement (members and the tailnet's token) ---


def range_query(request: Request, *, max_months: int) -> tuple[int, int]:
    """``?from=&to=`` as month indexes; a bad one is a 400 naming the field."""
    query = ReliabilityRangeSerializer(
        data=request.query_params,
        context={"this_month": month_index(timezone.now()), "max_months": max_months},
    )
    query.is_valid(raise_exception=True)
    return query.validated_data["first"], query.validated_data["last"]


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _range_data(first: int, last: int, as_of: datetime) -> dict[str, str]:
    return {
        "from": f"{month_start(first):%Y-%m}",
        "to": f"{month_start(last):%Y-%m}",
        "as_of": _utc(as_of),
    }


class _TailnetRefSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class TailnetReliabilitySerializer(serializers.Serializer):
    tailnet = _TailnetRefSerializer()
    vars()["from"] = serializers.CharField(help_text="YYYY-MM")
    to = serializers.CharField(help_text="YYYY-MM")
    as_of = serializers.DateTimeField()
    months = _MonthSerializer(
        many=True,
        help_text="As in /api/v1/reliability, kept to the incidents that affected this "
        "tailnet; tailnet_seconds, tailnet_minutes_lost and uptime_pct are this "
        "tailnet's own.",
    )


class TailnetReliabilityApi(TailnetApi):
    @extend_schema(
        summary="This tailnet's reliability figures, per UTC month",
        description="The public reliability report's figures for the incidents that "
        "affected this tailnet (an incident belongs to the month it started), and this "
        "tailnet's own seconds, minutes lost and uptime, stitched across its live "
        f"migrations. At most {MAX_MONTHS} months; by default the last {DEFAULT_MONTHS}.",
        parameters=[ReliabilityRangeSerializer],
        responses={
            200: TailnetReliabilitySerializer,
            400: OpenApiResponse(description="A bad month or range, by field (from, to)."),
            401: UNAUTHENTICATED,
            404: NOT_FOUND,
        },
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        first, last = range_query(request, max_months=MAX_MONTHS)
        as_of = report_as_of()

        def build() -> dict[str, Any]:
            months = tailnet_reliability(
                tailnet_id=self.access.tailnet.pk, first=first, last=last, now=as_of
            )
            return {
                "tailnet": self.tailnet_data(),
                **_range_data(first, last, as_of),
                "months": [month_data(month) for month in months],
            }

        return self.cached_json(f"reliability:{first}:{last}", build)


SLA_MAX_MONTHS = 24


def _pct(value: Decimal) -> float:
    return float(value)


def policy_data(policy: Policy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {
        "name": policy.name,
        "target_pct": _pct(policy.target_percent),
        "maintenance_notice_hours": policy.maintenance_notice_hours,
        "tiers": [
            {"below_pct": _pct(t.below_percent), "credit_pct": _pct(t.credit_percent)}
            for t in policy.tiers
        ],
    }


def sla_month_data(month: SlaMonth) -> dict[str, Any]:
    tally = month.tally
    return {
        "month": f"{month.start:%Y-%m}",
        "seconds_with_data": tally.total_seconds,
        "outage_seconds": tally.outage_seconds,
        "partial_seconds": tally.partial_seconds,
        "degraded_seconds": tally.degraded_seconds,
        "downtime_minutes": round(tally.downtime_seconds / 60, 4),
        "uptime_pct": floor_pct(month.uptime),
        "target_met": month.met,
        "tier": None
        if month.tier is None
        else {
            "below_pct": _pct(month.tier.below_percent),
            "credit_pct": _pct(month.tier.credit_percent),
        },
        "credit_pct": _pct(month.credit_percent),
        "excluded_maintenance": month.excluded_incidents,
    }


class _TierSerializer(serializers.Serializer):
    below_pct = serializers.FloatField(help_text="A month strictly below this uptime...")
    credit_pct = serializers.FloatField(help_text="...owes this share of its fee.")


class _PolicySerializer(serializers.Serializer):
    name = serializers.CharField()
    target_pct = serializers.FloatField(help_text="The monthly uptime promised.")
    maintenance_notice_hours = serializers.IntegerField(
        allow_null=True,
        help_text="Maintenance announced at least this long before its scheduled start is "
        "excluded within its scheduled window; null: maintenance is not excluded.",
    )
    tiers = _TierSerializer(many=True)


class _SlaMonthSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM (UTC).")
    seconds_with_data = serializers.IntegerField(
        help_text="Seconds the tailnet was on a measured shard, excluded maintenance left out."
    )
    outage_seconds = serializers.IntegerField()
    partial_seconds = serializers.IntegerField()
    degraded_seconds = serializers.IntegerField()
    downtime_minutes = serializers.FloatField(help_text="outage + 0.3 x partial, in minutes.")
    uptime_pct = serializers.FloatField(
        allow_null=True, help_text="Floored to 4 places; null without data."
    )
    target_met = serializers.BooleanField(
        allow_null=True, help_text="null without a policy or without data."
    )
    tier = _TierSerializer(allow_null=True, help_text="The tier the month fell into, if any.")
    credit_pct = serializers.FloatField(help_text="Credit owed for the month; 0 if none.")
    excluded_maintenance = serializers.IntegerField(
        help_text="Announced maintenance that affected the tailnet this month and was excluded."
    )


class TailnetSlaSerializer(serializers.Serializer):
    tailnet = _TailnetRefSerializer()
    vars()["from"] = serializers.CharField(help_text="YYYY-MM")
    to = serializers.CharField(help_text="YYYY-MM")
    as_of = serializers.DateTimeField()
    policy = _PolicySerializer(allow_null=True, help_text="null: no SLA applies.")
    months = _SlaMonthSerializer(many=True)


def sla_range(request: Request) -> tuple[int, int]:
    return range_query(request, max_months=SLA_MAX_MONTHS)


class TailnetSlaApi(TailnetApi):
    @extend_schema(
        summary="This tailnet's SLA statement, per UTC month",
        description="Each month's uptime of the tailnet (stitched across live migrations), "
        "held to its SLA policy (its own or the default): the tier it fell into and the "
        "credit owed. The exact uptime decides the tier; uptime_pct is floored for show. "
        f"At most {SLA_MAX_MONTHS} months; by default the last {DEFAULT_MONTHS}.",
        parameters=[ReliabilityRangeSerializer],
        responses={
            200: TailnetSlaSerializer,
            400: OpenApiResponse(description="A bad month or range, by field (from, to)."),
            401: UNAUTHENTICATED,
            404: NOT_FOUND,
        },
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        first, last = sla_range(request)
        as_of = report_as_of()

        def build() -> dict[str, Any]:
            statement = tailnet_sla(
                tailnet_id=self.access.tailnet.pk, first=first, last=last, now=as_of
            )
            return {
                "tailnet": self.tailnet_data(),
                **_range_data(first, last, as_of),
                "policy": policy_data(statement.policy),
                "months": [sla_month_data(month) for month in statement.months],
            }

        return self.cached_json(f"sla:{first}:{last}", build)
