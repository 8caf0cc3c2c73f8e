"""What the domain announces, for the caches above it to listen to.

Two announcements, each with one list of what triggers it:

- ``published_data_changed``: something the public pages show may have changed
  (incidents, their updates, components and impact windows, shards, who was
  affected). The public snapshot and the customers' page caches listen.
- ``tailnet_data_changed(tailnet_ids)``: data of these tailnets alone changed
  (their names and placements, their outage reports). Only the per-tailnet page
  caches care.

Saves and deletes of the models below announce themselves; writes that send no
model signals (``queryset.update()``, the bulk rebuild of affected tailnets) are
announced by the service that makes them. Receivers run in the transaction of the
change and decide themselves what to do after its commit.
"""

from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import Signal

published_data_changed = Signal()  # kwargs: using
tailnet_data_changed = Signal()  # kwargs: tailnet_ids
# News of an incident, sent inside the transaction that makes it, so that what apps
# above owe for it (notifications) commits with it: an update was posted (``update``),
# or a draft was published (``update`` None).
incident_announced = Signal()  # kwargs: incident, update
# An incident's affected-tailnet rows were rebuilt, inside the rebuild's transaction.
impacts_rebuilt = Signal()  # kwargs: incident_id

# Models as labels: the outage reports live in an app above this one.
PUBLISHED_MODELS = (
    "incidents.Incident",
    "incidents.IncidentUpdate",
    "incidents.IncidentComponent",
    "incidents.ShardImpact",
    "incidents.Component",
    "incidents.ComponentGroup",
    "incidents.Shard",
    "incidents.MonitoringGap",
)
TAILNET_MODELS = ("incidents.Tailnet", "incidents.Placement", "reports.Report")


def announce_published(*, using: str = DEFAULT_DB_ALIAS) -> None:
    published_data_changed.send(sender=None, using=using)


def announce_incident(incident: Any, update: Any = None) -> None:
    incident_announced.send(sender=None, incident=incident, update=update)


def announce_tailnets(tailnet_ids: Any) -> None:
    ids = sorted({pk for pk in tailnet_ids if pk is not None})
    if ids:
        tailnet_data_changed.send(sender=None, tailnet_ids=ids)


def _published_row(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    # Drafts too: an incident being unpublished is a draft save.
    announce_published(using=using)


def _tailnet_row(sender: Any, instance: Any, **kwargs: Any) -> None:
    is_tailnet = instance._meta.label == "incidents.Tailnet"
    announce_tailnets([instance.pk if is_tailnet else instance.tailnet_id])


def connect() -> None:
    from .models import Incident

    for label in PUBLISHED_MODELS:
        for signal in (post_save, post_delete):
            signal.connect(_published_row, sender=label, dispatch_uid=f"published-{label}")
    m2m_changed.connect(
        _published_row, sender=Incident.components.through, dispatch_uid="published-m2m"
    )
    for label in TAILNET_MODELS:
        for signal in (post_save, post_delete):
            signal.connect(_tailnet_row, sender=label, dispatch_uid=f"tailnet-{label}")
