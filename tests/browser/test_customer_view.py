"""alice in a real browser: she signs in, sees whether acme is affected, and opens
the incident. Data is built with the services and committed (``live_server``
brings a transactional database); the page is served by the live server."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from fleet.services import tailnet_migrate
from incidents.services import (
    WindowSpec,
    incident_create,
    incident_post_update,
    tailnet_impacts_recompute,
)
from probes.models import ProbeRegion, ProbeRollup
from probes.rollup import histogram
from tests.conftest import PASSWORD

from .conftest import artifacts_dir
from .test_status_page import PHONE, axe_problems, database

OPEN_TITLE = "Logins failing in US East 1"
PAST_TITLE = "Coordination server unavailable on US East 1"
M = timedelta(minutes=1)


def _latency(people, now):
    """A week of hourly probe rollups from two regions: US East 1 around 40 ms with
    a slow evening, US East 2 around 120 ms."""
    regions = [ProbeRegion.objects.create(slug=s, name=s) for s in ("nyc", "ams")]
    hour = now.replace(minute=0, second=0, microsecond=0)
    rows = []
    for back in range(1, 7 * 24):
        at = hour - back * timedelta(hours=1)
        for region, extra in zip(regions, (0.0, 25.0), strict=True):
            for shard, base in (("use1", 35.0), ("use2", 110.0)):
                slow = 300.0 if shard == "use1" and at.hour in (18, 19) and back < 48 else 0.0
                latencies = [base + extra + slow + (i % 7) * 4 for i in range(20)]
                rows.append(
                    ProbeRollup(
                        shard=people[shard],
                        region=region,
                        granularity="hour",
                        bucket_start=at,
                        count=20,
                        failures=0,
                        latency_sum_ms=sum(latencies),
                        latency_max_ms=max(latencies),
                        histogram=histogram(latencies),
                    )
                )
    ProbeRollup.objects.bulk_create(rows)


@pytest.fixture
def acme_story(people):
    """acme (alice's) spent two days on US East 2 last week, had an outage three
    days ago and has one right now."""
    now = timezone.now()
    tailnet_migrate(tailnet=people["acme"], to_shard="use2", at=now - timedelta(days=6))
    tailnet_migrate(tailnet=people["acme"], to_shard="use1", at=now - timedelta(days=4))
    _latency(people, now)
    past_start = (now - timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    with transaction.atomic():
        past = incident_create(
            title=PAST_TITLE,
            body="Logins are failing.",
            impact="major",
            started_at=past_start,
            shard_impacts=[WindowSpec("use1", "outage", past_start, past_start + 24 * M)],
            published=True,
            at=past_start,
        )
        incident_post_update(
            incident=past, status="resolved", body="Fixed.", at=past_start + 24 * M
        )
        started = now - 30 * M
        current = incident_create(
            title=OPEN_TITLE,
            body="We are investigating failed logins.",
            impact="major",
            started_at=started,
            shard_impacts=[WindowSpec("use1", "outage", started)],
            published=True,
            at=started,
        )
        for incident in (past, current):
            tailnet_impacts_recompute(incident_id=incident.pk)
    return {"open": current, "past": past, **people}


def sign_in(visit, username: str) -> None:
    page = visit.page
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    # Until the page after signing in has loaded (its stylesheet too).
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("button", name="Sign in").click()


def test_alice_signs_in_sees_whether_acme_was_affected_and_opens_the_incident(
    open_page, acme_story
):
    visit = open_page("/t/acme/")
    page = visit.page
    # Not signed in: the sign-in page, which brings her back to acme afterwards.
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/t/acme/$"))
    sign_in(visit, "alice")
    expect(page).to_have_url(visit.url("/t/acme/"))

    affected = page.locator("#were-we-affected")
    expect(affected.get_by_role("heading", name="Were we affected?")).to_be_visible()
    expect(affected.locator(".answer")).to_have_text(
        "Yes, right now: major outage on your shard, US East 1."
    )
    expect(affected).to_contain_text(
        "Existing connections keep working; logging in, approving devices and changing ACLs "
        "are blocked."
    )
    # Its history: the past outage, exactly 24 minutes; the open one, so far.
    past_row = page.locator(f"#history-{acme_story['past'].pk}")
    expect(past_row.locator(".affected-for")).to_have_text("24 min")
    expect(page.locator(f"#history-{acme_story['open'].pk}")).to_contain_text("so far")
    # The stitched bar with its two migrations, and the latency chart with its table.
    expect(page.locator("#uptime ol.bars .day")).to_have_count(90)
    expect(page.locator("ol.migration-marks li.moved")).to_have_count(2)
    expect(page.locator("ul.migrations li")).to_have_count(2)
    expect(page.locator("svg.latency-chart path.p95")).to_be_visible()
    expect(page.locator("svg.latency-chart path.p99")).to_be_visible()
    # For a person to look at: var/test-artifacts/browser/.
    page.screenshot(
        path=artifacts_dir() / f"tailnet-acme-{database()}.png",
        full_page=True,
        animations="disabled",
    )
    page.get_by_text("The numbers behind the chart").click()
    expect(page.locator(".latency-table tbody tr").first).to_be_visible()
    expect(page.locator(".latency-table tbody")).to_contain_text("US East 2")
    expect(page.locator("#sla tbody tr")).to_have_count(12)

    affected.get_by_role("link", name=OPEN_TITLE).click()
    expect(page).to_have_url(visit.url(f"/incidents/{acme_story['open'].pk}/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(OPEN_TITLE)
    assert visit.problems() == []


def test_bob_never_sees_acme(open_page, acme_story):
    visit = open_page("/accounts/login/?next=/t/")
    sign_in(visit, "bob")
    expect(visit.page.locator(".tailnet-list")).to_contain_text("globex.com")
    expect(visit.page.locator("main")).not_to_contain_text("acme")
    response = visit.page.goto(visit.url("/t/acme/"))
    assert response is not None
    assert response.status == 404


def test_the_tailnet_page_has_no_serious_accessibility_problems(open_page, acme_story):
    visit = open_page("/accounts/login/?next=/t/acme/")
    sign_in(visit, "alice")
    expect(visit.page.locator("#were-we-affected")).to_be_visible()

    problems = axe_problems(visit.page, "/t/acme/", {})

    assert problems == [], "\n".join(problems)


def test_a_phone_never_scrolls_sideways_on_the_tailnet_page(open_page, acme_story):
    visit = open_page("/accounts/login/?next=/t/acme/", **PHONE)
    sign_in(visit, "alice")
    expect(visit.page.locator("#were-we-affected")).to_be_visible()

    width = visit.page.evaluate("() => document.documentElement.scrollWidth")

    assert width <= 390, width
