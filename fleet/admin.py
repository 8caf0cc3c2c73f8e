"""The event log in the operator console: every event, filterable by tailnet, shard,
type and source, never edited or deleted (it is the source of truth). An operator's
correction is an event too: "Add fleet event" sends one through the same service as
the API, with source ``admin``, and the placements follow from the whole log."""

import uuid
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from incidents.admin import BaseAdmin

from .events import SHARD_FIELDS, TYPES
from .health import fleet_health
from .models import FleetEvent, FleetEventSource, FleetRejection
from .services import FleetEventsConflict, FleetEventsInvalid, fleet_events_ingest


class FleetEventForm(forms.ModelForm):
    """One event as an operator types it; the service checks it like any other."""

    type = forms.ChoiceField(choices=[(t, t) for t in TYPES])
    at = forms.DateTimeField(initial=timezone.now, help_text="When it happened (UTC).")
    tailnet = forms.CharField(required=False, help_text="Slug, for tailnet events.")
    shard = forms.CharField(required=False, help_text="Slug, for shard events and placements.")
    display_name = forms.CharField(required=False)
    region = forms.CharField(required=False)
    public_name = forms.CharField(required=False)
    probe_url = forms.CharField(required=False)
    component = forms.CharField(required=False, help_text="Component slug (optional).")

    class Meta:
        model = FleetEvent
        fields: list[str] = []

    def event(self) -> dict[str, Any]:
        data = self.cleaned_data
        event: dict[str, Any] = {
            "id": f"admin:{uuid.uuid4()}",
            "type": data["type"],
            "at": data["at"].isoformat(),
        }
        for name in ("tailnet", "shard", "display_name", *SHARD_FIELDS):
            if data.get(name):
                event[name] = data[name]
        return event


@admin.register(FleetEvent)
class FleetEventAdmin(BaseAdmin):
    list_display = ("at", "type", "tailnet", "shard", "details", "source", "received_at")
    list_filter = ("type", "source")
    search_fields = ("=tailnet", "=shard", "=id")
    search_help_text = "A tailnet or shard slug, or an event id (exact)."
    date_hierarchy = "at"
    ordering = ("-at", "-id")
    list_per_page = 100
    show_full_result_count = False
    form = FleetEventForm

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra_context = {**(extra_context or {}), "subtitle": _health_line()}
        return super().changelist_view(request, extra_context)

    @admin.display(description="fields")
    def details(self, obj: FleetEvent) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(obj.payload.items())) or "—"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the log is kept as it arrived; a correction is a new event

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        event = form.event()
        try:
            fleet_events_ingest(events=[event], source=FleetEventSource.ADMIN)
        except FleetEventsInvalid as refused:
            raise ValidationError(refused.errors[0] or str(refused)) from None
        except FleetEventsConflict as refused:
            raise ValidationError(str(refused)) from None
        obj.pk = event["id"]


@admin.register(FleetRejection)
class FleetRejectionAdmin(admin.ModelAdmin):
    """Batches the feed refused, for the operator who wonders why a change is missing."""

    list_display = ("received_at", "status", "events", "reason")
    list_filter = ("status",)
    ordering = ("-received_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _health_line() -> str:
    health = fleet_health()
    age = "no event yet" if health.newest_event_age is None else (
        f"newest event {health.newest_event_age:,.0f} s ago"
    )  # fmt: skip
    return format_html(
        "{} · {} events/min · {} refused batches in the last hour · {} tailnets on retired shards",
        age,
        f"{health.events_per_minute:,.1f}",
        health.rejected_batches_recent,
        health.on_retired_shards,
    )
