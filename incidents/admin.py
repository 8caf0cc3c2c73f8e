"""The operators' admin for the fleet and what happened to it.

Every write to incidents, their updates and windows goes through
``incidents.services`` (which validate, audit who did it, and queue the
affected-tailnet recompute after commit). A service's ``ValidationError`` is shown
on the form that was submitted, with what the operator typed (``BaseAdmin``), or as
an error message for actions; never as a 500.

Tailnets and placements are derived from the fleet feed's event log: read-only
here. The fleet app's admin adds the operator's changes to a tailnet (create,
rename, live-migrate, delete), each an event in that log.

Tailnets, placements and affected-tailnet rows can be millions of rows: their pages
never render a select of all tailnets, never count the whole table twice, offer no
facet counts, and the delete confirmation only *counts* derived rows instead of
loading them.
"""

import functools
import operator
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import NestedObjects, quote
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections, models, router, transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms.models import construct_instance
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from plumbing.models import ApiToken
from plumbing.params import whole_number

from . import services
from .audit import Actor, actor_for_request
from .figures import duration_text
from .impact import span_seconds
from .models import (
    CLOSED_STATUSES,
    AuditEntry,
    Component,
    ComponentGroup,
    FollowUp,
    ImpactLevel,
    Incident,
    IncidentComponent,
    IncidentKind,
    IncidentStatus,
    IncidentUpdate,
    Placement,
    Shard,
    ShardImpact,
    Tailnet,
    TailnetImpact,
)
from .queries import incident_blast_radius

# How many affected-tailnet rows an incident's page shows (the longest first); the
# rest are one click away in the TailnetImpact list.
AFFECTED_ROWS_SHOWN = 200
# How many of a tailnet's impacts its page shows (the latest first).
TAILNET_IMPACTS_SHOWN = 50


# --- Small helpers ----------------------------------------------------------------------


def _admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def _utc(value: datetime | None, empty: str = "—") -> str:
    """Times are stored and shown in UTC."""
    if value is None:
        return empty
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _minutes(seconds: int) -> str:
    """24 for 1440 s, 3.5 for 210 s."""
    if seconds % 60 == 0:
        return f"{seconds // 60:,}"
    return f"{seconds / 60:,.1f}"


def _text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _by(request: HttpRequest) -> Actor:
    return actor_for_request(request)


def _adopt(target: models.Model, created: models.Model) -> None:
    """Make the admin's unsaved instance the row a service just created, so the
    admin logs it and redirects to it."""
    for field in created._meta.concrete_fields:
        setattr(target, field.attname, getattr(created, field.attname))
    target._state.adding = False
    target._state.db = created._state.db


class EstimatedCountPaginator(Paginator):
    """The changelist counts its rows on every page. On PostgreSQL, an unfiltered
    list of a big table uses the planner's estimate instead of COUNT(*) over
    millions of rows; filtered lists and small tables are counted exactly."""

    ESTIMATE_ABOVE = 100_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and not queryset.query.where:
            connection = connections[queryset.db]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                        [queryset.model._meta.db_table],
                    )
                    row = cursor.fetchone()
                if row is not None and row[0] >= self.ESTIMATE_ABOVE:
                    return int(row[0])
        return super().count


class _DerivedRowsCounted(NestedObjects):
    """The admin's delete collector loads every related row to list it. Affected-
    tailnet rows are derived and can be millions: count them instead."""

    def can_fast_delete(self, objs: Any, from_field: Any = None) -> bool:
        model = objs if isinstance(objs, type) else getattr(objs, "model", None)
        return model is TailnetImpact

    def derived_rows(self) -> int:
        querysets = [
            qs.select_related(None).order_by()
            for qs in self.fast_deletes
            if getattr(qs, "model", None) is TailnetImpact
        ]
        if not querysets:
            return 0
        return functools.reduce(operator.or_, querysets).count()


# Where BaseAdmin keeps a service's refusal while it shows the form again.
_REFUSAL = "_service_refusal"


class _ShowsRefusal:
    """Mixed into a change form shown again after a service refused the save: the
    service's reasons become errors of this form (on the field they name, when the
    form has it)."""

    refusal: ValidationError

    def clean(self) -> Any:
        cleaned = super().clean()  # type: ignore[misc]
        fields = self.fields  # type: ignore[attr-defined]
        reasons: list[tuple[str | None, list[str]]]
        if hasattr(self.refusal, "error_dict"):
            reasons = list(self.refusal.message_dict.items())
        else:
            reasons = [(None, self.refusal.messages)]
        for field, texts in reasons:
            editable = field in fields and not fields[field].disabled
            for text in texts:
                self.add_error(  # type: ignore[attr-defined]
                    field if editable else None, text
                )
        return cleaned


