"""The public page under load: the product's ``/`` against a bare WSGI app and nginx.

    make bench-page                          # 40 components, 500 incidents, wrk 10 s x 50
    .venv/bin/python bench/page.py --smoke   # tiny, for CI

Into its own PostgreSQL database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/bench_page; created if missing, migrated, and its
fleet tables emptied and refilled on every run, so it refuses a database that holds
bench/data.py's dataset). PostgreSQL because that is what production runs; the page
itself never touches the database once its snapshot is built.

1. A realistic page: ``--days`` of history, ``--components`` public components
   (coordination per region with its shards, DERP relays per city, the rest),
   ``--incidents`` incidents and maintenance (95 % published) with their Markdown
   timelines, operator component statuses, shard impact windows and affected tailnets
   (``tailnet_impacts_recompute``); two incidents open, one maintenance in progress,
   one upcoming.
2. render: the cold snapshot, ``snapshot_rebuild()`` into an empty directory (every
   public page: ``/``, history, JSON, feeds, badges, a page per incident of the last
   90 days), ``--rebuilds`` times; and ``/`` alone.
3. ``manage.py export_static``'s function into a directory, served by nginx.
4. Three servers of the same bytes of ``/``, loaded alternately by wrk from 127.0.0.1
   (``--duration`` s, ``--connections``, ``--runs`` each after a 1 s warm-up, waiting
   for an idle CPU before each run; medians):
   - nginx (Debian's) serving the export (``gzip_static``): the physical limit;
   - bare: a WSGI callable returning the snapshot's bytes of ``/`` with the headers the
     product sends, under the same gunicorn settings: the limit of a Python app server;
   - ours: ``statuspage.wsgi:application`` under gunicorn with production settings
     (DEBUG off, HTTPS redirect on, behind a TLS proxy: every request carries
     ``X-Forwarded-Proto: https``), serving the snapshot just built.
   Twice over: as a browser asks (``Accept-Encoding: gzip, ...``: the gzipped copy),
   then with no Accept-Encoding (the 2 MB page as is). Besides requests/s and
   latency, each server's own CPU per request (all its processes, from /proc): on a
   shared machine it moves far less than the rates.

Targets: ours >= 0.8 x bare in requests/s, p99 < 30 ms. The last two lines are
``page-identity: ...`` and ``page: ours=<req/s> baseline=<bare req/s> ratio=<ours /
bare>``, the latter as browsers fetch the page (gzip).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.httpload import (
    Gunicorn,
    Nginx,
    WrkResult,
    ensure_tools,
    wait_for_idle_cpu,
    wrk,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_page"
PUBLIC_HOST = "status.example.com"
# Behind the TLS-terminating proxy production runs behind: Django sees https.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
# What gunicorn adds to every response itself; everything else is the app's.
SERVER_HEADERS = {"date", "server", "connection", "transfer-encoding"}
# What the three servers are asked, in the order measured: as a browser (every one
# accepts gzip), then as a client that sends no Accept-Encoding.
ENCODINGS = {"gzip": {"Accept-Encoding": "gzip, deflate, br, zstd"}, "identity": {}}
LABELS = {
    "nginx": "nginx, the static export",
    "bare": "bare WSGI app, gunicorn",
    "ours": "ours: statuspage.wsgi, gunicorn",
}
TARGET_RATIO = 0.8
TARGET_P99_MS = 30.0

COORDINATION_REGIONS = [
    ("us-east", "US East"),
    ("us-west", "US West"),
    ("eu-central", "EU Central"),
    ("ap-southeast", "AP Southeast"),
    ("us-central", "US Central"),
    ("eu-west", "EU West"),
    ("ap-northeast", "AP Northeast"),
    ("sa-east", "SA East"),
    ("ca-central", "CA Central"),
    ("eu-north", "EU North"),
    ("ap-south", "AP South"),
    ("af-south", "AF South"),
]
DERP_CITIES = [
    "New York", "San Francisco", "Chicago", "Dallas", "Seattle", "Miami", "Toronto",
    "São Paulo", "London", "Frankfurt", "Paris", "Amsterdam", "Madrid", "Warsaw",
    "Singapore", "Tokyo", "Hong Kong", "Sydney", "Bangalore", "Johannesburg",
]  # fmt: skip
OTHER_COMPONENTS = [
    ("admin-console", "Admin console", "admin_console"),
    ("login", "Login", "login"),
    ("api", "API", "api"),
    ("webhooks", "Webhooks", "other"),
    ("log-streaming", "Log streaming", "other"),
    ("magicdns", "MagicDNS", "other"),
    ("key-expiry", "Key expiry notices", "other"),
    ("billing", "Billing", "other"),
]
LEVEL_STATUS = {
    "outage": "major_outage",
    "partial": "partial_outage",
    "degraded": "degraded_performance",
}


def log(message: str = "") -> None:
    print(message, flush=True)


# --- The bare WSGI app (gunicorn imports it: ``bench.page:bare_app()``) -----------------


def bare_app() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The limit of a Python app server: the snapshot's bytes of ``/`` with the same
    headers as the product (gzipped when the request mentions gzip, as is), no
    routing, no lookup. Read once per worker from BENCH_PAGE_BARE, a JSON file:
    {"identity"|"gzip": {"body": <file>, "headers": [[name, value], ...]}}."""
    spec = json.loads(Path(os.environ["BENCH_PAGE_BARE"]).read_text())
    answers = {
        encoding: (
            [(str(name), str(value)) for name, value in variant["headers"]],
            [Path(variant["body"]).read_bytes()],
        )
        for encoding, variant in spec.items()
    }
    identity = answers["identity"]
    packed = answers.get("gzip", identity)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers, body = packed if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "") else identity
        start_response("200 OK", headers)
        return body

    return application


