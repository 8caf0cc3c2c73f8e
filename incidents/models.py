"""The fleet (components, shards, tailnets, placements) and what happened to it.

Times are stored in UTC. Every window is half-open, [starts_at, ends_at), and an
``ends_at`` of NULL means "still going on".
"""

from datetime import UTC

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from .markdown import render_markdown


class ComponentStatus(models.TextChoices):
    """Statuspage's component status values, verbatim (its API clients parse them)."""

    OPERATIONAL = "operational", "Operational"
    UNDER_MAINTENANCE = "under_maintenance", "Under maintenance"
    DEGRADED_PERFORMANCE = "degraded_performance", "Degraded performance"
    PARTIAL_OUTAGE = "partial_outage", "Partial outage"
    MAJOR_OUTAGE = "major_outage", "Major outage"


class ComponentKind(models.TextChoices):
    """What a component is, which decides what keeps working when it is down."""

    COORDINATION = "coordination", "Coordination service"
    ADMIN_CONSOLE = "admin_console", "Admin console"
    LOGIN = "login", "Login"
    DERP = "derp", "DERP relays"
    API = "api", "API"
    OTHER = "other", "Other"


class ComponentGroup(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Component(models.Model):
    """A public piece of the service, as customers know it (e.g. "Coordination
    service (us-east)", "Admin console", "DERP relays")."""

    Kind = ComponentKind

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    group = models.ForeignKey(
        ComponentGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="components"
    )
    kind = models.CharField(
        max_length=20, choices=ComponentKind.choices, default=ComponentKind.OTHER
    )
    region = models.CharField(max_length=32, blank=True, help_text="Empty for global components.")
    position = models.PositiveIntegerField(default=0)
    showcase = models.BooleanField(default=True, help_text="Show a 90-day uptime bar.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # Grouped components first, in their group's order, on every database.
        ordering = [F("group__position").asc(nulls_last=True), "position", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ComponentKind.values), name="component_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Shard(models.Model):
    """One coordination server: a message bus that every tailnet on it depends on."""

    slug = models.SlugField(max_length=64, unique=True, help_text="Internal identifier.")
    region = models.SlugField(max_length=32)
    public_name = models.CharField(max_length=100, help_text="What customers may be shown.")
    component = models.ForeignKey(Component, on_delete=models.PROTECT, related_name="shards")
    probe_url = models.URLField(max_length=300, blank=True)
    latency_threshold_ms = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Degraded above this p95 latency; empty = the fleet default.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["region", "slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def effective_latency_threshold_ms(self) -> int:
        return self.latency_threshold_ms or settings.SHARD_LATENCY_THRESHOLD_MS


class Tailnet(models.Model):
    """A customer network. Lives on exactly one shard at a time (see Placement)."""

    slug = models.SlugField(max_length=100, unique=True)
    display_name = models.CharField(max_length=200, help_text="Often a domain or an email.")
    # Blast radius divides by the tailnets that existed during a window; counting
    # them from created_at is an index range scan instead of a scan of placements.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Set by the fleet feed when the control plane deleted it (it may come back). Its
    # history stays; it only leaves the blast radius of later windows.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slug"]
        indexes = [
            # Blast radius subtracts the tailnets deleted before a window from those
            # created before its end: an index-only range scan over the few deleted.
            models.Index(
                fields=["deleted_at", "created_at"],
                condition=Q(deleted_at__isnull=False),
                name="tailnet_deleted",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class Placement(models.Model):
    """Which shard a tailnet lived on, when. A live migration closes one placement
    and opens the next at the same instant.

    Never overlapping for one tailnet: an exclusion constraint on PostgreSQL
    (migration 0002), and on every database the one writer of placements, the fleet
    feed, derives them from its event log one after the other.
    """

    # Both foreign keys lead the composite indexes below, so no separate index.
    tailnet = models.ForeignKey(
        Tailnet, on_delete=models.CASCADE, related_name="placements", db_index=False
    )
    shard = models.ForeignKey(
        Shard, on_delete=models.PROTECT, related_name="placements", db_index=False
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["tailnet_id", "starts_at"]
        indexes = [
            models.Index(fields=["tailnet", "starts_at"], name="placement_tailnet_start"),
            models.Index(fields=["shard", "starts_at"], name="placement_shard_start"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at")),
                name="placement_ends_after_start",
            ),
            models.UniqueConstraint(
                fields=["tailnet"], condition=Q(ends_at__isnull=True), name="placement_one_current"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tailnet_id} on {self.shard_id} from {self.starts_at:%Y-%m-%d %H:%M:%S}"


class IncidentKind(models.TextChoices):
    INCIDENT = "incident", "Incident"
    MAINTENANCE = "maintenance", "Maintenance"


class IncidentStatus(models.TextChoices):
    # Statuspage's values, verbatim: incidents...
    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"
    POSTMORTEM = "postmortem", "Postmortem"
    # ...and scheduled maintenance.
    SCHEDULED = "scheduled", "Scheduled"
    IN_PROGRESS = "in_progress", "In progress"
    VERIFYING = "verifying", "Verifying"
    COMPLETED = "completed", "Completed"


class IncidentImpact(models.TextChoices):
    NONE = "none", "None"
    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"
    CRITICAL = "critical", "Critical"
    MAINTENANCE = "maintenance", "Maintenance"


class IncidentSource(models.TextChoices):
    MANUAL = "manual", "Manual"
    PROBE = "probe", "Probe detection"
    REPORTS = "reports", "Outage reports"


INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved", "postmortem")
MAINTENANCE_STATUSES = ("scheduled", "in_progress", "verifying", "completed")
CLOSED_STATUSES = ("resolved", "postmortem", "completed")


def statuses_for(kind: str) -> tuple[str, ...]:
    """The statuses an incident of ``kind`` may have (Statuspage's two lists)."""
    return MAINTENANCE_STATUSES if kind == IncidentKind.MAINTENANCE else INCIDENT_STATUSES


def status_problem(kind: str, status: str) -> str | None:
    """Why ``status`` is not valid for an incident of ``kind``, or None: the one
    check every door (services, admin, API) relies on."""
    if kind not in IncidentKind.values:
        return f"Unknown kind {kind!r}; use incident or maintenance."
    allowed = statuses_for(kind)
    if status not in allowed:
        return f"Status {status!r} is not valid for {kind}; use one of {', '.join(allowed)}."
    return None


class Incident(models.Model):
    Kind = IncidentKind
    Status = IncidentStatus
    Impact = IncidentImpact
    Source = IncidentSource
    INCIDENT_STATUSES = INCIDENT_STATUSES
    MAINTENANCE_STATUSES = MAINTENANCE_STATUSES
    CLOSED_STATUSES = CLOSED_STATUSES

    title = models.CharField(max_length=200)
    kind = models.CharField(
        max_length=12, choices=IncidentKind.choices, default=IncidentKind.INCIDENT
    )
    status = models.CharField(
        max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.INVESTIGATING
    )
    impact = models.CharField(
        max_length=12, choices=IncidentImpact.choices, default=IncidentImpact.MINOR
    )
    source = models.CharField(
        max_length=8, choices=IncidentSource.choices, default=IncidentSource.MANUAL
    )
    published = models.BooleanField(
        default=False, help_text="Drafts are for operators; only published incidents count."
    )
    published_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(help_text="When customers were first affected.")
    detected_at = models.DateTimeField(null=True, blank=True, help_text="When we knew.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    scheduled_until = models.DateTimeField(null=True, blank=True)
    components = models.ManyToManyField(
        Component, through="IncidentComponent", related_name="incidents", blank=True
    )
    postmortem = models.TextField(blank=True, help_text="Markdown.")
    postmortem_published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The affected tailnets are rebuilt after commit by a Celery task; if the broker
    # was down at that moment, the periodic sweep finds changed > computed and
    # rebuilds them then, so no change of windows or placements is ever lost.
    impacts_changed_at = models.DateTimeField(default=timezone.now)
    impacts_computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["published", "-started_at"], name="incident_published")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind="incident", status__in=INCIDENT_STATUSES)
                    | Q(kind="maintenance", status__in=MAINTENANCE_STATUSES)
                ),
                name="incident_status_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(impact__in=IncidentImpact.values), name="incident_impact_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=IncidentSource.values), name="incident_source_valid"
            ),
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True) | Q(resolved_at__gte=F("started_at")),
                name="incident_resolved_after_start",
            ),
            models.CheckConstraint(
                condition=Q(status__in=CLOSED_STATUSES, resolved_at__isnull=False)
                | (~Q(status__in=CLOSED_STATUSES) & Q(resolved_at__isnull=True)),
                name="incident_resolved_iff_closed",
            ),
            models.CheckConstraint(
                condition=Q(scheduled_for__isnull=True)
                | Q(scheduled_until__isnull=True)
                | Q(scheduled_until__gt=F("scheduled_for")),
                name="incident_schedule_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(kind="incident")
                | Q(scheduled_for__isnull=False, scheduled_until__isnull=False),
                name="maintenance_is_scheduled",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status not in self.CLOSED_STATUSES

    @property
    def postmortem_html(self) -> str:
        return render_markdown(self.postmortem)


class IncidentComponent(models.Model):
    """A component an incident affects, with the status an operator set for it."""

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="affected_components"
    )
    component = models.ForeignKey(Component, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=20, choices=ComponentStatus.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "component"], name="incident_component_unique"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ComponentStatus.values),
                name="incident_component_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.component} {self.status}"


