"""The event log in the operator console: every event, filterable by tailnet, shard,
type and source, never edited or deleted (it is the source of truth). An operator's
correction is an event too: "Add fleet event" sends one through the same service as
the API, with source ``admin``, and the placements follow from the whole log.

Tailnets: the operator creates, renames, live-migrates and deletes one through the
fleet's services, each change an event of source ``admin``; a tailnet's page shows
its placements with the events that began and ended each of them."""

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from incidents import admin as incidents_admin
from incidents.admin import BaseAdmin, ConstraintCheckingForm, _adopt, _utc
from incidents.audit import actor_for_request
from incidents.models import Shard, Tailnet

from .events import SHARD_FIELDS, TYPES
from .health import fleet_health
from .history import EVENTS_SHOWN, TailnetLog, tailnet_log
from .models import FleetEvent, FleetEventSource, FleetRejection
from .services import (
    FleetEventsConflict,
    FleetEventsInvalid,
    fleet_events_ingest,
    tailnet_create,
    tailnet_delete,
    tailnet_migrate,
    tailnet_rename,
)


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


# --- Tailnets: the operator's changes are fleet events ------------------------------------


def _now() -> Any:
    return timezone.now().replace(microsecond=0)


def _refusal_on(form: forms.Form, refused: ValidationError) -> None:
    """A service's refusal as errors of ``form``: on the field it names (the forms'
    fields are named as the services' arguments), else on the whole form."""
    if not hasattr(refused, "error_dict"):
        form.add_error(None, refused.messages)
        return
    for name, texts in refused.message_dict.items():
        form.add_error(name if name in form.fields else None, texts)


class TailnetAddForm(ConstraintCheckingForm):
    shard = forms.ModelChoiceField(
        queryset=Shard.objects.filter(active=True),
        help_text="The shard the tailnet is placed on from its creation.",
    )


class TailnetMigrateForm(forms.Form):
    to_shard = forms.ModelChoiceField(
        queryset=Shard.objects.filter(active=True).order_by("region", "slug"), label="To shard"
    )
    at = forms.DateTimeField(
        initial=_now, label="At (UTC)", help_text="When it moved; not after now."
    )


class TailnetDeleteForm(forms.Form):
    at = forms.DateTimeField(
        initial=_now, label="At (UTC)", help_text="When it was deleted; not after now."
    )
    confirm = forms.BooleanField(
        label="Delete this tailnet",
        help_text="Its placement ends; its history stays and its members still see it, "
        "marked deleted; its API tokens stop working. A later tailnet.created event "
        "brings it back.",
    )


# What an action does with the tailnet, its form's data and who: the message shown.
Action = Callable[[Tailnet, Mapping[str, Any], Any], str]


def _migrate(tailnet: Tailnet, data: Mapping[str, Any], by: Any) -> str:
    placement = tailnet_migrate(tailnet=tailnet, to_shard=data["to_shard"], at=data["at"], by=by)
    return f"Live-migrated {tailnet.slug} to {placement.shard.slug} at {_utc(placement.starts_at)}."


def _delete(tailnet: Tailnet, data: Mapping[str, Any], by: Any) -> str:
    tailnet_delete(tailnet=tailnet, at=data["at"], by=by)
    return f"Deleted {tailnet.slug} at {_utc(tailnet.deleted_at)}; its history stays."


# The operator's actions on one tailnet, by the end of their URL: (title, form, action).
ACTIONS: dict[str, tuple[str, type[forms.Form], Action]] = {
    "live-migrate": ("Live-migrate", TailnetMigrateForm, _migrate),
    "delete-tailnet": ("Delete tailnet", TailnetDeleteForm, _delete),
}


def _event_url(event: FleetEvent) -> str:
    return reverse("admin:fleet_fleetevent_change", args=[quote(event.pk)])


def _event_cell(event: FleetEvent | None) -> SafeString:
    if event is None:
        return format_html("{}", "— (from before the feed)")
    return format_html(
        '<a href="{}">{}</a><br>{} at {}<br><span class="quiet">source: {}</span>',
        _event_url(event),
        event.id,
        event.type,
        _utc(event.at),
        event.get_source_display(),
    )


admin.site.unregister(Tailnet)


