"""A small server-rendered SVG line chart of hourly latency: no JavaScript, no library.

Pure: plain values in, markup out. Every piece of text in the markup is escaped or
is a number formatted here. p50 is a solid line, p95 a dashed one and p99 a dotted
one, so colour is never the only cue; an hour without samples breaks the line rather
than joining its neighbours; a migration to another shard is a labelled vertical mark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from plumbing.charts import nice_ceiling

WIDTH = 720
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 14, 28


@dataclass(frozen=True)
class Point:
    at: datetime
    p50: float | None
    p95: float | None
    p99: float | None = None


class Hour(Protocol):
    """What a row of the table behind the chart shows (``queries.LatencyHour``)."""

    @property
    def start(self) -> datetime: ...
    @property
    def shard_name(self) -> str | None: ...
    @property
    def p50_ms(self) -> float | None: ...
    @property
    def p95_ms(self) -> float | None: ...
    @property
    def p99_ms(self) -> float | None: ...
    @property
    def samples(self) -> int: ...
    @property
    def failures(self) -> int: ...


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _paths(xs: Sequence[float], ys: Sequence[float | None]) -> str:
    """An SVG path through the points, lifting the pen over gaps."""
    runs: list[list[str]] = []
    pen_down = False
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            pen_down = False
            continue
        if not pen_down:
            runs.append([])
        runs[-1].append(f"{'L' if pen_down else 'M'}{_fmt(x)} {_fmt(y)}")
        pen_down = True
    # A lone hour between gaps is a dot (a tiny stroke with round caps).
    return " ".join(" ".join(run) + (" h0.1" if len(run) == 1 else "") for run in runs)


def latency_chart(
    points: Sequence[Point],
    *,
    title: str,
    description: str,
    marks: Sequence[tuple[datetime, str]] = (),
    threshold_ms: float | None = None,
) -> SafeString:
    """A line chart of p50, p95 and p99 latency (ms) against time, oldest first."""
    if not points:
        return mark_safe("")
    first, last = points[0].at, points[-1].at
    span = max((last - first).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    highest = max(max(p.p50 or 0, p.p95 or 0, p.p99 or 0) for p in points)
    if threshold_ms is not None and threshold_ms <= highest * 1.5:
        highest = max(highest, threshold_ms)
    top = nice_ceiling(highest * 1.1, empty=10.0)

    def x_of(at: datetime) -> float:
        return LEFT + plot_w * (at - first).total_seconds() / span

    def y_of(ms: float | None) -> float | None:
        return None if ms is None else TOP + plot_h * (1 - min(ms, top) / top)

    xs = [x_of(p.at) for p in points]
    out = [
        f'<svg class="latency-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="latency-title latency-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="latency-title">{escape(title)}</title>',
        f'<desc id="latency-desc">{escape(description)}</desc>',
    ]
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        y = TOP + plot_h * (1 - fraction)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_fmt(y)}" y2="{_fmt(y)}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{_fmt(y + 4)}" text-anchor="end">'
            f"{_fmt(top * fraction)} ms</text>"
        )
    for point, x in zip(points, xs, strict=True):
        at = point.at.astimezone(UTC)
        if at.hour == 0 and x < WIDTH - RIGHT - 20:
            out.append(
                f'<line class="tick" x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{TOP}" '
                f'y2="{TOP + plot_h}"/><text class="axis" x="{_fmt(x + 3)}" '
                f'y="{HEIGHT - 8}">{at:%b} {at.day}</text>'
            )
    if threshold_ms is not None and threshold_ms <= top:
        line_y = y_of(threshold_ms) or 0.0
        out.append(
            f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_fmt(line_y)}" '
            f'y2="{_fmt(line_y)}"/><text class="axis" x="{WIDTH - RIGHT}" '
            f'y="{_fmt(line_y - 4)}" text-anchor="end">slow above {_fmt(threshold_ms)} ms</text>'
        )
    for at, label in marks:
        if first <= at <= last:
            x = x_of(at)
            out.append(
                f'<line class="migration" x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{TOP}" '
                f'y2="{TOP + plot_h}"><title>{escape(label)}</title></line>'
            )
    p99 = _paths(xs, [y_of(p.p99) for p in points])
    p95 = _paths(xs, [y_of(p.p95) for p in points])
    p50 = _paths(xs, [y_of(p.p50) for p in points])
    if p99:
        out.append(f'<path class="line p99" d="{p99}"/>')
    if p95:
        out.append(f'<path class="line p95" d="{p95}"/>')
    if p50:
        out.append(f'<path class="line p50" d="{p50}"/>')
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - numbers formatted here, text escaped


def _whole_ms(value: float | None) -> str:
    """Milliseconds rounded half up to a whole number, as ``floatformat:0`` writes them."""
    if value is None:
        return ""
    return str(Decimal(repr(value)).quantize(Decimal(1), ROUND_HALF_UP) + 0)


def latency_table_rows(hours: Sequence[Hour]) -> SafeString:
    """The ``<tr>`` rows of the table behind the chart, one per measured hour, oldest
    first: hour (UTC), shard, p50, p95, p99, probes, failed probes. Built here rather
    than in a template loop: a week is 168 rows of seven cells."""
    rows = [
        f'<tr><th scope="row">{h.start.astimezone(UTC):%Y-%m-%d %H:%M}</th>'
        f'<td data-label="Shard">{escape(h.shard_name)}</td>'
        f'<td data-label="p50">{_whole_ms(h.p50_ms)} ms</td>'
        f'<td data-label="p95">{_whole_ms(h.p95_ms)} ms</td>'
        f'<td data-label="p99">{_whole_ms(h.p99_ms)} ms</td>'
        f'<td data-label="Probes">{int(h.samples)}</td>'
        f'<td data-label="Failed">{int(h.failures)}</td></tr>'
        for h in hours
    ]
    return mark_safe("".join(rows))  # noqa: S308 - numbers formatted here, text escaped
