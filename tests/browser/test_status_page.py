"""The public pages in a real browser: what a visitor sees, with a mouse, a keyboard,
a phone, dark mode and a screen reader's view (axe-core).

Each test builds its data with the services (conftest.py's ``story``: a small fleet
with a past outage, a slow day, an open incident and an upcoming maintenance); the
screenshots use the seeded demo fleet. Every wait is Playwright's own (auto-waiting
actions, ``expect``), bounded by the context's timeouts; the live-update poll is
reached with Playwright's fake clock, not by waiting for it.
"""

from __future__ import annotations

import re
import struct
from datetime import date
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from django.conf import settings
from playwright.sync_api import Page, expect

from .conftest import Story, Visit, artifacts_dir

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
# status.js polls the summary first 5-15 s after load (jittered).
FIRST_POLL_MAX_MS = 15_000
# More than every focusable element of the status page (about 25 with ``story``).
MAX_TAB_STOPS = 150


def path_of(story: Story, name: str) -> str:
    """A page by name; "incident" is the open incident's page."""
    return f"/incidents/{story.open_incident_id}/" if name == "incident" else name


def database() -> str:
    engine = settings.DATABASES["default"]["ENGINE"]
    return "postgresql" if "postgresql" in engine else "sqlite"


# --- Colours -----------------------------------------------------------------------------


