"""SLA policies: the target and credit tiers a tailnet's monthly uptime is held to.

Operators keep them in the admin. One policy may be the default (every tailnet
without its own assignment is under it); a tailnet assigned a policy
(``TailnetSla``) is under that one instead. Without a default, a tailnet without an
assignment has no SLA statement: its page shows its uptime and no credit.

The statement itself is ``reliability.tailnet.tailnet_sla``; the credit rule is
``reliability.sla``.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from incidents.models import Tailnet

_PERCENT = [MinValueValidator(Decimal("0.001")), MaxValueValidator(Decimal(100))]


class SlaPolicy(models.Model):
    name = models.CharField(max_length=100, unique=True)
    target_percent = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        validators=_PERCENT,
        help_text="The monthly uptime promised, in percent (e.g. 99.900).",
    )
    maintenance_notice_hours = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(24 * 365)],
        help_text="Maintenance announced at least this many hours before its scheduled "
        "start is excluded from the uptime within its scheduled window. Empty: "
        "maintenance counts like any other impact.",
    )
    is_default = models.BooleanField(
        default=False, help_text="Applies to every tailnet without a policy of its own."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "name"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_sla_policy"
            ),
            models.CheckConstraint(
                condition=Q(target_percent__gt=0, target_percent__lte=100),
                name="sla_target_is_a_percent",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SlaCreditTier(models.Model):
    """Below ``below_percent`` monthly uptime, ``credit_percent`` of the month's fee
    is owed. With several tiers, the lowest threshold the uptime is below wins."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="tiers")
    below_percent = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        validators=_PERCENT,
        help_text="Monthly uptime strictly below this, in percent (e.g. 99.900).",
    )
    credit_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=_PERCENT,
        help_text="Credit owed, in percent of the month's fee (e.g. 10).",
    )

    class Meta:
        ordering = ["-below_percent"]
        verbose_name = "credit tier"
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "below_percent"], name="one_tier_per_threshold"
            ),
            models.CheckConstraint(
                condition=Q(below_percent__gt=0, below_percent__lte=100),
                name="sla_tier_threshold_is_a_percent",
            ),
            models.CheckConstraint(
                condition=Q(credit_percent__gt=0, credit_percent__lte=100),
                name="sla_tier_credit_is_a_percent",
            ),
        ]

    def __str__(self) -> str:
        return f"below {self.below_percent} %: {self.credit_percent} % credit"


class TailnetSla(models.Model):
    """The policy a tailnet is under, instead of the default."""

    tailnet = models.OneToOneField(Tailnet, on_delete=models.CASCADE, related_name="sla")
    policy = models.ForeignKey(SlaPolicy, on_delete=models.PROTECT, related_name="tailnets")

    class Meta:
        verbose_name = "tailnet SLA"
        verbose_name_plural = "tailnet SLAs"

    def __str__(self) -> str:
        return f"{self.tailnet} under {self.policy}"
