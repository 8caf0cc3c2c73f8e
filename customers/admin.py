"""Memberships, invitations and accounts for operators.

Staff see every tailnet's people here. An invitation can't be added here (its
link's secret is only ever in the email the members page sends) but can be
withdrawn; its stored digest is shown read-only. Tailnets can be millions of rows:
both pages pick them with a search box, never a select of all of them. Accounts are
Django's user admin, with one more action: deactivating many at once, through the
service that revokes the API tokens they made (as saving one account does).
"""

from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from . import services
from .models import Invitation, Membership


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "user_email", "tailnet", "role", "created_at")
    list_filter = ("role",)
    search_fields = (
        "user__username",
        "user__email",
        "tailnet__slug",
        "tailnet__display_name",
    )
    autocomplete_fields = ("user", "tailnet")
    list_select_related = ("user", "tailnet")
    ordering = ("tailnet__slug", "user__username")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="Email", ordering="user__email")
    def user_email(self, obj: Membership) -> str:
        return obj.user.email

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Moving a membership to another person or tailnet would be a removal that
        # revokes nothing: delete it and add another instead.
        return ("user", "tailnet") if obj is not None else ()


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("pending", "Pending"),
            ("accepted", "Accepted"),
            ("revoked", "Withdrawn"),
            ("expired", "Expired"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        open_ = queryset.filter(accepted_at__isnull=True, revoked_at__isnull=True)
        match self.value():
            case "pending":
                return open_.filter(expires_at__gt=now)
            case "accepted":
                return queryset.filter(accepted_at__isnull=False)
            case "revoked":
                return queryset.filter(revoked_at__isnull=False)
            case "expired":
                return open_.filter(expires_at__lte=now)
        return queryset


def invitation_state(invitation: Invitation, now: datetime) -> str:
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "withdrawn"
    if invitation.expires_at <= now:
        return "expired"
    return "pending"


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "tailnet", "role", "state", "invited_by", "created_at", "expires_at")
    list_filter = (StateFilter, "role")
    search_fields = (
        "email",
        "tailnet__slug",
        "tailnet__display_name",
        "invited_by__username",
        "accepted_by__username",
    )
    list_select_related = ("tailnet", "invited_by")
    fields = (
        "tailnet",
        "email",
        "role",
        "state",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
        "digest",
    )
    # Only what decides the link's fate is editable: when it expires.
    readonly_fields = (
        "tailnet",
        "email",
        "role",
        "state",
        "invited_by",
        "created_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
        "digest",
    )
    actions = ("revoke",)
    ordering = ("-created_at",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="State")
    def state(self, obj: Invitation) -> str:
        return invitation_state(obj, timezone.now())

    @admin.action(description="Withdraw the selected invitations (their links stop working)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        count = queryset.filter(accepted_at__isnull=True, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        self.message_user(request, f"Withdrew {count} invitation(s).", messages.SUCCESS)


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(UserAdmin):
    actions = ("deactivate",)

    @admin.action(
        description="Deactivate the selected accounts (the API tokens they made stop working)",
        permissions=["change"],
    )
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = services.users_deactivate(users=queryset)
        self.message_user(
            request,
            f"Deactivated {count} account(s); the API tokens they made no longer work.",
            messages.SUCCESS,
        )
