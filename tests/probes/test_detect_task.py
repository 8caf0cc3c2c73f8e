"""Detection runs in its own task, queued when samples commit: a burst of rounds and
batches runs it once, and nothing stored is ever left unseen."""

import uuid
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from incidents.models import Incident, ShardImpact
from plumbing import broker
from probes import tasks
from probes.models import ProbeRegion, ShardState
from probes.services import SampleIn, samples_store
from statuspage.celery import app as celery_app

ROUND = timedelta(seconds=30)


@pytest.fixture
def regions(db):
    return [ProbeRegion.objects.create(slug=slug, name=slug) for slug in ("ams", "nyc", "sfo")]


@pytest.fixture
def queued(monkeypatch):
    """Tasks go to a (recorded) broker instead of running inline; the dedup key is
    this test's own, so other tests sharing the cache never see it."""
    monkeypatch.setattr(tasks, "DETECT_PENDING_KEY", f"test:detect:{uuid.uuid4().hex}")
    calls = []
    monkeypatch.setattr(tasks.detect, "apply_async", lambda *a, **kw: calls.append(kw))
    celery_app.conf.task_always_eager = False
    yield calls
    celery_app.conf.task_always_eager = True


def _round(fleet, region, at, ok=True):
    samples_store(
        region=region,
        samples=[
            SampleIn(
                shard_id=fleet[slug].pk,
                started_at=at,
                ok=ok,
                latency_ms=40.0 if ok else None,
                error="" if ok else "refused",
            )
            for slug in ("use1", "use2", "euw1")
        ],
    )


def test_a_burst_of_rounds_from_every_region_queues_detection_once(
    fleet, regions, queued, committed
):
    now = timezone.now()
    with committed():
        for region in regions:
            _round(fleet, region, now)
    with committed():
        _round(fleet, regions[0], now + ROUND)

    assert len(queued) == 1
    assert queued[0]["countdown"] > 0  # a moment later, so the rest of the burst joins in
    assert not ShardState.objects.exists()  # nothing ran inside the rounds


def test_samples_committed_after_a_run_starts_queue_the_next_run(fleet, regions, queued, committed):
    now = timezone.now()
    with committed():
        _round(fleet, regions[0], now)
    tasks.detect()  # the worker runs the queued task
    with committed():
        _round(fleet, regions[1], now)

    assert len(queued) == 2
    assert ShardState.objects.count() == 3


def test_a_rolled_back_round_queues_nothing(fleet, regions, queued, committed):
    def failing_round():
        with transaction.atomic():
            _round(fleet, regions[0], timezone.now())
            raise RuntimeError("the round failed before its commit")

    with committed(), pytest.raises(RuntimeError):
        failing_round()
    assert queued == []


def test_with_the_broker_down_the_next_round_queues_detection_again(
    fleet, regions, queued, committed, monkeypatch
):
    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(tasks.detect, "apply_async", down)
    with committed():
        _round(fleet, regions[0], timezone.now())  # stored, detection not queued

    broker.reset()  # the broker's breaker period is over
    recorded = []
    monkeypatch.setattr(tasks.detect, "apply_async", lambda *a, **kw: recorded.append(kw))
    with committed():
        _round(fleet, regions[1], timezone.now())
    assert len(recorded) == 1


def test_with_the_cache_down_detection_is_queued_anyway(
    fleet, regions, queued, committed, monkeypatch
):
    def broken(*args, **kwargs):
        raise ConnectionError("cache unreachable")

    # The cache object itself, not Django's per-thread proxy to it: the proxy finds a
    # new object once the test's settings are undone, before monkeypatch is.
    the_cache = caches["default"]
    monkeypatch.setattr(the_cache, "add", broken)
    monkeypatch.setattr(the_cache, "delete", broken)
    with committed():
        _round(fleet, regions[0], timezone.now())
    assert len(queued) == 1
    assert tasks.detect() == 0  # runs, and does not fail on the cache


def test_an_outage_is_opened_by_the_third_round_of_failures(fleet, regions, settings, committed):
    """The promise detection keeps although it left the rounds: each round's samples
    are judged right after they commit (here inline, as tests run tasks eagerly)."""
    settings.PROBE_AUTO_PUBLISH = True
    start = timezone.now() - 5 * ROUND
    for i in range(3):
        with committed():
            for region in regions:
                _round(fleet, region, start + i * ROUND, ok=False)
        opened = Incident.objects.exists()
        assert opened == (i == 2), f"round {i + 1}"
    windows = ShardImpact.objects.order_by("shard__slug")
    assert [(w.shard.slug, w.starts_at) for w in windows] == [
        ("euw1", start),
        ("use1", start),
        ("use2", start),
    ]
