"""Links that speak for themselves: a status page pasted into a chat during an outage
previews the current state (its meta description, Open Graph and Twitter-card tags),
an incident's page previews that incident, and nothing personal ever gets in."""

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model

from customers.models import Membership
from fleet.services import tailnet_create
from incidents.models import Shard
from incidents.services import WindowSpec, incident_create, incident_post_update
from public import previews, snapshot
from public.snapshot import snapshot_rebuild
from tests.conftest import T0

M = timedelta(minutes=1)
NOW = T0 + 30 * M  # Monday 2026-01-05 10:30 UTC
SITE = "Coordination service status"
PUBLIC_URL = "https://status.example.com"
TAGS = (
    "description",
    "og:type",
    "og:site_name",
    "og:title",
    "og:description",
    "og:url",
    "twitter:card",
    "twitter:title",
    "twitter:description",
)
OUTAGE_TITLE = "Logging in and ACL changes failing for some tailnets"


class _Meta(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, str] = {}
        self.repeated: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        key = attributes.get("property") or attributes.get("name")
        if tag == "meta" and key in TAGS:
            if key in self.tags:
                self.repeated.append(key)
            self.tags[key] = attributes.get("content") or ""


def preview_of(response) -> dict[str, str]:
    """The page's link-preview tags as a chat app reads them (entities decoded)."""
    assert response.status_code == 200, response.status_code
    parser = _Meta()
    parser.feed(response.content.decode())
    assert parser.repeated == []
    return parser.tags


def said(tags: dict[str, str]) -> tuple[str, str]:
    """(title, description), once the copies for each kind of reader agree."""
    assert tags["og:type"] == "website"
    assert tags["og:site_name"] == SITE
    assert tags["twitter:card"] == "summary"
    assert tags["twitter:title"] == tags["og:title"]
    assert tags["description"] == tags["og:description"] == tags["twitter:description"]
    return tags["og:title"], tags["og:description"]


@pytest.fixture(autouse=True)
def _setting(settings, time_machine):
    settings.STATUSPAGE_PUBLIC_URL = PUBLIC_URL
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "status.example.com"]
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def fleet(fleet):
    """The shared fleet plus US East 3, as if set up long ago (no rebuild pending)."""
    fleet["use3"] = Shard.objects.create(
        slug="use3",
        region="us-east",
        public_name="US East 3",
        component=fleet["us"],
        created_at=T0 - timedelta(days=365),
    )
    snapshot._pending.clear()
    return fleet


def partial_outage(fleet, *, published=True, title=OUTAGE_TITLE, body=None):
    """Since 10:02 UTC, some control-plane requests fail for the tailnets on US East 3."""
    return incident_create(
        title=title,
        body=body or "We are looking into failed logins on one shard.",
        started_at=T0 + 2 * M,
        components={fleet["us"]: "partial_outage"},
        shard_impacts=[WindowSpec("use3", "partial", T0 + 2 * M)],
        published=published,
        at=T0 + 3 * M,
    )


# --- The current state ----------------------------------------------------------------------


def test_all_operational(client, fleet):
    tags = preview_of(client.get("/"))
    assert said(tags) == (
        f"All systems operational — {SITE}",
        "Everything is working normally: no incidents are open.",
    )
    assert tags["og:url"] == f"{PUBLIC_URL}/"


def test_all_operational_names_the_next_maintenance(client, fleet):
    incident_create(
        title="Hardware upgrade of EU West 1",
        body="Logins on EU West 1 may pause for a minute.",
        kind="maintenance",
        scheduled_for=T0 + timedelta(days=1),
        scheduled_until=T0 + timedelta(days=1, hours=1),
        published=True,
        at=T0,
    )
    assert said(preview_of(client.get("/"))) == (
        f"All systems operational — {SITE}",
        "Everything is working normally: no incidents are open. "
        "Next maintenance: Hardware upgrade of EU West 1, Jan 6, 10:00 \u2013 11:00 UTC.",
    )


def test_a_partial_outage_on_us_east_3_says_what_where_and_since_when(client, fleet):
    partial_outage(fleet)
    for path in ("/", "/history/"):
        tags = preview_of(client.get(path))
        assert said(tags) == (
            f"Partial outage — {SITE}",
            f"{OUTAGE_TITLE} on US East 3 since 10:02 UTC. "
            "We are looking into failed logins on one shard.",
        ), path
        assert "use3" not in str(tags), path  # the shard's public name, never its slug
    assert preview_of(client.get("/history/"))["og:url"] == f"{PUBLIC_URL}/history/"


def test_the_latest_update_tells_the_news(client, fleet):
    incident = partial_outage(fleet)
    incident_post_update(
        incident=incident,
        status="identified",
        body="A **stuck** leader election; failing over to a new leader.",
        at=T0 + 20 * M,
    )
    _, description = said(preview_of(client.get("/")))
    assert description == (
        f"{OUTAGE_TITLE} on US East 3 since 10:02 UTC. "
        "A stuck leader election; failing over to a new leader."
    )


def test_the_most_severe_open_incident_is_the_one_previewed(client, fleet):
    partial_outage(fleet)
    incident_create(
        title="EU West 1 coordination down",
        body="No control-plane message passes.",
        started_at=T0 + 5 * M,
        components={fleet["eu"]: "major_outage"},
        shard_impacts=[WindowSpec("euw1", "outage", T0 + 5 * M)],
        impact="major",
        published=True,
        at=T0 + 5 * M,
    )
    assert said(preview_of(client.get("/"))) == (
        f"Major outage — {SITE}",
        "EU West 1 coordination down since 10:05 UTC. No control-plane message passes.",
    )