def luminance(css_colour: str) -> float:
    """WCAG relative luminance of a computed ``rgb(r, g, b)`` / ``rgba(...)``."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", css_colour)]
    assert len(numbers) >= 3, css_colour

    def linear(channel: float) -> float:
        channel /= 255
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    red, green, blue = (linear(n) for n in numbers[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: float, second: float) -> float:
    light, dark = max(first, second), min(first, second)
    return (light + 0.05) / (dark + 0.05)


def body_colours(page: Page) -> tuple[float, float]:
    """(background, text) luminance of the page body."""
    background, text = page.evaluate(
        "() => { const s = getComputedStyle(document.body); return [s.backgroundColor, s.color]; }"
    )
    return luminance(background), luminance(text)


# --- 1. The pages load cleanly ---------------------------------------------------------------


def test_the_status_page_loads_without_errors_and_polls_for_updates(open_page, story):
    visit = open_page(None)
    page = visit.page
    page.clock.install()  # the poll timer, reached below without waiting for it
    visit.goto("/")

    expect(page).to_have_title(re.compile(r"Coordination service status$"))
    expect(page.locator("#live-banner h1")).to_be_visible()
    # The stylesheet applied: every day's tooltip is in the HTML, hidden until asked for.
    expect(page.locator(".tip").first).to_be_hidden()
    # The script ran: local times beside the UTC ones (the browser is in Amsterdam), and
    # one Tab stop per uptime bar (roving tabindex on today).
    expect(page.locator("time.utc + .local").first).to_contain_text("your time")
    rows, stops = page.evaluate(
        """() => [document.querySelectorAll("ol.bars").length,
                  document.querySelectorAll('ol.bars .bar[tabindex="0"]').length]"""
    )
    assert rows > 0
    assert stops == rows

    # The live update: its first poll of the summary, answered, and said so.
    with page.expect_response(lambda r: r.url.endswith("/api/v2/summary.json")) as polled:
        page.clock.fast_forward(FIRST_POLL_MAX_MS + 1_000)
    assert polled.value.status == 200
    assert "page" in polled.value.json()
    expect(page.locator("#live-status")).to_have_text(re.compile(r"^Last checked "))

    loaded = {urlpath(r.url): r.status for r in visit.responses}
    assert loaded.get("/static/css/status.css") == 200, loaded
    assert loaded.get("/static/js/status.js") == 200, loaded
    assert visit.problems() == []


def urlpath(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url).split("?")[0]


def test_the_history_and_incident_pages_load_without_errors(open_page, story):
    for name in ("/history/", "incident"):
        visit = open_page(path_of(story, name))
        expect(visit.page.locator("main h1").first).to_be_visible()
        expect(visit.page.locator("time.utc + .local").first).to_contain_text("your time")
        assert visit.problems() == [], name


# --- 2. A day's tooltip on keyboard focus ---------------------------------------------------


def test_a_day_bar_shows_its_tooltip_on_keyboard_focus(open_page, story):
    visit = open_page("/")
    page = visit.page
    days = page.locator("ol.bars .day")
    # The first shown day, of any component, with an incident that day.
    day = days.filter(has=page.locator(".tip-incidents a")).filter(visible=True).first
    bar, tip = day.locator(".bar"), day.locator(".tip")
    row = day.locator("xpath=ancestor::ol[1]")
    row_bars = row.locator(".day > .bar")
    expect(tip).to_be_hidden()

    # The row is one Tab stop (today); the arrow keys, Home and End move between days.
    today = row_bars.last
    expect(today).to_have_attribute("tabindex", "0")
    today.focus()
    page.keyboard.press("ArrowLeft")
    expect(row_bars.nth(-2)).to_be_focused()
    expect(row_bars.nth(-2)).to_have_attribute("tabindex", "0")
    expect(today).to_have_attribute("tabindex", "-1")
    page.keyboard.press("Home")
    expect(row_bars.first).to_be_focused()
    page.keyboard.press("End")
    expect(today).to_be_focused()

    bar.focus()
    expect(tip).to_be_visible()
    stamp = tip.locator(".tip-head time").get_attribute("datetime")
    shown = date.fromisoformat(stamp)
    expect(tip.locator(".tip-head time")).to_have_text(
        f"{shown:%a}, {shown:%b} {shown.day}, {shown.year}"
    )
    assert bar.get_attribute("id").endswith(shown.strftime("%Y%m%d"))
    link = tip.locator(".tip-incidents a").first
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", re.compile(r"^/incidents/\d+/$"))
    # The bar is described by its tooltip, for screen readers.
    expect(bar).to_have_attribute("aria-describedby", tip.get_attribute("id"))

    # Escape hides it; leaving the day forgets that; coming back shows it again.
    page.keyboard.press("Escape")
    expect(tip).to_be_hidden()
    expect(bar).to_be_focused()
    bar.blur()
    expect(tip).to_be_hidden()
    expect(day).not_to_have_class(re.compile(r"\btip-dismissed\b"))
    bar.focus()
    expect(tip).to_be_visible()

    # Its links are reachable by keyboard, and lead to the incident.
    href = link.get_attribute("href")
    page.keyboard.press("Tab")
    expect(link).to_be_focused()
    expect(tip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page).to_have_url(visit.url(href))
    expect(page.locator("ol.timeline > li").first).to_be_visible()


# --- 3. From the status page to an incident's timeline -----------------------------------------


def test_an_open_incident_link_opens_its_timeline(open_page, story):
    visit = open_page("/")
    page = visit.page
    card = page.locator("#live-incidents article.card").filter(has_text=story.open_incident_title)
    expect(card).to_have_count(1)
    expect(card.locator(".latest .prose")).to_contain_text(story.latest_update_text)

    card.get_by_role("link", name=story.open_incident_title).click()

    expect(page).to_have_url(visit.url(f"/incidents/{story.open_incident_id}/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(story.open_incident_title)
    updates = page.locator("ol.timeline > li")
    expect(updates).to_have_count(2)
    # Newest first.
    expect(updates.locator(".pill")).to_have_text(["Identified", "Investigating"])
    expect(updates.first.locator(".prose")).to_have_text(story.latest_update_text)
    expect(updates.nth(1).locator(".prose strong")).to_have_text("one")  # Markdown
    stamps = updates.locator("h3 time.utc").evaluate_all(
        "times => times.map(t => t.getAttribute('datetime'))"
    )
    assert stamps == sorted(stamps, reverse=True), stamps
    # Blast radius, in words, and what kept working.
    radius = page.locator(".facts > div").filter(has=page.locator("dt", has_text="Blast radius"))
    expect(radius.locator("dd")).to_have_text(
        re.compile(r"^[\d,]+ tailnets?, \d+(\.\d+)?% of tailnets$")
    )
    expect(page.locator(".words")).to_contain_text("Existing connections keep working")


# --- 4. Dark mode ---------------------------------------------------------------------------


def test_dark_mode_renders_light_text_on_a_dark_background(open_page, story):
    page = open_page("/").page
    background, text = body_colours(page)
    assert background > 0.8, background
    assert text < 0.1, text

    page.emulate_media(color_scheme="dark")
    background, text = body_colours(page)
    assert background < 0.05, f"the body background is not dark: luminance {background:.3f}"
    assert text > 0.6, f"the text is not light: luminance {text:.3f}"
    assert contrast(background, text) >= 7, contrast(background, text)
    # The cards and the banner follow too.
    card = luminance(page.locator(".banner").evaluate("b => getComputedStyle(b).backgroundColor"))
    assert card < 0.05, card


# --- 5. axe-core: no serious or critical violations -----------------------------------------


# In the dark only colours change: there, the contrast rule alone (axe takes seconds on
# a status page with hundreds of day buttons, half of that in the contrast rule).
ALL_RULES: dict = {}
CONTRAST_ONLY = {"runOnly": {"type": "rule", "values": ["color-contrast"]}}


def axe_problems(page: Page, where: str, rules: dict) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now. The minor
    and moderate ones are printed, for the log."""
    results = Axe().run(page, options={"resultTypes": ["violations"], **rules}).response
    # Proof that axe ran here, not just that it found nothing.
    assert results["testEngine"]["name"] == "axe-core", results["testEngine"]
    ran = {rule["id"] for key in ("passes", "violations", "incomplete") for rule in results[key]}
    assert "color-contrast" in ran, ran
    assert rules or len(ran) > 20, ran
    lines = [
        f"{where}: {v['impact']}: {v['id']} ({v['help']}) at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"][:5])
        for v in results["violations"]
    ]
    for line in lines:
        print("axe", line)
    return [line for line in lines if re.search(r": (serious|critical): ", line)]


