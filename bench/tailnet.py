"""One tailnet's own page and its /uptime: the query layer against bare SQL, and the
whole page and endpoint under load.

    make bench-data      # once: the dataset (bench/data.py)
    make bench-tailnet   # this

The tailnet is one of bench/data.py's designated tailnets (exactly 20 live migrations
in the 90-day window; the one with the median number of incident rows, as
bench/impact.py picks). In the bench database, idempotently: a member of it
(``bench-tailnet``, no usable password) and, for every shard, hourly probe rollups from
three probe regions over the last 8 days, so the latency chart has what production
would give it. A session for the member and an API token of the tailnet are created for
the run and removed afterwards.

(a) queries: the rows the page and ``/api/v1/tailnets/<slug>/uptime`` need, through
    exactly what the views call — ``customers.queries.tailnet_page`` and
    ``tailnet_uptime_report`` (90 days) — against hand-written SQL for the same rows
    through a plain psycopg connection (fetchall), in the same run: ``--runs`` runs per
    side, alternating, medians. Both sides must return the same number of rows per
    statement. Then the same per piece of the page (placements, now, history, uptime,
    latency), and where ours goes (its own SQL through psycopg, through Django's
    cursor, the whole). Target ours / bare ≤ 2.
(b) http: ``statuspage.wsgi`` under gunicorn with production settings (DEBUG off,
    HTTPS behind a TLS proxy, DATABASE_URL=bench, Redis as the cache, a throttle rate
    raised so the run measures the endpoint, not 429s), loaded by wrk from 127.0.0.1:
    ``/t/<slug>/`` with the member's session cookie and ``/uptime`` with the bearer
    token, ``--duration`` s x ``--connections``, ``--http-runs`` runs each (median).
    Every answer's status is counted from gunicorn's access log: anything but 200
    fails the benchmark. Target p99 < 50 ms.

The last line is ``tailnet: ours=<ms>ms baseline=<ms>ms ratio=<r>`` for (a). Missing a
target is reported, not fatal; a wrong answer or a non-200 status is (exit 1).
``--smoke`` runs a few rounds and a 1-second wrk (CI).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import database_url, meta_read, setup_django
from bench.httpload import wait_for_idle_cpu

QUERY_TARGET = 2.0
P99_TARGET_MS = 50.0
MEMBER = "bench-tailnet"
TOKEN_NAME = "bench/tailnet.py"  # noqa: S105 - a token's label, not its secret
PROBE_REGIONS = [("bench-nyc", "New York"), ("bench-fra", "Frankfurt"), ("bench-sin", "Singapore")]
ROLLUP_DAYS = 8
SAMPLES_PER_HOUR = 120  # a probe every 30 s
PUBLIC_HOST = "status.example.com"
# Behind the TLS-terminating proxy production runs behind: Django sees https.
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "Host": PUBLIC_HOST}
# DRF keeps one timestamp per request of the last period in the cache: per second,
# that list stays as short as production's 120/min one.
THROTTLE_RATE = "100000/s"
CACHE_KEY_PREFIX = "bench-tailnet"
# The longest wait for a quiet machine before each block of timed query runs.
BLOCK_IDLE_SECONDS = 10.0

# --- (a) the bare side: what a person would write by hand for the same rows -------------

BARE_STAYS = """
    SELECT p.shard_id, s.public_name, s.region, s.component_id, c.name, c.kind,
           s.latency_threshold_ms, p.starts_at, p.ends_at
    FROM incidents_placement p
    JOIN incidents_shard s ON s.id = p.shard_id
    JOIN incidents_component c ON c.id = s.component_id
    WHERE p.tailnet_id = %(tailnet)s
    ORDER BY p.starts_at
"""
BARE_OPEN_WINDOWS = """
    SELECT si.*, i.*
    FROM incidents_shardimpact si
    JOIN incidents_incident i ON i.id = si.incident_id
    WHERE si.shard_id = %(shard)s AND i.published AND i.resolved_at IS NULL
    ORDER BY si.starts_at, si.id
