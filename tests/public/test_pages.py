"""The public pages as a visitor sees them: /, /incidents/<id>/ and /history/."""

import re
from datetime import date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.services import tailnet_create
from incidents.models import Component, ComponentGroup, Incident, Shard
from incidents.queries import incident_blast_radius, incidents_blast_radius
from incidents.services import WindowSpec, incident_create, incident_post_update
from tests.conftest import T0

M = timedelta(minutes=1)
DAY = timedelta(days=1)
NOW = T0 + 30 * M  # Monday 2026-01-05 10:30 UTC
TODAY = NOW.date()


@pytest.fixture(autouse=True)
def _live_views(settings, tmp_path, time_machine):
    """These tests are about the views: no snapshot in front of them; time stands still."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("SnapshotMiddleware")]
    settings.SNAPSHOT_DIR = tmp_path / "snapshot"
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def tailnets(fleet):
    """acme on US East 1, globex on EU West 1."""
    return [
        tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - DAY),
        tailnet_create(slug="globex", display_name="globex.com", shard="euw1", at=T0 - DAY),
    ]


def get(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def text(html):
    """The page's text, roughly as read: tags dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def outage(fleet, *, published=True, body="Logins are failing on **one** shard.", ended=None):
    return incident_create(
        title="Coordination server unavailable in us-east",
        body=body,
        started_at=T0,
        detected_at=T0 + 2 * M,
        components={fleet["us"]: "partial_outage"},
        shard_impacts=[WindowSpec("use1", "outage", T0, ended)],
        published=published,
        at=T0 + 2 * M,
    )


def day_item(page, slug, day):
    """The <li> of one day of a component's uptime bar."""
    stamp = day.strftime("%Y%m%d")
    match = re.search(
        rf'<li class="day lvl-(\w+)[^"]*"><button type="button" class="bar" '
        rf'id="d-{slug}-{stamp}" aria-(?:describedby|labelledby)="t-{slug}-{stamp}">'
        r"(.*?)</div></li>",
        page,
    )
    assert match, f"no bar for {slug} on {day}"
    return match.group(1), match.group(2)


# --- The status page: scenarios ----------------------------------------------------------


def test_all_operational(client, fleet):
    page = get(client, "/")
    assert "All systems operational" in page
    assert "Open incidents" not in page
    assert "No incidents in the last 14 days." in page
    # The group is collapsible (open: it is short).
    assert re.search(r'<details class="group" id="group-\d+" open>', page)
    assert "Coordination service" in page
    for slug in ("coordination-us-east", "coordination-eu-west"):
        bar = re.search(rf'<ol class="bars" id="bars-{slug}".*?</ol>', page).group(0)
        assert bar.count('<li class="day ') == 90
        assert bar.count('<li class="day lvl-ok') == 90
    assert text(page).count("100.00% uptime (90 days)") == 2


def test_a_long_group_is_folded_while_all_is_well(client, fleet):
    group = ComponentGroup.objects.get(name="Coordination service")
    for k in range(5):
        Component.objects.create(slug=f"region-{k}", name=f"Region {k}", group=group)
    assert re.search(r'<details class="group" id="group-\d+">', get(client, "/"))
    incident_create(
        title="x", body="x", components={fleet["eu"]: "partial_outage"}, published=True, at=T0
    )
    assert re.search(r'<details class="group" id="group-\d+" open>', get(client, "/"))


def test_an_open_incident(client, fleet, tailnets, committed):
    with committed():
        outage(fleet)
    page = get(client, "/")
    words = text(page)

    assert '<section class="banner status-partial_outage"' in page
    assert "Partial outage: Coordination (us-east)" in words
    assert "Open incidents" in words
    assert "Coordination server unavailable in us-east" in words
    # Plain words: an outage, for how many tailnets, and what kept working.
    assert "Outage Who 1 tailnet, 50.00% of tailnets, on US East 1" in words
    assert (
        "Existing connections keep working; logging in, approving devices and changing "
        "ACLs are blocked." in words
    )
    # Its latest update, Markdown rendered.
    assert "Logins are failing on <strong>one</strong> shard." in page
    # The group with the problem is open; the internal shard slug is never shown.
    assert re.search(r'<details class="group" id="group-\d+" open>', page)
    assert "use1" not in page
    assert "Partialoutage" not in page


