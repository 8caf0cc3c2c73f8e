"""PostgreSQL refused, then hanging, then back.

Throughout: ``/`` and ``/api/v2/summary.json`` from the last snapshot, also while
both web processes have threads held by requests that need the database; every
other page a clear 503 (an HTML page, status 503, within a bounded time); the probe
agents keep their samples in their buffers. Once PostgreSQL is back, pages work again
in the same web processes (no restart), the agents' samples are stored again, and
those of the outage from their buffers with nothing lost: every tick of every region
on every shard exactly once.
"""

import time
from typing import Any

import requests

from faults.conftest import (
    ALICE,
    ALICE_TAILNET,
    PROBE_INTERVAL_SECONDS,
    Browser,
    Figures,
    Stack,
    Tally,
    format_attempts,
    is_html,
    log,
    report_form,
    run_loops,
    timed,
    wait_for,
)

REFUSED_SECONDS = 15
HANGING_SECONDS = 30
# Signed-in requests that need the database, in flight at once while it hangs: most
# likely both web processes hold some (gthread: 8 threads each).
DB_BOUND_CLIENTS = 6
# A snapshot answer needs no database: it must come at once.
SNAPSHOT_TIMEOUT_SECONDS = 5
# A database-bound request must end (with its 503) well before this.
DB_BOUND_TIMEOUT_SECONDS = 25
RECOVERY_TIMEOUT_SECONDS = 60
# The agents deliver their buffers within this long after the database is back (their
# sender backs off up to 30 s between attempts while the API fails).
DELIVERED_WITHIN_SECONDS = 60 + 6 * PROBE_INTERVAL_SECONDS


def clear_503(answer: requests.Response) -> bool:
    """Status 503, a real HTML page, not Django's bare text."""
    return (
        answer.status_code == 503
        and is_html(answer)
        and "<title>" in answer.text
        and "Server Error (500)" not in answer.text
    )


def summary_ok(answer: requests.Response) -> bool:
    if answer.status_code != 200:
        return False
    try:
        body: Any = answer.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "components" in body


def signed_in(stack: Stack) -> Browser:
    browser = stack.browser(timeout=DB_BOUND_TIMEOUT_SECONDS)
    browser.login(ALICE.username, ALICE.password)
    return browser


