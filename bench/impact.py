"""Affected-tailnet recompute and one tailnet's incident history, against bare SQL.

    make bench-data      # once: the dataset (bench/data.py)
    make bench-impact    # this

(a) impact: an incident hitting 3 shards for 24 minutes. Ours is
    ``incidents.services.tailnet_impacts_recompute`` — the very function the Celery task
    ``incidents.recompute_tailnet_impacts`` calls — timed from call to return, so
    including its COMMIT. The baseline is bare SQL on the same schema through a plain
    psycopg connection: BEGIN, DELETE of the incident's rows, INSERT ... SELECT of the
    same answer, COMMIT. Rounds alternate which side goes first, the table is vacuumed
    before every run (so no run pays for another's dead rows), medians are compared,
    and both sides must leave identical rows (count + md5). The plan of the project's
    INSERT must use the GiST index ``placement_shard_during`` (exit 1 if not).
(b) history: ``incidents.queries.tailnet_incident_history`` for a tailnet with 20
    migrations in 90 days, results materialised, against the bare SELECT of the same
    rows (impact rows joined to their published incidents, overlapping the window).

The last two lines are the measurements: ``impact: ours=<s>s baseline=<s>s ratio=<r>``
and ``history: ours=<ms>ms baseline=<ms>ms ratio=<r>`` (ratio = ours / baseline).
Missing a target is reported, not fatal. ``--smoke`` runs a few rounds only (CI).
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import database_url, meta_read, setup_django

INDEX = "placement_shard_during"
TITLE = "bench/impact.py: 3 shards, 24 minutes"
IMPACT_TARGET = 1.5
HISTORY_TARGET = 2.0

# The bare recompute: what a person would write by hand for "placements overlapping
# the incident's windows, clipped", on the same tables.
BARE_DELETE = "DELETE FROM incidents_tailnetimpact WHERE incident_id = %(incident)s"
BARE_INSERT = """
    INSERT INTO incidents_tailnetimpact
        (incident_id, shard_impact_id, tailnet_id, shard_id, level, starts_at, ends_at, seconds)
    SELECT si.incident_id, si.id, p.tailnet_id, si.shard_id, si.level,
           GREATEST(p.starts_at, si.starts_at),
           LEAST(p.ends_at, si.ends_at),
           GREATEST(0, FLOOR(EXTRACT(EPOCH FROM
               COALESCE(LEAST(p.ends_at, si.ends_at), %(as_of)s)
               - GREATEST(p.starts_at, si.starts_at))))
    FROM incidents_shardimpact si
    JOIN incidents_placement p
      ON p.shard_id = si.shard_id
     AND tstzrange(p.starts_at, p.ends_at) && tstzrange(si.starts_at, si.ends_at)
    WHERE si.incident_id = %(incident)s
"""
# The bare history: the same rows the query returns, with the same columns.
BARE_HISTORY = """
    SELECT ti.*, i.*
    FROM incidents_tailnetimpact ti
    JOIN incidents_incident i ON i.id = ti.incident_id
    WHERE ti.tailnet_id = %(tailnet)s
      AND (ti.ends_at IS NULL OR ti.ends_at > %(since)s)
      AND i.published
    ORDER BY ti.starts_at, ti.id
"""
CHECKSUM = """
    SELECT count(*), coalesce(md5(string_agg(
        concat_ws('|', shard_impact_id, tailnet_id, shard_id, level, starts_at, ends_at, seconds),
        ',' ORDER BY shard_impact_id, tailnet_id, starts_at)), '-')
    FROM incidents_tailnetimpact WHERE incident_id = %s