"""
BARE_MAINTENANCE = """
    SELECT DISTINCT i.*
    FROM incidents_incident i
    JOIN incidents_incidentcomponent ic ON ic.incident_id = i.id
    WHERE i.published AND i.kind = 'maintenance' AND i.resolved_at IS NULL
      AND ic.component_id = %(component)s
"""
BARE_HISTORY = """
    SELECT ti.id, ti.incident_id, ti.shard_id, ti.level, ti.starts_at, ti.ends_at, ti.seconds,
           i.title, i.kind, i.status, i.impact, i.started_at, i.resolved_at
    FROM incidents_tailnetimpact ti
    JOIN incidents_incident i ON i.id = ti.incident_id
    WHERE ti.tailnet_id = %(tailnet)s
      AND (ti.ends_at IS NULL OR ti.ends_at > %(since)s)
      AND i.published
    ORDER BY ti.starts_at, ti.id
"""
BARE_UPTIME_IMPACTS = """
    SELECT ti.starts_at, ti.ends_at, ti.level
    FROM incidents_tailnetimpact ti
    JOIN incidents_incident i ON i.id = ti.incident_id
    WHERE ti.tailnet_id = %(tailnet)s AND i.published
      AND (ti.ends_at IS NULL OR ti.ends_at > %(start)s) AND ti.starts_at < %(end)s
"""
BARE_UPTIME_PLACEMENTS = """
    SELECT starts_at, ends_at, shard_id
    FROM incidents_placement
    WHERE tailnet_id = %(tailnet)s
      AND (ends_at IS NULL OR ends_at > %(start)s) AND starts_at < %(end)s
"""
# The monitoring gaps of the shards the tailnet was on (grey while it was there).
BARE_UPTIME_GAPS = """
    SELECT g.shard_id, g.starts_at, g.ends_at
    FROM incidents_monitoringgap g
    WHERE g.shard_id IN (
        SELECT shard_id FROM incidents_placement
        WHERE tailnet_id = %(tailnet)s
          AND (ends_at IS NULL OR ends_at > %(start)s) AND starts_at < %(end)s
    ) AND (g.ends_at IS NULL OR g.ends_at > %(start)s) AND g.starts_at < %(end)s
"""
# The hours the tailnet spent on each shard (an hour is the shard's it was on at its
# middle), as a person would hand them over: one (shard, from, to) row per placement.
BARE_LATENCY = """
    SELECT r.shard_id, r.bucket_start, r.count, r.failures, r.histogram
    FROM probes_proberollup r
    JOIN unnest(%(shards)s::bigint[], %(froms)s::timestamptz[], %(tos)s::timestamptz[])
         AS stay(shard_id, starts_at, ends_at)
      ON r.shard_id = stay.shard_id
     AND r.bucket_start >= stay.starts_at AND r.bucket_start < stay.ends_at
    WHERE r.granularity = 'hour'
"""


def log(message: str = "") -> None:
    print(message, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def spread(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"median {ms(statistics.median(ordered))}"
        f" (min {ms(ordered[0])}, max {ms(ordered[-1])}, {len(ordered)} runs)"
    )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- The tailnet, its member, its shards' latency --------------------------------------------


@dataclass(frozen=True)
class Subject:
    tailnet: Any
    migrations: int
    now: datetime


def subject_pick(meta: dict[str, Any], chosen: int | None, now: datetime) -> Subject:
    from incidents.models import Placement, Tailnet

    counts = meta["designated_impact_rows"]
    if chosen is None:  # the designated tailnet with the median number of rows
        chosen = int(sorted(counts, key=lambda t: (counts[t], int(t)))[len(counts) // 2])
    tailnet = Tailnet.objects.get(pk=chosen)
    migrations = Placement.objects.filter(
        tailnet=tailnet, starts_at__gt=now - timedelta(days=90)
    ).count()
    return Subject(tailnet=tailnet, migrations=migrations, now=now)


def member_ensure(tailnet: Any) -> Any:
    """The member the page is loaded as: created once, kept (idempotent)."""
    from django.contrib.auth import get_user_model

    from customers.models import Membership, Role

    user, created = get_user_model().objects.get_or_create(
        username=MEMBER, defaults={"email": "bench-tailnet@example.com"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    Membership.objects.get_or_create(user=user, tailnet=tailnet, defaults={"role": Role.MEMBER})
    return user


def session_create(user: Any) -> str:
    """A signed-in session of ``user`` in the database, as ``login()`` leaves it;
    returns the cookie's value."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key is not None
    return session.session_key


