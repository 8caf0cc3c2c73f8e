"""Template helpers of the public pages: status labels and icons, UTC times, and
the 90-day uptime bars (built here in Python: 90 days x every component is too
many nodes for the template engine to render quickly)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from django import template
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from incidents import levels
from incidents.figures import duration_text, percent_text
from incidents.models import ComponentStatus
from plumbing.times import same_utc_day, utc
from public import previews

if TYPE_CHECKING:
    from fractions import Fraction

    from incidents.queries import DayIncident
    from incidents.uptime import DayUptime

register = template.Library()


@register.filter
def component_status_label(status: str) -> str:
    """'partial_outage' -> 'Partial outage' (Statuspage's wording)."""
    try:
        return str(ComponentStatus(status).label)
    except ValueError:
        return status


@register.filter
def overall_status(status: str) -> str:
    """The page's overall status: 'All systems operational', 'Partial outage', ..."""
    return previews.status_text(status)


# --- Icons: a shape per status, so colour is never the only cue --------------------------

_ICON_PATHS = {
    # A tick, a triangle, a diamond, an octagon (a stop sign) and a ring.
    "operational": '<path d="M2.5 8.5l3.5 3.5 7.5-8" fill="none" stroke="currentColor" '
    'stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/>',
    "degraded_performance": '<path d="M8 1.5l7 13H1z"/>',
    "partial_outage": '<path d="M8 .8l7.2 7.2L8 15.2.8 8z"/>',
    "major_outage": '<path d="M5 1h6l4 4v6l-4 4H5l-4-4V5z"/>',
    "under_maintenance": '<circle cx="8" cy="8" r="5.6" fill="none" stroke="currentColor" '
    'stroke-width="2.6"/>',
}
_SEVERITY_STATUS = {
    levels.severity(level): levels.status_for_level(level) for level in levels.BY_RANK
}


@register.simple_tag
def status_icon(status: str) -> SafeString:
    """A small SVG shape for a component status (or an impact severity), hidden
    from screen readers: the text next to it says the same."""
    status = _SEVERITY_STATUS.get(status, status)
    path = _ICON_PATHS.get(status, _ICON_PATHS["operational"])
    return mark_safe(  # noqa: S308 - constant markup chosen from the table above
        f'<svg class="icon icon-{status}" viewBox="0 0 16 16" width="16" height="16" '
        f'aria-hidden="true" focusable="false" fill="currentColor">{path}</svg>'
    )


# --- Times: UTC in the markup, the viewer's local time added by static/js/status.js ---


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


@functools.lru_cache(maxsize=1024)
def _day_text(value: date) -> str:
    return f"{value:%a}, {value:%b} {value.day}, {value.year}"


# Also used by the customers' views: they live with the plumbing every app may import.
register.simple_tag(utc)
register.filter(same_utc_day)


@register.filter
def iso_utc(value: datetime | None) -> str:
    return "" if value is None else _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


@register.filter
def pct(value: float | Fraction | None) -> str:
    """A percentage as every page shows it (``incidents.figures.percent_text``):
    floored to two decimals, so a real loss never reads "100.00%"."""
    return percent_text(value)


@register.filter
def duration(seconds: float) -> str:
    """Seconds as every page shows them: "1 h 5 min", "1 min 5 s", "45 s"."""
    return duration_text(seconds)


# --- 90-day uptime bars ------------------------------------------------------------------

DAY_LEVELS = {
    # class suffix: (what a day at that level is called)
    "none": "No data",
    "ok": "No downtime",
    "degraded": "Degraded performance",
    "partial": "Partial outage",
    "outage": "Outage",
}


def day_level(day: DayUptime) -> str:
    if day.tally.total_seconds == 0:
        return "none"
    return day.worst_level or "ok"


def _day_tip(
    day: DayUptime,
    level: str,
    incidents: Sequence[DayIncident],
    tip_id: str,
    links: dict[int, str],
) -> str:
    """The tooltip of one day, as HTML. Built with f-strings for speed (a page has
    90 of these per component): every value is escaped or is a number, a date or a
    fixed label, and the incident links come pre-escaped from ``_incident_link``."""
    tally = day.tally
    counts = "".join(
        f"<li>{label}: {duration_text(n)}</li>"
        for label, n in (
            ("Outage", tally.outage_seconds),
            ("Partial outage", tally.partial_seconds),
            ("Degraded performance", tally.degraded_seconds),
        )
        if n
    )
    minutes_html = f'<ul class="tip-minutes">{counts}</ul>' if counts else ""
    if incidents:
        items = "".join(links[incident.pk] for incident in incidents)
        incidents_html = f'<ul class="tip-incidents">{items}</ul>'
    else:
        incidents_html = '<p class="tip-none">No incidents</p>'
    uptime_text = "No data for this day" if day.uptime_pct is None else f"{pct(day.uptime)} uptime"
    return (
        f'<div class="tip" role="tooltip" id="{tip_id}"><p class="tip-head">'
        f'<time datetime="{day.day.isoformat()}">{_day_text(day.day)}</time> '
        f'<span class="tip-level">{DAY_LEVELS[level]}</span></p>'
        f'<p class="tip-uptime">{uptime_text}</p>{minutes_html}{incidents_html}</div>'
    )


def _quiet_day(day: DayUptime, level: str, key: str, stamp: str, classes: str) -> str:
    """A day without incidents or impacted minutes: its one-line tooltip names its bar."""
    if day.tally.total_seconds == 0:
        said = "No data for this day"
    else:
        said = f"{DAY_LEVELS[level]}, {pct(day.uptime)} uptime"
    return (
        f'<li class="day lvl-{level} tip-{classes}">'
        f'<button type="button" class="bar" id="d-{key}-{stamp}" aria-labelledby="t-{key}-{stamp}">'
        f'</button><div class="tip" role="tooltip" id="t-{key}-{stamp}"><p>'
        f"<strong>{_day_text(day.day)}:</strong> {said}. No incidents</p></div></li>"
    )


def _incident_link(incident: DayIncident) -> str:
    url = reverse("public:incident", args=[incident.pk])
    suffix = " (maintenance)" if incident.kind == "maintenance" else ""
    return f'<li><a href="{escape(url)}">{escape(incident.title)}</a>{suffix}</li>'


@register.simple_tag
def uptime_bar(
    key: str, name: str, days: Sequence[DayUptime], incidents: dict[date, list[DayIncident]]
) -> SafeString:
    """One focusable bar per day, oldest first: colour, a pattern and a label per
    level, and a tooltip (in the HTML, shown on hover and on keyboard focus) with the
    day's uptime, impacted minutes and incidents linking to their pages.

    Most days are quiet (no incident, no impacted minute): their tooltip is one line
    that is also the bar's accessible name (``aria-labelledby``), three elements
    instead of nine. A page of 40 components has 3,600 days; this keeps it at about
    half the bytes and a third of the nodes a phone has to lay out."""
    key = escape(key)
    links: dict[int, str] = {}
    for day_incidents in incidents.values():
        for incident in day_incidents:
            if incident.pk not in links:
                links[incident.pk] = _incident_link(incident)
    items = []
    last = len(days) - 1
    for index, day in enumerate(days):
        level = day_level(day)
        day_incidents = incidents.get(day.day, [])
        stamp = day.day.strftime("%Y%m%d")
        tip_id = f"t-{key}-{stamp}"
        label = f"{_day_text(day.day)}: {DAY_LEVELS[level]}"
        if day.tally.total_seconds:
            label += f", {pct(day.uptime)} uptime"
        if day_incidents:
            count = len(day_incidents)
            label += f", {count} incident{'s' if count != 1 else ''}"
        side = "start" if index < len(days) / 2 else "end"
        recent = " recent" if last - index < 30 else ""
        if not day_incidents and level in ("ok", "none"):
            items.append(_quiet_day(day, level, key, stamp, f"{side}{recent}"))
            continue
        items.append(
            f'<li class="day lvl-{level} tip-{side}{recent}">'
            f'<button type="button" class="bar" id="d-{key}-{stamp}" aria-describedby="{tip_id}">'
            f'<span class="vh">{label}</span></button>'
            f"{_day_tip(day, level, day_incidents, tip_id, links)}</li>"
        )
    label = escape(f"Daily uptime of {name}, oldest day first")
    return mark_safe(  # noqa: S308 - every piece escaped above
        f'<ol class="bars" id="bars-{key}" aria-label="{label}">' + "".join(items) + "</ol>"
    )
