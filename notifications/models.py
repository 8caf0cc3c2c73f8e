"""Who asked to hear about incidents (``Subscription``) and what we owe each of them
(``Delivery``, the outbox: one row per subscription and event, ever)."""

import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from incidents.models import Component, Incident, Tailnet

# "No window start" / "no update" in the outbox's unique key (NULLs would be distinct).
NO_WINDOW = datetime(1970, 1, 1, tzinfo=UTC)
NO_UPDATE = 0


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class WebhookFormat(models.TextChoices):
    JSON = "json", "JSON"
    SLACK = "slack", "Slack (incoming webhook)"


class EventType(models.TextChoices):
    # Public subscribers: published incidents and maintenance on their components.
    INCIDENT_PUBLISHED = "incident.published"
    INCIDENT_UPDATED = "incident.updated"
    INCIDENT_RESOLVED = "incident.resolved"
    MAINTENANCE_SCHEDULED = "maintenance.scheduled"
    MAINTENANCE_REMINDER = "maintenance.reminder"
    MAINTENANCE_STARTED = "maintenance.started"
    MAINTENANCE_COMPLETED = "maintenance.completed"
    # Tailnet subscribers: their own time (and incident.updated, incident.resolved).
    INCIDENT_AFFECTED = "incident.affected"
    INCIDENT_IMPACT_ENDED = "incident.impact_ended"
    # A delivery asked for by a person ("send a test") or to confirm a webhook.
    TEST = "test"


class Subscription(models.Model):
    """An email address or a webhook that hears about incidents: a public subscriber
    (no tailnet: the whole page, or the chosen components) or one of a tailnet's
    recipients (only that tailnet's own time). Nothing is sent before it is
    confirmed: an email by its link, a public webhook by a test delivery answered 2xx."""

    Channel = Channel
    Format = WebhookFormat

    channel = models.CharField(max_length=10, choices=Channel.choices)
    tailnet = models.ForeignKey(
        Tailnet,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="subscriptions",
        help_text="Empty for a public subscriber.",
    )
    components = models.ManyToManyField(
        Component, blank=True, related_name="+", help_text="Public only; none: the whole page."
    )
    email = models.EmailField(max_length=254, blank=True)
    url = models.URLField(max_length=500, blank=True)
    # Signs every webhook delivery, so it is kept as given (never in a cache).
    secret = models.CharField(max_length=100, blank=True)
    format = models.CharField(
        max_length=10, choices=WebhookFormat.choices, default=WebhookFormat.JSON
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True, help_text="Off once unsubscribed or disabled.")
    disabled_reason = models.CharField(max_length=200, blank=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="A webhook's first failure since its last success."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tailnet", "active"], name="subscription_tailnet")]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel=Channel.EMAIL, url="", secret="") & ~Q(email="")
                | Q(channel=Channel.WEBHOOK, email="") & ~Q(url=""),
                name="subscription_channel_fields",
            ),
            models.UniqueConstraint(
                fields=["tailnet", "email"],
                condition=Q(channel=Channel.EMAIL, tailnet__isnull=False),
                name="subscription_tailnet_email_once",
            ),
            models.UniqueConstraint(
                fields=["email"],
                condition=Q(channel=Channel.EMAIL, tailnet__isnull=True),
                name="subscription_public_email_once",
            ),
        ]

    def __str__(self) -> str:
        target = self.email or self.url
        return f"{target} ({self.tailnet.slug if self.tailnet is not None else 'public'})"

    @property
    def is_public(self) -> bool:
        return self.tailnet_id is None


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"  # its subscription was turned off before it went


class Delivery(models.Model):
    """One event owed to one subscription. The unique key is the event's identity
    (subscription, incident, type, window start or update), never the id of a derived
    row, so recomputes, retries and crashes can never owe it twice. Every try sends
    the same ``id``, for receivers to de-duplicate; its schedule lives here."""

    Status = DeliveryStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    tailnet = models.ForeignKey(
        Tailnet, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    type = models.CharField(max_length=30, choices=EventType.choices)
    window_start = models.DateTimeField(default=NO_WINDOW)
    update_id = models.BigIntegerField(default=NO_UPDATE)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status=DeliveryStatus.PENDING),
                name="delivery_due",
            ),
            models.Index(fields=["subscription", "-created_at"], name="delivery_subscription"),
            models.Index(fields=["tailnet", "-created_at"], name="delivery_tailnet"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "incident", "type", "window_start", "update_id"],
                name="delivery_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} → {self.subscription} ({self.status})"