def rollups_ensure(now: datetime, seed: int) -> int:
    """Hourly probe rollups for every shard from three regions over the last
    ROLLUP_DAYS days up to ``now``'s hour; what is there already stays. Returns the
    number of rows added."""
    from django.db import connection

    from probes.models import ProbeRegion
    from probes.rollup import histogram

    regions = [
        ProbeRegion.objects.get_or_create(slug=slug, defaults={"name": name})[0].pk
        for slug, name in PROBE_REGIONS
    ]
    rng = random.Random(seed)
    # A handful of plausible hours, picked per (shard, region, hour) in SQL.
    variants = []
    for n in range(16):
        typical = rng.uniform(30, 90) * (3 if n == 15 else 1)  # one slow variant
        latencies = [rng.lognormvariate(0, 0.35) * typical for _ in range(SAMPLES_PER_HOUR)]
        variants.append((histogram(latencies), sum(latencies), max(latencies)))
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=ROLLUP_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO probes_proberollup
                (shard_id, region_id, granularity, bucket_start, count, failures,
                 latency_sum_ms, latency_max_ms, histogram)
            SELECT s.id, r.region, 'hour', h.at, %(samples)s, 0,
                   (%(sums)s::float8[])[v.n], (%(maxes)s::float8[])[v.n],
                   ((%(histograms)s::text[])[v.n])::jsonb
            FROM incidents_shard s
            CROSS JOIN unnest(%(regions)s::bigint[]) AS r(region)
            CROSS JOIN generate_series(%(start)s::timestamptz, %(end)s, '1 hour') AS h(at)
            CROSS JOIN LATERAL (SELECT 1 + abs(hashint8(s.id * 1000003 + r.region * 7919
                                   + extract(epoch FROM h.at)::bigint / 3600)) %% 16 AS n) v
            ON CONFLICT (shard_id, region_id, granularity, bucket_start) DO NOTHING
            """,
            {
                "samples": SAMPLES_PER_HOUR,
                "sums": [v[1] for v in variants],
                "maxes": [v[2] for v in variants],
                "histograms": [json.dumps(v[0]) for v in variants],
                "regions": regions,
                "start": start,
                "end": end,
            },
        )
        added = cursor.rowcount
        if added:
            cursor.execute("VACUUM (ANALYZE) probes_proberollup")
    return added


# --- (a) the query layer against bare SQL ----------------------------------------------------


class Recorder:
    """An execute_wrapper noting every statement Django sends and its row count."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any, int]] = []

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        self.statements.append((sql, params, context["cursor"].rowcount))
        return result


@dataclass
class Piece:
    """One read of the page or of /uptime: ours (a customers.queries call) and the
    bare statements for the same rows."""

    name: str
    ours: Callable[[], Any]
    bare: list[tuple[str, dict[str, Any]]]
    ours_rows: list[int] = field(default_factory=list)
    bare_rows: list[int] = field(default_factory=list)


