"""The fleet feed on the 1M-tailnet dataset: migrations through the service, and a
whole-map reconcile through its command, each against bare SQL on the same schema.

    make bench-data      # once: the dataset (bench/data.py), with its backfilled event log
    make bench-fleet     # this (~4.5 minutes at full size on a quiet machine)
    make bench-fleet BENCH_ARGS="--quick"

Every side runs on its own fresh copy of the dataset database (``CREATE DATABASE
<dataset>_fleet_<part>_<side> TEMPLATE <dataset>``, dropped at the end, also a crashed
run's at the start) and migrated (``manage.py migrate``: the dataset may be behind the
tree), so both sides of a comparison start from the same data on the schema of the code
measured, and the dataset itself is never written. Copying needs nobody else connected to the
dataset database: the script waits for that (``--wait-alone`` seconds), never
disconnects anyone. Each copy gets the same ongoing outage on three shards of one
region (since the dataset's "now"), so the changes below overlap an open incident and
the recompute is really enqueued. A ``CHECKPOINT`` precedes each side, and each timed
part waits up to ``--idle-timeout`` seconds for a quiet CPU (the machine is shared).

fleet-events: ``--migrations`` (100,000) ``tailnet.migrated`` events for ``--tailnets``
(20,000) random tailnets placed now, in ``--batches`` (10) batches of 10,000 (the API's
limit per request). 5 % of the events sent are duplicates of events sent before (in the
same batch or an earlier one), so 95,000 are distinct: 4 or 5 per tailnet, at increasing
whole seconds between the later of the dataset's "now" and the tailnet's current
placement start, and 10 minutes ago; each to another shard (85 % in the same region).
The whole set is shuffled before it is cut into batches, so most tailnets receive their
migrations out of order and earlier placements are split again.

- *Ours*: ``fleet.services.fleet_events_ingest(events=batch, source="api")`` in this
  process (Django set up against its copy, DEBUG off, the Celery broker ``memory://``
  with eager execution off, the file cache in a temporary directory), timed from call to
  return: checking every event, storing the new ones, deriving each touched tailnet from
  its whole log, rewriting what differs, finding the incidents whose windows overlap a
  changed interval, marking them and queueing their recompute, COMMIT, and publishing
  the queued task after the commit.
- *Baseline*: a plain psycopg connection to the other copy, per batch ``BEGIN``; the
  batch as one JSON parameter into ``INSERT … SELECT … FROM jsonb_to_recordset(…) ON
  CONFLICT (id) DO NOTHING``; the touched tailnets locked in slug order; for each, its
  placement covering its earliest new event and, from there on, the spans its stored
  migrations imply (window functions); the placements that differ deleted, the new ones
  inserted; the incidents whose windows overlap a changed interval (clipped at the
  tailnet's earliest new event) marked ``impacts_changed_at``, locked by that UPDATE;
  ``COMMIT``. Not in the baseline: checking the events (JSON shapes, slugs, shards known
  and not retired, conflicting contents of a stored id), deriving from the whole log
  (the bare rewrite starts at the covering placement and knows only migrations), cache
  announcements and publishing the Celery message.

Batches alternate which side goes first. ``ours`` and ``baseline`` are the sums over
the batches. Afterwards both copies must hold the placements (from each tailnet's
placement before the run on) that the events imply, computed here in Python, or the
script fails; ours must report 95,000 accepted and 5,000 duplicates. Then, informational
(no ratio): gunicorn (2 sync workers, production settings) serving the ours copy,
``POST /api/v1/fleet/events`` with a ``fleet``-scoped token, ``--http-events`` (20,000)
new migrations (one per tailnet, distinct ids) in batches of ``--http-batch`` (5,000),
one request at a time: events per second of wall time, JSON encoding excluded.

fleet-reconcile: the map we believe at ``as_of`` (the script's start, whole seconds:
the placement covering it, for every tailnet) with 1 % of the tailnets moved to another
shard, 0.1 % new ones (new slugs) and 0.1 % gone, shuffled, as NDJSON in a temporary file.

- *Ours*: ``python manage.py fleet_reconcile <file> --as-of <as_of>`` as a subprocess
  against its copy, timed from start to exit (so including Python's and Django's start,
  printed separately), exit code 0 required (else its output is printed and the script
  fails); its peak RSS from ``wait4``, through a small intermediate process (see
  ``RSS_WRAPPER``).
- *Baseline*: a plain psycopg connection to the other copy, one transaction: ``COPY``
  of the file's lines as they are into a temporary ``jsonb`` table (psycopg's
  ``cursor.copy``), the fields extracted into a second one, one ``FULL JOIN`` of it with
  the placements covering ``as_of`` into a diff table, then: placements of moved and
  gone tailnets closed at ``as_of``, new tailnets inserted, placements of moved and new
  ones inserted from ``as_of``, gone ones marked deleted, changed display names updated,
  the events (created/migrated/renamed/deleted, ids as the command makes them) inserted
  ``ON CONFLICT DO NOTHING``, the open incidents on a changed shard marked; ``COMMIT``.
  Not in the baseline: checking each line (JSON, slugs, duplicates, shards known and not
  retired), deriving from the log, committing in chunks, cache announcements, Celery.

``--rounds`` (2) rounds, each side on fresh copies, alternating which goes first;
medians. After each side, the current placements of the whole copy must be the map of
the file (slug, shard, display name) and exactly the gone tailnets deleted at ``as_of``,
or the script fails, counting the tailnets that differ.

Progress goes to stderr, results to stdout; the last two lines are
``fleet-events: ours=<s>s baseline=<s>s ratio=<r>`` and
``fleet-reconcile: ours=<s>s baseline=<s>s ratio=<r>`` (ratio = ours / baseline, target
≤ 2 each; missing it is reported, not fatal).
"""

import argparse
import gc
import hashlib
import http.client
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ROOT, database_url, meta_read
from bench.httpload import wait_for_idle_cpu

TARGET = 2.0
TITLE = "bench/fleet.py: ongoing outage"
EVENT_PREFIX = "fleetbench"
NEW_SLUG_PREFIX = "fleetbench-new"
SAME_REGION = 0.85
PUBLIC_HOST = "status.example.com"
HTTP_HEADERS = {"X-Forwarded-Proto": "https", "Host": PUBLIC_HOST}
TOKEN_NAME = "bench-fleet"  # noqa: S105 - the token's name, not a secret
COPY_BLOCK = 1 << 20


def log(message: str = "") -> None:
    """Progress and details: stderr."""
    print(message, file=sys.stderr, flush=True)


