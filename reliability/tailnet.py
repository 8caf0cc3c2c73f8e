"""One tailnet's reliability figures and SLA statement: reads, for a tailnet that
already came through the one door (``customers.access``).

The incident figures are the public report's (``queries.counted_incidents``), kept
to the incidents that affected this tailnet. The downtime figures are the tailnet's
own uptime, stitched across its live migrations by the rule of its page and its
``uptime.csv`` (``customers.queries.tailnet_uptime_report``): the same seconds on
every surface. One tailnet's few impact rows are summed per second in Python there;
no loop ever runs over tailnets.

The SLA statement holds each month's uptime to the tailnet's policy (its own, or
the default): maintenance announced long enough ahead is excluded within its
scheduled window (``sla_exclusions``), then the credit tier follows (``sla``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from django.db.models import Exists, F, OuterRef, Q

from customers.queries import tailnet_uptime_report
from incidents.models import Incident, IncidentKind, TailnetImpact
from incidents.uptime import Tally

from .models import SlaPolicy, TailnetSla
from .queries import counted_incidents, months_of, range_end
from .report import MonthFigures, month_index, month_start
from .sla import NO_CREDIT, Policy, Tier, target_met, tier_for


def _days(first: int, last: int) -> tuple[date, date]:
    return month_start(first).date(), (month_start(last + 1) - timedelta(days=1)).date()


def _monthly(
    *,
    tailnet_id: int,
    first: int,
    last: int,
    now: datetime,
    excluded: dict[int, tuple[datetime, datetime]] | None = None,
) -> dict[int, Tally]:
    first_day, last_day = _days(first, last)
    report = tailnet_uptime_report(
        tailnet_id=tailnet_id, first_day=first_day, last_day=last_day, now=now, excluded=excluded
    )
    return {month_index(month.first_day): month.tally for month in report.months}


def tailnet_reliability(
    *, tailnet_id: int, first: int, last: int, now: datetime
) -> list[MonthFigures]:
    """The public report's figures for the months ``first`` to ``last`` (indexes),
    kept to this tailnet: the incidents that affected it, and its own minutes lost
    and uptime. Eight queries."""
    return months_of(
        first=first,
        last=last,
        now=now,
        incidents=counted_incidents(
            start=month_start(first), end=range_end(last, now), tailnet_id=tailnet_id
        ),
        tallies=_monthly(tailnet_id=tailnet_id, first=first, last=last, now=now),
    )


# --- SLA ------------------------------------------------------------------------------


def tailnet_policy(*, tailnet_id: int) -> Policy | None:
    """The policy the tailnet is under: its own, else the default, else none. Two
    queries (the policy, its tiers)."""
    own = TailnetSla.objects.filter(tailnet_id=tailnet_id)
    policy = (
        SlaPolicy.objects.filter(Q(pk__in=own.values("policy")) | Q(is_default=True))
        .annotate(own=Exists(own.filter(policy=OuterRef("pk"))))
        .order_by("-own")
        .prefetch_related("tiers")  # ordered by threshold, highest first (Meta)
        .first()
    )
    if policy is None:
        return None
    return Policy(
        name=policy.name,
        target_percent=policy.target_percent,
        maintenance_notice_hours=policy.maintenance_notice_hours,
        tiers=tuple(
            Tier(below_percent=t.below_percent, credit_percent=t.credit_percent)
            for t in policy.tiers.all()
        ),
    )


def sla_exclusions(
    *, tailnet_id: int, notice_hours: int, start: datetime, end: datetime
) -> dict[int, tuple[datetime, datetime]]:
    """The scheduled windows, per incident, of published maintenance that affected
    the tailnet in [start, end) and was published at least ``notice_hours`` before
    its scheduled start. One query."""
    rows = (
        Incident.objects.filter(
            kind=IncidentKind.MAINTENANCE,
            published=True,
            published_at__lte=F("scheduled_for") - timedelta(hours=notice_hours),
            scheduled_for__lt=end,
            scheduled_until__gt=start,
        )
        .filter(
            Exists(TailnetImpact.objects.filter(incident=OuterRef("pk"), tailnet_id=tailnet_id))
        )
        .values_list("pk", "scheduled_for", "scheduled_until")
    )
    # Maintenance always has both (the ``maintenance_is_scheduled`` constraint).
    return {pk: (since, until) for pk, since, until in rows if since and until}


@dataclass(frozen=True)
class SlaMonth:
    index: int
    tally: Tally  # the month's seconds, announced maintenance excluded
    excluded_incidents: int  # announced maintenance that affected the tailnet
    target_percent: Decimal | None
    tier: Tier | None

    @property
    def start(self) -> datetime:
        return month_start(self.index)

    @property
    def uptime(self) -> Fraction | None:
        return self.tally.uptime

    @property
    def met(self) -> bool | None:
        if self.target_percent is None:
            return None
        return target_met(self.uptime, self.target_percent)

    @property
    def credit_percent(self) -> Decimal:
        return NO_CREDIT if self.tier is None else self.tier.credit_percent


@dataclass(frozen=True)
class SlaStatement:
    policy: Policy | None  # None: no SLA applies (no policy of its own, no default)
    months: list[SlaMonth]


def tailnet_sla(*, tailnet_id: int, first: int, last: int, now: datetime) -> SlaStatement:
    """Each month's uptime held to the tailnet's policy, oldest first. Six queries."""
    policy = tailnet_policy(tailnet_id=tailnet_id)
    excluded: dict[int, tuple[datetime, datetime]] = {}
    if policy is not None and policy.maintenance_notice_hours is not None:
        excluded = sla_exclusions(
            tailnet_id=tailnet_id,
            notice_hours=policy.maintenance_notice_hours,
            start=month_start(first),
            end=range_end(last, now),
        )
    tallies = _monthly(tailnet_id=tailnet_id, first=first, last=last, now=now, excluded=excluded)
    months = []
    for index in range(first, last + 1):
        tally = tallies.get(index, Tally())
        begin, stop = month_start(index), month_start(index + 1)
        months.append(
            SlaMonth(
                index=index,
                tally=tally,
                excluded_incidents=sum(
                    1 for since, until in excluded.values() if since < stop and until > begin
                ),
                target_percent=None if policy is None else policy.target_percent,
                tier=None if policy is None else tier_for(tally.uptime, policy.tiers),
            )
        )
    return SlaStatement(policy=policy, months=months)