def pieces_build(subject: Subject, raw: psycopg.Connection) -> tuple[list[Piece], dict[str, Any]]:
    """The reads, and what they are called with, exactly as the views call them."""
    from customers import queries

    tailnet, now = subject.tailnet, subject.now
    today = now.astimezone(UTC).date()
    first_bar_day = today - timedelta(days=queries.UPTIME_DAYS - 1)
    page_first = min(queries.sla_months_start(today), first_bar_day)
    api_first = today - timedelta(days=queries.UPTIME_DAYS - 1)  # /uptime's default
    stays = queries.tailnet_stays(tailnet_id=tailnet.pk)
    current = queries.current_stay(stays)
    latency_end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + queries.HOUR
    latency_start = latency_end - timedelta(days=queries.LATENCY_DAYS)
    latency_stays = [s for s in stays if s.overlaps(latency_start, latency_end)]
    half = queries.HOUR / 2
    latency_hours = {
        "shards": [s.shard_id for s in latency_stays],
        "froms": [max(s.starts_at - half, latency_start) for s in latency_stays],
        "tos": [
            latency_end if s.ends_at is None else min(s.ends_at - half, latency_end)
            for s in latency_stays
        ],
    }

    def bounds(first: date, last: date) -> dict[str, Any]:
        start = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        return {"tailnet": tailnet.pk, "start": start, "end": end}

    pieces = [
        Piece(
            "placements (tailnet_stays)",
            lambda: queries.tailnet_stays(tailnet_id=tailnet.pk),
            [(BARE_STAYS, {"tailnet": tailnet.pk})],
        ),
        Piece(
            "now (tailnet_now)",
            lambda: queries.tailnet_now(stays=stays, now=now),
            [
                (BARE_OPEN_WINDOWS, {"shard": current.shard_id if current else 0}),
                (BARE_MAINTENANCE, {"component": current.component_id if current else 0}),
            ],
        ),
        Piece(
            "history (tailnet_history)",
            lambda: queries.tailnet_history(tailnet=tailnet, now=now),
            [(BARE_HISTORY, {"tailnet": tailnet.pk, "since": tailnet.created_at})],
        ),
        Piece(
            f"uptime, page: {(today - page_first).days + 1} days (tailnet_uptime_report)",
            lambda: queries.tailnet_uptime_report(
                tailnet_id=tailnet.pk, first_day=page_first, last_day=today, now=now
            ),
            [
                (BARE_UPTIME_IMPACTS, bounds(page_first, today)),
                (BARE_UPTIME_PLACEMENTS, bounds(page_first, today)),
                (BARE_UPTIME_GAPS, bounds(page_first, today)),
            ],
        ),
        Piece(
            "latency, 7 days (tailnet_latency)",
            lambda: queries.tailnet_latency(stays=stays, now=now),
            [(BARE_LATENCY, latency_hours)],
        ),
        Piece(
            f"/uptime: {queries.UPTIME_DAYS} days (tailnet_uptime_report)",
            lambda: queries.tailnet_uptime_report(
                tailnet_id=tailnet.pk, first_day=api_first, last_day=today, now=now
            ),
            [
                (BARE_UPTIME_IMPACTS, bounds(api_first, today)),
                (BARE_UPTIME_PLACEMENTS, bounds(api_first, today)),
                (BARE_UPTIME_GAPS, bounds(api_first, today)),
            ],
        ),
    ]
    context = {
        "stays": len(stays),
        "current": current,
        "latency_shards": len(latency_stays),
        "page_days": (today - page_first).days + 1,
    }
    return pieces, context


def bare_run(raw: psycopg.Connection, statements: list[tuple[str, dict[str, Any]]]) -> list[int]:
    rows = []
    with raw.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            rows.append(len(cursor.fetchall()))
    return rows


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def alternate(
    sides: dict[str, Callable[[], Any]],
    runs: int,
    *,
    warmup: int = 10,
    block: int = 20,
    idle_timeout: float = 0.0,
) -> dict[str, list[float]]:
    """Each side ``runs`` times after a warm-up, the order alternating every run, in
    blocks of ``block`` runs that each start on a quiet machine (up to
    ``idle_timeout`` s of waiting): the machine is shared, and a block run while
    something else computes measures that instead."""
    for _ in range(warmup):
        for fn in sides.values():
            fn()
    names = list(sides)
    timings: dict[str, list[float]] = {name: [] for name in names}
    for run in range(runs):
        if run % block == 0 and idle_timeout > 0:
            wait_for_idle_cpu(timeout=min(idle_timeout, BLOCK_IDLE_SECONDS))
        for name in names if run % 2 == 0 else reversed(names):
            timings[name].append(timed(sides[name]))
    return timings