class IncidentUpdate(models.Model):
    """One entry of an incident's public timeline."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="updates")
    status = models.CharField(max_length=16, choices=IncidentStatus.choices)
    body = models.TextField(help_text="Markdown; rendered sanitized.")
    # Statuspage's shape: [{"code", "name", "old_status", "new_status"}, ...]
    affected_components = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    display_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-display_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=IncidentStatus.values),
                name="incident_update_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_status_display()} at {self.display_at:%Y-%m-%d %H:%M}"

    @property
    def body_html(self) -> str:
        return render_markdown(self.body)


class FollowUpStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"


class FollowUp(models.Model):
    """An improvement an incident led to: what, who owns it, and whether it is done
    (and when). Shown on the incident's public page once its postmortem is
    published; written by ``services.follow_up_add`` and its siblings."""

    Status = FollowUpStatus

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="follow_ups")
    text = models.CharField(max_length=500, help_text="Plain text: the improvement.")
    owner = models.CharField(max_length=120, help_text="Plain text: a person or team name.")
    status = models.CharField(
        max_length=4, choices=FollowUpStatus.choices, default=FollowUpStatus.OPEN
    )
    done_on = models.DateField(
        null=True, blank=True, help_text="The UTC date it was done; only when done."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "follow-up"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=FollowUpStatus.values), name="followup_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="done", done_on__isnull=False)
                | Q(status="open", done_on__isnull=True),
                name="followup_done_on_iff_done",
            ),
        ]

    def __str__(self) -> str:
        return self.text

    def clean(self) -> None:
        super().clean()
        if self.status == FollowUpStatus.DONE and self.done_on is None:
            raise ValidationError({"done_on": "A done follow-up needs the date it was done."})
        if self.status == FollowUpStatus.OPEN and self.done_on is not None:
            raise ValidationError(
                {"done_on": "An open follow-up has no done date: mark it done, or clear the date."}
            )
        if self.done_on is not None:
            today = timezone.now().astimezone(UTC).date()
            if self.done_on > today:
                raise ValidationError(
                    {"done_on": f"{self.done_on} is in the future (today is {today}, UTC)."}
                )
            started = getattr(self.incident, "started_at", None) if self.incident_id else None
            if started is not None and self.done_on < started.astimezone(UTC).date():
                raise ValidationError(
                    {
                        "done_on": f"{self.done_on} is before the incident started "
                        f"({started.astimezone(UTC).date()})."
                    }
                )


class ImpactLevel(models.TextChoices):
    """How badly a shard's control plane was hit, in ascending severity."""

    DEGRADED = "degraded", "Degraded performance"
    PARTIAL = "partial", "Partial outage"
    OUTAGE = "outage", "Outage"


