"""The Celery broker refused, then hanging, then back (the cache stays up).

Throughout: reports are saved (and triaged once the broker is back, by the sweep);
operator writes through the operator API answer promptly (a publish costs a request
its timeout at most once per breaker period in each web process); a change published
through the operator API reaches ``/`` and the v2 JSON within seconds with no worker
able to hear of it (the web rebuilds the snapshot itself).
"""

import math
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from faults.conftest import (
    ALICE,
    BROKER_BREAKER_SECONDS,
    Figures,
    Stack,
    Tally,
    api_json,
    format_attempts,
    log,
    report_form,
    report_id,
    run_loops,
    timed,
    wait_for,
)

REFUSED_SECONDS = 15
HANGING_SECONDS = 25
SLOW_SECONDS = 1.0
WRITE_PAUSE_SECONDS = 0.25
# The published change must be on the page within this long (the web checks the
# version about once a second and rebuilds in the background).
FOLLOW_SECONDS = 15
# The sweeps (reports every minute, for reports a minute old) catch up within this.
CATCH_UP_SECONDS = 150


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Operator:
    def __init__(self, stack: Stack, token: str) -> None:
        self.base = stack.web_url + "/api/v1/incidents/"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def create(self, title: str, **fields: Any) -> requests.Response:
        body = {"title": title, "body": "Investigating.", "published": True, **fields}
        return self.session.post(self.base, json=body, timeout=30)

    def resolve(self, incident_id: int) -> requests.Response:
        return self.session.post(f"{self.base}{incident_id}/resolve", json={}, timeout=30)


def breaker_bound(seconds: float, processes: int) -> int:
    """Requests a breaker lets wait on a failing broker: one per process per period."""
    return processes * (math.ceil(seconds / BROKER_BREAKER_SECONDS) + 1)


