"""An agent killed (SIGKILL) in the middle of a round, then started again, twice:

- a: as soon as the round's first sample is on its disk, before it is sent (the agent
  gathers a moment's samples into one batch; the round's other probes are under way);
- b: while its batch is in the page's hands: the suite holds a lock on the samples'
  table (a direct connection to PostgreSQL) so that every agent's post of the round
  waits in the database, kills the agent, then lets the posts through. The page
  stores the dead agent's batch, which is still on the agent's disk.

Each time the new agent (same buffer) delivers what is on its disk: nothing taken
before the kill is lost, nothing is stored twice (b's batch is posted again and
stored once), and every round before and after the kill has its samples, once.
"""

import contextlib
import signal
import time
from collections.abc import Iterator
from datetime import datetime

import psycopg

from regions.conftest import (
    ALL_SHARDS,
    INTERVAL,
    REGIONS,
    Figures,
    Stack,
    gaps,
    log,
    tick_of,
    ticks_between,
    wait_for,
)

REGION = "r2"
WAITING_INSERTS = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'
      AND query ILIKE '%INSERT INTO probes_probesample%'
"""


def _stored(stack: Stack, samples: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Those of (shard, started_at) that the page has stored for REGION."""
    stored = {
        (shard, at) for shard, _, at, _ in stack.samples(region=REGION, since=time.time() - 600)
    }
    return [s for s in samples if (s[0], datetime.fromisoformat(s[1])) in stored]


def _copies(stack: Stack, samples: list[tuple[str, str]]) -> list[int]:
    """How many rows each of (shard, started_at) has for REGION."""
    return [
        int(
            stack.one(
                "SELECT count(*) FROM probes_probesample s JOIN incidents_shard sh "
                "ON sh.id = s.shard_id JOIN probes_proberegion r ON r.id = s.region_id "
                "WHERE sh.slug = %s AND r.slug = %s AND s.started_at = %s",
                [shard, REGION, datetime.fromisoformat(at)],
            )
        )
        for shard, at in samples
    ]