# --- The dataset -------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    components: int
    incidents: int
    days: int
    tailnets: int
    shards_per_region: int


def database_prepare(url: str) -> None:
    """Create (if missing) and migrate the benchmark database, then empty its fleet
    tables. Refuses bench/data.py's database: this run would wipe that dataset."""
    from bench import setup_django
    from bench.data import database_ensure, fleet_tables

    database_ensure(url, recreate=False)
    setup_django(url)
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_meta') IS NOT NULL")
        if cursor.fetchone()[0]:
            raise SystemExit(
                f"{connection.settings_dict['NAME']} holds bench/data.py's dataset "
                "(bench_meta); point BENCH_DATABASE_URL at a database of its own."
            )
    # The filesystem broker says "No hostname was supplied" for every task queued.
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(fleet_tables())} RESTART IDENTITY CASCADE")


def _split(total: int) -> tuple[int, int, int]:
    """Coordination, DERP and other components for ``total`` (12/20/8 of 40)."""
    other = min(len(OTHER_COMPONENTS), max(1, round(total * 0.2)))
    coordination = min(len(COORDINATION_REGIONS), max(1, round(total * 0.3)))
    derp = min(len(DERP_CITIES), max(1, total - other - coordination))
    return coordination, derp, other


def dataset_build(size: Size, seed: int) -> dict[str, int]:
    """The fleet and its history through the ORM (bulk, so no signals and no rebuilds
    queued), as operators and detection would have left them."""
    from django.db import connection, transaction
    from django.utils import timezone

    from incidents.models import (
        Component,
        ComponentGroup,
        Incident,
        IncidentComponent,
        IncidentUpdate,
        Placement,
        Shard,
        ShardImpact,
        Tailnet,
    )
    from incidents.services import tailnet_impacts_recompute

    rng = random.Random(seed)
    now = timezone.now().replace(microsecond=0)
    window_start = now - timedelta(days=size.days)
    long_ago = now - timedelta(days=3 * 365)
    n_coord, n_derp, n_other = _split(size.components)

    with transaction.atomic():
        # bulk_create throughout: no post_save signals, so no snapshot rebuilds queued.
        group_rows = [
            (
                "coordination",
                "Coordination service",
                "Every tailnet lives on one coordination shard; when it has trouble,"
                " existing connections keep working.",
            ),
            ("derp", "DERP relays", "Encrypted relays for traffic that can't go direct."),
            ("other", "Console, login and API", ""),
        ]
        created = ComponentGroup.objects.bulk_create(
            ComponentGroup(name=name, position=n, description=text)
            for n, (_, name, text) in enumerate(group_rows)
        )
        groups = {key: group for (key, _, _), group in zip(group_rows, created, strict=True)}
        components: list[Any] = []
        for n, (slug, label) in enumerate(COORDINATION_REGIONS[:n_coord]):
            components.append(
                Component(
                    slug=f"coordination-{slug}",
                    name=f"Coordination service ({label})",
                    group=groups["coordination"],
                    kind="coordination",
                    region=slug,
                    position=n,
                    created_at=long_ago,
                )
            )
        for n, city in enumerate(DERP_CITIES[:n_derp]):
            components.append(
                Component(
                    slug="derp-" + city.lower().replace(" ", "-").replace("ã", "a"),
                    name=f"DERP relays ({city})",
                    group=groups["derp"],
                    kind="derp",
                    position=n,
                    created_at=long_ago,
                )
            )
        for n, (slug, name, kind) in enumerate(OTHER_COMPONENTS[:n_other]):
            components.append(
                Component(
                    slug=slug,
                    name=name,
                    group=groups["other"],
                    kind=kind,
                    position=n,
                    created_at=long_ago,
                )
            )
        components = Component.objects.bulk_create(components)
        coordination = [c for c in components if c.kind == "coordination"]
        derp = [c for c in components if c.kind == "derp"]
        other = [c for c in components if c.kind not in {"coordination", "derp"}]
        shards = Shard.objects.bulk_create(
            Shard(
                slug=f"{c.region}-{k}",
                region=c.region,
                public_name=f"{c.name.split('(')[1].rstrip(')')} {k}",
                component=c,
                created_at=long_ago,
            )
            for c in coordination
            for k in range(1, size.shards_per_region + 1)
        )
        by_component: dict[int, list[Any]] = {}
        for shard in shards:
            by_component.setdefault(shard.component_id, []).append(shard)

        tailnets = Tailnet.objects.bulk_create(
            (
                Tailnet(
                    slug=f"tailnet-{n:06d}",
                    display_name=f"example-{n:06d}.com",
                    created_at=(
                        window_start + (now - window_start) * rng.random()
                        if rng.random() < 0.1
                        else long_ago + (window_start - long_ago) * rng.random()
                    ),
                )
                for n in range(size.tailnets)
            ),
            batch_size=5000,
        )
        Placement.objects.bulk_create(
            (
                Placement(tailnet=t, shard=rng.choice(shards), starts_at=t.created_at)
                for t in tailnets
            ),
            batch_size=5000,
        )

        plans = [_plan(rng, n, size, now, window_start) for n in range(size.incidents)]
        incidents = Incident.objects.bulk_create(_incident(plan, rng) for plan in plans)
        impacts: list[Any] = []
        links: list[Any] = []
        updates: list[Any] = []
        for incident, plan in zip(incidents, plans, strict=True):
            named, windows = _affected(plan, (coordination, derp, other), by_component, rng)
            for component, status in named:
                links.append(
                    IncidentComponent(incident=incident, component=component, status=status)
                )
            for shard, level, starts_at, ends_at in windows:
                impacts.append(
                    ShardImpact(
                        incident=incident,
                        shard=shard,
                        level=level,
                        starts_at=starts_at,
                        ends_at=ends_at,
                    )
                )
            updates += _timeline(incident, named, rng)
        ShardImpact.objects.bulk_create(impacts, batch_size=5000)
        IncidentComponent.objects.bulk_create(links, batch_size=5000)
        IncidentUpdate.objects.bulk_create(updates, batch_size=5000)

    with_windows = sorted({impact.incident_id for impact in impacts})
    affected = sum(tailnet_impacts_recompute(incident_id=pk, as_of=now) for pk in with_windows)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    return {
        "components": len(components),
        "shards": len(shards),
        "tailnets": len(tailnets),
        "incidents": len(incidents),
        "published": sum(1 for i in incidents if i.published),
        "updates": len(updates),
        "shard impact windows": len(impacts),
        "affected-tailnet rows": affected,
    }


