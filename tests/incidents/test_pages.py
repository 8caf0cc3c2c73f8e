"""The public pages as a visitor sees them."""

from datetime import timedelta

from incidents.services import WindowSpec, incident_create, incident_post_update, tailnet_create
from tests.conftest import T0

M = timedelta(minutes=1)


def _incident(fleet, *, published=True, body="Logins are failing on **one** shard."):
    return incident_create(
        title="Coordination server unavailable in us-east",
        body=body,
        started_at=T0,
        detected_at=T0 + 2 * M,
        components={fleet["us"]: "partial_outage"},
        shard_impacts=[WindowSpec("use1", "outage", T0, T0 + 24 * M)],
        published=published,
        at=T0,
    )


def test_a_visitor_sees_an_open_incident_on_the_status_page(client, fleet):
    _incident(fleet)
    page = client.get("/").content.decode()
    assert "Coordination server unavailable in us-east" in page
    assert "<strong>one</strong>" in page
    assert "Partialoutage" not in page


def test_the_incident_page_shows_duration_detection_and_blast_radius(client, fleet, committed):
    tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - M)
    tailnet_create(slug="globex", display_name="globex.com", shard="euw1", at=T0 - M)
    with committed():
        incident = _incident(fleet)
        incident_post_update(incident=incident, status="resolved", body="Fixed.", at=T0 + 24 * M)

    page = client.get(f"/incidents/{incident.pk}/").content.decode()

    assert "24 minutes" in page
    assert "2 minutes" in page  # time to detect
    assert "1 tailnet, 50.0% of tailnets" in page
    assert page.index("Resolved") < page.index("Investigating")  # newest first


def test_markdown_in_updates_is_sanitized(client, fleet):
    incident = _incident(
        fleet,
        body="<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>",
    )
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "<script>alert(1)" not in page
    assert "javascript:" not in page
    assert "onerror" not in page


def test_titles_are_escaped(client, fleet):
    incident = incident_create(
        title="<b>bold</b> & co", body="x", started_at=T0, published=True, at=T0
    )
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page


def test_a_draft_is_not_public(client, fleet):
    incident = _incident(fleet, published=False)
    assert client.get(f"/incidents/{incident.pk}/").status_code == 404
    assert "Coordination server unavailable" not in client.get("/").content.decode()


def test_healthz_answers(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