@admin.register(Tailnet)
class FleetTailnetAdmin(incidents_admin.TailnetAdmin):
    """The tailnets' admin with the operator's changes, each a fleet event of source
    ``admin`` (``services.tailnet_*``). Its page shows the placement history with the
    events behind it, in place of the plain list of placements."""

    form = ConstraintCheckingForm
    change_fields = (
        "slug",
        "display_name",
        "deleted",
        "created_at",
        "current_shard",
        "operator_actions",
        "placement_history",
        "events",
        "impacts",
    )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("slug", "display_name", "created_at", "shard")
        return self.change_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return tuple(name for name in self.change_fields if name != "display_name")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = TailnetAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return ()  # the placement history below shows the placements, with their events

    # The tailnets' own admin is read-only; through the fleet's services it is not.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return admin.ModelAdmin.has_add_permission(self, request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return admin.ModelAdmin.has_change_permission(self, request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        by = actor_for_request(request)
        if change:
            tailnet_rename(tailnet=obj, display_name=form.cleaned_data["display_name"], by=by)
            return
        try:
            created = tailnet_create(
                slug=obj.slug,
                display_name=obj.display_name,
                shard=form.cleaned_data["shard"],
                at=obj.created_at,
                by=by,
            )
        except ValidationError as refused:
            if hasattr(refused, "error_dict") and "at" in refused.error_dict:
                refused.error_dict["created_at"] = refused.error_dict.pop("at")
            raise
        _adopt(obj, created)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        tailnet = Tailnet.objects.filter(pk=unquote(object_id)).first() if object_id else None
        if tailnet is not None and tailnet.deleted_at is not None:
            subtitle = f"{tailnet.slug}: deleted {_utc(tailnet.deleted_at)}"
            extra_context = {**(extra_context or {}), "subtitle": subtitle}
        return super().change_view(request, object_id, form_url, extra_context)

    # -- The operator's actions: a page each, the service's refusal shown on its form --

    def get_urls(self) -> list[Any]:
        own = [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(self._action_view),
                {"action": name},
                name=f"incidents_tailnet_{name.replace('-', '_')}",
            )
            for name in ACTIONS
        ]
        return own + super().get_urls()

    def _action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        tailnet = self.get_object(request, unquote(object_id))
        if tailnet is None:
            raise Http404
        if not self.has_change_permission(request, tailnet):
            raise PermissionDenied
        title, form_class, act = ACTIONS[action]
        form = form_class(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            try:
                done = act(tailnet, form.cleaned_data, actor_for_request(request))
            except ValidationError as refused:
                _refusal_on(form, refused)
            else:
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:incidents_tailnet_change", args=[quote(tailnet.pk)])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: {tailnet.slug}",
            "subtitle": None,
            "opts": self.opts,
            "original": tailnet,
            "form": form,
            "submit": title,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/fleet/tailnet_action.html", context)

    # -- What its page shows -------------------------------------------------------------

    def _log(self, obj: Tailnet) -> TailnetLog:
        # Read once for the two fields that show it.
        found = getattr(obj, "_fleet_log", None)
        if found is None:
            found = tailnet_log(tailnet=obj)
            obj._fleet_log = found  # type: ignore[attr-defined]
        return found

    @admin.display(description="operator actions")
    def operator_actions(self, obj: Tailnet) -> str:
        if obj.pk is None:
            return "—"
        if obj.deleted_at is not None:
            return format_html(
                "Deleted {}. A <code>tailnet.created</code> event "
                '(<a href="{}">add a fleet event</a>) brings it back.',
                _utc(obj.deleted_at),
                reverse("admin:fleet_fleetevent_add"),
            )
        return format_html_join(
            " · ",
            '<a class="button" href="{}">{}</a>',
            (
                (reverse(f"admin:incidents_tailnet_{name.replace('-', '_')}", args=[obj.pk]), t)
                for name, (t, _, _) in ACTIONS.items()
            ),
        )

    @admin.display(description="placement history")
    def placement_history(self, obj: Tailnet) -> str:
        rows = self._log(obj).placements
        if not rows:
            return "No placement."
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row.shard,
                    _utc(row.starts_at),
                    _utc(row.ends_at, "— current —"),
                    _event_cell(row.began),
                    _event_cell(row.ended) if row.ends_at is not None else "—",
                )
                for row in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>Shard</th><th>From</th><th>Until</th>"
            "<th>Began with</th><th>Ended with</th></tr></thead><tbody>{}</tbody></table>"
            "<p>{}</p>",
            body,
            incidents_admin.DERIVED_NOTE,
        )

    @admin.display(description="fleet events")
    def events(self, obj: Tailnet) -> str:
        log = self._log(obj)
        url = reverse("admin:fleet_fleetevent_changelist") + f"?tailnet={obj.slug}"
        if not log.events:
            return format_html(
                'No event yet: it was created before the feed (<a href="{}">event log</a>).',
                url,
            )
        body = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            "<td>{}</td></tr>",
            (
                (
                    _event_url(event),
                    event.id,
                    event.type,
                    _utc(event.at),
                    event.shard or "—",
                    ", ".join(f"{k}={v}" for k, v in sorted(event.payload.items())) or "—",
                    event.get_source_display(),
                )
                for event in log.events
            ),
        )
        shown = len(log.events)
        return format_html(
            "<table><thead><tr><th>Event</th><th>Type</th><th>At</th><th>Shard</th>"
            "<th>Fields</th><th>Source</th></tr></thead><tbody>{}</tbody></table>"
            '<p>{}<a href="{}">All {} events of this tailnet in the event log</a></p>',
            body,
            f"The latest {EVENTS_SHOWN} are shown. " if shown < log.event_count else "",
            url,
            log.event_count,
        )
