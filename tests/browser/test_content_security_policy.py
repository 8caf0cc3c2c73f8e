"""Under the Content-Security-Policy (scripts and styles from this site only) every
page works as before: its script runs, its styles apply and the browser reports no
violation, for a visitor, for alice on acme's pages and for staff in the admin."""

from __future__ import annotations

from tests.conftest import PASSWORD

from .test_customer_view import acme_story, sign_in  # noqa: F401 - the fixture

# Every violation the page reports, from before its first script runs.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`);
});
"""


def visit_all(visit, paths):
    """Each path's violations (none expected), and whatever else went wrong but a
    request cut short by going on to the next page (its icon, on a slow machine)."""
    found = {}
    for path in paths:
        visit.goto(path)
        visit.page.wait_for_load_state("networkidle")
        violations = visit.page.evaluate("() => window.__violations")
        if violations:
            found[path] = violations
    return found, [p for p in visit.problems() if not p.endswith("net::ERR_ABORTED")]


def watched(open_page):
    visit = open_page(None)
    visit.page.add_init_script(RECORD_VIOLATIONS)
    return visit


def test_a_visitors_pages_break_no_rule_of_the_policy(open_page, acme_story):  # noqa: F811
    incident = acme_story["open"]
    paths = [
        "/",
        "/history/",
        "/reliability/",
        f"/incidents/{incident.pk}/",
        "/report/",
        "/subscribe/",
        "/accounts/login/",
        "/accounts/password_reset/",
        "/api/docs/",
    ]
    visit = watched(open_page)
    response = visit.goto("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert visit_all(visit, paths) == ({}, [])


def test_alices_pages_break_no_rule_of_the_policy(open_page, acme_story):  # noqa: F811
    visit = watched(open_page)
    visit.goto("/accounts/login/")
    sign_in(visit, "alice")
    visit.page.wait_for_load_state("networkidle")
    paths = ["/t/", "/t/acme/", "/t/acme/tokens/", "/t/acme/members/", "/t/acme/notifications/"]
    assert visit_all(visit, paths) == ({}, [])


def test_the_admin_breaks_no_rule_of_the_policy(open_page, acme_story):  # noqa: F811
    visit = watched(open_page)
    visit.goto("/admin/login/")
    page = visit.page
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")
    incident = acme_story["open"]
    paths = [
        "/admin/",
        "/admin/incidents/tailnet/",
        f"/admin/incidents/incident/{incident.pk}/change/",
        "/admin/incidents/tailnetimpact/",
        "/admin/reports/report/",
    ]
    assert visit_all(visit, paths) == ({}, [])


def test_an_inline_style_would_be_refused_and_seen(open_page, acme_story):  # noqa: F811
    visit = watched(open_page)
    visit.goto("/")
    visit.page.evaluate("() => document.body.setAttribute('style', 'color: red')")
    visit.page.wait_for_function("() => window.__violations.length > 0")
    (violation,) = visit.page.evaluate("() => window.__violations")
    assert violation.startswith("style-src")
