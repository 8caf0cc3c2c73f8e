"""Probe health for operators: regions and their last rounds, what detection
believes about each shard, and the raw samples and rollups behind it."""

from django.contrib import admin
from django.http import HttpRequest

from . import rollup
from .models import ProbeRegion, ProbeRollup, ProbeSample, ShardState


@admin.register(ProbeRegion)
class ProbeRegionAdmin(admin.ModelAdmin):
    list_display = (
        "slug",
        "name",
        "active",
        "agent_last_batch_at",
        "agent_buffer_depth",
        "agent_clock_skew_seconds",
        "future_refused_total",
        "agent_dropped_total",
    )
    list_filter = ("active",)
    search_fields = ("slug", "name")
    readonly_fields = (
        "agent_last_batch_at",
        "agent_buffer_depth",
        "agent_clock_skew_seconds",
        "future_refused_total",
        "agent_dropped_total",
        "late_batches_total",
        "last_round_at",
        "last_round_seconds",
        "last_queue_lag_seconds",
    )


@admin.register(ShardState)
class ShardStateAdmin(admin.ModelAdmin):
    list_display = ("shard", "state", "since", "p95_ms", "last_sample_at", "incident")
    list_filter = ("state",)
    list_select_related = ("shard", "incident")
    search_fields = ("shard__slug", "shard__public_name")
    readonly_fields = [f.name for f in ShardState._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ProbeSample)
class ProbeSampleAdmin(_ReadOnly):
    list_display = ("started_at", "shard", "region", "ok", "latency_ms", "error", "status_code")
    list_filter = ("ok", "error", "region")
    list_select_related = ("shard", "region")
    search_fields = ("shard__slug",)
    date_hierarchy = "started_at"
    show_full_result_count = False
    list_per_page = 100


@admin.register(ProbeRollup)
class ProbeRollupAdmin(_ReadOnly):
    list_display = (
        "bucket_start", "granularity", "shard", "region", "count", "failures", "p50", "p95", "p99",
    )  # fmt: skip
    list_filter = ("granularity", "region")
    list_select_related = ("shard", "region")
    search_fields = ("shard__slug",)
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description="p50 ms")
    def p50(self, obj: ProbeRollup) -> float | None:
        return rollup.quantile_ms(obj.histogram, 0.5)

    @admin.display(description="p95 ms")
    def p95(self, obj: ProbeRollup) -> float | None:
        return rollup.quantile_ms(obj.histogram, 0.95)

    @admin.display(description="p99 ms")
    def p99(self, obj: ProbeRollup) -> float | None:
        return rollup.quantile_ms(obj.histogram, 0.99)
