"""The fleet feed's event log: every event the coordination service's control plane
(or an operator, a reconcile, the backfill) ever sent, kept as the source of truth
that tailnets' placements are derived from (``derive.py``)."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .events import ID_MAX, SHARD_TYPES, TAILNET_TYPES, TYPES


class FleetEventSource(models.TextChoices):
    API = "api", "Feed API"
    ADMIN = "admin", "Operator (admin)"
    RECONCILE = "reconcile", "Reconcile"
    BACKFILL = "backfill", "Backfill from placements"


class FleetEvent(models.Model):
    """One event. Tailnets and shards are named by slug, not by foreign key: an event
    may name a tailnet that exists only because of it, and the log outlives rows."""

    Source = FleetEventSource

    id = models.CharField(max_length=ID_MAX, primary_key=True, help_text="The producer's id.")
    type = models.CharField(max_length=20, choices=[(t, t) for t in TYPES])
    at = models.DateTimeField(help_text="When it happened in the fleet.")
    tailnet = models.CharField(max_length=100, blank=True, help_text="Slug; empty for shards.")
    shard = models.CharField(max_length=64, blank=True, help_text="Slug, when the event names one.")
    # The type's other fields as sent: display_name; region, public_name, probe_url, component.
    payload = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=FleetEventSource.choices)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # A tailnet's placements are derived from all its events in this order.
            models.Index(fields=["tailnet", "at", "id"], name="fleetevent_tailnet"),
            models.Index(fields=["shard", "at"], name="fleetevent_shard"),
            models.Index(fields=["type", "at"], name="fleetevent_type"),
            models.Index(fields=["source", "at"], name="fleetevent_source"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(type__in=TYPES), name="fleetevent_type_valid"),
            models.CheckConstraint(
                condition=Q(source__in=FleetEventSource.values), name="fleetevent_source_valid"
            ),
            models.CheckConstraint(
                condition=(Q(type__in=TAILNET_TYPES) & ~Q(tailnet=""))
                | (Q(type__in=SHARD_TYPES, tailnet="") & ~Q(shard="")),
                name="fleetevent_names_its_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.type} {self.tailnet or self.shard}"


class FleetRejection(models.Model):
    """A batch the feed refused (nothing of it was stored): for feed health in
    /metrics and the admin, and for the operator who wonders why a change is missing."""

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.PositiveSmallIntegerField(help_text="400, 409 or 413.")
    events = models.PositiveIntegerField(help_text="Events in the batch (0 if unreadable).")
    reason = models.CharField(max_length=500)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.received_at:%Y-%m-%d %H:%M:%S} {self.status}: {self.reason[:60]}"