class BaseAdmin(admin.ModelAdmin):
    """Service refusals shown on the form; deletes count derived rows."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # A service refused the save (its checks run at save time, so they see the
        # whole change, inlines included, under its locks): the admin's transaction
        # rolled back, nothing was saved. Show the same form again, with what the
        # operator typed and the service's reasons as its errors.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            if request.method != "POST":
                raise
            setattr(request, _REFUSAL, error)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, _REFUSAL, None)
        if refusal is None:
            return form
        return type(form.__name__, (_ShowsRefusal, form), {"refusal": refusal})

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as error:
            self.message_user(request, f"Nothing was deleted: {_text(error)}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """``django.contrib.admin.utils.get_deleted_objects`` with derived rows counted,
        not listed (and not needing a delete permission: they are rebuilt anyway)."""
        try:
            first = objs[0]
        except IndexError:
            return [], {}, set(), []
        collector = _DerivedRowsCounted(using=router.db_for_write(type(first)), origin=objs)
        collector.collect(objs)
        perms_needed: set[str] = set()

        def format_callback(obj: models.Model) -> str:
            opts = obj._meta
            plain = f"{capfirst(opts.verbose_name)}: {obj}"
            if not self.admin_site.is_registered(type(obj)):
                return plain
            if not self.admin_site.get_model_admin(type(obj)).has_delete_permission(request, obj):
                perms_needed.add(str(opts.verbose_name))
            try:
                url = reverse(
                    f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                    args=(quote(obj.pk),),
                )
            except NoReverseMatch:
                return plain
            return format_html('{}: <a href="{}">{}</a>', capfirst(opts.verbose_name), url, obj)

        to_delete = collector.nested(format_callback)
        protected = [format_callback(obj) for obj in collector.protected]
        model_count = {
            model._meta.verbose_name_plural: len(rows)
            for model, rows in cast(dict[Any, Any], collector.model_objs).items()
        }
        derived = collector.derived_rows()
        if derived:
            to_delete.append(f"{derived:,} affected-tailnet rows (derived from the impact windows)")
            model_count[TailnetImpact._meta.verbose_name_plural] = derived
        return to_delete, model_count, perms_needed, protected


class _TailnetSlugSearchAdmin(BaseAdmin):
    """Search a big table by the exact slug of its tailnet: an index lookup on the
    unique slug, where Django's case-insensitive search would scan every tailnet."""

    search_fields = ("tailnet__slug",)  # shows the search box; the lookup is below
    search_help_text = "Exact tailnet slug."

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(tailnet__slug__in={term, term.lower()}), False


class ConstraintCheckingForm(forms.ModelForm):
    """A ModelForm skips the model's check constraints that involve a field the form
    does not edit (read-only fields). Check them all, so a bad combination is a form
    error instead of an IntegrityError."""

    def validate_unique(self) -> None:
        super().validate_unique()
        if self.errors:
            return
        try:
            self.instance.validate_constraints()
        except ValidationError as error:
            for message in error.messages:
                self.add_error(None, message)


class _SelectedObjectFilter(admin.SimpleListFilter):
    """Filter by one related object named in the URL (a link from its page) without
    offering a choice of all of them: there may be millions."""

    related_model: type[models.Model]

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        pk = whole_number(value)
        if value is None or pk is None:
            return []
        obj = self.related_model._default_manager.filter(pk=pk).first()
        return [(value, str(obj) if obj is not None else f"#{value} (gone)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        pk = whole_number(value)
        if pk is None:
            raise IncorrectLookupParameters(f"Not an id: {value!r}")
        return queryset.filter(**{str(self.parameter_name): pk})


class _CachedChoicesInline(admin.TabularInline):
    """Every row of an inline would run its own query for the choices of a small
    foreign key (shards, components); evaluate them once per page instead."""

    cached_choice_fields: tuple[str, ...] = ()

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.ModelChoiceField | None:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and db_field.name in self.cached_choice_fields:
            # iter(): list() of the iterator itself would COUNT(*) first.
            field.choices = list(iter(cast(Iterable[Any], field.choices)))
        return field


# --- Components and shards --------------------------------------------------------------


@admin.register(ComponentGroup)
class ComponentGroupAdmin(BaseAdmin):
    list_display = ("name", "position", "component_count", "created_at")
    list_editable = ("position",)
    search_fields = ("name",)
    ordering = ("position", "name")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ComponentGroup]:
        return super().get_queryset(request).annotate(component_count=Count("components"))

    @admin.display(description="components", ordering="component_count")
    def component_count(self, obj: Any) -> int:
        return obj.component_count


@admin.register(Component)
class ComponentAdmin(BaseAdmin):
    list_display = ("name", "slug", "group", "kind", "region", "position", "showcase")
    list_filter = ("kind", "region", "group", "showcase")
    search_fields = ("slug", "name", "region")
    list_select_related = ("group",)
    prepopulated_fields = {"slug": ("name",)}
    ordering = ("group__position", "position", "name")


@admin.register(Shard)
class ShardAdmin(BaseAdmin):
    form = ConstraintCheckingForm
    list_display = (
        "slug",
        "public_name",
        "region",
        "component",
        "active",
        "latency_threshold",
    )
    list_filter = ("region", "component", "active")
    search_fields = ("slug", "public_name", "region")
    list_select_related = ("component",)
    ordering = ("region", "slug")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ("tailnets_now", "created_at")
    fields = (
        "slug",
        "public_name",
        "region",
        "component",
        "probe_url",
        "latency_threshold_ms",
        "active",
        "tailnets_now",
        "created_at",
    )

    @admin.display(description="latency threshold", ordering="latency_threshold_ms")
    def latency_threshold(self, obj: Shard) -> str:
        if obj.latency_threshold_ms is None:
            return f"default ({settings.SHARD_LATENCY_THRESHOLD_MS} ms)"
        return f"{obj.latency_threshold_ms} ms"

    @admin.display(description="tailnets on it now")
    def tailnets_now(self, obj: Shard) -> str:
        if obj.pk is None:
            return "—"
        count = Placement.objects.filter(shard=obj, ends_at__isnull=True).count()
        url = _admin_url(Placement, "changelist") + f"?shard__id__exact={obj.pk}&current=yes"
        return format_html('<a href="{}">{} tailnets</a>', url, f"{count:,}")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A shard that tailnets lived on is history: deactivate it instead. (Listing
        # the placements that protect it would load them all.)
        if obj is not None and (obj.placements.exists() or obj.impacts.exists()):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


# --- Tailnets and placements ------------------------------------------------------------


class CurrentShardFilter(admin.SimpleListFilter):
    title = "current shard"
    parameter_name = "current_shard"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), slug) for pk, slug in Shard.objects.values_list("pk", "slug")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() is None:
            return queryset
        return queryset.filter(
            placements__shard_id=int(self.value() or 0), placements__ends_at__isnull=True
        )


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Not deleted"), ("yes", "Deleted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        return queryset


