"""The regions suite's harness: the status page on this host, three probe agents each in
a network namespace of its own, and the links between them to cut.

One session:

- a PostgreSQL database of its own (``regions``, dropped and created, migrated with
  ``manage.py migrate``), Redis db 13 (cache) and db 14 (broker), both flushed;
- an address for the status page and the simulator that is not loopback: 10.77.0.1/32
  on a ``dummy`` link made for the run (an ``ifb`` link where the kernel has no dummy
  driver: any link holds a local address the same way);
- per region rN a namespace with its loopback up and a veth pair, host side
  10.77.N.1/30, namespace side 10.77.N.2/30, the default route via the host side: the
  agent there reaches 10.77.0.1 over its veth only, so setting the host side down cuts
  it off from the page and from the shards alike, as a region losing its uplink;
- gunicorn (``gunicorn.conf.py``) bound to 127.0.0.1 and 10.77.0.1, a Celery worker
  on the ``celery`` queue (detection), the fleet simulator on 10.77.0.1, seeded with
  ``regions/seed.py`` through ``manage.py shell``, and ``python -m probes.agent`` per
  region through ``ip netns exec``.

Names (namespaces, links) carry a per-run id; a ledger (var/regions-ledger.json)
names every process group, namespace and link the suite made and has not removed, so
a run killed before its clean-up has its leftovers removed by the next one. Only
loopback and 10.77.0.0/16 carry traffic.

Settings (environment): ``REGIONS_PG_ADMIN_URL`` (default
postgres://postgres@127.0.0.1:5432/postgres, a superuser: drops and creates
``regions``), ``REGIONS_REDIS_URL`` (default redis://127.0.0.1:6379; dbs 13 and 14
only). Figures go to var/regions-figures.txt.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
FIGURES = ROOT / "var" / "regions-figures.txt"
RUN_DIR = ROOT / "var" / "regions-run"
LEDGER = ROOT / "var" / "regions-ledger.json"
SEED = Path(__file__).resolve().parent / "seed.py"

PG_ADMIN_URL = os.environ.get("REGIONS_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_SERVER_URL = os.environ.get("REGIONS_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
DATABASE = "regions"
CACHE_DB = 13
BROKER_DB = 14
# Other suites' and benchmarks' dbs: never touched here.
FORBIDDEN_DBS = frozenset({7, 8, 11, 12})
assert not {CACHE_DB, BROKER_DB} & FORBIDDEN_DBS

# Rounds short enough for the scenarios to fit in minutes; a probe gives up before the
# next round is due, so a cut-off region still takes one sample per round.
INTERVAL = 3
PROBE_TIMEOUT_SECONDS = 2
# Detection runs this long after samples commit (the product's default is 2 s, tuned
# for 30-second rounds); with 3-second rounds, 0.5 s keeps detection well inside 3 rounds.
DETECT_DELAY_SECONDS = 0.5
WORKER_CONCURRENCY = 2

HOST_ADDRESS = "10.77.0.1"
REGIONS = ("r1", "r2", "r3")
COMPONENTS = {"rg-alpha": "Regions suite alpha", "rg-beta": "Regions suite beta"}
SHARDS = {"rg-alpha": ["rg-a1", "rg-a2"], "rg-beta": ["rg-b1", "rg-b2"]}
ALL_SHARDS = tuple(shard for shards in SHARDS.values() for shard in shards)

T = TypeVar("T")


def log(message: str) -> None:
    print(f"[regions {time.strftime('%H:%M:%S')}] {message}", file=sys.__stdout__, flush=True)


def wait_for(what: str, check: Callable[[], T | None], *, timeout: float, every: float = 0.5) -> T:
    """Poll ``check`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = check()
        except Exception as error:  # readiness probes fail until ready
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", "", ""))


def tick_of(moment: datetime | float) -> int:
    """The round a sample belongs to: agents probe on ticks aligned to the clock (every
    INTERVAL seconds), a sample starts a hair after its tick."""
    seconds = moment.timestamp() if isinstance(moment, datetime) else moment
    return round(seconds / INTERVAL)


def ticks_between(start: float, end: float) -> list[int]:
    """The ticks strictly inside (start, end), as Unix seconds / INTERVAL."""
    return list(range(math.floor(start / INTERVAL) + 1, math.ceil(end / INTERVAL)))


def gaps(
    coverage: dict[tuple[str, str], dict[int, int]],
) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """The (region, shard, tick)s of a coverage with no sample, and with more than one."""
    missing = [
        (*key, tick) for key, counts in coverage.items() for tick, n in counts.items() if not n
    ]
    twice = [
        (*key, tick) for key, counts in coverage.items() for tick, n in counts.items() if n > 1
    ]
    return missing, twice


# --- The ledger ---------------------------------------------------------------------------


def _ledger() -> dict[str, list[Any]]:
    if LEDGER.exists():
        data: dict[str, list[Any]] = json.loads(LEDGER.read_text())
        return data
    return {"pids": [], "netns": [], "links": []}


def _ledger_save(data: dict[str, list[Any]]) -> None:
    LEDGER.parent.mkdir(parents=True, exist_ok=True)
    tmp = LEDGER.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(LEDGER)


def ledger_add(kind: str, entry: Any) -> None:
    data = _ledger()
    data.setdefault(kind, []).append(entry)
    _ledger_save(data)


def ledger_remove(kind: str, entry: Any) -> None:
    data = _ledger()
    data[kind] = [item for item in data.get(kind, []) if item != entry]
    _ledger_save(data)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(  # noqa: S603 - iproute2 with our own arguments
        [IP, *args], capture_output=True, text=True, timeout=20, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def _find_ip() -> str:
    for candidate in (shutil.which("ip"), "/usr/sbin/ip", "/sbin/ip", "/bin/ip"):
        if candidate and Path(candidate).exists():
            return candidate
    return ""


IP = _find_ip()


def reap_leftovers() -> None:
    """Remove what an earlier run made and never removed (it was killed): its process
    groups (each only if its pid still runs the very command the suite started), then
    its namespaces and links."""
    if not LEDGER.exists():
        return
    data = _ledger()
    for entry in data.get("pids", []):
        pid, argvs = int(entry["pid"]), [list(argv) for argv in entry["argvs"]]
        try:
            running = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        command = [part.decode(errors="replace") for part in running]
        # A script's interpreter comes first (gunicorn, celery: "python .../celery ...").
        if command in argvs or ("python" in Path(command[0]).name and command[1:] in argvs):
            log(f"ending a process group left by an earlier run: {pid} {' '.join(argvs[0])}")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    for entry in data.get("pids", []):
        while time.monotonic() < deadline and Path(f"/proc/{int(entry['pid'])}").exists():
            stat = Path(f"/proc/{int(entry['pid'])}/stat")
            with contextlib.suppress(OSError):
                if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.1)
    for name in data.get("netns", []):
        if ip("netns", "del", name, check=False).returncode == 0:
            log(f"removed namespace {name} left by an earlier run")
    for name in data.get("links", []):
        if ip("link", "del", name, check=False).returncode == 0:
            log(f"removed link {name} left by an earlier run")
    LEDGER.unlink(missing_ok=True)


# --- Preconditions ------------------------------------------------------------------------


def pytest_sessionstart(session: pytest.Session) -> None:
    """The servers must answer and namespaces must be possible: fail loudly, never skip."""
    if not IP:
        pytest.exit("FATAL: no `ip` (Debian's iproute2): apt-get install iproute2", returncode=1)
    probe = f"rgpre{secrets.token_hex(2)}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        pytest.exit(
            f"FATAL: cannot create a network namespace (`ip netns add`: "
            f"{made.stderr.strip()}); the regions suite needs root and CAP_SYS_ADMIN",
            returncode=1,
        )
    ip("netns", "del", probe, check=False)
    pair = ip("link", "add", f"{probe}a", "type", "veth", "peer", "name", f"{probe}b", check=False)
    if pair.returncode != 0:
        pytest.exit(f"FATAL: cannot create a veth pair: {pair.stderr.strip()}", returncode=1)
    ip("link", "del", f"{probe}a", check=False)
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as error:
        pytest.exit(f"FATAL: PostgreSQL at {PG_ADMIN_URL} is unreachable: {error}", returncode=1)
    try:
        redis.Redis.from_url(f"{REDIS_SERVER_URL}/{CACHE_DB}", socket_connect_timeout=5).ping()
    except Exception as error:
        pytest.exit(f"FATAL: Redis at {REDIS_SERVER_URL} is unreachable: {error}", returncode=1)
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(f"# regions suite, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n")


_failed: list[str] = []
_session_started = time.monotonic()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        _failed.append(item.nodeid)
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES.exists():
        terminalreporter.write_sep("=", f"regions suite figures ({FIGURES.relative_to(ROOT)})")
        for line in FIGURES.read_text().splitlines():
            if not line.startswith("#"):
                terminalreporter.write_line(line)
    terminalreporter.write_line(f"run time: {time.monotonic() - _session_started:.0f} s")


class Figures:
    def add(self, line: str) -> None:
        log(f"FIGURE {line}")
        with FIGURES.open("a") as out:
            out.write(line + "\n")


@pytest.fixture(scope="session")
def figures() -> Figures:
    return Figures()


# --- The network --------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One region's namespace and its veth pair."""

    region: str
    netns: str
    host_link: str
    ns_link: str
    host_ip: str
    ns_ip: str


class Network:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.anchor = f"rg{run_id}d0"
        self.anchor_kind = ""
        self.sites = {
            region: Site(
                region=region,
                netns=f"rg-{run_id}-{region}",
                host_link=f"rg{run_id}h{n}",
                ns_link=f"rg{run_id}n{n}",
                host_ip=f"10.77.{n}.1",
                ns_ip=f"10.77.{n}.2",
            )
            for n, region in enumerate(REGIONS, start=1)
        }

    def up(self) -> None:
        taken = ip("-o", "-4", "addr", "show").stdout
        clashes = [line.split()[1] for line in taken.splitlines() if " 10.77." in line]
        if clashes:
            raise AssertionError(
                f"10.77.0.0/16 is already in use on {', '.join(sorted(set(clashes)))}, not "
                f"by a run of this suite (none in {LEDGER.name}): remove it first"
            )
        # In the ledger before it exists: a run killed in between leaves nothing behind.
        ledger_add("links", self.anchor)
        for kind in ("dummy", "ifb"):
            if ip("link", "add", self.anchor, "type", kind, check=False).returncode == 0:
                self.anchor_kind = kind
                break
            log(f"no {kind} links on this kernel; trying the next kind")
        if not self.anchor_kind:
            raise AssertionError(f"could not create a dummy (or ifb) link {self.anchor}")
        ip("addr", "add", f"{HOST_ADDRESS}/32", "dev", self.anchor)
        ip("link", "set", self.anchor, "up")
        log(f"{HOST_ADDRESS}/32 on {self.anchor} ({self.anchor_kind})")
        for site in self.sites.values():
            ledger_add("netns", site.netns)
            ledger_add("links", site.host_link)
            ip("netns", "add", site.netns)
            ip("link", "add", site.host_link, "type", "veth", "peer", "name", site.ns_link)
            ip("link", "set", site.ns_link, "netns", site.netns)
            ip("addr", "add", f"{site.host_ip}/30", "dev", site.host_link)
            ip("link", "set", site.host_link, "up")
            ns = ("netns", "exec", site.netns, IP)
            ip(*ns, "link", "set", "lo", "up")
            ip(*ns, "addr", "add", f"{site.ns_ip}/30", "dev", site.ns_link)
            ip(*ns, "link", "set", site.ns_link, "up")
            ip(*ns, "route", "add", "default", "via", site.host_ip)
            log(f"{site.netns}: {site.ns_ip} on {site.ns_link}, default via {site.host_ip}")

    def cut(self, region: str) -> None:
        ip("link", "set", self.sites[region].host_link, "down")
        log(f"cut {region}: {self.sites[region].host_link} down")

    def restore(self, region: str) -> None:
        ip("link", "set", self.sites[region].host_link, "up")
        log(f"restored {region}: {self.sites[region].host_link} up")

    def restore_all(self) -> None:
        for region, site in self.sites.items():
            state = ip("-o", "link", "show", site.host_link).stdout
            if "state DOWN" in state or ",UP" not in state:
                self.restore(region)

    def down(self) -> None:
        for site in self.sites.values():
            # Deleting the namespace deletes its end of the pair, and so the pair.
            ip("netns", "del", site.netns, check=False)
            ip("link", "del", site.host_link, check=False)
            ledger_remove("netns", site.netns)
            ledger_remove("links", site.host_link)
        ip("link", "del", self.anchor, check=False)
        ledger_remove("links", self.anchor)
        left = [
            name
            for name in [self.anchor, *(s.host_link for s in self.sites.values())]
            if ip("link", "show", name, check=False).returncode == 0
        ]
        gone = set(ip("netns", "list").stdout.split())
        left += [s.netns for s in self.sites.values() if s.netns in gone]
        if left:
            raise AssertionError(f"could not remove {', '.join(left)}")
        log("namespaces and links removed")


# --- The processes ------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


class Stack:
    def __init__(self, tmp: Path, net: Network) -> None:
        self.tmp = tmp
        self.net = net
        self.processes: dict[str, Process] = {}
        self.web_port = free_port()
        self.sim_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.api_url = f"http://{HOST_ADDRESS}:{self.web_port}"
        self.sim_url = f"http://{HOST_ADDRESS}:{self.sim_port}"
        self.pg_url = with_database(PG_ADMIN_URL, DATABASE)
        self.secret_key = secrets.token_urlsafe(50)
        self.var_dir = tmp / "var"
        self.var_dir.mkdir(parents=True)
        self.token_dir = tmp / "tokens"
        self.shard_ids: dict[str, int] = {}
        self.region_ids: dict[str, int] = {}
        self._conn: psycopg.Connection[Any] | None = None
        self.started_at: dict[str, float] = {}

    def env(self) -> dict[str, str]:
        keep = ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.update(
            PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            PYTHONUNBUFFERED="1",
            DJANGO_SETTINGS_MODULE="statuspage.settings",
            DJANGO_SECRET_KEY=self.secret_key,
            DJANGO_ALLOWED_HOSTS=f"127.0.0.1,{HOST_ADDRESS}",
            DJANGO_SECURE_SSL_REDIRECT="0",
            DJANGO_SECURE_COOKIES="0",
            DJANGO_HSTS_SECONDS="0",
            STATUSPAGE_PUBLIC_URL=self.web_url,
            SNAPSHOT_DIR=str(self.var_dir / "snapshot"),
            STATUSPAGE_VAR_DIR=str(self.var_dir),
            STATIC_ROOT=str(self.var_dir / "static"),
            PROBE_INTERVAL_SECONDS=str(INTERVAL),
            PROBE_TIMEOUT_SECONDS=str(PROBE_TIMEOUT_SECONDS),
            PROBE_DETECT_DELAY_SECONDS=str(DETECT_DELAY_SECONDS),
            PROBE_AUTO_PUBLISH="1",
            PROBE_SIMULATOR_URL=self.sim_url,
            CACHE_KEY_PREFIX="regions",
            LOG_LEVEL="INFO",
            DATABASE_URL=self.pg_url,
            REDIS_URL=f"{REDIS_SERVER_URL}/{CACHE_DB}",
            CELERY_BROKER_URL=f"{REDIS_SERVER_URL}/{BROKER_DB}",
        )
        return env

    def agent_env(self) -> dict[str, str]:
        """The agent needs no Django, database or broker: none of it is passed."""
        keep = ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.update(PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # Commands ---------------------------------------------------------------------------

    def manage_argv(self, *args: str) -> list[str]:
        return [PYTHON, "manage.py", *args]

    def manage(self, *args: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
        started = time.monotonic()
        done = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            self.manage_argv(*args),
            cwd=ROOT,
            env={**self.env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = done.stdout + done.stderr
        shown = args[0] if args[0] == "shell" else " ".join(args)
        with (self.tmp / "setup.log").open("a") as out:
            out.write(f"$ manage.py {shown}  (exit {done.returncode})\n{output}\n")
        if done.returncode != 0:
            raise AssertionError(f"manage.py {shown} failed (exit {done.returncode}):\n{output}")
        log(f"manage.py {shown}: {time.monotonic() - started:.1f} s")
        return done.stdout

    def seed(self) -> None:
        spec = {
            "simulator_url": self.sim_url,
            "token_dir": str(self.token_dir),
            "components": COMPONENTS,
            "shards": SHARDS,
            "regions": list(REGIONS),
        }
        out = self.manage("shell", "-c", SEED.read_text(), env={"REGIONS_SEED": json.dumps(spec)})
        made = json.loads(out.strip().splitlines()[-1])
        self.shard_ids, self.region_ids = made["shards"], made["regions"]

    # Processes --------------------------------------------------------------------------

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        netns: str | None = None,
    ) -> Process:
        """Start ``argv`` in a process group of its own (inside ``netns`` if given:
        ``ip netns exec`` execs it, so the pid is the command's own)."""
        full = [IP, "netns", "exec", netns, *argv] if netns else argv
        path = self.tmp / f"{name}.log"
        with path.open("ab") as out:
            popen = subprocess.Popen(  # noqa: S603 - our own programs
                full,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        process = Process(name, popen, path)
        self.processes[name] = process
        self.started_at[name] = time.time()
        ledger_add("pids", {"pid": popen.pid, "argvs": [full, argv]})
        log(f"started {name} (pid {popen.pid}): {' '.join(full)}")
        return process

    def start_web(self) -> Process:
        return self.start(
            "web",
            [
                str(VENV_BIN / "gunicorn"),
                "statuspage.wsgi",
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--bind",
                f"{HOST_ADDRESS}:{self.web_port}",
                "--access-logfile",
                "-",
                "--error-logfile",
                "-",
            ],
            env=self.env(),
        )

    def start_worker(self) -> Process:
        return self.start(
            "worker",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "statuspage",
                "worker",
                "--loglevel=INFO",
                "-Q",
                "celery",
                f"--concurrency={WORKER_CONCURRENCY}",
                f"--hostname=regions-{self.net.run_id}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            env=self.env(),
        )

    def start_simulator(self) -> Process:
        return self.start(
            "sim",
            self.manage_argv(
                "simulate_fleet",
                "--host",
                HOST_ADDRESS,
                "--port",
                str(self.sim_port),
                # 10.77.0.1 is on a link of this host only (no route leads to it from
                # outside): the control endpoints stay on this machine.
                "--allow-remote",
            ),
            env=self.env(),
        )

    def buffer_dir(self, region: str) -> Path:
        return self.tmp / f"agent-{region}"

    def start_agent(self, region: str) -> Process:
        return self.start(
            f"agent-{region}",
            [
                PYTHON,
                "-m",
                "probes.agent",
                "--region",
                region,
                "--api",
                self.api_url,
                "--token-file",
                str(self.token_dir / f"{region}.token"),
                "--buffer",
                str(self.buffer_dir(region)),
            ],
            env=self.agent_env(),
            netns=self.net.sites[region].netns,
        )

    def start_named(self, name: str) -> Process:
        if name == "web":
            return self.start_web()
        if name == "worker":
            return self.start_worker()
        if name == "sim":
            return self.start_simulator()
        return self.start_agent(name.removeprefix("agent-"))

    def stop(self, name: str, sig: int = signal.SIGTERM, *, timeout: float = 40) -> None:
        """Signal ``name``'s process group; wait until it is gone (SIGKILL after
        ``timeout``)."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, sig)
        try:
            process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait(timeout=10)
        wait_for(
            f"{name}'s process group to end",
            lambda: not group_alive(process.popen.pid),
            timeout=20,
            every=0.1,
        )
        ledger_remove_pid(process.popen.pid)

    def stop_all(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name in list(self.processes):
            process = self.processes.pop(name)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=10)
            ledger_remove_pid(process.popen.pid)

    def alive(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.popen.poll() is None

    def names(self) -> list[str]:
        return ["sim", "web", "worker", *(f"agent-{region}" for region in REGIONS)]

    def ensure_running(self) -> list[str]:
        """Start again whatever died (a failure of the scenario it died in, reported
        there), so each scenario starts with everything up."""
        restarted = []
        for name in self.names():
            if self.alive(name):
                continue
            if name in self.processes:
                ledger_remove_pid(self.processes.pop(name).popen.pid)
            log(f"{name} is not running: starting it again")
            self.start_named(name)
            restarted.append(name)
        if "web" in restarted:
            self.wait_web()
        return restarted

    def wait_web(self, timeout: float = 90) -> None:
        token = (self.token_dir / f"{REGIONS[0]}.token").read_text().strip()

        def serving() -> bool:
            for base in (self.web_url, self.api_url):
                answer = requests.get(
                    f"{base}/api/v1/probes/shards",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                )
                if answer.status_code != 200:
                    return False
            return True

        wait_for("gunicorn to serve the probe API", serving, timeout=timeout)

    def log_text(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    # Data -------------------------------------------------------------------------------

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.pg_url, autocommit=True, connect_timeout=5)
        return self._conn.execute(query, params).fetchall()

    def one(self, query: str, params: Any = None) -> Any:
        rows = self.sql(query, params)
        return rows[0][0] if rows else None

    def samples(
        self, *, region: str | None = None, shard: str | None = None, since: float = 0.0
    ) -> list[tuple[str, str, datetime, bool]]:
        """(shard, region, started_at, ok) of the samples stored since ``since``."""
        rows = self.sql(
            """
            SELECT sh.slug, r.slug, s.started_at, s.ok
            FROM probes_probesample s
            JOIN incidents_shard sh ON sh.id = s.shard_id
            JOIN probes_proberegion r ON r.id = s.region_id
            WHERE s.started_at >= to_timestamp(%s)
              AND (%s::text IS NULL OR r.slug = %s) AND (%s::text IS NULL OR sh.slug = %s)
            ORDER BY s.started_at
            """,
            [since, region, region, shard, shard],
        )
        return [(str(a), str(b), c, bool(d)) for a, b, c, d in rows]

    def coverage(
        self, ticks: list[int], *, regions: tuple[str, ...] = REGIONS, since: float
    ) -> dict[tuple[str, str], dict[int, int]]:
        """Per (region, shard): how many samples each of ``ticks`` has."""
        found: dict[tuple[str, str], dict[int, int]] = {
            (region, shard): dict.fromkeys(ticks, 0) for region in regions for shard in ALL_SHARDS
        }
        for shard, region, at, _ in self.samples(since=since):
            key = (region, shard)
            if key in found and tick_of(at) in found[key]:
                found[key][tick_of(at)] += 1
        return found

    def duplicates(self) -> int:
        """(shard, region, started_at) stored more than once: the unique constraint
        forbids it, checked all the same."""
        return int(
            self.one(
                "SELECT count(*) FROM (SELECT 1 FROM probes_probesample "
                "GROUP BY shard_id, region_id, started_at HAVING count(*) > 1) d"
            )
        )

    def incidents_since(self, since: float) -> list[tuple[int, datetime, datetime, Any, bool]]:
        """(id, started_at, detected_at, resolved_at, published) of the incidents
        detection opened since ``since``."""
        rows = self.sql(
            "SELECT id, started_at, detected_at, resolved_at, published FROM incidents_incident "
            "WHERE source = 'probe' AND created_at >= to_timestamp(%s) ORDER BY id",
            [since],
        )
        return [(int(a), b, c, d, bool(e)) for a, b, c, d, e in rows]

    def down_shards(self) -> list[str]:
        rows = self.sql(
            "SELECT sh.slug FROM probes_shardstate st JOIN incidents_shard sh "
            "ON sh.id = st.shard_id WHERE st.state = 'down' ORDER BY sh.slug"
        )
        return [str(row[0]) for row in rows]

    def buffered(self, region: str) -> list[tuple[str, str]]:
        """(shard, started_at) of the samples waiting in the agent's buffer on disk."""
        path = self.buffer_dir(region) / "buffer.sqlite3"
        if not path.exists():
            return []
        db = sqlite3.connect(path, timeout=5)
        try:
            rows = db.execute("SELECT body FROM sample ORDER BY id").fetchall()
        finally:
            db.close()
        bodies = [json.loads(body) for (body,) in rows]
        return [(str(b["shard"]), str(b["started_at"])) for b in bodies]

    def buffer_depth(self, region: str) -> int:
        path = self.buffer_dir(region) / "buffer.sqlite3"
        if not path.exists():
            return 0
        db = sqlite3.connect(path, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM sample").fetchone()[0])
        finally:
            db.close()

    def drained(self, region: str) -> bool:
        return self.buffer_depth(region) == 0

    def simulator(self, method: str, path: str, body: Any = None) -> Any:
        answer = requests.request(method, f"{self.sim_url}{path}", json=body, timeout=5)
        answer.raise_for_status()
        return answer.json()

    def close(self) -> None:
        self.stop_all()
        if self._conn is not None:
            self._conn.close()


def ledger_remove_pid(pid: int) -> None:
    data = _ledger()
    data["pids"] = [entry for entry in data.get("pids", []) if int(entry["pid"]) != pid]
    _ledger_save(data)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies count as gone: only their parent (us, or init) can reap them.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


# --- Set-up -------------------------------------------------------------------------------


def database_recreate() -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")


def redis_flush() -> None:
    for db in (CACHE_DB, BROKER_DB):
        redis.Redis.from_url(f"{REDIS_SERVER_URL}/{db}", socket_timeout=5).flushdb()


def dump_logs(tmp: Path, lines: int = 40) -> None:
    for path in sorted(tmp.glob("*.log")):
        text = path.read_text(errors="replace").splitlines()
        log(f"----- {path.name}: last {min(lines, len(text))} of {len(text)} lines -----")
        for line in text[-lines:]:
            print(f"  {line}", file=sys.__stdout__, flush=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    started = time.monotonic()
    reap_leftovers()
    tmp = RUN_DIR
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log(f"run directory (logs, agents' buffers): {tmp}")
    net = Network(secrets.token_hex(2))
    stack = Stack(tmp, net)
    try:
        net.up()
        database_recreate()
        redis_flush()
        # collectstatic needs no database: beside migrate, to save the time.
        static = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            stack.manage_argv("collectstatic", "--noinput"),
            cwd=ROOT,
            env=stack.env(),
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "collectstatic.log").open("wb"),
        )
        stack.start_simulator()
        stack.manage("migrate", "--noinput", timeout=600)
        stack.seed()
        if static.wait(timeout=300) != 0:
            raise AssertionError(f"collectstatic failed: see {tmp / 'collectstatic.log'}")
        stack.start_web()
        stack.start_worker()
        wait_for(
            "the simulator",
            lambda: requests.get(f"{stack.sim_url}/_control/health", timeout=2).ok,
            timeout=60,
        )
        stack.wait_web()
        for region in REGIONS:
            stack.start_agent(region)
        wait_for("the worker", lambda: " ready." in stack.log_text("worker"), timeout=90)
        since = time.time()
        wait_for(
            "a round from every region on every shard",
            lambda: (
                len({(s, r) for s, r, _, _ in stack.samples(since=since)})
                == len(REGIONS) * len(ALL_SHARDS)
            ),
            timeout=60,
        )
        log(f"stack ready in {time.monotonic() - started:.0f} s")
        yield stack
    except BaseException:
        _failed.append("set-up")
        raise
    finally:
        try:
            stack.close()
        finally:
            net.down()
            if _failed:
                log(f"failures in {', '.join(_failed)}: the processes' logs follow")
                dump_logs(tmp)
            log(f"logs kept in {tmp}")
            remaining = _ledger()
            if not any(remaining.values()):
                LEDGER.unlink(missing_ok=True)


@pytest.fixture
def alive(stack: Stack) -> Iterator[Stack]:
    """Every link up and every process running before the scenario; afterwards, the
    scenario fails if one died during it (the next one starts it again)."""
    stack.net.restore_all()
    stack.ensure_running()
    # No backlog from the last scenario: each agent's disk empty for a moment.
    for region in REGIONS:
        wait_for(
            f"{region}'s agent to deliver its backlog",
            functools.partial(stack.drained, region),
            timeout=60,
            every=0.05,
        )
    yield stack
    stack.net.restore_all()
    died = [name for name in stack.names() if not stack.alive(name)]
    assert not died, f"died during the scenario: {', '.join(died)} (see {stack.tmp})"
