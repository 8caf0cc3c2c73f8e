"""Customer pages: one's tailnets, each tailnet's "were we affected?" page, its
uptime CSV and its API tokens; and the customer API's documentation.

Thin: the one door (``customers.access``), a query (``customers.queries``), a
template. Every page under ``/t/`` goes through ``tailnet_view``, which decides in
this order, the same way for every slug, existing or not:

1. anonymous: the login redirect;
2. not a member (staff included: they use the admin): Django's own 404, the same
   bytes as for a tailnet that does not exist;
3. a method the page does not take: 405.

Every customer response is personal: ``Cache-Control: private, no-store`` (via
``add_never_cache_headers``), never stored by a shared cache, and never part of
the public snapshot (``public.snapshot.is_public_path`` knows nothing of /t/).
"""

from __future__ import annotations

import csv
import functools
import io
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotAllowed,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import include, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_safe
from drf_spectacular.generators import SchemaGenerator

from incidents.figures import duration_text
from incidents.models import ImpactLevel, Tailnet
from incidents.uptime import Tally
from plumbing.models import ApiToken
from plumbing.params import whole_number
from plumbing.site import absolute
from plumbing.times import same_utc_day, utc
from plumbing.tokens import api_token_create, api_token_revoke

from .access import (
    SAFE_METHODS,
    TailnetAccess,
    member_tailnets,
    private,
    sign_in_first,
    tailnet_view,
)
from .api import tally_data
from .charts import Point, latency_chart, latency_table_rows
from .pagecache import cached_fragment
from .queries import (
    LATENCY_DAYS,
    SLA_MONTHS,
    UPTIME_DAYS,
    MonthUptime,
    tailnet_page,
    tailnet_uptime_report,
    tailnets_summary,
)
from .serializers import UptimeRangeSerializer

LEVEL_LABELS = dict(ImpactLevel.choices)


# --- Your tailnets ------------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return sign_in_first(request)
    if request.method not in SAFE_METHODS:
        return private(HttpResponseNotAllowed(SAFE_METHODS))
    memberships = list(member_tailnets(user=request.user))
    summary = tailnets_summary(tailnet_ids=[m.tailnet_id for m in memberships])
    rows = [(m, summary[m.tailnet_id]) for m in memberships]
    return private(render(request, "customers/home.html", {"rows": rows, "nav": "tailnets"}))


# --- A tailnet's page ----------------------------------------------------------------------


@tailnet_view()
def tailnet_detail(request: HttpRequest, access: TailnetAccess) -> HttpResponse:
    tailnet = access.tailnet
    body = cached_fragment(
        kind="page",
        tailnet_id=tailnet.pk,
        now=timezone.now(),
        build=lambda: render_to_string("customers/_tailnet_body.html", _body_context(tailnet)),
    )
    context = {
        "tailnet": tailnet,
        "body": mark_safe(body),  # noqa: S308 - our own template's output, escaped there
        "nav": "tailnets",
    }
    return render(request, "customers/tailnet.html", context)


def _body_context(tailnet: Tailnet) -> dict[str, Any]:
    """What templates/customers/_tailnet_body.html shows: the same for every member."""
    page = tailnet_page(tailnet=tailnet)
    current = page.current.stay
    points = [Point(hour.start, hour.p50_ms, hour.p95_ms, hour.p99_ms) for hour in page.latency]
    shards_seen = sorted({h.shard_name for h in page.latency if h.shard_name})
    chart = latency_chart(
        points,
        title=f"Control-plane latency, last {LATENCY_DAYS} days",
        description=(
            "Median (p50, solid), 95th percentile (p95, dashed) and 99th percentile "
            "(p99, dotted) latency per hour of "
            f"{' then '.join(shards_seen) if shards_seen else 'its shard'}; "
            "the table below has every hour."
        ),
        marks=[(m.at, f"Moved from {m.from_name} to {m.to_name}") for m in page.migrations],
        threshold_ms=current.latency_threshold_ms if current else None,
    )
    latency_rows = [h for h in page.latency if h.p50_ms is not None]
    return {
        "tailnet": tailnet,
        "page": page,
        "now": page.now,
        "current": page.current,
        "chart": chart,
        "latency_rows": latency_rows,
        "latency_table": latency_table_rows(latency_rows),
        "latency_days": LATENCY_DAYS,
        "uptime_days": UPTIME_DAYS,
        "sla_months": SLA_MONTHS,
        "months": list(reversed(page.sla.months)),
        "marks": _migration_marks(page),
        "history": _history_rows(page),
    }


