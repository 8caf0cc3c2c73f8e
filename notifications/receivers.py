"""The outbox listens to the incidents' news (``incidents.signals``), inside the
transaction that makes it: the deliveries an event owes commit with the event."""

from typing import Any

from django.db import transaction

from incidents import signals
from incidents.models import CLOSED_STATUSES, IncidentUpdate

from . import outbox


def _incident_announced(
    sender: Any, incident: Any, update: IncidentUpdate | None, **_: Any
) -> None:
    if not incident.published:
        return
    kind = outbox.public_event(incident, update)
    owed = 0
    if kind is not None:
        owed += outbox.public_deliveries_add(
            incident, kind, update_id=update.pk if update is not None else 0
        )
    # A draft published, or a status that closes it: the tailnets' own news.
    owed += outbox.tailnet_deliveries_add(incident.pk)
    later = (
        update is not None
        and update.status not in CLOSED_STATUSES
        and IncidentUpdate.objects.filter(incident_id=incident.pk).exclude(pk=update.pk).exists()
    )
    if later:
        assert update is not None
        owed += outbox.tailnet_update_deliveries_add(update)
    if owed:
        _deliver_soon()


def _impacts_rebuilt(sender: Any, incident_id: int, **_: Any) -> None:
    if outbox.tailnet_deliveries_add(incident_id):
        _deliver_soon()


def _deliver_soon() -> None:
    from .tasks import enqueue_delivery

    transaction.on_commit(enqueue_delivery)


def connect() -> None:
    signals.incident_announced.connect(_incident_announced, dispatch_uid="notifications-news")
    signals.impacts_rebuilt.connect(_impacts_rebuilt, dispatch_uid="notifications-impacts")
