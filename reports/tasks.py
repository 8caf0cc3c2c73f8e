"""Thin Celery tasks around reports.services. Ids in, never objects."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from plumbing import broker

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
    broker.publish(
        triage_report,
        (report_id,),
        what=f"triage of report {report_id}",
        timeout=settings.REPORT_PUBLISH_TIMEOUT_SECONDS,
    )
