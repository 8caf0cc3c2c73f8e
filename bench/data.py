"""Build the benchmark dataset once: a fleet of tailnets that live-migrate between shards.

    make bench-data                                  # 1,000,000 tailnets, 200 shards, 90 days
    BENCH_ARGS="--tailnets 2000 --shards 20" BENCH_DATABASE_URL=.../bench_smoke make bench-data

Into its own PostgreSQL database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/bench), created if missing and migrated with the
project's own migrations, so every constraint and index is the production one. Tailnets
and placements go in with COPY, streamed in chunks (memory stays flat), straight into
the migrated schema: nothing is dropped and recreated around the load.

The fleet is planned by ``demo/fleet.py`` (pure functions, shared with the demo fleet of
``manage.py seed_demo``); this script writes the plan. The shape (seeded, so every build
of one size is the same fleet relative to its "now"):
- a few components, ``--shards`` coordination shards spread over five regions;
- ``--tailnets`` tailnets, most created before the ``--days`` window, some during it;
- about five placements per tailnet: each migrates a Poisson(4) number of times during
  the window, mostly within its region; consecutive, never overlapping, exactly one
  open (current) placement per tailnet;
- a handful of designated tailnets with exactly 20 migrations in the window, steered onto
  shards while historic incidents hit them (and some off again mid-incident), so each
  has a realistic 10-30 rows of incident history;
- historic incidents (some drafts, some maintenance, some with a level change) with
  their shard impact windows, and their TailnetImpact rows built by
  ``incidents.services.tailnet_impacts_recompute`` itself.

Re-running is a no-op once the dataset is there (the row in ``bench_meta`` is written
last, so an interrupted build is redone); ``--force`` drops the database and rebuilds it.
"""

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import META_TABLE, database_url, meta_read, setup_django
from demo.fleet import (
    BENCH_REGIONS,
    CHUNK,
    DAY,
    DESIGNATED_MIGRATIONS,
    HOUR,
    BenchFleet,
    PlannedIncident,
    bench_incidents_plan,
    bench_shards,
    placements,
)

REGIONS = BENCH_REGIONS
LEVEL_STATUS = {
    "outage": "major_outage",
    "partial": "partial_outage",
    "degraded": "degraded_performance",
}


def log(message: str) -> None:
    print(message, flush=True)


# --- The database ------------------------------------------------------------------------


def database_ensure(url: str, *, recreate: bool) -> None:
    """Create the benchmark database if it does not exist (connecting to `postgres`);
    with ``recreate``, drop it first, so the schema is exactly today's migrations."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    name = params.get("dbname")
    if not name:
        raise SystemExit(f"BENCH_DATABASE_URL names no database: {url!r}")
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and recreate:
            try:
                conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.ObjectInUse as error:
                raise SystemExit(f"Cannot drop {name} to rebuild it: {error}") from None
            log(f"dropped database {name}")
        if exists and not recreate:
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        log(f"created database {name}")


def fleet_tables() -> list[str]:
    """Every table of the project's own apps (TailnetImpact has no FKs for CASCADE to follow)."""
    from django.apps import apps

    return [
        model._meta.db_table
        for label in ("incidents", "probes", "fleet")
        for model in apps.get_app_config(label).get_models(include_auto_created=True)
        if model._meta.managed
    ]


# --- Time as integer seconds (fast to generate, formatted for COPY) ----------------------


