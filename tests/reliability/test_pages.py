"""/reliability/ and /api/v1/reliability as a visitor sees them."""

import re
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.services import WindowSpec
from public.snapshot import published_version_bump, snapshot_paths

from .conftest import JAN, NOW, M, closed_incident


def text(html):
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def get(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.content.decode()


def test_the_page_shows_the_table_and_definitions_without_javascript(client, story):
    page = get(client, "/reliability/")
    words = text(page)

    # Charts are SVG drawn on the server, with their numbers in the table beneath.
    assert page.count('<svg class="reliability-chart"') == 6
    assert '<table class="shards reliability-table">' in page
    rows = re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</th>", page)
    assert rows[0] == "March 2026"
    assert rows[-1] == "April 2025"
    assert len(rows) == 12
    february = text(page.split('<th scope="row">February 2026</th>')[1].split("</tr>")[0])
    assert february == (
        "4 1 critical, 1 major, 1 minor, 1 maintenance 2 h 45 min 45 min "
        "3 min 30 s (2 not measured) 2 min 45 min 33.33% / 66.66% 58.5 99.95% 0 open, 0 done"
    )
    for term in ("Time to detect", "not measured", "Tailnet-minutes lost", "Fleet uptime"):
        assert term in words
    assert 'aria-current="page">Reliability</a>' in page


def test_every_page_links_to_the_report(client, fleet):
    assert '<a href="/reliability/"' in get(client, "/")


def test_the_page_takes_the_same_queries_for_one_incident_or_five(client, tailnets, committed):
    def count():
        cache.clear()  # the ended months' tallies too: every call computes everything
        with CaptureQueriesContext(connection) as queries:
            get(client, "/reliability/")
        return len(queries)

    with committed():
        closed_incident(
            "one", windows=[WindowSpec("use1", "outage", JAN, JAN + 5 * M)], started_at=JAN
        )
    one = count()
    with committed():
        for hour in range(1, 5):
            at = JAN + hour * 60 * M
            closed_incident(
                f"again {hour}",
                windows=[WindowSpec("euw1", "outage", at, at + 5 * M)],
                started_at=at,
            )
    assert count() == one


def test_the_api_is_cached_until_published_data_changes(client, tailnets, committed):
    def january_incidents():
        return client.get("/api/v1/reliability").json()["months"][-3]["incidents"]

    assert january_incidents() == 0
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/reliability")
    assert len(queries) == 1  # the published data's version
    with committed():
        closed_incident(
            "late", windows=[WindowSpec("use1", "outage", JAN, JAN + 5 * M)], started_at=JAN
        )
    assert january_incidents() == 0  # the same minute, the same version: cached
    published_version_bump()  # what the commit of a published change does
    assert january_incidents() == 1
    # The page is cached by the snapshot, not here: it always shows the latest.
    assert '<td data-label="Incidents">1</td>' in get(client, "/reliability/")


def test_the_report_is_in_the_snapshot_and_the_static_export(fleet, tmp_path):
    assert "/reliability/" in snapshot_paths(now=NOW)
    call_command("export_static", str(tmp_path / "site"), stdout=StringIO())
    assert "Reliability report" in (tmp_path / "site/reliability/index.html").read_text()


def test_the_api_gives_the_last_twelve_months_by_default(client, story):
    body = client.get("/api/v1/reliability").json()

    assert (body["from"], body["to"], len(body["months"])) == ("2025-04", "2026-03", 12)
    february = next(month for month in body["months"] if month["month"] == "2026-02")
    assert february["incidents"] == 4
    assert february["time_to_detect"] == {
        "measured": 2,
        "unavailable": 2,
        "median_seconds": 210.0,
        "worst_seconds": 240.0,
    }
    assert february["blast_radius"] == {
        "incidents": 4,
        "median_pct": 33.3333,
        "worst_pct": 66.6666,
    }
    assert february["tailnet_seconds"]["outage_seconds"] == 45 * 60
    assert february["tailnet_minutes_lost"] == 58.5


def test_the_api_takes_a_range(client, story):
    body = client.get("/api/v1/reliability?from=2026-01&to=2026-02").json()
    assert [month["month"] for month in body["months"]] == ["2026-01", "2026-02"]
    assert body["months"][0]["time_to_resolve"]["median_seconds"] == 30 * 60


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-13", "from"),
        ("from=26-01", "from"),
        ("to=2026-3", "to"),
        ("to=2026-04", "to"),  # the future
        ("from=2026-03&to=2026-01", "from"),
        ("from=2023-02&to=2026-02", "from"),  # 37 months
        ("from=1999-12&to=2000-01", "from"),
    ],
)
def test_a_bad_range_is_a_400_naming_the_field(client, db, query, field):
    response = client.get(f"/api/v1/reliability?{query}")

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_thirty_six_months_is_allowed(client, db):
    response = client.get("/api/v1/reliability?from=2023-04&to=2026-03")
    assert response.status_code == 200
    assert len(response.json()["months"]) == 36


def test_the_api_is_in_the_public_schema_with_its_range(client, db):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/reliability"]["get"]

    assert {p["name"] for p in operation["parameters"]} == {"from", "to"}
    assert set(operation["responses"]) == {"200", "400"}
