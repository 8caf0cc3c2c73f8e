"""Subscriptions and the outbox for operators.

Subscriptions are made by the people they belong to (the subscribe page, a tailnet's
page, its API), never here; here they are found, turned on again, unsubscribed or
deleted, each through the services. A webhook's secret is shown only by its first
characters. Deliveries are read-only: what was owed, sent, retried or given up on,
with the last error. Both tables can be large: no full counts, no select of every
tailnet (search by its slug instead).
"""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import Delivery, Subscription


class ConfirmedFilter(admin.SimpleListFilter):
    title = "confirmed"
    parameter_name = "confirmed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Confirmed"), ("no", "Waiting for confirmation")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(confirmed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(confirmed_at__isnull=True)
        return queryset


class SubscriberFilter(admin.SimpleListFilter):
    title = "subscriber"
    parameter_name = "subscriber"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("public", "Public"), ("tailnet", "A tailnet's")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "public":
            return queryset.filter(tailnet__isnull=True)
        if self.value() == "tailnet":
            return queryset.filter(tailnet__isnull=False)
        return queryset


def secret_hint(secret: str) -> str:
    """The first characters of a secret, enough to tell two apart."""
    return f"{secret[:4]}…" if secret else ""


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("target", "channel", "tailnet", "format", "confirmed_at", "active",
                    "disabled_reason", "created_at")  # fmt: skip
    list_filter = ("channel", SubscriberFilter, "active", ConfirmedFilter, "format")
    search_fields = ("email", "url", "tailnet__slug", "tailnet__display_name")
    list_select_related = ("tailnet",)
    fields = ("channel", "tailnet", "email", "url", "secret_start", "format", "components",
              "confirmed_at", "active", "disabled_reason", "failing_since", "created_by",
              "created_at")  # fmt: skip
    readonly_fields = fields
    actions = ("enable", "unsubscribe")
    ordering = ("-created_at",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Email or URL")
    def target(self, obj: Subscription) -> str:
        return obj.email or obj.url

    @admin.display(description="Secret")
    def secret_start(self, obj: Subscription) -> str:
        return secret_hint(obj.secret)

    def delete_model(self, request: HttpRequest, obj: Subscription) -> None:
        services.subscription_remove(subscription=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in queryset:
            services.subscription_remove(subscription=subscription)

    @admin.action(description="Turn the selected webhooks on again")
    def enable(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        done = 0
        for subscription in queryset.filter(channel=Subscription.Channel.WEBHOOK):
            try:
                services.webhook_enable(subscription=subscription)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
            else:
                done += 1
        self.message_user(request, f"Turned {done} webhook(s) on.", messages.SUCCESS)

    @admin.action(description="Unsubscribe the selected subscriptions")
    def unsubscribe(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        count = 0
        for subscription in queryset.filter(active=True):
            services.subscription_unsubscribe(subscription=subscription)
            count += 1
        self.message_user(request, f"Unsubscribed {count}.", messages.SUCCESS)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "type", "status", "to", "tailnet", "incident", "attempts",
                    "response_status", "last_error", "sent_at")  # fmt: skip
    list_filter = ("status", "type")
    search_fields = ("=id", "subscription__email", "subscription__url", "tailnet__slug",
                     "last_error")  # fmt: skip
    list_select_related = ("subscription", "tailnet", "incident")
    readonly_fields = ("id", "subscription", "to", "tailnet", "incident", "type", "window_start",
                       "update_id", "status", "attempts", "next_attempt_at", "created_at",
                       "sent_at", "response_status", "last_error")  # fmt: skip
    fields = readonly_fields
    ordering = ("-created_at",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="To")
    def to(self, obj: Delivery) -> str:
        return obj.subscription.email or obj.subscription.url
