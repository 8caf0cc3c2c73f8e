"""RSS and Atom feeds: one item per update of a published incident."""

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from incidents.services import WindowSpec, incident_create, incident_post_update
from tests.conftest import T0

ATOM = "{http://www.w3.org/2005/Atom}"
M = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _live_views(settings, tmp_path):
    """These tests are about the views: no snapshot in front of them."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("SnapshotMiddleware")]
    settings.SNAPSHOT_DIR = tmp_path / "snapshot"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "status.example.com"]
    settings.STATUSPAGE_PUBLIC_URL = "http://status.example.com"


@pytest.fixture
def outage(fleet):
    """Investigating at T0, resolved 24 minutes later."""
    incident = incident_create(
        title="Coordination unavailable in us-east",
        body="Logins are failing on **one** shard.",
        started_at=T0,
        components={fleet["us"]: "partial_outage"},
        shard_impacts=[WindowSpec("use1", "outage", T0)],
        published=True,
        at=T0,
    )
    incident_post_update(
        incident=incident,
        status="resolved",
        body="Fixed.",
        components={fleet["us"]: "operational"},
        at=T0 + 24 * M,
    )
    return incident


def xml(body):
    return ET.fromstring(body)  # noqa: S314 - our own output, the thing under test


def rss(client):
    response = client.get("/feed.rss", HTTP_HOST="status.example.com")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/rss+xml")
    return xml(response.content).find("channel")


def atom(client):
    response = client.get("/feed.atom", HTTP_HOST="status.example.com")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    return xml(response.content)


def test_rss_has_an_item_per_update_newest_first(client, outage):
    channel = rss(client)
    assert channel.find("title").text == "Coordination service status"
    assert channel.find("link").text == "http://status.example.com/"
    items = channel.findall("item")
    assert [item.find("title").text for item in items] == [
        "Coordination unavailable in us-east — Resolved",
        "Coordination unavailable in us-east — Investigating",
    ]
    resolved, investigating = items
    updates = list(outage.updates.order_by("-display_at"))
    assert resolved.find("link").text == (
        f"http://status.example.com/incidents/{outage.pk}/#update-{updates[0].pk}"
    )
    assert resolved.find("guid").text == resolved.find("link").text
    assert resolved.find("guid").get("isPermaLink") == "true"
    assert resolved.find("guid").text != investigating.find("guid").text
    assert "<strong>one</strong>" in investigating.find("description").text
    assert "Coordination (us-east) (Operational)" in resolved.find("description").text
    assert resolved.find("pubDate").text == "Mon, 05 Jan 2026 10:24:00 +0000"


def test_atom_has_the_same_entries_with_absolute_links(client, outage):
    feed = atom(client)
    assert feed.find(f"{ATOM}title").text == "Coordination service status"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == [
        "Coordination unavailable in us-east — Resolved",
        "Coordination unavailable in us-east — Investigating",
    ]
    for entry in entries:
        link = entry.find(f"{ATOM}link").get("href")
        assert link.startswith(f"http://status.example.com/incidents/{outage.pk}/#update-")
        assert entry.find(f"{ATOM}id").text == link
    assert entries[0].find(f"{ATOM}updated").text == "2026-01-05T10:24:00+00:00"
    assert feed.find(f"{ATOM}updated").text == "2026-01-05T10:24:00+00:00"
    self_link = [link for link in feed.findall(f"{ATOM}link") if link.get("rel") == "self"]
    assert self_link[0].get("href") == "http://status.example.com/feed.atom"


def test_drafts_are_never_in_a_feed(client, fleet, outage):
    incident_create(title="Secret draft", body="not yet", started_at=T0, at=T0 + M)
    for body in (client.get("/feed.rss").content, client.get("/feed.atom").content):
        assert b"Secret draft" not in body
        assert b"not yet" not in body


def test_maintenance_says_so(client, fleet):
    incident_create(
        title="Upgrade EU West 1",
        body="Planned.",
        kind="maintenance",
        impact="maintenance",
        scheduled_for=T0 + 60 * M,
        scheduled_until=T0 + 120 * M,
        published=True,
        at=T0,
    )
    (item,) = rss(client).findall("item")
    assert item.find("title").text == "Maintenance: Upgrade EU West 1 — Scheduled"
    assert [c.text for c in item.findall("category")] == ["Maintenance", "Scheduled"]


def test_html_in_titles_and_bodies_is_escaped(client, fleet):
    incident_create(
        title="<script>alert(1)</script> & <b>co</b>",
        body="<script>alert(2)</script> [x](javascript:alert(3)) <img src=x onerror=alert(4)>",
        started_at=T0,
        published=True,
        at=T0,
    )
    for path in ("/feed.rss", "/feed.atom"):
        body = client.get(path).content
        assert b"<script>" not in body
        xml(body)  # still well-formed XML
    (item,) = rss(client).findall("item")
    # An RSS title may be read as HTML: the markup arrives escaped once more.
    assert item.find("title").text.startswith("&lt;script&gt;alert(1)&lt;/script&gt; &amp; ")
    description = item.find("description").text
    assert "<script>" not in description
    assert "javascript:" not in description
    assert "onerror" not in description
    # An Atom title is plain text.
    (entry,) = atom(client).findall(f"{ATOM}entry")
    assert entry.find(f"{ATOM}title").text.startswith("<script>alert(1)</script> & <b>co</b>")


def test_an_apostrophe_stays_an_apostrophe(client, fleet):
    incident_create(title="Logins can't complete", body="x", published=True, at=T0)
    (item,) = rss(client).findall("item")
    assert item.find("title").text == "Logins can't complete — Investigating"


def test_the_feed_is_fifty_items_in_one_query(client, fleet, django_assert_num_queries):
    for n in range(30):
        incident = incident_create(title=f"t{n}", body="x", published=True, at=T0 + n * M)
        incident_post_update(incident=incident, status="resolved", body="y", at=T0 + n * M + M)
    with django_assert_num_queries(1):
        body = client.get("/feed.rss").content
    assert len(xml(body).find("channel").findall("item")) == 50


def test_an_empty_feed_is_valid(client, db):
    assert rss(client).findall("item") == []
    assert atom(client).findall(f"{ATOM}entry") == []
