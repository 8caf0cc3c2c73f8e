"""demo.latency: what the demo's probes measured of a shard in an hour, as the tailnet
pages chart it (p50/p95/p99 from the merged bucket histograms)."""

from datetime import UTC, datetime, timedelta

from demo.latency import ShardSpec, Window, daily_rollups, hour_rollup, hourly_rollups
from probes.rollup import merge, quantiles_ms

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
THIS_HOUR = NOW.replace(minute=0)
EU2 = ShardSpec("euc2", "eu-central", NOW - timedelta(days=900))
REGIONS = ("nyc", "sfo", "ams", "sin")


def measured(hour, windows=(), now=NOW, shard=EU2):
    """The hour's rollups from every region, and its p50, p95 and p99 merged."""
    rows = [
        hour_rollup(
            seed=1, shard=shard, region=region, region_index=k, hour=hour, now=now,
            windows=windows,
        )
        for k, region in enumerate(REGIONS)
    ]  # fmt: skip
    found = [row for row in rows if row is not None]
    return found, quantiles_ms(merge(r.histogram for r in found), (0.5, 0.95, 0.99))


def test_a_quiet_hour_is_30_to_80_ms_with_a_longer_tail():
    rows, (p50, p95, p99) = measured(THIS_HOUR - 3 * HOUR)

    assert [(r.count, r.failures) for r in rows] == [(60, 0)] * 4
    assert p50 is not None
    assert p95 is not None
    assert p99 is not None
    assert 30 <= p50 <= 100
    assert p50 <= p95 <= p99
    assert p99 > p50
    for row in rows:
        assert sum(row.histogram) == row.count
        assert row.latency_max_ms is not None
        assert 20 < row.latency_sum_ms / row.count < 120


def test_the_afternoon_is_busier_than_the_night():
    day = datetime(2026, 3, 2, tzinfo=UTC)
    assert day.weekday() == 0

    def mean(hour):
        rows, _ = measured(hour, now=day + 2 * timedelta(days=1))
        return sum(r.latency_sum_ms for r in rows) / sum(r.count for r in rows)

    afternoon = mean(day + 14 * HOUR)  # 15:00 in Frankfurt
    night = mean(day + 2 * HOUR)  # 03:00 there
    assert afternoon > 1.2 * night


def test_an_outage_fails_every_probe_and_leaves_no_latency():
    hour = THIS_HOUR - 5 * HOUR
    down = [Window("euc2", "outage", hour - MINUTE, hour + 2 * HOUR)]

    rows, percentiles = measured(hour, down)

    assert [(r.count, r.failures) for r in rows] == [(60, 60)] * 4
    assert percentiles == [None, None, None]
    assert {r.latency_max_ms for r in rows} == {None}


def test_a_partial_outage_fails_a_third_of_the_probes_and_slows_the_rest():
    hour = THIS_HOUR - 5 * HOUR
    partial = [Window("euc2", "partial", hour, hour + HOUR)]

    rows, (p50, _, p99) = measured(hour, partial)
    _, (quiet_p50, _, quiet_p99) = measured(hour)

    failures = sum(r.failures for r in rows)
    assert 0.25 * 240 < failures < 0.45 * 240
    assert None not in (p50, p99, quiet_p50, quiet_p99)
    assert p50 > quiet_p50
    assert p99 > quiet_p99


def test_a_slow_shard_answers_in_over_a_second():
    hour = THIS_HOUR - 5 * HOUR
    slow = [Window("euc2", "degraded", hour + 40 * MINUTE, None)]  # still open

    rows, (p50, p95, p99) = measured(hour, slow)

    assert sum(r.failures for r in rows) == 0
    assert None not in (p50, p95, p99)
    assert p50 <= 100  # the first 40 minutes were quick
    assert p95 >= 1500
    assert p99 >= p95


def test_the_current_hour_has_only_the_probes_so_far_and_a_new_shard_only_its_own():
    rows, _ = measured(THIS_HOUR)
    assert [r.count for r in rows] == [30, 30, 30, 30]

    newer = ShardSpec("use6", "us-east", THIS_HOUR - 2 * HOUR + 45 * MINUTE)
    rows, _ = measured(THIS_HOUR - 2 * HOUR, shard=newer)
    assert [r.count for r in rows] == [15, 15, 15, 15]
    none, _ = measured(THIS_HOUR - 3 * HOUR, shard=newer)
    assert none == []


def test_an_hour_reads_the_same_whenever_the_demo_was_seeded():
    hour = THIS_HOUR - 30 * HOUR
    seeded_now, _ = measured(hour)
    seeded_later, _ = measured(hour, now=NOW + timedelta(days=2))
    assert seeded_now == seeded_later

    other_seed = hour_rollup(
        seed=2, shard=EU2, region="nyc", region_index=0, hour=hour, now=NOW, windows=()
    )
    assert other_seed != seeded_now[0]


def test_a_week_of_hours_and_the_days_they_add_up_to():
    hours = list(hourly_rollups(seed=1, now=NOW, days=7, shards=[EU2], regions=REGIONS, windows=[]))

    assert len(hours) == 4 * 7 * 24  # 13:00 a week ago to the current hour, 12:00
    assert min(h.bucket_start for h in hours) == THIS_HOUR + HOUR - timedelta(days=7)
    assert max(h.bucket_start for h in hours) == THIS_HOUR
    days = daily_rollups(hours)
    assert len(days) == 4 * 8
    assert sum(d.count for d in days) == sum(h.count for h in hours)
    assert merge(d.histogram for d in days) == merge(h.histogram for h in hours)
    assert {d.granularity for d in days} == {"day"}
