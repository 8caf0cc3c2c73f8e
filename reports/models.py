"""Outage reports: what someone hitting a problem told us, and what triage made of it."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

from incidents.models import Incident, Shard, Tailnet

DESCRIPTION_MAX = 2000
TAILNET_NAME_MAX = 200


def new_public_id() -> str:
    """The id in the confirmation link: 128 random bits, so a link can be neither
    guessed nor walked (the row's own id is sequential)."""
    return secrets.token_urlsafe(16)


class What(models.TextChoices):
    LOGIN = "login", "Logging in"
    ADMIN_CONSOLE = "admin_console", "The admin console"
    APPROVE_DEVICE = "approve_device", "Approving a device"
    CHANGE_ACL = "change_acl", "Changing an ACL"
    ADD_NODE = "add_node", "Adding a node (device)"
    CONNECTIONS = "connections", "Existing connections are broken"
    DERP = "derp", "DERP / relayed connections"
    OTHER = "other", "Something else"


class ReportStatus(models.TextChoices):
    NEW = "new", "New"
    TRIAGED = "triaged", "Triaged"
    DUPLICATE = "duplicate", "Duplicate"
    NOISE = "noise", "Noise"
    RESOLVED = "resolved", "Resolved"


class Via(models.TextChoices):
    FORM = "form", "Web form"
    API = "api", "API"


class Report(models.Model):
    What = What
    Status = ReportStatus

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    what = models.CharField("what they were trying to do", max_length=20, choices=What.choices)
    started_at = models.DateTimeField(help_text="When it started, as reported.")
    # As typed (or as locked for a member): kept even when it matches no tailnet.
    tailnet_name = models.CharField(max_length=TAILNET_NAME_MAX, blank=True)
    tailnet = models.ForeignKey(
        Tailnet, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    # True when a signed-in member (or the tailnet's API token) filed it: only then
    # is the tailnet vouched for; a name typed by anyone else is a hint for triage.
    from_member = models.BooleanField(default=False)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The shard the tailnet was placed on at ``started_at``, set by triage.
    shard = models.ForeignKey(
        Shard, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    email = models.EmailField(blank=True)
    description = models.TextField(max_length=DESCRIPTION_MAX, blank=True)
    via = models.CharField(max_length=4, choices=Via.choices, default=Via.FORM)
    # A keyed hash of the client's IPv4 address or IPv6 /64 network (services.
    # client_source): enough to tell that reports came from one source (rate limits,
    # spikes, duplicates), not enough to recover the address.
    client_hash = models.CharField(max_length=32, blank=True, db_index=True)
    # A database default too: a row inserted without it (by the previous release
    # during a deploy, or by raw SQL) was not over any limit.
    over_limit = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Filed by a member or the tailnet's token beyond the tailnet's report "
        "budget: saved all the same, and flagged.",
    )
    honeypot = models.BooleanField(
        default=False, help_text="The hidden field was filled in: almost surely a bot."
    )
    status = models.CharField(max_length=10, choices=ReportStatus.choices, default=ReportStatus.NEW)
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    created_at = models.DateTimeField(default=timezone.now)
    triaged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sweep: untriaged reports, oldest first.
            models.Index(fields=["created_at"], condition=Q(status="new"), name="report_untriaged"),
            # Spike detection and the admin's shard filter: one shard's recent reports.
            models.Index(fields=["shard", "created_at"], name="report_shard_created"),
            # The admin's status filter.
            models.Index(fields=["status", "-created_at"], name="report_status_created"),
            # The customer view: one tailnet's reports, newest first.
            models.Index(fields=["tailnet", "-created_at"], name="report_tailnet_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ReportStatus.values), name="report_status_valid"
            ),
            models.CheckConstraint(condition=Q(what__in=What.values), name="report_what_valid"),
            models.CheckConstraint(condition=Q(via__in=Via.values), name="report_via_valid"),
            models.CheckConstraint(
                condition=Q(status="new", triaged_at__isnull=True)
                | (~Q(status="new") & Q(triaged_at__isnull=False)),
                name="report_triaged_iff_not_new",
            ),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("description"), DESCRIPTION_MAX),
                name="report_description_length",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_what_display()} at {self.started_at:%Y-%m-%d %H:%M} UTC"
