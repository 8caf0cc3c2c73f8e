"""Is the feed healthy? What /metrics and the admin show of it: how old the newest
event is, how many arrive a minute, how many batches were refused, and how many
tailnets still sit on shards that were retired (until migration events move them)."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from incidents.models import Placement

from .models import FleetEvent, FleetRejection

RATE_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class FleetHealth:
    newest_event_at: datetime | None  # when the newest event was received
    newest_event_age: float | None  # seconds
    events_per_minute: float  # received over the last RATE_WINDOW
    rejected_batches: int  # ever
    rejected_batches_recent: int  # over the last hour
    on_retired_shards: int  # tailnets placed now on a shard that is no longer active


def fleet_health(*, now: datetime | None = None) -> FleetHealth:
    """Four small queries, each on an index."""
    now = now or timezone.now()
    events = FleetEvent.objects.aggregate(
        newest=Max("received_at"),
        recent=Count("pk", filter=Q(received_at__gte=now - RATE_WINDOW)),
    )
    rejected = FleetRejection.objects.aggregate(
        total=Count("pk"), recent=Count("pk", filter=Q(received_at__gte=now - timedelta(hours=1)))
    )
    stranded = (
        Placement.objects.filter(ends_at__isnull=True, shard__active=False)
        .values("tailnet_id")
        .distinct()
        .count()
    )
    newest = events["newest"]
    return FleetHealth(
        newest_event_at=newest,
        newest_event_age=None if newest is None else max(0.0, (now - newest).total_seconds()),
        events_per_minute=events["recent"] / (RATE_WINDOW.total_seconds() / 60),
        rejected_batches=rejected["total"],
        rejected_batches_recent=rejected["recent"],
        on_retired_shards=stranded,
    )


class FleetCollector:
    """The feed's health for /metrics (``plumbing.metrics``)."""

    def collect(self) -> Iterator[Metric]:
        health = fleet_health()
        age = GaugeMetricFamily(
            "statuspage_fleet_newest_event_age_seconds",
            "Seconds since the newest fleet event was received (absent: none yet).",
        )
        if health.newest_event_age is not None:
            age.add_metric([], health.newest_event_age)
        yield age
        yield GaugeMetricFamily(
            "statuspage_fleet_events_per_minute",
            "Fleet events received per minute over the last 5 minutes.",
            value=health.events_per_minute,
        )
        yield GaugeMetricFamily(
            "statuspage_fleet_rejected_batches",
            "Fleet event batches refused (400, 409, 413), ever.",
            value=health.rejected_batches,
        )
        yield GaugeMetricFamily(
            "statuspage_fleet_tailnets_on_retired_shards",
            "Tailnets still placed on a retired shard (until migration events move them).",
            value=health.on_retired_shards,
        )