DERIVED_NOTE = (
    "Derived from the fleet event log: read-only. A correction is a fleet event "
    "(live-migrate or delete the tailnet, or add a fleet event)."
)


class PlacementInline(admin.TabularInline):
    """A tailnet's placements, newest first: derived from the fleet event log."""

    model = Placement
    fields = ("shard", "starts_at", "ends_at", "current")
    readonly_fields = fields
    ordering = ("-starts_at",)
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = f"placements ({DERIVED_NOTE})"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Placement]:
        return super().get_queryset(request).select_related("shard")

    @admin.display(description="current", boolean=True)
    def current(self, obj: Placement) -> bool:
        return obj.ends_at is None

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tailnet)
class TailnetAdmin(BaseAdmin):
    """Tailnets as the fleet feed derived them, read-only (the fleet app's admin
    extends this one with the operator's changes, which are fleet events)."""

    list_display = ("slug", "display_name", "current_shard", "created_at", "deleted")
    search_fields = ("slug", "display_name")
    list_filter = (CurrentShardFilter, DeletedFilter)
    ordering = ("slug",)
    list_per_page = 100
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    inlines = (PlacementInline,)
    fields = ("slug", "display_name", "deleted", "created_at", "current_shard", "impacts")
    readonly_fields = ("slug", "deleted", "created_at", "current_shard", "impacts")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tailnet]:
        current = Placement.objects.filter(tailnet=OuterRef("pk"), ends_at__isnull=True)
        return (
            super()
            .get_queryset(request)
            .annotate(current_shard_slug=Subquery(current.values("shard__slug")[:1]))
        )

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return self.inlines if obj is not None else ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Never deleted as a row: a deleted tailnet keeps its history (a fleet event
        # marks it deleted), and blast radius counts the tailnets that existed during
        # a window (incidents.queries).
        return False

    @admin.display(description="current shard", ordering="current_shard_slug")
    def current_shard(self, obj: Any) -> str:
        return getattr(obj, "current_shard_slug", None) or "—"

    @admin.display(description="deleted", ordering="deleted_at")
    def deleted(self, obj: Tailnet) -> str:
        if obj.deleted_at is None:
            return "—"
        return format_html(
            '<strong class="tailnet-deleted">Deleted {}</strong>', _utc(obj.deleted_at)
        )

    @admin.display(description="impacts")
    def impacts(self, obj: Tailnet) -> str:
        rows = list(
            TailnetImpact.objects.filter(tailnet=obj)
            .select_related("incident", "shard")
            .order_by("-starts_at", "-id")[: TAILNET_IMPACTS_SHOWN + 1]
        )
        if not rows:
            return "No incident has touched this tailnet."
        more = len(rows) > TAILNET_IMPACTS_SHOWN
        rows = rows[:TAILNET_IMPACTS_SHOWN]
        body = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            '<td title="{} s">{}</td></tr>',
            (
                (
                    _admin_url(Incident, "change", row.incident_id),
                    row.incident.title,
                    row.shard.slug,
                    row.get_level_display(),
                    _utc(row.starts_at),
                    _utc(row.ends_at, "ongoing"),
                    row.seconds,
                    _minutes(row.seconds),
                )
                for row in rows
            ),
        )
        url = _admin_url(TailnetImpact, "changelist") + f"?tailnet__id__exact={obj.pk}"
        return format_html(
            "<table><thead><tr><th>Incident</th><th>Shard</th><th>Level</th>"
            "<th>From</th><th>Until</th><th>Minutes</th></tr></thead><tbody>{}</tbody>"
            '</table><p>{}<a href="{}">All impacts of this tailnet</a></p>',
            body,
            f"The latest {TAILNET_IMPACTS_SHOWN} are shown. " if more else "",
            url,
        )


