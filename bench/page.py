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

5. The shipped nginx site, deploy/nginx/statuspage.conf rendered as deploy/README.md's
   envsubst does (as tests/deploy does: a self-signed certificate in the work
   directory, free loopback ports): ``${SNAPSHOT_DIR}`` the snapshot ours serves,
   ``${UPSTREAM}`` ours' gunicorn. Its plain-HTTP server only redirects to https, so
   it is loaded over TLS, and so is its baseline: nginx serving the export as in 4.,
   with the site's TLS settings, in the same http context. wrk as in 4. with
   ``Host: status.example.com`` and ``Accept-Encoding: gzip`` (the .gz file), the two
   sides alternately, while a thread rebuilds the snapshot (``snapshot_rebuild()``,
   as the worker does) every ``--rebuild-every`` seconds, a new generation swapped in
   each time. Non-2xx answers (3xx included) and fallbacks to gunicorn are counted
   from each nginx's access log, errors by wrk. Then ours' gunicorn is stopped (the
   site's app paths answer 502) and the same again.

Targets: ours >= 0.8 x bare in requests/s, p99 < 30 ms; the nginx site >= 0.9 x its
baseline, p99 < 10 ms, no answer but 2xx, with or without gunicorn. The last lines
are ``page-nginx: ours=<req/s> baseline=<req/s> ratio=<r>``, ``page-nginx-p99:
ours=<ms>ms baseline=<ms>ms ratio=<r> non2xx=<n> baseline_non2xx=<n> errors=<n>
swaps=<n>``, the same two for ``page-nginx-no-gunicorn``, then ``page-identity: ...``
and ``page: ours=<req/s> baseline=<bare req/s> ratio=<ours / bare>``, the latter as
browsers fetch the page (gzip). Exit 1 if any run saw an error or a non-2xx answer
(3xx or more for 4.), or a rebuild failed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import logging
import os
import random
import re
import shutil
import ssl
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.httpload import (
    LOOPBACK,
    WRK_REPORT,
    Gunicorn,
    Nginx,
    WrkResult,
    _Server,
    ensure_tools,
    free_port,
    nginx_binary,
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

# The shipped site (deploy/nginx/statuspage.conf) against nginx serving the export,
# both over TLS (the site's plain-HTTP server only redirects), while the snapshot is
# rebuilt: asked as a browser asks, for the public host.
SITE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "statuspage.conf"
SITE_HEADERS = {"Host": PUBLIC_HOST, "Accept-Encoding": "gzip"}
SITE_LABELS = {
    "baseline": "nginx, the static export (https)",
    "ours": "nginx, deploy/nginx/statuspage.conf",
}
TARGET_SITE_RATIO = 0.9
TARGET_SITE_P99_MS = 10.0

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


# --- The shipped nginx site (deploy/nginx/statuspage.conf) ------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for PUBLIC_HOST and 127.0.0.1 (as tests/deploy/test_nginx.py makes
    one): the site's only answering server is its TLS one."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(  # noqa: S603 - fixed arguments
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={PUBLIC_HOST}"),
            *("-addext", f"subjectAltName=DNS:{PUBLIC_HOST},IP:{LOOPBACK}"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def site_render(values: dict[str, str]) -> str:
    """deploy/nginx/statuspage.conf as deploy/README.md's envsubst renders it (only the
    named placeholders; nginx's own $variables stay), as tests/deploy does."""
    rendered = string.Template(SITE.read_text()).safe_substitute(values)
    left = re.findall(r"\$\{[A-Z_]+\}", rendered)
    if left:
        raise SystemExit(f"{SITE}: placeholders without a value: {left}")
    return rendered


class TlsNginx(_Server):
    """nginx with one site given as server blocks (``site(port)``: the TLS server
    listens on ``port``), inside an http context shared by both sides: Debian's
    nginx.conf cut to what matters (mime.types, sendfile, gzip on) plus what
    httpload.Nginx sets (tcp_nopush, keepalive_requests), and an access log of each
    answer's status and upstream status, to count non-2xx answers and fallbacks to
    the app exactly (wrk's own count is of statuses above 399 only)."""

    name = "nginx"

    def __init__(self, site: Callable[[int], str], *, workers: int, cert: Path) -> None:
        super().__init__()
        self.site = site
        self.workers = workers
        self.tls = ssl.create_default_context(cafile=str(cert))
        self.access_log = self.workdir / "access.log"
        self._read = 0

    def url(self, path: str = "/") -> str:
        return f"https://{LOOPBACK}:{self.port}{path}"

    def config(self) -> str:
        user = ""
        if os.geteuid() == 0:  # else nginx runs as whoever started it anyway
            import grp
            import pwd

            user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
        tmp = self.workdir
        temp = " ".join(
            f"{name}_temp_path {tmp}/{name};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return f"""\
{user}
worker_processes {self.workers};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    gzip on;
    log_format bench_status '$status $upstream_status';
    access_log {self.access_log} bench_status;
    {temp}
{self.site(self.port)}
}}
"""

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        binary = nginx_binary()
        if binary is None:
            raise SystemExit("nginx is not installed (ensure_tools(nginx=True) installs it)")
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        error_log = self.workdir / "error.log"
        argv = [binary, "-p", str(self.workdir), "-c", str(conf), "-e", str(error_log)]
        return argv, dict(os.environ), self.workdir

    def get(
        self, path: str = "/", headers: Mapping[str, str] | None = None, *, timeout: float = 30
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPSConnection(LOOPBACK, self.port, timeout=timeout, context=self.tls)
        try:
            conn.request("GET", path, headers=dict(headers or {}))
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def answers_since_last(self) -> tuple[int, int, int]:
        """Answers logged since the last call: (all, non-2xx, from the app)."""
        try:
            with open(self.access_log, "rb") as f:
                f.seek(self._read)
                data = f.read()
        except OSError:
            return 0, 0, 0
        complete = data[: data.rfind(b"\n") + 1]
        self._read += len(complete)
        lines = complete.decode(errors="replace").splitlines()
        non_2xx = sum(1 for line in lines if not line.startswith("2"))
        via_app = sum(1 for line in lines if line.split(" ", 1)[-1] != "-")
        return len(lines), non_2xx, via_app

    def output(self) -> str:
        text = super().output()
        error_log = self.workdir / "error.log"
        if error_log.exists():
            text += error_log.read_text(errors="replace")[-4000:]
        return text


def wrk_https(
    url: str,
    *,
    duration: float,
    connections: int,
    threads: int,
    headers: Mapping[str, str],
    timeout: float = 2.0,
) -> WrkResult:
    """httpload.wrk for ``https://127.0.0.1:…`` (httpload.wrk takes plain http only):
    the same arguments and the same done() report; wrk does not verify the certificate."""
    if not url.startswith(f"https://{LOOPBACK}:"):
        raise ValueError(f"only https://{LOOPBACK} here: {url}")
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (ensure_tools() installs it)")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "report.lua"
        script.write_text(WRK_REPORT)
        argv = [
            *(binary, "--threads", str(max(1, min(threads, connections)))),
            *("--connections", str(connections), "--duration", f"{max(1, round(duration))}s"),
            *("--timeout", f"{max(1, round(timeout))}s", "--latency", "--script", str(script)),
        ]
        for name, value in headers.items():
            argv += ["--header", f"{name}: {value}"]
        done = subprocess.run(  # noqa: S603 - wrk with fixed arguments
            [*argv, url], capture_output=True, text=True, timeout=duration + 60, check=False
        )
    found = re.search(r"^WRK-JSON (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(found.group(1))
    return WrkResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        bytes=raw["bytes"],
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        errors=raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"],
        bad_status=raw["status_errors"],
    )


class Rebuilder(threading.Thread):
    """``snapshot_rebuild()`` in this process against the bench database, as the
    worker's task does (every page rendered, a new generation swapped in as
    ``current``, old ones pruned), every ``every`` seconds on a fixed clock while
    resumed (back to back when a rebuild takes longer).

    At full size a rebuild takes longer than a wrk run here (13 s cold on an idle
    machine, ~18 s against wrk and nginx), so left to itself its swap, the one moment
    nginx can notice, fell between the runs. So the swap waits at a gate: a rebuild
    renders whenever, and a generation it finished is swapped in only while the gate
    is open, which ``measure_site`` does half-way through each run and closes at its
    end. Paused (no new rebuild started) between runs, so the wait for an idle CPU is
    not a wait on the rebuilds. Runs at nice -5 when it may (root)."""

    def __init__(self, every: float) -> None:
        super().__init__(name="snapshot-rebuilds", daemon=True)
        self.every = every
        self.stopping = threading.Event()
        self.active = threading.Event()
        self.gate = threading.Event()  # a rendered generation may be swapped in
        self.ready = threading.Event()  # one is waiting at the gate
        self.swaps: list[float] = []  # time.monotonic() of each swap
        self.seconds: list[float] = []  # each rebuild, up to the gate
        self.errors: list[str] = []
        self._rebuild_started = 0.0

    def resume(self) -> None:
        self.active.set()

    def pause(self) -> None:
        self.active.clear()

    def primed(self, timeout: float = 300.0) -> None:
        """Resume, and return once a rendered generation waits at the gate."""
        self.resume()
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if self.errors:
                raise SystemExit(f"snapshot rebuild failed: {self.errors}")
            if time.monotonic() > deadline or not self.is_alive():
                raise SystemExit("no snapshot rebuild finished rendering in time")

    def run(self) -> None:
        from unittest import mock

        from django.db import connection

        from public import snapshot

        swap = snapshot._swap

        def gated_swap(directory: Path, name: str) -> None:
            self.seconds.append(time.monotonic() - self._rebuild_started)
            self.ready.set()
            while not (self.gate.wait(0.05) or self.stopping.is_set()):
                pass
            self.ready.clear()
            swap(directory, name)
            self.swaps.append(time.monotonic())

        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -5)
        next_at: float | None = None
        try:
            with mock.patch.object(snapshot, "_swap", gated_swap):
                while not self.stopping.is_set():
                    if not self.active.is_set():
                        next_at = None
                        self.active.wait(0.05)
                        continue
                    now = time.monotonic()
                    next_at = now if next_at is None else next_at
                    if now < next_at:
                        self.stopping.wait(min(0.05, next_at - now))
                        continue
                    self._rebuild_started = now
                    try:
                        snapshot.snapshot_rebuild()
                    except Exception as error:  # reported, and fails the run
                        self.errors.append(repr(error))
                    next_at += self.every
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join()

    def swapped(self, start: float, end: float) -> int:
        return sum(1 for at in list(self.swaps) if start <= at <= end)


@dataclass(frozen=True)
class SiteRun:
    result: WrkResult
    busy_before: float
    cpu_us: float
    non_2xx: int  # from nginx's access log: every answer not 2xx (3xx included)
    via_app: int  # answers nginx got from gunicorn (a fallback)
    swaps: int  # snapshot generations swapped in during the run


def measure_site(
    sides: dict[str, TlsNginx], args: argparse.Namespace, rebuilder: Rebuilder
) -> dict[str, list[SiteRun]]:
    """``measure`` for the two TLS sides: alternating, after an idle CPU; each run
    starts with a rebuilt generation waiting and swaps it in half-way, with rebuilds
    every --rebuild-every seconds (back to back when slower) until its end; each run's
    non-2xx answers and fallbacks from the access log, and the swaps it saw."""
    for server in sides.values():
        wrk_https(
            server.url("/"),
            duration=1,
            connections=args.connections,
            threads=args.threads,
            headers=SITE_HEADERS,
        )
    results: dict[str, list[SiteRun]] = {name: [] for name in sides}
    names = list(sides)
    for round_ in range(args.runs):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            server = sides[name]
            busy = wait_for_idle_cpu(below=args.idle_below, timeout=args.idle_timeout)
            server.answers_since_last()
            rebuilder.primed()  # a rendered generation, to be swapped in mid-run
            cpu_before = server.cpu_seconds()
            started = time.monotonic()
            opening = threading.Timer(args.duration / 2, rebuilder.gate.set)
            opening.start()
            try:
                result = wrk_https(
                    server.url("/"),
                    duration=args.duration,
                    connections=args.connections,
                    threads=args.threads,
                    headers=SITE_HEADERS,
                )
            finally:
                opening.cancel()
                rebuilder.gate.clear()
                rebuilder.pause()
            swaps = rebuilder.swapped(started, time.monotonic())
            cpu_us = (server.cpu_seconds() - cpu_before) / max(1, result.requests) * 1e6
            _, non_2xx, via_app = server.answers_since_last()
            results[name].append(SiteRun(result, busy, cpu_us, non_2xx, via_app, swaps))
            log(
                f"  run {round_ + 1} {name:<8} (CPU busy before {busy:4.0%}): {result.line()}"
                f"  server CPU {cpu_us:5.0f} us/req  non-2xx {non_2xx}  from the app"
                f" {via_app}  swaps {swaps}"
            )
    return results


def site_phase(
    args: argparse.Namespace,
    work: Path,
    snapshot_dir: Path,
    ours: Gunicorn,
    export_headers: dict[str, str],
    export: Path,
    servers: list[Gunicorn | Nginx | TlsNginx],
) -> tuple[dict[str, dict[str, list[SiteRun]]], Rebuilder]:
    """The shipped site against nginx serving the export, over TLS both, while the
    snapshot is rebuilt every --rebuild-every seconds: with ours' gunicorn as the
    site's upstream, then with it stopped."""
    from django.test.utils import override_settings

    cert, key = self_signed(work)
    tls = (
        f"ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
        "    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_session_cache shared:bench_tls:10m;"
    )
    added = "\n".join(
        f'        add_header {name} "{value}" always;' for name, value in export_headers.items()
    )

    def export_site(port: int) -> str:
        # What httpload.Nginx serves the export with (the `page:` nginx), over TLS with
        # the shipped site's TLS settings.
        return f"""\
    server {{
        listen {LOOPBACK}:{port} ssl;
        server_name {PUBLIC_HOST};
        {tls}
        root {export.resolve()};
        index index.html;
{added}
        charset utf-8;
        gzip_static on;
        location / {{ try_files $uri $uri/ =404; }}
    }}"""

    http_port = free_port()

    def shipped_site(port: int) -> str:
        return site_render(
            {
                "SERVER_NAME": PUBLIC_HOST,
                "HTTP_LISTEN": f"{LOOPBACK}:{http_port}",
                "HTTPS_LISTEN": f"{LOOPBACK}:{port}",
                "TLS_CERT": str(cert),
                "TLS_KEY": str(key),
                "SNAPSHOT_DIR": str(snapshot_dir.resolve()),
                "UPSTREAM": f"{LOOPBACK}:{ours.port}",
            }
        )

    baseline = TlsNginx(export_site, workers=args.nginx_workers, cert=cert)
    servers.append(baseline)
    baseline.start()
    site = TlsNginx(shipped_site, workers=args.nginx_workers, cert=cert)
    servers.append(site)
    site.start()
    current = snapshot_dir / os.readlink(snapshot_dir / "current")
    for name, server, expected in (
        ("baseline", baseline, (export / "index.html.gz").read_bytes()),
        ("ours", site, (current / "index.html.gz").read_bytes()),
    ):
        status, headers, served = server.get("/", SITE_HEADERS)
        if status != 200 or headers.get("Content-Encoding") != "gzip" or served != expected:
            raise SystemExit(f"{name} (https) answered {status} without the gzipped copy")
    status, _, _ = site.get("/admin/login/", {"Host": PUBLIC_HOST})
    if status >= 500:
        raise SystemExit(f"the site does not reach ours' gunicorn: {status} for /admin/login/")
    log(
        f"https (self-signed; the site's http port only redirects): "
        f"{', '.join(f'{k}: {v}' for k, v in SITE_HEADERS.items())}; the snapshot rebuilt "
        f"every {args.rebuild_every:g} s (back to back when slower), a generation swapped in "
        "half-way through every run"
    )

    sides = {"baseline": baseline, "ours": site}
    static = override_settings(SNAPSHOT_DIR=snapshot_dir, STATIC_ROOT=work / "static")
    static.enable()
    rebuilder = Rebuilder(args.rebuild_every)
    results: dict[str, dict[str, list[SiteRun]]] = {}
    try:
        rebuilder.start()
        log("page-nginx: gunicorn up behind the site")
        results["page-nginx"] = measure_site(sides, args, rebuilder)
        ours.stop()
        status, _, _ = site.get("/admin/login/", {"Host": PUBLIC_HOST})
        if status != 502:
            raise SystemExit(f"gunicorn stopped, yet the app's path answered {status}")
        log("page-nginx-no-gunicorn: gunicorn stopped (the app's paths answer 502)")
        results["page-nginx-no-gunicorn"] = measure_site(sides, args, rebuilder)
    finally:
        rebuilder.stop()
        static.disable()
    return results, rebuilder