@pytest.mark.parametrize("name", ["/", "incident", "/history/"])
def test_axe_finds_no_serious_or_critical_violations(open_page, story, name):
    visit = open_page(path_of(story, name))
    problems = axe_problems(visit.page, f"{name} (light)", ALL_RULES)
    visit.page.emulate_media(color_scheme="dark")
    problems += axe_problems(visit.page, f"{name} (dark)", CONTRAST_ONLY)
    assert problems == [], "\n".join(problems)
    assert visit.problems() == []


# --- 6. Keyboard only -----------------------------------------------------------------------

FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  window.__stops = window.__stops || new Map();
  if (!window.__stops.has(el)) window.__stops.set(el, window.__stops.size);
  const style = getComputedStyle(el);
  const rect = el.getBoundingClientRect();
  return {
    key: window.__stops.get(el),
    what: el.tagName.toLowerCase() + (el.className ? "." + el.className : "") + " "
      + (el.getAttribute("href") || "") + " " + (el.textContent || "").trim().slice(0, 40),
    bar: el.classList.contains("bar"),
    inTip: !!el.closest(".tip"),
    summary: el.tagName === "SUMMARY",
    href: el.getAttribute("href"),
    outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
    shadow: style.boxShadow !== "none",
    width: rect.width, height: rect.height,
    top: rect.top, bottom: rect.bottom, innerHeight: window.innerHeight,
  };
}"""


def tab_through(page: Page) -> list[dict]:
    """Every element Tab reaches from where focus is, once each, in order."""
    stops: list[dict] = []
    seen: set[int] = set()
    for _ in range(MAX_TAB_STOPS):
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUSED)
        if stop is None or stop["key"] in seen:  # past the end, or around again
            return stops
        seen.add(stop["key"])
        stops.append(stop)
    raise AssertionError(f"Tab went on for more than {MAX_TAB_STOPS} stops")


def test_the_page_is_usable_with_the_keyboard_alone(open_page, story):
    page = open_page("/").page
    stops = tab_through(page)
    assert len(stops) > 10, stops

    # The first stop is the skip link, and it shows itself.
    assert stops[0]["href"] == "#main", stops[0]
    for stop in stops:
        assert stop["width"] > 0, f"invisible focus: {stop['what']}"
        assert stop["height"] > 0, f"invisible focus: {stop['what']}"
        assert stop["bottom"] > 0, f"focus off screen: {stop['what']}"
        assert stop["top"] < stop["innerHeight"], f"focus off screen: {stop['what']}"
        assert stop["outline"] or stop["shadow"], f"no visible focus: {stop['what']}"

    hrefs = [stop["href"] for stop in stops]
    assert "/history/" in hrefs  # the site navigation
    assert f"/incidents/{story.open_incident_id}/" in hrefs  # the open incident
    assert "/feed.rss" in hrefs  # the footer: the end of the page is reached
    assert any(stop["summary"] for stop in stops)  # the groups fold and unfold
    # Each shown uptime bar is exactly one Tab stop (the days are behind arrow keys).
    shown_rows = page.locator("ol.bars").filter(visible=True).count()
    assert sum(stop["bar"] for stop in stops) == shown_rows > 0

    # The skip link moves focus to the main content.
    page.locator("a.skip").focus()
    expect(page.locator("a.skip")).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.closest('main') !== null")

    # A folded group opens from the keyboard.
    summary = page.locator("details.group > summary").first
    details = page.locator("details.group").first
    was_open = details.evaluate("d => d.open")
    summary.focus()
    page.keyboard.press("Enter")
    expect(details).to_have_js_property("open", not was_open)


# --- 7. Screenshots, for a person to look at --------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


def test_screenshots_of_the_status_page(open_page, demo):
    """Full-page screenshots of the demo fleet in var/test-artifacts/browser/: light,
    dark, phone and the open incident's page. A page wider than its window would
    show here as a screenshot wider than the viewport."""
    target = artifacts_dir()
    shots = []
    for name, path, options in [
        ("status-light", "/", {}),
        ("status-dark", "/", {"color_scheme": "dark"}),
        ("status-phone", "/", PHONE),
        ("incident-light", f"/incidents/{demo.open_incident_id}/", {}),
    ]:
        visit: Visit = open_page(path, **options)
        # Screenshots wait for web fonts; the page's local times are in place.
        expect(visit.page.locator("time.utc + .local").first).to_be_visible()
        file = target / f"{name}-{database()}.png"
        visit.page.screenshot(path=file, full_page=True, animations="disabled")
        width, height = png_size(file)
        viewport = visit.page.viewport_size
        assert viewport is not None
        assert width == viewport["width"], (file, width)
        assert height > viewport["height"], (file, height)  # the whole page, not the window
        shots.append(file)
    print("screenshots:", *shots, sep="\n  ")


# --- 8. A phone ---------------------------------------------------------------------------


def test_a_phone_never_scrolls_sideways(open_page, story):
    for name in ("/", "/history/", "incident"):
        page = open_page(path_of(story, name), **PHONE).page
        width, inner = page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert inner == 390
        assert width <= inner, f"{name}: {width}px wide in a {inner}px window"


def test_a_phone_shows_day_tooltips_inside_the_screen(open_page, story):
    page = open_page("/", **PHONE).page
    shown = page.locator("ol.bars .day").filter(visible=True)
    # The oldest and the newest day shown, and a day with an incident.
    for day in (
        shown.first,
        shown.last,
        shown.filter(has=page.locator(".tip-incidents a")).first,
    ):
        day.locator(".bar").focus()
        tip = day.locator(".tip")
        expect(tip).to_be_visible()
        box = tip.bounding_box()
        assert box is not None
        assert box["x"] >= 0, box
        assert box["x"] + box["width"] <= 390, box
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, width
