"""Probe tasks. Detection, silence, rollups and pruning run here for every region.

Regions are probed by their agents (``probes.agent``), which post to the ingestion
API. Regions listed in ``PROBE_WORKER_REGIONS`` are probed from a Celery worker
instead: beat fans out one task per such region per round onto the region's own
queue (probes.<region>); each probes all of that region's shards at once."""

import logging
from datetime import datetime, timedelta

from celery import current_app, shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from plumbing import broker

logger = logging.getLogger(__name__)

# Set while a probes.detect run is queued and has not started: the rounds and batches
# committed meanwhile will be in that run, so they queue nothing more.
DETECT_PENDING_KEY = "probes:detect:pending"


@shared_task(
    name="probes.schedule_rounds",
    acks_late=True,
    time_limit=30,
    soft_time_limit=25,
    ignore_result=True,
)
def schedule_rounds() -> int:
    from .models import worker_regions

    interval = settings.PROBE_INTERVAL_SECONDS
    regions = list(worker_regions().values_list("slug", flat=True))
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


def detect_soon() -> None:
    """Queue one detection run, a moment from now, unless one is already queued and
    not yet started. Called after commit by every write of samples (rounds, ingest).

    The run clears the key *before* it reads samples, so whatever commits after that
    queues the next run: a sample is never left unseen. If the cache is down, every
    call queues a run (detection is idempotent); if the broker is down, the key is
    dropped so the next round tries again.
    """
    if current_app.conf.task_always_eager:
        detect.delay()  # inline (tests, one-off tools): nothing to coalesce
        return
    delay = settings.PROBE_DETECT_DELAY_SECONDS
    # If the queued run is lost, the next round after this queues another.
    ttl = max(int(settings.PROBE_INTERVAL_SECONDS), 5)
    try:
        if not cache.add(DETECT_PENDING_KEY, timezone.now().isoformat(), timeout=ttl):
            return
    except Exception as error:  # the cache only saves work; never lose a run to it
        logger.warning("detection dedup unavailable (%s); queueing anyway", error)
    if not broker.publish(detect, what="detection", countdown=delay):
        # The next round queues it again.
        _forget_pending()


def _forget_pending() -> None:
    try:
        cache.delete(DETECT_PENDING_KEY)
    except Exception as error:  # the cache only saves work, as above
        logger.warning("could not clear the detection key (%s)", error)


@shared_task(
    name="probes.detect",
    acks_late=True,
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def detect() -> int:
    """Detection over every shard's new samples (queued by ``detect_soon``).
    Returns how many verdicts changed."""
    from .services import detection_run

    _forget_pending()  # first: what commits from now on queues the next run
    return len(detection_run())


@shared_task(
    name="probes.check_silence",
    acks_late=True,
    time_limit=60,
    soft_time_limit=50,
    ignore_result=True,
)
def check_silence() -> int:
    """End detection's windows on shards no region reports on any more (beat, every
    round). Returns how many shards were found silent."""
    from .services import silence_check

    return len(silence_check())


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
