"""Everything that writes outage reports: submit, triage, mark.

A report is saved first, in one INSERT inside the request; everything else (which
shard, is it a spike) happens in triage, queued after the commit. If the queue is
unreachable the report is still saved and the periodic sweep triages it later.
"""

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from incidents import signals
from incidents.audit import REPORTS
from incidents.models import Incident, IncidentSource, Placement, Shard, Tailnet
from incidents.services import WindowSpec, incident_create
from plumbing import ratelimit

from . import tasks
from .models import Report, ReportStatus, Via
from .spikes import Point, Spike, find_spike

logger = logging.getLogger(__name__)

# What an operator may set by hand ("new" is only ever the state before triage).
MARKABLE = (
    ReportStatus.TRIAGED,
    ReportStatus.DUPLICATE,
    ReportStatus.NOISE,
    ReportStatus.RESOLVED,
)
# Reports that count towards a spike: triaged, not yet tied to an incident.
_COUNTING = (ReportStatus.TRIAGED,)


def client_source(address: str | None) -> str:
    """What tells one reporter from another: an IPv4 address, or the /64 network of
    an IPv6 address (one site's or one device's, which picks any address in it at
    will). "" when there is no address."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def client_hash(address: str | None) -> str:
    """A keyed hash of a client's source (``client_source``; the key is SECRET_KEY):
    equal sources give equal hashes, and the address can't be brute-forced back
    without the key. What rate limits and spikes count reporters by."""
    source = client_source(address)
    if not source:
        return ""
    return salted_hmac("reports.client-address", source).hexdigest()[:32]


def report_submit(
    *,
    what: str,
    started_at: datetime,
    tailnet_name: str = "",
    tailnet: Tailnet | None = None,
    email: str = "",
    description: str = "",
    honeypot: bool = False,
    client_address: str | None = None,
    reporter: Any = None,
    via: str = Via.FORM,
    over_limit: bool = False,
    at: datetime | None = None,
) -> Report:
    """Save a report, then (after the commit) queue its triage.

    ``tailnet`` is given only when the reporter is vouched for (a signed-in member
    or the tailnet's API token); a name typed by anyone else is kept as
    ``tailnet_name`` and resolved by triage. A honeypot report is saved, flagged
    and closed as noise at once: never triaged, never counted.
    """
    now = at or timezone.now()
    if timezone.is_naive(started_at):
        raise ValidationError({"started_at": "Give a time zone (e.g. UTC)."})
    report = Report(
        what=what,
        started_at=started_at,
        tailnet_name=(tailnet.slug if tailnet is not None else tailnet_name.strip()),
        tailnet=tailnet,
        from_member=tailnet is not None,
        reporter=reporter if reporter is not None and reporter.is_authenticated else None,
        email=email.strip(),
        description=description,
        via=via,
        client_hash=client_hash(client_address),
        over_limit=over_limit,
        honeypot=honeypot,
        status=ReportStatus.NOISE if honeypot else ReportStatus.NEW,
        triaged_at=now if honeypot else None,
        created_at=now,
    )
    # Field checks only: no query for uniqueness or foreign keys (the database
    # enforces both) so that a submission stays a single INSERT.
    report.full_clean(
        exclude=["tailnet", "reporter", "shard", "incident", "public_id"],
        validate_unique=False,
        validate_constraints=False,
    )
    # One INSERT is its own transaction: no BEGIN and COMMIT around it, two round
    # trips fewer. Called inside an outer atomic block, the triage still waits for
    # that block's commit; otherwise the row is committed here and queued at once.
    report.save(force_insert=True)
    if not honeypot:
        report_id = report.pk
        transaction.on_commit(lambda: tasks.enqueue_triage(report_id), robust=True)
    return report


@dataclass(frozen=True)
class Limited:
    """A limit a report reached: ``by`` "address" or "tailnet" (the name typed by
    someone anonymous), or "member" (the tailnet's members' and tokens' budget)."""

    by: str
    wait: int  # seconds until the limit's window ends


def within_rate(
    *, client_address: str | None, tailnet_name: str, tailnet: Tailnet | None = None
) -> Limited | None:
    """None if a report is within its limits, else the one it reached. Fails open
    when the cache is down.

    A vouched report (``tailnet``: a member's, or the tailnet token's) counts against
    its tailnet's own budget only, so nobody else can use it up. Anyone else's counts
    per client address (``client_source``) and per tailnet name as typed (the answer
    the same whether that tailnet exists)."""
    if tailnet is not None:
        rates = [("member", f"report:member:{tailnet.pk}", settings.REPORT_RATE_PER_MEMBER_TAILNET)]
    else:
        rates = [
            ("address", f"report:addr:{client_hash(client_address)}", settings.REPORT_RATE_PER_IP)
        ]
        if tailnet_name:
            name = tailnet_name.lower()
            rates.append(("tailnet", f"report:tailnet:{name}", settings.REPORT_RATE_PER_TAILNET))
    limits = [(key, *ratelimit.parse_rate(rate)) for _, key, rate in rates]
    allowed = ratelimit.hit_many(limits)
    reached = [
        Limited(by=by, wait=ratelimit.retry_after(period))
        for (by, _, _), (_, _, period), ok in zip(rates, limits, allowed, strict=True)
        if not ok
    ]
    return max(reached, key=lambda limited: limited.wait) if reached else None


def report_submit_limited(
    *,
    cleaned: dict[str, Any],
    tailnet: Tailnet | None,
    client_address: str | None,
    reporter: Any,
    via: str,
    honeypot: bool = False,
) -> tuple[Report | None, Limited | None]:
    """The form's and the API's door: the rate limits, then ``report_submit`` of a
    validated ``ReportForm``'s data. ``(report, None)``, or ``(None, the limit)``
    when someone anonymous reached a limit (nothing saved). A vouched report over its
    tailnet's budget is saved all the same, flagged ``over_limit``: a member is never
    turned away."""
    limited = within_rate(
        client_address=client_address, tailnet_name=cleaned["tailnet"], tailnet=tailnet
    )
    if limited is not None and tailnet is None:
        return None, limited
    report = report_submit(
        what=cleaned["what"],
        started_at=cleaned["started_at"],
        tailnet_name=cleaned["tailnet"],
        tailnet=tailnet,
        email=cleaned["email"],
        description=cleaned["description"],
        honeypot=honeypot,
        client_address=client_address,
        reporter=reporter,
        via=via,
        over_limit=limited is not None,
    )
    return report, None


# --- Triage -----------------------------------------------------------------------------


def resolve_tailnet(name: str) -> Tailnet | None:
    """The tailnet a typed name means: its slug, else its display name if only one
    tailnet has it (case-insensitive). None when it names none."""
    name = name.strip()
    if not name:
        return None
    tailnet = Tailnet.objects.filter(slug__iexact=name).first()
    if tailnet is not None:
        return tailnet
    matches = list(Tailnet.objects.filter(display_name__iexact=name)[:2])
    return matches[0] if len(matches) == 1 else None


def shard_at(*, tailnet: Tailnet, at: datetime) -> Shard | None:
    """The shard ``tailnet`` was placed on at ``at`` (its first placement if ``at``
    is before the tailnet existed)."""
    placement = (
        Placement.objects.select_related("shard__component")
        .filter(tailnet=tailnet, starts_at__lte=at)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at))
        .first()
    )
    if placement is None:
        placement = (
            Placement.objects.select_related("shard__component")
            .filter(tailnet=tailnet)
            .order_by("starts_at")
            .first()
        )
    return placement.shard if placement is not None else None


