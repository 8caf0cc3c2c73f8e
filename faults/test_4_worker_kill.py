"""A Celery worker killed (SIGKILL, its whole process group) mid-recompute and
mid-detection, and a new one started at once.

To catch both tasks in the middle, the suite holds table locks in PostgreSQL (through a
direct connection): the recompute of one incident waits at its ``DELETE`` of the
affected-tailnet rows, and a detection run (``probes.detect``, queued by the agents'
batches) waits at its ``UPDATE`` of the shards' detection states; then the worker is
killed and the locks released. The agents keep posting throughout (they need no
worker). With the suite's short visibility timeout the unacknowledged recompute and
detection runs must be handed out again and redone; detection must catch up with every
shard's samples; no sample may be lost or stored twice; no incident may be left with
its affected tailnets stale.
"""

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import requests

from faults.conftest import (
    BROKER_DB,
    PROBE_INTERVAL_SECONDS,
    VISIBILITY_TIMEOUT_SECONDS,
    Figures,
    Stack,
    log,
    wait_for,
)

RECOMPUTE = "incidents.recompute_tailnet_impacts"
DETECT = "probes.detect"
# kombu's Redis transport looks for messages past their visibility timeout when a
# worker starts and then every unacked_restore_interval x unacked_restore_throttle
# seconds (10 x 10 by default).
RESTORE_SWEEP_SECONDS = 100
REDONE_WITHIN_SECONDS = VISIBILITY_TIMEOUT_SECONDS + RESTORE_SWEEP_SECONDS + 20
STUCK_WITHIN_SECONDS = 90
# The agents deliver each tick's samples within this long.
DELIVERED_WITHIN_SECONDS = 6 * PROBE_INTERVAL_SECONDS


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def unacked(stack: Stack) -> list[tuple[str, str]]:
    """(task name, task id) of every message handed out and not acknowledged."""
    found = []
    for raw in stack.redis(BROKER_DB).hvals("unacked"):
        message: Any = json.loads(raw)[0]
        headers = message.get("headers") or {}
        found.append((str(headers.get("task")), str(headers.get("id"))))
    return found


def waiting_on_lock(stack: Stack, statement: str) -> int:
    return int(
        stack.one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE %s",
            [f"%{statement}%"],
        )
    )


def stuck_incidents(stack: Stack) -> list[int]:
    return [
        row[0]
        for row in stack.sql(
            "SELECT i.id FROM incidents_incident i WHERE i.impacts_computed_at < "
            "i.impacts_changed_at OR (i.impacts_computed_at IS NULL AND EXISTS "
            "(SELECT 1 FROM incidents_shardimpact si WHERE si.incident_id = i.id))"
        )
    ]


