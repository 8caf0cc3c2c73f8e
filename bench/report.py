"""Outage reports through the form, against a bare INSERT of the same row.

    make bench-report                            # 2,000 submissions x 3 rounds
    .venv/bin/python bench/report.py --smoke     # 50 x 3, for CI

Production settings: DEBUG off, HTTPS behind a TLS-terminating proxy (every request
carries ``X-Forwarded-Proto: https`` and a browser's ``Origin``), PostgreSQL in a
database of its own (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/bench_report: created if missing, migrated with the
project's migrations, its reports emptied at the start) and Redis as both the cache and
the Celery broker (BENCH_REDIS_URL, default redis://127.0.0.1:6379/7), so the rate
limits are counted in Redis and every triage task is really published. Nothing
consumes that queue: the messages are counted, then removed.

*Ours*: ``POST /report/`` through Django's whole stack (every middleware, the view, the
form, the rate limits per client address and per tailnet name, ``report_submit``, its
COMMIT, and ``reports.triage`` published after the commit), one submission after the
other, each from its own "browser": a client address of its own and the CSRF cookie and
token it got from ``GET /report/`` beforehand (not timed), CSRF checks enforced. The
body is what a browser sends (urlencoded, built beforehand). Each answer must be the
303 to its confirmation page. In-process, through ``django.test.Client``: each
submission needs its own cookie, token and address, which a fixed-request load
generator (``bench/httpload.py``'s wrk) does not do; the WSGI server and the socket
are left out, the client's own request building is counted in.

*Baseline*: the same rows (same columns, same values, a new ``public_id``) through a
plain psycopg connection in autocommit, one ``INSERT`` each, into the same table, in the
same run, as many. Rounds alternate which side goes first; rate = submissions / total
seconds; medians of ``--rounds``.

Before the rounds (warm-up, not timed) the rate limits are shown to be on: one address
gets ``REPORT_RATE_PER_IP`` submissions through and then a 429; one tailnet name typed
from many addresses gets ``REPORT_RATE_PER_TAILNET`` and then a 429. After them, an
instrumented pass splits a submission's time into its parts (the one-line profile).

It fails (exit 1) unless every submission it made is in the table with the values sent,
every baseline row too, and the broker holds exactly one ``reports.triage`` message per
saved submission (the rate-limited ones have neither). Then it removes those messages
and the cache keys it made. The last line is ``report: ours=<per s> baseline=<per s>
ratio=<ours / baseline>``; the target (ratio >= 0.1) is reported, not enforced.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import logging
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_report"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
TARGET_RATIO = 0.1
TRIAGE_TASK = "reports.triage"
HOST = "status.example.com"
# Behind the TLS proxy production runs behind; a browser's POST carries its Origin.
REQUEST_HEADERS = {
    "HTTP_HOST": HOST,
    "HTTP_X_FORWARDED_PROTO": "https",
    "HTTP_ORIGIN": f"https://{HOST}",
    "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.5",
}
FORM_TYPE = "application/x-www-form-urlencoded"
TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
THANKS = re.compile(r"^/report/thanks/([A-Za-z0-9_-]+)/$")
# The columns report_submit writes, in this order, for the baseline and the checks.
COLUMNS = (
    "public_id",
    "what",
    "started_at",
    "tailnet_name",
    "tailnet_id",
    "from_member",
    "reporter_id",
    "shard_id",
    "email",
    "description",
    "via",
    "client_hash",
    "honeypot",
    "status",
    "incident_id",
    "created_at",
    "triaged_at",
)
BARE_INSERT = (
    f"INSERT INTO reports_report ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)
WHATS = ("login", "admin_console", "approve_device", "change_acl", "add_node", "connections")
DESCRIPTIONS = (
    "",
    "Login page spins forever, then 502.",
    "Admin console shows 'could not reach coordination server'. Existing SSH sessions fine.",
    "tailscale up hangs at 'Logging in...' on two laptops; <b>nothing</b> in the logs.",
)


def log(message: str = "") -> None:
    print(message, flush=True)


# --- Set-up -------------------------------------------------------------------------------


def environment(database: str, redis_url: str, prefix: str) -> None:
    """Production settings against the benchmark's own database and Redis db."""
    os.environ["REDIS_URL"] = redis_url
    os.environ["CELERY_BROKER_URL"] = redis_url
    os.environ["CACHE_KEY_PREFIX"] = prefix
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
    os.environ["DJANGO_ALLOWED_HOSTS"] = HOST
    os.environ["DJANGO_CSRF_TRUSTED_ORIGINS"] = f"https://{HOST}"
    # Behind a TLS proxy: only then is its X-Forwarded-Proto believed.
    os.environ["TRUSTED_PROXY_HOPS"] = "1"
    from bench import setup_django
    from bench.data import database_ensure

    database_ensure(database, recreate=False)
    setup_django(database)


