"""Redis (the cache) refused, then hanging, then back.

Throughout: the public page, a signed-in tailnet page and the report form work;
the probe agents' samples keep being stored (and once Redis is back, every tick of
every region is there exactly once); no report is lost and all are triaged; a sign-out
made during the outage stays a sign-out once Redis is back (the old cookie is sent to
the login page, also after every web process uses the cache again). Connection
attempts at the cache's proxy show the breaker: about one per process per breaker
period, not one per request.
"""

import math
import time
from datetime import datetime

import requests

from faults.conftest import (
    AGENT_REQUESTS_IN_FLIGHT,
    ALICE,
    ALICE_TAILNET,
    CACHE_BREAKER_SECONDS,
    CACHE_DB,
    GUNICORN_THREADS,
    PROBE_INTERVAL_SECONDS,
    WORKER_CONCURRENCY,
    Coverage,
    Figures,
    Stack,
    Tally,
    format_attempts,
    log,
    report_form,
    report_id,
    run_loops,
    timed,
    wait_for,
)

REFUSED_SECONDS = 20
HANGING_SECONDS = 35
# Every web process's breaker has closed again after this long.
RECOVERY_SECONDS = CACHE_BREAKER_SECONDS + 10
# Share of the outage's samples (per region, shard and tick) stored while it lasts, at
# least: the last ticks' may still be on their way when it ends.
STORED_DURING_SHARE = 0.5
# The agents deliver what they still hold within this long after the outage.
DELIVERED_WITHIN_SECONDS = 60 + 6 * PROBE_INTERVAL_SECONDS


def signed_out(answer: requests.Response) -> bool:
    return answer.status_code == 302 and answer.headers.get("Location", "").startswith(
        "/accounts/login/"
    )


def breaker_bound(seconds: float, processes: int, in_flight: int) -> int:
    """Connection attempts a breaker allows: per process, one for each request in
    flight at once, per breaker period the phase touches."""
    periods = math.ceil(seconds / CACHE_BREAKER_SECONDS) + 1
    return processes * periods * in_flight


def session_cached(stack: Stack, key: str | None) -> bool:
    return bool(key) and bool(stack.redis(CACHE_DB).keys(f"*plumbing.sessions:{key}"))


