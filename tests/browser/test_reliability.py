"""The reliability report in a real browser: its charts are drawn with a size, its
table is there with a row per month, and the page loads without an error."""

from playwright.sync_api import expect

from .test_customer_view import acme_story  # noqa: F401 - the fixture


def test_the_report_draws_its_charts_and_shows_its_table(open_page, story):
    visit = open_page(None)
    page = visit.page
    visit.goto("/reliability/")

    expect(page.locator("h1")).to_contain_text("Reliability")
    charts = page.locator("svg.reliability-chart")
    assert charts.count() > 0
    for index in range(charts.count()):
        box = charts.nth(index).bounding_box()
        assert box is not None
        assert box["width"] > 100
        assert box["height"] > 50
    table = page.locator("table.reliability-table")
    expect(table).to_be_visible()
    assert table.locator("tbody tr").count() == 12  # the last 12 UTC months
    assert visit.problems() == []


def test_alice_follows_acmes_page_to_its_reliability_and_sla_statement(
    open_page,
    acme_story,  # noqa: F811
):
    from decimal import Decimal

    from reliability.models import SlaCreditTier, SlaPolicy

    from .test_customer_view import sign_in

    policy = SlaPolicy.objects.create(
        name="Standard", target_percent=Decimal("99.99"), is_default=True
    )
    SlaCreditTier.objects.create(policy=policy, below_percent=Decimal("99.99"), credit_percent=10)
    visit = open_page("/t/acme/")
    page = visit.page
    sign_in(visit, "alice")
    page.get_by_role("link", name="Reliability and SLA").click()

    expect(page.locator("h1")).to_have_text("Reliability of acme.com")
    expect(page.locator("#sla")).to_contain_text("under the Standard policy")
    sla = page.locator("table.sla-table")
    expect(sla).to_be_visible()
    assert sla.locator("tbody tr").count() == 12
    # This month: the 24-minute outage three days ago and the one going on now.
    expect(sla.locator("tbody tr").first).to_contain_text("Missed")
    charts = page.locator("svg.reliability-chart")
    assert charts.count() == 6
    for index in range(charts.count()):
        box = charts.nth(index).bounding_box()
        assert box is not None
        assert box["width"] > 100
    expect(page.locator("table.reliability-table")).to_be_visible()
    assert visit.problems() == []