def test_an_incident_being_monitored_says_what_happened(client, fleet, tailnets, committed):
    with committed():
        incident = outage(fleet, ended=T0 + 20 * M)
        incident_post_update(
            incident=incident,
            status="monitoring",
            body="Fixed, watching.",
            components={fleet["us"]: "operational"},
            at=T0 + 21 * M,
        )
    words = text(get(client, "/"))
    assert "All systems operational" in words
    assert "Open incidents" in words
    assert "Monitoring" in words
    assert (
        "Existing connections kept working; logging in, approving devices and changing "
        "ACLs were blocked." in words
    )


def test_a_maintenance_in_progress(client, fleet):
    incident_create(
        title="Upgrading EU West 1",
        body="Live-migrating tailnets first; nobody should notice.",
        kind="maintenance",
        status="in_progress",
        impact="maintenance",
        scheduled_for=T0,
        scheduled_until=T0 + 120 * M,
        components={fleet["eu"]: "under_maintenance"},
        published=True,
        at=T0,
    )
    words = text(get(client, "/"))
    assert "Under maintenance: Coordination (eu-west)" in words
    assert "Maintenance in progress" in words
    assert "Upgrading EU West 1" in words
    assert "No impact expected What is happening Nothing is affected." in words
    assert "Live-migrating tailnets first; nobody should notice." in words


def test_an_upcoming_maintenance(client, fleet):
    incident_create(
        title="Hardware upgrade of EU West 1",
        body="We don't expect any downtime.",
        kind="maintenance",
        impact="maintenance",
        scheduled_for=T0 + 2 * DAY,
        scheduled_until=T0 + 2 * DAY + 120 * M,
        published=True,
        at=T0 - DAY,
    )
    page = get(client, "/")
    words = text(page)
    assert "All systems operational" in words
    assert "Upcoming maintenance" in words
    assert "Maintenance · Scheduled" in words
    assert "What to expect Nothing is expected to be affected." in words
    assert "Planned for 2 h" in words
    assert (
        '<time class="utc" datetime="2026-01-07T10:00:00Z" data-style="datetime">'
        "Jan 7, 2026, 10:00 UTC</time>" in page
    )
    assert "We don&#x27;t expect any downtime." in page or "We don't expect" in page


@pytest.fixture
def month(fleet):
    """A month of incidents on the us-east coordination service and the API."""
    api = Component.objects.create(
        slug="api", name="API", kind="api", created_at=T0 - 10 * DAY + 12 * 60 * M
    )
    both = incident_create(
        title="Every us-east shard down",
        body="x",
        started_at=T0 - 3 * DAY,
        shard_impacts=[
            WindowSpec("use1", "outage", T0 - 3 * DAY, T0 - 3 * DAY + 30 * M),
            WindowSpec("use2", "outage", T0 - 3 * DAY, T0 - 3 * DAY + 30 * M),
        ],
        published=True,
        at=T0 - 3 * DAY,
    )
    one = incident_create(
        title="One us-east shard down",
        body="x",
        started_at=T0 - 5 * DAY,
        shard_impacts=[WindowSpec("use1", "outage", T0 - 5 * DAY, T0 - 5 * DAY + 60 * M)],
        published=True,
        at=T0 - 5 * DAY,
    )
    also = incident_create(
        title="Slow us-east the same day",
        body="x",
        started_at=T0 - 5 * DAY + 120 * M,
        shard_impacts=[
            WindowSpec("use2", "degraded", T0 - 5 * DAY + 120 * M, T0 - 5 * DAY + 140 * M)
        ],
        published=True,
        at=T0 - 5 * DAY,
    )
    slow = incident_create(
        title="Slow us-east",
        body="x",
        started_at=T0 - 8 * DAY,
        shard_impacts=[WindowSpec("use1", "degraded", T0 - 8 * DAY, T0 - 8 * DAY + 20 * M)],
        published=True,
        at=T0 - 8 * DAY,
    )
    draft = incident_create(
        title="A draft outage",
        body="x",
        started_at=T0 - 12 * DAY,
        shard_impacts=[
            WindowSpec("use1", "outage", T0 - 12 * DAY, T0 - 12 * DAY + 60 * M),
            WindowSpec("use2", "outage", T0 - 12 * DAY, T0 - 12 * DAY + 60 * M),
        ],
        at=T0 - 12 * DAY,
    )
    return {"api": api, "both": both, "one": one, "also": also, "slow": slow, "draft": draft}


