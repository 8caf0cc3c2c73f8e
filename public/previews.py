"""What a link to a page says when it is pasted into a chat: the title, description and
address chat apps and social sites show in its preview (``<meta name="description">``,
Open Graph and Twitter-card tags, written by templates/base.html).

- The status page, the history and every other public page: the current state. The
  overall status as the page words it ("Partial outage — <page name>") and the most
  severe open incident (what, where by public name, since when), or a sentence saying
  all is well and the next maintenance.
- An incident's page: that incident (its status, impact, places and time span).
- Any other page (a customer's tailnet, signing in, the report form): ``neutral()``,
  the same for everyone, naming no tailnet and no state.

Plain text: the template engine escapes it; line breaks and runs of spaces are folded
here, and descriptions are cut at a word boundary.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.html import strip_tags

from incidents import levels
from incidents.models import ComponentStatus, Incident, IncidentImpact, IncidentStatus
from plumbing.site import absolute

if TYPE_CHECKING:
    from .views import Banner, Card

DESCRIPTION_LIMIT = 200
SEPARATOR = " — "
MAX_PLACES = 3  # more are counted ("and 4 more"), not listed
TO = " \u2013 "  # an en dash, as the pages write a span of time
NEUTRAL_DESCRIPTION = (
    "Status of the coordination service: current state, incidents and maintenance."
)
ALL_WELL = "Everything is working normally: no incidents are open."


@dataclass(frozen=True)
class Preview:
    title: str
    description: str
    url: str  # absolute; empty when STATUSPAGE_PUBLIC_URL is not set
    site_name: str
    type: str = "website"


# --- Words --------------------------------------------------------------------------------


def status_text(status: str) -> str:
    """The overall status as the page's banner says it: "All systems operational",
    else Statuspage's label of the worst component status ("Partial outage")."""
    if status == ComponentStatus.OPERATIONAL:
        return "All systems operational"
    try:
        return str(ComponentStatus(status).label)
    except ValueError:
        return status


def one_line(text: str) -> str:
    return " ".join(text.split())


