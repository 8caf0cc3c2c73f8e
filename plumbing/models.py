"""The models of the shared plumbing: API tokens, for probes, metrics scrapers,
operators' tools and each tailnet's own API; and the forgets the cache missed."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ApiToken(models.Model):
    """A bearer token for machines. Only a SHA-256 of the secret is stored: the
    secret is random (256 bits), so a fast hash is enough and lookups stay O(1).
    The secret is shown once, when the token is created (``tokens.api_token_create``).
    """

    class Scope(models.TextChoices):
        PROBE = "probe", "Probe ingestion"
        STAFF = "staff", "Operator API"
        TAILNET = "tailnet", "One tailnet's API"
        METRICS = "metrics", "Read /metrics"
        FLEET = "fleet", "Fleet feed"

    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=10, choices=Scope.choices)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise it.")
    digest = models.CharField(max_length=64, unique=True)
    # By label: the tailnet is the domain's (incidents), which imports this app.
    tailnet = models.ForeignKey(
        "incidents.Tailnet",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    # The one probe region a probe token posts samples for. By label, as the tailnet.
    # Empty on probe tokens made before tokens had one: ingestion refuses those until
    # an operator binds them (the admin), and when their region is deleted.
    probe_region = models.ForeignKey(
        "probes.ProbeRegion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Probe tokens only: the region it posts samples for.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table it had when it lived in incidents: moving the model moved no data.
        db_table = "incidents_apitoken"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scope__in=["probe", "staff", "tailnet", "metrics", "fleet"]),
                name="apitoken_scope_valid",
            ),
            models.CheckConstraint(
                condition=Q(scope="tailnet", tailnet__isnull=False)
                | (~Q(scope="tailnet") & Q(tailnet__isnull=True)),
                name="apitoken_tailnet_iff_tailnet_scope",
            ),
            models.CheckConstraint(
                condition=Q(scope="probe") | Q(probe_region__isnull=True),
                name="apitoken_probe_region_only_for_probes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope}, {self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class LostForget(models.Model):
    """A ``plumbing.cache.forget()`` that could not reach the cache (down, or left alone
    by its breaker). The change it forgets is in the database, so this is too: the key
    is forgotten once the cache is back (``plumbing.cache.replay_lost_forgets``), then
    the row deleted. Never shown anywhere: a key may hold a session's key."""

    key = models.CharField(max_length=250)  # the key as given to forget(), unprefixed
    cache_alias = models.CharField(max_length=100)
    lost_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.cache_alias}: {self.key} (lost {self.lost_at:%Y-%m-%d %H:%M:%S})"