def test_redis_refused_then_hanging(alive: Stack, figures: Figures) -> None:
    stack = alive
    page = f"/t/{ALICE_TAILNET}/"
    alice = stack.browser()
    alice.login(ALICE.username, ALICE.password)
    assert alice.get(page).status_code == 200
    # A second sign-in of alice's, cached in Redis now, signed out during the outage.
    leaving = stack.browser()
    leaving.login(ALICE.username, ALICE.password)
    assert leaving.get(page).status_code == 200
    old_key = leaving.session_key
    wait_for(
        "the session to be cached in Redis",
        lambda: session_cached(stack, old_key),
        timeout=10,
    )
    reporter = stack.browser()
    reporter.csrf("/report/")
    visitor = stack.browser()

    tally = Tally()
    saved: list[str] = []
    sent = [0]

    def public() -> None:
        timed(tally, "/", lambda: visitor.get("/"), lambda a: a.status_code == 200)

    def tailnet() -> None:
        timed(tally, page, lambda: alice.get(page), lambda a: a.status_code == 200)

    # Anonymous during the outage (their rate limits live in Redis: they must fail
    # open); from a member once Redis is back (anonymous ones are limited again).
    reporters = [reporter]

    def report() -> None:
        sent[0] += 1
        form = report_form(tailnet=f"faults-{sent[0]}.example", description="Redis outage")
        answer = timed(
            tally,
            "/report/",
            lambda: reporters[-1].post_form("/report/", form),
            lambda a: report_id(a) is not None,
        )
        found = report_id(answer) if answer is not None else None
        if found:
            saved.append(found)

    def old_cookie() -> None:
        timed(
            tally,
            "signed-out cookie",
            lambda: requests.get(
                stack.web_url + page,
                cookies={"sessionid": old_key or ""},
                allow_redirects=False,
                timeout=10,
            ),
            signed_out,
        )

    logout: list[requests.Response | Exception] = []

    def sign_out() -> None:
        time.sleep(3)
        try:
            logout.append(leaving.logout())
        except requests.RequestException as error:
            logout.append(error)

    loops = {"public": public, "tailnet": tailnet, "report": report}
    # The sign-out and the old cookie's checks; the agents' batches and shard lists.
    in_flight = len(loops) + 2 + AGENT_REQUESTS_IN_FLIGHT * len(stack.regions)
    base = stack.proxy.counts()
    outage_from: datetime = stack.one("SELECT now()")

    log("redis: refused")
    stack.proxy.set_mode("redis", "refuse")
    run_loops(loops, seconds=REFUSED_SECONDS, pause=0.2, during=sign_out)
    refused = stack.attempts(base, "redis")
    after_refused = stack.proxy.counts()
    served_refused = tally.served()

    log("redis: hanging")
    stack.proxy.set_mode("redis", "hang")
    run_loops({**loops, "old cookie": old_cookie}, seconds=HANGING_SECONDS, pause=0.2)
    hanging = stack.attempts(after_refused, "redis")
    outage_to: datetime = stack.one("SELECT now()")
    # Stored while the cache was still down.
    during: Coverage = stack.coverage(outage_from, outage_to)
    outage_tally = len(tally.of())
    served_outage = tally.served()

    log("redis: back")
    stack.proxy.set_mode("redis", "pass")
    died = stack.ensure_running()
    reporters.append(alice)
    after_outage = stack.proxy.counts()
    run_loops({**loops, "old cookie": old_cookie}, seconds=RECOVERY_SECONDS, pause=0.2)
    back = stack.attempts(after_outage, "redis")
    # Every web process uses the cache again: a new sign-in is cached, and the
    # signed-out cookie still goes to the login page.
    fresh = stack.browser()
    fresh.login(ALICE.username, ALICE.password)
    cache_back = session_cached(stack, fresh.session_key)
    final_checks = [
        requests.get(
            stack.web_url + page,
            cookies={"sessionid": old_key or ""},
            allow_redirects=False,
            timeout=10,
        )
        for _ in range(2 * stack.web_processes * 4)
    ]

    # Nothing lost, all triaged (the broker was up throughout).
    def triaged() -> bool:
        rows = stack.sql(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'new') FROM reports_report "
            "WHERE public_id = ANY(%s)",
            [saved],
        )
        return rows[0][1] == len(saved)

    stored = stack.one("SELECT count(*) FROM reports_report WHERE public_id = ANY(%s)", [saved])
    try:
        wait_for("every report to be triaged", triaged, timeout=120, every=2)
        untriaged = 0
    except AssertionError:
        untriaged = stack.one(
            "SELECT count(*) FROM reports_report WHERE public_id = ANY(%s) AND status = 'new'",
            [saved],
        )
    final = stack.wait_coverage(
        "every tick of the outage stored once",
        outage_from,
        outage_to,
        timeout=DELIVERED_WITHIN_SECONDS,
    )
    duplicates = stack.duplicates()
    web_bound_refused = breaker_bound(REFUSED_SECONDS, stack.web_processes, in_flight)
    web_bound_hanging = breaker_bound(HANGING_SECONDS, stack.web_processes, in_flight)
    worker_bound = breaker_bound(
        REFUSED_SECONDS + HANGING_SECONDS, 1 + WORKER_CONCURRENCY, WORKER_CONCURRENCY
    )
    logout_answer = logout[0] if logout else None
    logout_status = (
        logout_answer.status_code
        if isinstance(logout_answer, requests.Response)
        else repr(logout_answer)
    )
    old_cookie_served = [o for o in tally.of("signed-out cookie") if o.status == 200]
    final_served = [a.status_code for a in final_checks if not signed_out(a)]
    figures.add(
        f"redis refused {REFUSED_SECONDS} s then hanging {HANGING_SECONDS} s: "
        f"{served_outage} of {outage_tally} requests served during the outage "
        f"({served_refused} while refused); "
        + "; ".join(f"{action} {tally.summary(action)}" for action in ("/", page, "/report/"))
        + f"; reports saved {len(saved)}, lost {len(saved) - stored}, untriaged {untriaged}; "
        f"agents' samples of the outage stored while it lasted {during.stored} of "
        f"{during.nominal}, once Redis was back {final}; samples stored twice {duplicates}; "
        f"sign-out during the outage HTTP {logout_status}, "
        f"old cookie let in {len(old_cookie_served)} times while checked and "
        f"{len(final_served)} of {len(final_checks)} times at the end; "
        f"cache used again after: {cache_back}; "
        f"connection attempts refused: {format_attempts(refused, 'redis')}; "
        f"hanging: {format_attempts(hanging, 'redis')}; "
        f"back: {format_attempts(back, 'redis')}; "
        f"processes that died (started again): {', '.join(died) or 'none'}"
    )

    assert not tally.errors("/"), f"/ failed: {tally.summary('/')}"
    assert not tally.errors(page), f"{page} failed: {tally.summary(page)}"
    assert not tally.errors("/report/"), f"/report/ failed: {tally.summary('/report/')}"
    assert stored == len(saved), f"{len(saved) - stored} of {len(saved)} saved reports lost"
    assert untriaged == 0, f"{untriaged} of {len(saved)} reports never triaged"
    assert during.stored >= STORED_DURING_SHARE * during.nominal, (
        f"the agents' samples were not stored while Redis was down: {during}"
    )
    assert final.complete, f"the agents' samples of the outage once Redis was back: {final}"
    assert duplicates == 0, f"{duplicates} probe samples stored twice"
    assert logout_status == 302, f"sign-out during the outage: {logout_status}"
    assert not old_cookie_served, (
        f"a signed-out session was let in {len(old_cookie_served)} times (Redis refused, "
        "hanging or back)"
    )
    assert not final_served, (
        f"a signed-out session was let in once every web process used Redis again: {final_served}"
    )
    assert not tally.errors("signed-out cookie"), tally.summary("signed-out cookie")
    assert cache_back, "no web process uses Redis again after it came back"
    assert back["web"] > 0, "the web processes never connected to Redis again"
    for phase, attempts, bound in (
        ("refused", refused, web_bound_refused),
        ("hanging", hanging, web_bound_hanging),
    ):
        assert attempts["web"] <= bound, (
            f"web connected to a {phase} Redis {attempts['web']} times (breaker bound {bound}, "
            f"{stack.web_processes} processes x {GUNICORN_THREADS} threads)"
        )
    worker_attempts = refused["worker"] + hanging["worker"]
    assert worker_attempts <= worker_bound, (
        f"the worker connected to a failing Redis {worker_attempts} times (bound {worker_bound})"
    )
    assert not died, (
        f"died during the outage: {', '.join(died)} (started again for the checks above; "
        f"see the logs in {stack.tmp})"
    )
