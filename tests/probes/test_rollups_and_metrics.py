"""Rollups add up exactly; /metrics speaks Prometheus to those allowed to read it."""

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from plumbing.tokens import api_token_create
from probes import rollup
from probes.models import ProbeRegion, ProbeRollup, ProbeSample
from probes.services import SampleIn, retention_prune, rollups_build, samples_store
from tests.conftest import T0


@given(st.lists(st.floats(min_value=0, max_value=60_000), min_size=1, max_size=300))
def test_histogram_quantiles_bound_the_true_percentile(latencies):
    counts = rollup.histogram(latencies)
    assert sum(counts) == len(latencies)
    for q in (0.5, 0.95, 0.99):
        true = sorted(latencies)[max(1, -(-int(q * 1000) * len(latencies) // 1000)) - 1]
        estimate = rollup.quantile_ms(counts, q)
        assert estimate is not None
        assert estimate >= min(true, rollup.BUCKET_BOUNDS_MS[-1])


@given(
    st.lists(
        st.integers(min_value=0, max_value=50), min_size=rollup.N_BUCKETS, max_size=rollup.N_BUCKETS
    )
)
def test_several_quantiles_at_once_are_the_quantiles_one_by_one(counts):
    qs = (0.01, 0.5, 0.95, 0.99, 1.0)
    assert rollup.quantiles_ms(counts, qs) == [rollup.quantile_ms(counts, q) for q in qs]


def test_merging_minutes_gives_the_hour():
    minutes = [rollup.histogram([10, 200]), rollup.histogram([5000]), rollup.histogram([])]
    assert rollup.merge(minutes) == rollup.histogram([10, 200, 5000])


@pytest.fixture
def ams(db):
    return ProbeRegion.objects.create(slug="ams", name="Amsterdam")


def _store(fleet, region, at, ok=True, latency=40.0, shard="use1"):
    samples_store(
        region=region,
        samples=[
            SampleIn(
                shard_id=fleet[shard].pk,
                started_at=at,
                ok=ok,
                latency_ms=latency if ok else None,
                error="" if ok else "timeout",
            )
        ],
    )


def test_rollups_count_failures_and_latencies_and_rebuild_idempotently(fleet, ams):
    for i in range(6):
        _store(fleet, ams, T0 + timedelta(seconds=20 * i), ok=i != 3, latency=100.0 * (i + 1))
    rollups_build(since=T0, until=T0 + timedelta(minutes=5))
    rollups_build(since=T0, until=T0 + timedelta(minutes=5))

    minutes = ProbeRollup.objects.filter(granularity="minute").order_by("bucket_start")
    assert [(m.count, m.failures) for m in minutes] == [(3, 0), (3, 1)]
    hour = ProbeRollup.objects.get(granularity="hour")
    day = ProbeRollup.objects.get(granularity="day")
    assert (hour.count, hour.failures, day.count, day.failures) == (6, 1, 6, 1)
    assert hour.histogram == rollup.merge(m.histogram for m in minutes)
    assert rollup.quantile_ms(day.histogram, 0.5) == 300
    assert day.latency_max_ms == 600


def test_retention_keeps_recent_samples_and_drops_old_ones(fleet, ams, settings):
    settings.PROBE_RAW_RETENTION_DAYS = 14
    now = timezone.now()
    _store(fleet, ams, now - timedelta(days=20))
    _store(fleet, ams, now - timedelta(days=1))
    assert retention_prune(now=now) == (1, 0)
    assert ProbeSample.objects.count() == 1


def test_metrics_expose_up_latency_and_rounds_to_localhost(client, fleet, ams):
    now = timezone.now()
    _store(fleet, ams, now - timedelta(seconds=5), latency=80.0)
    _store(fleet, ams, now - timedelta(seconds=5), ok=False, shard="use2")
    rollups_build(since=now - timedelta(minutes=2), until=now + timedelta(minutes=1))
    ams.last_round_at = now
    ams.last_queue_lag_seconds = 0.25
    ams.save()

    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    up = {s.labels["shard"]: s.value for s in families["statuspage_probe_up"].samples}
    assert up == {"use1": 1.0, "use2": 0.0}
    assert "statuspage_probe_latency_seconds" in families
    lag = families["statuspage_probe_queue_lag_seconds"].samples
    assert [(s.labels["region"], s.value) for s in lag] == [("ams", 0.25)]


def test_metrics_are_hidden_from_the_internet_unless_a_token_is_given(client, fleet, ams):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404
    _, secret = api_token_create(name="prometheus", scope="metrics")
    allowed = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", headers={"Authorization": f"Bearer {secret}"}
    )
    assert allowed.status_code == 200
    _, probe_secret = api_token_create(name="probe", scope="probe", probe_region=ams)
    denied = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", headers={"Authorization": f"Bearer {probe_secret}"}
    )
    assert denied.status_code == 404