@contextlib.contextmanager
def _inserts_held(stack: Stack) -> Iterator[None]:
    """Samples' INSERTs wait (EXCLUSIVE lets reads through) until the block ends."""
    with psycopg.connect(stack.pg_url, connect_timeout=5) as conn:
        conn.execute("LOCK TABLE probes_probesample IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.commit()


def _restart_and_check(
    stack: Stack,
    figures: Figures,
    *,
    label: str,
    how: str,
    began: float,
    killed_at: float,
    on_disk: list[tuple[str, str]],
) -> None:
    previous_start = stack.started_at[f"agent-{REGION}"]
    time.sleep(max(0.0, killed_at + INTERVAL - time.time()))
    stored_before = len(_stored(stack, on_disk))
    restarted_at = time.time()
    stack.start_agent(REGION)
    wait_for(
        "the samples on disk at the kill to be stored and off the new agent's disk",
        lambda: (
            len(_stored(stack, on_disk)) == len(on_disk)
            and not set(on_disk) & set(stack.buffered(REGION))
        ),
        timeout=60,
    )
    delivered_after = time.time() - restarted_at
    wait_for(
        "rounds from the new agent",
        lambda: (
            len(stack.samples(region=REGION, since=restarted_at + INTERVAL)) >= 2 * len(ALL_SHARDS)
        ),
        timeout=30,
    )
    copies = _copies(stack, on_disk)
    assert copies == [1] * len(on_disk), f"samples stored other than once: {copies}"
    assert stack.duplicates() == 0
    # Every round before the kill (since the killed agent was up) and after the
    # restart (once the new one is up: a round after its start) has its samples, once.
    first_new = min(tick_of(s[2]) for s in stack.samples(region=REGION, since=restarted_at))
    before = ticks_between(max(began - 4 * INTERVAL, previous_start + INTERVAL), killed_at - 0.5)
    after = ticks_between(restarted_at + INTERVAL, time.time() - 1)
    coverage = stack.coverage([*before, *after], regions=(REGION,), since=began - 5 * INTERVAL)
    missing, twice = gaps(coverage)
    assert missing == [], f"rounds without a sample from {REGION}: {missing}"
    assert twice == [], f"rounds with two samples from {REGION}: {twice}"
    kill_round = tick_of(killed_at)
    in_kill_round = [
        s for s in stack.samples(region=REGION, since=began) if tick_of(s[2]) == kill_round
    ]
    into_round = killed_at - INTERVAL * round(killed_at / INTERVAL)
    unfinished = (
        " (probes not finished at the kill took none)"
        if len(in_kill_round) < len(ALL_SHARDS)
        else ""
    )
    figures.add(
        f"4{label} agent kill ({how}): {REGION}'s agent SIGKILLed {into_round:.2f} s after "
        f"its round's tick with {len(on_disk)} samples on disk ({stored_before} of them "
        f"stored by the page before the restart); restarted "
        f"{restarted_at - killed_at:.1f} s later: all "
        f"{len(on_disk)} stored once, {delivered_after:.1f} s after the restart; the killed "
        f"round has {len(in_kill_round)} of {len(ALL_SHARDS)} samples{unfinished}; "
        f"{len(before) + len(after)} rounds around it complete, "
        f"0 twice; {first_new - tick_of(killed_at) - 1} round(s) not probed between the kill "
        f"and the new agent's first"
    )


def test_a_killed_before_sending(alive: Stack, figures: Figures) -> None:
    stack = alive
    began = time.time()
    deadline = time.monotonic() + 4 * INTERVAL
    on_disk: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        if stack.buffer_depth(REGION):
            stack.stop(f"agent-{REGION}", signal.SIGKILL)
            on_disk = stack.buffered(REGION)
            break
        time.sleep(0.01)
    killed_at = time.time()
    assert on_disk, f"{REGION}'s agent never held a sample on disk (or sent it at once)"
    stored_at_kill = len(_stored(stack, on_disk))
    log(f"{REGION}'s agent killed with {len(on_disk)} samples on disk, {stored_at_kill} stored")
    _restart_and_check(
        stack,
        figures,
        label="a",
        how="its round on disk, not sent",
        began=began,
        killed_at=killed_at,
        on_disk=on_disk,
    )


def test_b_killed_while_its_batch_is_being_stored(alive: Stack, figures: Figures) -> None:
    stack = alive
    began = time.time()
    # Shortly before a tick, so that the round's posts all meet the lock.
    now = time.time()
    time.sleep((INTERVAL - now % INTERVAL - 0.5) % INTERVAL)
    with _inserts_held(stack):
        # Each agent posts one batch at a time: one waiting INSERT per agent means
        # REGION's is among them.
        wait_for(
            "every agent's post to wait on the lock",
            lambda: stack.one(WAITING_INSERTS) >= len(REGIONS),
            timeout=2 * INTERVAL,
            every=0.05,
        )
        on_disk = stack.buffered(REGION)
        stack.stop(f"agent-{REGION}", signal.SIGKILL)
        killed_at = time.time()
        stored_at_kill = len(_stored(stack, on_disk))
    log(f"{REGION}'s agent killed with its post waiting; {len(on_disk)} samples on its disk")
    assert on_disk, f"{REGION}'s agent had nothing on disk while its post waited"
    assert stored_at_kill == 0
    # The page finishes the dead agent's request: the batch is stored, and is still on
    # the agent's disk (it never heard the answer).
    wait_for(
        "the dead agent's batch to be stored",
        lambda: len(_stored(stack, on_disk)) == len(on_disk),
        timeout=15,
        every=0.2,
    )
    assert set(on_disk) <= set(stack.buffered(REGION))
    _restart_and_check(
        stack,
        figures,
        label="b",
        how="its batch in the page's hands, stored after the kill",
        began=began,
        killed_at=killed_at,
        on_disk=on_disk,
    )
