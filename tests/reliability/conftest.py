from datetime import UTC, datetime, timedelta

import pytest

from fleet.services import tailnet_create, tailnet_migrate
from incidents.services import WindowSpec, incident_create, incident_resolve

M = timedelta(minutes=1)
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SINCE = datetime(2025, 1, 1, tzinfo=UTC)
JAN = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
FEB = datetime(2026, 2, 10, 8, 0, tzinfo=UTC)
MAINT = datetime(2026, 2, 20, 2, 0, tzinfo=UTC)
BOUNDARY = datetime(2026, 2, 28, 23, 50, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen(settings, time_machine):
    """Time stands still at NOW, and the views answer live (no snapshot in front)."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("SnapshotMiddleware")]
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def tailnets(fleet):
    """acme on US East 1, initech on US East 2, globex on EU West 1, all since 2025."""
    return {
        "acme": tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=SINCE),
        "initech": tailnet_create(
            slug="initech", display_name="initech.com", shard="use2", at=SINCE
        ),
        "globex": tailnet_create(slug="globex", display_name="globex.com", shard="euw1", at=SINCE),
    }


def closed_incident(title, *, windows, started_at, detected_at=None, impact="major", **extra):
    """A published incident whose first update was posted (and published) two minutes
    after it started, resolved when its last window ended."""
    incident = incident_create(
        title=title,
        body="Investigating.",
        impact=impact,
        started_at=started_at,
        detected_at=detected_at,
        shard_impacts=windows,
        published=True,
        at=started_at + 2 * M,
        **extra,
    )
    return incident_resolve(incident=incident, at=max(w.ends_at for w in windows))


@pytest.fixture
def story(tailnets, committed):
    """January: US East 1 down 30 min; acme live-migrates to US East 2 ten minutes in.
    February: EU West 1 in partial outage for an hour with an overlapping 15-minute
    outage; a maintenance that took US East 2 down for 10 minutes (acme is there now,
    with initech); a maintenance without impact; an outage on EU West 1 from
    23:50 on 28 February to 00:20 on 1 March."""
    with committed():
        january = closed_incident(
            "US East 1 down",
            windows=[WindowSpec("use1", "outage", JAN, JAN + 30 * M)],
            started_at=JAN,
            detected_at=JAN + 2 * M,
        )
        tailnet_migrate(tailnet=tailnets["acme"], to_shard="use2", at=JAN + 10 * M)
    with committed():
        slow = closed_incident(
            "EU West 1 partly down",
            windows=[WindowSpec("euw1", "partial", FEB, FEB + 60 * M)],
            started_at=FEB,
            detected_at=FEB + 4 * M,
            impact="minor",
        )
        down = closed_incident(
            "EU West 1 down",
            windows=[WindowSpec("euw1", "outage", FEB + 30 * M, FEB + 45 * M)],
            started_at=FEB + 30 * M,
        )
        maintenance = incident_create(
            title="Upgrading US East 2",
            body="Upgrading.",
            kind="maintenance",
            status="in_progress",
            scheduled_for=MAINT,
            scheduled_until=MAINT + 60 * M,
            shard_impacts=[WindowSpec("use2", "outage", MAINT, MAINT + 10 * M)],
            published=True,
            at=MAINT,
        )
        maintenance = incident_resolve(incident=maintenance, at=MAINT + 60 * M)
        harmless = incident_create(
            title="Upgrading EU West 1",
            body="Nobody should notice.",
            kind="maintenance",
            status="in_progress",
            scheduled_for=MAINT + DAY_,
            scheduled_until=MAINT + DAY_ + 60 * M,
            published=True,
            at=MAINT + DAY_,
        )
        harmless = incident_resolve(incident=harmless, at=MAINT + DAY_ + 60 * M)
        crossing = closed_incident(
            "EU West 1 down at midnight",
            windows=[WindowSpec("euw1", "outage", BOUNDARY, BOUNDARY + 30 * M)],
            started_at=BOUNDARY,
            detected_at=BOUNDARY + 3 * M,
            impact="critical",
        )
    return {
        "january": january,
        "slow": slow,
        "down": down,
        "maintenance": maintenance,
        "harmless": harmless,
        "crossing": crossing,
    }


DAY_ = timedelta(days=1)
