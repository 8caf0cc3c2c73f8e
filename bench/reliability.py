"""The 12-month public reliability report and one tailnet's SLA statement on the
1M-tailnet dataset extended to 500 incidents over 12 months, against bare SQL.

    make bench-data          # once: the dataset (bench/data.py)
    make bench-reliability   # this; the first run also builds the extended copy

The dataset holds 90 days of incidents; the report spans 12 months. So the script works
on a copy of the dataset database, ``<dataset>_reliability`` (``CREATE DATABASE …
TEMPLATE <dataset> STRATEGY FILE_COPY``: PostgreSQL copies only while nobody else is
connected to the dataset, so it waits for that, ``--wait-alone`` seconds, and never
disconnects anyone), migrated with ``manage.py migrate`` on every run (the dataset may
be behind the tree; only the copy is migrated), and extended there, once:

- published incidents added until there are ``--incidents`` (500) that started in the
  12 months (the first day of the month 11 months before the dataset's "now" month, to
  "now"): 90 % incidents (minor and major mostly, some critical, a few of impact none
  without windows; a quarter change level mid-way; detection time on 85 %), 10 %
  maintenance (two thirds with impact windows, a third of those overrunning their
  scheduled window, some starting early; 70 % announced at least 48 hours before their
  scheduled start, some exactly 48 hours); 1-5 shards of one region each, windows of
  minutes to hours, 2-5 updates each, postmortems with follow-ups on some; a few
  incidents steered onto the shard the SLA tailnet (below) was on;
- monitoring gaps (minutes to hours, never overlapping on a shard), some on the SLA
  tailnet's shard, some inside incident windows;
- their TailnetImpact rows, by one bare ``INSERT … SELECT`` from the placements with
  the expressions of ``incidents.services.tailnet_impacts_recompute`` (which would take
  minutes one incident at a time); two incidents (a level change, a maintenance) are
  then rebuilt by the product's function and must come out identical (count + md5);
- an SLA policy: the default, target 99.9 %, credit tiers 99.9 -> 10 %, 99 -> 25 %,
  95 -> 50 %, maintenance announced 48 h ahead excluded.

The extension ends with a ``reliability`` row in the copy's ``bench_meta`` (its sizes,
the dataset row it was built from). Later runs reuse the copy while that row matches
the dataset's (a rebuilt dataset, a different ``--incidents`` or a newer version of this
script's generator makes them rebuild it); ``--rebuild`` forces it, ``--drop`` drops
the copy at the end. The dataset itself is only read.

reliability: ``reliability.queries.reliability_report(first=, last=, now=)`` for the 12
    months ending with the dataset's "now" month, as of "now", called in this process
    (Django set up against the copy, DEBUG off, the file cache in a temporary directory,
    cleared before each call: "cache empty"). Baseline: a plain psycopg connection
    running two hand-written statements for the same figures (per month: incidents by
    impact; duration, detection, first update and resolution: measured, missing, total,
    median, worst; blast radius; follow-ups; tailnet-seconds with data, at outage,
    partial and degraded, a second counted once per tailnet at its worst level, through
    PostgreSQL multiranges; fleet uptime). One untimed call on each side, then
    ``--rounds`` rounds alternating who goes first; medians. Ours must equal the
    baseline, month by month, or the script fails.
tailnet-sla: ``reliability.tailnet.tailnet_sla(tailnet_id=, first=, last=, now=)`` for
    bench/data.py's designated tailnet with the median number of impact rows (20
    migrations in the last 90 days), against one bare statement (multiranges: placed
    seconds less its shards' monitoring gaps less announced maintenance, plus every
    second of a counted impact at its worst level; uptime; credit tier). ``--runs``
    runs each, alternating, cache cleared before each; medians; months, tallies,
    uptimes and credits must be equal.

The last two lines are ``reliability: ours=<s>s baseline=<s>s ratio=<r>`` and
``tailnet-sla: ours=<ms>ms baseline=<ms>ms ratio=<r>`` (ratio = ours / baseline, target
≤ 2 each, reported, not enforced). ``--smoke`` builds 80 incidents and runs 2 rounds
(CI).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import META_TABLE, meta_read
from bench import database_url as dataset_url
from bench.fleet import Copies, connect, django_close, django_env, django_setup, migrate
from bench.httpload import wait_for_idle_cpu

TARGET = 2.0
# Bump when the generated extension changes: copies built by another version are rebuilt.
GENERATOR = 1
STAMP_KEY = "reliability"
TITLE = "bench/reliability.py"
MONTHS = 12
MINUTE, HOUR, DAY = 60, 3600, 86400
LEVEL_STATUS = {
    "outage": "major_outage",
    "partial": "partial_outage",
    "degraded": "degraded_performance",
}
POLICY_NAME = "bench/reliability.py default"
POLICY_TARGET = Decimal("99.900")
POLICY_NOTICE_HOURS = 48
POLICY_TIERS = [
    (Decimal("99.900"), Decimal("10")),
    (Decimal("99"), Decimal("25")),
    (Decimal("95"), Decimal("50")),
]


def log(message: str = "") -> None:
    print(message, flush=True)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def epoch(value: datetime) -> int:
    return math.floor(value.timestamp())


def month_start(index: int) -> datetime:
    year, month = divmod(index, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


def month_index(value: datetime) -> int:
    value = value.astimezone(UTC)
    return value.year * 12 + value.month - 1


# --- The copy ----------------------------------------------------------------------------


class ReliabilityCopy(Copies):
    """The one copy this benchmark keeps: ``<dataset>_reliability``."""

    def name(self, suffix: str) -> str:
        return f"{self.template}_{suffix}"

    def drop_all(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            ident = sql.Identifier(self.name("reliability"))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))


def one(cursor: Any) -> tuple[Any, ...]:
    """The one row a statement returns."""
    row = cursor.fetchone()
    if row is None:
        raise SystemExit("a statement returned no row")
    return tuple(row)


def stamp_read(url: str) -> dict[str, Any] | None:
    """The copy's ``reliability`` row, or None (no copy, or an unfinished build)."""
    try:
        conn = connect(url)
    except psycopg.OperationalError:
        return None
    with conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [META_TABLE]).fetchone()
        if not row or not row[0]:
            return None
        found = conn.execute(
            f"SELECT value FROM {META_TABLE} WHERE key = %s",
            [STAMP_KEY],
        ).fetchone()
    if found is None:
        return None
    value = found[0]
    return json.loads(value) if isinstance(value, str) else value


def stamp_write(url: str, stamp: dict[str, Any]) -> None:
    with connect(url) as conn:
        conn.execute(
            f"INSERT INTO {META_TABLE} (key, value, written_at) VALUES (%s, %s, now())"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, written_at = now()",
            [STAMP_KEY, json.dumps(stamp)],
        )


# --- The extension: planned in Python, seeded ------------------------------------------


@dataclass
class Planned:
    kind: str
    impact: str
    region: str
    start: int
    resolved: int
    published_at: int
    detected: int | None = None
    scheduled: tuple[int, int] | None = None
    # (shard_id, level, starts_at, ends_at)
    windows: list[tuple[int, str, int, int]] = field(default_factory=list)
    updates: list[tuple[str, int]] = field(default_factory=list)
    postmortem_at: int | None = None
    follow_ups: list[int | None] = field(default_factory=list)  # done at, or None: open
    steered: bool = False


@dataclass
class Fleet:
    by_region: dict[str, list[int]]
    region_of: dict[int, str]
    # The SLA tailnet's placements: (starts, ends or None, shard)
    stays: list[tuple[int, int | None, int]]

    def shard_of_subject(self, when: int) -> int | None:
        for starts, ends, shard in self.stays:
            if starts <= when and (ends is None or when < ends):
                return shard
        return None


