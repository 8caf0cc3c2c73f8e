"""Thin Celery tasks around the outbox."""

import logging

from celery import shared_task

from plumbing import broker

logger = logging.getLogger(__name__)


@shared_task(name="notifications.deliver", ignore_result=True, time_limit=120, soft_time_limit=100)
def deliver() -> int:
    """Send what is due (beat runs it every few seconds; new deliveries queue it too).
    Safe to run twice at once: each row is claimed by one run."""
    from .delivery import deliver_due

    return deliver_due()


@shared_task(name="notifications.remind", ignore_result=True, time_limit=60, soft_time_limit=50)
def remind() -> int:
    """Owe the maintenance reminders that have come due."""
    from .outbox import maintenance_reminders_add

    owed = maintenance_reminders_add()
    if owed:
        enqueue_delivery()
    return owed


def enqueue_delivery() -> None:
    """Ask a worker to send now; if the broker is down, beat's sweep will."""
    broker.publish(deliver, what="notification delivery")