class CurrentPlacementFilter(admin.SimpleListFilter):
    title = "current"
    parameter_name = "current"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Current (no end)"), ("no", "Ended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(ends_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(ends_at__isnull=False)
        return queryset


@admin.register(Placement)
class PlacementAdmin(_TailnetSlugSearchAdmin):
    """Placements as the fleet feed derived them from its event log: read-only."""

    list_display = ("placement", "shard_slug", "starts_at", "ends", "is_current")
    list_filter = (CurrentPlacementFilter, "shard")
    list_select_related = ("tailnet", "shard")
    fields = ("tailnet", "shard", "starts_at", "ends_at", "note")
    readonly_fields = fields
    list_per_page = 100
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra_context = {**(extra_context or {}), "subtitle": DERIVED_NOTE}
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="tailnet", ordering="tailnet__slug")
    def placement(self, obj: Placement) -> str:
        return obj.tailnet.slug

    @admin.display(description="shard", ordering="shard__slug")
    def shard_slug(self, obj: Placement) -> str:
        return obj.shard.slug

    @admin.display(description="ends at", ordering="ends_at")
    def ends(self, obj: Placement) -> str:
        return _utc(obj.ends_at, "— current —")

    @admin.display(description="current", boolean=True)
    def is_current(self, obj: Placement) -> bool:
        return obj.ends_at is None

    @admin.display(description="where it comes from")
    def note(self, obj: Placement) -> str:
        url = _admin_url(Tailnet, "change", obj.tailnet_id)
        return format_html(
            '{} The events behind it are on <a href="{}">its tailnet\'s page</a>.',
            DERIVED_NOTE,
            url,
        )


# --- Incidents --------------------------------------------------------------------------


class IncidentComponentInline(_CachedChoicesInline):
    model = IncidentComponent
    fields = ("component", "status")
    cached_choice_fields = ("component",)
    extra = 0
    verbose_name = "affected component"
    verbose_name_plural = "affected components (the status an operator set)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[IncidentComponent]:
        return super().get_queryset(request).select_related("component")  # for its __str__


class ShardImpactInline(_CachedChoicesInline):
    model = ShardImpact
    fields = ("shard", "level", "starts_at", "ends_at")
    cached_choice_fields = ("shard",)
    ordering = ("starts_at", "id")
    extra = 0
    verbose_name = "shard impact window"
    verbose_name_plural = (
        "shard impact windows (who is affected is recomputed from these after saving)"
    )


