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
from .tokens import api_token_create, api_token_revoke


class ApiTokenCreateForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("name", "scope", "tailnet")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scope") == ApiToken.Scope.TAILNET and not data.get("tailnet"):
            self.add_error("tailnet", "A tailnet token needs its tailnet.")
        if data.get("scope") != ApiToken.Scope.TAILNET and data.get("tailnet"):
            self.add_error("tailnet", "Only tailnet tokens belong to a tailnet.")
        return data


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "scope", "prefix", "tailnet", "created_by", "created_at",
                    "last_used_at", "revoked_at")  # fmt: skip
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "tailnet__slug")
    list_select_related = ("tailnet", "created_by")
    raw_id_fields = ("tailnet",)
    actions = ["revoke"]
    readonly_fields = ("name", "scope", "prefix", "tailnet", "created_by", "created_at",
                       "last_used_at", "revoked_at")  # fmt: skip

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiTokenCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            return  # tokens are immutable; revoke and create a new one
        token, secret = api_token_create(
            name=obj.name, scope=obj.scope, tailnet=obj.tailnet, by=request.user
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
