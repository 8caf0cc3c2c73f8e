"""Probe rounds and sample ingestion, against bare aiohttp and raw COPY.

    make bench-data      # once: the dataset (bench/data.py)
    make bench-probes    # this

(1) probe-round: 1,000 shards served by ``manage.py simulate_fleet --latency-ms 200`` in
    its own process. Ours is ``probes.services.region_round`` -- what the Celery task
    ``probes.probe_region`` runs -- in a worker-like process of its own (Django and the
    Celery app loaded), timed from call to return: probing on the process's kept
    connections, storing the samples, queueing detection. The baseline is a bare
    ``asyncio.gather`` of the same 1,000 GETs through one aiohttp ClientSession kept
    across rounds (connections reused), in a third process. Rounds are interleaved
    (rotating order) and paced ``--interval`` seconds apart, medians compared. After
    each of ours, the ``probes.detect`` task it queued runs in the same process, timed
    on its own (a worker runs it as a separate task). Then 10 % of the shards hang and
    the round must end within the probe timeout + 1 s. CPU seconds per round, and the
    peak RSS of the worker process, are reported.
(2) ingest: samples through ``probes.services.samples_store`` (what the worker and the
    ingest API call) against raw psycopg ``COPY`` of the same rows into the same table,
    in batches of the same size, one transaction per batch, interleaved.
(3) ingest-http: the same kind of batches POSTed to ``/api/v1/probes/samples`` with a
    probe token, served by gunicorn (one sync worker) against the benchmark database,
    against COPY batches interleaved with them.

The benchmark adds 1,000 shards (``probebench-0001``...), a few probe regions and one
API token to the benchmark database and deletes them, and every sample it wrote, at the
end (also what a crashed run left behind, at the start). The last three lines are the
measurements: ``probe-round: ours=<s>s baseline=<s>s ratio=<r>`` (lower is better) and
``ingest: ours=<n>/s baseline=<n>/s ratio=<r>``, ``ingest-http: ...`` (samples per
second, higher is better); ratio = ours / baseline. Missing a target is reported, not
fatal. ``--smoke`` runs a tiny version (CI).
"""

import argparse
import asyncio
import contextlib
import gc
import http.client
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import META_TABLE, ROOT, database_url, meta_read, setup_django

PREFIX = "probebench-"
TOKEN_NAME = "bench/probes.py"  # noqa: S105 - the token's name, not a secret
DEACTIVATED_KEY = "probebench_deactivated"  # bench_meta row while other shards are paused
REGIONS = {
    "ours": f"{PREFIX}worker",
    "ingest": f"{PREFIX}ingest",
    "copy": f"{PREFIX}copy",
    "http": f"{PREFIX}http",
    "httpcopy": f"{PREFIX}httpcopy",
    "unnest": f"{PREFIX}unnest",
}
INGEST_PATH = "/api/v1/probes/samples"
ROUND_RATIO_TARGET = 1.25
RSS_TARGET_MB = 150
INGEST_TARGET = 0.5
HTTP_TARGET = 0.25
# The benchmark's shards count as slow only above this (the fleet default is 1000 ms):
# with fresh connections the prober itself adds several hundred ms to what it
# measures, and at the default the first rounds open a "slow" incident for the whole
# fleet, whose bookkeeping then dominates the rounds measured. The script reports how
# many probes measured more than the default.
SHARD_THRESHOLD_MS = 10_000
# The baseline keeps its connections longer than the 10 s between its rounds.
BASELINE_KEEPALIVE_S = 60.0
PROBE_PERIOD = timedelta(seconds=30)  # PROBE_INTERVAL_SECONDS' default: the time grid
COPY_COLUMNS = (
    "shard_id, region_id, started_at, ok, latency_ms, connect_ms, error, status_code, detail"
)
RESULT = "@@"  # children answer the parent on stdout with lines starting with this