def _history_rows(page: Any) -> list[dict[str, Any]]:
    """The history table's rows, with their link and "when" built once here rather
    than by a tag per cell."""
    names = {stay.shard_id: stay.shard_name for stay in page.stays}
    return [
        {
            "item": item,
            "url": reverse("public:incident", args=[item.incident.pk]),
            "when": _affected_when(item.first_affected_at, item.last_affected_at),
            "level": LEVEL_LABELS.get(item.worst_level, item.worst_level),
            "duration": duration_text(item.affected_seconds)
            + ("" if item.last_affected_at else " so far"),
            "where": sorted({names.get(w.shard_id, "another shard") for w in item.windows}),
        }
        for item in page.history
    ]


def _affected_when(first: datetime, last: datetime | None) -> SafeString:
    """When the tailnet was affected, start to end: the end as a time alone on the
    same UTC day, "ongoing" while it still is."""
    if last is None:
        end: SafeString | str = "ongoing"
    elif same_utc_day(first, last):
        end = utc(last, "time")
    else:
        end = utc(last)
    return format_html("{} \N{EN DASH} {}", utc(first), end)


def _migration_marks(page: Any) -> SafeString:
    """One ``<li>`` per day of the bar (oldest first), "moved" on a day with a
    migration; the last 30 days are "recent", the ones a narrow screen shows, as for
    the bar itself. Fixed class names only: nothing to escape."""
    moved_days = {migration.at.astimezone(UTC).date() for migration in page.migrations}
    last = len(page.days) - 1
    return mark_safe(  # noqa: S308 - constant markup
        "".join(
            f'<li class="{"recent" if last - index < 30 else ""}'
            f'{" moved" if day.day in moved_days else ""}"></li>'
            for index, day in enumerate(page.days)
        )
    )


# --- The uptime CSV ------------------------------------------------------------------------

# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# The tally's columns are the uptime API's fields in its order (``api.tally_data``):
# the minutes first, where they have always been, then the exact seconds.
TALLY_COLUMNS = tuple(tally_data(Tally()))
CSV_COLUMNS = ("tailnet", "month", "first_day", "last_day", *TALLY_COLUMNS)


