"""/metrics in Prometheus text format, read from the database at scrape time.

Web, workers and beat are separate processes, so in-process counters would each
tell a fraction of the story; the database holds the whole of it. Latency is a
GaugeHistogram over the last few minutes of rollups (Prometheus' type for a
histogram that is not a monotonic counter).
"""

from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import accumulate

from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from . import rollup
from .models import ProbeRegion, ProbeRollup, ProbeSample, ShardState

LATENCY_WINDOW = timedelta(minutes=5)
STATE_VALUE = {"unknown": -1, "up": 0, "degraded": 1, "down": 2}


class ProbeCollector(Collector):
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now or timezone.now()
        up = GaugeMetricFamily(
            "statuspage_probe_up",
            "1 if the last probe of the shard from the region succeeded.",
            labels=["shard", "region"],
        )
        seen: set[tuple[str, str]] = set()
        for shard, region, ok in (
            ProbeSample.objects.filter(started_at__gte=now - LATENCY_WINDOW)
            .order_by("-started_at")
            .values_list("shard__slug", "region__slug", "ok")
        ):
            if (shard, region) not in seen:
                seen.add((shard, region))
                up.add_metric([shard, region], 1.0 if ok else 0.0)
        yield up

        latency = GaugeHistogramMetricFamily(
            "statuspage_probe_latency_seconds",
            "Successful probe latency over the last 5 minutes.",
            labels=["shard", "region"],
        )
        merged: dict[tuple[str, str], tuple[list[int], float]] = {}
        for shard, region, histogram, total_ms in ProbeRollup.objects.filter(
            granularity="minute", bucket_start__gte=now - LATENCY_WINDOW
        ).values_list("shard__slug", "region__slug", "histogram", "latency_sum_ms"):
            counts, sum_ms = merged.get((shard, region), ([0] * rollup.N_BUCKETS, 0.0))
            merged[(shard, region)] = (rollup.merge([counts, histogram]), sum_ms + total_ms)
        for (shard, region), (counts, sum_ms) in sorted(merged.items()):
            cumulative = list(accumulate(counts))
            buckets = [
                (repr(bound / 1000), float(n))
                for bound, n in zip(rollup.BUCKET_BOUNDS_MS, cumulative, strict=False)
            ]
            buckets.append(("+Inf", float(cumulative[-1])))
            latency.add_metric([shard, region], buckets, gsum_value=sum_ms / 1000)
        yield latency

        state = GaugeMetricFamily(
            "statuspage_shard_state",
            "What detection believes: -1 no data, 0 up, 1 degraded, 2 down.",
            labels=["shard"],
        )
        for shard, value in ShardState.objects.values_list("shard__slug", "state"):
            state.add_metric([shard], STATE_VALUE.get(value, -1))
        yield state

        last_round = GaugeMetricFamily(
            "statuspage_probe_last_round_timestamp_seconds",
            "When the region's last probe round started (Unix time).",
            labels=["region"],
        )
        round_seconds = GaugeMetricFamily(
            "statuspage_probe_round_seconds", "How long the last round took.", labels=["region"]
        )
        lag = GaugeMetricFamily(
            "statuspage_probe_queue_lag_seconds",
            "Delay between scheduling a round and a worker starting it.",
            labels=["region"],
        )
        batch_age = GaugeMetricFamily(
            "statuspage_probe_agent_last_batch_age_seconds",
            "Seconds since the region's probe agent last delivered a batch: a region gone "
            "silent shows here (it never counts as a shard down).",
            labels=["region"],
        )
        depth = GaugeMetricFamily(
            "statuspage_probe_agent_buffer_depth",
            "Samples the region's agent still held on disk at its last batch.",
            labels=["region"],
        )
        skew = GaugeMetricFamily(
            "statuspage_probe_agent_clock_skew_seconds",
            "The region's agent clock minus ours, at its last batch.",
            labels=["region"],
        )
        dropped = CounterMetricFamily(
            "statuspage_probe_agent_dropped_samples",
            "Samples the region's agent dropped because its buffer was full.",
            labels=["region"],
        )
        refused = CounterMetricFamily(
            "statuspage_probe_future_samples_refused",
            "Samples refused because they started too far in the future (a wrong clock).",
            labels=["region"],
        )
        late = CounterMetricFamily(
            "statuspage_probe_late_batches",
            "Batches stored after detection's look-back had passed their first sample "
            "(an agent sending its buffer after an outage); detection read them once.",
            labels=["region"],
        )
        for vantage in ProbeRegion.objects.filter(active=True):
            if vantage.last_round_at:
                last_round.add_metric([vantage.slug], vantage.last_round_at.timestamp())
            if vantage.last_round_seconds is not None:
                round_seconds.add_metric([vantage.slug], vantage.last_round_seconds)
            if vantage.last_queue_lag_seconds is not None:
                lag.add_metric([vantage.slug], vantage.last_queue_lag_seconds)
            if vantage.agent_last_batch_at:
                age = (now - vantage.agent_last_batch_at).total_seconds()
                batch_age.add_metric([vantage.slug], max(0.0, age))
            if vantage.agent_buffer_depth is not None:
                depth.add_metric([vantage.slug], vantage.agent_buffer_depth)
            if vantage.agent_clock_skew_seconds is not None:
                skew.add_metric([vantage.slug], vantage.agent_clock_skew_seconds)
            dropped.add_metric([vantage.slug], vantage.agent_dropped_total)
            refused.add_metric([vantage.slug], vantage.future_refused_total)
            late.add_metric([vantage.slug], vantage.late_batches_total)
        yield from (last_round, round_seconds, lag, batch_age, depth, skew, dropped, refused, late)