def _duration(rng: random.Random) -> int:
    bucket = rng.random()
    if bucket < 0.5:
        return rng.randrange(5 * MINUTE, 30 * MINUTE)
    if bucket < 0.85:
        return rng.randrange(30 * MINUTE, 2 * HOUR)
    return rng.randrange(2 * HOUR, 8 * HOUR)


def _shards(rng: random.Random, fleet: Fleet, count: int, start: int, steer: bool):
    """``count`` shards of one region; with ``steer``, one of them the SLA tailnet's."""
    forced = fleet.shard_of_subject(start) if steer else None
    region = fleet.region_of[forced] if forced else rng.choice(sorted(fleet.by_region))
    peers = fleet.by_region[region]
    count = min(count, len(peers))
    if forced is None:
        return region, rng.sample(peers, count), False
    others = [s for s in peers if s != forced]
    return region, [forced, *rng.sample(others, count - 1)], True


def plan_incident(rng: random.Random, fleet: Fleet, start: int, now: int) -> Planned:
    bucket = rng.random()
    impact = (
        "critical"
        if bucket < 0.08
        else "major"
        if bucket < 0.43
        else "minor"
        if bucket < 0.93
        else "none"
    )
    if impact == "none":  # something customers noticed, no shard hit
        length = rng.randrange(10 * MINUTE, 2 * HOUR)
        region = rng.choice(sorted(fleet.by_region))
        planned = Planned("incident", impact, region, start, start + length, start)
    else:
        first_level = {
            "critical": "outage",
            "major": "outage" if rng.random() < 0.6 else "partial",
            "minor": "partial" if rng.random() < 0.4 else "degraded",
        }[impact]
        change = rng.random() < 0.25
        second_level = rng.choice([lv for lv in LEVEL_STATUS if lv != first_level])
        count = rng.choices([1, 2, 3, 4, 5], weights=[30, 25, 20, 15, 10])[0]
        region, shards, steered = _shards(rng, fleet, count, start, rng.random() < 0.04)
        base = _duration(rng)
        windows = []
        for n, shard in enumerate(shards):
            a = start + (0 if n == 0 else rng.randrange(0, 5 * MINUTE))
            b = a + max(2 * MINUTE, int(base * rng.uniform(0.8, 1.2)))
            if change:
                mid = a + int((b - a) * rng.uniform(0.3, 0.7))
                windows += [(shard, first_level, a, mid), (shard, second_level, mid, b)]
            else:
                windows.append((shard, first_level, a, b))
        last = max(b for *_, b in windows)
        planned = Planned(
            "incident",
            impact,
            region,
            start,
            last + rng.randrange(0, 20 * MINUTE),
            start,
            windows=windows,
            steered=steered,
        )
    span = planned.resolved - start
    if rng.random() < 0.85:
        planned.detected = start + min(rng.randrange(30, 15 * MINUTE), span // 3)
        planned.published_at = planned.detected + min(rng.randrange(MINUTE, 10 * MINUTE), span // 3)
    else:
        planned.published_at = start + min(rng.randrange(5 * MINUTE, 30 * MINUTE), span // 2)
    middle = sorted(
        rng.randrange(planned.published_at, planned.resolved) for _ in range(rng.randrange(0, 4))
    )
    planned.updates = [
        ("investigating", planned.published_at),
        *zip(["identified", "monitoring", "monitoring"], middle, strict=False),
        ("resolved", planned.resolved),
    ]
    if impact in ("major", "critical") and rng.random() < 0.2:
        written = planned.resolved + rng.randrange(1, 8) * DAY
        if written < now:
            planned.postmortem_at = written
            for _ in range(rng.randrange(1, 4)):
                done = written + rng.randrange(1, 30) * DAY
                planned.follow_ups.append(done if done < now and rng.random() < 0.5 else None)
    return planned


def plan_maintenance(rng: random.Random, fleet: Fleet, start: int) -> Planned:
    since = start - start % (15 * MINUTE)
    until = since + rng.choice([1, 2, 3, 4]) * HOUR
    bucket = rng.random()
    if bucket < 0.6:
        notice = rng.randrange(48 * HOUR + 1, 10 * DAY)
    elif bucket < 0.7:
        notice = 48 * HOUR  # exactly the policy's notice: excluded
    else:
        notice = rng.randrange(HOUR, 48 * HOUR)
    region = rng.choice(sorted(fleet.by_region))
    planned = Planned(
        "maintenance", "maintenance", region, since, until, since - notice, scheduled=(since, until)
    )
    if rng.random() < 2 / 3:
        level = rng.choices(["degraded", "partial", "outage"], weights=[50, 35, 15])[0]
        count = rng.choice([1, 2, 3])
        region, shards, planned.steered = _shards(rng, fleet, count, since, rng.random() < 0.35)
        planned.region = region
        for shard in shards:
            a = since + rng.randrange(0, 20 * MINUTE)
            if rng.random() < 0.15:  # started early
                a = since - rng.randrange(5 * MINUTE, 20 * MINUTE)
            b = until - rng.randrange(0, 20 * MINUTE)
            if rng.random() < 0.3:  # overran its window
                b = until + rng.randrange(10 * MINUTE, 60 * MINUTE)
            planned.windows.append((shard, level, a, max(b, a + 5 * MINUTE)))
        planned.resolved = max(until, *(b for *_, b in planned.windows))
    planned.updates = [
        ("scheduled", planned.published_at),
        ("in_progress", since),
        ("completed", planned.resolved),
    ]
    return planned


def plan_gaps(
    rng: random.Random, fleet: Fleet, planned: list[Planned], lo: int, hi: int, count: int
) -> list[tuple[int, int, int]]:
    """Monitoring gaps (shard, starts, ends), never overlapping on one shard: a quarter on
    the SLA tailnet's shard, a quarter inside an incident's window, the rest anywhere."""
    taken: dict[int, list[tuple[int, int]]] = {}
    gaps: list[tuple[int, int, int]] = []
    with_windows = [p for p in planned if p.windows]
    shards = sorted(fleet.region_of)
    while len(gaps) < count:
        kind = rng.random()
        bucket = rng.random()
        length = (
            rng.randrange(2 * MINUTE, 20 * MINUTE)
            if bucket < 0.6
            else rng.randrange(20 * MINUTE, 90 * MINUTE)
            if bucket < 0.9
            else rng.randrange(90 * MINUTE, 4 * HOUR)
        )
        shard: int | None
        if kind < 0.25 and with_windows:
            shard, _, a, b = rng.choice(rng.choice(with_windows).windows)
            start = rng.randrange(a - length // 2, b)
        else:
            start = rng.randrange(lo, hi - 2 * length)
            shard = fleet.shard_of_subject(start) if kind < 0.5 else rng.choice(shards)
        end = start + length
        if shard is None or start < lo or end >= hi:
            continue
        if any(s < end and start < e for s, e in taken.get(shard, [])):
            continue
        taken.setdefault(shard, []).append((start, end))
        gaps.append((shard, start, end))
    return gaps


def plan_extension(
    seed: int, fleet: Fleet, *, count: int, lo: int, now: int, gaps: int
) -> tuple[list[Planned], list[tuple[int, int, int]]]:
    rng = random.Random(f"{seed}/reliability/{GENERATOR}")
    planned = []
    for _ in range(count):
        start = rng.randrange(lo, now - 2 * DAY)
        if rng.random() < 0.1:
            planned.append(plan_maintenance(rng, fleet, start))
        else:
            planned.append(plan_incident(rng, fleet, start, now))
    return planned, plan_gaps(rng, fleet, planned, lo, now, gaps)


# The product's expressions (incidents/services/recompute.py), for all new incidents at once.
IMPACTS_INSERT = """
    INSERT INTO incidents_tailnetimpact
        (incident_id, shard_impact_id, tailnet_id, shard_id, level, starts_at, ends_at, seconds)
    SELECT si.incident_id, si.id, p.tailnet_id, si.shard_id, si.level,
           GREATEST(p.starts_at, si.starts_at),
           LEAST(p.ends_at, si.ends_at),
           GREATEST(0, EXTRACT(EPOCH FROM
               date_trunc('second', COALESCE(LEAST(p.ends_at, si.ends_at), %(as_of)s))
               - date_trunc('second', GREATEST(p.starts_at, si.starts_at))))::bigint
    FROM incidents_shardimpact si
    JOIN incidents_placement p
      ON p.shard_id = si.shard_id
     AND tstzrange(p.starts_at, p.ends_at) && tstzrange(si.starts_at, si.ends_at)
    WHERE si.incident_id = ANY(%(ids)s)
"""
CHECKSUM = """
    SELECT count(*), coalesce(md5(string_agg(
        concat_ws('|', shard_impact_id, tailnet_id, shard_id, level, starts_at, ends_at, seconds),
        ',' ORDER BY shard_impact_id, tailnet_id, starts_at)), '-')
    FROM incidents_tailnetimpact WHERE incident_id = %s
"""


def subject_pick(meta: dict[str, Any], chosen: int | None) -> int:
    """bench/data.py's designated tailnet with the median number of impact rows (as
    bench/impact.py and bench/tailnet.py pick it), unless one is given."""
    if chosen is not None:
        return chosen
    counts = meta["designated_impact_rows"]
    return int(sorted(counts, key=lambda t: (counts[t], int(t)))[len(counts) // 2])


def fleet_read(conn: psycopg.Connection, subject: int) -> Fleet:
    shards = conn.execute(
        "SELECT id, region FROM incidents_shard WHERE active ORDER BY id"
    ).fetchall()
    by_region: dict[str, list[int]] = {}
    for shard_id, region in shards:
        by_region.setdefault(region, []).append(shard_id)
    stays = [
        (epoch(s), None if e is None else epoch(e), shard)
        for s, e, shard in conn.execute(
            "SELECT starts_at, ends_at, shard_id FROM incidents_placement"
            " WHERE tailnet_id = %s ORDER BY starts_at",
            [subject],
        )
    ]
    return Fleet(by_region=by_region, region_of=dict(shards), stays=stays)


def extend(
    url: str, meta: dict[str, Any], args: argparse.Namespace, subject: int
) -> dict[str, Any]:
    """Add the incidents, gaps and impact rows to the copy (Django is set up against
    it). Returns the stamp."""
    from django.db import connection, transaction

    from incidents.models import (
        Component,
        FollowUp,
        Incident,
        IncidentComponent,
        IncidentUpdate,
        MonitoringGap,
        ShardImpact,
    )
    from incidents.services import tailnet_impacts_recompute

    started = time.perf_counter()
    now_dt = datetime.fromisoformat(meta["now"])
    now = epoch(now_dt)
    last = month_index(now_dt)
    first = last - MONTHS + 1
    lo = epoch(month_start(first))
    with connect(url) as conn:
        fleet = fleet_read(conn, subject)
        existing = one(
            conn.execute(
                "SELECT count(*) FROM incidents_incident"
                " WHERE published AND started_at >= %s AND started_at < %s",
                [at(lo), now_dt],
            )
        )[0]
    wanted = max(0, args.incidents - existing)
    planned, gaps = plan_extension(
        meta["seed"], fleet, count=wanted, lo=lo, now=now, gaps=max(20, args.incidents // 4)
    )
    components = {c.region: c for c in Component.objects.filter(kind="coordination")}
    with transaction.atomic():
        incidents = Incident.objects.bulk_create(
            Incident(
                title=f"{TITLE}: {'maintenance' if p.kind == 'maintenance' else 'incident'}"
                f" #{n} on {len({s for s, *_ in p.windows})} {p.region} shard(s)",
                kind=p.kind,
                status=(
                    "completed"
                    if p.kind == "maintenance"
                    else "postmortem"
                    if p.postmortem_at
                    else "resolved"
                ),
                impact=p.impact,
                source="manual" if p.detected is None else "probe",
                published=True,
                published_at=at(p.published_at),
                started_at=at(p.start),
                detected_at=None if p.detected is None else at(p.detected),
                resolved_at=at(p.resolved),
                scheduled_for=None if p.scheduled is None else at(p.scheduled[0]),
                scheduled_until=None if p.scheduled is None else at(p.scheduled[1]),
                postmortem=(
                    "## What happened\n\nA coordination shard stopped answering.\n"
                    if p.postmortem_at
                    else ""
                ),
                postmortem_published_at=None if p.postmortem_at is None else at(p.postmortem_at),
                created_at=at(min(p.start, p.published_at)),
                updated_at=at(p.resolved),
                impacts_changed_at=at(p.resolved),
            )
            for n, p in enumerate(planned, start=1)
        )
        pairs = list(zip(incidents, planned, strict=True))
        ShardImpact.objects.bulk_create(
            ShardImpact(incident=i, shard_id=s, level=lv, starts_at=at(a), ends_at=at(b))
            for i, p in pairs
            for s, lv, a, b in p.windows
        )
        IncidentComponent.objects.bulk_create(
            IncidentComponent(
                incident=i,
                component=components[p.region],
                status="under_maintenance"
                if p.kind == "maintenance"
                else LEVEL_STATUS[
                    max(
                        (w[1] for w in p.windows),
                        default="degraded",
                        key=list(LEVEL_STATUS)[::-1].index,
                    )
                ],
            )
            for i, p in pairs
        )
        IncidentUpdate.objects.bulk_create(
            IncidentUpdate(
                incident=i,
                status=status,
                body=f"{status.replace('_', ' ').capitalize()}.",
                created_at=at(when),
                display_at=at(when),
            )
            for i, p in pairs
            for status, when in p.updates
        )
        FollowUp.objects.bulk_create(
            FollowUp(
                incident=i,
                text="Alert on the shard's heartbeat, not only on probes.",
                owner="Coordination team",
                status="open" if done is None else "done",
                done_on=None if done is None else at(done).date(),
                created_at=at(p.postmortem_at or p.resolved),
                updated_at=at(done or p.postmortem_at or p.resolved),
            )
            for i, p in pairs
            for done in p.follow_ups
        )
        MonitoringGap.objects.bulk_create(
            MonitoringGap(shard_id=s, starts_at=at(a), ends_at=at(b)) for s, a, b in gaps
        )
        ids = [i.pk for i, p in pairs if p.windows]
        impacts_started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(IMPACTS_INSERT, {"ids": ids, "as_of": now_dt})
            rows = cursor.rowcount
            cursor.execute(
                "UPDATE incidents_incident SET impacts_computed_at = %s WHERE id = ANY(%s)",
                [now_dt, ids],
            )
        impacts_seconds = time.perf_counter() - impacts_started
    log(
        f"  {len(planned)} incidents added to the {existing} published ones"
        f" ({sum(p.kind == 'maintenance' for p in planned)} maintenance,"
        f" {sum(1 for p in planned if p.windows)} with windows,"
        f" {sum(len(p.windows) for p in planned)} windows), {len(gaps)} monitoring gaps,"
        f" {rows:,} TailnetImpact rows (INSERT … SELECT {impacts_seconds:.1f} s)"
    )
    with connect(url) as conn:
        vacuum_started = time.perf_counter()
        conn.execute(
            "VACUUM (ANALYZE) incidents_incident, incidents_shardimpact, incidents_tailnetimpact,"
            " incidents_incidentupdate, incidents_incidentcomponent, incidents_followup,"
            " incidents_monitoringgap"
        )
        log(f"  VACUUM ANALYZE in {time.perf_counter() - vacuum_started:.1f} s")

    # The bare load must be what the product derives: rebuild two incidents with it.
    changing = [i.pk for i, p in pairs if len({w[1] for w in p.windows}) > 1]
    overrun = [
        i.pk
        for i, p in pairs
        if p.scheduled and p.windows and max(w[3] for w in p.windows) > p.scheduled[1]
    ]
    checked = []
    for incident_id in (changing[:1] + overrun[:1]) or ids[:1]:
        with connection.cursor() as cursor:
            cursor.execute(CHECKSUM, [incident_id])
            bare = one(cursor)
            tailnet_impacts_recompute(incident_id=incident_id, as_of=now_dt)
            cursor.execute(CHECKSUM, [incident_id])
            product = one(cursor)
        if bare != product:
            raise SystemExit(
                f"FAIL: incident {incident_id}: the bare load left {bare}, the product's"
                f" tailnet_impacts_recompute {product}"
            )
        checked.append(incident_id)
        log(
            f"  incident {incident_id}: {bare[0]:,} rows, identical to"
            " tailnet_impacts_recompute's (count + md5)"
        )
    with connect(url) as conn:
        conn.execute("CHECKPOINT")
        total = one(
            conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE kind = 'maintenance')"
                " FROM incidents_incident WHERE published AND started_at >= %s"
                " AND started_at < %s",
                [at(lo), now_dt],
            )
        )
        impact_rows = one(conn.execute("SELECT count(*) FROM incidents_tailnetimpact"))[0]
    return {
        "generator": GENERATOR,
        "incidents_wanted": args.incidents,
        "dataset": meta,
        "subject": subject,
        "published_incidents": total[0],
        "maintenance": total[1],
        "added_incidents": len(planned),
        "added_windows": sum(len(p.windows) for p in planned),
        "gaps": len(gaps),
        "added_tailnet_impacts": rows,
        "tailnet_impacts": impact_rows,
        "checked_against_recompute": checked,
        "build_seconds": round(time.perf_counter() - started, 1),
    }


def copy_ensure(
    copy: ReliabilityCopy, meta: dict[str, Any], args: argparse.Namespace, env: dict[str, str]
) -> tuple[str, dict[str, Any] | None]:
    """The copy's URL, migrated; and its stamp if it is there and current (None: the
    caller extends it)."""
    url = copy.url_of(copy.name("reliability"))
    stamp = None if args.rebuild else stamp_read(url)
    current = (
        stamp is not None
        and stamp.get("generator") == GENERATOR
        and stamp.get("incidents_wanted") == args.incidents
        and stamp.get("dataset") == meta
        and stamp.get("subject") == subject_pick(meta, args.tailnet)
    )
    if not current:
        if stamp is not None or args.rebuild:
            log("  the copy is stale (or --rebuild): building it again")
        started = time.perf_counter()
        copy.drop_all()
        url = copy.make("reliability")
        log(f"  copy made in {time.perf_counter() - started:.1f} s")
        stamp = None
    applied = migrate(url, env)
    if applied:
        log(f"  migrations applied to the copy: {', '.join(applied)}")
    return url, stamp


def policy_ensure() -> bool:
    """The default SLA policy in the copy (idempotent); False if the tree has none of
    reliability's SLA models or tailnet_sla yet."""
    try:
        from reliability.models import SlaCreditTier, SlaPolicy
        from reliability.tailnet import tailnet_sla  # noqa: F401 - its presence is the check
    except ImportError as error:
        log(f"  tailnet-sla: not measured, reliability.tailnet.tailnet_sla is missing ({error})")
        return False
    from django.db import connection, transaction

    if SlaPolicy._meta.db_table not in connection.introspection.table_names():
        log("  tailnet-sla: not measured, the SLA tables are not migrated")
        return False
    with transaction.atomic():
        SlaPolicy.objects.filter(is_default=True).exclude(name=POLICY_NAME).update(is_default=False)
        policy, _ = SlaPolicy.objects.update_or_create(
            name=POLICY_NAME,
            defaults={
                "target_percent": POLICY_TARGET,
                "maintenance_notice_hours": POLICY_NOTICE_HOURS,
                "is_default": True,
            },
        )
        policy.tiers.all().delete()
        SlaCreditTier.objects.bulk_create(
            SlaCreditTier(policy=policy, below_percent=below, credit_percent=credit)
            for below, credit in POLICY_TIERS
        )
    return True


# --- reliability: the report against bare SQL --------------------------------------------

# The months of the range, as whole epoch seconds, the last one cut at "now" (hi).
MONTHS_CTE = """
months AS (
    SELECT %(first)s + g AS idx,
           extract(epoch FROM %(start)s::timestamptz + make_interval(months => g))::bigint AS ms,
           GREATEST(
               extract(epoch FROM %(start)s::timestamptz + make_interval(months => g))::bigint,
               LEAST(extract(epoch FROM %(start)s::timestamptz
                                        + make_interval(months => g + 1))::bigint, %(hi)s)
           ) AS me
    FROM generate_series(0, %(last)s - %(first)s) AS g
)"""

# The seconds of a multirange of epoch seconds.
LEN = "(SELECT COALESCE(SUM(upper(x) - lower(x)), 0) FROM unnest({}) AS x)"
EMPTY = "'{}'::int8multirange"


def sec(column: str) -> str:
    return f"floor(extract(epoch FROM {column}))::bigint"


def since(start: str, end: str) -> str:
    """Whole seconds from ``start`` to ``end`` (each cut to its second), never negative;
    NULL when ``end`` is."""
    return f"CASE WHEN {end} IS NULL THEN NULL ELSE GREATEST(0, {sec(end)} - {sec(start)}) END"


def spread(column: str) -> str:
    return (
        f"count(f.{column}), count(f.id) - count(f.{column}), COALESCE(sum(f.{column}), 0),"
        f" percentile_cont(0.5) WITHIN GROUP (ORDER BY f.{column}), max(f.{column})"
    )


BARE_INCIDENTS = f"""
WITH {MONTHS_CTE},
inc AS (
    SELECT i.id, i.impact, i.started_at, i.detected_at, i.resolved_at, i.published_at,
           w.n AS windows, w.first_start, w.last_end, w.open,
           u.first_update,
           CASE WHEN i.postmortem_published_at IS NOT NULL AND i.postmortem <> ''
                THEN fu.open ELSE 0 END AS fu_open,
           CASE WHEN i.postmortem_published_at IS NOT NULL AND i.postmortem <> ''
                THEN fu.done ELSE 0 END AS fu_done
    FROM incidents_incident i
    CROSS JOIN LATERAL (
        SELECT count(*) AS n, min(starts_at) AS first_start, max(ends_at) AS last_end,
               count(*) FILTER (WHERE ends_at IS NULL) AS open
        FROM incidents_shardimpact WHERE incident_id = i.id
    ) w
    CROSS JOIN LATERAL (
        SELECT min(display_at) AS first_update FROM incidents_incidentupdate
        WHERE incident_id = i.id
    ) u
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE status = 'open') AS open,
               count(*) FILTER (WHERE status = 'done') AS done
        FROM incidents_followup WHERE incident_id = i.id
    ) fu
    WHERE i.published AND i.started_at >= %(start)s AND i.started_at < %(end)s
      AND (i.kind = 'incident' OR w.n > 0)
),
spans AS (
    SELECT inc.*,
           LEAST(started_at, COALESCE(first_start, started_at)) AS s0,
           CASE WHEN windows = 0 THEN COALESCE(resolved_at, %(now)s)
                WHEN open > 0 THEN %(now)s
                ELSE GREATEST(last_end, COALESCE(resolved_at, last_end)) END AS e0,
           CASE WHEN published_at IS NULL THEN first_update
                ELSE GREATEST(first_update, published_at) END AS heard
    FROM inc
),
f AS (
    SELECT id, impact, windows, s0, e0, fu_open, fu_done,
           (extract(year FROM started_at) * 12 + extract(month FROM started_at) - 1)::int AS idx,
           {since("s0", "GREATEST(s0, e0)")} AS duration,
           {since("s0", "detected_at")} AS detect,
           {since("s0", "CASE WHEN first_update IS NULL THEN NULL ELSE heard END")}
               AS first_update,
           {since("s0", "resolved_at")} AS resolve
    FROM spans
),
-- Blast radius: distinct tailnets hit, of those that existed during the window (created
-- before it ended, less those deleted by the time it started). The tailnets are read once:
-- each falls in a bucket of the sorted window ends (width_bucket).
bounds AS (SELECT id, s0, e0 FROM f WHERE windows > 0),
edges AS (SELECT array_agg(e0 ORDER BY e0) AS arr FROM (SELECT DISTINCT e0 FROM bounds) d),
buckets AS MATERIALIZED (
    SELECT width_bucket(t.created_at, edges.arr) AS b, count(*) AS n
    FROM incidents_tailnet t CROSS JOIN edges GROUP BY 1
),
created AS MATERIALIZED (
    SELECT e.e0, (SELECT COALESCE(sum(n), 0) FROM buckets WHERE b < e.pos) AS n
    FROM edges CROSS JOIN unnest(edges.arr) WITH ORDINALITY AS e(e0, pos)
),
deleted AS MATERIALIZED (
    SELECT created_at, deleted_at FROM incidents_tailnet WHERE deleted_at IS NOT NULL
),
-- (Every row has a level: it is its window's, which a CHECK constraint keeps valid.)
hit AS (
    SELECT ti.incident_id AS id, count(DISTINCT ti.tailnet_id) AS n
    FROM incidents_tailnetimpact ti
    WHERE ti.incident_id IN (SELECT id FROM bounds)
    GROUP BY ti.incident_id
),
blast AS (
    SELECT b.id,
           CASE WHEN total.n > 0 THEN 100.0 * COALESCE(hit.n, 0) / total.n ELSE 0 END AS pct
    FROM bounds b
    LEFT JOIN hit ON hit.id = b.id
    CROSS JOIN LATERAL (
        SELECT c.n - (SELECT count(*) FROM deleted d
                      WHERE d.deleted_at <= b.s0 AND d.created_at < b.e0) AS n
        FROM created c WHERE c.e0 = b.e0
    ) total
)
SELECT m.idx, count(f.id),
       count(f.id) FILTER (WHERE f.impact = 'critical'),
       count(f.id) FILTER (WHERE f.impact = 'major'),
       count(f.id) FILTER (WHERE f.impact = 'minor'),
       count(f.id) FILTER (WHERE f.impact = 'none'),
       count(f.id) FILTER (WHERE f.impact = 'maintenance'),
       {spread("duration")}, {spread("detect")}, {spread("first_update")}, {spread("resolve")},
       count(blast.pct), COALESCE(sum(blast.pct), 0),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY blast.pct), max(blast.pct),
       COALESCE(sum(f.fu_open), 0), COALESCE(sum(f.fu_done), 0)
FROM months m
LEFT JOIN f ON f.idx = m.idx
LEFT JOIN blast ON blast.id = f.id
GROUP BY m.idx
ORDER BY m.idx
"""

RANK = "CASE {0} WHEN 'outage' THEN 3 WHEN 'partial' THEN 2 WHEN 'degraded' THEN 1 ELSE 0 END"

# Tailnet-seconds per month. Placed seconds: every placement, cut at month boundaries.
# Affected seconds: a TailnetImpact row is its placement clipped to its shard window, and a
# tailnet is on one shard at a time, so its rows overlap only where windows of one shard
# overlap. Each shard's time is cut into pieces at every window, gap and month boundary;
# each piece takes the worst level of the windows covering it and one owner among them.
# Summing every row's overlap with the pieces its own window owns counts each tailnet's
# second once, at its worst level, without grouping 5 million rows by tailnet.
BARE_TALLIES = f"""
WITH {MONTHS_CTE},
gaps AS MATERIALIZED (
    SELECT shard_id AS sh, starts_at, ends_at,
           GREATEST({sec("starts_at")}, %(lo)s) AS s,
           LEAST(COALESCE({sec("ends_at")}, %(hi)s), %(hi)s) AS e
    FROM incidents_monitoringgap
    WHERE starts_at < %(end)s AND (ends_at IS NULL OR ends_at > %(start)s)
),
placements AS MATERIALIZED (
    SELECT GREATEST({sec("starts_at")}, %(lo)s) AS s,
           LEAST(COALESCE({sec("ends_at")}, %(hi)s), %(hi)s) AS e
    FROM incidents_placement
    WHERE starts_at < %(end)s AND (ends_at IS NULL OR ends_at > %(start)s)
),
placed AS (
    SELECT m.idx, SUM(LEAST(p.e, m.me) - GREATEST(p.s, m.ms)) AS secs
    FROM placements p JOIN months m ON p.s < m.me AND p.e > m.ms
    GROUP BY m.idx
),
-- ... of which in a monitoring gap of the shard (no data): the gap's placements through
-- the GiST index.
placed_gaps AS (
    SELECT m.idx, SUM(LEAST(x.e, m.me) - GREATEST(x.s, m.ms)) AS secs
    FROM (
        SELECT GREATEST(g.s, {sec("p.starts_at")}) AS s,
               LEAST(g.e, COALESCE({sec("p.ends_at")}, %(hi)s)) AS e
        FROM gaps g
        JOIN incidents_placement p
          ON p.shard_id = g.sh
         AND tstzrange(p.starts_at, p.ends_at) && tstzrange(g.starts_at, g.ends_at)
        OFFSET 0
    ) x
    JOIN months m ON x.s < m.me AND x.e > m.ms
    GROUP BY m.idx
),
windows AS MATERIALIZED (
    SELECT si.id, si.shard_id AS sh, {RANK.format("si.level")} AS r,
           GREATEST({sec("si.starts_at")}, %(lo)s) AS s,
           LEAST(COALESCE({sec("si.ends_at")}, %(hi)s), %(hi)s) AS e
    FROM incidents_shardimpact si
    JOIN incidents_incident i ON i.id = si.incident_id AND i.published
    WHERE si.starts_at < %(end)s AND (si.ends_at IS NULL OR si.ends_at > %(start)s)
),
cuts AS (
    SELECT sh, s AS at FROM windows UNION SELECT sh, e FROM windows
    UNION SELECT sh, s FROM gaps UNION SELECT sh, e FROM gaps
    UNION SELECT w.sh, m.ms FROM windows w JOIN months m ON w.s < m.ms AND w.e > m.ms
),
pieces AS (
    SELECT sh, at AS s, LEAD(at) OVER (PARTITION BY sh ORDER BY at) AS e FROM cuts
),
owned AS MATERIALIZED (
    SELECT DISTINCT ON (pc.sh, pc.s) w.id AS owner, pc.s, pc.e, w.r, m.idx,
           EXISTS (SELECT 1 FROM gaps g WHERE g.sh = pc.sh AND g.s <= pc.s AND g.e >= pc.e)
               AS in_gap
    FROM pieces pc
    JOIN windows w ON w.sh = pc.sh AND w.s <= pc.s AND w.e >= pc.e AND w.r > 0
    JOIN months m ON pc.s >= m.ms AND pc.s < m.me
    WHERE pc.e > pc.s
    ORDER BY pc.sh, pc.s, w.r DESC, w.id
),
lost AS (
    SELECT o.idx,
           SUM(x.secs) FILTER (WHERE o.r = 3) AS o,
           SUM(x.secs) FILTER (WHERE o.r = 2) AS p,
           SUM(x.secs) FILTER (WHERE o.r = 1) AS d,
           SUM(x.secs) FILTER (WHERE o.in_gap) AS in_gap
    FROM incidents_tailnetimpact ti
    JOIN owned o ON o.owner = ti.shard_impact_id
    CROSS JOIN LATERAL (
        SELECT LEAST(COALESCE({sec("ti.ends_at")}, %(hi)s), o.e)
             - GREATEST({sec("ti.starts_at")}, o.s) AS secs
    ) x
    WHERE x.secs > 0
    GROUP BY o.idx
),
tally AS (
    SELECT m.idx,
           GREATEST(COALESCE(pl.secs, 0) - COALESCE(pg.secs, 0) + COALESCE(l.in_gap, 0),
                    COALESCE(l.o, 0) + COALESCE(l.p, 0) + COALESCE(l.d, 0)) AS total,
           COALESCE(l.o, 0) AS o, COALESCE(l.p, 0) AS p, COALESCE(l.d, 0) AS d
    FROM months m
    LEFT JOIN placed pl ON pl.idx = m.idx
    LEFT JOIN placed_gaps pg ON pg.idx = m.idx
    LEFT JOIN lost l ON l.idx = m.idx
)
SELECT idx, total, o, p, d,
       CASE WHEN total = 0 THEN NULL
            ELSE 100 * (total - o - 0.3 * p)::numeric / total END AS uptime
FROM tally ORDER BY idx
"""


def bare_params(first: int, last: int, now: datetime) -> dict[str, Any]:
    start = month_start(first)
    end = min(month_start(last + 1), now)
    return {
        "first": first,
        "last": last,
        "start": start,
        "end": end,
        "now": now,
        "lo": epoch(start),
        "hi": epoch(end),
    }


def close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


SPREADS = ("duration", "detect", "first_update", "resolve")
IMPACTS = ("critical", "major", "minor", "none", "maintenance")


def ours_figures(report: list[Any]) -> list[tuple[Any, ...]]:
    """The report's figures as flat tuples, in the baseline's column order."""
    rows = []
    for month in report:
        row: list[Any] = [month.index, month.incidents]
        row += [month.by_impact.get(impact, 0) for impact in IMPACTS]
        for name in SPREADS:
            s = getattr(month, name)
            row += [s.measured, s.missing, s.total, s.median, s.worst]
        row += [month.blast.measured, month.blast.total, month.blast.median, month.blast.worst]
        row += [month.follow_ups_open, month.follow_ups_done]
        t = month.tally
        row += [t.total_seconds, t.outage_seconds, t.partial_seconds, t.degraded_seconds]
        row += [month.uptime]
        rows.append(tuple(row))
    return rows


COLUMNS = (
    ["month", "incidents", *(f"impact {i}" for i in IMPACTS)]
    + [
        f"{n} {part}"
        for n in SPREADS
        for part in ("measured", "missing", "total", "median", "worst")
    ]
    + ["blast measured", "blast total", "blast median", "blast worst"]
    + ["follow-ups open", "follow-ups done"]
    + ["seconds with data", "outage", "partial", "degraded", "uptime"]
)


def compare(what: str, ours: list[tuple[Any, ...]], bare: list[tuple[Any, ...]]) -> None:
    problems = []
    if len(ours) != len(bare):
        problems.append(f"{len(ours)} months against {len(bare)}")
    for mine, theirs in zip(ours, bare, strict=False):
        for name, a, b in zip(
            COLUMNS if what == "reliability" else SLA_COLUMNS, mine, theirs, strict=True
        ):
            if not close(a, b):
                problems.append(f"month {mine[0]}: {name}: ours {a!r}, baseline {b!r}")
    if problems:
        log(f"FAIL: {what}: ours and the baseline disagree:")
        for problem in problems[:30]:
            log(f"  {problem}")
        raise SystemExit(1)


def alternate(
    sides: dict[str, Callable[[], Any]],
    rounds: int,
    *,
    before: Callable[[str], None],
    idle_timeout: float,
    verbose: bool,
) -> dict[str, list[float]]:
    """``rounds`` rounds, alternating which side goes first; seconds per call."""
    timings: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for round_ in range(rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            busy = wait_for_idle_cpu(timeout=idle_timeout) if idle_timeout else 0.0
            before(name)
            started = time.perf_counter()
            sides[name]()
            timings[name].append(time.perf_counter() - started)
            if verbose:
                log(
                    f"  round {round_ + 1} {name:<4} {timings[name][-1]:8.3f} s"
                    f"  (CPU busy before {busy:4.0%}, load {load()})"
                )
    return timings


def describe(samples: list[float], unit: Callable[[float], str]) -> str:
    ordered = sorted(samples)
    return (
        f"median {unit(statistics.median(ordered))} (min {unit(ordered[0])},"
        f" max {unit(ordered[-1])}, {len(ordered)} runs)"
    )


def secs(value: float) -> str:
    return f"{value:.3f} s"


def msecs(value: float) -> str:
    return f"{value * 1000:.3f} ms"


def clear_cache(_: str) -> None:
    from django.core.cache import cache

    cache.clear()


def measure_report(
    args: argparse.Namespace, raw: psycopg.Connection, first: int, last: int, now: datetime
) -> tuple[float, float]:
    from django.db import connection

    from reliability.queries import reliability_report

    params = bare_params(first, last, now)
    latest: dict[str, Any] = {}
    bare_steps: dict[str, list[float]] = {"incidents": [], "tallies": []}

    def ours() -> list[Any]:
        latest["ours"] = reliability_report(first=first, last=last, now=now)
        return latest["ours"]

    def bare() -> list[tuple[Any, ...]]:
        with raw.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(BARE_INCIDENTS, params)
            incidents = cursor.fetchall()
            middle = time.perf_counter()
            cursor.execute(BARE_TALLIES, params)
            tallies = cursor.fetchall()
            bare_steps["incidents"].append(middle - started)
            bare_steps["tallies"].append(time.perf_counter() - middle)
        rows = [tuple(a) + tuple(b[1:]) for a, b in zip(incidents, tallies, strict=True)]
        latest["bare"] = rows
        return rows

    log(
        f"reliability: months {month_start(first):%Y-%m} to {month_start(last):%Y-%m}"
        f" as of {now:%Y-%m-%d %H:%M} UTC"
    )
    # Warm-up: one untimed call each (ours with its statements timed), answers compared.
    recorder = Recorder()
    clear_cache("ours")
    with connection.execute_wrapper(recorder):
        started = time.perf_counter()
        report = ours()
        warm_ours = time.perf_counter() - started
    started = time.perf_counter()
    warm = bare()
    warm_bare = time.perf_counter() - started
    log(f"  warm-up: ours {warm_ours:.3f} s, bare {warm_bare:.3f} s")
    compare("reliability", ours_figures(report), warm)
    counted = sum(m.incidents for m in report)
    log(
        f"  {counted} counted incidents (published, started in the range; maintenance only"
        f" with windows) in {len(report)} months; ours equals the baseline, month by month"
    )
    for month in report:
        t = month.tally
        log(
            f"    {month.start:%Y-%m}: {month.incidents:3} incidents"
            f" { {k: v for k, v in month.by_impact.items() if v} }"
            f"  tailnet-seconds {t.total_seconds:,} (outage {t.outage_seconds:,},"
            f" partial {t.partial_seconds:,}, degraded {t.degraded_seconds:,})"
            f"  uptime {'-' if month.uptime is None else f'{float(month.uptime):.5f} %'}"
        )
    timings = alternate(
        {"ours": ours, "bare": bare},
        args.rounds,
        before=clear_cache,
        idle_timeout=args.idle_timeout,
        verbose=True,
    )
    compare("reliability", ours_figures(latest["ours"]), latest["bare"])
    ours_s, bare_s = statistics.median(timings["ours"]), statistics.median(timings["bare"])
    log(f"  ours (reliability_report, cache cleared): {describe(timings['ours'], secs)}")
    log(f"  bare (2 statements through psycopg, fetchall): {describe(timings['bare'], secs)}")
    in_sql = sum(seconds for _, seconds in recorder.statements)
    log(
        f"  where ours goes (the warm-up call, {warm_ours:.3f} s):"
        f" {len(recorder.statements)} statements {in_sql:.3f} s,"
        f" Python {warm_ours - in_sql:.3f} s"
    )
    for statement, seconds in recorder.statements:
        log(f"    {seconds:9.3f} s  {' '.join(statement.split())[:90]}")
    log(
        "  where bare goes (medians): "
        + ", ".join(f"{name} {statistics.median(v):.3f} s" for name, v in bare_steps.items())
    )
    # What each snapshot rebuild pays (every minute): the months that have ended are
    # kept per published version, the month in progress is computed again.
    rebuilds = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        ours()
        rebuilds.append(time.perf_counter() - started)
    log(
        f"  ours again with the ended months cached (each snapshot rebuild):"
        f" {describe(rebuilds, secs)}"
    )
    compare("reliability", ours_figures(latest["ours"]), latest["bare"])
    ratio = ours_s / bare_s
    log(f"  target ≤ {TARGET}: {'met' if ratio <= TARGET else 'MISSED'}")
    return ours_s, bare_s


class Recorder:
    """An execute_wrapper timing every statement Django sends."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, float]] = []

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((sql, time.perf_counter() - started))


# --- tailnet-sla: one tailnet's SLA statement against bare SQL ---------------------------

BARE_SLA = f"""
WITH {MONTHS_CTE},
policy AS (
    SELECT p.id, p.maintenance_notice_hours AS notice
    FROM reliability_slapolicy p
    WHERE p.id = COALESCE(
        (SELECT policy_id FROM reliability_tailnetsla WHERE tailnet_id = %(tailnet)s),
        (SELECT id FROM reliability_slapolicy WHERE is_default))
),
stays AS (
    SELECT p.shard_id, p.starts_at, p.ends_at,
           int8range({sec("p.starts_at")},
                     GREATEST({sec("p.starts_at")},
                              LEAST(COALESCE({sec("p.ends_at")}, %(now_s)s), %(now_s)s))) AS rg
    FROM incidents_placement p WHERE p.tailnet_id = %(tailnet)s
),
placed AS (SELECT COALESCE(range_agg(rg), {EMPTY}) AS mr FROM stays),
-- The seconds its shard, at the time, had no data.
gapped AS (
    SELECT COALESCE(range_agg(s.rg * int8range({sec("g.starts_at")},
                                                COALESCE({sec("g.ends_at")}, %(now_s)s))),
                    {EMPTY}) AS mr
    FROM stays s
    JOIN incidents_monitoringgap g
      ON g.shard_id = s.shard_id AND g.starts_at < COALESCE(s.ends_at, 'infinity')
     AND (g.ends_at IS NULL OR g.ends_at > s.starts_at)
),
-- Its impact rows; announced maintenance is excluded within its scheduled window.
rows AS (
    SELECT {RANK.format("ti.level")} AS r,
           int8multirange(int8range({sec("ti.starts_at")},
                                    GREATEST({sec("ti.starts_at")},
                                             COALESCE({sec("ti.ends_at")}, %(now_s)s)))) AS mr,
           CASE WHEN i.kind = 'maintenance' AND policy.notice IS NOT NULL
                     AND i.published_at <= i.scheduled_for - make_interval(hours => policy.notice)
                THEN int8multirange(int8range({sec("i.scheduled_for")},
                                              {sec("i.scheduled_until")}))
                ELSE {EMPTY} END AS excluded
    FROM incidents_tailnetimpact ti
    JOIN incidents_incident i ON i.id = ti.incident_id AND i.published
    LEFT JOIN policy ON true
    WHERE ti.tailnet_id = %(tailnet)s
),
impact AS (
    SELECT COALESCE(range_agg(x.rg) FILTER (WHERE r = 3 AND NOT c.ex), {EMPTY}) AS o,
           COALESCE(range_agg(x.rg) FILTER (WHERE r >= 2 AND NOT c.ex), {EMPTY}) AS op,
           COALESCE(range_agg(x.rg) FILTER (WHERE r >= 1 AND NOT c.ex), {EMPTY}) AS a,
           COALESCE(range_agg(x.rg) FILTER (WHERE c.ex), {EMPTY}) AS excluded
    FROM rows
    CROSS JOIN LATERAL (VALUES (false, rows.mr - rows.excluded),
                               (true, rows.mr * rows.excluded)) AS c(ex, mr)
    CROSS JOIN LATERAL unnest(c.mr) AS x(rg)
),
tally AS (
    SELECT m.idx,
           {
    LEN.format(
        "((placed.mr - gapped.mr - impact.excluded) + impact.a)"
        " * int8multirange(int8range(m.ms, m.me))"
    )
} AS total,
           {LEN.format("impact.o * int8multirange(int8range(m.ms, m.me))")} AS o,
           {LEN.format("(impact.op - impact.o) * int8multirange(int8range(m.ms, m.me))")} AS p,
           {LEN.format("(impact.a - impact.op) * int8multirange(int8range(m.ms, m.me))")} AS d
    FROM months m, placed, gapped, impact
),
uptime AS (
    SELECT tally.*,
           CASE WHEN total = 0 THEN NULL
                ELSE 100 * (total - o - 0.3 * p)::numeric / total END AS uptime
    FROM tally
)
SELECT u.idx, u.total, u.o, u.p, u.d, u.uptime,
       COALESCE((SELECT t.credit_percent FROM reliability_slacredittier t, policy
                 WHERE t.policy_id = policy.id AND u.uptime < t.below_percent
                 ORDER BY t.below_percent LIMIT 1), 0) AS credit
FROM uptime u ORDER BY u.idx
"""

SLA_COLUMNS = ("month", "seconds measured", "outage", "partial", "degraded", "uptime", "credit")


def sla_figures(statement: Any) -> list[tuple[Any, ...]]:
    return [
        (
            m.index,
            m.tally.total_seconds,
            m.tally.outage_seconds,
            m.tally.partial_seconds,
            m.tally.degraded_seconds,
            m.uptime,
            m.credit_percent,
        )
        for m in statement.months
    ]


def measure_sla(
    args: argparse.Namespace,
    raw: psycopg.Connection,
    subject: int,
    first: int,
    last: int,
    now: datetime,
) -> tuple[float, float]:
    from reliability.tailnet import tailnet_sla

    params = {**bare_params(first, last, now), "tailnet": subject, "now_s": epoch(now)}
    last_bare: dict[str, list[tuple[Any, ...]]] = {}

    def ours() -> Any:
        return tailnet_sla(tailnet_id=subject, first=first, last=last, now=now)

    def bare() -> list[tuple[Any, ...]]:
        with raw.cursor() as cursor:
            cursor.execute(BARE_SLA, params)
            rows = cursor.fetchall()
        last_bare["rows"] = rows
        return rows

    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT ti.incident_id),"
            " count(DISTINCT ti.incident_id) FILTER (WHERE i.kind = 'maintenance')"
            " FROM incidents_tailnetimpact ti JOIN incidents_incident i ON i.id = ti.incident_id"
            " WHERE ti.tailnet_id = %s AND i.published AND ti.starts_at < %s"
            " AND (ti.ends_at IS NULL OR ti.ends_at > %s)",
            [subject, params["end"], params["start"]],
        )
        rows, incidents, maintenance = one(cursor)
        cursor.execute("SELECT count(*) FROM incidents_placement WHERE tailnet_id = %s", [subject])
        placements = one(cursor)[0]
    log(
        f"tailnet-sla: tailnet {subject} ({placements} placements), {rows} impact rows of"
        f" {incidents} published incidents in the 12 months ({maintenance} maintenance);"
        f" default policy {POLICY_TARGET} %, notice {POLICY_NOTICE_HOURS} h"
    )
    clear_cache("ours")
    statement = ours()
    warm = bare()
    compare("tailnet-sla", sla_figures(statement), warm)
    log("  ours equals the baseline, month by month:")
    for m in statement.months:
        t = m.tally
        log(
            f"    {m.start:%Y-%m}: measured {t.total_seconds:,} s, outage {t.outage_seconds:,},"
            f" partial {t.partial_seconds:,}, degraded {t.degraded_seconds:,};"
            f" uptime {'-' if m.uptime is None else f'{float(m.uptime):.4f} %'},"
            f" credit {m.credit_percent} %, {m.excluded_incidents} maintenance excluded"
        )
    for _ in range(3):
        clear_cache("ours")
        ours()
        bare()
    timings = alternate(
        {"ours": ours, "bare": bare},
        args.runs,
        before=clear_cache,
        idle_timeout=0.0,
        verbose=False,
    )
    compare("tailnet-sla", sla_figures(ours()), last_bare["rows"])
    ours_s, bare_s = statistics.median(timings["ours"]), statistics.median(timings["bare"])
    log(f"  ours (tailnet_sla, cache cleared): {describe(timings['ours'], msecs)}")
    log(f"  bare (1 statement through psycopg, fetchall): {describe(timings['bare'], msecs)}")

    from django.db import connection

    recorder = Recorder()
    clear_cache("ours")
    with connection.execute_wrapper(recorder):
        started = time.perf_counter()
        ours()
        total = time.perf_counter() - started
    in_sql = sum(s for _, s in recorder.statements)
    log(
        f"  where ours goes (one instrumented call, {msecs(total)}): {len(recorder.statements)}"
        f" statements {msecs(in_sql)}, the rest (Python, Django) {msecs(total - in_sql)}"
    )
    ratio = ours_s / bare_s
    log(f"  target ≤ {TARGET}: {'met' if ratio <= TARGET else 'MISSED'}")
    return ours_s, bare_s


# --- Main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="80 incidents, 2 rounds (CI)")
    parser.add_argument("--incidents", type=int, help="published in the 12 months (500)")
    parser.add_argument("--rounds", type=int, help="reliability rounds per side (default 5)")
    parser.add_argument("--runs", type=int, help="tailnet-sla runs per side (default 100)")
    parser.add_argument("--tailnet", type=int, help="the SLA statement of this tailnet id")
    parser.add_argument(
        "--parallel-workers",
        type=int,
        help="max_parallel_workers_per_gather for both sides' sessions (default: the server's)",
    )
    parser.add_argument("--rebuild", action="store_true", help="build the copy again")
    parser.add_argument("--drop", action="store_true", help="drop the copy at the end")
    parser.add_argument(
        "--idle-timeout", type=float, default=5, help="seconds to wait for a quiet CPU per run"
    )
    parser.add_argument(
        "--wait-alone", type=float, default=600, help="seconds to wait for others to disconnect"
    )
    args = parser.parse_args(argv)
    args.incidents = args.incidents or (80 if args.smoke else 500)
    args.rounds = args.rounds or (2 if args.smoke else 3)
    args.runs = args.runs or (5 if args.smoke else 100)
    if args.smoke:
        args.idle_timeout = 0.0

    if args.parallel_workers is not None:  # every connection of this process (libpq)
        os.environ["PGOPTIONS"] = f"-c max_parallel_workers_per_gather={args.parallel_workers}"
    url = dataset_url()
    with connect(url) as conn:
        meta = meta_read(conn.cursor())
        name = conn.info.dbname
        parallel = one(conn.execute("SHOW max_parallel_workers_per_gather"))[0]
    if meta is None:
        log(f"No dataset in {name}: run `make bench-data` first.")
        return 2
    log(
        f"dataset {name}: {meta['tailnets']:,} tailnets, {meta['placements']:,} placements on"
        f" {meta['shards']} shards to {meta['now'][:10]}; load average {load()}"
        f" ({os.cpu_count()} CPUs); max_parallel_workers_per_gather {parallel}"
    )
    copy = ReliabilityCopy(url, wait_alone=args.wait_alone)
    work = Path(tempfile.mkdtemp(prefix="bench-reliability-"))
    env = django_env(work)
    subject = subject_pick(meta, args.tailnet)
    now = datetime.fromisoformat(meta["now"])
    last = month_index(now)
    first = last - MONTHS + 1
    results: list[str] = []
    try:
        copy_url, stamp = copy_ensure(copy, meta, args, env)
        django_setup(copy_url, env)
        if stamp is None:
            log(f"extending {copy.name('reliability')} to {args.incidents} published incidents:")
            stamp = extend(copy_url, meta, args, subject)
            stamp_write(copy_url, stamp)
        log(
            f"copy {copy.name('reliability')}: {stamp['published_incidents']} published incidents"
            f" in the 12 months ({stamp['maintenance']} maintenance; {stamp['added_incidents']}"
            f" added with {stamp['added_windows']} windows), {stamp['gaps']} monitoring gaps,"
            f" {stamp['tailnet_impacts']:,} TailnetImpact rows"
            f" ({stamp['added_tailnet_impacts']:,} added); built in {stamp['build_seconds']} s"
        )
        sla = policy_ensure()
        with connect(copy_url) as raw:
            raw.execute("CHECKPOINT")
            ours_s, bare_s = measure_report(args, raw, first, last, now)
            results.append(
                f"reliability: ours={ours_s:.3f}s baseline={bare_s:.3f}s"
                f" ratio={ours_s / bare_s:.2f}"
            )
            if sla:
                ours_s, bare_s = measure_sla(args, raw, subject, first, last, now)
                results.append(
                    f"tailnet-sla: ours={ours_s * 1000:.3f}ms baseline={bare_s * 1000:.3f}ms"
                    f" ratio={ours_s / bare_s:.2f}"
                )
    finally:
        django_close()
        if args.drop:
            copy.drop_all()
        shutil.rmtree(work, ignore_errors=True)
    for line in results:
        log(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