def test_a_month_of_incidents_colours_and_labels_the_days(client, month):
    page = get(client, "/")
    us = "coordination-us-east"

    level, html = day_item(page, us, TODAY - 3 * DAY)
    assert level == "outage"  # every shard of the component was down: a major outage
    assert "Fri, Jan 2, 2026: Outage, 97.91% uptime, 1 incident" in html
    assert "<li>Outage: 30 min</li>" in html
    assert f'<a href="/incidents/{month["both"].pk}/">Every us-east shard down</a>' in html

    level, html = day_item(page, us, TODAY - 5 * DAY)
    assert level == "partial"  # one of two shards down
    assert "Partial outage, 98.75% uptime, 2 incidents" in html
    assert "<li>Partial outage: 1 h</li>" in html
    assert "<li>Degraded performance: 20 min</li>" in html
    links = re.findall(r'<a href="/incidents/(\d+)/">', html)
    assert links == [str(month["one"].pk), str(month["also"].pk)]

    level, html = day_item(page, us, TODAY - 8 * DAY)
    assert level == "degraded"
    assert "Degraded performance, 100.00% uptime, 1 incident" in html  # slow is not down

    level, html = day_item(page, us, TODAY - 12 * DAY)
    assert level == "ok"  # the draft counts for nothing
    assert "A draft outage" not in page
    assert "No incidents" in html

    # The API existed for 9.5 days: grey before, a day with half its data, then ok.
    level, html = day_item(page, "api", TODAY - 11 * DAY)
    assert (level, "No data for this day" in html) == ("none", True)
    level, html = day_item(page, "api", TODAY - 10 * DAY)
    assert (level, "100.00% uptime" in html) == ("ok", True)
    assert day_item(page, "api", TODAY)[0] == "ok"

    # Each day is a focusable button described by its tooltip, which is in the page.
    assert page.count('<div class="tip" role="tooltip" id="t-coordination-us-east-') == 90
    # 30 outage minutes and 60 partial (x0.3) over 89 days and 10h30: 48 of 128,790.
    assert "99.96% uptime (90 days)" in text(page)


def test_the_uptime_bars_legend_names_every_level(client, fleet):
    words = text(get(client, "/"))
    assert "No downtime Degraded (slow) Partial outage Outage No data" in words


def test_recent_incidents_are_listed_with_plain_words(client, month):
    words = text(get(client, "/"))
    assert "Past incidents (last 14 days)" in words
    assert "Every us-east shard down" in words
    assert "Slow, not down" in words
    assert "A draft outage" not in words


# --- Escaping and drafts -------------------------------------------------------------------

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_html_in_names_titles_and_bodies_is_escaped_everywhere(client, fleet, committed):
    group = ComponentGroup.objects.create(name=f"Group {EVIL}")
    component = Component.objects.create(slug="evil", name=f"Component {EVIL}", group=group)
    Shard.objects.create(slug="evil1", region="x", public_name=f"Shard {EVIL}", component=component)
    with committed():
        incident = incident_create(
            title=f"Title {EVIL}",
            body=f"{EVIL} [x](javascript:alert(2)) <a href='javascript:alert(3)'>y</a>",
            started_at=T0,
            components={component: "major_outage"},
            shard_impacts=[WindowSpec("evil1", "outage", T0)],
            published=True,
            at=T0,
        )
    for path in ("/", f"/incidents/{incident.pk}/", "/history/", "/history/?component=evil"):
        page = get(client, path)
        assert "<script>alert" not in page, path
        assert "onerror=" not in page.replace("onerror=alert(1)&gt;", ""), path
        assert "javascript:" not in page, path
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page, path


def test_markdown_in_updates_and_postmortems_is_sanitized(client, fleet):
    incident = outage(
        fleet,
        body="<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>",
    )
    incident.postmortem = "**Bold** <iframe src=//evil></iframe> <script>alert(4)</script>"
    incident.postmortem_published_at = T0
    incident.save()
    page = get(client, f"/incidents/{incident.pk}/")
    assert "<script>alert" not in page
    assert "javascript:" not in page
    assert "onerror" not in page
    assert "<iframe" not in page
    assert "<strong>Bold</strong>" in page


def test_drafts_never_appear(client, fleet, tailnets, committed):
    with committed():
        draft = outage(fleet, published=False)
    assert client.get(f"/incidents/{draft.pk}/").status_code == 404
    for path in ("/", "/history/", "/history/?component=coordination-us-east"):
        page = get(client, path)
        assert "Coordination server unavailable" not in page, path
        assert "All systems operational" in page or path != "/"


def test_an_unknown_incident_is_404(client, db):
    assert client.get("/incidents/999/").status_code == 404


# --- An incident's page ------------------------------------------------------------------------


