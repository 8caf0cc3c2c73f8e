"""An incident's public page: its follow-ups once (and only once) its postmortem is
published, and where its time to resolve stands against its UTC quarter.

The first quarter of 2026, as alice recorded it (all published incidents):
- 5 January, US East 1 down: impact 10:00, resolved 10:24 → 24 min.
- 10 February, EU West 1 slow: impact 08:00, resolved 08:41 → 41 min.
- 1 March, US East 2 down: the incident opened at 10:00 but its window on US East 2
  began at 09:50, so impact began then; resolved 10:30 → 40 min.
- 12 March, EU West 1 down: impact 14:00, resolved 15:00 → 60 min.
Not in the median: a 5-minute incident on 20 December 2025 (the quarter before), a
10-minute draft, a maintenance, and an incident still open.

The median of 24, 40, 41 and 60 minutes is (40 + 41) / 2 = 40 min 30 s.
"""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.services import tailnet_create
from incidents import services
from incidents.queries import quarter_of, quarter_resolve_median
from incidents.services import WindowSpec, incident_create, incident_edit, incident_resolve
from public import snapshot
from public.snapshot import snapshot_rebuild

M = timedelta(minutes=1)
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _live_views(settings, tmp_path, time_machine):
    """The views themselves (no snapshot in front); time stands still."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("SnapshotMiddleware")]
    settings.SNAPSHOT_DIR = tmp_path / "snapshot"
    time_machine.move_to(NOW, tick=False)
    yield
    snapshot.forget()


def _resolved(title, shard, *, start, minutes, window_start=None, published=True):
    window_start = window_start or start
    incident = incident_create(
        title=title,
        body="Investigating.",
        started_at=start,
        shard_impacts=[WindowSpec(shard, "outage", window_start, start + minutes * M)],
        published=published,
        at=start,
    )
    return incident_resolve(incident=incident, at=start + minutes * M)


@pytest.fixture
def quarter(fleet, committed):
    tailnet_create(
        slug="acme", display_name="acme.com", shard="use1", at=datetime(2025, 1, 1, tzinfo=UTC)
    )
    with committed():
        incidents = {
            "january": _resolved(
                "US East 1 down",
                "use1",
                start=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
                minutes=24,
            ),
            "february": _resolved(
                "EU West 1 slow", "euw1", start=datetime(2026, 2, 10, 8, 0, tzinfo=UTC), minutes=41
            ),
            "march": _resolved(
                "US East 2 down",
                "use2",
                start=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
                window_start=datetime(2026, 3, 1, 9, 50, tzinfo=UTC),
                minutes=30,
            ),
            "late_march": _resolved(
                "EU West 1 down",
                "euw1",
                start=datetime(2026, 3, 12, 14, 0, tzinfo=UTC),
                minutes=60,
            ),
            "december": _resolved(
                "US East 1 blip", "use1", start=datetime(2025, 12, 20, 9, 0, tzinfo=UTC), minutes=5
            ),
            "draft": _resolved(
                "Never published",
                "use2",
                start=datetime(2026, 2, 1, 9, 0, tzinfo=UTC),
                minutes=10,
                published=False,
            ),
            "open": incident_create(
                title="Still going",
                body="Investigating.",
                started_at=NOW - 30 * M,
                published=True,
                at=NOW - 30 * M,
            ),
        }
        maintenance = incident_create(
            title="Upgrading EU West 1",
            body="Planned.",
            kind="maintenance",
            status="in_progress",
            scheduled_for=datetime(2026, 3, 3, 2, 0, tzinfo=UTC),
            scheduled_until=datetime(2026, 3, 3, 3, 0, tzinfo=UTC),
            published=True,
            at=datetime(2026, 3, 3, 2, 0, tzinfo=UTC),
        )
        incidents["maintenance"] = incident_resolve(
            incident=maintenance, at=datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
        )
    return incidents


def _page(client, incident):
    response = client.get(f"/incidents/{incident.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def _text(html):
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _follow_ups(incident):
    services.follow_up_add(
        incident=incident, text="Alert on disk usage above 80%", owner="Alice Ng"
    )
    services.follow_up_add(
        incident=incident,
        text="Give the coordination server <a second> disk",
        owner="carol",
        status="done",
        done_on=date(2026, 1, 9),
    )


# --- Follow-ups ----------------------------------------------------------------------------


def test_follow_ups_appear_only_once_the_postmortem_is_published(client, quarter):
    january = quarter["january"]
    _follow_ups(january)
    before = _page(client, january)
    assert "Follow-ups" not in before
    assert "Alert on disk usage" not in before

    incident_edit(
        incident=january,
        changes={"postmortem": "A full disk stopped the coordination server."},
        at=NOW - timedelta(days=1),
    )
    page = _page(client, january)
    section = page.split('<section class="follow-ups"')[1].split("</section>")[0]
    rows = [_text(row) for row in re.findall(r"<tr id=\"follow-up-\d+\">(.*?)</tr>", section)]
    assert rows == [
        "Alert on disk usage above 80% Alice Ng Open \N{EN DASH}",
        "Give the coordination server &lt;a second&gt; disk carol Done 2026-01-09",
    ]
    assert "<a second>" not in page  # plain text, escaped


def test_removing_the_postmortem_hides_them_again(client, quarter):
    january = quarter["january"]
    _follow_ups(january)
    incident_edit(incident=january, changes={"postmortem": "A full disk."}, at=NOW - M)
    assert "Alert on disk usage" in _page(client, january)
    incident_edit(incident=january, changes={"postmortem": ""}, at=NOW)
    assert "Alert on disk usage" not in _page(client, january)


def test_a_follow_up_added_after_publication_reaches_the_snapshot(quarter, committed):
    january = quarter["january"]
    incident_edit(incident=january, changes={"postmortem": "A full disk."}, at=NOW - M)
    snapshot_rebuild()
    # The fixtures' writes queued a rebuild in the test's one open transaction, which
    # would absorb the block's (as in test_snapshot).
    snapshot._pending.clear()
    path = f"/incidents/{january.pk}/"
    assert "Alert on disk usage" not in snapshot.lookup(path).body.decode()

    with committed():
        services.follow_up_add(incident=january, text="Alert on disk usage", owner="Alice Ng")

    assert "Alert on disk usage" in snapshot.lookup(path).body.decode()


def test_the_page_takes_the_same_queries_for_one_follow_up_or_five(client, quarter):
    january = quarter["january"]
    incident_edit(incident=january, changes={"postmortem": "A full disk."}, at=NOW - M)
    services.follow_up_add(incident=january, text="One", owner="carol")

    def queries():
        with CaptureQueriesContext(connection) as captured:
            _page(client, january)
        return len(captured)

    one = queries()
    for n in range(4):
        services.follow_up_add(incident=january, text=f"More {n}", owner="carol")
    assert queries() == one


# --- Against the quarter -------------------------------------------------------------------


def test_the_quarter_is_the_utc_calendar_quarter():
    assert quarter_of(datetime(2026, 3, 31, 23, 59, tzinfo=UTC)) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )
    assert quarter_of(datetime(2025, 12, 31, 23, 0, tzinfo=UTC)) == (
        datetime(2025, 10, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_the_median_is_of_the_quarters_resolved_published_incidents(quarter):
    first = quarter_resolve_median(at=datetime(2026, 2, 1, tzinfo=UTC))
    assert (first.label, first.incidents, first.median_seconds) == ("Q1 2026", 4, 40.5 * 60)
    last = quarter_resolve_median(at=datetime(2025, 11, 1, tzinfo=UTC))
    assert (last.label, last.incidents, last.median_seconds) == ("Q4 2025", 1, 5 * 60)
    assert quarter_resolve_median(at=datetime(2025, 7, 1, tzinfo=UTC)).median_seconds is None


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("january", "Resolved in 24 min; median this quarter 40 min 30 s"),
        ("february", "Resolved in 41 min; median this quarter 40 min 30 s"),
        # Impact began with the window at 09:50, ten minutes before the incident opened.
        ("march", "Resolved in 40 min; median this quarter 40 min 30 s"),
        ("december", "Resolved in 5 min; median this quarter 5 min"),
    ],
)
def test_each_resolved_incident_says_where_it_stands_against_its_quarter(
    client, quarter, name, line
):
    page = _page(client, quarter[name])
    assert f'<span class="against-quarter">{line}</span>' in page
    count = (
        "4 resolved incidents that started in Q1 2026"
        if name != "december"
        else ("1 resolved incident that started in Q4 2025")
    )
    assert count in _text(page)


@pytest.mark.parametrize("name", ["open", "maintenance"])
def test_no_quarter_line_for_an_open_incident_or_a_maintenance(client, quarter, name):
    assert "against-quarter" not in _page(client, quarter[name])
