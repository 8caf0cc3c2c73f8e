"""The status page (gunicorn) stopped for 60 seconds, then started again.

The agents go on probing and keep every sample on disk while the page refuses them;
once it answers again they deliver the backlog. Afterwards every region has exactly
one sample per shard for every round of the outage: none lost, none twice.
"""

import time

from regions.conftest import (
    ALL_SHARDS,
    INTERVAL,
    REGIONS,
    Figures,
    Stack,
    gaps,
    log,
    ticks_between,
    wait_for,
)

OUTAGE_SECONDS = 60


def test_the_page_down_for_a_minute_loses_no_sample(alive: Stack, figures: Figures) -> None:
    stack = alive
    began = time.time()
    stack.stop("web")  # SIGTERM: gunicorn's own graceful stop
    stopped_at = time.time()
    log(f"gunicorn stopped in {stopped_at - began:.1f} s; the page is down")
    time.sleep(max(0.0, stopped_at + OUTAGE_SECONDS - time.time()))
    held = {region: stack.buffer_depth(region) for region in REGIONS}
    restart_at = time.time()
    stack.start_web()
    stack.wait_web()
    serving_at = time.time()
    log(f"gunicorn serving again after {serving_at - began:.1f} s; held on disk: {held}")
    # Every round begun while the page was down (the rounds in flight when it
    # stopped and started are on the edges, outside).
    ticks = ticks_between(began, restart_at)
    assert len(ticks) >= OUTAGE_SECONDS // INTERVAL - 2

    def complete() -> bool:
        coverage = stack.coverage(ticks, since=began - INTERVAL)
        return all(n >= 1 for counts in coverage.values() for n in counts.values())

    wait_for("every region's samples of the outage", complete, timeout=90, every=1)
    caught_up = time.time() - serving_at
    coverage = stack.coverage(ticks, since=began - INTERVAL)
    missing, twice = gaps(coverage)
    stored = sum(sum(counts.values()) for counts in coverage.values())
    expected = len(REGIONS) * len(ALL_SHARDS) * len(ticks)
    assert missing == [], f"rounds of the outage without a sample: {missing}"
    assert twice == [], f"rounds of the outage with two samples: {twice}"
    assert stored == expected
    assert stack.duplicates() == 0
    assert all(depth >= len(ALL_SHARDS) * (len(ticks) - 2) for depth in held.values()), (
        f"the agents held less than the outage's rounds on disk: {held}"
    )
    figures.add(
        f"3 page down: gunicorn stopped {restart_at - stopped_at:.0f} s (SIGTERM to restart "
        f"{restart_at - began:.0f} s, {len(ticks)} rounds begun meanwhile): {stored} of "
        f"{expected} samples ({len(REGIONS)} regions x "
        f"{len(ALL_SHARDS)} shards x {len(ticks)} rounds) stored, 0 missing, 0 twice; held "
        f"on disk before the restart: {', '.join(f'{r} {n}' for r, n in held.items())}; "
        f"all delivered {caught_up:.1f} s after the page served again"
    )
