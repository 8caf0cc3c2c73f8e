"""The fault suite's harness: the real processes, each behind its own proxy ports.

One session: a PostgreSQL database of its own (``faults``, dropped and created), Redis
db 11 (cache) and db 12 (broker), both flushed; migrated and seeded with the real
commands through direct connections; then gunicorn (as in production), a Celery
worker, beat and the fleet simulator, each reaching PostgreSQL, the cache and the
broker through listeners of ``faults.proxy`` (in this process) that count its
connection attempts; and one probe agent (``python -m probes.agent``) per active probe
region, which talks HTTP to gunicorn only, as in production. Scenarios put faults on
the proxy, never on the shared servers.

Settings (environment): ``FAULTS_PG_ADMIN_URL`` (default
postgres://postgres@127.0.0.1:5432/postgres: a superuser, to drop and create
``faults``), ``FAULTS_REDIS_URL`` (default redis://127.0.0.1:6379: the server; the
suite uses dbs 11 and 12 only). Figures go to var/faults-figures.txt.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests

from demo.story import PEOPLE
from faults.proxy import Proxy

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
FIGURES = ROOT / "var" / "faults-figures.txt"
# Logs, the snapshot, beat's schedule and the agents' tokens and buffers of the last
# run (var/ is not in git).
RUN_DIR = ROOT / "var" / "faults-run"
# The process groups the suite started and has not stopped yet: a run killed before
# its clean-up leaves them running; the next run ends them (and only them).
LEDGER = ROOT / "var" / "faults-pids.json"

PG_ADMIN_URL = os.environ.get("FAULTS_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_SERVER_URL = os.environ.get("FAULTS_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
DATABASE = "faults"
CACHE_DB = 11
BROKER_DB = 12

# What the suite runs the product with (see the issue): short periods so that faults
# and recoveries fit in minutes.
PROBE_INTERVAL_SECONDS = 5
VISIBILITY_TIMEOUT_SECONDS = 10
BROKER_BREAKER_SECONDS = 5
# plumbing.cache.BREAKER_SECONDS (a constant of the product, not a setting).
CACHE_BREAKER_SECONDS = 30
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 8
# Enough slots that, with one recompute held at its lock in the kill scenario (and a
# periodic one queued behind it), a detection run still finds a free one.
WORKER_CONCURRENCY = 4
# The processes that reach the backends, each through listeners of its own (the probe
# agents reach none: they talk HTTP to gunicorn).
ROLES = ("web", "worker", "beat", "sim")
# Requests a probe agent has in flight at the web at once, at most: its sender's batch
# and its read of the shard list.
AGENT_REQUESTS_IN_FLIGHT = 2
BACKENDS = ("pg", "redis", "broker")

ALICE = next(person for person in PEOPLE if person.username == "alice")
ALICE_TAILNET = ALICE.memberships[0][0]

T = TypeVar("T")


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", file=sys.__stdout__, flush=True)


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
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def with_path(url: str, path: str, *, port: int | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if port is not None:
        userinfo, _, _ = parts.netloc.rpartition("@")
        netloc = f"{userinfo}@" if userinfo else ""
        netloc += f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


# --- Preconditions ------------------------------------------------------------------------


def pytest_sessionstart(session: pytest.Session) -> None:
    """The shared servers must answer: fail loudly, never skip."""
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
    FIGURES.write_text(f"# fault suite, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n")


_failed: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        _failed.append(item.nodeid)
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES.exists():
        terminalreporter.write_sep("=", f"fault suite figures ({FIGURES.relative_to(ROOT)})")
        for line in FIGURES.read_text().splitlines():
            if not line.startswith("#"):
                terminalreporter.write_line(line)


# --- Figures ------------------------------------------------------------------------------


class Figures:
    def add(self, line: str) -> None:
        log(f"FIGURE {line}")
        with FIGURES.open("a") as out:
            out.write(line + "\n")


@pytest.fixture(scope="session")
def figures() -> Figures:
    return Figures()


# --- HTTP ---------------------------------------------------------------------------------

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Browser:
    """One visitor: a cookie jar, CSRF handled, bounded timeouts, no redirects followed."""

    def __init__(self, base: str, *, timeout: float = 10.0) -> None:
        self.base = base
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "faults-suite/1"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        return self.session.get(self.base + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        return self.session.post(self.base + path, **kwargs)

    def csrf(self, form_path: str) -> str:
        token = self.session.cookies.get("csrftoken")
        if token:
            return str(token)
        page = self.get(form_path)
        found = TOKEN.search(page.text)
        if found is None:
            raise AssertionError(f"no CSRF token on {form_path} (HTTP {page.status_code})")
        return found.group(1)

    def post_form(self, path: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        return self.post(
            path,
            data={**data, "csrfmiddlewaretoken": self.csrf(path)},
            headers={"Referer": self.base + path},
            **kwargs,
        )

    def login(self, username: str, password: str) -> None:
        answer = self.post_form(
            "/accounts/login/", {"username": username, "password": password, "next": "/t/"}
        )
        if answer.status_code != 302:
            raise AssertionError(f"sign-in as {username}: HTTP {answer.status_code}")

    def logout(self) -> requests.Response:
        return self.post_form("/accounts/logout/", {})

    @property
    def session_key(self) -> str | None:
        value = self.session.cookies.get("sessionid")
        return str(value) if value else None


def report_form(*, tailnet: str = "", description: str = "") -> dict[str, str]:
    return {
        "what": "login",
        "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "tailnet": tailnet,
        "email": "",
        "description": description,
        "website": "",
    }


THANKS = re.compile(r"/report/thanks/([A-Za-z0-9_-]+)/$")


def report_id(answer: requests.Response) -> str | None:
    """The public id of a saved report, from the 303 to its confirmation page."""
    if answer.status_code != 303:
        return None
    found = THANKS.search(answer.headers.get("Location", ""))
    return found.group(1) if found else None


@dataclass
class Outcome:
    action: str
    ok: bool
    status: int | None
    seconds: float
    detail: str = ""
    at: float = field(default_factory=time.monotonic)


class Tally:
    """Outcomes of the requests made during one phase, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcomes: list[Outcome] = []

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def of(self, action: str | None = None) -> list[Outcome]:
        with self.lock:
            return [o for o in self.outcomes if action is None or o.action == action]

    def served(self, action: str | None = None) -> int:
        return sum(1 for o in self.of(action) if o.ok)

    def errors(self, action: str | None = None) -> list[Outcome]:
        return [o for o in self.of(action) if not o.ok]

    def summary(self, action: str | None = None) -> str:
        errors = self.errors(action)
        kinds = Counter(o.detail or str(o.status) for o in errors)
        text = f"{self.served(action)} served, {len(errors)} errors"
        if kinds:
            text += " (" + ", ".join(f"{k}: {n}" for k, n in kinds.most_common(4)) + ")"
        return text


