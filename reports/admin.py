"""Report triage for operators: what came in, where, and what it became."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from incidents.models import Incident, IncidentSource, Shard

from . import services
from .models import Report, ReportStatus


class RegionFilter(admin.SimpleListFilter):
    title = "region"
    parameter_name = "region"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        regions = Shard.objects.order_by("region").values_list("region", flat=True).distinct()
        return [(region, region) for region in regions]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Report]) -> QuerySet[Report]:
        if self.value():
            return queryset.filter(shard__region=self.value())
        return queryset


def spike_drafts() -> list[Incident]:
    """Open draft incidents opened by a spike of reports, with their report counts."""
    return list(
        Incident.objects.filter(
            source=IncidentSource.REPORTS, published=False, resolved_at__isnull=True
        )
        .annotate(report_count=Count("reports"))
        .order_by("-started_at")
    )


def _mark(status: str, label: str) -> Any:
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        changed = services.report_mark(
            report_ids=queryset.values_list("pk", flat=True), status=status
        )
        plural = "s" if changed != 1 else ""
        modeladmin.message_user(
            request, f"{changed} report{plural} marked {label}.", messages.SUCCESS
        )

    action.__name__ = f"mark_{status}"
    return admin.action(description=f"Mark selected reports as {label}")(action)


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    change_list_template = "reports/admin/change_list.html"
    list_display = (
        "created_at",
        "what",
        "typed_tailnet",
        "tailnet",
        "shard",
        "region",
        "status",
        "incident_link",
        "from_member",
        "over_limit",
        "honeypot",
    )
    list_filter = (
        "status",
        ("shard", admin.RelatedOnlyFieldListFilter),
        RegionFilter,
        ("created_at", admin.DateFieldListFilter),
        "what",
        "via",
        "honeypot",
        "from_member",
        "over_limit",
    )
    list_select_related = ("shard", "tailnet", "incident")
    search_fields = ("tailnet_name", "email", "description", "public_id")
    date_hierarchy = "created_at"
    actions = [
        _mark(ReportStatus.DUPLICATE, "duplicate"),
        _mark(ReportStatus.NOISE, "noise"),
        _mark(ReportStatus.RESOLVED, "resolved"),
    ]
    readonly_fields = (
        "public_id",
        "what",
        "started_at",
        "tailnet_name",
        "tailnet",
        "from_member",
        "reporter",
        "shard",
        "email",
        "description",
        "via",
        "client_hash",
        "over_limit",
        "honeypot",
        "created_at",
        "triaged_at",
        "incident_link",
    )
    fields = (*readonly_fields[:-1], "status", "incident", "incident_link")
    raw_id_fields = ("incident",)
    list_per_page = 100

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # The spike banner links to one incident's reports.
        return lookup == "incident__id__exact" or super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # reports come from the form and the API

    @admin.display(description="tailnet as typed", ordering="tailnet_name")
    def typed_tailnet(self, report: Report) -> str:
        return report.tailnet_name

    @admin.display(description="region", ordering="shard__region")
    def region(self, report: Report) -> str:
        return report.shard.region if report.shard else "—"

    @admin.display(description="incident")
    def incident_link(self, report: Report) -> str:
        if report.incident is None:
            return "—"
        incident = report.incident
        state = "draft" if not incident.published else incident.get_status_display()
        return format_html(
            '<a href="{}">{}</a> ({})',
            reverse("admin:incidents_incident_change", args=[incident.pk]),
            incident.title,
            state,
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        extra_context = {**(extra_context or {}), "spike_drafts": spike_drafts()}
        return super().changelist_view(request, extra_context)  # type: ignore[return-value]

    def save_model(self, request: HttpRequest, obj: Report, form: Any, change: bool) -> None:
        services.report_edit(report=obj, status=obj.status, incident=obj.incident)