@pytest.fixture
def resolved(fleet, tailnets, committed):
    with committed():
        incident = outage(fleet)
        incident_post_update(
            incident=incident, status="identified", body="A stuck election.", at=T0 + 10 * M
        )
        incident_post_update(
            incident=incident,
            status="resolved",
            body="Fixed.",
            components={fleet["us"]: "operational"},
            at=T0 + 24 * M,
        )
    return incident


def test_the_incident_page_tells_the_whole_story(client, resolved):
    page = get(client, f"/incidents/{resolved.pk}/")
    words = text(page)

    assert "Coordination server unavailable in us-east" in words
    assert "Outage Who 1 tailnet, 50.00% of tailnets, on US East 1" in words
    assert (
        "Existing connections kept working; logging in, approving devices and changing "
        "ACLs were blocked." in words
    )
    assert "Duration 24 min" in words
    assert "Time to detect 2 min" in words
    assert "Time to resolve 22 min after detection" in words
    assert "Blast radius 1 tailnet, 50.00% of tailnets" in words
    # Affected components and shards, by public name and region; never the slug.
    # The component at the worst status an operator gave it.
    assert "Components Coordination (us-east): Partial outage (at worst)" in words
    assert "Coordination (us-east) US East 1 Outage" in words
    assert "use1" not in page
    # The timeline, newest first, each update with a permalink anchor.
    assert words.index("Resolved") < words.index("Identified") < words.index("Investigating")
    assert page.count('<li id="update-') == 3
    assert (
        '<time class="utc" datetime="2026-01-05T10:24:00Z" data-style="datetime">'
        "Jan 5, 2026, 10:24 UTC</time>" in page
    )


def test_a_postmortem_shows_once_it_is_published(client, resolved):
    resolved.postmortem = "### What happened\n\nA *stuck* election."
    resolved.postmortem_published_at = NOW + DAY
    resolved.save()
    assert "Postmortem" not in get(client, f"/incidents/{resolved.pk}/")

    resolved.postmortem_published_at = NOW - M
    resolved.save()
    page = get(client, f"/incidents/{resolved.pk}/")
    assert "Postmortem" in page
    assert "<h3>What happened</h3>" in page
    assert "<em>stuck</em>" in page


def test_a_maintenance_page_shows_its_schedule_and_early_detection(client, fleet):
    incident = incident_create(
        title="Urgent repair",
        body="Taking US East 1 offline.",
        kind="maintenance",
        impact="maintenance",
        status="in_progress",
        scheduled_for=T0,
        scheduled_until=T0 + 45 * M,
        detected_at=T0 - 40 * M,
        shard_impacts=[
            WindowSpec("use1", "outage", T0, T0 + 24 * M),
            WindowSpec("use2", "degraded", T0 + M, T0 + 28 * M),
        ],
        published=True,
        at=T0,
    )
    incident_post_update(incident=incident, status="completed", body="Done.", at=T0 + 29 * M)
    words = text(get(client, f"/incidents/{incident.pk}/"))
    assert "Planned outage" in words
    # One shard down, its neighbour only slow: each place in its own words.
    assert (
        "Existing connections kept working; on US East 1, logging in, approving devices "
        "and changing ACLs were blocked; on US East 2, they were only slow." in words
    )
    assert "Time to resolve 29 min from the start" in words
    assert "Scheduled Jan 5, 2026, 10:00 UTC \u2013 10:45 UTC" in words
    assert "Time to detect found 40 min before any impact" in words
    assert "Completed Jan 5, 2026, 10:29 UTC" in words


# --- History ------------------------------------------------------------------------------------


@pytest.fixture
def five_months(fleet):
    """One incident a month from September 2025 to January 2026, EU in November."""
    made = {}
    for months_ago, (when, component) in enumerate(
        [
            (datetime(2026, 1, 2, 8, 0, tzinfo=T0.tzinfo), "us"),
            (datetime(2025, 12, 15, 8, 0, tzinfo=T0.tzinfo), "us"),
            (datetime(2025, 11, 30, 23, 0, tzinfo=T0.tzinfo), "eu"),
            (datetime(2025, 10, 1, 0, 0, tzinfo=T0.tzinfo), "us"),
            (datetime(2025, 9, 20, 12, 0, tzinfo=T0.tzinfo), "us"),
        ]
    ):
        made[when.date()] = incident_create(
            title=f"Incident {when:%B %Y}",
            body="x",
            started_at=when,
            components={fleet[component]: "degraded_performance"},
            published=True,
            at=when,
        )
        incident_post_update(
            incident=made[when.date()], status="resolved", body="y", at=when + 30 * M
        )
        del months_ago
    return made