def test_worker_killed_mid_detection_and_mid_recompute(
    alive: Stack, figures: Figures, staff_token: str
) -> None:
    stack = alive
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {staff_token}"
    base = stack.web_url + "/api/v1/incidents/"
    shard = stack.one(
        "SELECT s.slug FROM incidents_shard s JOIN incidents_placement p ON p.shard_id = s.id "
        "WHERE s.active AND p.ends_at IS NULL GROUP BY s.slug ORDER BY count(*) DESC LIMIT 1"
    )
    now = datetime.now(UTC)
    created = api.post(
        base,
        json={
            "title": "Fault suite: recompute killed",
            "body": "Investigating.",
            "published": False,
            "shard_impacts": [
                {
                    "shard": shard,
                    "level": "outage",
                    "starts_at": iso(now - timedelta(minutes=30)),
                    "ends_at": iso(now - timedelta(minutes=20)),
                }
            ],
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text[:500]
    incident = created.json()["id"]
    wait_for(
        "the new incident's affected tailnets",
        lambda: incident not in stuck_incidents(stack),
        timeout=60,
        every=1,
    )
    rows_before = stack.one(
        "SELECT count(*) FROM incidents_tailnetimpact WHERE incident_id = %s", [incident]
    )
    assert rows_before > 0, "the incident affects no tailnet: nothing to recompute"

    locked_at: datetime = stack.one("SELECT now()")
    # Detection's view is compared with the samples from a little before the locks.
    compared_from = locked_at - timedelta(seconds=12 * PROBE_INTERVAL_SECONDS)
    impacts_lock = psycopg.connect(stack.pg_url, connect_timeout=5)
    states_lock = psycopg.connect(stack.pg_url, connect_timeout=5)
    try:
        # 1. A recompute in the middle: its DELETE waits for this lock.
        impacts_lock.execute("LOCK TABLE incidents_tailnetimpact IN SHARE MODE")
        added = api.post(
            f"{base}{incident}/impacts",
            json={
                "shard": shard,
                "level": "partial",
                "starts_at": iso(now - timedelta(minutes=15)),
                "ends_at": iso(now - timedelta(minutes=10)),
            },
            timeout=30,
        )
        assert added.status_code in (200, 201), f"{added.status_code}: {added.text[:500]}"
        wait_for(
            "a recompute waiting at its DELETE",
            lambda: waiting_on_lock(stack, "DELETE FROM incidents_tailnetimpact"),
            timeout=30,
            every=0.2,
        )
        # 2. A detection run in the middle (queued by an agent's batch): its UPDATE of
        # the shards' detection states waits for this lock; the agents' samples keep
        # being stored meanwhile.
        states_lock.execute("LOCK TABLE probes_shardstate IN SHARE MODE")
        wait_for(
            "a detection run waiting at its UPDATE",
            lambda: waiting_on_lock(stack, "UPDATE probes_shardstate"),
            timeout=30,
            every=0.2,
        )
        held = unacked(stack)
        killed_recomputes = [task_id for name, task_id in held if name == RECOMPUTE]
        killed_detections = [task_id for name, task_id in held if name == DETECT]
        killed_cut: datetime = stack.one("SELECT now()")
        behind_at_kill = stack.detection_behind(compared_from, killed_cut)
        log(f"killing the worker with {len(held)} tasks unacknowledged: {held}")
        killed_at = time.monotonic()
        stack.kill("worker")
    finally:
        impacts_lock.rollback()
        states_lock.rollback()
        impacts_lock.close()
        states_lock.close()
    stack.start_worker("worker2")
    stack.wait_worker_ready("worker2")
    ready_at = time.monotonic()
    ready_cut: datetime = stack.one("SELECT now()")

    assert killed_recomputes, f"no recompute was unacknowledged when the worker was killed: {held}"
    assert killed_detections, (
        f"no detection run was unacknowledged when the worker was killed: {held}"
    )

    # Detection sees every sample stored up to the new worker's start.
    try:
        wait_for(
            "detection to catch up with every (shard, region)'s latest sample",
            lambda: stack.detection_behind(compared_from, ready_cut) == 0,
            timeout=STUCK_WITHIN_SECONDS,
            every=1,
        )
        caught_up_after: float | None = time.monotonic() - ready_at
    except AssertionError:
        caught_up_after = None
    behind_after = stack.detection_behind(compared_from, ready_cut)

    def succeeded(task: str, ids: list[str]) -> list[str]:
        text = stack.log_text("worker2")
        return [task_id for task_id in ids if f"{task}[{task_id}] succeeded" in text]

    def redone() -> bool:
        return len(succeeded(RECOMPUTE, killed_recomputes)) == len(killed_recomputes) and len(
            succeeded(DETECT, killed_detections)
        ) == len(killed_detections)

    try:
        wait_for(
            "the killed recompute and detection runs redone by the new worker",
            redone,
            timeout=REDONE_WITHIN_SECONDS,
            every=1,
        )
        redone_after: float | None = time.monotonic() - killed_at
    except AssertionError:
        redone_after = None
    recomputes_redone = succeeded(RECOMPUTE, killed_recomputes)
    detections_redone = succeeded(DETECT, killed_detections)
    with contextlib.suppress(AssertionError):
        wait_for(
            "no incident with stale affected tailnets",
            lambda: not stuck_incidents(stack),
            timeout=STUCK_WITHIN_SECONDS,
            every=2,
        )
    stuck = stuck_incidents(stack)
    rows_after = stack.one(
        "SELECT count(*) FROM incidents_tailnetimpact WHERE incident_id = %s", [incident]
    )
    # The agents need no worker: every tick of every region from the locks to now is
    # stored, once.
    span_end: datetime = stack.one("SELECT now()")
    coverage = stack.wait_coverage(
        "every tick across the kill stored once",
        locked_at,
        span_end,
        timeout=DELIVERED_WITHIN_SECONDS,
    )
    duplicates = stack.duplicates()
    killed = set(killed_recomputes) | set(killed_detections)
    still_unacked = [entry for entry in unacked(stack) if entry[1] in killed]

    figures.add(
        f"worker killed (SIGKILL) with {len(held)} tasks unacknowledged "
        f"({len(killed_recomputes)} recompute, {len(killed_detections)} detection runs): "
        f"redone by the new worker {len(recomputes_redone)} of {len(killed_recomputes)} "
        f"recompute and {len(detections_redone)} of {len(killed_detections)} detection runs, "
        + ("not all" if redone_after is None else f"all {redone_after:.0f} s after the kill")
        + f" (visibility timeout {VISIBILITY_TIMEOUT_SECONDS} s); affected-tailnet rows "
        f"{rows_before} -> {rows_after}; (shard, region) pairs whose latest sample "
        f"detection had not seen at the kill {behind_at_kill}, after "
        + (
            f"{behind_after}"
            if caught_up_after is None
            else f"0 ({caught_up_after:.0f} s after the new worker was ready)"
        )
        + f"; agents' samples across the kill {coverage}; samples stored twice {duplicates}; "
        f"incidents stuck {len(stuck)}"
    )

    assert redone_after is not None, (
        f"the killed tasks were not all redone within {REDONE_WITHIN_SECONDS} s: recompute "
        f"{len(recomputes_redone)} of {len(killed_recomputes)}, detection "
        f"{len(detections_redone)} of {len(killed_detections)} (still unacknowledged: "
        f"{still_unacked})"
    )
    assert behind_at_kill > 0, (
        "detection was not held: its states had seen every (shard, region)'s latest sample"
    )
    assert behind_after == 0, (
        f"detection never caught up: {behind_after} (shard, region) pairs' latest samples unseen"
    )
    assert coverage.complete, f"agents' samples across the kill: {coverage}"
    assert duplicates == 0, f"{duplicates} probe samples stored twice"
    assert not stuck, f"incidents whose affected tailnets stay stale: {stuck}"
    assert rows_after > rows_before, (
        f"the second window's tailnets are missing: {rows_before} rows before, {rows_after} after"
    )
