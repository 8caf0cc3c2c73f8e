"""API tokens in the admin: created here, the secret shown once, revoked here.

Imported by incidents/admin.py. Only a SHA-256 digest is stored, so a lost secret
cannot be shown again: revoke the token and create a new one.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import ApiToken
from .tokens import api_token_bind_region, api_token_create, api_token_revoke


class ApiTokenCreateForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("name", "scope", "tailnet", "probe_region")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scope") == ApiToken.Scope.PROBE and not data.get("probe_region"):
            self.add_error("probe_region", "A probe token posts for one region: choose it.")
        if data.get("scope") != ApiToken.Scope.PROBE and data.get("probe_region"):
            self.add_error("probe_region", "Only probe tokens have a region.")
        if data.get("scope") == ApiToken.Scope.TAILNET and not data.get("tailnet"):
            self.add_error("tailnet", "A tailnet token needs its tailnet.")
        if data.get("scope") != ApiToken.Scope.TAILNET and data.get("tailnet"):
            self.add_error("tailnet", "Only tailnet tokens belong to a tailnet.")
        return data


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "scope", "prefix", "tailnet", "probe_region", "created_by",
                    "created_at", "last_used_at", "revoked_at")  # fmt: skip
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "tailnet__slug")
    list_select_related = ("tailnet", "probe_region", "created_by")
    raw_id_fields = ("tailnet",)
    exclude = ("digest",)
    actions = ["revoke"]
    readonly_fields = ("name", "scope", "prefix", "tailnet", "probe_region", "created_by",
                       "created_at", "last_used_at", "revoked_at")  # fmt: skip

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiTokenCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        if _unbound_probe_token(obj):
            # Made before probe tokens had a region: refused until bound, here, once.
            return tuple(name for name in self.readonly_fields if name != "probe_region")
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            # Tokens are immutable (revoke and create a new one), but for binding an
            # unbound probe token to its region.
            if "probe_region" in form.changed_data and obj.probe_region is not None:
                token = ApiToken.objects.get(pk=obj.pk)
                api_token_bind_region(token=token, region=obj.probe_region)
            return
        token, secret = api_token_create(
            name=obj.name,
            scope=obj.scope,
            tailnet=obj.tailnet,
            probe_region=obj.probe_region,
            by=request.user,
        )
        obj.pk = token.pk
        obj.__dict__.update(token.__dict__)
        messages.warning(
            request,
            f"The token's secret, shown only this once — copy it now: {secret}",
        )

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            api_token_revoke(token=token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).")


def _unbound_probe_token(token: ApiToken) -> bool:
    return (
        token.scope == ApiToken.Scope.PROBE
        and token.probe_region_id is None
        and token.revoked_at is None
    )
