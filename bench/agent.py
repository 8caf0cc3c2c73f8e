"""The probe agent at 1,000 shards: samples per second into the ingestion API, and its
memory.

    make bench-agent                       # ~2 minutes
    make bench-agent BENCH_ARGS="--smoke"  # seconds (CI)

Its own PostgreSQL database (``<BENCH_DATABASE_URL's name>_agent``: dropped, created and
migrated each run; it needs no dataset), ``--shards`` shards served by the fleet
simulator (``manage.py simulate_fleet``, its own process), one probe region with its
token, and gunicorn (``gunicorn.conf.py``, 2 workers x 1 thread) serving the API.

(1) agent-ingest: ``--backlog`` samples (the shards x N rounds, in the last hour) wait in
    an agent's on-disk buffer, as after an outage of the status page. *Ours*: the agent
    (``python -m probes.agent``, its own process, probing the shards meanwhile) from
    start until its buffer is empty: samples per second into the API. *Baseline*: bare
    aiohttp POSTing the same batches (1,000 samples, the agent's default) one after the
    other to the same API, on another region's token. ratio = ours / baseline (higher
    is better).
(2) agent-rss: the agent's peak RSS (VmHWM) after ``--rounds`` rounds of probing every
    shard at ``--interval`` seconds, and the samples it delivered meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ROOT, database_url

PYTHON = sys.executable
BATCH = 1000


def log(message: str = "") -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback server
                return
        except OSError as error:
            if getattr(error, "code", None):  # an HTTP answer: it is up
                return
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def vm(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def fresh_database(base: str) -> str:
    parts = urlsplit(base)
    name = parts.path.lstrip("/") + "_agent"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name))


SEED = """
import json, os
from datetime import timedelta
from django.utils import timezone
from incidents.models import Component, Shard
from plumbing.tokens import api_token_create
from probes.models import ProbeRegion
sim, shards = os.environ["BENCH_SIM"], int(os.environ["BENCH_SHARDS"])
since = timezone.now() - timedelta(days=1)
component = Component.objects.create(slug="coordination", name="Coordination",
    kind="coordination", region="bench", created_at=since)
Shard.objects.bulk_create(Shard(slug=f"agentbench-{n:04d}", region="bench",
    public_name=f"Bench {n}", component=component, created_at=since,
    probe_url=f"{sim}/s/agentbench-{n:04d}/key?v=88") for n in range(shards))
tokens = {}
for slug in ("agent", "bare"):
    region = ProbeRegion.objects.create(slug=slug, name=slug)
    tokens[slug] = api_token_create(name=f"bench {slug}", scope="probe", probe_region=region)[1]