def shorten(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """One line of at most ``limit`` characters, cut at a word boundary with "…"."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:  # a single very long word is cut where it is
        cut = cut[:space]
    return cut.rstrip(" ,;:-\u2013\u2014") + "…"


def _names(names: Sequence[str]) -> str:
    """ "US East 1", "US East 1 and US East 2", "A, B, C and 4 more"."""
    shown = list(names[:MAX_PLACES])
    if len(names) > MAX_PLACES:
        shown.append(f"{len(names) - MAX_PLACES} more")
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _day(at: datetime, now: datetime) -> str:
    return f"{at:%b} {at.day}" + (f", {at.year}" if at.year != now.year else "")


def _clock(at: datetime, now: datetime, *, with_day: bool = False) -> str:
    """ "10:02 UTC" today, else "Jan 4, 10:02 UTC" (with the year if it is another)."""
    at, now = at.astimezone(UTC), now.astimezone(UTC)
    if at.date() == now.date() and not with_day:
        return f"{at:%H:%M} UTC"
    return f"{_day(at, now)}, {at:%H:%M} UTC"


def _span(start: datetime, end: datetime, now: datetime) -> str:
    """ "10:00 to 11:00 UTC" today, "Jan 6, 10:00 to 11:00 UTC", or with both days
    ("Jan 5, 23:00 to Jan 6, 01:00 UTC") when it ends on another day (``TO`` between)."""
    start, end, now = start.astimezone(UTC), end.astimezone(UTC), now.astimezone(UTC)
    if start.date() != end.date():
        return f"{_day(start, now)}, {start:%H:%M}{TO}{_clock(end, now, with_day=True)}"
    day = "" if start.date() == now.date() else f"{_day(start, now)}, "
    return f"{day}{start:%H:%M}{TO}{end:%H:%M} UTC"


def _update_text(card: Card) -> str:
    """The latest public update of a card's incident as plain text ("" if none)."""
    if card.latest is None:
        return ""
    return one_line(html.unescape(strip_tags(str(card.latest.body_html))))


def _places(card: Card, now: datetime, *, current: bool) -> list[str]:
    """Where, by public name: the shards hit (only those hit now if ``current`` and
    any are), else the components an operator named."""
    shards = card.shards
    if current:
        shards = [line for line in shards if line.hit_at(now)] or shards
    if shards:
        return sorted({line.name for line in shards})
    return [link.component.name for link in card.incident.affected_components.all()]


def _lead(title: str, places: list[str]) -> str:
    """The title, then where, unless the title says it already."""
    title = one_line(title).rstrip(" .")
    if all(name.casefold() in title.casefold() for name in places):
        return title
    return f"{title} on {_names(places)}"


def _sentences(*parts: str) -> str:
    return " ".join(part.strip() for part in parts if part.strip())


# --- Addresses ----------------------------------------------------------------------------


def absolute_url(path: str) -> str:
    """``path`` on the page's public address (``plumbing.site``) if STATUSPAGE_PUBLIC_URL
    is set; else "": a guessed address is not worth announcing to link unfurlers."""
    return absolute(path) if settings.STATUSPAGE_PUBLIC_URL else ""


def _site() -> str:
    return one_line(settings.STATUSPAGE_NAME)


# --- Previews -----------------------------------------------------------------------------


def _severity(card: Card) -> tuple[int, int, datetime]:
    severity = card.words.severity
    level = None if severity == levels.NO_SEVERITY else severity
    return levels.rank(level), levels.impact_rank(card.incident.impact), card.incident.started_at


def _current_description(banner: Banner, cards: Sequence[Card], now: datetime) -> str:
    open_incidents = [
        c for c in cards if c.incident.kind == Incident.Kind.INCIDENT and c.phase == "ongoing"
    ]
    if open_incidents:
        worst = max(open_incidents, key=_severity)
        incident = worst.incident
        lead = _lead(incident.title, _places(worst, now, current=True))
        text = _update_text(worst)
        return _sentences(
            f"{lead} since {_clock(incident.started_at, now)}.",
            "" if text == one_line(incident.title) else text,
        )
    in_progress = [
        c for c in cards if c.incident.kind == Incident.Kind.MAINTENANCE and c.phase == "ongoing"
    ]
    if in_progress:
        card = min(in_progress, key=lambda c: (c.incident.started_at, c.pk))
        until = card.incident.scheduled_until
        lead = _lead(card.incident.title, _places(card, now, current=True))
        return _sentences(
            f"Maintenance in progress: {lead}"
            + (f", until {_clock(until, now)}." if until and until > now else "."),
            _update_text(card),
        )
    if banner.status != ComponentStatus.OPERATIONAL:
        return _sentences(
            *(f"{status_text(status)}: {_names(names)}." for status, names in banner.lines)
        )
    upcoming = [c for c in cards if c.phase == "upcoming"]
    if not upcoming:
        return ALL_WELL
    card = min(upcoming, key=lambda c: (c.incident.scheduled_for or c.incident.started_at, c.pk))
    start, end = card.incident.scheduled_for, card.incident.scheduled_until
    when = _span(start, end, now) if start and end else ""
    lead = _lead(card.incident.title, _places(card, now, current=False))
    return _sentences(ALL_WELL, f"Next maintenance: {lead}" + (f", {when}." if when else "."))


def current(*, banner: Banner, cards: Sequence[Card], now: datetime, path: str) -> Preview:
    """The current state, for the status page and every other public page. ``cards``:
    at least every published incident and maintenance that is not closed."""
    return Preview(
        title=f"{status_text(banner.status)}{SEPARATOR}{_site()}",
        description=shorten(_current_description(banner, cards, now)),
        url=absolute_url(path),
        site_name=_site(),
    )


def _impact_text(impact: str) -> str:
    if impact in (IncidentImpact.NONE, IncidentImpact.MAINTENANCE):
        return ""
    try:
        return f"{IncidentImpact(impact).label} impact"
    except ValueError:
        return ""


def _status_label(status: str) -> str:
    try:
        return str(IncidentStatus(status).label)
    except ValueError:
        return status


def _when(card: Card, now: datetime) -> str:
    """ " since 10:02 UTC (28 min so far)", ", Jan 6, 10:00 to 11:00 UTC (planned for 1 h)"."""
    incident = card.incident
    if card.phase == "upcoming" and incident.scheduled_for and incident.scheduled_until:
        span = _span(incident.scheduled_for, incident.scheduled_until, now)
        return f", {span} ({card.duration})"
    if incident.resolved_at is None:
        return f" since {_clock(incident.started_at, now)} ({card.duration})"
    return f", {_span(incident.started_at, incident.resolved_at, now)} ({card.duration})"


def incident(*, card: Card, now: datetime, path: str) -> Preview:
    """One incident's page: its status, impact, places and time span, then its latest
    update (or, without one, what it means in plain words)."""
    item = card.incident
    status = _status_label(item.status)
    head = f"Maintenance · {status}" if item.kind == Incident.Kind.MAINTENANCE else status
    impact = _impact_text(item.impact)
    places = _places(card, now, current=False)
    facts = head + (f": {impact}" if impact else "")
    facts += f" on {_names(places)}" if places else ""
    facts += f"{_when(card, now)}."
    return Preview(
        title=f"{one_line(item.title)}{SEPARATOR}{_site()}",
        description=shorten(_sentences(facts, _update_text(card) or card.words.sentence)),
        url=absolute_url(path),
        site_name=_site(),
    )


def neutral() -> Preview:
    """Pages that are not public, or not about the state: the same for everyone."""
    return Preview(title=_site(), description=NEUTRAL_DESCRIPTION, url="", site_name=_site())