def month_titles(page):
    return re.findall(r'<h2 id="month-[\d-]+">([^<]+)</h2>', page)


def test_history_is_by_month_three_a_page(client, five_months):
    page = get(client, "/history/")
    assert month_titles(page) == ["January 2026", "December 2025", "November 2025"]
    words = text(page)
    assert words.index("Incident January 2026") < words.index("Incident December 2025")
    assert "Incident November 2025" in words
    assert "Incident October 2025" not in words
    assert "Page 1 of 2" in words
    assert 'href="?page=2"' in page

    page = get(client, "/history/?page=2")
    assert month_titles(page) == ["October 2025", "September 2025", "August 2025"]
    assert "Incident September 2025" in text(page)
    assert "No incidents this month." in text(page)  # August
    assert 'href="?page=1"' in page


def test_a_page_that_does_not_exist_is_404(client, five_months):
    assert client.get("/history/?page=3").status_code == 404


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "²", "\u0661", "9" * 5000])
def test_a_page_number_that_is_not_one_is_a_400_naming_it(client, five_months, page):
    response = client.get("/history/", {"page": page})
    assert response.status_code == 400
    assert "page must be a whole number" in response.content.decode()


def test_history_filtered_by_component(client, five_months):
    page = get(client, "/history/?component=coordination-eu-west")
    words = text(page)
    assert "Incident history: Coordination (eu-west)" in words
    assert "Incident November 2025" in words
    assert "Incident January 2026" not in words
    assert "No incidents affecting Coordination (eu-west) this month." in words
    assert '<option value="coordination-eu-west" selected>' in page


def test_history_filter_counts_shard_impact_too(client, fleet):
    incident_create(
        title="EU shard down",
        body="x",
        started_at=T0 - DAY,
        shard_impacts=[WindowSpec("euw1", "outage", T0 - DAY, T0 - DAY + 10 * M)],
        published=True,
        at=T0 - DAY,
    )
    assert "EU shard down" in get(client, "/history/?component=coordination-eu-west")
    # The head's link preview says the current state (the incident is still open)
    # whatever the filter; the page itself lists only the component's incidents.
    _, body = get(client, "/history/?component=coordination-us-east").split("</head>", 1)
    assert "EU shard down" not in body


def test_an_unknown_component_is_an_empty_history_with_a_message(client, five_months):
    page = get(client, "/history/?component=%3Cscript%3Enope")
    assert "There is no component called “&lt;script&gt;nope”." in page
    assert "Incident January 2026" not in page
    assert '<meta name="robots" content="noindex">' in page


def test_an_empty_history(client, db):
    page = get(client, "/history/")
    assert "Page 1 of 1" in text(page)
    assert text(page).count("No incidents this month.") == 3


# --- What a snapshot layer relies on -------------------------------------------------------------


PUBLIC_PAGES = ["/", "/history/", "/history/?page=1"]


def test_pages_are_the_same_for_everyone_and_set_no_cookie(client, admin_client, resolved):
    for path in [*PUBLIC_PAGES, f"/incidents/{resolved.pk}/"]:
        anonymous = client.get(path)
        staff = admin_client.get(path)
        assert anonymous.content == staff.content, path
        assert not anonymous.cookies, path
        assert "Cookie" not in anonymous.get("Vary", ""), path
        assert "csrfmiddlewaretoken" not in anonymous.content.decode(), path


def test_pages_need_no_inline_script_or_style(client, resolved, month):
    for path in [*PUBLIC_PAGES, f"/incidents/{resolved.pk}/"]:
        page = get(client, path)
        for tag in re.findall(r"<script\b[^>]*>", page):
            assert "src=" in tag, (path, tag)
        assert not re.search(r"<script\b[^>]*>[^<]+</script>", page), path
        assert not re.search(r"\son[a-z]+\s*=", page), path
        assert " style=" not in page, path
        assert "<style" not in page, path


def test_live_regions_are_marked_for_the_script(client, fleet):
    page = get(client, "/")
    for region in ("banner", "incidents", "components"):
        assert f'data-live="{region}"' in page
    assert '<p class="live-status" id="live-status" role="status" aria-live="polite" hidden>' in (
        page
    )
    assert '<script src="/static/js/status.js" defer></script>' in page


