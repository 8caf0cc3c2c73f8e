"""/reliability/: the public report; /t/<tailnet>/reliability/ and its sla.csv: one
tailnet's figures and SLA statement. Thin: the figures, then a template.

The public page is rendered without the request, like every public page, so the
snapshot can capture it and export_static can write it. The snapshot is its cache
(rebuilt when published data changes), so it computes its figures afresh (six
queries); the API, polled by machines, answers from the Django cache.

A tailnet's page is personal (the customers' door, ``Cache-Control: private``); its
body is the same for every member and cached per tailnet, data version and minute
(``customers.pagecache``), like the tailnet's main page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_safe

from customers.access import TailnetAccess, tailnet_view
from customers.pagecache import cached_fragment
from customers.views import csv_cell
from incidents.figures import duration_text, percent_text
from incidents.models import Tailnet

from .api import (
    SLA_MAX_MONTHS,
    ReliabilityRangeSerializer,
    policy_data,
    sla_month_data,
)
from .charts import bar_chart
from .queries import reliability_report, report_as_of
from .report import IMPACTS, MonthFigures, Spread, month_index, month_start
from .sla import Policy, percent_number
from .tailnet import SlaMonth, tailnet_reliability, tailnet_sla

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


def charts(
    months: list[MonthFigures], *, downtime_of: str = "Fleet"
) -> list[tuple[str, SafeString]]:
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
            f"{downtime_of} downtime per month (100% minus its uptime)",
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


# --- One tailnet (members only, through the customers' door) -------------------------


def _sla_row(month: SlaMonth) -> dict[str, Any]:
    met = {True: "Met", False: "Missed", None: NOTHING}[month.met]
    return {
        "label": f"{month.start:%B %Y}",
        "uptime": percent_text(month.uptime, empty="No data"),
        "met": met,
        "tier": NOTHING
        if month.tier is None
        else f"below {percent_number(month.tier.below_percent)} %",
        "credit": f"{percent_number(month.credit_percent)} %" if month.tier else "none",
        "excluded": month.excluded_incidents,
        "minutes": _minutes(month.tally.downtime_seconds / 60),
    }


def _policy_text(policy: Policy) -> dict[str, Any]:
    return {
        "target": percent_number(policy.target_percent),
        "tiers": [
            (percent_number(t.below_percent), percent_number(t.credit_percent))
            for t in policy.tiers
        ],
    }


def _tailnet_body(tailnet: Tailnet, as_of: datetime) -> str:
    last = month_index(as_of)
    first = last - MONTHS + 1
    months = tailnet_reliability(tailnet_id=tailnet.pk, first=first, last=last, now=as_of)
    statement = tailnet_sla(tailnet_id=tailnet.pk, first=first, last=last, now=as_of)
    context = {
        "tailnet": tailnet,
        "as_of": as_of,
        "charts": charts(months, downtime_of="This tailnet's"),
        "rows": [row_of(month) for month in reversed(months)],
        "first": months[0].start,
        "last": months[-1].start,
        "policy": statement.policy,
        "policy_text": None if statement.policy is None else _policy_text(statement.policy),
        "sla_rows": [_sla_row(month) for month in reversed(statement.months)],
        "sla_max_months": SLA_MAX_MONTHS,
    }
    return render_to_string("reliability/_tailnet_body.html", context)


@tailnet_view()
def tailnet_report(request: HttpRequest, access: TailnetAccess) -> HttpResponse:
    as_of = report_as_of(timezone.now())
    body = cached_fragment(
        kind="reliability",
        tailnet_id=access.tailnet.pk,
        now=as_of,
        build=lambda: _tailnet_body(access.tailnet, as_of),
    )
    context = {
        "tailnet": access.tailnet,
        "body": mark_safe(body),  # noqa: S308 - our own template's output, escaped there
        "nav": "tailnets",
    }
    return render(request, "reliability/tailnet.html", context)


SLA_CSV_COLUMNS = (
    "tailnet",
    "month",
    "policy",
    "target_pct",
    "uptime_pct",
    "target_met",
    "tier_below_pct",
    "credit_pct",
    "seconds_with_data",
    "outage_seconds",
    "partial_seconds",
    "degraded_seconds",
    "downtime_minutes",
    "excluded_maintenance",
)


@tailnet_view()
def sla_csv(request: HttpRequest, access: TailnetAccess) -> HttpResponse:
    """The SLA statement for ``?from=YYYY-MM&to=YYYY-MM`` (default: the last 12
    months, at most 24), one row per month: what a credit claim needs."""
    now = timezone.now()
    query = ReliabilityRangeSerializer(
        data=request.GET,
        context={"this_month": month_index(now), "max_months": SLA_MAX_MONTHS},
    )
    if not query.is_valid():
        problems = "; ".join(
            f"{field}: {' '.join(str(m) for m in errors)}" for field, errors in query.errors.items()
        )
        return HttpResponseBadRequest(
            f"Bad SLA range: {problems}\n", content_type="text/plain; charset=utf-8"
        )
    first, last = query.validated_data["first"], query.validated_data["last"]
    statement = tailnet_sla(
        tailnet_id=access.tailnet.pk, first=first, last=last, now=report_as_of(now)
    )
    policy = policy_data(statement.policy)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SLA_CSV_COLUMNS)
    for month in statement.months:
        data = sla_month_data(month)
        writer.writerow(
            [
                csv_cell(access.tailnet.display_name),
                data["month"],
                csv_cell(policy["name"]) if policy else "",
                policy["target_pct"] if policy else "",
                "" if data["uptime_pct"] is None else data["uptime_pct"],
                "" if data["target_met"] is None else str(data["target_met"]).lower(),
                data["tier"]["below_pct"] if data["tier"] else "",
                data["credit_pct"],
                data["seconds_with_data"],
                data["outage_seconds"],
                data["partial_seconds"],
                data["degraded_seconds"],
                data["downtime_minutes"],
                data["excluded_maintenance"],
            ]
        )
    name = f"{access.tailnet.slug}-sla-{month_start(first):%Y-%m}-to-{month_start(last):%Y-%m}.csv"
    return HttpResponse(
        out.getvalue(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
