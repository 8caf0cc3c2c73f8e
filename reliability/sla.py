"""The SLA rule: which credit tier a month's uptime falls into. Pure: exact
fractions and decimals in, no Django, no clock.

A tier applies when the uptime is strictly below its threshold; of the tiers that
apply, the one with the lowest threshold (the worst month it describes) wins. A
month without data (no measured second) owes nothing: there is nothing to hold to
the promise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction


@dataclass(frozen=True)
class Tier:
    below_percent: Decimal
    credit_percent: Decimal


@dataclass(frozen=True)
class Policy:
    name: str
    target_percent: Decimal
    maintenance_notice_hours: int | None  # None: maintenance is not excluded
    tiers: tuple[Tier, ...]  # highest threshold first


NO_CREDIT = Decimal(0)


def tier_for(uptime: Fraction | None, tiers: Iterable[Tier]) -> Tier | None:
    """The tier the month falls into, or None (met, or no data)."""
    if uptime is None:
        return None
    applying = [tier for tier in tiers if uptime < Fraction(tier.below_percent)]
    return min(applying, key=lambda tier: tier.below_percent, default=None)


def target_met(uptime: Fraction | None, target_percent: Decimal) -> bool | None:
    """Whether the month reached the target (None without data)."""
    return None if uptime is None else uptime >= Fraction(target_percent)


def percent_number(value: Decimal) -> str:
    """A threshold or credit as people write it: 99.9, 10, 100 (not 99.900, 1E+2)."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