class Clock:
    """UNIX seconds -> COPY text, with the date part cached per day."""

    def __init__(self, first: int, last: int) -> None:
        self.first_day = first // DAY
        self.days = [
            datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d ")
            for day in range(self.first_day, last // DAY + 2)
        ]

    def text(self, seconds: int | None) -> str:
        if seconds is None:
            return "\\N"
        day, rest = divmod(seconds, DAY)
        hours, rest = divmod(rest, HOUR)
        minutes, secs = divmod(rest, 60)
        return f"{self.days[day - self.first_day]}{hours:02d}:{minutes:02d}:{secs:02d}+00"


def as_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- The load ----------------------------------------------------------------------------


@dataclass
class FleetLoader:
    """COPY the planned tailnets and their placements, one transaction per chunk of the
    plan (CHUNK tailnets) with the placements streamed as they are planned, ``jobs``
    chunks at a time (the GiST inserts of the exclusion constraint dominate, and one
    backend uses one core). Each chunk has its own seeded generator, so the fleet does
    not depend on ``jobs``."""

    url: str
    fleet: BenchFleet

    def load(self, jobs: int) -> int:
        self.clock = Clock(self.fleet.window_start - 4 * 365 * DAY, self.fleet.window_end)
        self.lock = threading.Lock()
        self.done = self.placements = 0
        self.started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(self.chunk, self.fleet.chunks))  # re-raises the first failure
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('incidents_tailnet', 'id'),"
                " (SELECT max(id) FROM incidents_tailnet))"
            )
        return self.placements

    def chunk(self, first: int) -> None:
        text = self.clock.text
        ids, created, histories = self.fleet.chunk(first)
        count = 0
        with psycopg.connect(self.url) as conn, conn.cursor() as cursor:
            with cursor.copy(
                "COPY incidents_tailnet (id, slug, display_name, created_at) FROM STDIN"
            ) as copy:
                copy.write(
                    "".join(
                        f"{tid}\ttn-{tid:07d}\ttailnet{tid}.example.com\t{text(c)}\n"
                        for tid, c in zip(ids, created, strict=True)
                    )
                )
            with cursor.copy(
                "COPY incidents_placement (tailnet_id, shard_id, starts_at, ends_at) FROM STDIN"
            ) as copy:
                lines: list[str] = []
                for tid, history in zip(ids, histories, strict=True):
                    for shard, starts, ends in placements(history):
                        lines.append(f"{tid}\t{shard}\t{text(starts)}\t{text(ends)}\n")
                    if len(lines) >= 20_000:
                        copy.write("".join(lines))
                        count += len(lines)
                        lines.clear()
                copy.write("".join(lines))
                count += len(lines)
            conn.commit()  # the deferred FK checks of the chunk run here
        with self.lock:
            self.done += len(ids)
            self.placements += count
            elapsed = time.perf_counter() - self.started
            log(
                f"  {self.done:>9,} tailnets, {self.placements:>10,} placements "
                f"({elapsed:6.1f} s, {self.placements / elapsed:,.0f} placements/s)"
            )


def incidents_create(
    planned: list[PlannedIncident], shards: dict[int, object], components: dict[str, object]
) -> list[int]:
    """The historic incidents through the ORM, as an operator would have left them."""
    from django.db import transaction

    from incidents.models import Incident, IncidentComponent, IncidentUpdate, ShardImpact

    ids = []
    for n, p in enumerate(planned, start=1):
        start, end = as_datetime(p.start), as_datetime(p.end)
        maintenance = p.kind == "maintenance"
        where = f"{len(p.shard_ids)} {p.region} coordination shard(s)"
        with transaction.atomic():
            incident = Incident.objects.create(
                title=f"{'Maintenance' if maintenance else 'Coordination trouble'} #{n} on {where}",
                kind=p.kind,
                status="completed" if maintenance else "resolved",
                impact="maintenance"
                if maintenance
                else {"outage": "major", "partial": "minor", "degraded": "minor"}[p.level],
                source="manual" if maintenance else "probe",
                published=p.published,
                published_at=start if p.published else None,
                started_at=start,
                detected_at=None if maintenance else start + timedelta(minutes=2),
                resolved_at=end,
                scheduled_for=start if maintenance else None,
                scheduled_until=end if maintenance else None,
                created_at=start,
                updated_at=end,
                impacts_changed_at=end,
            )
            ShardImpact.objects.bulk_create(
                ShardImpact(
                    incident=incident,
                    shard=shards[s],
                    level=level,
                    starts_at=as_datetime(a),
                    ends_at=as_datetime(b),
                )
                for s, level, a, b in p.windows
            )
            IncidentComponent.objects.create(
                incident=incident,
                component=components[p.region],
                status="under_maintenance" if maintenance else LEVEL_STATUS[p.level],
            )
            IncidentUpdate.objects.bulk_create(
                [
                    IncidentUpdate(
                        incident=incident,
                        status="in_progress" if maintenance else "investigating",
                        body=f"We are looking into failed logins on {where}.",
                        created_at=start,
                        display_at=start,
                    ),
                    IncidentUpdate(
                        incident=incident,
                        status="completed" if maintenance else "resolved",
                        body="Fixed; existing connections kept working throughout.",
                        created_at=end,
                        display_at=end,
                    ),
                ]
            )
        ids.append(incident.pk)
    return ids


