"""Server-rendered SVG bar charts of one figure per month: no JavaScript, no library.

Pure: plain values in, markup out; every piece of text is escaped or is a number
formatted here. A month without a value (nothing to measure) has no bar and says so
in its tooltip, rather than reading as zero. The numbers are in the table beneath.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from plumbing.charts import nice_ceiling

WIDTH = 720
HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 14, 28


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart(
    bars: Sequence[tuple[str, float | None, str]],
    *,
    slug: str,
    title: str,
    description: str,
    unit: str = "",
) -> SafeString:
    """One bar per ``(month label, value, value as text)``, oldest first."""
    if not bars:
        return mark_safe("")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_ceiling(max((value or 0) for _, value, _ in bars) * 1.05)
    slot = plot_w / len(bars)
    out = [
        f'<svg class="reliability-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{slug}-title {slug}-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{slug}-title">{escape(title)}</title>',
        f'<desc id="{slug}-desc">{escape(description)}</desc>',
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_fmt(y)}" y2="{_fmt(y)}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{_fmt(y + 4)}" text-anchor="end">'
            f"{escape(_fmt(top * fraction) + unit)}</text>"
        )
    for position, (label, value, text) in enumerate(bars):
        x = LEFT + slot * position
        out.append(
            f'<text class="axis" x="{_fmt(x + slot / 2)}" y="{HEIGHT - 8}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
        if value is None:
            out.append(
                f'<rect class="none" x="{_fmt(x + slot * 0.15)}" y="{TOP + plot_h - 1}" '
                f'width="{_fmt(slot * 0.7)}" height="1"><title>{escape(label)}: '
                f"{escape(text)}</title></rect>"
            )
            continue
        height = plot_h * min(value, top) / top
        out.append(
            f'<rect class="value" x="{_fmt(x + slot * 0.15)}" y="{_fmt(TOP + plot_h - height)}" '
            f'width="{_fmt(slot * 0.7)}" height="{_fmt(height)}"><title>{escape(label)}: '
            f"{escape(text)}</title></rect>"
        )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - numbers formatted here, text escaped
