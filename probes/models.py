"""What the probes measured, and what detection currently believes.

probes depends on incidents (Shard, Incident), never the reverse.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from incidents.models import Incident, Shard


class ProbeRegion(models.Model):
    """A vantage point: a probe agent (``python -m probes.agent --region <slug>``)
    posting its samples, or a Celery worker on the region's own queue, probes.<slug>."""

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The last round, for /metrics and the admin: a region that stops reporting
    # (worker down, queue backed up) shows here first.
    last_round_at = models.DateTimeField(null=True, blank=True)
    last_round_seconds = models.FloatField(null=True, blank=True)
    last_queue_lag_seconds = models.FloatField(null=True, blank=True)
    # The region's probe agent (``python -m probes.agent``), as its batches tell it:
    # when the last one arrived, how many samples it still held on disk, how far its
    # clock was from ours, and how many samples it sent from the future (refused).
    agent_last_batch_at = models.DateTimeField(null=True, blank=True)
    agent_buffer_depth = models.PositiveIntegerField(null=True, blank=True)
    agent_clock_skew_seconds = models.FloatField(
        null=True, blank=True, help_text="The agent's clock minus ours, at its last batch."
    )
    agent_dropped_total = models.PositiveBigIntegerField(
        default=0, help_text="Samples the agent dropped because its buffer was full."
    )
    future_refused_total = models.PositiveBigIntegerField(
        default=0, help_text="Samples refused for starting too far in the future."
    )
    # Batches stored after detection's usual look-back had passed their first sample
    # (an agent emptying its buffer after an outage of this page): detection reads
    # from ``late_samples_from`` once, so a window still starts at the first failing
    # probe. ``late_batches_total`` tells a run whether another one came meanwhile.
    late_samples_from = models.DateTimeField(null=True, blank=True, editable=False)
    late_batches_total = models.PositiveBigIntegerField(
        default=0, help_text="Batches stored after detection's look-back had passed them."
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def queue(self) -> str:
        return f"probes.{self.slug}"


def worker_regions() -> models.QuerySet[ProbeRegion]:
    """The active regions probed from a Celery worker (``PROBE_WORKER_REGIONS``)."""
    from django.conf import settings

    regions = ProbeRegion.objects.filter(active=True)
    if "*" in settings.PROBE_WORKER_REGIONS:
        return regions
    return regions.filter(slug__in=settings.PROBE_WORKER_REGIONS)


class ProbeError(models.TextChoices):
    NONE = "", "OK"
    TIMEOUT = "timeout", "Timed out"
    REFUSED = "refused", "Connection refused"
    HTTP_STATUS = "http_status", "HTTP error status"
    BAD_BODY = "bad_body", "Wrong answer"
    NETWORK = "network", "Network error"


class ProbeSample(models.Model):
    """One probe of one shard from one region. A failed probe is data, never retried.

    Unique per (shard, region, started_at), so a re-delivered task or a re-sent
    batch stores nothing twice.
    """

    shard = models.ForeignKey(Shard, on_delete=models.CASCADE, related_name="+", db_index=False)
    region = models.ForeignKey(ProbeRegion, on_delete=models.CASCADE, related_name="samples")
    started_at = models.DateTimeField()
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True, help_text="Total; empty if no answer.")
    connect_ms = models.FloatField(null=True, blank=True)
    error = models.CharField(max_length=12, choices=ProbeError.choices, blank=True, default="")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["shard", "region", "started_at"], name="probesample_unique"
            ),
            models.CheckConstraint(
                condition=Q(ok=True, error="") | Q(ok=False) & ~Q(error=""),
                name="probesample_error_iff_failed",
            ),
        ]
        indexes = [models.Index(fields=["started_at"], name="probesample_started")]

    def __str__(self) -> str:
        return f"{self.shard_id}/{self.region_id} {'ok' if self.ok else self.error}"


class Granularity(models.TextChoices):
    MINUTE = "minute", "Minute"
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


class ProbeRollup(models.Model):
    """Samples of one shard from one region in one minute/hour/day bucket.

    ``histogram`` counts successful latencies in the fixed buckets of
    ``probes.rollup.BUCKET_BOUNDS_MS``, so p50/p95/p99 are derivable at every level
    and rollups add up exactly (minute -> hour -> day).
    """

    shard = models.ForeignKey(Shard, on_delete=models.CASCADE, related_name="+", db_index=False)
    region = models.ForeignKey(ProbeRegion, on_delete=models.CASCADE, related_name="+")
    granularity = models.CharField(max_length=6, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    count = models.PositiveIntegerField()
    failures = models.PositiveIntegerField()
    latency_sum_ms = models.FloatField(default=0)
    latency_max_ms = models.FloatField(null=True, blank=True)
    histogram = models.JSONField(default=list)

    class Meta:
        ordering = ["-bucket_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["shard", "region", "granularity", "bucket_start"],
                name="proberollup_unique",
            ),
            models.CheckConstraint(
                condition=Q(failures__lte=models.F("count")), name="proberollup_failures_le_count"
            ),
        ]
        indexes = [
            models.Index(fields=["granularity", "bucket_start"], name="proberollup_bucket"),
        ]

    def __str__(self) -> str:
        when = f"{self.bucket_start:%Y-%m-%d %H:%M}"
        return f"{self.shard_id}/{self.region_id} {self.granularity} {when}"


class ShardState(models.Model):
    """What detection currently believes about a shard, and since when."""

    class State(models.TextChoices):
        UNKNOWN = "unknown", "No data"
        UP = "up", "Up"
        DEGRADED = "degraded", "Degraded"
        DOWN = "down", "Down"

    shard = models.OneToOneField(Shard, on_delete=models.CASCADE, related_name="probe_state")
    state = models.CharField(max_length=8, choices=State.choices, default=State.UNKNOWN)
    since = models.DateTimeField(null=True, blank=True)
    # Per region: {"fails": n, "oks": n, "down": bool, "first_failure_at": iso|None, ...}
    regions = models.JSONField(default=dict, blank=True)
    p95_ms = models.FloatField(null=True, blank=True)
    last_sample_at = models.DateTimeField(null=True, blank=True)
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.shard_id}: {self.state}"