def timed(
    tally: Tally, action: str, call: Callable[[], requests.Response], ok: Callable[[Any], bool]
) -> requests.Response | None:
    started = time.monotonic()
    try:
        answer = call()
    except requests.RequestException as error:
        tally.add(Outcome(action, False, None, time.monotonic() - started, type(error).__name__))
        return None
    seconds = time.monotonic() - started
    good = ok(answer)
    detail = "" if good else f"HTTP {answer.status_code}"
    tally.add(Outcome(action, good, answer.status_code, seconds, detail))
    return answer


def run_loops(
    loops: dict[str, Callable[[], None]],
    *,
    seconds: float,
    pause: float = 0.0,
    during: Callable[[], None] | None = None,
) -> None:
    """Run each loop body repeatedly in a thread of its own for ``seconds``; meanwhile
    ``during()`` once, in this thread."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def forever(body: Callable[[], None]) -> None:
        while not stop.is_set():
            try:
                body()
            except BaseException as error:  # the harness broke: report it, do not hide it
                failures.append(error)
                return
            if pause:
                stop.wait(pause)

    threads = [
        threading.Thread(target=forever, args=(body,), name=f"faults-load-{name}", daemon=True)
        for name, body in loops.items()
    ]
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.start()
    try:
        if during is not None:
            during()
        stop.wait(max(0.0, deadline - time.monotonic()))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        raise AssertionError(f"{', '.join(stuck)} did not stop within 60 s of the phase's end")
    if failures:
        raise failures[0]


def is_html(answer: requests.Response) -> bool:
    return answer.headers.get("Content-Type", "").startswith("text/html") and (
        "<html" in answer.text.lower()
    )


# --- The processes ------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    started_at: float


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.proxy = Proxy()
        self.processes: dict[str, Process] = {}
        self.stopped: list[Process] = []
        self.web_port = free_port()
        self.sim_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.pg_url = with_path(PG_ADMIN_URL, f"/{DATABASE}")
        self.cache_url = f"{REDIS_SERVER_URL}/{CACHE_DB}"
        self.broker_url = f"{REDIS_SERVER_URL}/{BROKER_DB}"
        pg, cache = urlsplit(PG_ADMIN_URL), urlsplit(REDIS_SERVER_URL)
        self.proxy.backend("pg", pg.hostname or "127.0.0.1", pg.port or 5432)
        self.proxy.backend("redis", cache.hostname or "127.0.0.1", cache.port or 6379)
        self.proxy.backend("broker", cache.hostname or "127.0.0.1", cache.port or 6379)
        self.secret_key = secrets.token_urlsafe(50)
        self.snapshot_dir = tmp / "snapshot"
        self.var_dir = tmp / "var"
        self.var_dir.mkdir()
        # Each region's probe token (manage.py seed_agent_tokens), one file per region.
        self.token_dir = self.var_dir / "agents"
        # The active probe regions, each probed by an agent of its own (set after seeding).
        self.regions: list[str] = []
        self.gunicorn_conf = (ROOT / "gunicorn.conf.py").exists()
        self._conn: psycopg.Connection[Any] | None = None
        self.web_processes = GUNICORN_WORKERS

    # Environments -----------------------------------------------------------------------

    def _base_env(self) -> dict[str, str]:
        keep = ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.update(
            PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            PYTHONUNBUFFERED="1",
            DJANGO_SETTINGS_MODULE="statuspage.settings",
            DJANGO_SECRET_KEY=self.secret_key,
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
            DJANGO_SECURE_SSL_REDIRECT="0",
            DJANGO_SECURE_COOKIES="0",
            DJANGO_HSTS_SECONDS="0",
            STATUSPAGE_PUBLIC_URL=self.web_url,
            SNAPSHOT_DIR=str(self.snapshot_dir),
            STATUSPAGE_VAR_DIR=str(self.var_dir),
            STATIC_ROOT=str(self.var_dir / "static"),
            PROBE_INTERVAL_SECONDS=str(PROBE_INTERVAL_SECONDS),
            PROBE_AUTO_PUBLISH="1",
            PROBE_SIMULATOR_URL=self.sim_url,
            CELERY_VISIBILITY_TIMEOUT_SECONDS=str(VISIBILITY_TIMEOUT_SECONDS),
            BROKER_BREAKER_SECONDS=str(BROKER_BREAKER_SECONDS),
            CACHE_KEY_PREFIX="statuspage",
            LOG_LEVEL="INFO",
        )
        return env

    def direct_env(self) -> dict[str, str]:
        """For the set-up commands and the suite's own: no proxy in the way."""
        return {
            **self._base_env(),
            "DATABASE_URL": self.pg_url,
            "REDIS_URL": self.cache_url,
            "CELERY_BROKER_URL": self.broker_url,
        }

    def agent_env(self) -> dict[str, str]:
        """A probe agent needs no Django, database, cache or broker: none of it is passed."""
        keep = ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.update(
            PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            PYTHONUNBUFFERED="1",
        )
        return env

    def role_env(self, role: str) -> dict[str, str]:
        ports = {backend: self.proxy.listen(role, backend) for backend in BACKENDS}
        return {
            **self._base_env(),
            "DATABASE_URL": with_path(self.pg_url, f"/{DATABASE}", port=ports["pg"]),
            "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/{CACHE_DB}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{ports['broker']}/{BROKER_DB}",
        }

    # Commands ---------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 300) -> str:
        """``manage.py *args`` with direct connections; its output, or a failure with it."""
        started = time.monotonic()
        done = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.direct_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = done.stdout + done.stderr
        with (self.tmp / "setup.log").open("a") as out:
            out.write(f"$ manage.py {' '.join(args)}  (exit {done.returncode})\n{output}\n")
        if done.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} failed (exit {done.returncode}):\n{output[-4000:]}"
            )
        log(f"manage.py {' '.join(args)}: {time.monotonic() - started:.1f} s")
        return done.stdout

    # Processes --------------------------------------------------------------------------

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        role: str,
        log_name: str = "",
        env: dict[str, str] | None = None,
    ) -> Process:
        """Start ``argv`` in a process group of its own, its output in a log file; with
        the environment of ``role`` (its own proxy listeners) unless ``env`` is given."""
        path = self.tmp / f"{log_name or name}.log"
        with path.open("ab") as out:
            popen = subprocess.Popen(  # noqa: S603 - our own programs
                argv,
                cwd=ROOT,
                env=env if env is not None else self.role_env(role),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        process = Process(name, popen, path, time.monotonic())
        self.processes[name] = process
        ledger_add(popen.pid, argv)
        log(f"started {name} (pid {popen.pid}): {' '.join(argv)}")
        return process

    def start_web(self) -> Process:
        argv = [
            str(VENV_BIN / "gunicorn"),
            "statuspage.wsgi",
            "--bind",
            f"127.0.0.1:{self.web_port}",
            "--access-logfile",
            "-",
            "--error-logfile",
            "-",
        ]
        if not self.gunicorn_conf:
            argv += [
                "--worker-class",
                "gthread",
                "--workers",
                str(GUNICORN_WORKERS),
                "--threads",
                str(GUNICORN_THREADS),
            ]
        return self.start("web", argv, role="web")

    def start_worker(self, log_name: str = "worker") -> Process:
        queues = self.manage("probe_queues").strip().split(",")
        if "celery" not in queues:
            queues.append("celery")
        return self.start(
            "worker",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "statuspage",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={WORKER_CONCURRENCY}",
                f"--queues={','.join(queues)}",
                f"--hostname={log_name}-{secrets.token_hex(3)}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            role="worker",
            log_name=log_name,
        )

    def start_beat(self) -> Process:
        return self.start(
            "beat",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "statuspage",
                "beat",
                "--loglevel=INFO",
                f"--schedule={self.var_dir / 'celerybeat-schedule'}",
            ],
            role="beat",
        )

    def start_simulator(self) -> Process:
        return self.start(
            "sim",
            [PYTHON, "manage.py", "simulate_fleet", "--port", str(self.sim_port)],
            role="sim",
        )

    def token_file(self, region: str) -> Path:
        return self.token_dir / f"{region}.token"

    def buffer_dir(self, region: str) -> Path:
        return self.var_dir / f"agent-{region}"

    def start_agent(self, region: str) -> Process:
        """The region's probe agent, as in production: it reads what to probe and how
        often from gunicorn (``GET /api/v1/probes/shards``, the suite's
        PROBE_INTERVAL_SECONDS) and posts its samples there, buffered on disk."""
        return self.start(
            f"agent-{region}",
            [
                PYTHON,
                "-m",
                "probes.agent",
                "--region",
                region,
                "--api",
                self.web_url,
                "--token-file",
                str(self.token_file(region)),
                "--buffer",
                str(self.buffer_dir(region)),
            ],
            role="agent",
            env=self.agent_env(),
        )

    def agent_names(self) -> list[str]:
        return [f"agent-{region}" for region in self.regions]

    def names(self) -> list[str]:
        """Every process the suite keeps running."""
        return ["sim", "web", "worker", "beat", *self.agent_names()]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group of ``name`` and wait until its leader is gone."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, sig)
        try:
            process.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait(timeout=10)
        # The group's children (prefork pool, gunicorn workers) too.
        wait_for(
            f"{name}'s process group to end",
            lambda: not group_alive(process.popen.pid),
            timeout=20,
            every=0.2,
        )
        self.stopped.append(process)

    def stop_all(self) -> None:
        for name in list(self.processes):
            process = self.processes[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name in list(self.processes):
            process = self.processes[name]
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=10)
            self.stopped.append(self.processes.pop(name))

    def wait_worker_ready(self, log_name: str) -> None:
        wait_for("the worker", lambda: " ready." in self.log_text(log_name), timeout=90)

    def ensure_running(self) -> list[str]:
        """Start again whatever died (a failure of the scenario it died in, reported
        there): each scenario starts with every process up. Returns what was started."""
        restarted = []
        for name in self.names():
            if self.alive(name):
                continue
            if name in self.processes:
                self.stopped.append(self.processes.pop(name))
            restarted.append(name)
            log(f"{name} is not running: starting it again")
            if name == "sim":
                self.start_simulator()
            elif name == "web":
                self.start_web()
            elif name == "worker":
                log_name = f"worker-restart{len(self.stopped)}"
                self.start_worker(log_name)
                self.wait_worker_ready(log_name)
            elif name == "beat":
                self.start_beat()
            else:
                # An agent picks up its buffer where it was: nothing taken is lost.
                self.start_agent(name.removeprefix("agent-"))
        if "web" in restarted:
            wait_for(
                "gunicorn to serve /",
                lambda: requests.get(self.web_url + "/", timeout=5).status_code == 200,
                timeout=90,
            )
            self.web_processes = len(wait_for("gunicorn's workers", self.web_workers, timeout=30))
        return restarted

    def alive(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.popen.poll() is None

    def log_text(self, log_name: str) -> str:
        return (self.tmp / f"{log_name}.log").read_text(errors="replace")

    def web_workers(self) -> set[int]:
        """The pids of gunicorn's workers (the children of its master)."""
        return children(self.processes["web"].popen.pid)

    # Data -------------------------------------------------------------------------------

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        """A query on the suite's database, directly (never through the proxy)."""
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.pg_url, autocommit=True, connect_timeout=5)
        return self._conn.execute(query, params).fetchall()

    def one(self, query: str, params: Any = None) -> Any:
        rows = self.sql(query, params)
        return rows[0][0] if rows else None

    def redis(self, db: int) -> redis.Redis:
        return redis.Redis.from_url(
            f"{REDIS_SERVER_URL}/{db}", socket_timeout=5, socket_connect_timeout=5
        )

    def browser(self, *, timeout: float = 10.0) -> Browser:
        return Browser(self.web_url, timeout=timeout)

    def staff_token(self) -> str:
        code = (
            "from plumbing.tokens import api_token_create; "
            "print(api_token_create(name='fault suite', scope='staff')[1])"
        )
        return self.manage("shell", "-c", code).strip().splitlines()[-1]

    # The agents' samples ----------------------------------------------------------------

    def probed_shards(self) -> dict[int, str]:
        """id -> slug of the shards the agents probe (what ``/api/v1/probes/shards``
        lists: active, with a probe URL)."""
        rows = self.sql("SELECT id, slug FROM incidents_shard WHERE active AND probe_url <> ''")
        return {int(pk): str(slug) for pk, slug in rows}

    def buffer_depth(self, region: str) -> int:
        """Samples waiting in the region's agent's buffer on disk."""
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

    def coverage(self, start: datetime, end: datetime) -> Coverage:
        """The samples stored for each tick from ``start`` to ``end``, per region and
        shard, against one each."""
        ticks = span_ticks(start, end)
        shards = self.probed_shards()
        found: Counter[tuple[str, int, int]] = Counter()
        if ticks:
            rows = self.sql(
                "SELECT r.slug, s.shard_id, s.started_at FROM probes_probesample s "
                "JOIN probes_proberegion r ON r.id = s.region_id "
                "WHERE s.started_at >= to_timestamp(%s) AND s.started_at < to_timestamp(%s)",
                [
                    (ticks[0] - 0.5) * PROBE_INTERVAL_SECONDS,
                    (ticks[-1] + 0.5) * PROBE_INTERVAL_SECONDS,
                ],
            )
            for region, shard_id, started_at in rows:
                found[(str(region), int(shard_id), tick_of(started_at))] += 1
        missing: Counter[str] = Counter()
        duplicated = stored = 0
        for region in self.regions:
            for shard_id in shards:
                for tick in ticks:
                    n = found[(region, shard_id, tick)]
                    stored += n
                    missing[region] += n == 0
                    duplicated += n > 1
        return Coverage(
            regions=len(self.regions),
            shards=len(shards),
            ticks=len(ticks),
            stored=stored,
            missing=+missing,
            duplicated=duplicated,
        )

    def wait_coverage(
        self, what: str, start: datetime, end: datetime, *, timeout: float
    ) -> Coverage:
        """``coverage`` once every tick's sample is stored, or as it is after ``timeout``
        (the agents deliver their buffers meanwhile)."""
        with contextlib.suppress(AssertionError):
            wait_for(what, lambda: self.coverage(start, end).complete, timeout=timeout, every=1)
        return self.coverage(start, end)

    def duplicates(self) -> int:
        """(shard, region, started_at) stored more than once: the unique constraint
        forbids it, counted all the same."""
        return int(
            self.one(
                "SELECT count(*) FROM (SELECT 1 FROM probes_probesample "
                "GROUP BY shard_id, region_id, started_at HAVING count(*) > 1) d"
            )
        )

    def detection_behind(self, since: datetime, cut: datetime) -> int:
        """(shard, region) pairs whose detection state has not seen the pair's latest
        sample started between ``since`` and ``cut`` (each region's ``last_at`` in
        ``probes_shardstate.regions``)."""
        return int(
            self.one(
                "SELECT count(*) FROM (SELECT s.shard_id, r.slug AS region, "
                "max(s.started_at) AS latest FROM probes_probesample s "
                "JOIN probes_proberegion r ON r.id = s.region_id "
                "WHERE s.started_at > %s AND s.started_at <= %s "
                "GROUP BY s.shard_id, r.slug) l "
                "LEFT JOIN probes_shardstate st ON st.shard_id = l.shard_id "
                "WHERE (st.regions -> 'regions' -> l.region ->> 'last_at') IS NULL "
                "OR (st.regions -> 'regions' -> l.region ->> 'last_at')::timestamptz < l.latest",
                [since, cut],
            )
        )

    def attempts(self, since: Counter[tuple[str, str]], backend: str) -> dict[str, int]:
        now = self.proxy.counts()
        return {role: now[(role, backend)] - since[(role, backend)] for role in ROLES}

    def close(self) -> None:
        self.stop_all()
        LEDGER.unlink(missing_ok=True)
        self.proxy.close()
        if self._conn is not None:
            self._conn.close()