@dataclass(frozen=True)
class Plan:
    kind: str  # coordination, derp, other, maintenance, maintenance-now, upcoming
    start: datetime
    end: datetime | None
    level: str
    published: bool


def _plan(rng: random.Random, n: int, size: Size, now: datetime, window_start: datetime) -> Plan:
    """Incident ``n``: the last four are the live ones (two open incidents, one
    maintenance in progress, one upcoming); the rest spread over the window."""
    live = {
        0: ("coordination", now - timedelta(minutes=47), None),
        1: ("derp", now - timedelta(hours=3, minutes=5), None),
        2: ("maintenance-now", now - timedelta(minutes=20), None),
        3: ("upcoming", now + timedelta(days=3, hours=2), None),
    }
    if size.incidents >= 8 and n in live:
        kind, start, end = live[n]
        return Plan(kind, start, end, rng.choice(["outage", "partial", "degraded"]), True)
    kind = rng.choices(["coordination", "derp", "other", "maintenance"], [55, 25, 10, 10])[0]
    minutes = min(600.0, max(3.0, rng.lognormvariate(3.3, 0.9)))
    latest = now - timedelta(minutes=minutes + 30)
    start = window_start + (latest - window_start) * rng.random()
    start = start.replace(second=rng.randrange(60), microsecond=0)
    level = rng.choices(["outage", "partial", "degraded"], [30, 40, 30])[0]
    return Plan(kind, start, start + timedelta(minutes=minutes), level, rng.random() < 0.95)