def report_site(name: str, results: dict[str, list[SiteRun]]) -> tuple[list[str], bool]:
    """The table, the targets, and the two lines: req/s, then p99 and non-2xx."""
    rate = {k: med(r.result.requests_per_second for r in runs) for k, runs in results.items()}
    p50 = {k: med(r.result.p50_ms for r in runs) for k, runs in results.items()}
    p99 = {k: med(r.result.p99_ms for r in runs) for k, runs in results.items()}
    cpu = {k: med(r.cpu_us for r in runs) for k, runs in results.items()}
    non_2xx = {k: sum(r.non_2xx for r in runs) for k, runs in results.items()}
    errors = {k: sum(r.result.errors for r in runs) for k, runs in results.items()}
    via_app = {k: sum(r.via_app for r in runs) for k, runs in results.items()}
    swaps = {k: sum(r.swaps for r in runs) for k, runs in results.items()}
    log()
    log(f"{name}: / gzip over https, medians of {len(results['ours'])} runs:")
    log(
        f"{'server':<38}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}"
        f"{'non-2xx':>9}{'errors':>8}{'from app':>10}{'swaps':>7}"
    )
    for side in ("baseline", "ours"):
        log(
            f"{SITE_LABELS[side]:<38}{rate[side]:>10,.0f}{p50[side]:>9.2f}{p99[side]:>9.2f}"
            f"{cpu[side]:>12.0f}{non_2xx[side]:>9}{errors[side]:>8}{via_app[side]:>10}"
            f"{swaps[side]:>7}"
        )
    ratio = rate["ours"] / rate["baseline"]
    log(
        f"target ours >= {TARGET_SITE_RATIO} x baseline: "
        f"{'met' if ratio >= TARGET_SITE_RATIO else 'MISSED'} ({ratio:.2f}); p99 < "
        f"{TARGET_SITE_P99_MS:.0f} ms: {'met' if p99['ours'] < TARGET_SITE_P99_MS else 'MISSED'}"
        f" ({p99['ours']:.2f} ms); zero non-2xx during {swaps['ours']} swaps: "
        f"{'met' if non_2xx['ours'] + errors['ours'] == 0 else 'MISSED'}"
    )
    lines = [
        f"{name}: ours={rate['ours']:.0f} baseline={rate['baseline']:.0f} ratio={ratio:.2f}",
        f"{name}-p99: ours={p99['ours']:.2f}ms baseline={p99['baseline']:.2f}ms "
        f"ratio={p99['ours'] / p99['baseline']:.2f} non2xx={non_2xx['ours']} "
        f"baseline_non2xx={non_2xx['baseline']} errors={errors['ours'] + errors['baseline']} "
        f"swaps={swaps['ours']}",
    ]
    failed = any(non_2xx.values()) or any(errors.values())
    return lines, failed


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
    parser.add_argument(
        "--rebuild-every",
        type=float,
        default=10.0,
        help="seconds between snapshot rebuilds while the nginx site is loaded",
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
        args.rebuilds, args.idle_timeout, args.rebuild_every = 2, 0.0, 0.5
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
    servers: list[Gunicorn | Nginx | TlsNginx] = []
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
            # STATIC_ROOT: collectstatic's, as deployed (the app's own pages need its
            # manifest: the nginx site sends the rest of the site there).
            env={
                **production,
                "SNAPSHOT_DIR": str(snapshot_dir),
                "STATIC_ROOT": str(work / "static"),
            },
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
        export_headers = {k: v for k, v in spec["identity"]["headers"] if k.lower() not in own}
        nginx = Nginx(
            export,
            workers=args.nginx_workers,
            headers=export_headers,
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

        site_results, rebuilder = site_phase(
            args, work, snapshot_dir, ours, export_headers, export, servers
        )
    finally:
        for running in reversed(servers):
            running.stop()
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
    site_lines = []
    for name, runs in site_results.items():
        more, site_failed = report_site(name, runs)
        site_lines += more
        failed = failed or site_failed
    log(
        f"rebuilds while the site was loaded: {len(rebuilder.seconds)}, median "
        f"{med(rebuilder.seconds or [0.0]):.2f} s to render, {len(rebuilder.swaps)} swapped in"
        + (f"; FAILED: {rebuilder.errors}" if rebuilder.errors else "")
    )
    failed = failed or bool(rebuilder.errors)
    log()
    log("\n".join(site_lines))
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