def test_postgres_refused_then_hanging(alive: Stack, figures: Figures) -> None:
    stack = alive
    page = f"/t/{ALICE_TAILNET}/"
    readers = [stack.browser(timeout=SNAPSHOT_TIMEOUT_SECONDS) for _ in range(2)]
    members = [signed_in(stack) for _ in range(DB_BOUND_CLIENTS)]
    reporter = members[0]
    for browser in members:
        assert browser.get(page).status_code == 200
    home_before = readers[0].get("/")
    assert home_before.status_code == 200
    workers_before = stack.web_workers()

    tally = Tally()
    slowest: dict[str, float] = {}

    def reader(n: int) -> Any:
        browser = readers[n]

        def body() -> None:
            timed(tally, "/", lambda: browser.get("/"), lambda a: a.status_code == 200)
            timed(tally, "summary.json", lambda: browser.get("/api/v2/summary.json"), summary_ok)

        return body

    def member(n: int) -> Any:
        browser = members[n]

        def body() -> None:
            timed(tally, page, lambda: browser.get(page), clear_503)

        return body

    def report() -> None:
        form = report_form(description="sent while PostgreSQL is down")
        timed(tally, "/report/", lambda: reporter.post_form("/report/", form), clear_503)

    base = stack.proxy.counts()
    outage_from = stack.one("SELECT now()")
    log("postgres: refused")
    stack.proxy.set_mode("pg", "refuse")
    run_loops(
        {"reader": reader(0), "member-1": member(1), "member-2": member(2), "report": report},
        seconds=REFUSED_SECONDS,
        pause=0.2,
    )
    refused_tally = {
        action: tally.summary(action) for action in ("/", "summary.json", page, "/report/")
    }
    refused = stack.attempts(base, "pg")
    after_refused = stack.proxy.counts()
    mark = len(tally.of())

    log("postgres: hanging")
    stack.proxy.set_mode("pg", "hang")
    loops = {f"member-{n}": member(n) for n in range(1, DB_BOUND_CLIENTS)}
    run_loops(
        {"reader-1": reader(0), "reader-2": reader(1), **loops, "report": report},
        seconds=HANGING_SECONDS,
        pause=0.1,
    )
    hanging = stack.attempts(after_refused, "pg")
    hanging_outcomes = tally.of()[mark:]
    # Taken during the outage and not stored: waiting in the agents' buffers.
    buffered = {region: stack.buffer_depth(region) for region in stack.regions}
    for outcome in tally.of():
        slowest[outcome.action] = max(slowest.get(outcome.action, 0.0), outcome.seconds)

    log("postgres: back")
    stack.proxy.set_mode("pg", "pass")
    died = stack.ensure_running()
    back_at = time.monotonic()
    since = stack.one("SELECT now()")
    wait_for(
        f"{page} to work again",
        lambda: members[1].get(page).status_code == 200,
        timeout=RECOVERY_TIMEOUT_SECONDS,
        every=1,
    )
    recovered_in = time.monotonic() - back_at
    after = [members[n % DB_BOUND_CLIENTS].get(page).status_code for n in range(20)]
    report_after = reporter.post_form("/report/", report_form(description="after"))
    rounds_again = wait_for(
        "an agent's sample stored after PostgreSQL came back",
        lambda: stack.one("SELECT count(*) FROM probes_probesample WHERE started_at > %s", [since]),
        timeout=RECOVERY_TIMEOUT_SECONDS,
        every=1,
    )
    final = stack.wait_coverage(
        "every tick of the outage stored once, from the agents' buffers",
        outage_from,
        since,
        timeout=DELIVERED_WITHIN_SECONDS,
    )
    duplicates = stack.duplicates()
    workers_after = stack.web_workers()

    def in_hang(action: str) -> str:
        outcomes = [o for o in hanging_outcomes if o.action == action]
        bad = [o for o in outcomes if not o.ok]
        return f"{len(outcomes) - len(bad)} of {len(outcomes)}"

    figures.add(
        f"postgres refused {REFUSED_SECONDS} s then hanging {HANGING_SECONDS} s: "
        f"snapshot / {tally.summary('/')} (refused: {refused_tally['/']}; hanging: "
        f"{in_hang('/')} ok), summary.json {tally.summary('summary.json')} (hanging: "
        f"{in_hang('summary.json')} ok); slowest snapshot answer {slowest.get('/', 0):.2f} s; "
        f"{page} as a clear 503: {tally.summary(page)} (hanging: {in_hang(page)}; slowest "
        f"{slowest.get(page, 0):.1f} s), report form 503: {tally.summary('/report/')}; "
        f"back: pages again after {recovered_in:.1f} s, next 20 {page}: "
        f"{sum(1 for s in after if s == 200)} x 200, report HTTP {report_after.status_code}, "
        f"{rounds_again} samples stored since; agents' samples of the outage: "
        f"{sum(buffered.values())} buffered at its end, stored once it was over {final}, "
        f"stored twice {duplicates}; web workers replaced: "
        f"{len(workers_before - workers_after)} of {len(workers_before)}; "
        f"connection attempts refused: {format_attempts(refused, 'pg')}; "
        f"hanging: {format_attempts(hanging, 'pg')}; "
        f"processes that died (started again): {', '.join(died) or 'none'}"
    )

    assert not tally.errors("/"), f"/ not served from the snapshot: {tally.summary('/')}"
    assert not tally.errors("summary.json"), (
        f"summary.json not served from the snapshot: {tally.summary('summary.json')}"
    )
    assert not tally.errors(page), f"{page} not a clear 503: {tally.summary(page)}"
    assert not tally.errors("/report/"), f"/report/ not a clear 503: {tally.summary('/report/')}"
    assert all(status == 200 for status in after), f"after PostgreSQL came back: {after}"
    assert report_after.status_code == 303, f"report after: HTTP {report_after.status_code}"
    assert all(buffered.values()), f"agents holding no sample at the end of the outage: {buffered}"
    assert final.complete, f"the agents' samples of the outage once PostgreSQL was back: {final}"
    assert duplicates == 0, f"{duplicates} probe samples stored twice"
    assert workers_before == workers_after, (
        f"web workers were replaced: before {sorted(workers_before)}, after {sorted(workers_after)}"
    )
    assert not died, (
        f"died during the outage: {', '.join(died)} (started again for the checks above; "
        f"see the logs in {stack.tmp})"
    )