def say(message: str) -> None:
    """Results: stdout."""
    print(message, flush=True)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def connect(url: str) -> psycopg.Connection:
    """A plain connection: autocommit (transactions are explicit), no prepared
    statements, UTC."""
    conn = psycopg.connect(url, autocommit=True, prepare_threshold=None)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


# --- Copies of the dataset ---------------------------------------------------------------


class Copies:
    """Fresh copies of the dataset database, named ``<dataset>_fleet_<suffix>``."""

    SUFFIXES = ("events_ours", "events_bare", "reconcile_ours", "reconcile_bare")

    def __init__(self, url: str, *, wait_alone: float) -> None:
        self.url = url
        self.template = urlsplit(url).path.lstrip("/")
        if not self.template:
            raise SystemExit(f"BENCH_DATABASE_URL names no database: {url!r}")
        self.admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
        self.wait_alone = wait_alone

    def name(self, suffix: str) -> str:
        return f"{self.template}_fleet_{suffix}"

    def url_of(self, name: str) -> str:
        return urlsplit(self.url)._replace(path=f"/{name}").geturl()

    def drop_all(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            for suffix in self.SUFFIXES:
                ident = sql.Identifier(self.name(suffix))
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))

    def make(self, suffix: str) -> str:
        """A fresh copy (any older one of that name dropped first); returns its URL.
        PostgreSQL refuses while others are connected to the dataset: retried until
        ``wait_alone`` seconds have passed."""
        name = self.name(suffix)
        started = time.perf_counter()
        deadline = time.monotonic() + self.wait_alone
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            create = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(self.template)
            )
            while True:
                try:
                    conn.execute(create)
                    break
                except psycopg.errors.ObjectInUse as error:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"cannot copy {self.template}: {error}") from None
                    log(f"  waiting to copy {self.template}: {error}".replace("\n", " "))
                    time.sleep(5)
        log(f"  copied {self.template} to {name} in {time.perf_counter() - started:.1f} s")
        return self.url_of(name)


def ongoing_outage_add(url: str, meta: dict[str, Any]) -> tuple[int, list[str]]:
    """The same open incident in every copy: an outage on the first three shards (slug
    order) of the first region, since the dataset's "now". Returns its id and shards."""
    since = datetime.fromisoformat(meta["now"])
    with connect(url) as conn, conn.transaction():
        shards = conn.execute(
            "SELECT id, slug FROM incidents_shard WHERE region ="
            " (SELECT min(region) FROM incidents_shard WHERE active)"
            " AND active ORDER BY slug LIMIT 3"
        ).fetchall()
        incident_id = conn.execute(
            "INSERT INTO incidents_incident (title, kind, status, impact, source, published,"
            " published_at, started_at, detected_at, postmortem, created_at, updated_at,"
            " impacts_changed_at) VALUES (%(title)s, 'incident', 'identified', 'major',"
            " 'probe', true, %(at)s, %(at)s, %(at)s, '', %(at)s, %(at)s, %(at)s) RETURNING id",
            {"title": TITLE, "at": since},
        ).fetchone()[0]
        for shard_id, _ in shards:
            conn.execute(
                "INSERT INTO incidents_shardimpact (incident_id, shard_id, level, starts_at)"
                " VALUES (%s, %s, 'outage', %s)",
                [incident_id, shard_id, since],
            )
    return incident_id, [slug for _, slug in shards]


def migrate(url: str, env: dict[str, str]) -> list[str]:
    """The tree's migrations applied to a copy (the dataset may be behind the tree and is
    never migrated here), so both sides run on the schema of the code measured. Returns
    the migrations applied."""
    environ = {**os.environ, **env, "DATABASE_URL": url}
    environ.pop("REDIS_URL", None)
    done = subprocess.run(  # noqa: S603 - our manage.py, fixed arguments
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py migrate failed on {url}:\n{done.stdout}{done.stderr}")
    return [
        line.split("Applying ", 1)[1].split("...")[0].strip()
        for line in done.stdout.splitlines()
        if "Applying " in line
    ]


def fresh_copy(copies: "Copies", suffix: str, meta: dict[str, Any], env: dict[str, str]) -> str:
    """A fresh copy of the dataset, migrated, with the ongoing outage; returns its URL."""
    url = copies.make(suffix)
    applied = migrate(url, env)
    incident_id, shards = ongoing_outage_add(url, meta)
    log(
        f"    migrations applied to it: {', '.join(applied) or 'none'};"
        f" ongoing outage {incident_id} on {', '.join(shards)}"
    )
    return url


def checkpoint(url: str) -> None:
    with connect(url) as conn:
        conn.execute("CHECKPOINT")


# --- Django, in this process (fleet-events, ours) ------------------------------------------


def django_env(work: Path) -> dict[str, str]:
    """Production-like settings for this process, gunicorn and the command: DEBUG off,
    Celery's in-memory broker (tasks are published, never run), the file cache and
    runtime files in a temporary directory."""
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": hashlib.sha256(os.urandom(32)).hexdigest(),
        "DJANGO_ALLOWED_HOSTS": f"{PUBLIC_HOST},127.0.0.1",
        "STATUSPAGE_PUBLIC_URL": f"https://{PUBLIC_HOST}",
        # Behind a TLS proxy: only then is its X-Forwarded-Proto believed.
        "TRUSTED_PROXY_HOPS": "1",
        "STATUSPAGE_VAR_DIR": str(work / "var"),
        "CELERY_BROKER_URL": "memory://",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOG_LEVEL": "WARNING",
    }


def django_setup(url: str, env: dict[str, str]) -> None:
    from bench import setup_django

    os.environ.update(env)
    os.environ.pop("REDIS_URL", None)
    setup_django(url)
    # The in-memory transport says "No hostname was supplied" for every connection.
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)


def django_close() -> None:
    """Django's connections closed (if it was set up), so its copy can be dropped."""
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