def csv_cell(value: object) -> object:
    """Numbers as they are; text that a spreadsheet would run as a formula is
    prefixed with an apostrophe (OWASP's advice on CSV injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_row(name: str, label: str, month: MonthUptime | None, report: Any) -> list[object]:
    tally = tally_data(month.tally if month else report.tally)
    return [
        csv_cell(v)
        for v in (
            name,
            label,
            (month.first_day if month else report.first_day).isoformat(),
            (month.last_day if month else report.last_day).isoformat(),
            *("" if tally[column] is None else tally[column] for column in TALLY_COLUMNS),
        )
    ]


@tailnet_view()
def uptime_csv(request: HttpRequest, access: TailnetAccess) -> HttpResponse:
    """Uptime per month for ``?from=&to=`` (default: the last 90 days), one row per
    month and a total: what an SLA claim needs."""
    now = timezone.now()
    query = UptimeRangeSerializer(data=request.GET, context={"today": now.astimezone(UTC).date()})
    if not query.is_valid():
        problems = "; ".join(
            f"{field}: {' '.join(str(m) for m in errors)}" for field, errors in query.errors.items()
        )
        return HttpResponseBadRequest(
            f"Bad uptime range: {problems}\n", content_type="text/plain; charset=utf-8"
        )
    first, last = query.validated_data["first_day"], query.validated_data["last_day"]
    report = tailnet_uptime_report(
        tailnet_id=access.tailnet.pk, first_day=first, last_day=last, now=now
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    name = access.tailnet.display_name
    for month in report.months:
        writer.writerow(_csv_row(name, month.label, month, report))
    writer.writerow(_csv_row(name, "total", None, report))
    filename = f"{access.tailnet.slug}-uptime-{first.isoformat()}-to-{last.isoformat()}.csv"
    return HttpResponse(
        out.getvalue(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- API tokens ----------------------------------------------------------------------------


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        strip=True,
        help_text="What uses it, e.g. “Grafana” or “on-call script”.",
    )


@tailnet_view(methods=("GET", "HEAD", "POST"))
def tokens(request: HttpRequest, access: TailnetAccess) -> HttpResponse:
    """The tailnet's API tokens: owners and admins create (the secret is shown once,
    on this response only) and revoke them; members see the list."""
    tailnet = access.tailnet
    listed = ApiToken.objects.filter(tailnet=tailnet, scope=ApiToken.Scope.TAILNET)
    form = TokenCreateForm()
    created: tuple[ApiToken, str] | None = None
    status = 200
    if request.method == "POST":
        if not access.can_manage:
            return HttpResponseForbidden(
                "Only the tailnet's owners and admins can create or revoke API tokens.\n",
                content_type="text/plain; charset=utf-8",
            )
        action = request.POST.get("action")
        if action == "revoke":
            token_id = whole_number(request.POST.get("token"))
            if token_id is None:
                return HttpResponseBadRequest(
                    "Bad token: expected the id of one of this tailnet's tokens.\n",
                    content_type="text/plain; charset=utf-8",
                )
            token = listed.filter(pk=token_id).first()
            if token is None:
                raise Http404
            api_token_revoke(token=token)
            messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
            return redirect("customers:tokens", slug=tailnet.slug)
        if action != "create":
            return HttpResponseBadRequest(
                "Unknown action: expected “create” or “revoke”.\n",
                content_type="text/plain; charset=utf-8",
            )
        form = TokenCreateForm(request.POST)
        if form.is_valid():
            created = api_token_create(
                name=form.cleaned_data["name"],
                scope=ApiToken.Scope.TAILNET,
                tailnet=tailnet,
                by=request.user,
            )
            form = TokenCreateForm()
            status = 201
        else:
            status = 400
    context = {
        "tailnet": tailnet,
        "access": access,
        "tokens": list(listed.select_related("created_by").order_by("revoked_at", "-created_at")),
        "form": form,
        "created": created[0] if created else None,
        "secret": created[1] if created else None,
        "api_base": absolute(reverse("customers_api:status", args=[tailnet.slug])).removesuffix(
            "/status"
        ),
        "nav": "tailnets",
    }
    return render(request, "customers/tokens.html", context, status=status)


# --- API documentation -----------------------------------------------------------------------


def api_patterns() -> list[Any]:
    """The public API routes that the schema and the docs page describe: the customer,
    webhooks and report APIs and the Statuspage-v2 JSON. The staff APIs have their own
    (statuspage/api_docs.py)."""
    return [
        path("api/v1/", include("customers.urls_api")),
        path("api/v1/", include("reports.urls_api")),
        path("api/v1/", include("notifications.urls_api")),
        path("api/v1/", include("reliability.urls_api")),
        path("api/v2/", include("public.urls_v2")),
    ]


@functools.lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return SchemaGenerator(patterns=api_patterns()).get_schema(request=None, public=True)


@require_safe
def api_docs(request: HttpRequest) -> HttpResponse:
    """The API's reference as plain HTML, from the same OpenAPI schema as
    /api/schema/: no script and nothing loaded from another site."""
    context = {**api_docs_context(_schema()), "nav": None}
    return render(request, "customers/tailnet_api_docs.html", context)


def api_docs_context(schema: dict[str, Any]) -> dict[str, Any]:
    """What a reference page shows of an OpenAPI schema: its operations and shapes."""
    components = schema.get("components", {}).get("schemas", {})
    operations = []
    for route, item in schema.get("paths", {}).items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = []
            for code, response in op.get("responses", {}).items():
                ref = (
                    response.get("content", {})
                    .get("application/json", {})
                    .get("schema", {})
                    .get("$ref", "")
                )
                name = ref.rsplit("/", 1)[-1] if ref else ""
                responses.append(
                    {"code": code, "description": response.get("description", ""), "schema": name}
                )
            operations.append(
                {
                    "id": op.get("operationId", ""),
                    "method": method.upper(),
                    "path": route,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": op.get("parameters", []),
                    "request": [
                        {"media_type": media_type, "schema": _type_of(body.get("schema", {}))}
                        for media_type, body in op.get("requestBody", {}).get("content", {}).items()
                    ],
                    "responses": responses,
                }
            )
    shapes: list[dict[str, Any]] = [
        {
            "name": name,
            "fields": [
                {
                    "name": field,
                    "type": _type_of(spec),
                    "required": field in shape.get("required", []),
                    "description": spec.get("description", ""),
                }
                for field, spec in shape.get("properties", {}).items()
            ],
        }
        for name, shape in sorted(components.items())
    ]
    for shape, (_, spec) in zip(shapes, sorted(components.items()), strict=True):
        shape["values"] = [str(value) for value in spec.get("enum", []) if value is not None]
    return {
        "info": schema.get("info", {}),
        "operations": operations,
        "shapes": shapes,
        "shape_names": {shape["name"] for shape in shapes},
    }


def _type_of(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "allOf" in spec:
        return " & ".join(_type_of(part) for part in spec["allOf"])
    if spec.get("type") == "array":
        return f"list of {_type_of(spec.get('items', {}))}"
    kind = str(spec.get("type", "any"))
    if spec.get("format"):
        kind += f" ({spec['format']})"
    if spec.get("enum"):
        kind += ": " + " | ".join(str(v) for v in spec["enum"] if v is not None)
    if spec.get("nullable"):
        kind += ", or null"
    return kind
