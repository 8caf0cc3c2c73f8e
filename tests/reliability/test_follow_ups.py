"""Follow-ups per month on /reliability/ and /api/v1/reliability, by hand (see
conftest.story). Today is 15 March 2026.

alice records, after each postmortem is published:
- January's "US East 1 down": two open (alerting, a runbook), one done on 20 January.
- February's "EU West 1 partly down": one done on 12 February.
- "EU West 1 down at midnight" (28 February, so February's): one open.
Not counted: "EU West 1 down" (February) has two follow-ups but no published
postmortem; "Upgrading EU West 1" had no impact, so it is not a counted incident.

So January: 2 open, 1 done; February: 1 open, 1 done; March: none.
"""

import re
from datetime import date

import pytest

from incidents import services
from incidents.services import incident_edit
from public.snapshot import published_version_bump
from reliability.queries import reliability_report

from .conftest import NOW

JANUARY, FEBRUARY, MARCH = 2026 * 12, 2026 * 12 + 1, 2026 * 12 + 2


def _postmortem(incident):
    incident_edit(incident=incident, changes={"postmortem": "What went wrong."}, at=NOW)


def _add(incident, text, *, done_on=None):
    return services.follow_up_add(
        incident=incident,
        text=text,
        owner="alice",
        status="done" if done_on else "open",
        done_on=done_on,
    )


@pytest.fixture
def follow_ups(story):
    for name in ("january", "slow", "crossing", "harmless"):
        _postmortem(story[name])
    _add(story["january"], "Alert when a coordination server stops")
    _add(story["january"], "Write the failover runbook")
    _add(story["january"], "Live-migrate tailnets off a failing shard", done_on=date(2026, 1, 20))
    _add(story["slow"], "Raise the partial-outage alert", done_on=date(2026, 2, 12))
    _add(story["crossing"], "Stagger the midnight jobs")
    _add(story["down"], "Not public yet")
    _add(story["down"], "Nor this", done_on=date(2026, 2, 11))
    _add(story["harmless"], "Planned work, no impact")
    return story


def test_open_and_done_follow_ups_are_counted_in_their_incidents_month(follow_ups):
    report = {m.index: m for m in reliability_report(first=JANUARY, last=MARCH, now=NOW)}

    assert [(report[i].follow_ups_open, report[i].follow_ups_done) for i in report] == [
        (2, 1),
        (1, 1),
        (0, 0),
    ]


def test_they_count_by_where_they_stand_now(follow_ups):
    runbook = follow_ups["january"].follow_ups.get(text="Write the failover runbook")
    services.follow_up_change(
        follow_up=runbook, changes={"status": "done", "done_on": date(2026, 3, 2)}
    )
    (january,) = reliability_report(first=JANUARY, last=JANUARY, now=NOW)
    assert (january.follow_ups_open, january.follow_ups_done) == (1, 2)


def test_the_table_shows_them_and_the_page_defines_them(client, follow_ups):
    page = client.get("/reliability/").content.decode()
    cells = dict(
        re.findall(
            r'<th scope="row">(\w+ 2026)</th>.*?<td data-label="Follow-ups">(.*?)</td>',
            page,
            re.S,
        )
    )
    assert cells == {
        "March 2026": "0 open, 0 done",
        "February 2026": "1 open, 1 done",
        "January 2026": "2 open, 1 done",
    }
    assert '<th scope="col">Follow-ups</th>' in page
    assert "<dt>Follow-ups</dt>" in page
    assert "once an incident's postmortem is published" in page


def test_the_api_gives_them_per_month(client, follow_ups):
    published_version_bump()  # what the commit of a published change does
    body = client.get("/api/v1/reliability?from=2026-01&to=2026-03").json()
    assert [(m["month"], m["follow_ups"]) for m in body["months"]] == [
        ("2026-01", {"open": 2, "done": 1}),
        ("2026-02", {"open": 1, "done": 1}),
        ("2026-03", {"open": 0, "done": 0}),
    ]


def test_the_api_schema_describes_them(client, db):
    schema = client.get("/api/schema/?format=json").json()
    shapes = schema["components"]["schemas"].values()
    assert any("follow_ups" in shape.get("properties", {}) for shape in shapes)