def measure_queries(
    args: argparse.Namespace, subject: Subject, raw: psycopg.Connection
) -> tuple[float, float]:
    from django.db import connection

    from customers import queries

    tailnet, now = subject.tailnet, subject.now
    pieces, context = pieces_build(subject, raw)
    uptime_piece = pieces[-1]

    def ours() -> None:
        # What the page's view and /uptime's view call, in that order.
        queries.tailnet_page(tailnet=tailnet, now=now)
        uptime_piece.ours()

    every_bare = [statement for piece in pieces for statement in piece.bare]

    def bare() -> None:
        bare_run(raw, every_bare)

    # The same rows on both sides, statement by statement (row counts).
    for piece in pieces:
        recorder = Recorder()
        with connection.execute_wrapper(recorder):
            piece.ours()
        piece.ours_rows = [rows for _, _, rows in recorder.statements]
        piece.bare_rows = bare_run(raw, piece.bare)
        if sorted(piece.ours_rows) != sorted(piece.bare_rows):
            raise SystemExit(
                f"FAIL: {piece.name}: ours read {piece.ours_rows} rows, bare SQL {piece.bare_rows}"
            )
    recorder = Recorder()
    with connection.execute_wrapper(recorder):
        ours()
    sent = [(sql, params) for sql, params, _ in recorder.statements]
    expected = sum(len(piece.bare) for piece in pieces)
    if len(sent) != expected:
        raise SystemExit(f"FAIL: ours sent {len(sent)} statements, the bare side {expected}")
    current = context["current"]
    log(
        f"(a) queries: tailnet {tailnet.pk} ({tailnet.slug}), {subject.migrations} migrations"
        f" in 90 days, {context['stays']} placements, now on"
        f" {current.shard_name if current else 'no shard'}; {len(sent)} statements"
    )
    for piece in pieces:
        log(f"  {piece.name}: rows {'+'.join(str(r) for r in piece.bare_rows)} on both sides")

    timings = alternate({"ours": ours, "bare": bare}, args.runs, idle_timeout=args.idle_timeout)
    ours_s = statistics.median(timings["ours"])
    bare_s = statistics.median(timings["bare"])
    log(f"  ours (tailnet_page + tailnet_uptime_report): {spread(timings['ours'])}")
    log(f"  bare ({len(every_bare)} SELECTs through psycopg, fetchall): {spread(timings['bare'])}")

    log(f"  per read (medians of {args.piece_runs} interleaved runs each; ours / bare):")
    width = max(len(piece.name) for piece in pieces)
    for piece in pieces:
        one = alternate(
            {"ours": piece.ours, "bare": functools.partial(bare_run, raw, piece.bare)},
            args.piece_runs,
            warmup=3,
            idle_timeout=args.idle_timeout,
        )
        o, b = statistics.median(one["ours"]), statistics.median(one["bare"])
        log(f"    {piece.name:<{width}}  ours {ms(o):>10}  bare {ms(b):>10}  x{o / b:5.2f}")

    # Where ours goes: its own SQL through bare psycopg, then through Django's cursor.
    def through_django() -> None:
        with connection.cursor() as cursor:
            for sql, params in sent:
                cursor.execute(sql, params)
                cursor.fetchall()

    def through_psycopg() -> None:
        with raw.cursor() as cursor:
            for sql, params in sent:
                cursor.execute(sql, params)
                cursor.fetchall()

    parts = alternate(
        {"psycopg": through_psycopg, "django": through_django, "ours": ours},
        max(10, args.runs // 2),
        warmup=3,
        idle_timeout=args.idle_timeout,
    )
    psycopg_m, django_m, ours_m = (
        statistics.median(parts[n]) for n in ("psycopg", "django", "ours")
    )
    log(f"  where ours goes (medians of {len(parts['ours'])} interleaved runs):")
    log(f"    its {len(sent)} statements through bare psycopg  {ms(psycopg_m):>10}")
    log(
        f"    the same through Django's cursor        {ms(django_m):>10}"
        f"  (+{ms(django_m - psycopg_m)}: Django's cursor layer and its row loaders)"
    )
    log(
        f"    tailnet_page + tailnet_uptime_report    {ms(ours_m):>10}"
        f"  (+{ms(ours_m - django_m)}: building queries, objects, uptime and percentiles)"
    )
    ratio = ours_s / bare_s
    log(f"  target ≤ {QUERY_TARGET}: {'met' if ratio <= QUERY_TARGET else 'MISSED'}")
    return ours_s, bare_s


# --- (b) the page and /uptime under wrk ------------------------------------------------------


def production_app() -> Any:
    """``statuspage.wsgi.application`` with STATIC_ROOT pointed at this run's
    collectstatic (production's static storage needs its manifest to render a page);
    everything else is the production settings from the environment."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "statuspage.settings")
    from django.conf import settings

    settings.STATIC_ROOT = os.environ["BENCH_TAILNET_STATIC_ROOT"]
    from statuspage.wsgi import application

    return application


class AccessLog:
    """The statuses gunicorn logged (one per line) since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def statuses(self) -> Counter[str]:
        if not self.path.exists():
            return Counter()
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        # Only whole lines: a worker may be halfway through writing one.
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        return Counter(line.strip().decode() for line in complete.splitlines() if line.strip())


@dataclass(frozen=True)
class HttpRun:
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    statuses: Counter[str]
    errors: int
    cpu_ms: float  # gunicorn's CPU (master and workers) per answer


def measure_http(
    args: argparse.Namespace, subject: Subject, production: dict[str, str], work: Path
) -> dict[str, list[HttpRun]]:
    from django.core.management import call_command
    from django.test.utils import override_settings

    from bench.httpload import Gunicorn, ensure_tools, wrk
    from customers.models import Membership
    from plumbing.models import ApiToken
    from plumbing.tokens import api_token_create

    ensure_tools(wrk=True)
    tailnet = subject.tailnet
    static_root = work / "static"
    with override_settings(STATIC_ROOT=static_root):
        call_command("collectstatic", interactive=False, verbosity=0)

    user = member_ensure(tailnet)
    member = Membership.objects.get(user=user, tailnet=tailnet)
    ApiToken.objects.filter(name=TOKEN_NAME, tailnet=tailnet).delete()  # a crashed run's
    token, secret = api_token_create(
        name=TOKEN_NAME, scope=ApiToken.Scope.TAILNET, tailnet=tailnet, by=None
    )
    session_key = session_create(user)
    page_path = f"/t/{tailnet.slug}/"
    uptime_path = f"/api/v1/tailnets/{tailnet.slug}/uptime"
    targets = {
        "page": (page_path, {**PROXY_HEADERS, "Cookie": f"sessionid={session_key}"}),
        "uptime": (uptime_path, {**PROXY_HEADERS, "Authorization": f"Bearer {secret}"}),
    }
    server = Gunicorn(
        "bench.tailnet:production_app()",
        workers=args.workers,
        env={**production, "BENCH_TAILNET_STATIC_ROOT": str(static_root)},
    )
    access_log = AccessLog(server.workdir / "access.log")
    server.extra = ["--access-logfile", str(access_log.path), "--access-logformat", "%(s)s"]
    results: dict[str, list[HttpRun]] = {name: [] for name in targets}
    try:
        server.start(ready_path=page_path, ready_headers=targets["page"][1])
        log(
            f"(b) http: statuspage.wsgi under gunicorn ({args.workers} sync workers), member"
            f" {user.username} ({member.role}) and token {token.prefix}…; wrk"
            f" {args.duration:.0f} s x {args.connections} connections ({args.threads}"
            f" threads), {args.http_runs} runs each after a warm-up, alternating"
        )
        for path, headers in targets.values():
            status, answer_headers, body = server.get(path, headers)
            if status != 200:
                raise SystemExit(
                    f"FAIL: {path} answered {status} before the load:\n{body[:2000]!r}\n"
                    f"{server.output()}"
                )
            kind = answer_headers.get("Content-Type", "")
            log(f"  {path}: 200, {len(body):,} bytes of {kind}")
            wrk(server.url(path), duration=1, connections=args.connections, headers=headers)
        access_log.statuses()  # the warm-up's
        for run in range(args.http_runs):
            order = list(targets) if run % 2 == 0 else list(reversed(targets))
            for name in order:
                path, headers = targets[name]
                busy = wait_for_idle_cpu(timeout=args.idle_timeout)
                cpu_before = server.cpu_seconds()
                result = wrk(
                    server.url(path),
                    duration=args.duration,
                    connections=args.connections,
                    threads=args.threads,
                    headers=headers,
                )
                time.sleep(0.2)  # the last answers' log lines
                cpu_ms = (server.cpu_seconds() - cpu_before) / max(1, result.requests) * 1000
                statuses = access_log.statuses()
                results[name].append(
                    HttpRun(
                        rps=result.requests_per_second,
                        p50_ms=result.p50_ms,
                        p99_ms=result.p99_ms,
                        max_ms=result.max_ms,
                        requests=result.requests,
                        statuses=statuses,
                        errors=result.errors,
                        cpu_ms=cpu_ms,
                    )
                )
                log(
                    f"  run {run + 1} {name:<6} (CPU busy before {busy:4.0%}):"
                    f" {result.requests_per_second:7,.0f} req/s  p50 {result.p50_ms:6.2f} ms"
                    f"  p99 {result.p99_ms:6.2f} ms  max {result.max_ms:7.2f} ms"
                    f"  server CPU {cpu_ms:5.2f} ms/req"
                    f"  statuses {dict(sorted(statuses.items()))}  socket errors {result.errors}"
                )
    finally:
        server.stop()
        from django.contrib.sessions.models import Session

        Session.objects.filter(session_key=session_key).delete()
        token.delete()
    return results


def report_http(results: dict[str, list[HttpRun]], connections: int) -> bool:
    """Medians per endpoint; False if any answer was not a 200 or a socket failed.

    wrk keeps ``connections`` requests in flight, so the mean latency is at least
    connections / throughput (Little's law): a p99 under the target needs the
    throughput that the server's CPU per answer allows on this machine's cores."""
    ok = True
    cores = os.cpu_count() or 1
    for name, runs in results.items():
        statuses: Counter[str] = sum((r.statuses for r in runs), Counter())
        bad = sum(n for status, n in statuses.items() if status != "200")
        errors = sum(r.errors for r in runs)
        rps = statistics.median(r.rps for r in runs)
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        cpu_ms = statistics.median(r.cpu_ms for r in runs)
        verdict = "met" if p99 < P99_TARGET_MS else "MISSED"
        log(
            f"  {name}: {rps:,.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms (medians of"
            f" {len(runs)} runs); target p99 < {P99_TARGET_MS:.0f} ms: {verdict};"
            f" {sum(statuses.values()):,} answers logged, non-200: {bad}, socket errors: {errors}"
        )
        log(
            f"    server CPU {cpu_ms:.2f} ms per answer: at most ~{cores * 1000 / cpu_ms:,.0f}"
            f" answers/s on {cores} cores (wrk and PostgreSQL share them); {connections}"
            f" connections in flight at {rps:,.0f}/s wait {connections / rps * 1000:.0f} ms"
            " on average (Little's law)"
        )
        if bad or errors or not statuses:
            ok = False
            log(f"FAIL: {name} had {bad} non-200 answers and {errors} socket errors: {statuses}")
    return ok


# --- Main ------------------------------------------------------------------------------------


def migrations_unapplied() -> list[str]:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few rounds, wrk 1 s (CI)")
    parser.add_argument("--tailnet", type=int, help="this tailnet id instead")
    parser.add_argument("--runs", type=int, help="(a) runs per side (default 200)")
    parser.add_argument("--piece-runs", type=int, help="(a) runs per side per read (default 100)")
    parser.add_argument("--no-http", dest="http", action="store_false", help="skip (b)")
    parser.add_argument("--duration", type=float, default=10.0, help="(b) seconds per wrk run")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--http-runs", type=int, default=2, help="(b) wrk runs per endpoint")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--idle-timeout", type=float, default=60.0)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_TAILNET_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="the cache of the gunicorn under load (keys prefixed bench-tailnet)",
    )
    args = parser.parse_args(argv)
    args.runs = args.runs or (20 if args.smoke else 200)
    args.piece_runs = args.piece_runs or (10 if args.smoke else 100)
    if args.smoke:
        args.duration, args.connections, args.threads = 1.0, 2, 1
        args.http_runs, args.idle_timeout = 1, 0.0

    url = database_url()
    work = Path(tempfile.mkdtemp(prefix="bench-tailnet-"))
    # Production settings, for this process (the session it signs) and gunicorn alike.
    production = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": hashlib.sha256(os.urandom(32)).hexdigest(),
        "DJANGO_ALLOWED_HOSTS": f"{PUBLIC_HOST},127.0.0.1",
        "STATUSPAGE_PUBLIC_URL": f"https://{PUBLIC_HOST}",
        # Behind a TLS proxy: only then is its X-Forwarded-Proto believed.
        "TRUSTED_PROXY_HOPS": "1",
        "STATUSPAGE_VAR_DIR": str(work / "var"),
        "DATABASE_URL": url,
        "REDIS_URL": args.redis_url,
        "CACHE_KEY_PREFIX": CACHE_KEY_PREFIX,
        "CELERY_BROKER_URL": "filesystem://",
        "TAILNET_API_RATE": THROTTLE_RATE,
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(production)
    try:
        setup_django(url)
        from django.db import connection
        from django.utils import timezone

        with connection.cursor() as cursor:
            meta = meta_read(cursor)
        if meta is None:
            log(f"No dataset in {connection.settings_dict['NAME']}: run `make bench-data` first.")
            return 2
        unapplied = migrations_unapplied()
        if unapplied:
            log(
                f"{len(unapplied)} migration(s) not applied to this database"
                f" ({', '.join(unapplied)}): `make bench-data` applies them and keeps the data."
            )
            return 2
        log(
            f"dataset {connection.settings_dict['NAME']}: {meta['tailnets']:,} tailnets,"
            f" {meta['shards']} shards, {meta['days']} days to {meta['now'][:10]};"
            f" load average {load()} ({os.cpu_count()} CPUs)"
        )
        subject = subject_pick(meta, args.tailnet, timezone.now())
        added = rollups_ensure(subject.now, meta["seed"])
        log(
            f"probe rollups: {added:,} hourly rows added"
            f" ({len(PROBE_REGIONS)} regions x {meta['shards']} shards, last {ROLLUP_DAYS} days)"
        )
        member_ensure(subject.tailnet)
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as raw:
            raw.execute("SET TimeZone = 'UTC'")
            ours_s, bare_s = measure_queries(args, subject, raw)
        http_ok = True
        if args.http:
            results = measure_http(args, subject, production, work)
            http_ok = report_http(results, args.connections)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(
        f"tailnet: ours={ours_s * 1000:.3f}ms baseline={bare_s * 1000:.3f}ms"
        f" ratio={ours_s / bare_s:.2f}"
    )
    return 0 if http_ok else 1


if __name__ == "__main__":
    sys.exit(main())
