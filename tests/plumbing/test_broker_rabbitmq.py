"""RabbitMQ as the broker (``CELERY_BROKER_URL=amqp://…``): what is published after a
commit reaches its queue on one reused connection, and a broker that is not there
costs one short timeout, never an exception. CI runs these (and the real worker of
tests/probes/test_real_worker.py) with RabbitMQ once; without an amqp URL they skip."""

import contextlib
import os
import time
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from plumbing import broker
from plumbing.broker import forget_thread_producer, publish, thread_producer
from reports.tasks import triage_report
from statuspage.celery import app
from tests.conftest import closed_port, real_broker

AMQP = os.environ.get("CELERY_BROKER_URL", "")

pytestmark = pytest.mark.skipif(
    not AMQP.startswith(("amqp://", "pyamqp://")),
    reason="needs CELERY_BROKER_URL=amqp://… (CI's RabbitMQ pass sets it)",
)


@pytest.fixture
def queue_name():
    """A queue of this test's own on the broker, bound where triage is published."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    with Connection(AMQP, connect_timeout=5) as connection:
        Queue(name, Exchange(name, type="direct"), routing_key=name, auto_delete=False)(
            connection.default_channel
        ).declare()
    yield name
    with Connection(AMQP, connect_timeout=5) as connection:
        Queue(name)(connection.default_channel).delete()
    forget_thread_producer()


def _messages(name: str, wait: float = 5.0) -> list[dict]:
    found: list[dict] = []
    with Connection(AMQP, connect_timeout=5) as connection:
        simple = connection.SimpleQueue(name)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                message = simple.get(timeout=0.5)
            except simple.Empty:
                if found:
                    break
                continue
            found.append(message.headers)
            message.ack()
        simple.close()
    return found


@contextlib.contextmanager
def routed_to(queue_name):
    """Triage tasks go to this test's queue (Celery caches its router: flushed)."""
    saved = app.conf.task_routes

    def route(routes):
        app.conf.update(task_routes=routes)
        app.amqp.flush_routes()
        app.amqp.__dict__.pop("router", None)

    route({"reports.triage": {"queue": queue_name}})
    try:
        yield
    finally:
        route(saved)


def test_published_tasks_reach_rabbitmq_on_one_connection(queue_name):
    with real_broker(AMQP), routed_to(queue_name):
        assert publish(triage_report, (1,), what="triage", timeout=2)
        first = thread_producer(triage_report, timeout=2)
        assert publish(triage_report, (2,), what="triage", timeout=2)
        assert thread_producer(triage_report, timeout=2) is first

    headers = _messages(queue_name)
    assert [h["task"] for h in headers] == ["reports.triage"] * 2
    assert [h["argsrepr"] for h in headers] == ["(1,)", "(2,)"]


def test_a_rabbitmq_that_is_not_there_costs_one_short_timeout():
    broker.reset()
    with real_broker(f"amqp://guest:guest@127.0.0.1:{closed_port()}//"):
        started = time.monotonic()
        assert publish(triage_report, (1,), what="triage", timeout=0.5) is False
        assert publish(triage_report, (2,), what="triage", timeout=0.5) is False  # breaker
        assert time.monotonic() - started < 5
    broker.reset()
    forget_thread_producer()