def _incident(plan: Plan, rng: random.Random) -> Any:
    from incidents.models import Incident

    maintenance = plan.kind in {"maintenance", "maintenance-now", "upcoming"}
    if plan.kind == "upcoming":
        status = "scheduled"
    elif plan.kind == "maintenance-now":
        status = "in_progress"
    elif maintenance:
        status = "completed"
    elif plan.end is None:
        status = rng.choice(["investigating", "identified", "monitoring"])
    else:
        status = "postmortem" if rng.random() < 0.05 else "resolved"
    where = {
        "coordination": "logins and ACL changes failing for some tailnets",
        "derp": "relayed connections dropping",
        "other": "errors in the admin console",
    }.get(plan.kind, "planned upgrade of the coordination service")
    level_words = {"outage": "Outage", "partial": "Partial outage", "degraded": "Slowness"}
    title = (
        f"Scheduled maintenance: {where}" if maintenance else f"{level_words[plan.level]}: {where}"
    )
    planned = timedelta(hours=2)
    return Incident(
        title=title,
        kind="maintenance" if maintenance else "incident",
        status=status,
        impact="maintenance"
        if maintenance
        else {"outage": "major", "partial": "minor", "degraded": "minor"}[plan.level],
        source="manual" if maintenance or plan.kind != "coordination" else "probe",
        published=plan.published,
        published_at=plan.start + timedelta(minutes=3) if plan.published else None,
        started_at=plan.start,
        detected_at=None if maintenance else plan.start + timedelta(minutes=rng.randint(1, 6)),
        resolved_at=plan.end,
        scheduled_for=plan.start if maintenance else None,
        scheduled_until=(plan.start + planned) if maintenance else None,
        postmortem=POSTMORTEM if status == "postmortem" else "",
        postmortem_published_at=plan.end if status == "postmortem" else None,
        created_at=plan.start,
        updated_at=plan.end or plan.start,
        impacts_changed_at=plan.end or plan.start,
    )


POSTMORTEM = """\
## What happened

A configuration push raised the message bus's **fan-out** for one shard past what its
hosts could serve. Existing connections kept working; logins and ACL changes timed out.

## What we are changing

1. Fan-out limits are now checked before a push.
2. Detection pages us after 90 seconds instead of 5 minutes.
"""