def log(message: str = "") -> None:
    print(message, flush=True)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def med(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def spread(values: list[float], unit: Callable[[float], str]) -> str:
    ordered = sorted(values)
    return (
        f"median {unit(statistics.median(ordered))}"
        f" (min {unit(ordered[0])}, max {unit(ordered[-1])}, {len(ordered)} runs)"
    )


def secs(value: float) -> str:
    return f"{value:.3f} s"


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def rate(value: float) -> str:
    return f"{value:,.0f}/s"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# --- process accounting (Linux /proc) ----------------------------------------------------


def proc_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (0 if unknown)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_mb(field: str, pid: int | str = "self") -> float:
    """A memory line of /proc/<pid>/status (VmRSS, VmHWM) in MB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the child processes: worker (ours), worker with a kept session, baseline ------------


def emit(value: dict[str, Any]) -> None:
    sys.stdout.write(RESULT + json.dumps(value) + "\n")
    sys.stdout.flush()


class Phases:
    """Wall and CPU time of named calls within one round (wrappers cost ~1 µs)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.results: list[Any] = []

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()
        self.results = []

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            try:
                value = fn(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - wall0
                self.cpu[name] += time.process_time() - cpu0
            if name == "probe":
                self.results = value
            return value

        return timed


def sql_key(sql: str) -> str:
    """'SELECT probes_shardstate', 'UPDATE probes_shardstate', ...: verb and first table."""
    verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    found = re.search(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql, re.IGNORECASE)
    return f"{verb} {found.group(1)}" if found else verb


class SqlRecorder:
    """An execute_wrapper: statements, seconds and rows per (verb, table), plus COMMITs."""

    def __init__(self) -> None:
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = self.stats[sql_key(sql)]
            entry[0] += 1
            entry[1] += time.perf_counter() - started
            rows = getattr(context.get("cursor"), "rowcount", -1)
            entry[2] += rows if rows and rows > 0 else 0

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        from django.db import connection

        commit = connection._commit

        def timed_commit() -> None:
            started = time.perf_counter()
            try:
                commit()
            finally:
                entry = self.stats["COMMIT"]
                entry[0] += 1
                entry[1] += time.perf_counter() - started

        connection._commit = timed_commit
        try:
            with connection.execute_wrapper(self):
                yield
        finally:
            del connection._commit  # back to the class's method


def probe_summary(results: list[Any], slow_ms: float) -> dict[str, Any]:
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    connects = [r.connect_ms for r in results if r.connect_ms is not None]
    return {
        "slow": sum(1 for ms in latencies if ms > slow_ms),
        "n": len(results),
        "ok": sum(1 for r in results if r.ok),
        "errors": dict(Counter(r.error for r in results if not r.ok)),
        "latency_med_ms": med(latencies),
        "latency_max_ms": max(latencies, default=math.nan),
        "fresh": len(connects),
        "connect_med_ms": med(connects),
    }


class WorkerRunner:
    """Ours: ``region_round`` exactly as the Celery task ``probes.probe_region`` calls
    it (the worker process's kept prober, connections reused across rounds). Between
    rounds, on request, the body of the ``probes.detect`` task that the round queued
    (timed on its own: it runs in another task, not in the round)."""

    def __init__(self, region: str) -> None:
        setup_django(database_url())
        import statuspage.celery  # noqa: F401 - a worker process has the Celery app loaded
        from probes import checks, services, tasks

        self.region = region
        self.services = services
        self.tasks = tasks
        self.phases = Phases()
        probe = self.phases.wrap("probe", checks.Prober.probe)
        checks.Prober.probe = lambda prober, *a, **kw: probe(prober, *a, **kw)  # type: ignore[method-assign]
        services.samples_store = self.phases.wrap("store", services.samples_store)
        tasks.detect_soon = self.phases.wrap("enqueue", tasks.detect_soon)

    def round(self, command: dict[str, Any]) -> dict[str, Any]:
        from django.conf import settings

        default_timeout = settings.PROBE_TIMEOUT_SECONDS
        if command.get("timeout"):
            settings.PROBE_TIMEOUT_SECONDS = float(command["timeout"])
        recorder = SqlRecorder() if command.get("instrument") else None
        self.phases.reset()
        try:
            with recorder.recording() if recorder else contextlib.nullcontext():
                cpu0, wall0 = time.process_time(), time.perf_counter()
                self.services.region_round(region_slug=self.region)
                wall = time.perf_counter() - wall0
                cpu = time.process_time() - cpu0
        finally:
            settings.PROBE_TIMEOUT_SECONDS = default_timeout
        return {
            "wall": wall,
            "cpu": cpu,
            "phases": dict(self.phases.wall),
            "cpu_phases": dict(self.phases.cpu),
            "probe": probe_summary(self.phases.results, settings.SHARD_LATENCY_THRESHOLD_MS),
            "sql": dict(recorder.stats) if recorder else None,
        }

    def detect(self, command: dict[str, Any]) -> dict[str, Any]:
        """The ``probes.detect`` task's body, as a worker runs it after a round."""
        recorder = SqlRecorder()
        with recorder.recording():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            changes = self.tasks.detect()
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0
        return {"wall": wall, "cpu": cpu, "changes": changes, "sql": dict(recorder.stats)}


class BaselineRunner:
    """A bare asyncio.gather of the same GETs through one ClientSession kept across
    rounds (its connections reused), on one event loop kept across rounds. No Django."""

    def __init__(self, urls: list[str], region: str) -> None:
        import aiohttp

        self.urls = urls
        self.headers = {"X-Probe-Region": region}
        self.created = 0
        runner = self

        class CountingConnector(aiohttp.TCPConnector):
            async def _create_connection(self, *args: Any, **kwargs: Any) -> Any:
                runner.created += 1
                return await super()._create_connection(*args, **kwargs)

        async def make() -> Any:
            return aiohttp.ClientSession(
                connector=CountingConnector(
                    limit=len(urls), keepalive_timeout=BASELINE_KEEPALIVE_S
                ),
                timeout=aiohttp.ClientTimeout(total=60),
            )

        self.loop = asyncio.new_event_loop()
        self.session = self.loop.run_until_complete(make())

    async def _get(self, url: str) -> int:
        async with self.session.get(url, headers=self.headers) as response:
            await response.read()
            return response.status

    async def _gather(self) -> list[Any]:
        return await asyncio.gather(*(self._get(url) for url in self.urls), return_exceptions=True)

    def round(self, command: dict[str, Any]) -> dict[str, Any]:
        created = self.created
        cpu0, wall0 = time.process_time(), time.perf_counter()
        statuses = self.loop.run_until_complete(self._gather())
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        return {
            "wall": wall,
            "cpu": cpu,
            "probe": {
                "n": len(statuses),
                "ok": sum(1 for s in statuses if s == 200),
                "fresh": self.created - created,
            },
        }


def child_main(args: argparse.Namespace) -> int:
    runner: Any
    if args.child == "baseline":
        urls = Path(args.urls).read_text().split()
        runner = BaselineRunner(urls, args.region)
    else:
        runner = WorkerRunner(args.region)
    emit({"ready": True, "rss_mb": status_mb("VmRSS")})
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "exit":
            break
        emit(runner.detect(command) if command["op"] == "detect" else runner.round(command))
    emit(
        {
            # VmHWM is this program image's own peak. ru_maxrss is not: after a
            # vfork + exec it carries the parent's peak at the time of the fork.
            "peak_rss_mb": status_mb("VmHWM"),
            "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_mb": status_mb("VmRSS"),
        }
    )
    return 0


class Child:
    """A child process of this script, driven one JSON line at a time."""

    def __init__(self, name: str, argv: list[str], workdir: Path) -> None:
        self.name = name
        self.stderr_path = workdir / f"{name}.stderr"
        self.stderr = open(self.stderr_path, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(  # noqa: S603 - this script, fixed arguments
            [sys.executable, str(Path(__file__).resolve()), *argv],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.ready = self._read()
        self.final: dict[str, Any] = {}

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait(5)
                tail = self.stderr_path.read_text()[-3000:]
                raise SystemExit(f"{self.name} process ended ({self.proc.returncode}):\n{tail}")
            if line.startswith(RESULT):
                return json.loads(line[len(RESULT) :])

    def call(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.final = self.call(op="exit")
                self.proc.wait(10)
            except (SystemExit, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


# --- the simulator and the HTTP server ---------------------------------------------------


class Simulator:
    """``manage.py simulate_fleet`` in its own process, on a free loopback port."""

    def __init__(self, latency_ms: float, workdir: Path) -> None:
        out = workdir / "simulator.out"
        self.out = open(out, "w")  # noqa: SIM115 - closed in stop()
        self.err = open(workdir / "simulator.stderr", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(  # noqa: S603 - the project's own command
            [
                sys.executable,
                "manage.py",
                "simulate_fleet",
                "--port",
                "0",
                "--latency-ms",
                f"{latency_ms:g}",
            ],
            cwd=ROOT,
            stdout=self.out,
            stderr=self.err,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
        )
        deadline = time.monotonic() + 30
        while True:
            found = re.search(r"Fleet simulator on (http://[^\s]+?):\s", out.read_text())
            if found:
                self.url = found.group(1)
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(
                    "the simulator did not start:\n" + (workdir / "simulator.stderr").read_text()
                )
            time.sleep(0.05)

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - the loopback simulator
            self.url + path,
            data=None if payload is None else json.dumps(payload).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()


class Server:
    """gunicorn, one sync worker, serving the project against the benchmark database."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log_path = workdir / "gunicorn.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        env = {
            **os.environ,
            "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback
            "PROBE_INGEST_RATE": "100000/min",
            "LOG_LEVEL": "WARNING",
        }
        self.proc = subprocess.Popen(  # noqa: S603 - gunicorn from the virtualenv
            [
                sys.executable,
                "-m",
                "gunicorn",
                "statuspage.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--worker-class",
                "sync",
                "--timeout",
                "300",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.request("GET", INGEST_PATH, None, {})
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(
                        "gunicorn did not start:\n" + self.log_path.read_text()
                    ) from None
                time.sleep(0.1)
        workers = children_of(self.proc.pid)
        self.worker_pid = workers[0] if len(workers) == 1 else None

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def cpu(self) -> float:
        return proc_cpu(self.worker_pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --- the benchmark's rows in the database ------------------------------------------------


def cleanup() -> dict[str, int]:
    """Delete everything this benchmark adds (bare SQL, so the ORM's cascades do not
    depend on every model of the tree being migrated here) and resume any shards it
    paused. Safe to run any time; returns what it deleted."""
    from django.db import connection, transaction

    deleted: dict[str, int] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(array_agg(id), '{}') FROM incidents_shard WHERE slug LIKE %s",
            [PREFIX + "%"],
        )
        shards = cursor.fetchone()[0]
        cursor.execute(
            "SELECT coalesce(array_agg(id), '{}') FROM probes_proberegion WHERE slug LIKE %s",
            [PREFIX + "%"],
        )
        regions = cursor.fetchone()[0]
        # Detection opens no incident here (one failing region is never a quorum); if
        # one was opened anyway, it goes too.
        cursor.execute(
            "SELECT coalesce(array_agg(DISTINCT incident_id), '{}') FROM incidents_shardimpact"
            " WHERE shard_id = ANY(%s)",
            [shards],
        )
        incidents = cursor.fetchone()[0]
        if incidents:
            cursor.execute(
                "SELECT conrelid::regclass::text, a.attname FROM pg_constraint c"
                " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
                " WHERE c.contype = 'f' AND c.confrelid = 'incidents_incident'::regclass"
            )
            for table, column in cursor.fetchall():
                if table == "probes_shardstate":
                    cursor.execute(
                        f"UPDATE {table} SET {column} = NULL WHERE {column} = ANY(%s)", [incidents]
                    )
                else:
                    cursor.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", [incidents])
            # TailnetImpact has no database FK to its incident, so it is not in that list.
            cursor.execute(
                "DELETE FROM incidents_tailnetimpact WHERE incident_id = ANY(%s)", [incidents]
            )
            cursor.execute("DELETE FROM incidents_incident WHERE id = ANY(%s)", [incidents])
            deleted["incidents"] = len(incidents)
        for table, where in (
            ("probes_probesample", "shard_id = ANY(%(s)s) OR region_id = ANY(%(r)s)"),
            ("probes_proberollup", "shard_id = ANY(%(s)s) OR region_id = ANY(%(r)s)"),
            ("probes_shardstate", "shard_id = ANY(%(s)s)"),
            ("incidents_shardimpact", "shard_id = ANY(%(s)s)"),
            ("incidents_placement", "shard_id = ANY(%(s)s)"),
            ("incidents_shard", "id = ANY(%(s)s)"),
            ("probes_proberegion", "id = ANY(%(r)s)"),
        ):
            cursor.execute(f"DELETE FROM {table} WHERE {where}", {"s": shards, "r": regions})
            deleted[table] = cursor.rowcount
        cursor.execute("DELETE FROM incidents_apitoken WHERE name = %s", [TOKEN_NAME])
        deleted["incidents_apitoken"] = cursor.rowcount
        cursor.execute(f"SELECT value FROM {META_TABLE} WHERE key = %s", [DEACTIVATED_KEY])
        row = cursor.fetchone()
        if row is not None:
            paused = row[0] if not isinstance(row[0], str) else json.loads(row[0])
            cursor.execute("UPDATE incidents_shard SET active = true WHERE id = ANY(%s)", [paused])
            cursor.execute(f"DELETE FROM {META_TABLE} WHERE key = %s", [DEACTIVATED_KEY])
            deleted["resumed shards"] = len(paused)
    return {k: v for k, v in deleted.items() if v}


def opened_by_detection() -> str:
    """What detection opened on the benchmark's shards so far (it should open nothing
    but a rare "slow" window: one failing region is never a quorum)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT si.level, count(*), count(DISTINCT si.incident_id)"
            " FROM incidents_shardimpact si JOIN incidents_shard s ON s.id = si.shard_id"
            " WHERE s.slug LIKE %s GROUP BY si.level ORDER BY si.level",
            [PREFIX + "%"],
        )
        rows = cursor.fetchall()
    if not rows:
        return "detection opened no incident"
    return "detection opened " + ", ".join(
        f"{windows} {level} window(s) in {incidents} incident(s)"
        for level, windows, incidents in rows
    )


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) probes_probesample, probes_shardstate")


def setup_fleet(shards: int, sim_url: str) -> tuple[list[Any], dict[str, Any]]:
    """The benchmark's shards (probe URLs on the simulator) and probe regions. Any other
    shard region_round would probe is paused (active=False) until cleanup()."""
    from django.db import connection, transaction

    from incidents.models import Component, Shard
    from probes.models import ProbeRegion

    component = Component.objects.filter(kind="coordination").order_by("pk").first()
    if component is None:
        raise SystemExit("no coordination component in the benchmark database")
    with transaction.atomic():
        others = list(
            Shard.objects.filter(active=True)
            .exclude(probe_url="")
            .exclude(slug__startswith=PREFIX)
            .values_list("pk", flat=True)
        )
        if others:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {META_TABLE} (key, value, written_at) VALUES (%s, %s, now())",
                    [DEACTIVATED_KEY, json.dumps(others)],
                )
            Shard.objects.filter(pk__in=others).update(active=False)
            log(f"  paused {len(others)} other shards with probe URLs (resumed at the end)")
        rows = Shard.objects.bulk_create(
            Shard(
                slug=f"{PREFIX}{n:04d}",
                region=component.region or "us-east",
                public_name=f"probe benchmark shard {n}",
                component=component,
                probe_url=f"{sim_url}/s/{PREFIX}{n:04d}/key?v=88",
                latency_threshold_ms=SHARD_THRESHOLD_MS,
            )
            for n in range(1, shards + 1)
        )
        regions = {
            key: ProbeRegion.objects.create(slug=slug, name=f"bench {key}")
            for key, slug in REGIONS.items()
        }
    return rows, regions


# --- (1) probe-round ---------------------------------------------------------------------


def sql_table(runs: list[dict[str, Any]], title: str) -> None:
    """Statements, time and rows per (verb, table), averaged over ``runs``."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for run in runs:
        for key, (count, seconds, rows) in run["sql"].items():
            totals[key][0] += count
            totals[key][1] += seconds
            totals[key][2] += rows
    n = len(runs)
    log(f"    {title} ({n} run{'s' * (n > 1)}, {secs(med([r['wall'] for r in runs]))} each):")
    for key, (count, seconds, rows) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        log(
            f"      {key:<34} {count / n:>6.0f} statements {ms(seconds / n):>10}"
            f" {rows / n:>9,.0f} rows"
        )


def measure_round(
    args: argparse.Namespace, shards: list[Any], sim: Simulator, workdir: Path
) -> tuple[float, float]:
    urls_file = workdir / "urls.txt"
    urls_file.write_text("\n".join(s.probe_url for s in shards))
    hang_count = max(1, len(shards) // 10)
    log(
        f"(1) probe-round: {len(shards):,} shards on the simulator ({sim.url},"
        f" {args.latency_ms:g} ms per answer, own process)"
    )
    children: dict[str, Child] = {}
    detections: list[dict[str, Any]] = []
    try:
        children["ours"] = Child("ours", ["--child", "ours", "--region", REGIONS["ours"]], workdir)
        children["baseline"] = Child(
            "baseline",
            ["--child", "baseline", "--region", REGIONS["ours"], "--urls", str(urls_file)],
            workdir,
        )
        sides = list(children)
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        sim_cpu: dict[str, list[float]] = {side: [] for side in sides}

        def one(side: str) -> dict[str, Any]:
            before = sim.cpu()
            result = children[side].call(op="round")
            sim_cpu[side].append(sim.cpu() - before)
            if side == "ours":
                # The probes.detect task the round queued, as its worker would run it
                # (in another task: timed on its own, never part of the round).
                detections.append(children["ours"].call(op="detect"))
            return result

        # Warm-up: both open their connections; ours' detection creates the states.
        warm = {side: one(side) for side in sides}
        for side in sides:
            sim_cpu[side].clear()
        log(
            "  warm-up round: "
            + ", ".join(f"{side} {secs(warm[side]['wall'])}" for side in sides)
            + f"; detection {secs(detections[0]['wall'])}; load average {load()}"
        )
        detections.clear()
        for round_ in range(args.rounds):
            started = time.monotonic()
            order = sides[round_ % len(sides) :] + sides[: round_ % len(sides)]
            for side in order:
                runs[side].append(one(side))
            rest = args.interval - (time.monotonic() - started)
            if rest > 0 and round_ < args.rounds - 1:
                time.sleep(rest)
        for side in sides:
            failed = [len(shards) - r["probe"]["ok"] for r in runs[side]]
            if any(failed):
                # Every shard is healthy: a failure here is the machine (or the prober)
                # not keeping up, and makes this side's numbers suspect.
                log(
                    f"  WARNING: {side} saw failed probes in healthy rounds"
                    f" ({', '.join(map(str, failed))} per round; load average {load()})"
                )

        instrumented = [
            children["ours"].call(op="round", instrument=True) for _ in range(args.explain_runs)
        ]

        # 10 % of the shards hang: ours only, with a short probe timeout.
        hanging = [s.slug for s in shards[:: max(1, len(shards) // hang_count)]][:hang_count]
        for slug in hanging:
            sim.control("POST", "/_control/faults", {"shard": slug, "kind": "hang"})
        try:
            hung = [
                children["ours"].call(op="round", timeout=args.hang_timeout)
                for _ in range(args.hang_rounds)
            ]
        finally:
            sim.control("DELETE", "/_control/faults")
        children["ours"].call(op="detect")
    finally:
        for child in children.values():
            child.close()

    wall = {side: [r["wall"] for r in runs[side]] for side in sides}
    cpu = {side: [r["cpu"] for r in runs[side]] for side in sides}
    fresh = {side: [r["probe"]["fresh"] for r in runs[side]] for side in sides}
    labels = {
        "ours": "ours (region_round: probe on kept connections, store)",
        "baseline": "baseline (bare gather, one ClientSession kept)",
    }
    for side in sides:
        log(
            f"  {labels[side]}: {spread(wall[side], secs)}; CPU {secs(med(cpu[side]))}/round;"
            f" new connections {med(fresh[side]):.0f}/round;"
            f" simulator CPU {secs(med(sim_cpu[side]))}/round"
        )
    phases = [r["phases"] for r in runs["ours"]]
    cpu_phases = [r["cpu_phases"] for r in runs["ours"]]
    other = [
        r["wall"] - r["phases"].get("probe", 0) - r["phases"].get("store", 0) for r in runs["ours"]
    ]
    other_cpu = [
        r["cpu"] - r["cpu_phases"].get("probe", 0) - r["cpu_phases"].get("store", 0)
        for r in runs["ours"]
    ]
    log(
        "    where ours goes (medians; wall / CPU): "
        + ", ".join(
            f"{name} {ms(med([p.get(name, 0.0) for p in phases]))}"
            f" / {ms(med([p.get(name, 0.0) for p in cpu_phases]))}"
            for name in ("probe", "store")
        )
        + f", rest {ms(med(other))} / {ms(med(other_cpu))}"
        + f" (queueing detection at commit {ms(med([p.get('enqueue', 0.0) for p in phases]))})"
    )
    probe = [r["probe"] for r in runs["ours"]]
    log(
        f"    ours, probes: latency median {med([p['latency_med_ms'] for p in probe]):.1f}"
        f" ms, slowest {med([p['latency_max_ms'] for p in probe]):.1f} ms;"
        f" connect median {med([p['connect_med_ms'] for p in probe]):.1f} ms"
        f" over {med([p['fresh'] for p in probe]):.0f} new connections;"
        f" above the default slow threshold: {med([p['slow'] for p in probe]):.0f}"
    )
    if instrumented:
        sql_table(instrumented, "ours' SQL per round (instrumented extra rounds)")
    log(
        f"  detection (the probes.detect task after each round, not in the round):"
        f" {spread([d['wall'] for d in detections], secs)};"
        f" CPU {secs(med([d['cpu'] for d in detections]))}/run"
    )
    sql_table(detections[-2:], "its SQL (the last measured runs)")

    log(
        f"  hanging: {len(hanging)} of {len(shards)} shards hang, probe timeout"
        f" {args.hang_timeout:g} s ({args.hang_rounds} round{'s' * (args.hang_rounds > 1)}):"
    )
    for run in hung:
        log(
            f"    round {secs(run['wall'])} (probe {secs(run['phases'].get('probe', 0))},"
            f" store {ms(run['phases'].get('store', 0))}); CPU {secs(run['cpu'])};"
            f" failures {run['probe']['errors']}"
        )
    timeouts_ok = all(r["probe"]["errors"] == {"timeout": len(hanging)} for r in hung)
    if not timeouts_ok:
        log("    note: the hanging shards did not all (or not only) time out")

    log(f"  {opened_by_detection()}; load average {load()}")
    final = {side: children[side].final for side in sides}
    ready = {side: children[side].ready for side in sides}
    log(
        "  peak RSS (VmHWM): "
        + ", ".join(
            f"{side} {final[side].get('peak_rss_mb', math.nan):.0f} MB"
            f" (after start-up {ready[side].get('rss_mb', math.nan):.0f} MB)"
            for side in sides
        )
    )

    ours_s, base_s = med(wall["ours"]), med(wall["baseline"])
    ratio = ours_s / base_s
    absolute = 2 * args.latency_ms / 1000
    worker_rss = final["ours"].get("peak_rss_mb", math.nan)
    hang_limit = args.hang_timeout + 1
    hang_max = max(r["wall"] for r in hung)
    log(f"  target ours ≤ {ROUND_RATIO_TARGET} x baseline: {ratio:.2f} x, {verdict(ratio <= 1.25)}")
    log(
        f"  target ≤ {secs(absolute)} with connections reused: ours {secs(ours_s)},"
        f" {med(fresh['ours']):.0f} new connections per round,"
        f" {verdict(ours_s <= absolute and med(fresh['ours']) == 0)}"
        f" (baseline {secs(base_s)})"
    )
    log(
        f"  target hanging round ≤ timeout + 1 s = {hang_limit:g} s: slowest {secs(hang_max)},"
        f" {verdict(hang_max <= hang_limit and timeouts_ok)}"
    )
    log(f"  CPU per round: ours {secs(med(cpu['ours']))}, baseline {secs(med(cpu['baseline']))}")
    log(
        f"  target worker peak RSS < {RSS_TARGET_MB} MB: {worker_rss:.0f} MB,"
        f" {verdict(worker_rss < RSS_TARGET_MB)}"
    )
    return ours_s, base_s


# --- (2) ingest and (3) ingest-http ------------------------------------------------------


def sample_rows(
    shards: list[Any], count: int, start: datetime, seed: int
) -> list[tuple[Any, datetime, bool, float | None, float | None, str, int | None, str]]:
    """``count`` probe results: one round of every shard every 30 s from ``start``, 1 %
    failed (timeouts), 10 % on a new connection. The same seed gives the same values."""
    rng = random.Random(seed)
    rows = []
    for j in range(count):
        round_, i = divmod(j, len(shards))
        at = start + PROBE_PERIOD * round_ + timedelta(microseconds=100 * i)
        if rng.random() < 0.01:
            rows.append((shards[i], at, False, None, None, "timeout", None, "no answer within 5 s"))
        else:
            connect = round(rng.uniform(0.2, 1.5), 3) if rng.random() < 0.1 else None
            rows.append(
                (shards[i], at, True, round(rng.uniform(195, 260), 3), connect, "", 200, "")
            )
    return rows


def batched(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def copy_batch(raw: psycopg.Connection, region_id: int, rows: list[Any]) -> float:
    """The baseline: one transaction, one COPY of the rows. Seconds."""
    started = time.perf_counter()
    with (
        raw.transaction(),
        raw.cursor() as cursor,
        cursor.copy(f"COPY probes_probesample ({COPY_COLUMNS}) FROM STDIN") as copy,
    ):
        for shard, at, ok, latency, connect, error, code, detail in rows:
            copy.write_row((shard.pk, region_id, at, ok, latency, connect, error, code, detail))
    return time.perf_counter() - started


# A third side for ingest: the statement samples_store runs on PostgreSQL, one
# INSERT ... SELECT FROM unnest(<9 arrays>) ON CONFLICT DO NOTHING, bare: what the
# service adds around it.
UNNEST_INSERT = f"""
    INSERT INTO probes_probesample ({COPY_COLUMNS})
    SELECT s, %s, a, o, l, c, e, sc, d
    FROM unnest(%s::bigint[], %s::timestamptz[], %s::boolean[], %s::float8[], %s::float8[],
                %s::text[], %s::int[], %s::text[]) AS t(s, a, o, l, c, e, sc, d)
    ON CONFLICT (shard_id, region_id, started_at) DO NOTHING
"""


def unnest_store(region_id: int, samples: list[Any]) -> float:
    """The bare statement, from the same SampleIn list, through Django's connection.
    Seconds."""
    from django.db import connection, transaction

    started = time.perf_counter()
    params = [
        region_id,
        [s.shard_id for s in samples],
        [s.started_at for s in samples],
        [s.ok for s in samples],
        [s.latency_ms for s in samples],
        [s.connect_ms for s in samples],
        ["" if s.ok else (s.error or "network") for s in samples],
        [s.status_code for s in samples],
        [s.detail[:200] for s in samples],
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(UNNEST_INSERT, params)
    return time.perf_counter() - started


def measure_ingest(
    args: argparse.Namespace, shards: list[Any], regions: dict[str, Any], raw: psycopg.Connection
) -> tuple[float, float]:
    from probes.services import SampleIn, samples_store

    extra = args.explain_runs * args.batch
    now = datetime.now(UTC).replace(microsecond=0)
    rows = sample_rows(shards, args.samples + extra, now - timedelta(days=10), seed=1)
    copy_rows = sample_rows(shards, args.samples, now - timedelta(days=12), seed=1)
    unnest_rows = sample_rows(shards, args.samples, now - timedelta(days=8), seed=1)

    def samples_in(rows: list[Any]) -> list[list[Any]]:
        return [
            [
                SampleIn(
                    shard_id=shard.pk,
                    started_at=at,
                    ok=ok,
                    latency_ms=latency,
                    connect_ms=connect,
                    error=error,
                    status_code=code,
                    detail=detail,
                )
                for shard, at, ok, latency, connect, error, code, detail in batch
            ]
            for batch in batched(rows, args.batch)
        ]

    ours_batches = samples_in(rows)
    unnest_batches = samples_in(unnest_rows)
    copy_batches = batched(copy_rows, args.batch)
    timed_batches = len(copy_batches)
    log(
        f"(2) ingest: {args.samples:,} samples, {timed_batches} batches of {args.batch:,},"
        f" one transaction each, interleaved; load average {load()}"
    )
    region = regions["ingest"]

    def ours(k: int) -> float:
        started = time.perf_counter()
        samples_store(region=region, samples=ours_batches[k])
        return time.perf_counter() - started

    sides: dict[str, Callable[[int], float]] = {
        "ours": ours,
        "copy": lambda k: copy_batch(raw, regions["copy"].pk, copy_batches[k]),
        "unnest": lambda k: unnest_store(regions["unnest"].pk, unnest_batches[k]),
    }
    names = list(sides)
    times: dict[str, list[float]] = {side: [] for side in names}
    for k in range(timed_batches):
        for side in names[k % 3 :] + names[: k % 3]:
            times[side].append(sides[side](k))
    ours_rate = args.samples / sum(times["ours"])
    copy_rate = args.samples / sum(times["copy"])
    unnest_rate = args.samples / sum(times["unnest"])
    log(f"  ours (samples_store): {rate(ours_rate)}; per batch {spread(times['ours'], ms)}")
    log(f"  baseline (COPY):      {rate(copy_rate)}; per batch {spread(times['copy'], ms)}")
    log(
        f"  bare SQL (the same INSERT ... SELECT FROM unnest(arrays), no service around it):"
        f" {rate(unnest_rate)}, {unnest_rate / copy_rate:.2f} x COPY;"
        f" per batch {spread(times['unnest'], ms)}"
    )

    # Where ours goes: its INSERT statements and COMMIT timed, the rest is Python
    # (SampleIn -> model instances, compiling the INSERT, binding parameters).
    recorder = SqlRecorder()
    totals = []
    with recorder.recording():
        for batch in ours_batches[timed_batches:]:
            started = time.perf_counter()
            samples_store(region=region, samples=batch)
            totals.append(time.perf_counter() - started)
    if totals:
        n = len(totals)
        sql = {key: seconds / n for key, (_, seconds, _) in recorder.stats.items()}
        python = med(totals) - sum(sql.values())
        log(
            f"  where ours goes per batch of {args.batch:,} ({n} extra batches): "
            + ", ".join(f"{key} {ms(seconds)}" for key, seconds in sql.items())
            + f", Python {ms(python)}"
        )
    ratio = ours_rate / copy_rate
    log(f"  target ≥ {INGEST_TARGET} x COPY: {ratio:.2f} x, {verdict(ratio >= INGEST_TARGET)}")
    return ours_rate, copy_rate


def http_body(region: str, batch: list[Any]) -> bytes:
    return json.dumps(
        {
            "region": region,
            "samples": [
                {
                    "shard": shard.slug,
                    "started_at": at.isoformat(),
                    "ok": ok,
                    "latency_ms": latency,
                    "connect_ms": connect,
                    "error": error,
                    "status_code": code,
                    "detail": detail,
                }
                for shard, at, ok, latency, connect, error, code, detail in batch
            ],
        }
    ).encode()


def measure_http(
    args: argparse.Namespace,
    shards: list[Any],
    regions: dict[str, Any],
    raw: psycopg.Connection,
    workdir: Path,
) -> tuple[float, float]:
    from django.test import Client
    from rest_framework import parsers

    import probes.api
    import probes.tasks
    from plumbing.tokens import api_token_create

    _, secret = api_token_create(name=TOKEN_NAME, scope="probe", probe_region=regions["http"])
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
    # Warm-up + timed + in-process breakdown batches, on a 30 s grid ending now.
    # gunicorn's warm-up, then (after the timed ones) the test client's warm-up and
    # the batches it times in parts.
    extra = (2 + args.explain_runs) * args.http_batch
    total = args.http_samples + extra
    periods = math.ceil(total / len(shards))
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - PROBE_PERIOD * (periods + 1)
    rows = sample_rows(shards, total, start, seed=2)
    batches = batched(rows, args.http_batch)
    bodies = [http_body(REGIONS["http"], batch) for batch in batches]
    copy_batches = batched(
        sample_rows(shards, args.http_samples, start - timedelta(days=2), 2), args.http_batch
    )
    timed_batches = len(copy_batches)
    vacuum()

    log(
        f"(3) ingest-http: {args.http_samples:,} samples, {timed_batches} POSTs of"
        f" {args.http_batch:,} ({len(bodies[0]) / 1024:.0f} KiB of JSON each) to"
        f" {INGEST_PATH}, gunicorn (1 sync worker), interleaved with COPY batches;"
        f" load average {load()}"
    )
    server = Server(workdir)
    try:

        def post(body: bytes) -> float:
            started = time.perf_counter()
            status, answer = server.request("POST", INGEST_PATH, body, headers)
            elapsed = time.perf_counter() - started
            if status != 200:
                raise SystemExit(f"POST {INGEST_PATH}: HTTP {status}: {answer[:500]!r}")
            return elapsed

        warm = post(bodies[0])
        times: dict[str, list[float]] = {"ours": [], "copy": []}
        server_cpu: list[float] = []
        for k in range(timed_batches):
            for side in ("ours", "copy") if k % 2 == 0 else ("copy", "ours"):
                if side == "ours":
                    before = server.cpu()
                    times["ours"].append(post(bodies[1 + k]))
                    server_cpu.append(server.cpu() - before)
                else:
                    times["copy"].append(copy_batch(raw, regions["httpcopy"].pk, copy_batches[k]))
    finally:
        server.stop()
    ours_rate = args.http_samples / sum(times["ours"])
    copy_rate = args.http_samples / sum(times["copy"])
    log(f"  warm-up POST (the worker's first request): {ms(warm)}")
    log(
        f"  ours (POST, validate, store, queue detection): {rate(ours_rate)}; per batch"
        f" {spread(times['ours'], ms)}; server CPU {ms(med(server_cpu))}/batch"
    )
    log(f"  baseline (COPY): {rate(copy_rate)}; per batch {spread(times['copy'], ms)}")
    tenth = max(1, len(times["ours"]) // 10)
    log(
        f"  ours per batch, first {tenth} vs last {tenth} batches (medians):"
        f" {ms(med(times['ours'][:tenth]))} vs {ms(med(times['ours'][-tenth:]))};"
        f" {opened_by_detection()}; load average {load()}"
    )

    # Where the request goes: the same view through Django's test client in this
    # process, its parts timed (JSON parsing, validate_batch, samples_store and, within
    # it, queueing detection at commit; the rest is auth, throttle, lookups and the
    # response).
    phases = Phases()
    originals = (
        parsers.JSONParser.parse,
        probes.api.validate_batch,
        probes.api.samples_store,
        probes.tasks.detect_soon,
    )
    parse = phases.wrap("parse", originals[0])
    parsers.JSONParser.parse = lambda self, *a, **kw: parse(self, *a, **kw)  # type: ignore[method-assign]
    probes.api.validate_batch = phases.wrap("validate", originals[1])
    probes.api.samples_store = phases.wrap("store", originals[2])
    probes.tasks.detect_soon = phases.wrap("enqueue", originals[3])
    recorder = SqlRecorder()
    parts: list[dict[str, float]] = []
    client = Client()
    # This process holds every prepared batch (millions of objects); a server process
    # does not. Out of the collector's sight, they no longer slow each request's
    # garbage collections down (which made validate_batch look 50x slower here).
    gc.collect()
    gc.freeze()
    try:
        with recorder.recording():
            for n, body in enumerate(bodies[1 + timed_batches :]):
                phases.reset()
                started = time.perf_counter()
                response = client.post(
                    INGEST_PATH,
                    body,
                    content_type="application/json",
                    headers={"Authorization": headers["Authorization"]},
                    secure=True,
                )
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise SystemExit(
                        f"test client POST: {response.status_code} {response.content[:500]!r}"
                    )
                if n == 0:  # the first request of this process sets Django up
                    recorder.stats.clear()
                else:
                    parts.append({**phases.wall, "total": elapsed})
    except Exception as error:  # diagnostics only: the measurement above stands
        log(f"  (no breakdown: the request failed in this process: {error!r})")
        parts = []
    finally:
        (
            parsers.JSONParser.parse,
            probes.api.validate_batch,
            probes.api.samples_store,
            probes.tasks.detect_soon,
        ) = originals  # type: ignore[method-assign]
    if parts:
        n = len(parts)
        names = ("parse", "validate", "store")
        rest = med([p["total"] - sum(p.get(k, 0.0) for k in names) for p in parts])
        log(
            f"  where a POST goes (in-process, {n} extra batch{'es' * (n > 1)}, total"
            f" {ms(med([p['total'] for p in parts]))}): "
            + ", ".join(f"{k} {ms(med([p.get(k, 0.0) for p in parts]))}" for k in names)
            + f" (of which queueing detection {ms(med([p.get('enqueue', 0.0) for p in parts]))})"
            + f", rest {ms(rest)}"
        )
        for key, (count, seconds, rows_) in sorted(
            recorder.stats.items(), key=lambda kv: -kv[1][1]
        )[:8]:
            log(
                f"      {key:<34} {count / n:>6.0f} statements {ms(seconds / n):>10}"
                f" {rows_ / n:>9,.0f} rows"
            )
    ratio = ours_rate / copy_rate
    log(f"  target ≥ {HTTP_TARGET} x COPY: {ratio:.2f} x, {verdict(ratio >= HTTP_TARGET)}")
    return ours_rate, copy_rate


# --- main --------------------------------------------------------------------------------


def migrations_unapplied() -> list[str]:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny, fast run (CI)")
    parser.add_argument("--shards", type=int, help="simulated shards (default 1000)")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="simulator's answer delay")
    parser.add_argument("--rounds", type=int, help="measured probe rounds per side (default 11)")
    parser.add_argument(
        "--interval", type=float, help="seconds from one round to the next (default 10)"
    )
    parser.add_argument("--hang-rounds", type=int, help="rounds with 10 %% hanging (default 3)")
    parser.add_argument("--hang-timeout", type=float, help="probe timeout then (default 2 s)")
    parser.add_argument("--samples", type=int, help="samples for ingest (default 100,000)")
    parser.add_argument("--batch", type=int, help="samples per ingest batch (default 1000)")
    parser.add_argument("--http-samples", type=int, help="samples for ingest-http (default 100k)")
    parser.add_argument("--http-batch", type=int, help="samples per POST (default 1000)")
    # Internal: this script runs its own worker-like child processes.
    parser.add_argument("--child", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--region", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args)

    smoke = args.smoke
    defaults = {
        "shards": (50, 1000),
        "rounds": (2, 11),
        "interval": (0.0, 10.0),
        "hang_rounds": (1, 3),
        "hang_timeout": (1.0, 2.0),
        "samples": (2000, 100_000),
        "batch": (500, 1000),
        "http_samples": (2000, 100_000),
        "http_batch": (500, 1000),
    }
    for name, (tiny, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, tiny if smoke else full)
    args.explain_runs = 1 if smoke else 2
    if not 10 <= args.shards <= 9999:
        parser.error("--shards must be between 10 and 9999")
    if args.http_batch > 5000:
        parser.error("--http-batch: the API takes at most 5000 samples per batch")

    url = database_url()
    workdir = Path(tempfile.mkdtemp(prefix="bench-probes-"))
    # Runtime files (file cache for the throttle, Celery's filesystem broker) of this
    # process, its children and gunicorn go here, not into the tree's var/.
    os.environ["STATUSPAGE_VAR_DIR"] = str(workdir / "var")
    os.environ["DJANGO_SECURE_SSL_REDIRECT"] = "0"
    os.environ["PROBE_INGEST_RATE"] = "100000/min"
    # WhiteNoise's, about a STATIC_ROOT that collectstatic never filled here.
    warnings.filterwarnings("ignore", message="No directory at")
    setup_django(url)
    from django.db import connection

    with connection.cursor() as cursor:
        meta = meta_read(cursor)
    if meta is None:
        log(f"No dataset in {connection.settings_dict['NAME']}: run `make bench-data` first.")
        return 2
    unapplied = migrations_unapplied()
    if unapplied:
        log(
            f"WARNING: {len(unapplied)} migration(s) not applied to this database"
            f" ({', '.join(unapplied)}): `make bench-data` applies them and keeps the data."
        )
    log(
        f"dataset {connection.settings_dict['NAME']}: {meta['tailnets']:,} tailnets on"
        f" {meta['shards']} shards; load average {load()} ({os.cpu_count()} CPUs)"
    )
    leftovers = cleanup()
    if leftovers:
        log(f"removed what an earlier run left behind: {leftovers}")
    sim: Simulator | None = None
    try:
        sim = Simulator(args.latency_ms, workdir)
        shards, regions = setup_fleet(args.shards, sim.url)
        vacuum()
        round_ = measure_round(args, shards, sim, workdir)
        sim.stop()
        sim = None
        cleanup_samples = [s.pk for s in shards]
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM probes_probesample WHERE shard_id = ANY(%s)", [cleanup_samples]
            )
        vacuum()
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as raw:
            raw.execute("SET TimeZone = 'UTC'")
            ingest = measure_ingest(args, shards, regions, raw)
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM probes_probesample WHERE shard_id = ANY(%s)", [cleanup_samples]
                )
            ingest_http = measure_http(args, shards, regions, raw, workdir)
    finally:
        if sim is not None:
            sim.stop()
        removed = cleanup()
        vacuum()
        shutil.rmtree(workdir, ignore_errors=True)
        log(f"cleaned up: {removed}")
    log(
        f"probe-round: ours={round_[0]:.4f}s baseline={round_[1]:.4f}s"
        f" ratio={round_[0] / round_[1]:.2f}"
    )
    log(
        f"ingest: ours={ingest[0]:.0f}/s baseline={ingest[1]:.0f}/s"
        f" ratio={ingest[0] / ingest[1]:.2f}"
    )
    log(
        f"ingest-http: ours={ingest_http[0]:.0f}/s baseline={ingest_http[1]:.0f}/s"
        f" ratio={ingest_http[0] / ingest_http[1]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
