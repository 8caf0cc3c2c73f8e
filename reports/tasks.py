"""Thin Celery tasks around reports.services. Ids in, never objects."""

import logging
import os
import threading
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

# Reports younger than this are left to the task queued when they were saved.
SWEEP_GRACE_SECONDS = 60
SWEEP_BATCH = 500


@shared_task(
    name="reports.triage",
    acks_late=True,
    time_limit=60,
    soft_time_limit=50,
    ignore_result=True,
)
def triage_report(report_id: int) -> bool:
    """Triage one report; False if it was already triaged (the sweep and the
    after-commit task may both queue it)."""
    from .services import report_triage

    return report_triage(report_id=report_id) is not None


@shared_task(
    name="reports.sweep_untriaged",
    acks_late=True,
    time_limit=60,
    soft_time_limit=50,
    ignore_result=True,
)
def sweep_untriaged() -> int:
    """Queue triage of every report whose own task never ran (the broker was down
    when it was saved). Returns how many were queued."""
    from .queries import untriaged_report_ids

    ids = untriaged_report_ids(
        older_than=timezone.now() - timedelta(seconds=SWEEP_GRACE_SECONDS),
        limit=SWEEP_BATCH,
    )
    for report_id in ids:
        triage_report.delay(report_id)
    return len(ids)


def enqueue_triage(report_id: int) -> None:
    """Queue a report's triage, giving up after REPORT_PUBLISH_TIMEOUT_SECONDS.

    Runs after the report is committed, inside the web request: whatever goes
    wrong here (broker refused, slow, misconfigured) is logged and swallowed, since
    the person already has a saved report and the sweep triages it later.
    """
    if triage_report.app.conf.task_always_eager:  # tests, and setups without workers
        triage_report.apply_async((report_id,))
        return
    try:
        triage_report.apply_async((report_id,), producer=_producer(), retry=False)
    except Exception as error:  # the report is saved: never turn this into a 500
        _forget_producer()
        logger.warning(
            "could not queue triage of report %s (%s: %s); the sweep will",
            report_id,
            type(error).__name__,
            error,
        )


# This thread's producer, kept from one report to the next: a new connection, channel
# and Redis client for every publish cost more than the publish itself. Dropped after
# any error (the next report connects afresh), in a forked child, and when the broker
# settings change.
_kept = threading.local()


def _producer() -> Any:
    conf = triage_report.app.conf
    timeout = settings.REPORT_PUBLISH_TIMEOUT_SECONDS
    key = (os.getpid(), conf.broker_write_url, repr(conf.broker_transport_options), timeout)
    if getattr(_kept, "key", None) != key:
        _forget_producer()
        # A connection of its own, with short timeouts and no retries: the app's
        # would wait as long as the workers are prepared to.
        connection = triage_report.app.connection_for_write(
            connect_timeout=timeout,
            transport_options={
                "socket_connect_timeout": timeout,
                "socket_timeout": timeout,
                "max_retries": 0,
            },
        )
        _kept.connection, _kept.producer, _kept.key = connection, connection.Producer(), key
    return _kept.producer


def _forget_producer() -> None:
    connection, key = getattr(_kept, "connection", None), getattr(_kept, "key", None)
    _kept.connection = _kept.producer = _kept.key = None
    # A forked child only drops its copy: closing it would shut the parent's socket.
    if connection is not None and key is not None and key[0] == os.getpid():
        try:
            connection.release()
        except Exception:  # already broken: nothing to close cleanly
            logger.debug("closing the triage publisher's connection failed", exc_info=True)