def build(args: argparse.Namespace, url: str) -> dict:
    from django.db import connection

    from incidents.models import Component, ComponentGroup, Shard
    from incidents.services import tailnet_impacts_recompute

    window_end = int(
        datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    )
    window_start = window_end - args.days * DAY
    long_ago = as_datetime(window_start - 4 * 365 * DAY)

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {META_TABLE}")
        cursor.execute(f"TRUNCATE {', '.join(fleet_tables())} RESTART IDENTITY CASCADE")

    coordination = ComponentGroup.objects.create(name="Coordination service", position=1)
    other = ComponentGroup.objects.create(name="Everything else", position=2)
    components = {
        region: Component.objects.create(
            slug=f"coordination-{region}",
            name=f"Coordination service ({region})",
            group=coordination,
            kind="coordination",
            region=region,
            position=n,
            created_at=long_ago,
        )
        for n, region in enumerate(REGIONS)
    }
    for n, (kind, name) in enumerate(
        [("admin_console", "Admin console"), ("login", "Login"), ("derp", "DERP relays")]
    ):
        Component.objects.create(
            slug=kind.replace("_", "-"), name=name, group=other, kind=kind, position=n
        )
    shards = Shard.objects.bulk_create(
        Shard(
            slug=slug,
            region=region,
            public_name=public_name,
            component=components[region],
            created_at=long_ago,
        )
        for slug, region, public_name in bench_shards(args.shards)
    )
    shard_ids = [s.pk for s in shards]
    region_of = {s.pk: s.region for s in shards}
    by_region = {r: [s.pk for s in shards if s.region == r] for r in REGIONS}

    try:
        planned, designated = bench_incidents_plan(
            seed=args.seed,
            tailnets=args.tailnets,
            days=args.days,
            shard_ids=shard_ids,
            by_region=by_region,
            window_start=window_start,
            window_end=window_end,
        )
    except ValueError as error:
        raise SystemExit(str(error)) from None
    designated_ids = list(designated)
    log(f"fleet: {len(components) + 3} components, {len(shards)} shards")

    log(
        f"tailnets and placements (COPY, {CHUNK:,} tailnets per transaction, "
        f"{args.jobs} at a time):"
    )
    copy_started = time.perf_counter()
    fleet = BenchFleet(
        tailnets=args.tailnets,
        shard_ids=shard_ids,
        region_of=region_of,
        by_region=by_region,
        designated=designated,
        window_start=window_start,
        window_end=window_end,
        seed=args.seed,
    )
    placement_count = FleetLoader(url=url, fleet=fleet).load(args.jobs)
    copy_seconds = time.perf_counter() - copy_started
    log(f"COPY done in {copy_seconds:.1f} s")

    # The fleet feed derives placements from its event log: the log the loaded
    # placements imply, as migration fleet 0002 writes it for existing data.
    from fleet.backfill import fleet_events_backfill

    backfill_started = time.perf_counter()
    fleet_events = fleet_events_backfill()
    log(
        f"{fleet_events:,} fleet events backfilled from the placements "
        f"in {time.perf_counter() - backfill_started:.1f} s"
    )

    analyze_started = time.perf_counter()
    with connection.cursor() as cursor:
        # Sets hint bits and the visibility map too, so the first benchmark run does
        # not pay for the load's leftovers.
        cursor.execute("VACUUM (ANALYZE) incidents_tailnet, incidents_placement, fleet_fleetevent")
    log(f"VACUUM ANALYZE in {time.perf_counter() - analyze_started:.1f} s")

    impacts_started = time.perf_counter()
    incident_ids = incidents_create(planned, {s.pk: s for s in shards}, components)
    impact_rows = 0
    for incident_id in incident_ids:
        impact_rows += tailnet_impacts_recompute(
            incident_id=incident_id, as_of=as_datetime(window_end)
        )
    log(
        f"{len(incident_ids)} historic incidents, {impact_rows:,} TailnetImpact rows "
        f"(tailnet_impacts_recompute) in {time.perf_counter() - impacts_started:.1f} s"
    )

    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) incidents_incident, incidents_shardimpact, incidents_tailnetimpact,"
            " incidents_incidentupdate, incidents_incidentcomponent, incidents_shard"
        )
        cursor.execute(
            "SELECT p.tailnet_id, count(*),"
            " (SELECT count(*) FROM incidents_tailnetimpact ti WHERE ti.tailnet_id = p.tailnet_id)"
            " FROM incidents_placement p WHERE p.tailnet_id = ANY(%s)"
            " GROUP BY p.tailnet_id ORDER BY p.tailnet_id",
            [designated_ids],
        )
        designated_rows = {tid: (n, rows) for tid, n, rows in cursor.fetchall()}
        cursor.execute("CHECKPOINT")
    for tid, (n, _) in designated_rows.items():
        if n != DESIGNATED_MIGRATIONS + 1:
            raise SystemExit(f"designated tailnet {tid} has {n} placements, not 21")
    log(
        "designated tailnets (20 migrations each), TailnetImpact rows: "
        + ", ".join(f"{tid}: {rows}" for tid, (_, rows) in designated_rows.items())
    )
    return {
        "tailnets": args.tailnets,
        "shards": args.shards,
        "days": args.days,
        "seed": args.seed,
        "window_start": as_datetime(window_start).isoformat(),
        "now": as_datetime(window_end).isoformat(),
        "placements": placement_count,
        "incidents": len(incident_ids),
        "tailnet_impacts": impact_rows,
        "designated_tailnets": designated_ids,
        "designated_impact_rows": {str(t): r for t, (_, r) in designated_rows.items()},
        "copy_seconds": round(copy_seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tailnets", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=200)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=20260105)
    parser.add_argument(
        "--force", action="store_true", help="drop the database and rebuild it from scratch"
    )
    parser.add_argument(
        "--jobs", type=int, default=min(4, os.cpu_count() or 1), help="concurrent COPY streams"
    )
    args = parser.parse_args(argv)
    if args.shards < 2 * len(REGIONS) or args.tailnets < 10 or args.days < 7:
        parser.error(f"need at least {2 * len(REGIONS)} shards, 10 tailnets and 7 days")

    started = time.perf_counter()
    url = database_url()
    database_ensure(url, recreate=args.force)
    setup_django(url)
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.exceptions import InconsistentMigrationHistory

    try:
        call_command("migrate", interactive=False, verbosity=0)
    except InconsistentMigrationHistory as error:
        log(f"{error}\nThe tree's migrations were rewritten since this database was migrated;")
        log("`--force` drops and rebuilds it.")
        return 2
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {META_TABLE}"
            " (key text PRIMARY KEY, value jsonb NOT NULL, written_at timestamptz NOT NULL)"
        )
        meta = meta_read(cursor)
    wanted = {
        "tailnets": args.tailnets,
        "shards": args.shards,
        "days": args.days,
        "seed": args.seed,
    }
    if meta is not None and not args.force:
        there = {key: meta.get(key) for key in wanted}
        if there != wanted:
            log(f"A different dataset is already there ({there}); use --force to replace it.")
            return 2
        log(
            f"Dataset already there (built {meta['now'][:10]}: {meta['tailnets']:,} tailnets, "
            f"{meta['placements']:,} placements); nothing to do. --force rebuilds it."
        )
        return 0

    log(
        f"Building {args.tailnets:,} tailnets on {args.shards} shards over {args.days} days "
        f"into {connection.settings_dict['NAME']}"
    )
    meta = build(args, url)
    meta["build_seconds"] = round(time.perf_counter() - started, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {META_TABLE} (key, value, written_at) VALUES ('dataset', %s, now())",
            [json.dumps(meta)],
        )
    log(f"Done in {meta['build_seconds']:.0f} s: {json.dumps(meta)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
