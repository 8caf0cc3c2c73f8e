"""A Celery worker killed (SIGKILL, its whole process group) mid-recompute and
mid-round, and a new one started at once.

To catch both tasks in the middle, the suite holds table locks in PostgreSQL (through a
direct connection): the recompute of one incident waits at its ``DELETE`` of the
affected-tailnet rows, and a probe round waits at its ``INSERT`` of samples; then the
worker is killed and the locks released. With the suite's short visibility timeout the
unacknowledged recompute must be handed out again and redone; no sample may be stored
twice; no incident may be left with its affected tailnets stale.
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
    VISIBILITY_TIMEOUT_SECONDS,
    Figures,
    Stack,
    log,
    wait_for,
)

RECOMPUTE = "incidents.recompute_tailnet_impacts"
ROUND = "probes.probe_region"
# kombu's Redis transport looks for messages past their visibility timeout when a
# worker starts and then every unacked_restore_interval x unacked_restore_throttle
# seconds (10 x 10 by default).
RESTORE_SWEEP_SECONDS = 100
REDONE_WITHIN_SECONDS = VISIBILITY_TIMEOUT_SECONDS + RESTORE_SWEEP_SECONDS + 20
STUCK_WITHIN_SECONDS = 90


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


def test_worker_killed_mid_round_and_mid_recompute(
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

    impacts_lock = psycopg.connect(stack.pg_url, connect_timeout=5)
    samples_lock = psycopg.connect(stack.pg_url, connect_timeout=5)
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
        # 2. A probe round in the middle: its INSERT of samples waits for this lock.
        samples_lock.execute("LOCK TABLE probes_probesample IN SHARE MODE")
        wait_for(
            "a probe round waiting at its INSERT",
            lambda: waiting_on_lock(stack, "INSERT INTO probes_probesample"),
            timeout=30,
            every=0.2,
        )
        held = unacked(stack)
        killed_recomputes = [task_id for name, task_id in held if name == RECOMPUTE]
        killed_rounds = [task_id for name, task_id in held if name == ROUND]
        log(f"killing the worker with {len(held)} tasks unacknowledged: {held}")
        killed_at = time.monotonic()
        stack.kill("worker")
    finally:
        impacts_lock.rollback()
        samples_lock.rollback()
        impacts_lock.close()
        samples_lock.close()
    stack.start_worker("worker2")
    stack.wait_worker_ready("worker2")

    assert killed_recomputes, f"no recompute was unacknowledged when the worker was killed: {held}"
    assert killed_rounds, f"no probe round was unacknowledged when the worker was killed: {held}"

    def redone() -> bool:
        text = stack.log_text("worker2")
        return all(f"{RECOMPUTE}[{task_id}] succeeded" in text for task_id in killed_recomputes)

    try:
        wait_for(
            "the killed recompute redone by the new worker",
            redone,
            timeout=REDONE_WITHIN_SECONDS,
            every=1,
        )
        redone_after: float | None = time.monotonic() - killed_at
    except AssertionError:
        redone_after = None
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
    duplicates = stack.one(
        "SELECT count(*) FROM (SELECT 1 FROM probes_probesample "
        "GROUP BY shard_id, region_id, started_at HAVING count(*) > 1) d"
    )
    new_log = stack.log_text("worker2")
    rounds_again = [task_id for task_id in killed_rounds if f"[{task_id}] received" in new_log]
    rounds_dropped = [
        task_id
        for task_id in killed_rounds
        if f"Discarding revoked task: {ROUND}[{task_id}]" in new_log
    ]
    still_unacked = [entry for entry in unacked(stack) if entry[1] in killed_recomputes]
    samples_since = stack.one(
        "SELECT count(*) FROM probes_probesample WHERE started_at > now() - interval '20 seconds'"
    )

    figures.add(
        f"worker killed (SIGKILL) with {len(held)} tasks unacknowledged "
        f"({len(killed_recomputes)} recompute, {len(killed_rounds)} probe rounds): "
        f"recompute redone "
        + ("not" if redone_after is None else f"{redone_after:.0f} s after the kill")
        + f" (visibility timeout {VISIBILITY_TIMEOUT_SECONDS} s); affected-tailnet rows "
        f"{rows_before} -> {rows_after}; killed rounds seen again by the new worker "
        f"{len(rounds_again)} of {len(killed_rounds)}, dropped as expired {len(rounds_dropped)}; "
        f"samples duplicated {duplicates}; incidents stuck {len(stuck)}; "
        f"samples in the last 20 s {samples_since}"
    )

    assert redone_after is not None, (
        f"the killed recompute {killed_recomputes} was not redone within "
        f"{REDONE_WITHIN_SECONDS} s (still unacknowledged: {still_unacked})"
    )
    assert duplicates == 0, f"{duplicates} probe samples stored twice"
    assert not stuck, f"incidents whose affected tailnets stay stale: {stuck}"
    assert rows_after > rows_before, (
        f"the second window's tailnets are missing: {rows_before} rows before, {rows_after} after"
    )
    assert samples_since > 0, "the new worker stores no probe rounds"