class UpdateInlineForm(forms.ModelForm):
    """New updates go through ``services.incident_post_update`` (it sets the
    incident's status and closes its windows on resolve), so their time is now. A
    posted update's status is history: only its text and time can be corrected
    (``services.incident_update_edit``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["status"].disabled = True
        elif "display_at" in self.fields:
            self.fields["display_at"].disabled = True


class IncidentUpdateInline(admin.StackedInline):
    model = IncidentUpdate
    form = UpdateInlineForm
    fields = ("status", "body", "display_at", "created_by", "preview")
    readonly_fields = ("created_by", "preview")
    ordering = ("-display_at", "-id")
    extra = 0
    verbose_name = "update"
    verbose_name_plural = "timeline updates (body in Markdown; a new update sets the status)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[IncidentUpdate]:
        return super().get_queryset(request).select_related("created_by")

    @admin.display(description="as shown")
    def preview(self, obj: IncidentUpdate) -> SafeString | str:
        return obj.body_html if obj.pk else "—"  # sanitized by incidents.markdown


class FollowUpInline(admin.TabularInline):
    """The improvements this incident led to. Public on its page once the postmortem
    is published; written through ``services.follow_up_add`` and its siblings."""

    model = FollowUp
    fields = ("text", "owner", "status", "done_on")
    ordering = ("created_at", "id")
    extra = 0
    verbose_name = "follow-up"
    verbose_name_plural = (
        "follow-ups (plain text; public once the postmortem is published; a done one "
        "needs its UTC done date)"
    )


class IncidentForm(forms.ModelForm):
    body = forms.CharField(
        label="First update",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="Markdown. The first entry of the public timeline: say what is happening.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._adding and "started_at" in self.fields:
            self.fields["started_at"].required = False
            self.fields["started_at"].help_text = (
                "When customers were first affected. Empty: now, or the scheduled "
                "start of a maintenance."
            )

    @property
    def _adding(self) -> bool:
        return self.instance._state.adding

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        kind = cleaned.get("kind", self.instance.kind)
        # The service checks the rest when saving: see BaseAdmin.
        if self._adding and kind == IncidentKind.MAINTENANCE and "status" not in self.changed_data:
            cleaned["status"] = IncidentStatus.SCHEDULED  # the form's default is an incident's
        return cleaned

    def _post_clean(self) -> None:
        # Only build the instance: the service validates it when saving, in the
        # operator's words (an empty start, for one, means "now" to the service).
        self.instance = construct_instance(
            self, self.instance, self._meta.fields, self._meta.exclude
        )


@admin.register(Incident)
class IncidentAdmin(BaseAdmin):
    form = IncidentForm
    list_display = (
        "title",
        "kind",
        "status",
        "impact",
        "published",
        "source",
        "started_at",
        "resolved_at",
        "duration",
        "affected",
    )
    list_filter = ("kind", "status", "impact", "published", "source")
    search_fields = ("title",)
    date_hierarchy = "started_at"
    ordering = ("-started_at", "-id")
    list_per_page = 50
    actions = ("publish_selected", "recompute_affected_tailnets", "resolve_selected")
    inlines = (IncidentComponentInline, ShardImpactInline, IncidentUpdateInline, FollowUpInline)

    ADD_FIELDSETS = (
        (
            None,
            {"fields": ("title", "kind", "status", "impact", "source", "published", "body")},
        ),
        (
            "Timing",
            {"fields": ("started_at", "detected_at", "scheduled_for", "scheduled_until")},
        ),
    )
    CHANGE_FIELDSETS = (
        (
            None,
            {
                "fields": (
                    "title",
                    ("kind", "status"),
                    "impact",
                    "source",
                    ("published", "published_at"),
                    "public_page",
                ),
                "description": "To change the status, post an update below.",
            },
        ),
        (
            "Timing",
            {
                "fields": (
                    "started_at",
                    "detected_at",
                    ("resolved_at", "duration"),
                    ("scheduled_for", "scheduled_until"),
                )
            },
        ),
        ("Affected tailnets", {"fields": ("affected_tailnets",)}),
        ("Postmortem", {"fields": ("postmortem", "postmortem_published_at")}),
        (
            "Bookkeeping",
            {
                "classes": ("collapse",),
                "fields": (
                    "created_by",
                    "created_at",
                    "updated_at",
                    "impacts_changed_at",
                    "impacts_computed_at",
                ),
            },
        ),
    )
    CHANGE_READONLY = (
        "kind",
        "status",
        "published_at",
        "public_page",
        "resolved_at",
        "duration",
        "affected_tailnets",
        "created_by",
        "created_at",
        "updated_at",
        "impacts_changed_at",
        "impacts_computed_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Incident]:
        affected = (
            TailnetImpact.objects.filter(incident=OuterRef("pk"))
            .order_by()
            .values("incident")
            .annotate(n=Count("tailnet", distinct=True))
            .values("n")
        )
        return (
            super().get_queryset(request).annotate(affected_count=Coalesce(Subquery(affected), 0))
        )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.ADD_FIELDSETS if obj is None else self.CHANGE_FIELDSETS

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else self.CHANGE_READONLY

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        if obj is None:  # the first update is the form's "First update"
            return (IncidentComponentInline, ShardImpactInline)
        return self.inlines

    # --- List columns

    @admin.display(description="duration")
    def duration(self, obj: Incident) -> str:
        now = timezone.now()
        if obj.started_at is None:
            return "—"
        if obj.started_at > now:
            return "not started"
        text = duration_text(span_seconds(obj.started_at, obj.resolved_at, as_of=now))
        return text if obj.resolved_at else f"{text} so far"

    @admin.display(description="affected tailnets", ordering="affected_count")
    def affected(self, obj: Any) -> str:
        count = getattr(obj, "affected_count", 0) or 0
        if not count:
            return "0"
        url = _admin_url(TailnetImpact, "changelist") + f"?incident__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, f"{count:,}")

    @admin.display(description="public page")
    def public_page(self, obj: Incident) -> str:
        if not obj.published:
            return "Draft: not on the public page."
        try:
            url = reverse("public:incident", args=[obj.pk])
        except NoReverseMatch:
            return "—"
        return format_html('<a href="{}">{}</a>', url, url)

    @admin.display(description="blast radius")
    def affected_tailnets(self, obj: Incident) -> str:
        """Who this incident touched: the blast radius by worst level, then the
        longest-hit tailnets. Five queries, however many tailnets."""
        if obj.pk is None:
            return "—"
        rows = TailnetImpact.objects.filter(incident=obj)
        row_count = rows.count()
        status = self._recompute_status(obj)
        if not row_count:
            return format_html(
                "<p>No tailnet was on an impacted shard during the impact windows. {}</p>",
                status,
            )
        radius = incident_blast_radius(incident=obj)
        by_level = format_html_join(
            ", ",
            "{}: {}",
            (
                (level.label, f"{radius.by_level[level.value]:,}")
                for level in reversed(ImpactLevel)
                if radius.by_level.get(level.value)
            ),
        )
        longest = rows.select_related("tailnet", "shard").order_by(
            "-seconds", "tailnet__slug", "starts_at"
        )[:AFFECTED_ROWS_SHOWN]
        table = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td title="{}">{}</td><td>{}</td>'
            '<td>{}</td><td>{}</td><td title="{} s">{}</td></tr>',
            (
                (
                    _admin_url(Tailnet, "change", row.tailnet_id),
                    row.tailnet.slug,
                    row.tailnet.display_name,
                    row.shard.public_name,
                    row.shard.slug,
                    row.get_level_display(),
                    _utc(row.starts_at),
                    _utc(row.ends_at, "ongoing"),
                    row.seconds,
                    _minutes(row.seconds),
                )
                for row in longest
            ),
        )
        shown = min(row_count, AFFECTED_ROWS_SHOWN)
        url = _admin_url(TailnetImpact, "changelist") + f"?incident__id__exact={obj.pk}"
        return format_html(
            "<p><strong>{}</strong> ({}). {}</p>"
            "<table><thead><tr><th>Tailnet</th><th>Name</th><th>Shard</th><th>Level</th>"
            "<th>Overlap start</th><th>Overlap end</th><th>Minutes</th></tr></thead>"
            "<tbody>{}</tbody></table>"
            '<p>{} of {} rows, longest first. <a href="{}">All {} affected tailnets</a></p>',
            str(radius),
            by_level,
            status,
            table,
            f"{shown:,}",
            f"{row_count:,}",
            url,
            f"{radius.affected:,}",
        )

    @staticmethod
    def _recompute_status(obj: Incident) -> str:
        if obj.impacts_computed_at is None:
            return "Not computed yet: a recompute is queued."
        if obj.impacts_computed_at < obj.impacts_changed_at:
            return (
                f"Computed {_utc(obj.impacts_computed_at)}; the windows or placements "
                f"changed since ({_utc(obj.impacts_changed_at)}): a recompute is queued."
            )
        return f"Computed {_utc(obj.impacts_computed_at)}."

    # --- Saving through the services

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            created = services.incident_create(
                title=obj.title,
                body=form.cleaned_data["body"],
                kind=obj.kind,
                status=obj.status,
                impact=obj.impact,
                source=obj.source,
                published=obj.published,
                started_at=obj.started_at,
                detected_at=obj.detected_at,
                scheduled_for=obj.scheduled_for,
                scheduled_until=obj.scheduled_until,
                by=_by(request),
            )
            _adopt(obj, created)
            return
        edited = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in services.EDITABLE_FIELDS
        }
        if edited:
            services.incident_edit(incident=obj, changes=edited, by=_by(request))
        if "published" in form.changed_data:
            publish = services.incident_publish if obj.published else services.incident_unpublish
            publish(incident=obj, by=_by(request))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        formset.save(commit=False)  # the rows as edited, for the services to write
        incident = form.instance
        if formset.model is ShardImpact:
            services.shard_impacts_save(
                incident=incident,
                add=[_window_spec(window) for window in formset.new_objects],
                change={window: _window_spec(window) for window, _ in formset.changed_objects},
                delete=formset.deleted_objects,
                by=_by(request),
            )
        elif formset.model is IncidentComponent:
            services.incident_components_save(
                incident=incident,
                statuses={
                    link.component: link.status
                    for link in [*formset.new_objects, *(o for o, _ in formset.changed_objects)]
                },
                remove=[
                    *(link.component for link in formset.deleted_objects),
                    # A row switched to another component unlinks the one it had.
                    *(
                        IncidentComponent.objects.get(pk=link.pk).component
                        for link, fields in formset.changed_objects
                        if "component" in fields
                    ),
                ],
                by=_by(request),
            )
        elif formset.model is IncidentUpdate:
            for update in formset.deleted_objects:
                services.incident_update_delete(update=update, by=_by(request))
            for update, _ in formset.changed_objects:
                services.incident_update_edit(
                    update=update, body=update.body, display_at=update.display_at, by=_by(request)
                )
            formset.new_objects = [
                services.incident_post_update(
                    incident=incident, status=update.status, body=update.body, by=_by(request)
                )
                for update in formset.new_objects
            ]
        elif formset.model is FollowUp:
            for follow_up in formset.deleted_objects:
                services.follow_up_remove(follow_up=follow_up, by=_by(request))
            for follow_up, fields in formset.changed_objects:
                services.follow_up_change(
                    follow_up=follow_up,
                    changes={
                        name: getattr(follow_up, name)
                        for name in fields
                        if name in services.FOLLOW_UP_FIELDS
                    },
                    by=_by(request),
                )
            formset.new_objects = [
                services.follow_up_add(
                    incident=incident,
                    text=follow_up.text,
                    owner=follow_up.owner,
                    status=follow_up.status,
                    done_on=follow_up.done_on,
                    by=_by(request),
                )
                for follow_up in formset.new_objects
            ]
        else:
            super().save_formset(request, form, formset, change)

    # --- Actions

    @admin.action(description="Publish selected incidents", permissions=["change"])
    def publish_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        published = 0
        for incident in queryset.filter(published=False):
            try:
                services.incident_publish(incident=incident, by=_by(request))
            except ValidationError as error:
                self.message_user(request, f"{incident}: {_text(error)}", messages.ERROR)
            else:
                published += 1
        self.message_user(request, f"Published {published} incident(s).", messages.SUCCESS)

    @admin.action(description="Recompute affected tailnets", permissions=["change"])
    def recompute_affected_tailnets(
        self, request: HttpRequest, queryset: QuerySet[Incident]
    ) -> None:
        queued = services.tailnet_impacts_queue(incident_ids=queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            f"Queued a recompute of the affected tailnets of {queued} incident(s).",
            messages.SUCCESS,
        )

    @admin.action(description="Resolve selected incidents", permissions=["change"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        resolved, skipped = 0, 0
        for incident in queryset:
            if incident.status in CLOSED_STATUSES:
                skipped += 1
                continue
            try:
                services.incident_resolve(incident=incident, by=_by(request))
            except ValidationError as error:
                self.message_user(
                    request, f"Not resolved: {incident}: {_text(error)}", messages.ERROR
                )
            else:
                resolved += 1
        if resolved:
            self.message_user(request, f"Resolved {resolved} incident(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"{skipped} incident(s) were already closed.", messages.WARNING
            )


def _window_spec(window: ShardImpact) -> services.WindowSpec:
    return services.WindowSpec(window.shard, window.level, window.starts_at, window.ends_at)


class _IncidentStatusForm(ConstraintCheckingForm):
    """A standalone update: a new one goes through ``incident_post_update``; a posted
    one keeps its status (history) and may have its text and time corrected."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "status" in self.fields:
            self.fields["status"].disabled = True

    def validate_constraints(self) -> None:
        pass  # the service checks the status against the incident's kind