class ShardImpact(models.Model):
    """A window during which one shard was hit at one level by an incident. A level
    change closes the window and opens the next one at the same instant."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="shard_impacts")
    shard = models.ForeignKey(
        Shard, on_delete=models.PROTECT, related_name="impacts", db_index=False
    )
    level = models.CharField(max_length=10, choices=ImpactLevel.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["shard", "starts_at"], name="shardimpact_shard_start")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at")),
                name="shardimpact_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(level__in=ImpactLevel.values),
                name="shardimpact_level_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.shard_id} {self.level} from {self.starts_at:%Y-%m-%d %H:%M:%S}"


class MonitoringGap(models.Model):
    """A time when no probe region reported on a shard: its seconds have no data
    (grey on every bar, left out of every uptime), unless an incident window covers
    them, which is a statement of impact in its own right. Opened by detection when
    reports stop (from the last sample), closed by the first sample after."""

    shard = models.ForeignKey(Shard, on_delete=models.CASCADE, related_name="gaps")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["shard", "starts_at"], name="gap_shard_start")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at")),
                name="gap_ends_after_start",
            ),
            models.UniqueConstraint(
                fields=["shard"], condition=Q(ends_at__isnull=True), name="gap_one_open_per_shard"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.shard_id} silent from {self.starts_at:%Y-%m-%d %H:%M:%S}"


class TailnetImpact(models.Model):
    """Derived: one tailnet hit by one shard impact window, clipped to the time the
    tailnet was on that shard. Rebuilt by ``services.tailnet_impacts_recompute``.

    No database-level foreign keys: the rows are derived from constrained tables and
    rebuilt wholesale, and deferred FK checks would triple the cost of a rebuild at
    COMMIT (see bench/impact.py). Deletes still cascade through the ORM.
    """

    incident = models.ForeignKey(
        Incident,
        on_delete=models.CASCADE,
        related_name="tailnet_impacts",
        db_constraint=False,
        db_index=False,  # leads the (incident, tailnet) index
    )
    shard_impact = models.ForeignKey(
        ShardImpact, on_delete=models.CASCADE, related_name="tailnet_impacts", db_constraint=False
    )
    tailnet = models.ForeignKey(
        Tailnet,
        on_delete=models.CASCADE,
        related_name="impacts",
        db_constraint=False,
        db_index=False,  # leads the (tailnet, starts_at) index
    )
    # A shard with impacts is protected by ShardImpact, so nothing to cascade.
    shard = models.ForeignKey(
        Shard, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    level = models.CharField(max_length=10, choices=ImpactLevel.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty while ongoing.")
    seconds = models.PositiveIntegerField(help_text="Overlap so far, in whole seconds.")

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [
            models.Index(fields=["incident", "tailnet"], name="tailnetimpact_incident"),
            models.Index(fields=["tailnet", "starts_at"], name="tailnetimpact_tailnet"),
        ]

    def __str__(self) -> str:
        return f"{self.tailnet_id} {self.level} {self.seconds}s"


class AuditEntry(models.Model):
    """Who changed what, when: every write to incidents, their windows and updates,
    and every operator's correction of placements, from every door (admin, operator
    API, probe detection, report triage), written by ``incidents.audit`` in the
    transaction of the change. Derived work (affected-tailnet rebuilds, snapshots,
    rollups) is not audited.

    It is also the operator API's idempotency store: a write made with an
    ``Idempotency-Key`` keeps the key and a digest of the request that carried it."""

    class System(models.TextChoices):
        PROBE = "probe", "Probe detection"
        REPORTS = "reports", "Outage reports"
        SYSTEM = "system", "System"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token = models.ForeignKey(
        "plumbing.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    system = models.CharField(
        max_length=8,
        choices=System.choices,
        blank=True,
        help_text="Set when no person made the change: probes, report triage or the system.",
    )
    action = models.CharField(max_length=40, help_text="e.g. incident.create, incident.resolve")
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    # What changed, as {"field": [old, new]} or the values written.
    changes = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    request_digest = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the request an idempotency key came with."
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(
                fields=["idempotency_key", "at"],
                condition=~Q(idempotency_key=""),
                name="auditentry_idempotency",
            )
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action}"
