"""Probe workers. Beat fans out one task per region per round onto the region's
own queue (probes.<region>); each probes all of that region's shards at once."""

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(
    name="probes.schedule_rounds",
    acks_late=True,
    time_limit=30,
    soft_time_limit=25,
    ignore_result=True,
)
def schedule_rounds() -> int:
    from .models import ProbeRegion

    interval = settings.PROBE_INTERVAL_SECONDS
    regions = list(ProbeRegion.objects.filter(active=True).values_list("slug", flat=True))
    for slug in regions:
        # A round that could not start before the next one is due is worthless.
        probe_region.apply_async(
            args=(slug, timezone.now().isoformat()), queue=f"probes.{slug}", expires=interval
        )
    return len(regions)


@shared_task(
    name="probes.probe_region",
    acks_late=True,
    # The probes themselves time out; this only guards against a stuck worker.
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def probe_region(region_slug: str, scheduled_at: str | None = None) -> int:
    from .services import region_round

    return region_round(
        region_slug=region_slug,
        scheduled_at=datetime.fromisoformat(scheduled_at) if scheduled_at else None,
    )


@shared_task(
    name="probes.build_rollups",
    acks_late=True,
    time_limit=300,
    soft_time_limit=240,
    ignore_result=True,
)
def build_rollups() -> int:
    from .services import rollups_build

    now = timezone.now()
    # Rebuild the last few minutes: samples from far regions arrive late.
    return rollups_build(since=now - timedelta(minutes=5), until=now)


@shared_task(
    name="probes.prune", acks_late=True, time_limit=600, soft_time_limit=540, ignore_result=True
)
def prune() -> list[int]:
    from .services import retention_prune

    return list(retention_prune())
