"""Shields-style SVG status badges ("status | operational"), as pure functions.

The colours are the Okabe-Ito palette (safe for colour-blind readers), and the
status is always written out, so colour is never the only cue. Text colour is
picked per background for a contrast ratio of at least 4.5:1.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

# Approximate advance widths of Verdana at 11px (what shields.io measures with),
# by character; anything else counts as a wide character.
_NARROW = set("fijlrtI!|.,:;'`()[] ")
_MEDIUM = set('abcdeghknopqsuvxyzJ-_/\\"*^1234567890?')
_WIDE_LOWER = set("mw")
_WIDTHS = {"narrow": 4.0, "medium": 6.8, "wide_lower": 10.6, "upper": 7.6, "other": 9.0}

LABEL_BG = "#555555"
PADDING = 6  # either side of each half's text
MAX_TEXT = 60  # characters: a badge is a glance, not a paragraph


@dataclass(frozen=True)
class BadgeColour:
    fill: str
    text: str


# Okabe-Ito: blue, yellow, orange, vermillion, reddish purple.
STATUS_COLOURS = {
    "operational": BadgeColour("#0072B2", "#ffffff"),
    "degraded_performance": BadgeColour("#F0E442", "#000000"),
    "partial_outage": BadgeColour("#E69F00", "#000000"),
    "major_outage": BadgeColour("#D55E00", "#000000"),
    "under_maintenance": BadgeColour("#CC79A7", "#000000"),
}
STATUS_TEXT = {
    "operational": "operational",
    "degraded_performance": "degraded performance",
    "partial_outage": "partial outage",
    "major_outage": "major outage",
    "under_maintenance": "under maintenance",
}
UNKNOWN = BadgeColour("#9E9E9E", "#000000")


def text_width(text: str) -> int:
    """Roughly how wide ``text`` renders in Verdana 11px, in pixels."""
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += _WIDTHS["narrow"]
        elif char in _MEDIUM:
            width += _WIDTHS["medium"]
        elif char in _WIDE_LOWER:
            width += _WIDTHS["wide_lower"]
        elif char.isupper():
            width += _WIDTHS["upper"]
        else:
            width += _WIDTHS["other"]
    return round(width)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def render_badge(*, label: str, message: str, colour: BadgeColour) -> str:
    """An SVG badge: ``label`` on grey, ``message`` on ``colour``; all text escaped,
    with a ``<title>`` and an ``aria-label`` for screen readers."""
    label, message = _clip(label), _clip(message)
    label_w = text_width(label) + 2 * PADDING
    message_w = text_width(message) + 2 * PADDING
    width = label_w + message_w
    title = f"{label}: {message}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" '
        f'viewBox="0 0 {width} 20" role="img" aria-label={quoteattr(title)}>'
        f"<title>{escape(title)}</title>"
        '<linearGradient id="s" x2="0" y2="100%">'
        '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        '<g clip-path="url(#r)">'
        f'<rect width="{label_w}" height="20" fill="{LABEL_BG}"/>'
        f'<rect x="{label_w}" width="{message_w}" height="20" fill="{colour.fill}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        '<g text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{label_w / 2:g}" y="14" fill="#ffffff">{escape(label)}</text>'
        f'<text x="{label_w + message_w / 2:g}" y="14" fill="{colour.text}">'
        f"{escape(message)}</text></g></svg>"
    )


def badge_for_status(*, label: str, status: str) -> str:
    """The badge of a Statuspage component status (e.g. "partial_outage")."""
    colour = STATUS_COLOURS.get(status, UNKNOWN)
    message = STATUS_TEXT.get(status, status.replace("_", " "))
    return render_badge(label=label, message=message, colour=colour)
