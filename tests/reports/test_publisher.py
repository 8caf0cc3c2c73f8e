"""Triage is published on a broker connection each thread reuses, dropped after an error."""

import threading

import pytest

from reports.publisher import forget_thread_producer, publish, thread_producer
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
    publish(triage_report, (1,), timeout=TIMEOUT)
    first = thread_producer(triage_report, timeout=TIMEOUT)
    publish(triage_report, (2,), timeout=TIMEOUT)

    assert thread_producer(triage_report, timeout=TIMEOUT) is first
    assert len(list(queue.iterdir())) == 2


def test_after_a_failed_publish_the_next_one_connects_afresh(queue, monkeypatch):
    broken = thread_producer(triage_report, timeout=TIMEOUT)

    def refuse(*args, **kwargs):
        raise ConnectionResetError("the broker went away")

    monkeypatch.setattr(broken, "publish", refuse)
    with pytest.raises(ConnectionResetError):
        publish(triage_report, (1,), timeout=TIMEOUT)
    publish(triage_report, (2,), timeout=TIMEOUT)

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
