"""The report form in a real browser, with the keyboard only: no mouse, no script
needed, the honeypot out of the way, the answer on the next page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import Page, expect

from fleet.services import tailnet_create
from incidents.models import Component, Shard
from incidents.services import WindowSpec, incident_create
from reports.models import Report

from .test_status_page import ALL_RULES, CONTRAST_ONLY, axe_problems

MAX_TABS = 40
EVIL = "<b>bold</b> & <script>alert(1)</script>"


@pytest.fixture
def fleet_with_an_outage(transactional_db, settings, request):
    # A cache of its own: no rate-limit counter from another test reaches this one.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"browser-{request.node.nodeid}",
        }
    }
    now = timezone.now()
    with transaction.atomic():
        us = Component.objects.create(
            slug="coordination-us-east",
            name="Coordination (us-east)",
            kind="coordination",
            region="us-east",
            created_at=now - timedelta(days=30),
        )
        Shard.objects.create(slug="use1", region="us-east", public_name="US East 1", component=us)
        tailnet_create(
            slug="acme", display_name="acme.com", shard="use1", at=now - timedelta(days=9)
        )
        incident_create(
            title="Logins failing in us-east",
            body="Investigating.",
            started_at=now - timedelta(minutes=20),
            components={us: "partial_outage"},
            shard_impacts=[WindowSpec("use1", "outage", now - timedelta(minutes=20))],
            published=True,
            at=now - timedelta(minutes=19),
        )


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until ``selector`` has focus (failing after MAX_TABS presses)."""
    target = page.locator(selector)
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_a_report_is_sent_with_the_keyboard_only(open_page, fleet_with_an_outage):
    visit = open_page("/report/")
    page = visit.page
    expect(page.get_by_role("heading", name="Report a problem")).to_be_visible()
    expect(page.get_by_role("link", name="Report a problem")).to_have_attribute(
        "aria-current", "page"
    )

    # The first radio button, then the arrow keys choose within the group.
    tab_to(page, "#id_what_0")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="Approving a device")).to_be_checked()

    tab_to(page, "#id_tailnet")
    page.keyboard.type("acme")
    page.keyboard.press("Tab")
    expect(page.locator("#id_email")).to_be_focused()
    page.keyboard.type("ops@acme.example")
    page.keyboard.press("Tab")
    expect(page.locator("#id_description")).to_be_focused()
    page.keyboard.type(EVIL)
    # The honeypot is skipped: from the description, Tab goes straight to the button.
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send report")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/report/thanks/[A-Za-z0-9_-]{20,}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your report is saved")
    answer = page.locator("#answer")
    expect(answer).to_contain_text("Your report has been passed to the on-call team.")
    expect(answer).to_contain_text("Logins failing in us-east")
    expect(answer).not_to_contain_text("US East 1")  # a typed name is not a membership
    expect(page.locator(".report-summary")).to_contain_text(EVIL)  # as text, not markup
    assert page.locator(".report-summary b, .report-summary script").count() == 0

    report = Report.objects.get()
    assert (report.what, report.tailnet_name, report.honeypot) == ("approve_device", "acme", False)
    assert report.email == "ops@acme.example"
    assert visit.problems() == []


def test_errors_are_summarised_focused_and_linked_to_their_fields(open_page, fleet_with_an_outage):
    visit = open_page("/report/")
    page = visit.page
    tab_to(page, "button[type=submit]")
    page.keyboard.press("Enter")

    page.wait_for_load_state("load")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Choose what you were trying to do.")
    page.keyboard.press("Tab")
    expect(summary.get_by_role("link", name="Choose what you were trying to do.")).to_be_focused()
    assert not Report.objects.exists()
    problems = axe_problems(page, "/report/ with errors", ALL_RULES)
    assert problems == [], "\n".join(problems)


def test_axe_finds_no_serious_problems_on_the_form_and_its_answer(open_page, fleet_with_an_outage):
    visit = open_page("/report/")
    page = visit.page
    problems = axe_problems(page, "/report/ (light)", ALL_RULES)
    page.emulate_media(color_scheme="dark")
    problems += axe_problems(page, "/report/ (dark)", CONTRAST_ONLY)
    page.get_by_role("radio", name="Logging in").check()
    page.get_by_role("button", name="Send report").click()
    expect(page).to_have_url(re.compile(r"/report/thanks/"))
    page.wait_for_load_state("load")  # its stylesheet applied before axe looks at colours
    problems += axe_problems(page, "/report/thanks/ (dark)", CONTRAST_ONLY)
    page.emulate_media(color_scheme="light")
    problems += axe_problems(page, "/report/thanks/ (light)", ALL_RULES)
    assert problems == [], "\n".join(problems)