"""


def log(message: str = "") -> None:
    print(message, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def spread(samples: list[float], unit: Callable[[float], str]) -> str:
    ordered = sorted(samples)
    return (
        f"median {unit(statistics.median(ordered))}"
        f" (min {unit(ordered[0])}, max {unit(ordered[-1])}, {len(ordered)} runs)"
    )


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from plan_nodes(child)


def explain_json(cursor: Any, sql: str, params: Any) -> list[dict[str, Any]]:
    cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
    plan = cursor.fetchone()[0]
    nodes = json.loads(plan) if isinstance(plan, str) else plan
    return list(plan_nodes(nodes[0]["Plan"]))


def uses_index(nodes: list[dict[str, Any]]) -> bool:
    return any(node.get("Index Name") == INDEX for node in nodes)


# --- (a) the recompute -------------------------------------------------------------------


class Recorder:
    """An execute_wrapper that times every statement Django sends, plus COMMIT."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any, float]] = []
        self.commits: list[float] = []

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((sql, params, time.perf_counter() - started))

    def phases(self, total: float) -> dict[str, float]:
        named = {"lock": 0.0, "delete": 0.0, "insert": 0.0, "update": 0.0, "other SQL": 0.0}
        for sql, _, seconds in self.statements:
            head = " ".join(sql.split()).upper()
            if head.startswith("SELECT") and "FOR UPDATE" in head:
                named["lock"] += seconds
            elif head.startswith("DELETE"):
                named["delete"] += seconds
            elif head.startswith("INSERT"):
                named["insert"] += seconds
            elif head.startswith("UPDATE"):
                named["update"] += seconds
            else:
                named["other SQL"] += seconds
        named["commit"] = sum(self.commits)
        named["python"] = total - sum(named.values())
        return named

    def insert_statement(self) -> tuple[str, Any]:
        for sql, params, _ in self.statements:
            head = " ".join(sql.split()).upper()
            if head.startswith("INSERT INTO INCIDENTS_TAILNETIMPACT"):
                return sql, params
        raise SystemExit("tailnet_impacts_recompute sent no INSERT INTO incidents_tailnetimpact")


def ours_instrumented(incident_id: int, as_of: datetime) -> tuple[float, Recorder]:
    """One run of ours with every statement and the COMMIT timed (not a timed run)."""
    from django.db import connection

    from incidents.services import tailnet_impacts_recompute

    recorder = Recorder()
    commit = connection._commit

    def timed_commit() -> None:
        started = time.perf_counter()
        try:
            commit()
        finally:
            recorder.commits.append(time.perf_counter() - started)

    connection._commit = timed_commit
    try:
        with connection.execute_wrapper(recorder):
            started = time.perf_counter()
            tailnet_impacts_recompute(incident_id=incident_id, as_of=as_of)
            total = time.perf_counter() - started
    finally:
        del connection._commit  # back to the class's method
    return total, recorder


def bench_incident(meta: dict[str, Any]) -> tuple[Any, list[str], datetime]:
    """A resolved outage on 3 shards of one region for 24 minutes, two thirds into the
    data window, created through the ORM (no task is queued: the benchmark runs the
    recompute itself)."""
    from django.db import transaction

    from incidents.models import Incident, Shard, ShardImpact

    now = datetime.fromisoformat(meta["now"])
    window_start = datetime.fromisoformat(meta["window_start"])
    starts = (window_start + (now - window_start) * 2 / 3).replace(
        hour=14, minute=7, second=0, microsecond=0
    )
    ends = starts + timedelta(minutes=24)
    rng = random.Random(meta["seed"])
    region = rng.choice(sorted(set(Shard.objects.values_list("region", flat=True))))
    shards = rng.sample(list(Shard.objects.filter(region=region).order_by("pk")), 3)
    with transaction.atomic():
        incident = Incident.objects.create(
            title=TITLE,
            status="resolved",
            impact="major",
            source="probe",
            published=True,
            published_at=starts,
            started_at=starts,
            detected_at=starts + timedelta(minutes=2),
            resolved_at=ends,
            created_at=starts,
            updated_at=ends,
            impacts_changed_at=ends,
        )
        ShardImpact.objects.bulk_create(
            ShardImpact(incident=incident, shard=s, level="outage", starts_at=starts, ends_at=ends)
            for s in shards
        )
    return incident, [s.slug for s in shards], now


