"""Tasks are published on a broker connection each thread reuses, dropped after an
error; after a failure the broker is left alone for a while (the breaker)."""

import socket
import threading

import pytest

from plumbing import broker
from plumbing.broker import forget_thread_producer, publish, thread_producer
from reports.tasks import triage_report
from tests.conftest import real_broker

TIMEOUT = 0.5


@pytest.fixture
def queue(tmp_path):
    """A filesystem broker whose messages land in the returned folder."""
    folder = tmp_path / "queue"
    folder.mkdir()
    with real_broker(
        "filesystem://",
        data_folder_in=str(folder),
        data_folder_out=str(folder),
        processed_folder=str(tmp_path),
        control_folder=str(tmp_path / "control"),
        store_processed=False,
    ):
        yield folder
    forget_thread_producer()


def test_reports_published_one_after_the_other_share_one_connection(queue):
    publish(triage_report, (1,), what="triage", timeout=TIMEOUT)
    first = thread_producer(triage_report, timeout=TIMEOUT)
    publish(triage_report, (2,), what="triage", timeout=TIMEOUT)

    assert thread_producer(triage_report, timeout=TIMEOUT) is first
    assert len(list(queue.iterdir())) == 2


def test_after_a_failed_publish_the_next_one_connects_afresh(queue, monkeypatch):
    broken = thread_producer(triage_report, timeout=TIMEOUT)

    def refuse(*args, **kwargs):
        raise ConnectionResetError("the broker went away")

    monkeypatch.setattr(broken, "publish", refuse)
    assert publish(triage_report, (1,), what="triage", timeout=TIMEOUT) is False
    broker.reset()  # the breaker's period is over
    assert publish(triage_report, (2,), what="triage", timeout=TIMEOUT) is True

    assert thread_producer(triage_report, timeout=TIMEOUT) is not broken
    assert len(list(queue.iterdir())) == 1


def test_another_thread_publishes_on_a_connection_of_its_own(queue):
    mine = thread_producer(triage_report, timeout=TIMEOUT)
    theirs = []

    def other_thread():
        theirs.append(thread_producer(triage_report, timeout=TIMEOUT))
        forget_thread_producer()

    other = threading.Thread(target=other_thread)
    other.start()
    other.join()

    assert theirs[0] is not mine
    assert thread_producer(triage_report, timeout=TIMEOUT) is mine


def test_a_change_of_broker_settings_gets_a_new_connection(queue):
    before = thread_producer(triage_report, timeout=TIMEOUT)

    assert thread_producer(triage_report, timeout=TIMEOUT * 2) is not before


def test_a_broker_that_never_answers_costs_one_timeout_per_breaker_period(
    settings, monkeypatch, caplog
):
    settings.BROKER_BREAKER_SECONDS = 30
    # Accepts connections (the kernel does) and never answers.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        attempts = []
        real = broker.thread_producer

        def counted(*args, **kwargs):
            attempts.append(args)
            return real(*args, **kwargs)

        monkeypatch.setattr(broker, "thread_producer", counted)
        with real_broker(url):
            results = [
                publish(triage_report, (n,), what=f"triage of report {n}", timeout=TIMEOUT)
                for n in range(20)
            ]

    assert results == [False] * 20
    assert len(attempts) == 1  # one wait on the broker; the other 19 gave up at once
    assert caplog.text.count("could not queue triage") == 1
    assert "left alone for 30 s" in caplog.text


def test_once_the_period_is_over_the_broker_is_tried_again(queue, settings):
    settings.BROKER_BREAKER_SECONDS = 30
    with real_broker("redis://127.0.0.1:1/0"):  # nothing listens on port 1
        assert publish(triage_report, (1,), what="triage", timeout=TIMEOUT) is False
    assert publish(triage_report, (2,), what="triage", timeout=TIMEOUT) is False  # skipped
    assert list(queue.iterdir()) == []

    broker._down_until -= 31  # thirty-one seconds later
    assert publish(triage_report, (3,), what="triage", timeout=TIMEOUT) is True
    assert len(list(queue.iterdir())) == 1