class Instruments:
    """Where ours goes: Django's statements by kind and table, the COMMITs, the checks
    (``services._checked``), and the Celery messages published."""

    def __init__(self) -> None:
        self.heads: list[tuple[str, float]] = []
        self.commit = 0.0
        self.checks = 0.0
        self.published: Counter[str] = Counter()

    def statements(self) -> dict[str, list[float]]:
        """Seconds of each statement, by ``statement_kind``."""
        found: dict[str, list[float]] = defaultdict(list)
        for head, seconds in self.heads:
            found[statement_kind(head)].append(seconds)
        return found

    def __call__(self, execute: Callable, sql_: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql_, params, many, context)
        finally:
            # Only its ends are kept (FOR … UPDATE comes last): classifying a statement
            # with thousands of placeholders is left out of the timing.
            self.heads.append((f"{sql_[:400]} {sql_[-60:]}", time.perf_counter() - started))

    @contextmanager
    def installed(self) -> Iterator[None]:
        from celery.signals import after_task_publish
        from django.db import connection

        from fleet import services

        commit = connection._commit
        checked = services._checked

        def timed_commit() -> None:
            started = time.perf_counter()
            try:
                commit()
            finally:
                self.commit += time.perf_counter() - started

        def timed_checked(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return checked(*args, **kwargs)
            finally:
                self.checks += time.perf_counter() - started

        def published(sender: Any = None, **kwargs: Any) -> None:
            self.published[str(sender)] += 1

        connection._commit = timed_commit
        services._checked = timed_checked
        after_task_publish.connect(published, weak=False)
        try:
            with connection.execute_wrapper(self):
                yield
        finally:
            after_task_publish.disconnect(published)
            services._checked = checked
            del connection._commit  # back to the class's method


def statement_kind(sql_: str) -> str:
    """``VERB table`` of a statement, e.g. ``INSERT fleet_fleetevent``."""
    words = sql_.replace('"', "").split()
    upper = [word.upper() for word in words]
    verb = upper[0]
    if verb == "SELECT" and "FOR NO KEY UPDATE" in " ".join(upper):
        verb = "SELECT … FOR NO KEY UPDATE"
    keyword = {"INSERT": "INTO", "UPDATE": "UPDATE"}.get(upper[0], "FROM")
    if keyword in upper[:-1]:
        return f"{verb} {words[upper.index(keyword) + 1]}"
    return verb


# --- fleet-events: the plan ----------------------------------------------------------------


@dataclass
class Subject:
    """A tailnet the events move: where it is at the start, and what it is sent."""

    slug: str
    shard: str
    since: datetime
    events: list[dict[str, str]] = field(default_factory=list)


@dataclass
class EventsPlan:
    subjects: list[Subject]
    batches: list[list[dict[str, str]]]
    distinct: int
    duplicates: int
    http_batches: list[list[dict[str, str]]]


def shards_by_region(conn: psycopg.Connection) -> tuple[dict[str, str], dict[str, list[str]]]:
    rows = conn.execute("SELECT slug, region FROM incidents_shard WHERE active ORDER BY slug")
    region_of = dict(rows.fetchall())
    by_region: dict[str, list[str]] = defaultdict(list)
    for slug, region in region_of.items():
        by_region[region].append(slug)
    return region_of, by_region


def other_shard(
    rng: random.Random, current: str, region_of: dict[str, str], by_region: dict[str, list[str]]
) -> str:
    """Another shard: in the same region 85 % of the time (when it has another)."""
    same = [s for s in by_region[region_of[current]] if s != current]
    if same and rng.random() < SAME_REGION:
        return rng.choice(same)
    while True:
        shard = rng.choice(list(region_of))
        if shard != current and (region_of[shard] != region_of[current] or not same):
            return shard


def events_plan(
    conn: psycopg.Connection, meta: dict[str, Any], args: argparse.Namespace, now: datetime
) -> EventsPlan:
    rng = random.Random(meta["seed"])
    region_of, by_region = shards_by_region(conn)
    rows = conn.execute(
        "SELECT t.slug, s.slug, p.starts_at FROM incidents_placement p"
        " JOIN incidents_tailnet t ON t.id = p.tailnet_id"
        " JOIN incidents_shard s ON s.id = p.shard_id"
        " WHERE p.ends_at IS NULL AND t.deleted_at IS NULL AND s.active"
        " ORDER BY md5(t.slug || %s) LIMIT %s",
        [str(meta["seed"]), args.tailnets],
    ).fetchall()
    subjects = [Subject(slug, shard, since) for slug, shard, since in rows]
    if len(subjects) < args.tailnets:
        raise SystemExit(f"only {len(subjects):,} tailnets are placed now; need {args.tailnets:,}")

    per_batch = args.migrations // args.batches
    repeats = round(per_batch * args.duplicates)
    fresh = per_batch - repeats
    distinct = fresh * args.batches
    earliest = datetime.fromisoformat(meta["now"])
    latest = now - timedelta(minutes=10)
    everything: list[dict[str, str]] = []
    for n, subject in enumerate(subjects):
        count = distinct // len(subjects) + (1 if n < distinct % len(subjects) else 0)
        first = int(max(subject.since, earliest).timestamp()) + 1
        last = int(latest.timestamp())
        if last - first < count:
            raise SystemExit(f"no room for {count} migrations of {subject.slug} before {latest}")
        shard = subject.shard
        for k, second in enumerate(sorted(rng.sample(range(first, last), count)), start=1):
            shard = other_shard(rng, shard, region_of, by_region)
            subject.events.append(
                {
                    "id": f"{EVENT_PREFIX}:{subject.slug}:{k}",
                    "type": "tailnet.migrated",
                    "at": rfc3339(datetime.fromtimestamp(second, UTC)),
                    "tailnet": subject.slug,
                    "shard": shard,
                }
            )
        everything.extend(subject.events)
    rng.shuffle(everything)

    batches = []
    for b in range(args.batches):
        batch = everything[b * fresh : (b + 1) * fresh]
        batch += rng.choices(everything[: (b + 1) * fresh], k=repeats)
        rng.shuffle(batch)
        batches.append(batch)

    # One more migration each, later than all of the above, for the HTTP part.
    http_events = []
    for subject in subjects[: args.http_events]:
        last_shard = subject.events[-1]["shard"] if subject.events else subject.shard
        at = latest + timedelta(seconds=rng.randint(1, 590))
        http_events.append(
            {
                "id": f"{EVENT_PREFIX}:http:{subject.slug}",
                "type": "tailnet.migrated",
                "at": rfc3339(at),
                "tailnet": subject.slug,
                "shard": other_shard(rng, last_shard, region_of, by_region),
            }
        )
    size = args.http_batch
    http_batches = [http_events[i : i + size] for i in range(0, len(http_events), size)]
    return EventsPlan(subjects, batches, distinct, repeats * args.batches, http_batches)


def expected_placements(subjects: list[Subject]) -> set[tuple[str, str, datetime, datetime | None]]:
    """Each subject's placements from its placement at the start on, as its events say."""
    expected = set()
    for subject in subjects:
        spans: list[list[Any]] = [[subject.shard, subject.since, None]]
        for event in sorted(subject.events, key=lambda e: (e["at"], e["id"])):
            if event["shard"] == spans[-1][0]:
                continue
            at = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
            spans[-1][2] = at
            spans.append([event["shard"], at, None])
        expected.update((subject.slug, shard, start, end) for shard, start, end in spans)
    return expected


def placements_of(conn: psycopg.Connection, subjects: list[Subject]) -> set[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT x.slug, s.slug, p.starts_at, p.ends_at"
        " FROM unnest(%s::text[], %s::timestamptz[]) AS x(slug, since)"
        " JOIN incidents_tailnet t ON t.slug = x.slug"
        " JOIN incidents_placement p ON p.tailnet_id = t.id AND p.starts_at >= x.since"
        " JOIN incidents_shard s ON s.id = p.shard_id",
        [[s.slug for s in subjects], [s.since for s in subjects]],
    )
    return set(rows.fetchall())


# --- fleet-events: the bare baseline -------------------------------------------------------

BARE_EVENTS_SETUP = [
    "CREATE TEMPORARY TABLE fb_touched (tailnet_id bigint PRIMARY KEY, slug text NOT NULL,"
    " first_at timestamptz NOT NULL) ON COMMIT DELETE ROWS",
    "CREATE TEMPORARY TABLE fb_cover (tailnet_id bigint PRIMARY KEY, shard_id bigint NOT NULL,"
    " starts_at timestamptz NOT NULL) ON COMMIT DELETE ROWS",
    "CREATE TEMPORARY TABLE fb_spans (tailnet_id bigint NOT NULL, shard_id bigint NOT NULL,"
    " starts_at timestamptz NOT NULL, ends_at timestamptz) ON COMMIT DELETE ROWS",
    "CREATE TEMPORARY TABLE fb_changed (tailnet_id bigint NOT NULL, shard_id bigint NOT NULL,"
    " starts_at timestamptz NOT NULL, ends_at timestamptz) ON COMMIT DELETE ROWS",
]
BARE_EVENTS = [
    # The events, each id once; the tailnets that got new ones, with the earliest.
    (
        "store",
        """
        WITH stored AS (
            INSERT INTO fleet_fleetevent
                (id, type, at, tailnet, shard, payload, source, received_at)
            SELECT e.id, e.type, e.at, e.tailnet, e.shard, '{}', 'api', now()
            FROM jsonb_to_recordset(%(events)s::jsonb)
                AS e(id text, type text, at timestamptz, tailnet text, shard text)
            ON CONFLICT (id) DO NOTHING
            RETURNING tailnet, at
        )
        INSERT INTO fb_touched (tailnet_id, slug, first_at)
        SELECT t.id, t.slug, min(stored.at)
        FROM stored JOIN incidents_tailnet t ON t.slug = stored.tailnet
        GROUP BY t.id, t.slug
        """,
    ),
    ("store", "ANALYZE fb_touched"),
    (
        "lock",
        "SELECT t.id FROM incidents_tailnet t JOIN fb_touched USING (slug)"
        " ORDER BY t.slug FOR NO KEY UPDATE OF t",
    ),
    # The placement covering each tailnet's earliest new event: the rewrite starts there.
    (
        "derive",
        """
        INSERT INTO fb_cover (tailnet_id, shard_id, starts_at)
        SELECT p.tailnet_id, p.shard_id, p.starts_at
        FROM fb_touched t JOIN incidents_placement p
          ON p.tailnet_id = t.tailnet_id AND p.starts_at <= t.first_at
         AND (p.ends_at IS NULL OR p.ends_at > t.first_at)
        """,
    ),
    # From there on: that placement's start and every later migration stored, in (at, id)
    # order; one to the shard it is already on changes nothing; each lasts until the next.
    (
        "derive",
        """
        INSERT INTO fb_spans (tailnet_id, shard_id, starts_at, ends_at)
        SELECT tailnet_id, shard_id, at,
               lead(at) OVER (PARTITION BY tailnet_id ORDER BY at, id)
        FROM (
            SELECT *, lag(shard_id) OVER (PARTITION BY tailnet_id ORDER BY at, id) AS before
            FROM (
                SELECT c.tailnet_id, c.starts_at AS at, '' COLLATE "C" AS id, c.shard_id
                FROM fb_cover c
                UNION ALL
                SELECT c.tailnet_id, e.at, e.id COLLATE "C", s.id
                FROM fb_cover c
                JOIN fb_touched t ON t.tailnet_id = c.tailnet_id
                JOIN fleet_fleetevent e ON e.tailnet = t.slug AND e.at > c.starts_at
                JOIN incidents_shard s ON s.slug = e.shard
                WHERE e.type IN ('tailnet.created', 'tailnet.migrated')
            ) steps
        ) marked
        WHERE before IS DISTINCT FROM shard_id
        """,
    ),
    ("derive", "ANALYZE fb_spans"),
    (
        "rewrite",
        """
        WITH gone AS (
            DELETE FROM incidents_placement p USING fb_cover c
            WHERE p.tailnet_id = c.tailnet_id AND p.starts_at >= c.starts_at
              AND NOT EXISTS (
                  SELECT 1 FROM fb_spans n
                  WHERE n.tailnet_id = p.tailnet_id AND n.starts_at = p.starts_at
                    AND n.shard_id = p.shard_id AND n.ends_at IS NOT DISTINCT FROM p.ends_at)
            RETURNING p.tailnet_id, p.shard_id, p.starts_at, p.ends_at
        )
        INSERT INTO fb_changed SELECT * FROM gone
        """,
    ),
    (
        "rewrite",
        """
        WITH placed AS (
            INSERT INTO incidents_placement (tailnet_id, shard_id, starts_at, ends_at)
            SELECT n.tailnet_id, n.shard_id, n.starts_at, n.ends_at FROM fb_spans n
            WHERE NOT EXISTS (
                SELECT 1 FROM incidents_placement p
                WHERE p.tailnet_id = n.tailnet_id AND p.starts_at = n.starts_at
                  AND p.shard_id = n.shard_id AND p.ends_at IS NOT DISTINCT FROM n.ends_at)
            RETURNING tailnet_id, shard_id, starts_at, ends_at
        )
        INSERT INTO fb_changed SELECT * FROM placed
        """,
    ),
    # Enqueue: the incidents whose windows overlap a changed interval, marked (and so
    # locked), as ``impacts_changed`` does; nothing before the earliest new event changed.
    (
        "incidents",
        """
        UPDATE incidents_incident SET impacts_changed_at = now(), updated_at = now()
        WHERE id IN (
            SELECT si.incident_id
            FROM fb_changed c
            JOIN fb_touched t ON t.tailnet_id = c.tailnet_id
            JOIN incidents_shardimpact si ON si.shard_id = c.shard_id
             AND tstzrange(si.starts_at, si.ends_at)
              && tstzrange(GREATEST(c.starts_at, t.first_at), c.ends_at)
            WHERE c.ends_at IS NULL OR c.ends_at > t.first_at)
        RETURNING id
        """,
    ),
]


@dataclass
class BareRun:
    """Times of a bare run by step, and what its last steps returned."""

    steps: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    marked: int = 0

    def run(self, conn: psycopg.Connection, step: str, query: str, params: Any = None) -> Any:
        started = time.perf_counter()
        cursor = conn.execute(query, params)
        self.steps[step] += time.perf_counter() - started
        return cursor


def bare_events_batch(conn: psycopg.Connection, batch: list[dict[str, str]], run: BareRun) -> float:
    started = time.perf_counter()
    body = json.dumps(batch)
    run.steps["encode"] += time.perf_counter() - started
    run.run(conn, "begin", "BEGIN")
    for step, query in BARE_EVENTS:
        cursor = run.run(conn, step, query, {"events": body} if "%(" in query else None)
        if step == "incidents":
            run.marked += len(cursor.fetchall())
    run.run(conn, "commit", "COMMIT")
    return time.perf_counter() - started


# --- fleet-events: the run -----------------------------------------------------------------


def measure_events(
    args: argparse.Namespace, meta: dict[str, Any], copies: Copies, work: Path
) -> tuple[float, float]:
    now = datetime.now(UTC).replace(microsecond=0)
    with connect(copies.url) as conn:
        plan = events_plan(conn, meta, args, now)
    # The plan is the benchmark's, not the service's heap: out of the garbage collector's way.
    gc.collect()
    gc.freeze()
    sent = sum(len(batch) for batch in plan.batches)
    log(
        f"fleet-events: {sent:,} tailnet.migrated events for {len(plan.subjects):,} tailnets"
        f" ({plan.distinct:,} distinct, {plan.duplicates:,} duplicates) in {len(plan.batches)}"
        f" shuffled batches of {len(plan.batches[0]):,}"
    )
    env = django_env(work)
    ours_url = fresh_copy(copies, "events_ours", meta, env)
    bare_url = fresh_copy(copies, "events_bare", meta, env)
    django_setup(ours_url, env)
    from django.db import connection

    from fleet.services import fleet_events_ingest

    with connection.cursor() as cursor:  # connect, and import what the service needs
        cursor.execute("SELECT count(*) FROM incidents_shard")
    instruments = Instruments()
    bare_run = BareRun()
    with connect(bare_url) as bare:
        for statement in BARE_EVENTS_SETUP:
            bare.execute(statement)
        checkpoint(ours_url)
        checkpoint(bare_url)
        ours_times: list[float] = []
        bare_times: list[float] = []
        counts = {"accepted": 0, "duplicates": 0}
        for n, batch in enumerate(plan.batches):
            busy = wait_for_idle_cpu(timeout=args.idle_timeout)
            order = ["ours", "bare"] if n % 2 == 0 else ["bare", "ours"]
            for side in order:
                if side == "ours":
                    with instruments.installed():
                        started = time.perf_counter()
                        got = fleet_events_ingest(events=batch, source="api")
                        ours_times.append(time.perf_counter() - started)
                    counts["accepted"] += got["accepted"]
                    counts["duplicates"] += got["duplicates"]
                else:
                    bare_times.append(bare_events_batch(bare, batch, bare_run))
            log(
                f"  batch {n + 1:2}/{len(plan.batches)} ({order[0]} first):"
                f" ours {ours_times[-1]:6.2f} s  bare {bare_times[-1]:6.2f} s"
                f"  x{ours_times[-1] / bare_times[-1]:.2f}  (CPU busy before {busy:.0%},"
                f" load {load()})"
            )

        if counts != {"accepted": plan.distinct, "duplicates": plan.duplicates}:
            raise SystemExit(f"FAIL: ours counted {counts}, expected {plan.distinct:,} accepted")
        expected = expected_placements(plan.subjects)
        with connect(ours_url) as ours_conn:
            ours_rows = placements_of(ours_conn, plan.subjects)
        bare_rows = placements_of(bare, plan.subjects)
        for side, rows in (("ours", ours_rows), ("bare", bare_rows)):
            wrong = expected ^ rows
            if wrong:
                tailnets = len({row[0] for row in wrong})
                raise SystemExit(
                    f"FAIL: {side} has {len(wrong):,} placements that differ from what the"
                    f" events imply ({tailnets:,} tailnets), e.g. {sorted(wrong)[:4]}"
                )
        log(
            f"  both copies: the {len(expected):,} placements the events imply"
            f" (from each tailnet's placement at the start on)"
        )

    ours_s, bare_s = sum(ours_times), sum(bare_times)
    events_breakdown(ours_s, instruments, bare_s, bare_run, len(plan.batches))
    verdict = "met" if ours_s / bare_s <= TARGET else "MISSED"
    say(
        f"fleet-events: {sent:,} events ({plan.distinct:,} new) in {len(plan.batches)} batches:"
        f" ours {ours_s:.2f} s ({plan.distinct / ours_s:,.0f} new events/s),"
        f" bare SQL {bare_s:.2f} s; target ≤ {TARGET}: {verdict}"
    )
    if args.http:
        events_http(plan, env, ours_url)
    django_close()
    return ours_s, bare_s


def events_breakdown(
    ours_s: float, instruments: Instruments, bare_s: float, bare_run: BareRun, batches: int
) -> None:
    statements = instruments.statements()
    sql_total = sum(sum(times) for times in statements.values())
    log(f"  where ours went ({ours_s:.2f} s over {batches} batches):")
    checks = "checking the events (services._checked, incl. its queries)"
    log(f"    {checks:<58} {instruments.checks:7.2f} s")
    for kind, times in sorted(statements.items(), key=lambda kv: -sum(kv[1]))[:12]:
        log(f"    {kind:<58} {sum(times):7.2f} s  ({len(times)} statements)")
    log(f"    {'COMMIT':<58} {instruments.commit:7.2f} s")
    python = ours_s - sql_total - instruments.commit
    log(f"    {'Python (everything but SQL and COMMIT)':<58} {python:7.2f} s")
    log(f"    Celery messages published: {dict(instruments.published)}")
    log(f"  where bare SQL went ({bare_s:.2f} s):")
    for step, seconds in bare_run.steps.items():
        log(f"    {step:<58} {seconds:7.2f} s")
    log(f"    batches that marked the ongoing outage: {bare_run.marked}")


def events_http(plan: EventsPlan, env: dict[str, str], url: str) -> None:
    """Informational: the new events through gunicorn and the API, one POST at a time."""
    from bench.httpload import Gunicorn
    from plumbing.models import ApiToken
    from plumbing.tokens import api_token_create

    path = "/api/v1/fleet/events"
    token, secret = api_token_create(name=TOKEN_NAME, scope=ApiToken.Scope.FLEET)
    headers = {
        **HTTP_HEADERS,
        "Authorization": f"Bearer {secret}",
        "Content-Type": "application/json",
    }
    server = Gunicorn("statuspage.wsgi:application", workers=2, env={**env, "DATABASE_URL": url})
    bodies = [json.dumps({"events": batch}).encode() for batch in plan.http_batches]
    warmup = json.dumps({"events": plan.batches[0][:2]}).encode()  # stored already
    try:
        server.start(ready_path=path, ready_headers=HTTP_HEADERS)
        for _ in range(2):  # each worker's first request pays for its imports
            post(server.port, path, warmup, headers)
        started = time.perf_counter()
        accepted = 0
        for n, body in enumerate(bodies, start=1):
            t0 = time.perf_counter()
            answer = post(server.port, path, body, headers)
            accepted += answer["accepted"]
            log(f"  POST {n}/{len(bodies)}: {answer} in {time.perf_counter() - t0:.2f} s")
        seconds = time.perf_counter() - started
    finally:
        server.stop()
        token.delete()
    events = sum(len(batch) for batch in plan.http_batches)
    if accepted != events:
        raise SystemExit(f"FAIL: the API accepted {accepted:,} of {events:,} new events")
    say(
        f"fleet-events-http: {events:,} new events in {len(bodies)} POSTs of"
        f" {len(plan.http_batches[0]):,} (gunicorn, 2 sync workers, one request at a time):"
        f" {seconds:.2f} s, {events / seconds:,.0f} events/s"
    )


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise SystemExit(f"FAIL: POST {path} answered {response.status}: {data[:2000]!r}")
    return dict(json.loads(data))


# --- fleet-reconcile -----------------------------------------------------------------------

BELIEVED = """
    SELECT p.id AS placement_id, t.id AS tailnet_id, t.slug, s.id AS shard_id,
           s.slug AS shard, t.display_name
    FROM incidents_placement p
    JOIN incidents_tailnet t ON t.id = p.tailnet_id
    JOIN incidents_shard s ON s.id = p.shard_id
    WHERE p.starts_at <= %(as_of)s AND (p.ends_at IS NULL OR p.ends_at > %(as_of)s)
"""
CURRENT_MAP = """
    SELECT t.slug, s.slug, t.display_name, t.deleted_at IS NULL
    FROM incidents_placement p
    JOIN incidents_tailnet t ON t.id = p.tailnet_id
    JOIN incidents_shard s ON s.id = p.shard_id
    WHERE p.ends_at IS NULL
"""
BARE_RECONCILE = [
    ("stage", "CREATE TEMPORARY TABLE rc_lines (doc jsonb NOT NULL) ON COMMIT DROP"),
    ("COPY", None),  # the file's lines, as they are
    (
        "stage",
        "CREATE TEMPORARY TABLE rc_map ON COMMIT DROP AS SELECT doc->>'tailnet' AS slug,"
        " doc->>'shard' AS shard, doc->>'display_name' AS display_name FROM rc_lines",
    ),
    ("stage", "ANALYZE rc_map"),
    (
        "diff",
        f"""
        CREATE TEMPORARY TABLE rc_diff ON COMMIT DROP AS
        SELECT COALESCE(m.slug, b.slug) AS slug, m.shard, m.display_name,
               b.tailnet_id, b.placement_id, b.shard_id AS old_shard_id,
               b.display_name AS old_name,
               CASE WHEN b.slug IS NULL THEN 'created' WHEN m.slug IS NULL THEN 'deleted'
                    WHEN m.shard <> b.shard THEN 'moved' ELSE 'renamed' END AS kind
        FROM rc_map m FULL JOIN ({BELIEVED}) b ON b.slug = m.slug
        WHERE m.slug IS NULL OR b.slug IS NULL OR m.shard <> b.shard
           OR m.display_name <> b.display_name
        """,
    ),
    ("diff", "ANALYZE rc_diff"),
    (
        "apply",
        "UPDATE incidents_placement p SET ends_at = %(as_of)s FROM rc_diff d"
        " WHERE p.id = d.placement_id AND d.kind IN ('moved', 'deleted')",
    ),
    (
        "apply",
        "INSERT INTO incidents_tailnet (slug, display_name, created_at)"
        " SELECT slug, COALESCE(display_name, slug), %(as_of)s FROM rc_diff WHERE kind = 'created'",
    ),
    (
        "apply",
        "INSERT INTO incidents_placement (tailnet_id, shard_id, starts_at)"
        " SELECT t.id, s.id, %(as_of)s FROM rc_diff d"
        " JOIN incidents_tailnet t ON t.slug = d.slug JOIN incidents_shard s ON s.slug = d.shard"
        " WHERE d.kind IN ('moved', 'created')",
    ),
    (
        "apply",
        "UPDATE incidents_tailnet t SET deleted_at = %(as_of)s FROM rc_diff d"
        " WHERE t.id = d.tailnet_id AND d.kind = 'deleted'",
    ),
    (
        "apply",
        "UPDATE incidents_tailnet t SET display_name = d.display_name FROM rc_diff d"
        " WHERE t.id = d.tailnet_id AND d.kind IN ('moved', 'renamed')"
        " AND d.display_name IS NOT NULL AND d.display_name <> d.old_name",
    ),
    (
        "events",
        """
        INSERT INTO fleet_fleetevent (id, type, at, tailnet, shard, payload, source, received_at)
        SELECT 'reconcile:' || %(at)s || ':' || slug || ':'
                   || CASE WHEN kind = 'deleted' THEN '~deleted' ELSE shard END,
               CASE kind WHEN 'created' THEN 'tailnet.created'
                         WHEN 'moved' THEN 'tailnet.migrated' ELSE 'tailnet.deleted' END,
               %(as_of)s, slug, COALESCE(shard, ''),
               CASE WHEN kind = 'created'
                    THEN jsonb_build_object('display_name', COALESCE(display_name, slug))
                    ELSE '{}' END,
               'reconcile', now()
        FROM rc_diff WHERE kind <> 'renamed'
        UNION ALL
        SELECT 'reconcile:' || %(at)s || ':' || slug || ':~name:' || left(md5(display_name), 16),
               'tailnet.renamed', %(as_of)s, slug, '',
               jsonb_build_object('display_name', display_name), 'reconcile', now()
        FROM rc_diff
        WHERE kind IN ('moved', 'renamed') AND display_name IS NOT NULL
          AND display_name <> old_name
        ON CONFLICT (id) DO NOTHING
        """,
    ),
    (
        "incidents",
        """
        UPDATE incidents_incident SET impacts_changed_at = now(), updated_at = now()
        WHERE id IN (
            SELECT si.incident_id FROM incidents_shardimpact si
            WHERE (si.ends_at IS NULL OR si.ends_at > %(as_of)s)
              AND si.shard_id IN (
                  SELECT old_shard_id FROM rc_diff WHERE kind IN ('moved', 'deleted')
                  UNION
                  SELECT s.id FROM rc_diff d JOIN incidents_shard s ON s.slug = d.shard
                  WHERE d.kind IN ('moved', 'created')))
        RETURNING id
        """,
    ),
]

Map = dict[str, tuple[str, str]]


def reconcile_plan(
    conn: psycopg.Connection, meta: dict[str, Any], args: argparse.Namespace, as_of: datetime
) -> tuple[Map, dict[str, int]]:
    """The believed map at ``as_of`` with tailnets moved, new and gone: (the map, counts)."""
    rng = random.Random(meta["seed"] + 1)
    region_of, by_region = shards_by_region(conn)
    rows = conn.execute(
        f"SELECT slug, shard, display_name FROM ({BELIEVED}) b ORDER BY slug", {"as_of": as_of}
    ).fetchall()
    moved = round(len(rows) * args.moved)
    gone = round(len(rows) * args.gone)
    new = round(len(rows) * args.new)
    picked = rng.sample(range(len(rows)), moved + gone)
    wanted: Map = {slug: (shard, name) for slug, shard, name in rows}
    for i in picked[:moved]:
        slug, shard, name = rows[i]
        wanted[slug] = (other_shard(rng, shard, region_of, by_region), name)
    for i in picked[moved:]:
        del wanted[rows[i][0]]
    shards = sorted(region_of)
    for n in range(1, new + 1):
        wanted[f"{NEW_SLUG_PREFIX}-{n:07d}"] = (rng.choice(shards), f"Fleet bench {n}")
    return wanted, {"believed": len(rows), "moved": moved, "gone": gone, "new": new}


def map_write(wanted: Map, path: Path, seed: int) -> None:
    slugs = list(wanted)
    random.Random(seed).shuffle(slugs)
    with open(path, "w") as f:
        for slug in slugs:
            shard, name = wanted[slug]
            f.write(json.dumps({"tailnet": slug, "shard": shard, "display_name": name}) + "\n")


def map_check(url: str, wanted: Map, side: str, *, as_of: datetime, gone: int) -> None:
    """The copy's current placements must be the map, and the gone tailnets deleted at
    ``as_of``: fail loudly, counting the tailnets that differ, if not."""
    with connect(url) as conn:
        rows = conn.execute(CURRENT_MAP).fetchall()
        deleted = conn.execute(
            "SELECT count(*) FROM incidents_tailnet WHERE deleted_at = %s", [as_of]
        ).fetchone()[0]
    got: dict[str, tuple[str, str] | None] = {
        slug: (shard, name) if alive else None for slug, shard, name, alive in rows
    }
    missing = sum(1 for slug in wanted if slug not in got)
    extra = sum(1 for slug in got if slug not in wanted)
    different = sum(1 for slug, value in got.items() if slug in wanted and value != wanted[slug])
    if missing or extra or different or deleted != gone:
        raise SystemExit(
            f"FAIL: after {side}, the current placements are not the map: {missing:,} tailnets"
            f" missing, {extra:,} extra, {different:,} on another shard, with another name or"
            f" marked deleted; {deleted:,} tailnets deleted at as_of instead of {gone:,}"
        )
    log(f"  {side}: current placements = the map ({len(got):,} tailnets, {deleted:,} deleted)")


def command_path() -> Path:
    return ROOT / "fleet" / "management" / "commands" / "fleet_reconcile.py"


def command_wait(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not command_path().exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{command_path()} did not appear within {timeout:.0f} s")
        log(f"  waiting for {command_path().relative_to(ROOT)} to appear …")
        time.sleep(120)


# Runs argv[2:] and writes its peak RSS (KiB, from wait4) to argv[1]. The command must
# be forked from a small process: Linux carries a child's pre-exec peak (the RSS of the
# process it was forked from) into its ru_maxrss, so a direct child of this script,
# which holds the whole map, would report at least this script's size.
RSS_WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass
class Finished:
    seconds: float
    returncode: int
    peak_rss_mb: float
    stdout: str
    stderr: str


def run_measured(argv: list[str], env: dict[str, str], work: Path) -> Finished:
    """Run a command to its end: its wall time, exit code, output and peak RSS."""
    out, err, rss = work / "stdout", work / "stderr", work / "rss"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        started = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - our command, fixed arguments
            [sys.executable, "-c", RSS_WRAPPER, str(rss), *argv],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            check=False,
        )
        seconds = time.perf_counter() - started
    return Finished(
        seconds=seconds,
        returncode=done.returncode,
        peak_rss_mb=int(rss.read_text()) / 1024,
        stdout=out.read_text(errors="replace"),
        stderr=err.read_text(errors="replace"),
    )


def bare_reconcile(url: str, path: Path, as_of: datetime) -> tuple[float, BareRun]:
    run = BareRun()
    params = {"as_of": as_of, "at": rfc3339(as_of)}
    started = time.perf_counter()
    with connect(url) as conn:
        run.run(conn, "begin", "BEGIN")
        for step, query in BARE_RECONCILE:
            if query is None:
                t0 = time.perf_counter()
                with (
                    conn.cursor() as cursor,
                    cursor.copy(
                        "COPY rc_lines (doc) FROM STDIN"
                        " WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
                    ) as copy,
                    open(path, "rb") as f,
                ):
                    while block := f.read(COPY_BLOCK):
                        copy.write(block)
                run.steps[step] += time.perf_counter() - t0
                continue
            cursor = run.run(conn, step, query, params if "%(" in query else None)
            if step == "incidents":
                run.marked = len(cursor.fetchall())
        run.run(conn, "commit", "COMMIT")
    return time.perf_counter() - started, run


def measure_reconcile(
    args: argparse.Namespace, meta: dict[str, Any], copies: Copies, work: Path
) -> tuple[float, float]:
    as_of = datetime.now(UTC).replace(microsecond=0)
    path = work / "map.ndjson"
    with connect(copies.url) as conn:
        wanted, counts = reconcile_plan(conn, meta, args, as_of)
    map_write(wanted, path, meta["seed"])
    log(
        f"fleet-reconcile: map at {rfc3339(as_of)}: {counts['believed']:,} tailnets believed,"
        f" {counts['moved']:,} moved, {counts['new']:,} new, {counts['gone']:,} gone:"
        f" {len(wanted):,} lines, {path.stat().st_size / 1e6:.1f} MB of NDJSON;"
        f" {args.rounds} round(s), each side on fresh copies, alternating who goes first"
    )
    command_wait(args.wait_command)
    manage = [sys.executable, str(ROOT / "manage.py"), "fleet_reconcile"]
    env = {**os.environ, **django_env(work)}
    env.pop("REDIS_URL", None)
    start_up = run_measured([*manage, "--help"], env, work)
    log(f"  Python + Django start-up (manage.py fleet_reconcile --help): {start_up.seconds:.2f} s")

    def ours(url: str) -> float:
        done = run_measured(
            [*manage, str(path), "--as-of", rfc3339(as_of)], {**env, "DATABASE_URL": url}, work
        )
        if done.returncode != 0:
            say(f"FAIL: manage.py fleet_reconcile exited with {done.returncode}")
            say(f"--- its stdout ---\n{done.stdout}--- its stderr ---\n{done.stderr}")
            raise SystemExit(1)
        peaks.append(done.peak_rss_mb)
        log(f"  ours: {done.seconds:.2f} s, peak RSS {done.peak_rss_mb:.1f} MB")
        log(f"    {done.stdout.strip()}")
        return done.seconds

    def bare(url: str) -> float:
        seconds, run = bare_reconcile(url, path, as_of)
        steps = ", ".join(f"{step} {s:.2f} s" for step, s in run.steps.items())
        log(f"  bare: {seconds:.2f} s ({steps}); incidents marked: {run.marked}")
        return seconds

    peaks: list[float] = []
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    for round_ in range(args.rounds):
        urls = {side: fresh_copy(copies, f"reconcile_{side}", meta, env) for side in times}
        order = ["ours", "bare"] if round_ % 2 == 0 else ["bare", "ours"]
        for side in order:
            checkpoint(urls[side])
            busy = wait_for_idle_cpu(timeout=args.idle_timeout)
            log(f"  round {round_ + 1}, {side}: CPU busy before {busy:.0%}, load {load()}")
            times[side].append((ours if side == "ours" else bare)(urls[side]))
            map_check(urls[side], wanted, side, as_of=as_of, gone=counts["gone"])
        copies.drop_all()

    ours_s, bare_s = statistics.median(times["ours"]), statistics.median(times["bare"])
    verdict = "met" if ours_s / bare_s <= TARGET else "MISSED"
    say(
        f"fleet-reconcile: {len(wanted):,} lines, median of {args.rounds}: ours {ours_s:.2f} s"
        f" (incl. {start_up.seconds:.2f} s start-up), bare SQL {bare_s:.2f} s;"
        f" target ≤ {TARGET}: {verdict}"
    )
    say(f"fleet-reconcile: peak RSS of manage.py fleet_reconcile: {max(peaks):.1f} MB")
    return ours_s, bare_s


# --- Main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 events, 2,000 tailnets")
    parser.add_argument("--migrations", type=int, help="events sent (default 100,000)")
    parser.add_argument("--tailnets", type=int, help="tailnets they move (default 20,000)")
    parser.add_argument("--batches", type=int, help="(default 10)")
    parser.add_argument("--duplicates", type=float, default=0.05, help="share of events sent")
    parser.add_argument("--http-events", type=int, help="through HTTP (default 20,000)")
    parser.add_argument("--http-batch", type=int, help="events per POST (default 5,000)")
    parser.add_argument("--no-http", dest="http", action="store_false")
    parser.add_argument("--moved", type=float, default=0.01, help="share of the map moved")
    parser.add_argument("--new", type=float, default=0.001, help="share of the map added")
    parser.add_argument("--gone", type=float, default=0.001, help="share of the map removed")
    parser.add_argument("--rounds", type=int, help="reconcile rounds per side (default 2)")
    parser.add_argument(
        "--idle-timeout", type=float, default=5, help="seconds to wait for a quiet CPU per run"
    )
    parser.add_argument("--skip-events", action="store_true")
    parser.add_argument("--skip-reconcile", action="store_true")
    parser.add_argument(
        "--wait-alone", type=float, default=300, help="seconds to wait for others to disconnect"
    )
    parser.add_argument(
        "--wait-command", type=float, default=3600, help="seconds to wait for fleet_reconcile"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.migrations = args.migrations or (10_000 if quick else 100_000)
    args.tailnets = args.tailnets or (2_000 if quick else 20_000)
    args.batches = args.batches or (5 if quick else 10)
    args.rounds = args.rounds or (1 if quick else 2)
    args.http_events = args.http_events if args.http_events is not None else args.tailnets
    args.http_batch = args.http_batch or (1_000 if quick else 5_000)
    args.http_events = min(args.http_events, args.tailnets)

    url = database_url()
    with connect(url) as conn:
        meta = meta_read(conn.cursor())
        name = conn.info.dbname
    if meta is None:
        log(f"No dataset in {name}: run `make bench-data` first.")
        return 2
    log(
        f"dataset {name}: {meta['tailnets']:,} tailnets, {meta['placements']:,} placements on"
        f" {meta['shards']} shards to {meta['now'][:10]}; load average {load()}"
        f" ({os.cpu_count()} CPUs)"
    )
    copies = Copies(url, wait_alone=args.wait_alone)
    copies.drop_all()
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    results = []
    started = time.perf_counter()
    try:
        if not args.skip_events:
            ours_s, bare_s = measure_events(args, meta, copies, work)
            results.append(("fleet-events", ours_s, bare_s))
            copies.drop_all()
        if not args.skip_reconcile:
            ours_s, bare_s = measure_reconcile(args, meta, copies, work)
            results.append(("fleet-reconcile", ours_s, bare_s))
    finally:
        django_close()
        copies.drop_all()
        shutil.rmtree(work, ignore_errors=True)
    log(f"done in {time.perf_counter() - started:.0f} s")
    for title, ours_s, bare_s in results:
        say(f"{title}: ours={ours_s:.2f}s baseline={bare_s:.2f}s ratio={ours_s / bare_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
