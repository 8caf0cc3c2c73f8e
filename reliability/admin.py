"""SLA policies in the admin: a policy with its credit tiers inline, and the
tailnets assigned a policy of their own. Django's change history records who
changed what."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin

from .models import SlaCreditTier, SlaPolicy, TailnetSla


class TierFormSet(forms.BaseInlineFormSet):
    """A worse month never owes less: the lower the threshold, the higher the credit."""

    def clean(self) -> None:
        super().clean()
        tiers: list[tuple[Decimal, Decimal]] = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE"):
                continue
            if data.get("below_percent") is not None and data.get("credit_percent") is not None:
                tiers.append((data["below_percent"], data["credit_percent"]))
        tiers.sort(reverse=True)
        for (higher, less), (lower, more) in itertools.pairwise(tiers):
            if more < less:
                raise forms.ValidationError(
                    f"Below {lower} % owes {more} % but below {higher} % owes {less} %: "
                    "a worse month cannot owe less credit."
                )


class TierInline(admin.TabularInline):
    model = SlaCreditTier
    formset = TierFormSet
    extra = 1
    verbose_name_plural = "credit tiers (a month strictly below the threshold owes the credit)"


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "target_percent",
        "maintenance_notice_hours",
        "is_default",
        "tiers_text",
    )
    fields = ("name", "target_percent", "maintenance_notice_hours", "is_default")
    inlines = (TierInline,)

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).prefetch_related("tiers")

    @admin.display(description="credit tiers")
    def tiers_text(self, obj: SlaPolicy) -> str:
        return "; ".join(str(tier) for tier in obj.tiers.all()) or "none"


@admin.register(TailnetSla)
class TailnetSlaAdmin(admin.ModelAdmin):
    list_display = ("tailnet", "policy")
    list_select_related = ("tailnet", "policy")
    list_filter = ("policy",)
    search_fields = ("tailnet__slug", "tailnet__display_name")
    autocomplete_fields = ("tailnet",)
    ordering = ("tailnet__slug",)
