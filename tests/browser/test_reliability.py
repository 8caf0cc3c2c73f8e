"""The reliability report in a real browser: its charts are drawn with a size, its
table is there with a row per month, and the page loads without an error."""

from playwright.sync_api import expect


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