def tick_of(moment: datetime) -> int:
    """The tick a sample belongs to: agents probe every shard on ticks aligned to the
    clock (multiples of the interval, in Unix seconds); a sample starts a moment after."""
    return round(moment.timestamp() / PROBE_INTERVAL_SECONDS)


def span_ticks(start: datetime, end: datetime) -> list[int]:
    """The ticks from ``start`` to ``end``."""
    first = math.ceil(start.timestamp() / PROBE_INTERVAL_SECONDS)
    last = math.floor(end.timestamp() / PROBE_INTERVAL_SECONDS)
    return list(range(first, last + 1))


@dataclass(frozen=True)
class Coverage:
    """Samples stored over a span of ticks, against one per region, shard and tick."""

    regions: int
    shards: int
    ticks: int
    stored: int
    missing: Counter[str]  # per region: (shard, tick) with no sample
    duplicated: int  # (region, shard, tick) with more than one

    @property
    def nominal(self) -> int:
        return self.regions * self.shards * self.ticks

    @property
    def complete(self) -> bool:
        return not self.missing and not self.duplicated

    def __str__(self) -> str:
        missing = ", ".join(f"{region} {n}" for region, n in sorted(self.missing.items()))
        return (
            f"{self.stored} of {self.nominal} ({self.regions} regions x {self.shards} shards x "
            f"{self.ticks} ticks), missing {sum(self.missing.values())}"
            + (f" ({missing})" if missing else "")
            + f", duplicated {self.duplicated}"
        )


