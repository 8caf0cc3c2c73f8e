"""Input and output of the customer API (``customers/api.py``), and the uptime range
that the CSV download shares with it. The output serializers are also the API's
documented shapes (drf-spectacular reads them)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from rest_framework import serializers

from .queries import MAX_RANGE_DAYS, UPTIME_DAYS

# No uptime is kept from before this day; an earlier one (0001-01-01) would also
# overflow the date arithmetic of the default range.
EARLIEST_DAY = date(2000, 1, 1)

# --- Input --------------------------------------------------------------------------------


class UptimeRangeSerializer(serializers.Serializer):
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD``, UTC days, both included. ``to`` defaults
    to today and ``from`` to 89 days before ``to``. Needs ``context["today"]``."""

    # "from" is a Python keyword: declared through the class namespace.
    vars()["from"] = serializers.DateField(
        required=False,
        input_formats=["iso-8601"],
        help_text="First UTC day, included (ISO 8601, e.g. 2026-01-01). "
        f"Default: {UPTIME_DAYS - 1} days before `to`.",
    )
    to = serializers.DateField(
        required=False,
        input_formats=["iso-8601"],
        help_text="Last UTC day, included (ISO 8601). Default: today (UTC).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        today: date = self.context["today"]
        last = attrs.get("to") or today
        for name, day in (("from", attrs.get("from")), ("to", last)):
            if day is not None and day < EARLIEST_DAY:
                raise serializers.ValidationError(
                    {name: [f"{day.isoformat()} is before {EARLIEST_DAY.isoformat()}: no data."]}
                )
        first = attrs.get("from") or last - timedelta(days=UPTIME_DAYS - 1)
        if last > today:
            raise serializers.ValidationError(
                {
                    "to": [
                        f"{last.isoformat()} is in the future; the last day with data is "
                        f"today, {today.isoformat()} (UTC)."
                    ]
                }
            )
        if first > last:
            raise serializers.ValidationError(
                {"from": [f"{first.isoformat()} is after `to` ({last.isoformat()})."]}
            )
        days = (last - first).days + 1
        if days > MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"from": [f"The range is {days} days; ask for at most {MAX_RANGE_DAYS} at once."]}
            )
        return {"first_day": first, "last_day": last}


# --- Output -------------------------------------------------------------------------------


class ShardSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The shard's public name, e.g. 'US East 1'.")
    region = serializers.CharField()


class TailnetSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField(help_text="Display name (often a domain or an email).")


class HappeningSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=["incident", "maintenance"])
    status = serializers.CharField(help_text="Statuspage's incident or maintenance status.")
    phase = serializers.ChoiceField(choices=["upcoming", "ongoing", "past"])
    level = serializers.CharField(
        allow_null=True, help_text="degraded, partial or outage on this tailnet's shard."
    )
    headline = serializers.CharField(help_text="Is it an outage, or just slow?")
    what = serializers.CharField(help_text="What keeps working and what is blocked.")
    started_at = serializers.DateTimeField()
    scheduled_for = serializers.DateTimeField(allow_null=True)
    scheduled_until = serializers.DateTimeField(allow_null=True)
    url = serializers.URLField(help_text="The incident's public page.")


class TailnetStatusSerializer(serializers.Serializer):
    tailnet = TailnetSerializer()
    shard = ShardSerializer(allow_null=True, help_text="Where the tailnet is placed now.")
    status = serializers.ChoiceField(
        choices=[
            "operational",
            "under_maintenance",
            "degraded_performance",
            "partial_outage",
            "major_outage",
        ],
        help_text="The state of this tailnet's coordination shard now.",
    )
    affected = serializers.BooleanField(help_text="Whether this tailnet is affected right now.")
    incidents = HappeningSerializer(many=True, help_text="Open incidents touching its shard.")
    maintenance = HappeningSerializer(
        many=True, help_text="Maintenance scheduled or in progress on its shard."
    )
    as_of = serializers.DateTimeField()


class WindowSerializer(serializers.Serializer):
    shard = ShardSerializer()
    level = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True, help_text="Null while still affected.")
    seconds = serializers.IntegerField()


class TailnetIncidentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    impact = serializers.CharField()
    level = serializers.CharField(help_text="The worst level this tailnet lived through.")
    affected_from = serializers.DateTimeField()
    affected_until = serializers.DateTimeField(allow_null=True)
    affected_seconds = serializers.IntegerField(
        help_text="Exactly how long this tailnet was affected, clipped to its placements."
    )
    affected_minutes = serializers.FloatField()
    windows = WindowSerializer(many=True)
    url = serializers.URLField()


class TailnetIncidentsSerializer(serializers.Serializer):
    tailnet = TailnetSerializer()
    incidents = TailnetIncidentSerializer(many=True)


class TallySerializer(serializers.Serializer):
    """Counted in exact seconds (``incidents.uptime``); the minutes are the same
    figures divided by 60, to four decimals."""

    minutes_with_data = serializers.FloatField(
        help_text="Minutes the tailnet existed (placed on a shard) in the span."
    )
    outage_minutes = serializers.FloatField()
    partial_minutes = serializers.FloatField()
    degraded_minutes = serializers.FloatField()
    affected_minutes = serializers.FloatField(help_text="Minutes with any impact.")
    downtime_minutes = serializers.FloatField(help_text="outage + 0.3 x partial.")
    uptime_pct = serializers.FloatField(
        allow_null=True,
        help_text="Floored to four decimals (never above the true value). Null without data.",
    )
    seconds_with_data = serializers.IntegerField(
        help_text="Seconds the tailnet existed (placed on a shard) in the span."
    )
    outage_seconds = serializers.IntegerField()
    partial_seconds = serializers.IntegerField()
    degraded_seconds = serializers.IntegerField()
    affected_seconds = serializers.IntegerField(help_text="Seconds with any impact.")
    downtime_seconds = serializers.FloatField(help_text="outage + 0.3 x partial.")


class DayTallySerializer(TallySerializer):
    date = serializers.DateField()


class MonthTallySerializer(TallySerializer):
    month = serializers.CharField(help_text="YYYY-MM")
    first_day = serializers.DateField()
    last_day = serializers.DateField()


class TailnetUptimeSerializer(serializers.Serializer):
    tailnet = TailnetSerializer()
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    total = TallySerializer()
    months = MonthTallySerializer(many=True)
    days = DayTallySerializer(many=True)


class LatencyHourSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="The hour's start (UTC).")
    shard = ShardSerializer(
        allow_null=True, help_text="The shard the tailnet was on (null: it did not exist yet)."
    )
    p50_ms = serializers.FloatField(
        allow_null=True, help_text="Median latency (ms), merged over the probe regions."
    )
    p95_ms = serializers.FloatField(allow_null=True, help_text="95th percentile latency (ms).")
    p99_ms = serializers.FloatField(allow_null=True, help_text="99th percentile latency (ms).")
    samples = serializers.IntegerField(help_text="Probes of the shard in the hour.")
    failures = serializers.IntegerField(help_text="Probes that got no good answer.")


class TailnetLatencySerializer(serializers.Serializer):
    """Percentiles are the upper bounds of fixed latency buckets (``probes.rollup``);
    an hour without a successful probe has null percentiles."""

    tailnet = TailnetSerializer()
    days = serializers.IntegerField(help_text="How many days the hours cover.")
    hours = LatencyHourSerializer(many=True, help_text="Every hour, oldest first.")