def bench_incidents_delete() -> None:
    """Remove this benchmark's incidents (also those a crashed run left behind). Bare
    SQL on the three tables it wrote, so the ORM's cascade does not depend on every
    model of the tree being migrated into the bench database."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT array_agg(id) FROM incidents_incident WHERE title = %s", [TITLE])
        ids = cursor.fetchone()[0]
        if ids:
            for table in ("incidents_tailnetimpact", "incidents_shardimpact"):
                cursor.execute(f"DELETE FROM {table} WHERE incident_id = ANY(%s)", [ids])
            cursor.execute("DELETE FROM incidents_incident WHERE id = ANY(%s)", [ids])


def measure_impact(args: argparse.Namespace, meta: dict[str, Any], raw: psycopg.Connection):
    from django.db import connection, transaction

    from incidents.services import tailnet_impacts_recompute

    bench_incidents_delete()
    incident, shard_slugs, as_of = bench_incident(meta)
    try:
        params = {"incident": incident.pk, "as_of": as_of}

        def vacuum() -> None:
            with connection.cursor() as cursor:
                cursor.execute("VACUUM incidents_tailnetimpact, incidents_incident")

        def checksum() -> tuple[int, str]:
            with connection.cursor() as cursor:
                cursor.execute(CHECKSUM, [incident.pk])
                return cursor.fetchone()

        def ours() -> float:
            started = time.perf_counter()
            tailnet_impacts_recompute(incident_id=incident.pk, as_of=as_of)
            return time.perf_counter() - started

        bare_phases: list[dict[str, float]] = []

        def bare() -> float:
            with raw.cursor() as cursor:
                t0 = time.perf_counter()
                cursor.execute("BEGIN")
                cursor.execute(BARE_DELETE, params)
                t1 = time.perf_counter()
                cursor.execute(BARE_INSERT, params)
                t2 = time.perf_counter()
                cursor.execute("COMMIT")
                t3 = time.perf_counter()
            bare_phases.append({"delete": t1 - t0, "insert": t2 - t1, "commit": t3 - t2})
            return t3 - t0

        log(
            f"(a) recompute: incident {incident.pk}, outage on {', '.join(shard_slugs)}"
            f" for 24 minutes from {incident.started_at:%Y-%m-%d %H:%M} UTC"
        )

        # Warm up both sides, then the project's own statement and its plan.
        ours()
        reference = checksum()
        bare()
        if checksum() != reference:
            raise SystemExit(f"ours and bare SQL disagree: {reference} vs {checksum()}")
        log(f"  rows: {reference[0]:,} TailnetImpact rows (md5 {reference[1][:12]}) on both sides")

        instrumented = []
        for _ in range(args.explain_runs):
            vacuum()
            instrumented.append(ours_instrumented(incident.pk, as_of))
        sql, sql_params = instrumented[0][1].insert_statement()
        with connection.cursor() as cursor:
            nodes = explain_json(cursor, sql, sql_params)
            bare_nodes = explain_json(cursor, BARE_INSERT, params)
        ok = uses_index(nodes)
        if ok:
            log(f"  plan: the project's INSERT ... SELECT uses {INDEX}")
        else:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")
                usable = uses_index(explain_json(cursor, sql, sql_params))
            shape = ", ".join(
                n["Node Type"]
                + (f" on {n['Relation Name']}" if "Relation Name" in n else "")
                + (f" using {n['Index Name']}" if "Index Name" in n else "")
                for n in nodes
            )
            if usable and args.smoke:
                log(
                    f"  plan: {INDEX} is usable by the project's INSERT (chosen with seqscan off);"
                    f" this tiny dataset gets {shape}"
                )
            else:
                log(f"  plan: {shape}")
                why = (
                    "the planner prefers another plan"
                    if usable
                    else "not even with seqscan off: its range expression does not match the index"
                )
                raise SystemExit(f"FAIL: the recompute's plan does not use {INDEX} ({why})")
        if not uses_index(bare_nodes):
            log(f"  note: the bare INSERT does not use {INDEX} here")

        if args.explain:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "EXPLAIN (ANALYZE, BUFFERS) DELETE FROM incidents_tailnetimpact"
                    " WHERE incident_id = %s",
                    [incident.pk],
                )
                delete_plan = [row[0] for row in cursor.fetchall()]
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, sql_params)
                insert_plan = [row[0] for row in cursor.fetchall()]
                transaction.set_rollback(True)
            log("  EXPLAIN (ANALYZE, BUFFERS) of the project's DELETE + INSERT (rolled back):")
            for line in [*delete_plan, *insert_plan]:
                log(f"    {line}")

        # The timed rounds, alternating who goes first.
        timings: dict[str, list[float]] = {"ours": [], "bare": []}
        sides = {"ours": ours, "bare": bare}
        bare_phases.clear()
        for round_ in range(args.rounds):
            order = ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours")
            for side in order:
                vacuum()
                timings[side].append(sides[side]())
                if checksum() != reference:
                    raise SystemExit(f"{side} left different rows: {checksum()} vs {reference}")

        ours_s = statistics.median(timings["ours"])
        bare_s = statistics.median(timings["bare"])
        log(f"  ours (tailnet_impacts_recompute, incl. COMMIT): {spread(timings['ours'], secs)}")
        log(f"  bare (BEGIN; DELETE; INSERT ... SELECT; COMMIT): {spread(timings['bare'], secs)}")
        phases = [rec.phases(total) for total, rec in instrumented]
        log(
            f"  where ours goes (median of {len(phases)} instrumented runs): "
            + ", ".join(
                f"{name} {ms(statistics.median(p[name] for p in phases))}" for name in phases[0]
            )
        )
        log(
            "  where bare goes: "
            + ", ".join(
                f"{name} {ms(statistics.median(p[name] for p in bare_phases))}"
                for name in ("delete", "insert", "commit")
            )
        )
        ratio = ours_s / bare_s
        log(f"  target ≤ {IMPACT_TARGET}: {'met' if ratio <= IMPACT_TARGET else 'MISSED'}")
        return ours_s, bare_s
    finally:
        bench_incidents_delete()


def secs(seconds: float) -> str:
    return f"{seconds:.4f} s"


# --- (b) one tailnet's history -----------------------------------------------------------


def measure_history(args: argparse.Namespace, meta: dict[str, Any], raw: psycopg.Connection):
    from django.db import connection

    from incidents.models import Placement
    from incidents.queries import tailnet_incident_history

    now = datetime.fromisoformat(meta["now"])
    since = now - timedelta(days=90)
    counts = meta["designated_impact_rows"]
    if args.tailnet:
        tailnet_id = args.tailnet
    else:  # the designated tailnet with the median number of rows
        tailnet_id = int(sorted(counts, key=lambda t: (counts[t], int(t)))[len(counts) // 2])
    migrations = Placement.objects.filter(tailnet_id=tailnet_id, starts_at__gt=since).count()
    params = {"tailnet": tailnet_id, "since": since}

    def ours() -> tuple[float, list[int]]:
        started = time.perf_counter()
        history = tailnet_incident_history(tailnet_id=tailnet_id, since=since, as_of=now)
        elapsed = time.perf_counter() - started
        return elapsed, [w.pk for item in history for w in item.windows]

    def bare() -> tuple[float, list[int]]:
        started = time.perf_counter()
        with raw.cursor() as cursor:
            cursor.execute(BARE_HISTORY, params)
            rows = cursor.fetchall()
        elapsed = time.perf_counter() - started
        return elapsed, [row[0] for row in rows]

    _, ours_ids = ours()
    _, bare_ids = bare()
    if sorted(ours_ids) != sorted(bare_ids):
        raise SystemExit(f"history: ours returned {ours_ids}, bare SQL {bare_ids}")
    incidents = len(
        {
            w.incident_id
            for item in tailnet_incident_history(tailnet_id=tailnet_id, since=since)
            for w in item.windows
        }
    )
    log(
        f"(b) history: tailnet {tailnet_id} ({migrations} migrations since {since:%Y-%m-%d}),"
        f" {len(bare_ids)} TailnetImpact rows in {incidents} published incidents"
    )
    for _ in range(10):
        ours()
        bare()
    timings: dict[str, list[float]] = {"ours": [], "bare": []}
    sides = {"ours": ours, "bare": bare}
    for run in range(args.runs):
        for side in ("ours", "bare") if run % 2 == 0 else ("bare", "ours"):
            timings[side].append(sides[side]()[0])

    ours_s = statistics.median(timings["ours"])
    bare_s = statistics.median(timings["bare"])
    log(f"  ours (tailnet_incident_history, materialised): {spread(timings['ours'], ms)}")
    log(f"  bare (SELECT ... JOIN ... ORDER BY, fetchall): {spread(timings['bare'], ms)}")

    # Where ours goes: the very SQL it sent, run through Django's cursor and through bare
    # psycopg. ours - django = building and compiling the query, model instances,
    # grouping; django - psycopg = Django's cursor layer, mostly its timestamptz loader
    # (pure Python, where psycopg's own is C).
    recorder = Recorder()
    with connection.execute_wrapper(recorder):
        ours()
    queries = [(sql, sql_params) for sql, sql_params, _ in recorder.statements]

    def through_django() -> float:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for sql, sql_params in queries:
                cursor.execute(sql, sql_params)
                cursor.fetchall()
        return time.perf_counter() - started

    def through_psycopg() -> float:
        started = time.perf_counter()
        with raw.cursor() as cursor:
            for sql, sql_params in queries:
                cursor.execute(sql, sql_params)
                cursor.fetchall()
        return time.perf_counter() - started

    parts: dict[str, list[float]] = {"ours": [], "django": [], "psycopg": []}
    probes = {"ours": lambda: ours()[0], "django": through_django, "psycopg": through_psycopg}
    for _ in range(max(10, args.runs // 2)):
        for name, probe in probes.items():
            parts[name].append(probe())
    ours_m, django_m, psycopg_m = (statistics.median(parts[n]) for n in probes)
    datetimes = sum(
        isinstance(value, datetime)
        for sql, sql_params in queries
        for row in _fetch(raw, sql, sql_params)
        for value in row
    )
    log(
        f"  where ours goes ({len(queries)} quer{'y' if len(queries) == 1 else 'ies'},"
        f" {datetimes} timestamptz values; medians of {len(parts['ours'])} interleaved runs):"
    )
    log(f"    its SQL through bare psycopg       {ms(psycopg_m):>10}")
    log(
        f"    the same through Django's cursor   {ms(django_m):>10}  (+{ms(django_m - psycopg_m)}:"
        " Django's cursor layer, mostly its pure-Python timestamptz loader)"
    )
    log(
        f"    tailnet_incident_history           {ms(ours_m):>10}  (+{ms(ours_m - django_m)}:"
        " building and compiling the query, model instances, grouping)"
    )
    ratio = ours_s / bare_s
    log(f"  target ≤ {HISTORY_TARGET}: {'met' if ratio <= HISTORY_TARGET else 'MISSED'}")
    return ours_s, bare_s


def _fetch(raw: psycopg.Connection, sql: str, params: Any) -> list[tuple]:
    with raw.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def migrations_unapplied() -> list[str]:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few rounds only (CI)")
    parser.add_argument("--rounds", type=int, help="recompute rounds per side (default 7)")
    parser.add_argument("--runs", type=int, help="history runs per side (default 200)")
    parser.add_argument("--tailnet", type=int, help="history of this tailnet id instead")
    parser.add_argument(
        "--no-explain", dest="explain", action="store_false", help="skip EXPLAIN ANALYZE"
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.smoke else 7)
    args.runs = args.runs or (20 if args.smoke else 200)
    args.explain_runs = 1 if args.smoke else 3

    url = database_url()
    setup_django(url)
    from django.db import connection

    with connection.cursor() as cursor:
        meta = meta_read(cursor)
        if meta is None:
            log(f"No dataset in {connection.settings_dict['NAME']}: run `make bench-data` first.")
            return 2
        cursor.execute("SELECT count(*) FROM incidents_placement")
        placements = cursor.fetchone()[0]
    unapplied = migrations_unapplied()
    if unapplied:
        log(
            f"WARNING: {len(unapplied)} migration(s) not applied to this database"
            f" ({', '.join(unapplied)}): `make bench-data` applies them and keeps the data."
        )
    log(
        f"dataset {connection.settings_dict['NAME']}: {meta['tailnets']:,} tailnets,"
        f" {placements:,} placements on {meta['shards']} shards over {meta['days']} days"
        f" to {meta['now'][:10]}; {meta['incidents']} historic incidents"
    )
    log(f"load average before: {load()} ({os.cpu_count()} CPUs)")
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as raw:
        raw.execute("SET TimeZone = 'UTC'")
        impact = measure_impact(args, meta, raw)
        history = measure_history(args, meta, raw)
    log(
        f"impact: ours={impact[0]:.4f}s baseline={impact[1]:.4f}s ratio={impact[0] / impact[1]:.2f}"
    )
    log(
        f"history: ours={history[0] * 1000:.3f}ms baseline={history[1] * 1000:.3f}ms"
        f" ratio={history[0] / history[1]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