def test_broker_refused_then_hanging(alive: Stack, figures: Figures, staff_token: str) -> None:
    stack = alive
    operator = Operator(stack, staff_token)
    alice = stack.browser()
    alice.login(ALICE.username, ALICE.password)
    visitor = stack.browser()
    # The shard most tailnets are on now: the incidents below affect some.
    shard = stack.one(
        "SELECT s.slug FROM incidents_shard s JOIN incidents_placement p ON p.shard_id = s.id "
        "WHERE s.active AND p.ends_at IS NULL GROUP BY s.slug ORDER BY count(*) DESC LIMIT 1"
    )
    assert visitor.get("/").status_code == 200

    tally = Tally()
    saved: list[str] = []
    writes: dict[str, list[tuple[str, float]]] = {"refused": [], "hanging": []}
    follow: dict[str, float | None] = {}
    follow_ids: list[int] = []
    phase = ["refused"]

    def record(kind: str) -> None:
        # One thread per kind: its last outcome is the one just made.
        outcome = tally.of(kind)[-1]
        writes[phase[0]].append((kind, outcome.seconds))

    def operator_writes() -> None:
        title = f"Fault suite write {secrets.token_hex(4)}"
        created = timed(
            tally, "operator write", lambda: operator.create(title), lambda a: a.status_code == 201
        )
        record("operator write")
        incident_id = api_json(created).get("id")
        if isinstance(incident_id, int):
            time.sleep(WRITE_PAUSE_SECONDS)
            timed(
                tally,
                "operator write",
                lambda: operator.resolve(incident_id),
                lambda a: a.status_code in (200, 201),
            )
            record("operator write")

    def reports() -> None:
        answer = timed(
            tally,
            "report",
            lambda: alice.post_form("/report/", report_form(description="broker down")),
            lambda a: report_id(a) is not None,
        )
        record("report")
        found = report_id(answer) if answer is not None else None
        if found:
            saved.append(found)

    def follow_check() -> None:
        """Publish an incident (with an impact window, so a recompute is owed), then
        poll the public page until it shows it."""
        time.sleep(2)
        title = f"Fault suite follow {phase[0]} {secrets.token_hex(4)}"
        now = datetime.now(UTC)
        window = {
            "shard": shard,
            "level": "partial",
            "starts_at": iso(now - timedelta(minutes=5)),
            "ends_at": iso(now - timedelta(minutes=1)),
        }
        created = operator.create(title, shard_impacts=[window])
        assert created.status_code == 201, f"{created.status_code}: {created.text[:500]}"
        follow_ids.append(created.json()["id"])
        published_at = time.monotonic()

        def shown() -> bool:
            page = visitor.get("/", timeout=5)
            summary = visitor.get("/api/v2/summary.json", timeout=5)
            return title in page.text and title in summary.text

        try:
            wait_for(f"{title!r} on /", shown, timeout=FOLLOW_SECONDS, every=0.5)
            follow[phase[0]] = time.monotonic() - published_at
        except AssertionError:
            follow[phase[0]] = None

    loops = {"operator": operator_writes, "reports": reports}
    base = stack.proxy.counts()
    log("broker: refused")
    stack.proxy.set_mode("broker", "refuse")
    run_loops(loops, seconds=REFUSED_SECONDS, pause=WRITE_PAUSE_SECONDS, during=follow_check)
    refused = stack.attempts(base, "broker")
    after_refused = stack.proxy.counts()

    log("broker: hanging")
    phase[0] = "hanging"
    stack.proxy.set_mode("broker", "hang")
    run_loops(loops, seconds=HANGING_SECONDS, pause=WRITE_PAUSE_SECONDS, during=follow_check)
    hanging = stack.attempts(after_refused, "broker")

    log("broker: back")
    stack.proxy.set_mode("broker", "pass")
    died = stack.ensure_running()
    back_at = time.monotonic()
    stored = stack.one("SELECT count(*) FROM reports_report WHERE public_id = ANY(%s)", [saved])

    def caught_up() -> bool:
        untriaged = stack.one(
            "SELECT count(*) FROM reports_report WHERE public_id = ANY(%s) AND status = 'new'",
            [saved],
        )
        stale = stack.one(
            "SELECT count(*) FROM incidents_incident WHERE id = ANY(%s) "
            "AND (impacts_computed_at IS NULL OR impacts_computed_at < impacts_changed_at)",
            [follow_ids],
        )
        return untriaged == 0 and stale == 0

    try:
        wait_for("the sweeps to catch up", caught_up, timeout=CATCH_UP_SECONDS, every=2)
        caught_up_in: float | None = time.monotonic() - back_at
    except AssertionError:
        caught_up_in = None
    untriaged = stack.one(
        "SELECT count(*) FROM reports_report WHERE public_id = ANY(%s) AND status = 'new'",
        [saved],
    )
    stale = stack.one(
        "SELECT count(*) FROM incidents_incident WHERE id = ANY(%s) "
        "AND (impacts_computed_at IS NULL OR impacts_computed_at < impacts_changed_at)",
        [follow_ids],
    )
    impacts = stack.one(
        "SELECT count(*) FROM incidents_tailnetimpact WHERE incident_id = ANY(%s)", [follow_ids]
    )
    for incident_id in follow_ids:
        operator.resolve(incident_id)

    def slow(phase_name: str, kind: str) -> int:
        return sum(1 for k, s in writes[phase_name] if k == kind and s > SLOW_SECONDS)

    def count(phase_name: str, kind: str) -> int:
        return sum(1 for k, _ in writes[phase_name] if k == kind)

    processes = stack.web_processes
    bounds = {
        "refused": breaker_bound(REFUSED_SECONDS, processes),
        "hanging": breaker_bound(HANGING_SECONDS, processes),
    }

    def shown(value: float | None) -> str:
        return f"not within {FOLLOW_SECONDS} s" if value is None else f"after {value:.1f} s"

    figures.add(
        f"broker refused {REFUSED_SECONDS} s then hanging {HANGING_SECONDS} s: "
        f"operator writes {tally.summary('operator write')}, slower than {SLOW_SECONDS:g} s: "
        f"{slow('refused', 'operator write')} of {count('refused', 'operator write')} while "
        f"refused, {slow('hanging', 'operator write')} of {count('hanging', 'operator write')} "
        f"while hanging (breaker bound {bounds['refused']}/{bounds['hanging']}); "
        f"reports {tally.summary('report')}, slow {slow('refused', 'report')}+"
        f"{slow('hanging', 'report')}, lost {len(saved) - stored}, untriaged {untriaged}; "
        f"published change on / and summary.json: refused {shown(follow.get('refused'))}, "
        f"hanging {shown(follow.get('hanging'))}; caught up "
        + ("not" if caught_up_in is None else f"{caught_up_in:.0f} s")
        + f" after the broker came back (recomputes owed {stale}, {impacts} affected-tailnet "
        f"rows); connection attempts refused: {format_attempts(refused, 'broker')}; "
        f"hanging: {format_attempts(hanging, 'broker')}; "
        f"processes that died (started again): {', '.join(died) or 'none'}"
    )

    assert not tally.errors("report"), f"reports: {tally.summary('report')}"
    assert stored == len(saved), f"{len(saved) - stored} of {len(saved)} saved reports lost"
    assert not tally.errors("operator write"), f"operator writes: {tally.summary('operator write')}"
    for phase_name in ("refused", "hanging"):
        for kind in ("operator write", "report"):
            slow_ones, done = slow(phase_name, kind), count(phase_name, kind)
            assert slow_ones <= bounds[phase_name], (
                f"{slow_ones} of {done} {kind}s took over {SLOW_SECONDS:g} s while the broker "
                f"was {phase_name} (at most {bounds[phase_name]}: one per web process per "
                f"{BROKER_BREAKER_SECONDS} s breaker period)"
            )
            assert done - slow_ones >= slow_ones, (
                f"{kind}s did not answer promptly while the broker was {phase_name}: "
                f"{slow_ones} of {done} took over {SLOW_SECONDS:g} s"
            )
    for phase_name in ("refused", "hanging"):
        assert follow.get(phase_name) is not None, (
            f"an incident published while the broker was {phase_name} was not on / and "
            f"summary.json within {FOLLOW_SECONDS} s"
        )
    assert untriaged == 0, (
        f"{untriaged} of {len(saved)} reports untriaged {CATCH_UP_SECONDS} s after the broker "
        "came back"
    )
    assert stale == 0, f"{stale} incidents' affected tailnets never recomputed"
    assert impacts > 0, "the published incidents' affected tailnets were never computed"
    # The Celery worker may exit when its broker connection drops while it holds an
    # unacknowledged message: kombu 5.7.0's Redis transport fails restoring it
    # ("'NoneType' object has no attribute 'hostname'", Unrecoverable error). In
    # production its supervisor starts it again (as ensure_running did above, and the
    # catch-up was checked after that); the figure line reports it. Nothing else may die.
    assert not set(died) - {"worker"}, (
        f"died during the outage: {', '.join(died)} (started again for the checks above; "
        f"see the logs in {stack.tmp})"
    )