def open_incident_on(*, shard: Shard, since: datetime) -> Incident | None:
    """The newest open incident (draft or published, any source) with an impact
    window on ``shard`` that is ongoing or ended after ``since``."""
    return (
        Incident.objects.filter(resolved_at__isnull=True)
        .exclude(status=Incident.Status.SCHEDULED)
        .filter(
            Q(shard_impacts__shard=shard)
            & (Q(shard_impacts__ends_at__isnull=True) | Q(shard_impacts__ends_at__gt=since))
        )
        .order_by("-started_at", "-id")
        .first()
    )


def report_triage(*, report_id: int, at: datetime | None = None) -> Report | None:
    """Resolve a new report to its tailnet and shard, tie it to an open incident on
    that shard if there is one, and open a draft incident if it completes a spike.

    Idempotent: a report already triaged (by the task or the sweep) is left alone
    and None returned. Triage of one shard's reports is serialised by a row lock
    on the shard, so concurrent triage opens at most one draft per spike.
    """
    now = at or timezone.now()
    with transaction.atomic():
        report = Report.objects.select_for_update().filter(pk=report_id, status="new").first()
        if report is None:
            return None
        tailnet = report.tailnet or resolve_tailnet(report.tailnet_name)
        shard = shard_at(tailnet=tailnet, at=report.started_at) if tailnet else None
        if shard is not None:
            Shard.objects.select_for_update().filter(pk=shard.pk).first()
        report.tailnet = tailnet
        report.shard = shard
        report.status = ReportStatus.TRIAGED
        report.triaged_at = now
        window = timedelta(minutes=settings.REPORT_SPIKE_WINDOW_MINUTES)
        if shard is not None:
            report.incident = open_incident_on(shard=shard, since=report.started_at - window)
        report.save(update_fields=["tailnet", "shard", "status", "triaged_at", "incident"])
        if shard is not None and report.incident is None:
            spike = _spike_around(report=report, shard=shard, window=window)
            if spike is not None:
                incident = _spike_incident(shard=shard, spike=spike, at=now)
                joined = Report.objects.filter(
                    pk__in=[point.key for point in spike.points], incident__isnull=True
                )
                signals.announce_tailnets(joined.values_list("tailnet_id", flat=True))
                joined.update(incident=incident)
                report.incident = incident
    return report