def _affected(
    plan: Plan,
    components: tuple[list[Any], list[Any], list[Any]],
    by_component: dict[int, list[Any]],
    rng: random.Random,
) -> tuple[list[tuple[Any, str]], list[tuple[Any, str, datetime, datetime | None]]]:
    """(components an operator named with their status, shard impact windows)."""
    coordination, derp, other = components
    if plan.kind in {"maintenance", "maintenance-now", "upcoming"}:
        component = rng.choice(coordination)
        windows = []
        if plan.kind == "maintenance" and rng.random() < 0.3:  # it did cause an outage
            shard = rng.choice(by_component[component.pk])
            windows.append((shard, "outage", plan.start, plan.end))
        return [(component, "under_maintenance")], windows
    status = LEVEL_STATUS[plan.level]
    if plan.kind == "derp":
        return [(c, status) for c in rng.sample(derp, min(len(derp), rng.randint(1, 2)))], []
    if plan.kind == "other":
        return [(rng.choice(other), status)], []
    component = rng.choice(coordination)
    shards = rng.sample(
        by_component[component.pk], rng.randint(1, min(3, len(by_component[component.pk])))
    )
    windows = []
    for shard in shards:
        if plan.end is not None and rng.random() < 0.25:  # got worse half-way
            middle = plan.start + (plan.end - plan.start) / 2
            windows.append((shard, "degraded", plan.start, middle))
            windows.append(
                (shard, plan.level if plan.level != "degraded" else "partial", middle, plan.end)
            )
        else:
            windows.append((shard, plan.level, plan.start, plan.end))
    # Detection's incidents carry only shard windows; operators name the component.
    named = [(component, status)] if rng.random() < 0.6 else []
    return named, windows


def _timeline(incident: Any, named: list[tuple[Any, str]], rng: random.Random) -> list[Any]:
    """2-5 updates over the incident's life, in Markdown, as operators write them."""
    from incidents.models import IncidentUpdate

    start = incident.started_at
    end = incident.resolved_at
    if incident.kind == "maintenance":
        steps = ["scheduled"] + (["in_progress"] if incident.status != "scheduled" else [])
        if end is not None:
            steps += ["verifying", "completed"][: rng.randint(1, 2)]
            steps[-1] = "completed"
    else:
        steps = ["investigating", *rng.sample(["identified", "monitoring"], rng.randint(0, 2))]
        steps = sorted(steps, key=["investigating", "identified", "monitoring"].index)
        if end is not None:
            steps.append("resolved")
        elif incident.status not in steps:
            steps.append(incident.status)
    span = (end or start + timedelta(minutes=40)) - start
    result = []
    for k, status in enumerate(steps):
        at = (
            start + span * (k / max(1, len(steps) - 1)) if end is not None else start + span * k / 4
        )
        if status == "scheduled":
            at = start - timedelta(days=2)
        changes = []
        if k == 0 or status in {"resolved", "completed"}:
            new = "operational" if status in {"resolved", "completed"} else None
            changes = [
                {
                    "code": component.slug,
                    "name": component.name,
                    "old_status": "operational" if new is None else component_status,
                    "new_status": new or component_status,
                }
                for component, component_status in named
            ]
        result.append(
            IncidentUpdate(
                incident=incident,
                status=status,
                body=UPDATE_BODIES[status].format(n=incident.pk),
                affected_components=changes,
                created_at=at,
                display_at=at,
            )
        )
    return result


UPDATE_BODIES = {
    "scheduled": "We will upgrade the coordination service. **Existing connections keep "
    "working**; logging in and changing ACLs may fail for a few minutes.",
    "in_progress": "The maintenance is in progress.",
    "verifying": "The upgrade is done; we are verifying it.",
    "completed": "The maintenance is complete.",
    "investigating": "We are investigating reports of failed logins and slow ACL "
    "changes. Existing connections are not affected.\n\n- Admin console: slow\n"
    "- `tailscale up`: may time out",
    "identified": "We found the cause: a message bus node is overloaded. We are moving "
    "tailnets off it (see [our docs](https://example.com/docs/coordination)).",
    "monitoring": "A fix is in place and we are watching the error rates.",
    "resolved": "This incident (#{n}) is resolved. Everything is working normally.",
}


# --- Measurements ------------------------------------------------------------------------


