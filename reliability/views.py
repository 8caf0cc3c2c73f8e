"""/reliability/: the public report. Thin: the figures, then a template.

Rendered without the request, like every public page, so the snapshot can capture
it and export_static can write it. The snapshot is this page's cache (rebuilt when
published data changes), so the page computes its figures afresh (six queries); the
API, polled by machines, answers from the Django cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_safe

from incidents.figures import duration_text, percent_text

from .charts import bar_chart
from .queries import reliability_report, report_as_of
from .report import IMPACTS, MonthFigures, Spread, month_index

MONTHS = 12
NOTHING = "\N{EN DASH}"  # a figure with nothing to measure


def _duration(value: float | Fraction | None, empty: str = NOTHING) -> str:
    return empty if value is None else duration_text(float(value))


def _percent(value: float | Fraction | None) -> str:
    return percent_text(value, empty=NOTHING)


def _minutes(value: float) -> str:
    return f"{value:,.1f}"


@dataclass(frozen=True)
class Row:
    """One month of the table, as text."""

    month: MonthFigures
    label: str
    by_impact: str
    duration_total: str
    duration_median: str
    detect: str
    first_update: str
    resolve: str
    blast: str
    minutes_lost: str
    uptime: str
    follow_ups: str


def _with_missing(spread: Spread, missing: str) -> str:
    text = _duration(spread.median)
    if spread.missing:
        text += f" ({spread.missing} {missing})"
    return text


def row_of(month: MonthFigures) -> Row:
    impacts = ", ".join(f"{month.by_impact[i]} {i}" for i in IMPACTS if month.by_impact.get(i))
    blast = NOTHING
    if month.blast.measured:
        blast = f"{_percent(month.blast.median)} / {_percent(month.blast.worst)}"
    return Row(
        month=month,
        label=f"{month.start:%B %Y}",
        by_impact=impacts or "none",
        duration_total=_duration(month.duration.total if month.incidents else None),
        duration_median=_duration(month.duration.median),
        detect=_with_missing(month.detect, "not measured"),
        first_update=_with_missing(month.first_update, "without an update"),
        resolve=_with_missing(month.resolve, "not resolved yet"),
        blast=blast,
        minutes_lost=_minutes(month.tailnet_minutes_lost),
        uptime=percent_text(month.uptime, empty="No data"),
        follow_ups=f"{month.follow_ups_open} open, {month.follow_ups_done} done",
    )


def _minutes_of(value: float | Fraction | None) -> float | None:
    return None if value is None else float(value) / 60


def charts(months: list[MonthFigures]) -> list[tuple[str, SafeString]]:
    """(caption, SVG) of each chart, oldest month first."""
    labels = [f"{m.start:%b}" for m in months]

    def bars(
        values: Sequence[float | None], texts: Sequence[str]
    ) -> list[tuple[str, float | None, str]]:
        return list(zip(labels, values, texts, strict=True))

    def chart(
        slug: str, title: str, unit: str, values: Sequence[float | None], texts: Sequence[str]
    ) -> tuple[str, SafeString]:
        description = "; ".join(
            f"{label}: {text}" for label, text in zip(labels, texts, strict=True)
        )
        return title, bar_chart(
            bars(values, texts), slug=slug, title=title, description=description, unit=unit
        )

    lost = [float(m.tailnet_minutes_lost) for m in months]
    downtime = [None if m.uptime is None else float(100 - m.uptime) for m in months]
    return [
        chart(
            "chart-incidents",
            "Incidents per month",
            "",
            [float(m.incidents) for m in months],
            [str(m.incidents) for m in months],
        ),
        chart(
            "chart-lost",
            "Tailnet-minutes lost per month",
            "",
            lost,
            [_minutes(v) for v in lost],
        ),
        chart(
            "chart-downtime",
            "Fleet downtime per month (100% minus fleet uptime)",
            "%",
            downtime,
            [_percent(v) if v is not None else "No data" for v in downtime],
        ),
        chart(
            "chart-resolve",
            "Median time to resolve, in minutes",
            " min",
            [_minutes_of(m.resolve.median) for m in months],
            [_duration(m.resolve.median, "nothing resolved") for m in months],
        ),
        chart(
            "chart-detect",
            "Median time to detect, in minutes",
            " min",
            [_minutes_of(m.detect.median) for m in months],
            [_duration(m.detect.median, "not measured") for m in months],
        ),
        chart(
            "chart-blast",
            "Worst blast radius per month, share of tailnets",
            "%",
            [None if m.blast.worst is None else float(m.blast.worst) for m in months],
            [_percent(m.blast.worst) for m in months],
        ),
    ]


@require_safe
def report(request: HttpRequest) -> HttpResponse:
    as_of = report_as_of(timezone.now())
    last = month_index(as_of)
    months = reliability_report(first=last - MONTHS + 1, last=last, now=as_of)
    context = {
        "nav": "reliability",
        "as_of": as_of,
        "charts": charts(months),
        "rows": [row_of(month) for month in reversed(months)],
        "first": months[0].start,
        "last": months[-1].start,
    }
    return HttpResponse(render_to_string("reliability/report.html", context))