def _spike_around(*, report: Report, shard: Shard, window: timedelta) -> Spike | None:
    rows = (
        Report.objects.filter(
            shard=shard,
            status__in=_COUNTING,
            incident__isnull=True,
            honeypot=False,
            created_at__gte=report.created_at - window,
            created_at__lte=report.created_at + window,
        )
        .exclude(tailnet__isnull=True)
        .values_list("pk", "created_at", "tailnet_id", "client_hash")
    )
    # Reports without an address ("") count as one source: distinct they can't be shown.
    points = [
        Point(at=created, tailnet=tailnet_id, source=source, key=pk)
        for pk, created, tailnet_id, source in rows
    ]
    return find_spike(points, threshold=settings.REPORT_SPIKE_THRESHOLD, window=window)


def _spike_incident(*, shard: Shard, spike: Spike, at: datetime) -> Incident:
    """A draft for an operator: never published here."""
    started = min(
        Report.objects.filter(pk__in=[p.key for p in spike.points]).values_list(
            "started_at", flat=True
        )
    )
    # The earliest "it started at", but not an outlier from long before the burst.
    window = timedelta(minutes=settings.REPORT_SPIKE_WINDOW_MINUTES)
    started = max(min(started, spike.starts_at), spike.starts_at - window)
    whats = sorted(
        set(
            Report.objects.filter(pk__in=[p.key for p in spike.points]).values_list(
                "what", flat=True
            )
        )
    )
    labels = ", ".join(Report.What(value).label for value in whats)
    body = (
        f"Opened as a draft by outage reports: {len(spike.points)} reports from "
        f"{spike.tailnets} tailnets on {shard.public_name} between "
        f"{spike.starts_at:%H:%M} and {spike.ends_at:%H:%M} UTC, sent from "
        f"{spike.sources} addresses ({labels}). "
        "Check the probes, then publish, edit or resolve it."
    )
    return incident_create(
        title=f"Reports of problems on {shard.public_name}",
        body=body,
        impact="minor",
        started_at=min(started, at),
        detected_at=at,
        shard_impacts=[WindowSpec(shard, "partial", min(started, at))],
        published=False,
        source=IncidentSource.REPORTS,
        by=REPORTS,
        at=at,
    )


def report_edit(
    *, report: Report, status: str, incident: Incident | None, at: datetime | None = None
) -> Report:
    """An operator's triage of one report by hand: its status and the incident it
    belongs to. Leaving "new" counts as triage; back to "new" queues it again."""
    if status not in ReportStatus.values:
        raise ValidationError({"status": f"Unknown report status {status!r}."})
    now = at or timezone.now()
    with transaction.atomic():
        report.status, report.incident = status, incident
        if status != ReportStatus.NEW and report.triaged_at is None:
            report.triaged_at = now
        elif status == ReportStatus.NEW:
            report.triaged_at = None
        report.save(update_fields=["status", "incident", "triaged_at"])
    return report


def report_mark(*, report_ids: Iterable[int], status: str, at: datetime | None = None) -> int:
    """Set the status of some reports (duplicate, noise, resolved, or back to
    triaged); returns how many changed."""
    if status not in MARKABLE:
        raise ValidationError(f"A report can be marked {', '.join(MARKABLE)}, not {status!r}.")
    now = at or timezone.now()
    ids = list(report_ids)
    with transaction.atomic():
        # update() sends no signals: the members' pages are told here.
        signals.announce_tailnets(
            Report.objects.filter(pk__in=ids).values_list("tailnet_id", flat=True)
        )
        changed = (
            Report.objects.filter(pk__in=ids, triaged_at__isnull=True)
            .exclude(status=status)
            .update(status=status, triaged_at=now)
        )
        changed += (
            Report.objects.filter(pk__in=ids, triaged_at__isnull=False)
            .exclude(status=status)
            .update(status=status)
        )
    return changed