def test_a_draft_incident_changes_nothing(client, fleet):
    before = {path: preview_of(client.get(path)) for path in ("/", "/history/")}
    partial_outage(fleet, published=False)
    for path, tags in before.items():
        assert preview_of(client.get(path)) == tags, path
    assert said(before["/"])[0] == f"All systems operational — {SITE}"


def test_a_long_description_is_cut_at_a_word_boundary(client, fleet):
    body = "Every login attempt on the shard times out after a while. " * 10
    partial_outage(fleet, body=body)
    _, description = said(preview_of(client.get("/")))
    whole = f"{OUTAGE_TITLE} on US East 3 since 10:02 UTC. {body.strip()}"
    assert len(description) <= previews.DESCRIPTION_LIMIT < len(whole)
    assert description.endswith("…")
    kept = description.removesuffix("…")
    assert whole.startswith(kept)
    assert whole[len(kept)] == " "  # a whole word last


# --- An incident's page ---------------------------------------------------------------------


def test_an_incident_page_previews_that_incident(client, fleet):
    incident = partial_outage(fleet)
    incident_post_update(
        incident=incident,
        status="resolved",
        body="Fixed: the shard has a new leader.",
        components={fleet["us"]: "operational"},
        at=T0 + 25 * M,
    )
    tags = preview_of(client.get(f"/incidents/{incident.pk}/"))
    assert said(tags) == (
        f"{OUTAGE_TITLE} — {SITE}",
        "Resolved: Minor impact on US East 3, 10:02 \u2013 10:25 UTC (23 min). "
        "Fixed: the shard has a new leader.",
    )
    assert tags["og:url"] == f"{PUBLIC_URL}/incidents/{incident.pk}/"
    # Meanwhile the status page is all well again.
    assert said(preview_of(client.get("/")))[0] == f"All systems operational — {SITE}"


def test_an_open_incident_page_says_for_how_long_so_far(client, fleet):
    incident = partial_outage(fleet)
    _, description = said(preview_of(client.get(f"/incidents/{incident.pk}/")))
    assert description == (
        "Investigating: Minor impact on US East 3 since 10:02 UTC (28 min so far). "
        "We are looking into failed logins on one shard."
    )


# --- Escaping -------------------------------------------------------------------------------

HOSTILE = 'Logins "failing"\n<script>alert(1)</script>\r\n\t& more'


def test_a_hostile_title_is_harmless_and_on_one_line(client, fleet):
    incident = partial_outage(fleet, title=HOSTILE, body=f"Still {HOSTILE}")
    one_line = 'Logins "failing" <script>alert(1)</script> & more'
    for path in ("/", f"/incidents/{incident.pk}/"):
        response = client.get(path)
        page = response.content.decode()
        head = page[: page.index("</head>")]
        assert "<script>alert" not in head, path
        assert '"failing"' not in head, path
        for line in head.splitlines():
            if "og:title" in line or 'name="description"' in line:
                assert line.strip().endswith('">'), (path, line)
        title, description = said(preview_of(response))
        assert one_line in title + description, path
        assert "\n" not in title + description, path
    assert said(preview_of(client.get(f"/incidents/{incident.pk}/")))[0] == f"{one_line} — {SITE}"


# --- The snapshot -----------------------------------------------------------------------------


def test_the_snapshot_of_the_status_page_carries_the_current_preview(
    visitor, fleet, committed, django_assert_num_queries
):
    snapshot_rebuild()
    with django_assert_num_queries(0):
        before = preview_of(visitor.get("/"))
    assert said(before)[0] == f"All systems operational — {SITE}"

    with committed():  # publishing rebuilds the snapshot after commit
        partial_outage(fleet)

    with django_assert_num_queries(0):
        after = preview_of(visitor.get("/"))
        history = preview_of(visitor.get("/history/"))
    assert (
        said(after)
        == said(history)
        == (
            f"Partial outage — {SITE}",
            f"{OUTAGE_TITLE} on US East 3 since 10:02 UTC. "
            "We are looking into failed logins on one shard.",
        )
    )
    assert after["og:url"] == f"{PUBLIC_URL}/"


# --- Pages that are not the public site -------------------------------------------------------


@pytest.fixture
def alice(fleet):
    """alice owns acme, on US East 3."""
    acme = tailnet_create(
        slug="acme", display_name="acme.com", shard="use3", at=T0 - timedelta(days=10)
    )
    user = get_user_model().objects.create_user("alice", "alice@acme.com", "x")
    Membership.objects.create(user=user, tailnet=acme, role="owner")
    return user


def test_alices_tailnet_page_says_nothing_of_acme_or_the_outage(client, fleet, alice):
    partial_outage(fleet)
    client.force_login(alice)
    for path in ("/t/", "/t/acme/", "/report/"):
        tags = preview_of(client.get(path))
        assert said(tags) == (SITE, previews.NEUTRAL_DESCRIPTION), path
        assert "og:url" not in tags, path
        assert "acme" not in str(tags).lower(), path


def test_a_link_to_a_tailnet_unfurled_by_a_chat_app_says_nothing_either(client, fleet, alice):
    partial_outage(fleet)
    response = client.get("/t/acme/", follow=True)  # anonymous: the sign-in page
    assert response.redirect_chain
    assert said(preview_of(response)) == (SITE, previews.NEUTRAL_DESCRIPTION)


def test_the_admin_carries_no_preview(admin_client, fleet):
    partial_outage(fleet)
    assert preview_of(admin_client.get("/admin/")) == {}
