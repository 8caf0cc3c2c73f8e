"""One region cut off from everything (its uplink down) for about three rounds.

Its agent can reach neither the shards nor the status page: its probes fail (each
gives up before the next round) and wait on its disk. The other two regions see every
shard answer, so no incident may open (detection needs two regions to agree). Once the
link is back, the agent delivers what it measured: a sample per shard for every round
of the cut, none lost, none twice.
"""

import time

from regions.conftest import (
    ALL_SHARDS,
    INTERVAL,
    PROBE_TIMEOUT_SECONDS,
    REGIONS,
    Figures,
    Stack,
    gaps,
    log,
    tick_of,
    ticks_between,
    wait_for,
)

CUT = "r1"
ROUNDS = 3
DETECTION_SETTLE_SECONDS = INTERVAL + 2


def test_a_partitioned_region_opens_nothing_and_loses_nothing(
    alive: Stack, figures: Figures
) -> None:
    stack = alive
    others = tuple(region for region in REGIONS if region != CUT)
    began = time.time()
    cut_at = time.time()
    stack.net.cut(CUT)
    time.sleep(ROUNDS * INTERVAL + 0.5)
    # While it is cut off: nothing of the region arrives, the others go on.
    held = stack.samples(region=CUT, since=cut_at + 0.5)
    others_meanwhile = [s for s in stack.samples(since=cut_at + 0.5) if s[1] in others]
    on_disk = stack.buffer_depth(CUT)
    restored_at = time.time()
    stack.net.restore(CUT)
    assert held == [], f"{CUT} delivered samples while cut off: {held[:4]}"
    assert len(others_meanwhile) >= len(others) * len(ALL_SHARDS) * (ROUNDS - 1), (
        f"the other regions stored only {len(others_meanwhile)} samples during the cut"
    )
    ticks = ticks_between(cut_at, restored_at)
    assert len(ticks) >= ROUNDS

    def delivered() -> bool:
        coverage = stack.coverage(ticks, regions=(CUT,), since=cut_at - INTERVAL)
        return all(count >= 1 for counts in coverage.values() for count in counts.values())

    wait_for(f"{CUT}'s samples of the cut to be delivered", delivered, timeout=75)
    caught_up = time.time() - restored_at
    # Detection has seen them (it runs a moment after they commit): still no incident,
    # no shard down.
    time.sleep(DETECTION_SETTLE_SECONDS)
    coverage = stack.coverage(ticks, regions=(CUT,), since=cut_at - INTERVAL)
    missing, twice = gaps(coverage)
    cut_samples = [s for s in stack.samples(region=CUT, since=cut_at) if tick_of(s[2]) in ticks]
    failed = sum(1 for s in cut_samples if not s[3])
    # A probe started shortly before the link came back may get its answer once it is
    # back (a SYN sent again within the probe's timeout): only earlier ones must fail.
    surely_cut = [
        s for s in cut_samples if s[2].timestamp() < restored_at - PROBE_TIMEOUT_SECONDS - 0.5
    ]
    answered = [s for s in surely_cut if s[3]]
    incidents = stack.incidents_since(began)
    down = stack.down_shards()
    log(f"{CUT}: {len(cut_samples)} samples of the cut, {failed} failed; incidents {incidents}")
    assert missing == [], f"rounds of the cut with no sample from {CUT}: {missing}"
    assert twice == [], f"rounds of the cut with two samples from {CUT}: {twice}"
    assert answered == [], f"{CUT}'s probes succeeded while it was cut off: {answered}"
    assert incidents == [], f"a partition of one region opened incidents: {incidents}"
    assert down == [], f"shards down after a one-region partition: {down}"
    assert stack.duplicates() == 0
    figures.add(
        f"1 partition: {CUT} cut off {restored_at - cut_at:.1f} s ({len(ticks)} rounds): "
        f"0 incidents, 0 shards down; its {len(cut_samples)} samples of those rounds "
        f"({len(ALL_SHARDS)} shards x {len(ticks)}, {failed} failed probes, {on_disk} held on "
        f"disk at the end of the cut) delivered {caught_up:.1f} s after the link came back: "
        f"0 missing, 0 twice; meanwhile the other regions stored {len(others_meanwhile)}"
    )