print(json.dumps(tokens))
"""


class Stack:
    def __init__(self, workdir: Path, url: str, shards: int, interval: int) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-agent-" + "x" * 40,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "STATUSPAGE_VAR_DIR": str(workdir / "var"),
            "SNAPSHOT_DIR": str(workdir / "snapshot"),
            "CELERY_BROKER_URL": "memory://",
            "PROBE_INTERVAL_SECONDS": str(interval),
            "PROBE_INGEST_RATE": "100000/min",
            "SNAPSHOT_FOLLOW_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
        }
        self.env.pop("REDIS_URL", None)
        self.sim_port, self.web_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.web_port}"
        self.shards = shards

    def manage(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(  # noqa: S603 - our own manage.py
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def start(
        self, argv: list[str], log_name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = (self.workdir / f"{log_name}.log").open("wb")
        proc = subprocess.Popen(  # noqa: S603 - fixed arguments
            argv,
            cwd=ROOT,
            env=env or self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def up(self) -> dict[str, str]:
        self.manage("migrate", "--noinput")
        self.start(
            [PYTHON, "manage.py", "simulate_fleet", "--port", str(self.sim_port)], "simulator"
        )
        sim = f"http://127.0.0.1:{self.sim_port}"
        wait_http(f"{sim}/s/agentbench-0000/key?v=88")
        self.env.update(BENCH_SIM=sim, BENCH_SHARDS=str(self.shards))
        tokens = json.loads(self.manage("shell", "-c", SEED).strip().splitlines()[-1])
        self.start(
            [
                PYTHON,
                "-m",
                "gunicorn",
                "statuspage.wsgi",
                "--config",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                "2",
                "--threads",
                "1",
            ],
            "gunicorn",
        )
        wait_http(f"{self.api}/healthz")
        return tokens

    def down(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def backlog(shards: int, rounds: int) -> list[dict[str, object]]:
    """``rounds`` rounds of every shard in the last hour, oldest first."""
    start = datetime.now(UTC) - timedelta(hours=1)
    step = timedelta(hours=1) / (rounds + 1)
    return [
        {
            "shard": f"agentbench-{n:04d}",
            "started_at": (start + r * step + timedelta(microseconds=n)).isoformat(),
            "ok": True,
            "latency_ms": 40.0 + n % 7,
            "connect_ms": None,
            "error": "",
            "status_code": 200,
            "detail": "",
        }
        for r in range(rounds)
        for n in range(shards)
    ]


def fill_buffer(path: Path, samples: list[dict[str, object]]) -> None:
    from probes.agent import Buffer

    buffer = Buffer(path, limit=10_000_000)
    buffer.close()
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO sample (body) VALUES (?)", [(json.dumps(s),) for s in samples])


def depth(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM sample").fetchone()[0])


async def bare_post(api: str, token: str, samples: list[dict[str, object]]) -> float:
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for i in range(0, len(samples), BATCH):
            body = {"region": "bare", "samples": samples[i : i + BATCH]}
            async with session.post(api + "/api/v1/probes/samples", json=body) as answer:
                if answer.status != 200:
                    raise SystemExit(f"bare POST: HTTP {answer.status}: {await answer.text()}")
    return len(samples) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=1000)
    parser.add_argument("--backlog-rounds", type=int, default=60)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.shards, args.backlog_rounds, args.interval, args.rounds = 20, 5, 1, 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    url = fresh_database(database_url())
    stack = Stack(workdir, url, args.shards, args.interval)
    agent = None
    try:
        tokens = stack.up()
        samples = backlog(args.shards, args.backlog_rounds)
        log(f"{args.shards} shards; a backlog of {len(samples):,} samples")

        baseline = asyncio.run(bare_post(stack.api, tokens["bare"], samples))

        (workdir / "token").write_text(tokens["agent"])
        buffer_path = workdir / "agent" / "buffer.sqlite3"
        fill_buffer(buffer_path, samples)
        started = time.perf_counter()
        agent = stack.start(
            [
                PYTHON,
                "-m",
                "probes.agent",
                "--region",
                "agent",
                "--api",
                stack.api,
                "--token-file",
                str(workdir / "token"),
                "--buffer",
                str(workdir / "agent"),
                "--log-level",
                "WARNING",
            ],
            "agent",
        )
        deadline = time.monotonic() + 600
        while depth(buffer_path) > args.shards * 2 and time.monotonic() < deadline:
            if agent.poll() is not None:
                raise SystemExit("the agent died: " + (workdir / "agent.log").read_text()[-2000:])
            time.sleep(0.2)
        ours = len(samples) / (time.perf_counter() - started)

        time.sleep(args.rounds * args.interval)
        rss = vm(agent.pid, "VmHWM")
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM probes_probesample s JOIN probes_proberegion r "
                "ON r.id = s.region_id WHERE r.slug = 'agent'"
            ).fetchone()
        delivered = int(row[0]) if row else 0
        probed = delivered - len(samples)
        log(f"agent: backlog drained; then {probed:,} samples probed and delivered live")
        ratio = ours / baseline
        log(f"agent-ingest: ours={ours:,.0f}/s baseline={baseline:,.0f}/s ratio={ratio:.2f}")
        rounds = f"{args.rounds} rounds, interval {args.interval} s"
        log(f"agent-rss: {rss:.1f} MB peak at {args.shards} shards ({rounds})")
        if probed < args.shards * (args.rounds - 1):
            raise SystemExit(f"the agent delivered too few live samples: {probed}")
    finally:
        stack.down()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
