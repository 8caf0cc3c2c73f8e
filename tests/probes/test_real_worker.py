"""A real Celery worker process, fed through Redis (or RabbitMQ, when
CELERY_BROKER_URL says so), runs a probe round.

Needs PostgreSQL (the worker must see the test database from another process)
and REDIS_URL; CI runs it in its PostgreSQL + Redis pass.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from incidents.models import Shard
from probes.models import ProbeRegion, ProbeSample
from probes.tasks import probe_region
from tests.conftest import real_broker

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"),
        reason="needs PostgreSQL and REDIS_URL: a worker process must share the database",
    ),
    pytest.mark.django_db(transaction=True),
]


def _database_url():
    db = connection.settings_dict
    user = db["USER"] or "postgres"
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_a_worker_on_the_region_queue_probes_every_shard(fleet, simulator):
    region = ProbeRegion.objects.create(slug=f"ci{uuid.uuid4().hex[:8]}", name="CI")
    for shard in Shard.objects.all():
        shard.probe_url = f"{simulator.url}/s/{shard.slug}/key?v=88"
        shard.save(update_fields=["probe_url"])
    # Redis, or RabbitMQ in CI's pass with CELERY_BROKER_URL=amqp://…
    broker = os.environ.get("CELERY_BROKER_URL") or os.environ["REDIS_URL"]
    worker = subprocess.Popen(  # noqa: S603 - our own worker, fixed arguments
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "statuspage",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            f"--queues={region.queue}",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": _database_url(), "CELERY_BROKER_URL": broker},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with real_broker(broker):
            probe_region.apply_async(
                args=(region.slug, timezone.now().isoformat()), queue=region.queue
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            region.refresh_from_db()
            if region.last_round_at is not None:  # the round's last write
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")

    samples = ProbeSample.objects.filter(region=region)
    assert samples.count() == 3, output[-3000:]
    assert all(samples.values_list("ok", flat=True))
    assert region.last_round_at is not None, output[-4000:]
    assert region.last_queue_lag_seconds is not None
