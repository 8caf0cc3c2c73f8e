"""Thin Celery tasks around incidents.services. Ids in, never objects."""

import logging
from collections.abc import Iterable

from celery import shared_task
from django.db import transaction

from plumbing import broker

logger = logging.getLogger(__name__)


@shared_task(
    name="incidents.recompute_tailnet_impacts",
    acks_late=True,
    time_limit=300,
    soft_time_limit=240,
    ignore_result=True,
)
def recompute_tailnet_impacts(incident_id: int, only_if_stale: bool = True) -> int:
    """Rebuild one incident's affected tailnets. Several changes in one transaction
    queue several of these; the first rebuild makes the rest no-ops."""
    from .services import tailnet_impacts_recompute

    return tailnet_impacts_recompute(incident_id=incident_id, only_if_stale=only_if_stale)


@shared_task(
    name="incidents.refresh_ongoing_impacts",
    acks_late=True,
    time_limit=60,
    soft_time_limit=50,
    ignore_result=True,
)
def refresh_ongoing_impacts() -> int:
    """Fan out one rebuild per incident whose affected tailnets are stale."""
    from .services import incidents_needing_recompute

    ids = incidents_needing_recompute()
    for incident_id in ids:
        # Open windows grow with time, so these rebuild even if nothing changed.
        recompute_tailnet_impacts.delay(incident_id, only_if_stale=False)
    return len(ids)


def enqueue_recompute(incident_ids: Iterable[int]) -> None:
    """After the surrounding transaction commits, queue one rebuild per incident.

    The change is already committed when this runs, so a broker that is down must
    not turn it into an error: the periodic refresh sees impacts_changed_at >
    impacts_computed_at and rebuilds the rows when the broker is back.
    """
    ids = list(incident_ids)

    def publish() -> None:
        for incident_id in ids:
            what = f"recompute of incident {incident_id}"
            if not broker.publish(recompute_tailnet_impacts, (incident_id,), what=what):
                return  # the breaker is open for the rest too

    transaction.on_commit(publish)