def time_cold_rebuilds(root: Path, count: int) -> tuple[list[float], list[float], Path, int]:
    """``snapshot_rebuild()`` into an empty directory, ``count`` times; ``/`` alone
    rendered as many times. Returns (rebuild seconds, ``/`` seconds, the last
    snapshot directory, pages in it)."""
    from django.core.management import call_command
    from django.test.utils import override_settings

    from public import snapshot

    # Production's static storage needs collectstatic's manifest to render a page.
    static = override_settings(STATIC_ROOT=root / "static")
    static.enable()
    call_command("collectstatic", interactive=False, verbosity=0)
    rebuilds: list[float] = []
    index: list[float] = []
    directory = root
    pages = 0
    for n in range(count):
        directory = root / f"snapshot-{n}"
        with override_settings(SNAPSHOT_DIR=directory):
            started = time.perf_counter()
            result = snapshot.snapshot_rebuild()
            rebuilds.append(time.perf_counter() - started)
            pages = len(result.changed) + len(result.unchanged)
            started = time.perf_counter()
            list(snapshot.capture(["/"]))
            index.append(time.perf_counter() - started)
            if result.skipped:
                raise SystemExit(f"pages missing from the snapshot: {result.skipped}")
    static.disable()
    return rebuilds, index, directory, pages


def snapshot_bodies(directory: Path, path: str) -> dict[str, bytes]:
    """The snapshot's bytes of ``path``: {"identity": ..., "gzip": ...}."""
    from public.snapshot import CURRENT, MANIFEST

    generation = directory / os.readlink(directory / CURRENT)
    meta = json.loads((generation / MANIFEST).read_text())["entries"][path]
    bodies = {"identity": (generation / meta["file"]).read_bytes()}
    if "gzip" in meta:
        bodies["gzip"] = (generation / meta["gzip"]["file"]).read_bytes()
    return bodies


@dataclass(frozen=True)
class Run:
    result: WrkResult
    busy_before: float  # the machine's CPU busy share just before the run
    cpu_us: float  # the server's CPU per request (all its processes), microseconds


def measure(
    servers: dict[str, Gunicorn | Nginx], args: argparse.Namespace, headers: dict[str, str]
) -> dict[str, list[Run]]:
    """Each server ``args.runs`` times, alternating (the order rotates every round),
    after waiting for an idle CPU."""
    results: dict[str, list[Run]] = {name: [] for name in servers}
    names = list(servers)
    for round_ in range(args.runs):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            server = servers[name]
            busy = wait_for_idle_cpu(below=args.idle_below, timeout=args.idle_timeout)
            cpu_before = server.cpu_seconds()
            result = wrk(
                server.url("/"),
                duration=args.duration,
                connections=args.connections,
                threads=args.threads,
                headers=headers,
            )
            cpu_us = (server.cpu_seconds() - cpu_before) / max(1, result.requests) * 1e6
            results[name].append(Run(result, busy, cpu_us))
            log(
                f"  run {round_ + 1} {name:<6} (CPU busy before {busy:4.0%}): {result.line()}"
                f"  server CPU {cpu_us:5.0f} us/req"
            )
    return results


