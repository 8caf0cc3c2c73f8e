"""demo.fleet's benchmark fleet: the same plan for the same seed, whatever order its
chunks are planned in, and histories the placements table accepts."""

import itertools

from demo.fleet import (
    DAY,
    DESIGNATED_MIGRATIONS,
    BenchFleet,
    bench_incidents_plan,
    bench_shards,
    placements,
)

END = 1_796_601_600  # a midnight
START = END - 90 * DAY


def fleet(tailnets: int = 500, shards: int = 20, seed: int = 5) -> BenchFleet:
    layout = [(n + 1, region) for n, (_, region, _) in enumerate(bench_shards(shards))]
    shard_ids = [pk for pk, _ in layout]
    by_region: dict[str, list[int]] = {}
    for pk, region in layout:
        by_region.setdefault(region, []).append(pk)
    _, designated = bench_incidents_plan(
        seed=seed,
        tailnets=tailnets,
        days=90,
        shard_ids=shard_ids,
        by_region=by_region,
        window_start=START,
        window_end=END,
    )
    return BenchFleet(
        tailnets=tailnets,
        shard_ids=shard_ids,
        region_of=dict(layout),
        by_region=by_region,
        designated=designated,
        window_start=START,
        window_end=END,
        seed=seed,
    )


def rows(plan: BenchFleet) -> list[tuple[int, int, int, int | None]]:
    result = []
    for first in plan.chunks:
        ids, _, histories = plan.chunk(first)
        for tid, history in zip(ids, histories, strict=True):
            result += [(tid, *row) for row in placements(history)]
    return result


def test_the_same_seed_plans_the_same_fleet():
    assert rows(fleet()) == rows(fleet())
    assert rows(fleet(seed=6)) != rows(fleet())


def test_placements_are_consecutive_with_one_open_per_tailnet():
    plan = fleet()
    for tid, group in itertools.groupby(rows(plan), key=lambda row: row[0]):
        history = list(group)
        assert [ends for *_, ends in history].count(None) == 1
        for (_, shard, _, ends), (_, next_shard, starts, _) in itertools.pairwise(history):
            assert ends == starts
            assert shard != next_shard
        if tid in plan.designated:
            assert len(history) == DESIGNATED_MIGRATIONS + 1


def test_placements_of_a_history():
    assert list(placements([(10, 1), (20, 2), (35, 1)])) == [
        (1, 10, 20),
        (2, 20, 35),
        (1, 35, None),
    ]
