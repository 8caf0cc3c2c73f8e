"""Input and output of the customer API (``customers/api.py``), and the uptime range
that the CSV download shares with it. The output serializers are also the API's
documented shapes (drf-spectacular reads them)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from rest_framework import serializers

from .queries import MAX_RANGE_DAYS, UPTIME_DAYS

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
    minutes_with_data = serializers.IntegerField(
        help_text="Minutes the tailnet existed (placed on a shard) in the span."
    )
    outage_minutes = serializers.IntegerField()
    partial_minutes = serializers.IntegerField()
    degraded_minutes = serializers.IntegerField()
    affected_minutes = serializers.IntegerField(help_text="Minutes with any impact.")
    downtime_minutes = serializers.FloatField(help_text="outage + 0.3 x partial.")
    uptime_pct = serializers.FloatField(allow_null=True, help_text="Null without data.")


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