def med(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--components", type=int, default=40)
    parser.add_argument("--incidents", type=int, default=500)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--tailnets", type=int, default=20_000)
    parser.add_argument("--shards-per-region", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--rebuilds", type=int, default=2, help="cold snapshot renders")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--runs", type=int, default=2, help="wrk runs per server (median)")
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn sync workers (both WSGI sides)"
    )
    parser.add_argument("--nginx-workers", type=int, default=2)
    parser.add_argument(
        "--encodings",
        type=lambda value: [e for e in value.split(",") if e],
        default=list(ENCODINGS),
        help="gzip,identity (the default) or one of them",
    )
    parser.add_argument("--idle-below", type=float, default=0.15)
    parser.add_argument("--idle-timeout", type=float, default=60.0)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny: 6 components, 12 incidents, 200 tailnets, wrk 1 s x 2 connections",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.components, args.incidents, args.tailnets = 6, 12, 200
        args.duration, args.connections, args.threads = 1.0, 2, 1
        args.rebuilds, args.idle_timeout = 2, 0.0
    if not args.encodings or set(args.encodings) - set(ENCODINGS):
        parser.error(f"--encodings: one or more of {', '.join(ENCODINGS)}")
    if args.components < 3 or args.incidents < 1 or args.days < 7:
        parser.error("need at least 3 components, 1 incident and 7 days")

    ensure_tools(wrk=True, nginx=True)
    url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    work = Path(tempfile.mkdtemp(prefix="bench-page-"))
    # Production settings for this process and the product's gunicorn alike.
    production = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": hashlib.sha256(os.urandom(32)).hexdigest(),
        "DJANGO_ALLOWED_HOSTS": f"{PUBLIC_HOST},127.0.0.1",
        "STATUSPAGE_PUBLIC_URL": f"https://{PUBLIC_HOST}",
        # Behind a TLS proxy: only then is its X-Forwarded-Proto believed.
        "TRUSTED_PROXY_HOPS": "1",
        "STATUSPAGE_VAR_DIR": str(work / "var"),
        "DATABASE_URL": url,
        "LOG_LEVEL": "WARNING",
        # Recomputing affected tailnets queues snapshot rebuilds: into a queue in the
        # temporary directory, never a shared broker. The page needs no Redis.
        "CELERY_BROKER_URL": "filesystem://",
    }
    os.environ.pop("REDIS_URL", None)
    os.environ.update(production)
    servers: list[Gunicorn | Nginx] = []
    try:
        log(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
        started = time.perf_counter()
        database_prepare(url)
        size = Size(
            args.components, args.incidents, args.days, args.tailnets, args.shards_per_region
        )
        counts = dataset_build(size, args.seed)
        log(
            f"dataset in {time.perf_counter() - started:.1f} s: "
            + ", ".join(f"{value:,} {name}" for name, value in counts.items())
        )

        log(f"render: cold snapshot_rebuild() into an empty directory, {args.rebuilds}x")
        rebuilds, index_renders, snapshot_dir, pages = time_cold_rebuilds(work, args.rebuilds)
        for seconds, alone in zip(rebuilds, index_renders, strict=True):
            log(f"  {pages} pages in {seconds:.2f} s; / alone {alone * 1000:.0f} ms")
        bodies = snapshot_bodies(snapshot_dir, "/")
        if "gzip" not in bodies:
            raise SystemExit("the snapshot has no gzipped copy of /")

        from public.snapshot import snapshot_export

        export = work / "export"
        started = time.perf_counter()
        written, _ = snapshot_export(target=export)
        log(f"export_static: {len(written)} files in {time.perf_counter() - started:.2f} s")
        exported = (export / "index.html").read_bytes()
        if exported != bodies["identity"]:
            # Rendered a few seconds later: "updated … ago" and durations differ.
            log(
                f"  the export's / ({len(exported):,} bytes) was rendered after the "
                f"snapshot's ({len(bodies['identity']):,} bytes); nginx serves the snapshot's"
            )
        # The same bytes as the others, gzipped too (nginx's gzip_static sends the .gz).
        (export / "index.html").write_bytes(bodies["identity"])
        (export / "index.html.gz").write_bytes(bodies["gzip"])

        ours = Gunicorn(
            "statuspage.wsgi:application",
            workers=args.workers,
            env={**production, "SNAPSHOT_DIR": str(snapshot_dir)},
        )
        servers.append(ours)
        ours.start(ready_headers=PROXY_HEADERS)
        spec: dict[str, dict[str, Any]] = {}
        for encoding, asked in ENCODINGS.items():
            status, headers, served = ours.get("/", {**PROXY_HEADERS, **asked})
            if status != 200 or served != bodies[encoding]:
                raise SystemExit(f"ours answered {status} with other bytes than the snapshot's")
            kept = [(k, v) for k, v in headers.items() if k.lower() not in SERVER_HEADERS]
            (work / f"index.{encoding}").write_bytes(served)
            spec[encoding] = {"body": str(work / f"index.{encoding}"), "headers": kept}
        (work / "bare.json").write_text(json.dumps(spec))
        bare = Gunicorn(
            "bench.page:bare_app()",
            workers=args.workers,
            env={"BENCH_PAGE_BARE": str(work / "bare.json")},
        )
        servers.append(bare)
        bare.start()
        # nginx adds the same caching and security headers (its own validators).
        own = {"content-type", "content-length", "content-encoding", "etag", "last-modified"}
        nginx = Nginx(
            export,
            workers=args.nginx_workers,
            headers={k: v for k, v in spec["identity"]["headers"] if k.lower() not in own},
            extra="charset utf-8;\ngzip_static on;",
        )
        servers.append(nginx)
        nginx.start()
        for name, server in (("bare", bare), ("nginx", nginx)):
            for encoding, asked in ENCODINGS.items():
                status, _, served = server.get("/", {**PROXY_HEADERS, **asked})
                if status != 200 or served != bodies[encoding]:
                    raise SystemExit(f"{name} answered {status} with other bytes than ours")
        log(
            f"/ is {len(bodies['identity']):,} bytes, {len(bodies['gzip']):,} gzipped; headers"
            " of ours (bare sends the same): " + ", ".join(k for k, _ in spec["gzip"]["headers"])
        )

        sides: dict[str, Gunicorn | Nginx] = {"nginx": nginx, "bare": bare, "ours": ours}
        log(
            f"wrk {args.duration:.0f} s x {args.connections} connections "
            f"({args.threads} threads), {args.runs} runs each after a 1 s warm-up, "
            f"alternating; gunicorn {args.workers} sync workers, nginx "
            f"{args.nginx_workers} workers"
        )
        results: dict[str, dict[str, list[Run]]] = {}
        for encoding in args.encodings:
            headers = {**PROXY_HEADERS, **ENCODINGS[encoding]}
            log(f"{encoding}: {', '.join(f'{k}: {v}' for k, v in headers.items())}")
            for server in sides.values():
                wrk(
                    server.url("/"),
                    duration=1,
                    connections=args.connections,
                    threads=args.threads,
                    headers=headers,
                )
            results[encoding] = measure(sides, args, headers)
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    log()
    log(
        f"render (cold snapshot, {pages} pages): median {med(rebuilds):.2f} s "
        f"(runs: {', '.join(f'{s:.2f}' for s in rebuilds)}); / alone median "
        f"{med(index_renders) * 1000:.0f} ms"
    )
    lines = []
    failed = False
    for encoding in args.encodings:
        rate, failures = report(encoding, len(bodies[encoding]), results[encoding])
        failed = failed or any(failures.values())
        ratio = rate["ours"] / rate["bare"]
        name = "page" if encoding == "gzip" else f"page-{encoding}"
        lines.append(
            f"{name}: ours={rate['ours']:.0f} baseline={rate['bare']:.0f} ratio={ratio:.2f}"
        )
    log()
    # The page as browsers fetch it (gzip) last.
    for line in sorted(lines, key=lambda line: line.startswith("page:")):
        log(line)
    return 1 if failed else 0


def report(
    encoding: str, size: int, results: dict[str, list[Run]]
) -> tuple[dict[str, float], dict[str, int]]:
    rate = {name: med(r.result.requests_per_second for r in runs) for name, runs in results.items()}
    p50 = {name: med(r.result.p50_ms for r in runs) for name, runs in results.items()}
    p99 = {name: med(r.result.p99_ms for r in runs) for name, runs in results.items()}
    cpu = {name: med(r.cpu_us for r in runs) for name, runs in results.items()}
    failures = {
        name: sum(r.result.errors + r.result.bad_status for r in runs)
        for name, runs in results.items()
    }
    log()
    log(f"/ {encoding} ({size:,} bytes), medians of {len(results['ours'])} runs:")
    log(
        f"{'server':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}"
        f"{'errors':>8}  vs bare  vs nginx"
    )
    for name in ("nginx", "bare", "ours"):
        log(
            f"{LABELS[name]:<34}{rate[name]:>10,.0f}{p50[name]:>9.2f}{p99[name]:>9.2f}"
            f"{cpu[name]:>12.0f}{failures[name]:>8}  {rate[name] / rate['bare']:>7.2f}"
            f"  {rate[name] / rate['nginx']:>7.3f}"
        )
    ratio = rate["ours"] / rate["bare"]
    log(
        f"target ours >= {TARGET_RATIO} x bare: {'met' if ratio >= TARGET_RATIO else 'MISSED'}"
        f" ({ratio:.2f}); p99 < {TARGET_P99_MS:.0f} ms: "
        f"{'met' if p99['ours'] < TARGET_P99_MS else 'MISSED'} ({p99['ours']:.2f} ms);"
        f" ours / nginx {rate['ours'] / rate['nginx']:.3f}; server CPU per request"
        f" ours / bare {cpu['ours'] / cpu['bare']:.2f}"
    )
    if any(failures.values()):
        log(f"errors or non-2xx answers during the runs: {failures}")
    return rate, failures


if __name__ == "__main__":
    sys.exit(main())