def _queries(client, path):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def _grow(fleet, n):
    """n more components, shards, tailnets and incidents, each with windows and updates."""
    group = ComponentGroup.objects.create(name="More", position=5)
    for k in range(n):
        component = Component.objects.create(
            slug=f"more-{k}", name=f"More {k}", group=group, kind="coordination"
        )
        Shard.objects.create(slug=f"m{k}", region="x", public_name=f"M {k}", component=component)
        tailnet_create(slug=f"t{k}", display_name="t", shard=f"m{k}", at=T0 - 40 * DAY)
        for j, days_ago in enumerate((1, 20, 35)):
            start = T0 - days_ago * DAY + k * M
            incident = incident_create(
                title=f"i{k}-{j}",
                body="x",
                started_at=start,
                components={component: "partial_outage", fleet["eu"]: "degraded_performance"},
                shard_impacts=[WindowSpec(f"m{k}", "outage", start, start + 5 * M)],
                published=True,
                at=start,
            )
            incident_post_update(incident=incident, status="identified", body="y", at=start + M)
            incident_post_update(incident=incident, status="resolved", body="z", at=start + 5 * M)
    incident_create(title="open", body="x", started_at=T0, published=True, at=T0)
    incident_create(
        title="upcoming",
        body="x",
        kind="maintenance",
        impact="maintenance",
        scheduled_for=T0 + DAY,
        scheduled_until=T0 + DAY + 60 * M,
        published=True,
        at=T0,
    )


def test_each_page_is_a_constant_number_of_queries(
    client, fleet, tailnets, committed, django_assert_max_num_queries
):
    with committed():
        first = outage(fleet, ended=T0 + 10 * M)
        incident_create(
            title="EU slow",
            body="x",
            started_at=T0 - DAY,
            components={fleet["eu"]: "degraded_performance"},
            shard_impacts=[WindowSpec("euw1", "degraded", T0 - DAY, T0 - DAY + 5 * M)],
            published=True,
            at=T0 - DAY,
        )
    paths = [
        "/",
        "/history/",
        "/history/?component=coordination-eu-west",
        f"/incidents/{first.pk}/",
    ]
    small = {path: _queries(client, path) for path in paths}

    with committed():
        _grow(fleet, 12)
    large = {path: _queries(client, path) for path in paths}

    assert large == small
    limits = {"/": 22, "/history/": 17, f"/incidents/{first.pk}/": 7}
    for path, limit in limits.items():
        with django_assert_max_num_queries(limit):
            client.get(path)


def test_blast_radii_in_one_go_match_one_at_a_time(fleet, tailnets, committed):
    """The pages count every incident's blast radius in three queries; the answer
    is the one ``incident_blast_radius`` gives for each alone."""
    tailnet_create(slug="initech", display_name="i", shard="use2", at=T0 - DAY)
    tailnet_create(slug="late", display_name="l", shard="use1", at=T0 + 15 * M)
    with committed():
        incidents = [
            outage(fleet, ended=T0 + 10 * M),
            incident_create(
                title="mixed",
                body="x",
                started_at=T0,
                shard_impacts=[
                    WindowSpec("use1", "degraded", T0, T0 + 5 * M),
                    WindowSpec("use1", "outage", T0 + 5 * M, T0 + 20 * M),
                    WindowSpec("use2", "degraded", T0, T0 + 20 * M),
                ],
                published=True,
                at=T0,
            ),
            incident_create(
                title="open",
                body="x",
                started_at=T0,
                shard_impacts=[WindowSpec("euw1", "partial", T0)],
            ),
            incident_create(title="no windows", body="x", started_at=T0, published=True),
        ]
    together = incidents_blast_radius(incidents=incidents, as_of=NOW)
    assert together == {i.pk: incident_blast_radius(incident=i, as_of=NOW) for i in incidents}
    assert together[incidents[1].pk].by_level == {"outage": 2, "degraded": 1}


def test_history_bars_and_pages_handle_an_instant_incident(client, fleet):
    incident = incident_create(
        title="Blip", body="x", started_at=T0 - DAY, status="resolved", published=True, at=T0 - DAY
    )
    assert incident.resolved_at == incident.started_at
    assert "Blip" in get(client, "/history/")
    assert "Blip" in get(client, f"/incidents/{incident.pk}/")
    _, html = day_item(get(client, "/"), "coordination-us-east", TODAY - DAY)
    assert "No incidents" in html  # named no component: not on any bar


def test_healthz_answers(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_incident_model_still_counts_published_only(db, fleet):
    outage(fleet, published=False)
    assert Incident.objects.filter(published=True).count() == 0
    assert date(2026, 1, 5) == TODAY