def database_prepare(static_root: str) -> None:
    """Migrate with the project's migrations, empty the reports, collect static files
    (production's static storage needs their manifest to render the form)."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_meta') IS NOT NULL")
        if cursor.fetchone()[0]:
            raise SystemExit(
                f"{connection.settings_dict['NAME']} holds bench/data.py's dataset "
                "(bench_meta); point BENCH_DATABASE_URL at a database of its own."
            )
    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE reports_report RESTART IDENTITY")
    settings.STATIC_ROOT = static_root
    call_command("collectstatic", interactive=False, verbosity=0)


class Broker:
    """The Redis list Celery publishes ``reports.triage`` to, read directly."""

    def __init__(self, redis_url: str) -> None:
        import redis

        from reports.tasks import triage_report

        self.client = redis.Redis.from_url(redis_url)
        route = triage_report.app.amqp.router.route({}, TRIAGE_TASK, (0,), {})
        self.queue: str = route["queue"].name
        self.bindings = [f"_kombu.binding.{self.queue}", f"_kombu.binding_permanent.{self.queue}"]
        self.had_bindings = {key: bool(self.client.exists(key)) for key in self.bindings}

    def foreign_keys(self) -> list[str]:
        """Keys of anyone but this benchmark: its cache keys, its queue and kombu's
        bindings of it are all it may find (the db must be its own)."""
        ours = re.compile(rf"^(bench-report-[^:]*:.*|{re.escape(self.queue)}|_kombu\.binding.*)$")
        foreign = []
        for key in self.client.scan_iter(count=1000):
            name = key.decode(errors="replace")
            if not ours.match(name):
                foreign.append(name)
                if len(foreign) >= 5:
                    break
        return foreign

    def triage_messages(self) -> list[tuple[bytes, int]]:
        """(raw message, report id) of every reports.triage message in the queue."""
        found = []
        for raw in self.client.lrange(self.queue, 0, -1):
            message = json.loads(raw)
            task = message.get("headers", {}).get("task")
            if task != TRIAGE_TASK:
                raise SystemExit(
                    f"queue {self.queue!r} holds a {task!r} message: someone else uses this"
                    " Redis db; give the benchmark one of its own (BENCH_REDIS_URL)"
                )
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            found.append((raw, int(args[0])))
        return found

    def remove(self, raws: list[bytes]) -> None:
        if not raws:
            return
        pipe = self.client.pipeline(transaction=False)
        for raw in raws:
            pipe.lrem(self.queue, 1, raw)
        pipe.execute()

    def forget_bindings(self) -> None:
        """kombu's bindings of the queue, if this run created them and left it empty."""
        if self.client.llen(self.queue) == 0:
            created = [key for key, had in self.had_bindings.items() if not had]
            if created:
                self.client.delete(*created)

    def delete_cache_keys(self, prefix: str) -> int:
        keys = list(self.client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            self.client.delete(*keys[start : start + 1000])
        return len(keys)


# --- The submissions ----------------------------------------------------------------------


@dataclass
class Submission:
    """One browser: its address, its CSRF cookie and token, the body it sends."""

    address: str
    fields: dict[str, str]
    cookies: SimpleCookie = field(default_factory=SimpleCookie)
    body: str = ""
    public_id: str = ""


def address(n: int) -> str:
    """The n-th client address (10.0.0.1, 10.0.0.2, ...): a crowd, none repeated."""
    n += 1
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class Crowd:
    """Everyone who submits, numbered across the whole run."""

    def __init__(self, started_at: str) -> None:
        self.n = 0
        self.started_at = started_at

    def fields(self, n: int, *, tailnet: str | None = None) -> dict[str, str]:
        return {
            "what": WHATS[n % len(WHATS)],
            "started_at": self.started_at,
            # Ten people of each tailnet: the tailnet's limit is counted, never reached.
            "tailnet": f"tailnet-{n // 10}.example.com" if tailnet is None else tailnet,
            "email": f"person{n}@example.com" if n % 3 == 0 else "",
            "description": DESCRIPTIONS[n % len(DESCRIPTIONS)],
            "website": "",
        }

    def next(self, *, tailnet: str | None = None, same_address_as: int | None = None) -> Submission:
        n = self.n
        self.n += 1
        where = address(n if same_address_as is None else same_address_as)
        return Submission(address=where, fields=self.fields(n, tailnet=tailnet))


def open_form(client: Any, submission: Submission) -> None:
    """GET /report/ as that browser: its CSRF cookie, and the token in the page."""
    client.cookies = submission.cookies
    response = client.get("/report/", REMOTE_ADDR=submission.address, **REQUEST_HEADERS)
    if response.status_code != 200:
        raise SystemExit(f"GET /report/ answered {response.status_code}")
    token = TOKEN.search(response.content)
    if token is None or "csrftoken" not in client.cookies:
        raise SystemExit("GET /report/ gave no CSRF token and cookie")
    submission.cookies = client.cookies
    submission.body = urlencode(
        {"csrfmiddlewaretoken": token.group(1).decode(), **submission.fields}
    )


def as_a_server_does() -> None:
    """Django's test client leaves out the ``close_old_connections`` a WSGI server's
    request runs at its start and end (to keep a test's transaction): put it back, so
    connection ageing and the health check (``conn_health_checks``) cost what they
    cost in production."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    def close_old(**kwargs: Any) -> None:
        close_old_connections()

    request_started.connect(close_old, weak=False, dispatch_uid="bench-report-started")
    request_finished.connect(close_old, weak=False, dispatch_uid="bench-report-finished")


def post(client: Any, submission: Submission) -> Any:
    client.cookies = submission.cookies
    return client.post(
        "/report/",
        submission.body,
        content_type=FORM_TYPE,
        REMOTE_ADDR=submission.address,
        **REQUEST_HEADERS,
    )


def saved(submission: Submission, response: Any) -> None:
    """The answer must be the 303 to this report's confirmation page."""
    location = response.get("Location", "")
    found = THANKS.match(location)
    if response.status_code != 303 or found is None:
        raise SystemExit(
            f"POST /report/ from {submission.address} answered {response.status_code}"
            f" {location!r}, not 303 to its confirmation:\n{response.content[:600]!r}"
        )
    submission.public_id = found.group(1)


def prepare(client: Any, crowd: Crowd, count: int) -> list[Submission]:
    submissions = [crowd.next() for _ in range(count)]
    for submission in submissions:
        open_form(client, submission)
    return submissions


def run_ours(client: Any, submissions: list[Submission]) -> tuple[float, list[float]]:
    """Post them one after the other: (total seconds, seconds of each)."""
    each = []
    responses = []
    gc.collect()
    started = time.perf_counter()
    for submission in submissions:
        t0 = time.perf_counter()
        responses.append(post(client, submission))
        each.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    for submission, response in zip(submissions, responses, strict=True):
        saved(submission, response)
    return total, each


def bare_rows(submissions: list[Submission]) -> list[tuple[Any, ...]]:
    """The rows report_submit writes for these submissions, with new public ids."""
    from reports.models import new_public_id
    from reports.services import client_hash

    now = datetime.now(UTC)
    rows = []
    for submission in submissions:
        f = submission.fields
        values = {
            "public_id": new_public_id(),
            "what": f["what"],
            "started_at": datetime.strptime(f["started_at"], "%Y-%m-%dT%H:%M").replace(tzinfo=UTC),
            "tailnet_name": f["tailnet"],
            "tailnet_id": None,
            "from_member": False,
            "reporter_id": None,
            "shard_id": None,
            "email": f["email"],
            "description": f["description"],
            "via": "form",
            "client_hash": client_hash(submission.address),
            "honeypot": False,
            "status": "new",
            "incident_id": None,
            "created_at": now,
            "triaged_at": None,
        }
        rows.append(tuple(values[column] for column in COLUMNS))
    return rows


def run_bare(raw: psycopg.Connection, rows: list[tuple[Any, ...]]) -> float:
    gc.collect()
    started = time.perf_counter()
    with raw.cursor() as cursor:
        for row in rows:
            cursor.execute(BARE_INSERT, row)
    return time.perf_counter() - started


# --- The rate limits are on ---------------------------------------------------------------


def rate_limits_checked(client: Any, crowd: Crowd) -> list[Submission]:
    """One address over its limit, one tailnet name over its limit: the first ones
    are saved, the next one gets 429 with Retry-After. Returns the saved ones."""
    from django.conf import settings

    from plumbing.ratelimit import parse_rate

    per_ip, _ = parse_rate(settings.REPORT_RATE_PER_IP)
    per_tailnet, _ = parse_rate(settings.REPORT_RATE_PER_TAILNET)
    kept = []
    first = crowd.n
    # Django logs every 429 as a warning; two of them are the point here.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    one_address = [crowd.next(tailnet="", same_address_as=first) for _ in range(per_ip + 1)]
    name = f"limited-{secrets.token_hex(4)}.example.com"
    one_tailnet = [crowd.next(tailnet=name) for _ in range(per_tailnet + 1)]
    for label, group in (("one client address", one_address), ("one tailnet name", one_tailnet)):
        for submission in group:
            open_form(client, submission)
        responses = [post(client, submission) for submission in group]
        for submission, response in zip(group[:-1], responses[:-1], strict=True):
            saved(submission, response)
        last = responses[-1]
        if last.status_code != 429 or not last.get("Retry-After"):
            raise SystemExit(
                f"rate limit not applied: submission {len(group)} from {label} answered"
                f" {last.status_code}, not 429 with Retry-After"
            )
        kept += group[:-1]
        log(
            f"  rate limit on: {label}: {len(group) - 1} saved, then 429"
            f" (Retry-After {last['Retry-After']} s)"
        )
    return kept


# --- Where a submission's time goes ----------------------------------------------------------


class Parts:
    """Wall time spent in named functions during the instrumented pass."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self._undo: list[Callable[[], None]] = []

    def time(self, owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)
        seconds = self.seconds

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - started

        setattr(owner, attribute, timed)
        self._undo.append(lambda: setattr(owner, attribute, original))

    def count(self, owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)
        counts = self.counts

        def counted(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)

        setattr(owner, attribute, counted)
        self._undo.append(lambda: setattr(owner, attribute, original))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


@contextmanager
def instrumented() -> Iterator[Parts]:
    """Time the parts of a submission: CSRF, the form, the rate limits, the INSERT and
    its COMMIT, publishing triage, the connection health check; count round trips."""
    import redis.connection
    from django.db import connection
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.middleware.csrf import CsrfViewMiddleware
    from django.test.client import ClientHandler

    from reports import services, tasks
    from reports.forms import ReportForm

    parts = Parts()
    parts.time(ClientHandler, "__call__", "handler")
    parts.time(CsrfViewMiddleware, "process_view", "csrf")
    parts.time(ReportForm, "full_clean", "form")
    parts.time(services, "within_rate", "rate limits")
    parts.time(services, "report_submit", "report_submit")
    parts.time(tasks, "enqueue_triage", "publish")
    parts.time(BaseDatabaseWrapper, "close_if_health_check_failed", "db health check")
    parts.count(redis.connection.AbstractConnection, "send_packed_command", "redis")

    def sql(execute: Callable[..., Any], query: str, params: Any, many: bool, context: Any) -> Any:
        parts.counts["sql"] += 1
        return execute(query, params, many, context)

    try:
        with connection.execute_wrapper(sql):
            yield parts
    finally:
        parts.undo()


def profile(crowd: Crowd, count: int) -> tuple[str, list[Submission]]:
    from django.test import Client

    with instrumented() as parts:
        # A client of its own: its handler binds the (wrapped) middleware methods when
        # it loads them, at its first request.
        client = Client(enforce_csrf_checks=True)
        submissions = prepare(client, crowd, count)
        parts.seconds.clear()
        parts.counts.clear()
        total, _ = run_ours(client, submissions)
    per = {name: seconds / count for name, seconds in parts.seconds.items()}
    # Nested: the health check runs inside the INSERT (the request's first query), and
    # publishing inside report_submit (its after-commit hook); all of it in the handler.
    per["save (INSERT)"] = per.pop("report_submit") - per["publish"] - per["db health check"]
    handler = per.pop("handler")
    per["test client"] = total / count - handler
    per["rest (Django, middleware, view)"] = handler - sum(
        seconds for name, seconds in per.items() if name != "test client"
    )
    order = [
        "rate limits",
        "save (INSERT)",
        "publish",
        "db health check",
        "form",
        "csrf",
        "rest (Django, middleware, view)",
        "test client",
    ]
    line = (
        f"  where a submission goes ({count} instrumented, {total / count * 1000:.2f} ms each;"
        f" SQL statements {parts.counts['sql'] / count:.1f},"
        f" Redis round trips {parts.counts['redis'] / count:.1f}): "
        + ", ".join(f"{name} {per[name] * 1000:.2f} ms" for name in order)
    )
    return line, submissions


# --- Checks ---------------------------------------------------------------------------------


def verify(
    raw: psycopg.Connection, broker: Broker, ours: list[Submission], bare_ids: list[str]
) -> None:
    """Every submission saved as sent, every baseline row there, one triage message per
    saved submission; SystemExit otherwise."""
    from reports.services import client_hash

    problems = []
    rows = {
        row[0]: row
        for row in raw.execute(
            "SELECT public_id, id, what, tailnet_name, email, description, client_hash,"
            " via, status, honeypot FROM reports_report"
        ).fetchall()
    }
    ids = []
    for submission in ours:
        row = rows.get(submission.public_id)
        if row is None:
            problems.append(f"submission {submission.public_id} is not in the table")
            continue
        f = submission.fields
        expected = (
            f["what"],
            f["tailnet"],
            f["email"],
            f["description"],
            client_hash(submission.address),
            "form",
            "new",
            False,
        )
        if row[2:] != expected:
            problems.append(f"submission {submission.public_id} saved as {row[2:]}, not {expected}")
        ids.append(row[1])
    missing_bare = [public_id for public_id in bare_ids if public_id not in rows]
    if missing_bare:
        problems.append(f"{len(missing_bare)} baseline rows missing")
    if len(rows) != len(ours) + len(bare_ids):
        problems.append(
            f"{len(rows)} rows in reports_report, expected {len(ours)} submitted"
            f" + {len(bare_ids)} baseline"
        )
    messages = broker.triage_messages()
    published = sorted(report_id for _, report_id in messages)
    if published != sorted(ids):
        extra = len(set(published) - set(ids))
        lacking = len(set(ids) - set(published))
        problems.append(
            f"{len(published)} {TRIAGE_TASK} messages in queue {broker.queue!r} for"
            f" {len(ids)} saved submissions ({lacking} reports without one, {extra} unknown,"
            f" {len(published) - len(set(published))} duplicates)"
        )
    if problems:
        raise SystemExit("FAIL:\n  " + "\n  ".join(problems))
    log(
        f"  checked: {len(ids):,} submissions saved as sent, {len(bare_ids):,} baseline rows,"
        f" {len(published):,} {TRIAGE_TASK} messages in {broker.queue!r}, one per submission"
    )


# --- Main -----------------------------------------------------------------------------------


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="50 submissions (CI)")
    parser.add_argument("--submissions", type=int, help="per round and side (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3), medians")
    parser.add_argument("--profile", type=int, help="instrumented submissions (default 500)")
    args = parser.parse_args(argv)
    count = args.submissions or (50 if args.smoke else 2000)
    profiled = args.profile or (20 if args.smoke else 500)

    database = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    prefix = f"bench-report-{os.getpid()}-{secrets.token_hex(3)}"
    environment(database, redis_url, prefix)

    from django.conf import settings
    from django.db import connection
    from django.test import Client

    broker = Broker(redis_url)
    foreign = broker.foreign_keys()
    if foreign:
        raise SystemExit(
            f"{redis_url} holds keys of someone else ({', '.join(foreign)}, ...): give the"
            " benchmark a Redis db of its own (BENCH_REDIS_URL)"
        )
    stale = broker.triage_messages()
    if stale:  # a crashed run's: their reports are about to go
        broker.remove([message for message, _ in stale])
        log(f"removed {len(stale)} {TRIAGE_TASK} messages a previous run left in {broker.queue!r}")
    with tempfile.TemporaryDirectory(prefix="bench-report-") as static_root:
        try:
            database_prepare(static_root)
            log(
                f"database {connection.settings_dict['NAME']}, cache and broker {redis_url}"
                f" (queue {broker.queue!r}); DEBUG {settings.DEBUG},"
                f" rate limits {settings.REPORT_RATE_PER_IP} per address,"
                f" {settings.REPORT_RATE_PER_TAILNET} per tailnet;"
                f" publish timeout {settings.REPORT_PUBLISH_TIMEOUT_SECONDS} s"
            )
            log(f"load average before: {load()} ({os.cpu_count()} CPUs)")
            crowd = Crowd(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M"))
            as_a_server_does()
            client = Client(enforce_csrf_checks=True)
            with psycopg.connect(database, autocommit=True, prepare_threshold=None) as raw:
                raw.execute("SET TimeZone = 'UTC'")
                ours_all = rate_limits_checked(client, crowd)
                bare_ids: list[str] = []
                # Warm-up: connections open, templates and code paths warm.
                warm = prepare(client, crowd, min(50, count))
                run_ours(client, warm)
                rows = bare_rows(warm)
                run_bare(raw, rows)
                ours_all += warm
                bare_ids += [row[0] for row in rows]

                timings: dict[str, list[float]] = {"ours": [], "bare": []}
                latencies: list[float] = []
                for round_ in range(args.rounds):
                    submissions = prepare(client, crowd, count)
                    rows = bare_rows(submissions)
                    for side in ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours"):
                        if side == "ours":
                            seconds, each = run_ours(client, submissions)
                            latencies += each
                        else:
                            seconds = run_bare(raw, rows)
                        timings[side].append(seconds)
                    ours_all += submissions
                    bare_ids += [row[0] for row in rows]
                    log(
                        f"  round {round_ + 1}: ours {rate(count, timings['ours'][-1])},"
                        f" bare INSERT {rate(count, timings['bare'][-1])},"
                        f" ratio {timings['bare'][-1] / timings['ours'][-1]:.3f}"
                        f" ({count:,} each; load {load()})"
                    )
                line, extra = profile(crowd, profiled)
                ours_all += extra
                verify(raw, broker, ours_all, bare_ids)
        finally:
            # Everything this run published, checked or not (the db is its own).
            messages = [message for message, _ in broker.triage_messages()]
            broker.remove(messages)
            broker.forget_bindings()
            removed = broker.delete_cache_keys(prefix)
            log(f"  removed {len(messages):,} messages and {removed:,} cache keys from {redis_url}")

    ours_s = statistics.median(timings["ours"])
    bare_s = statistics.median(timings["bare"])
    ordered = sorted(latencies)
    log(
        f"  ours per submission: median {statistics.median(ordered) * 1000:.2f} ms,"
        f" p99 {ordered[int(len(ordered) * 0.99)] * 1000:.2f} ms;"
        f" bare INSERT {bare_s / count * 1000:.3f} ms"
    )
    log(line)
    log(f"load average after: {load()}")
    ratio = (count / ours_s) / (count / bare_s)
    log(f"target ≥ {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}")
    log(f"report: ours={count / ours_s:.0f} baseline={count / bare_s:.0f} ratio={ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
