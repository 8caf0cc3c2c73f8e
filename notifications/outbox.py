"""What we owe whom: the writers of the outbox (``Delivery`` rows). Called inside the
transaction of the change that caused the event (``receivers.py``), or by the
recompute that made a tailnet affected, so an event and its deliveries commit
together. Every writer is one set-based ``INSERT … SELECT … ON CONFLICT DO NOTHING``:
the unique key is the event's identity, so writing twice owes nothing twice.

Who hears what:
- public subscribers (confirmed, active): published incidents and maintenance on
  their components (or the whole page): published, updated, resolved; maintenance
  scheduled, reminder, started, completed;
- a tailnet's subscribers, from its affected-tailnet rows: ``incident.affected`` when
  a stretch of its affected time starts (rows that touch are one stretch: a migration
  from one failing shard to another is not news), ``incident.updated`` for updates
  posted while it is affected, ``incident.impact_ended`` when a stretch ends while
  the incident goes on, and ``incident.resolved`` once resolved, with the rows up to
  date. Drafts tell no one; deleted tailnets hear nothing new.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from incidents.models import (
    CLOSED_STATUSES,
    Incident,
    IncidentComponent,
    IncidentKind,
    IncidentStatus,
    IncidentUpdate,
    Shard,
    ShardImpact,
    Tailnet,
    TailnetImpact,
)

from .models import NO_UPDATE, NO_WINDOW, Delivery, DeliveryStatus, EventType, Subscription

D = Delivery._meta.db_table
S = Subscription._meta.db_table
R = TailnetImpact._meta.db_table
T = Tailnet._meta.db_table
SC = Subscription.components.through._meta.db_table
IC = IncidentComponent._meta.db_table
SI = ShardImpact._meta.db_table
SHARD = Shard._meta.db_table

COLUMNS = (
    "id, subscription_id, incident_id, tailnet_id, type, window_start, update_id, "
    "status, attempts, next_attempt_at, created_at, last_error"
)


def _new_id() -> str:
    """A new delivery id per row, in SQL (UUIDField's storage on each database)."""
    if connection.vendor == "postgresql":
        return "gen_random_uuid()"
    return "lower(hex(randomblob(16)))"


def _values(kind: str, *, tailnet: str, window: str, update: str) -> str:
    return (
        f"{_new_id()}, s.id, %(incident)s, {tailnet}, '{kind}', {window}, {update}, "
        f"'{DeliveryStatus.PENDING}', 0, %(now)s, %(now)s, ''"
    )


def _insert(select: str, params: dict[str, Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {D} ({COLUMNS}) {select} ON CONFLICT DO NOTHING",
            {
                **params,
                "now": connection.ops.adapt_datetimefield_value(params["now"]),
                "no_window": connection.ops.adapt_datetimefield_value(NO_WINDOW),
            },
        )
        return cursor.rowcount


# --- Public subscribers -------------------------------------------------------------------


def public_event(incident: Incident, update: IncidentUpdate | None) -> str | None:
    """What news for public subscribers an update of a published incident is (None:
    publishing a draft), or None when it is none."""
    earlier = IncidentUpdate.objects.filter(incident_id=incident.pk)
    if update is not None:
        earlier = earlier.exclude(pk=update.pk)
    first = update is None or not earlier.exists()
    status = incident.status if update is None else update.status
    if incident.kind != IncidentKind.MAINTENANCE:
        if first:
            return EventType.INCIDENT_PUBLISHED
        return (
            EventType.INCIDENT_RESOLVED
            if status == IncidentStatus.RESOLVED
            else (EventType.INCIDENT_UPDATED)
        )
    if status in CLOSED_STATUSES:
        return EventType.MAINTENANCE_COMPLETED
    if status == IncidentStatus.SCHEDULED:
        return EventType.MAINTENANCE_SCHEDULED if first else None
    underway = (IncidentStatus.IN_PROGRESS, IncidentStatus.VERIFYING)
    if first or not earlier.filter(status__in=underway).exists():
        return EventType.MAINTENANCE_STARTED
    return None


def public_deliveries_add(
    incident: Incident, kind: str, *, update_id: int = NO_UPDATE, window: datetime | None = None
) -> int:
    """Owe ``kind`` about ``incident`` to every public subscriber of its components
    (those its operator marked, and those of the shards its windows are on)."""
    components = (
        f"SELECT component_id FROM {IC} WHERE incident_id = %(incident)s "  # noqa: S608
        f"UNION SELECT sh.component_id FROM {SI} w JOIN {SHARD} sh ON sh.id = w.shard_id "
        "WHERE w.incident_id = %(incident)s"
    )
    select = (
        f"SELECT {_values(kind, tailnet='NULL', window='%(window)s', update='%(update)s')} "  # noqa: S608
        f"FROM {S} s WHERE s.tailnet_id IS NULL AND s.active AND s.confirmed_at IS NOT NULL "
        f"AND (NOT EXISTS (SELECT 1 FROM {SC} c WHERE c.subscription_id = s.id) "
        f"OR EXISTS (SELECT 1 FROM {SC} c WHERE c.subscription_id = s.id "
        f"AND c.component_id IN ({components})))"
    )
    return _insert(
        select,
        {
            "incident": incident.pk,
            "now": timezone.now(),
            "update": update_id,
            "window": connection.ops.adapt_datetimefield_value(window or NO_WINDOW),
        },
    )


def maintenance_reminders_add(*, now: datetime | None = None) -> int:
    """Owe ``maintenance.reminder`` for every published maintenance starting within
    ``NOTIFY_MAINTENANCE_REMINDER_MINUTES`` (once per scheduled start: moved, it is
    news again)."""
    now = now or timezone.now()
    ahead = timedelta(minutes=settings.NOTIFY_MAINTENANCE_REMINDER_MINUTES)
    due = Incident.objects.filter(
        kind=IncidentKind.MAINTENANCE,
        published=True,
        status=IncidentStatus.SCHEDULED,
        scheduled_for__gt=now,
        scheduled_for__lte=now + ahead,
    )
    return sum(
        public_deliveries_add(
            incident, EventType.MAINTENANCE_REMINDER, window=incident.scheduled_for
        )
        for incident in due
    )


# --- A tailnet's subscribers ---------------------------------------------------------------

# The tailnet's subscribers: confirmed, active, and the tailnet not deleted.
_TAILNET_SUBSCRIBERS = (
    f"JOIN {S} s ON s.tailnet_id = r.tailnet_id AND s.active AND s.confirmed_at IS NOT NULL "
    f"JOIN {T} t ON t.id = r.tailnet_id AND t.deleted_at IS NULL"
)
# Stretches of a tailnet's affected time, from its rows in start order (rows that
# touch are one stretch: a live migration between two failing shards is not news).
# Window functions, not a NOT EXISTS self-join: one pass over the incident's rows,
# whatever the planner believes about a table the recompute has just rewritten.
_OPEN = "MAX(CASE WHEN r.ends_at IS NULL THEN 1 ELSE 0 END)"
_EDGES = (
    "(SELECT r.tailnet_id, r.starts_at, "  # noqa: S608
    f"{_OPEN} OVER before AS open_before, MAX(r.ends_at) OVER before AS end_before, "
    f"{_OPEN} OVER upto AS open_upto, MAX(r.ends_at) OVER upto AS end_upto, "
    "MIN(r.starts_at) OVER after AS next_start "
    f"FROM {R} r WHERE r.incident_id = %(incident)s "
    "WINDOW before AS (PARTITION BY r.tailnet_id ORDER BY r.starts_at, r.id "
    "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), "
    "upto AS (PARTITION BY r.tailnet_id ORDER BY r.starts_at, r.id "
    "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), "
    "after AS (PARTITION BY r.tailnet_id ORDER BY r.starts_at, r.id "
    "ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING))"
)
# A row starts a stretch when no earlier row reaches its start; the last row of a
# stretch is the one the next row does not start within; the stretch ends at the
# latest end so far (unless a row of it is still open).
_STARTS_STRETCH = (
    "COALESCE(r.open_before, 0) = 0 AND (r.end_before IS NULL OR r.end_before < r.starts_at)"
)
_ENDS_STRETCH = "r.open_upto = 0 AND (r.next_start IS NULL OR r.next_start > r.end_upto)"


def _tailnet_select(
    kind: str, *, window: str, update: str = "0", where: str = "TRUE", rows: str = R
) -> str:
    """Each affected-tailnet row of the incident (or of ``rows``, a derived table of
    them) that ``where`` picks, once per subscriber of its tailnet."""
    values = _values(kind, tailnet="r.tailnet_id", window=window, update=update)
    incident = "r.incident_id = %(incident)s AND " if rows == R else ""
    return (
        f"SELECT {values} FROM {rows} r {_TAILNET_SUBSCRIBERS} "  # noqa: S608
        f"WHERE {incident}{where}"
    )


def tailnet_deliveries_add(incident_id: int) -> int:
    """Owe each affected tailnet's subscribers what its rows say now: the starts and
    ends of its affected stretches while the incident goes on, its resolution once
    the rows are final. Idempotent: run after every recompute."""
    incident = (
        Incident.objects.filter(pk=incident_id)
        .values("published", "resolved_at", "impacts_computed_at", "impacts_changed_at")
        .first()
    )
    if incident is None or not incident["published"]:
        return 0
    params: dict[str, Any] = {"incident": incident_id, "now": timezone.now()}
    if incident["resolved_at"] is None:
        return _insert(
            _tailnet_select(
                EventType.INCIDENT_AFFECTED,
                window="r.starts_at",
                where=_STARTS_STRETCH,
                rows=_EDGES,
            ),
            params,
        ) + _insert(
            _tailnet_select(
                EventType.INCIDENT_IMPACT_ENDED,
                window="r.end_upto",
                where=_ENDS_STRETCH,
                rows=_EDGES,
            ),
            params,
        )
    computed, changed = incident["impacts_computed_at"], incident["impacts_changed_at"]
    if computed is None or computed < changed:
        return 0  # the recompute on its way writes them, with the final seconds
    return _insert(_tailnet_select(EventType.INCIDENT_RESOLVED, window="%(no_window)s"), params)


def tailnet_update_deliveries_add(update: IncidentUpdate) -> int:
    """Owe ``incident.updated`` to the subscribers of the tailnets affected when
    ``update`` was posted."""
    select = _tailnet_select(
        EventType.INCIDENT_UPDATED,
        window="%(no_window)s",
        update="%(update)s",
        where="r.starts_at <= %(at)s AND (r.ends_at IS NULL OR r.ends_at > %(at)s)",
    )
    return _insert(
        select,
        {
            "incident": update.incident_id,
            "now": timezone.now(),
            "update": update.pk,
            "at": connection.ops.adapt_datetimefield_value(update.display_at),
        },
    )