@admin.register(IncidentUpdate)
class IncidentUpdateAdmin(BaseAdmin):
    form = _IncidentStatusForm
    list_display = ("display_at", "incident", "status", "excerpt", "created_by")
    list_filter = ("status", "incident__kind")
    search_fields = ("body", "incident__title")
    list_select_related = ("incident", "created_by")
    autocomplete_fields = ("incident",)
    date_hierarchy = "display_at"
    ordering = ("-display_at", "-id")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("incident", "status", "body")
        return ("incident", "status", "body", "display_at", "created_by", "created_at", "preview")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else ("incident", "created_by", "created_at", "preview")

    @admin.display(description="body")
    def excerpt(self, obj: IncidentUpdate) -> str:
        return obj.body if len(obj.body) <= 80 else obj.body[:79] + "…"

    @admin.display(description="as shown")
    def preview(self, obj: IncidentUpdate) -> SafeString | str:
        return obj.body_html if obj.pk else "—"  # sanitized by incidents.markdown

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            services.incident_update_edit(
                update=obj, body=obj.body, display_at=obj.display_at, by=_by(request)
            )
            return
        created = services.incident_post_update(
            incident=obj.incident, status=obj.status, body=obj.body, by=_by(request)
        )
        _adopt(obj, created)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.incident_update_delete(update=obj, by=_by(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for update in queryset:
                services.incident_update_delete(update=update, by=_by(request))


class OngoingFilter(admin.SimpleListFilter):
    title = "ongoing"
    parameter_name = "ongoing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Ongoing (no end)"), ("no", "Ended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(ends_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(ends_at__isnull=False)
        return queryset


@admin.register(ShardImpact)
class ShardImpactAdmin(BaseAdmin):
    form = ConstraintCheckingForm
    list_display = ("window", "incident", "shard", "level", "starts_at", "ends", "length")
    list_filter = ("level", OngoingFilter, "shard")
    search_fields = ("incident__title", "=shard__slug")
    list_select_related = ("incident", "shard")
    autocomplete_fields = ("incident",)
    date_hierarchy = "starts_at"
    ordering = ("-starts_at", "-id")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("incident", "shard", "level", "starts_at", "ends_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else ("incident",)

    @admin.display(description="window", ordering="pk")
    def window(self, obj: ShardImpact) -> str:
        return f"#{obj.pk}"

    @admin.display(description="ends at", ordering="ends_at")
    def ends(self, obj: ShardImpact) -> str:
        return _utc(obj.ends_at, "ongoing")

    @admin.display(description="length")
    def length(self, obj: ShardImpact) -> str:
        seconds = span_seconds(obj.starts_at, obj.ends_at, as_of=timezone.now())
        text = duration_text(seconds)
        return text if obj.ends_at else f"{text} so far"

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            created = services.shard_impact_add(
                incident=obj.incident,
                shard=obj.shard,
                level=obj.level,
                starts_at=obj.starts_at,
                ends_at=obj.ends_at,
                by=_by(request),
            )
            _adopt(obj, created)
            return
        services.shard_impacts_save(
            incident=obj.incident, change={obj: _window_spec(obj)}, by=_by(request)
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.shard_impact_delete(impact=obj, by=_by(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for window in queryset.select_related("incident", "shard"):
                services.shard_impact_delete(impact=window, by=_by(request))


# --- Affected tailnets (derived, read-only) ---------------------------------------------


class IncidentSelectedFilter(_SelectedObjectFilter):
    title = "incident"
    parameter_name = "incident__id__exact"
    related_model = Incident


class TailnetSelectedFilter(_SelectedObjectFilter):
    title = "tailnet"
    parameter_name = "tailnet__id__exact"
    related_model = Tailnet


@admin.register(TailnetImpact)
class TailnetImpactAdmin(_TailnetSlugSearchAdmin):
    """Derived rows, rebuilt by the recompute: read-only here."""

    list_display = (
        "row",
        "tailnet_link",
        "incident_link",
        "shard",
        "level",
        "starts_at",
        "ends",
        "minutes",
    )
    list_filter = (IncidentSelectedFilter, TailnetSelectedFilter, "level", OngoingFilter, "shard")
    list_select_related = ("tailnet", "incident", "shard")
    list_per_page = 100
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        if IncidentSelectedFilter.parameter_name in request.GET:
            return ("-seconds", "id")  # the longest-hit tailnets of the incident first
        if TailnetSelectedFilter.parameter_name in request.GET:
            return ("-starts_at", "-id")
        return ("-id",)  # the primary key: no sort of the whole table

    @admin.display(description="row", ordering="pk")
    def row(self, obj: TailnetImpact) -> str:
        return f"#{obj.pk}"

    @admin.display(description="tailnet", ordering="tailnet__slug")
    def tailnet_link(self, obj: TailnetImpact) -> str:
        return format_html(
            '<a href="{}">{}</a>', _admin_url(Tailnet, "change", obj.tailnet_id), obj.tailnet.slug
        )

    @admin.display(description="incident", ordering="incident__started_at")
    def incident_link(self, obj: TailnetImpact) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            _admin_url(Incident, "change", obj.incident_id),
            obj.incident.title,
        )

    @admin.display(description="ends at", ordering="ends_at")
    def ends(self, obj: TailnetImpact) -> str:
        return _utc(obj.ends_at, "ongoing")

    @admin.display(description="minutes", ordering="seconds")
    def minutes(self, obj: TailnetImpact) -> str:
        return _minutes(obj.seconds)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Audit trail (read-only) ------------------------------------------------------------
# Written by the services (incidents/audit.py) in the same transaction as each change.


def _audit_actor(entry: AuditEntry) -> str:
    """The token (and whose it is) or the user a change was made by."""
    if entry.token_id is not None and entry.token is not None:
        token = format_html(
            'token <a href="{}">{}</a> ({}…)',
            _admin_url(ApiToken, "change", entry.token_id),
            entry.token.name,
            entry.token.prefix,
        )
        if entry.user is not None:
            return format_html("{}, created by {}", token, entry.user)
        return token
    if entry.user is not None:
        return str(entry.user)
    if entry.system:
        return entry.get_system_display()
    return "—"


def _audit_summary(entry: AuditEntry) -> str:
    changes = entry.changes if isinstance(entry.changes, dict) else {}
    if not changes:
        return "—"
    parts = []
    for field, value in changes.items():
        edits = ("incident.edit", "follow_up.change")
        if isinstance(value, list) and len(value) == 2 and entry.action in edits:
            text = f"{field}: {value[0]!s:.40} → {value[1]!s:.40}"
        else:
            text = f"{field}: {value!s:.60}"
        parts.append(text)
    return "; ".join(parts)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Who changed what, when: view only, for everyone, superusers included."""

    list_display = ("at", "action", "incident_link", "actor", "remote_addr")
    list_filter = ("action", "system", "at")
    search_fields = ("action", "incident__title", "user__username", "token__name", "=token__prefix")
    search_help_text = "Action, incident title, user name, token name or exact token prefix."
    list_select_related = ("incident", "user", "token")
    date_hierarchy = "at"
    ordering = ("-at", "-id")
    fields = (
        "at",
        "action",
        "incident_link",
        "actor",
        "remote_addr",
        "idempotency_key",
        "changes_json",
    )
    readonly_fields = fields

    @admin.display(description="incident", ordering="incident__started_at")
    def incident_link(self, obj: AuditEntry) -> str:
        if obj.incident_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            _admin_url(Incident, "change", obj.incident_id),
            obj.incident.title if obj.incident else obj.incident_id,
        )

    @admin.display(description="by")
    def actor(self, obj: AuditEntry) -> str:
        return _audit_actor(obj)

    @admin.display(description="changes")
    def changes_json(self, obj: AuditEntry) -> str:
        import json

        return format_html("<pre>{}</pre>", json.dumps(obj.changes, indent=2, sort_keys=True))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditEntryInline(admin.TabularInline):
    """The incident's audit trail on its page, newest first, read-only."""

    model = AuditEntry
    fields = ("at", "action", "actor", "summary")
    readonly_fields = fields
    ordering = ("-at", "-id")
    extra = 0
    can_delete = False
    verbose_name = "audit entry"
    verbose_name_plural = "audit trail (who changed this incident, from any door)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEntry]:
        return super().get_queryset(request).select_related("user", "token")

    @admin.display(description="by")
    def actor(self, obj: AuditEntry) -> str:
        return _audit_actor(obj)

    @admin.display(description="changes")
    def summary(self, obj: AuditEntry) -> str:
        return _audit_summary(obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Shown on the change page only: IncidentAdmin.get_inlines lists the add page's inlines.
IncidentAdmin.inlines = (*IncidentAdmin.inlines, AuditEntryInline)  # type: ignore[assignment]