def ledger_add(pid: int, argv: list[str]) -> None:
    entries = json.loads(LEDGER.read_text()) if LEDGER.exists() else []
    entries.append({"pid": pid, "argv": argv})
    LEDGER.write_text(json.dumps(entries))


def reap_leftovers() -> None:
    """End the process groups an earlier run started and never stopped (it was
    killed): each only if its pid still runs the very command the suite started."""
    if not LEDGER.exists():
        return
    for entry in json.loads(LEDGER.read_text()):
        pid, argv = int(entry["pid"]), list(entry["argv"])
        try:
            running = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        if [part.decode(errors="replace") for part in running] == argv:
            log(f"ending a process group left by an earlier run: {pid} {' '.join(argv)}")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    LEDGER.unlink(missing_ok=True)


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


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


def format_attempts(attempts: dict[str, int], backend: str) -> str:
    return " ".join(f"{role}/{backend}={n}" for role, n in attempts.items() if role != "sim")


# --- Set-up -------------------------------------------------------------------------------


def database_recreate() -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")


def redis_flush() -> None:
    for db in (CACHE_DB, BROKER_DB):
        redis.Redis.from_url(f"{REDIS_SERVER_URL}/{db}", socket_timeout=5).flushdb()


def dump_logs(stack: Stack, lines: int = 60) -> None:
    for path in sorted(stack.tmp.glob("*.log")):
        text = path.read_text(errors="replace").splitlines()
        log(f"----- {path.name}: last {min(lines, len(text))} of {len(text)} lines -----")
        for line in text[-lines:]:
            print(f"  {line}", file=sys.__stdout__, flush=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    started = time.monotonic()
    reap_leftovers()
    # Not pytest's tmp_path: other pytest runs on this machine rotate those away.
    tmp = RUN_DIR
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log(f"run directory (logs, snapshot, agents' tokens and buffers): {tmp}")
    database_recreate()
    redis_flush()
    stack = Stack(tmp)
    try:
        stack.manage("migrate", "--noinput", timeout=600)
        stack.manage("seed_demo", timeout=600)
        stack.manage("seed_demo_users")
        stack.manage("seed_probe_regions")
        stack.manage("collectstatic", "--noinput")
        stack.manage("rebuild_snapshot")
        stack.manage("seed_agent_tokens", str(stack.token_dir))
        stack.regions = [
            str(slug)
            for (slug,) in stack.sql(
                "SELECT slug FROM probes_proberegion WHERE active ORDER BY slug"
            )
        ]
        no_token = [region for region in stack.regions if not stack.token_file(region).exists()]
        assert stack.regions, "no active probe region after seed_probe_regions"
        assert not no_token, f"seed_agent_tokens wrote no token for {no_token}"
        stack.start_simulator()
        stack.start_web()
        stack.start_worker()
        stack.start_beat()
        wait_for(
            "the simulator",
            lambda: requests.get(f"{stack.sim_url}/s/use1/key?v=88", timeout=2).ok,
            timeout=60,
        )
        wait_for(
            "gunicorn to serve /",
            lambda: requests.get(stack.web_url + "/", timeout=5).status_code == 200,
            timeout=90,
        )
        for region in stack.regions:
            stack.start_agent(region)
        stack.wait_worker_ready("worker")
        since = stack.one("SELECT now()")
        pairs = len(stack.regions) * len(stack.probed_shards())
        wait_for(
            "a sample from every region's agent on every shard",
            lambda: (
                stack.one(
                    "SELECT count(DISTINCT (region_id, shard_id)) FROM probes_probesample "
                    "WHERE started_at > %s",
                    [since],
                )
                == pairs
            ),
            timeout=90,
        )
        stack.web_processes = len(wait_for("gunicorn's workers", stack.web_workers, timeout=30))
        log(
            f"stack ready in {time.monotonic() - started:.0f} s "
            f"({stack.web_processes} web processes)"
        )
        yield stack
    except BaseException:
        _failed.append("set-up")
        raise
    finally:
        stack.close()
        if _failed:
            log(f"failures in {', '.join(_failed)}: the processes' logs follow")
            dump_logs(stack)
        log(f"logs kept in {tmp}")


@pytest.fixture(scope="session")
def staff_token(stack: Stack) -> str:
    return stack.staff_token()


@pytest.fixture
def alive(stack: Stack) -> Iterator[Stack]:
    """Every process up before and after the scenario (the agents too, their buffers
    delivered). A scenario that clears its fault starts again what died meanwhile (as a
    supervisor would, to see the rest of the recovery: ``Stack.ensure_running``) and
    fails on it itself; one that dies afterwards fails here."""
    for backend in BACKENDS:
        stack.proxy.set_mode(backend, "pass")
    stack.ensure_running()
    # No backlog from the last scenario: each agent's buffer empty for a moment.
    for region in stack.regions:
        wait_for(
            f"{region}'s agent to deliver its buffer",
            functools.partial(stack.drained, region),
            timeout=90,
            every=0.05,
        )
    try:
        yield stack
    finally:
        for backend in BACKENDS:
            stack.proxy.set_mode(backend, "pass")
    died = [name for name in stack.names() if not stack.alive(name)]
    assert not died, f"died during the scenario: {', '.join(died)} (see their logs in {stack.tmp})"


def api_json(answer: requests.Response | None) -> dict[str, Any]:
    if answer is None:
        return {}
    try:
        value = answer.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
