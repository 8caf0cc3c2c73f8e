"""Serve something on 127.0.0.1 and load it with wrk: the shared harness of the HTTP
benchmarks (``bench/page.py``; later the customer pages and the report form).

    with Gunicorn("statuspage.wsgi:application", workers=2, env={...}) as server:
        wait_for_idle_cpu()
        result = wrk(server.url("/"), duration=10, connections=50)
        print(result.requests_per_second, result.p99_ms)

- ``Gunicorn``: any WSGI app module, N workers, given environment, on a free loopback
  port; ``start()`` returns once it answers a request.
- ``Nginx``: Debian's nginx serving a directory, from a generated ``nginx.conf`` in a
  temporary directory (pid, logs and temp files there too), as the current user.
- ``wrk``: one bounded run (duration, connections, threads, headers); a Lua ``done``
  hook prints the numbers as JSON, so nothing depends on wrk's human-readable units.

Every server runs in its own process group, so stopping it (``stop()``, the ``with``
block, or the ``finally`` of whoever started it) takes its workers along: SIGTERM to the
group, SIGKILL after a grace period. wrk and nginx are installed with apt-get when
missing (as ``.ci/run`` installs chromium), saying so. Nothing listens anywhere but
127.0.0.1.

The module is named ``httpload``, not ``http``: a ``bench/http.py`` would shadow the
standard library's ``http`` package for every script run as ``python bench/<x>.py``
(the script's directory comes first on ``sys.path``), and Django imports ``http``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
STOP_GRACE_SECONDS = 10.0

# wrk's done() hook: the whole summary in microseconds and counts, one JSON line.
WRK_REPORT = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK-JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d,"
    .. "\\"p50_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d,\\"max_us\\":%d,\\"mean_us\\":%.1f,"
    .. "\\"connect_errors\\":%d,\\"read_errors\\":%d,\\"write_errors\\":%d,"
    .. "\\"status_errors\\":%d,\\"timeouts\\":%d}\\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def log(message: str = "") -> None:
    print(message, flush=True)


# --- Tools -------------------------------------------------------------------------------


def ensure_tools(*, wrk: bool = True, nginx: bool = False) -> None:
    """Install wrk / nginx from Debian when missing (apt-get, as root, as .ci/run does
    for chromium). Raises SystemExit with the reason if that is not possible: a
    benchmark without its load generator must fail loudly, never skip."""
    wanted = []
    if wrk and shutil.which("wrk") is None:
        wanted.append(("wrk", "wrk"))
    if nginx and nginx_binary() is None:
        wanted.append(("nginx", "nginx-light"))
    if not wanted:
        return
    packages = [package for _, package in wanted]
    if os.geteuid() != 0:
        raise SystemExit(
            f"missing {', '.join(tool for tool, _ in wanted)}; install them with "
            f"`sudo apt-get install -y {' '.join(packages)}`"
        )
    log(f"installing {' '.join(packages)} with apt-get (Debian packages)")
    if not _apt(["update", "-qq"]):
        raise SystemExit("apt-get update failed; cannot install " + " ".join(packages))
    if not _apt(["install", "-y", "-qq", "--no-install-recommends", *packages]):
        # Some releases ship only `nginx`, not the light flavour.
        fallback = ["nginx" if package == "nginx-light" else package for package in packages]
        if fallback == packages or not _apt(["install", "-y", "-qq", *fallback]):
            raise SystemExit(f"could not install {' '.join(packages)} with apt-get")
    missing = [
        tool
        for tool, _ in wanted
        if (nginx_binary() if tool == "nginx" else shutil.which(tool)) is None
    ]
    if missing:
        raise SystemExit(f"installed, but still missing: {', '.join(missing)}")


def _apt(arguments: list[str]) -> bool:
    command = ["apt-get", *arguments]
    log("$ " + " ".join(command))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(command, env=env, check=False).returncode == 0  # noqa: S603


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# --- CPU: wait for a quiet machine --------------------------------------------------------


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields), idle


def cpu_busy(interval: float = 0.5) -> float:
    """The machine's busy share over ``interval`` seconds (0 idle, 1 every CPU busy)."""
    total0, idle0 = _cpu_times()
    time.sleep(interval)
    total1, idle1 = _cpu_times()
    spent = total1 - total0
    return 0.0 if spent <= 0 else 1 - (idle1 - idle0) / spent


def wait_for_idle_cpu(*, below: float = 0.15, timeout: float = 60.0) -> float:
    """Wait until the machine is quiet (busy share below ``below`` over half a second)
    or ``timeout`` passes; returns the last busy share seen. The machine is shared, and
    a run that starts while something else computes measures that instead."""
    deadline = time.monotonic() + timeout
    busy = cpu_busy()
    while busy >= below and time.monotonic() < deadline:
        busy = cpu_busy()
    return busy


# --- Servers -----------------------------------------------------------------------------


class _Server:
    """A process group of our own, on a loopback port; stopped with its children."""

    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        self.log_path = self.workdir / f"{self.name}.log"

    def url(self, path: str = "/") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        raise NotImplementedError

    def start(
        self,
        *,
        ready_path: str = "/",
        ready_headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> Self:
        argv, env, cwd = self.command()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our servers, fixed arguments
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() takes the workers
            )
        try:
            self._wait_ready(ready_path, dict(ready_headers or {}), timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, path: str, headers: dict[str, str], timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, _, _ = self.get(path, headers, timeout=5)
                if status < 500:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited at start:\n{self.output()}")
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{self.name} did not answer within {timeout:.0f} s:\n{self.output()}"
                )
            time.sleep(0.1)

    def get(
        self, path: str = "/", headers: Mapping[str, str] | None = None, *, timeout: float = 30
    ) -> tuple[int, dict[str, str], bytes]:
        """One GET: (status, headers as sent, body)."""
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=dict(headers or {}))
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def cpu_seconds(self) -> float:
        """User + system CPU spent so far by the live processes of this server's group
        (master and workers): per request, a figure that another job on the machine
        disturbs far less than the requests per second."""
        if self.proc is None:
            return 0.0
        return group_cpu_seconds(self.proc.pid)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after a grace period; then the
        temporary directory goes. Safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _stop_group(proc)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start() if self.proc is None else self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def group_cpu_seconds(group: int) -> float:
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[2]) == group:  # state, ppid, pgrp, ...
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    group = proc.pid  # start_new_session: the group id is the leader's pid
    with _suppress_missing():
        os.killpg(group, signal.SIGTERM)
    try:
        proc.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with _suppress_missing():
            os.killpg(group, signal.SIGKILL)
        proc.wait()
    # Workers that outlived their master (they should not): the group goes too.
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while _group_alive(group):
        if time.monotonic() > deadline:
            with _suppress_missing():
                os.killpg(group, signal.SIGKILL)
            break
        time.sleep(0.05)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _suppress_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> bool:
        return kind is ProcessLookupError


class Gunicorn(_Server):
    """gunicorn serving ``app`` (``module:callable``) with ``workers`` sync workers.

    ``env`` is added to this process's environment; ``cwd`` (default: the project) is
    where the app module is imported from. ``extra`` goes to gunicorn as is."""

    name = "gunicorn"

    def __init__(
        self,
        app: str,
        *,
        workers: int,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
        worker_class: str = "sync",
        extra: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.app = app
        self.workers = workers
        self.env = dict(env or {})
        self.cwd = cwd
        self.worker_class = worker_class
        self.extra = list(extra)

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            self.app,
            "--bind",
            f"{LOOPBACK}:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            # gunicorn.conf.py's threads would turn sync workers into gthread ones.
            "--threads",
            "1",
            "--log-level",
            "warning",
            "--worker-tmp-dir",
            str(self.workdir),
            *self.extra,
        ]
        return argv, {**os.environ, **self.env}, self.cwd

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return [int(pid) for pid in f.read().split()]
        except OSError:
            return []


class Nginx(_Server):
    """Debian's nginx serving ``root`` as a static site (``/x/`` is ``x/index.html``),
    configured from scratch in a temporary directory: nothing of /etc/nginx is read,
    and pid, logs and temp files stay in that directory."""

    name = "nginx"

    def __init__(
        self,
        root: Path,
        *,
        workers: int,
        headers: Mapping[str, str] | None = None,
        extra: str = "",
    ) -> None:
        """``headers`` are added to every answer; ``extra`` goes into the server block
        as is (e.g. ``gzip_static on;``)."""
        super().__init__()
        self.root = root.resolve()
        self.workers = workers
        self.headers = dict(headers or {})
        self.extra = extra

    def config(self) -> str:
        user = ""
        if os.geteuid() == 0:  # else nginx runs as whoever started it anyway
            import grp
            import pwd

            user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
        tmp = self.workdir
        added = "\n".join(
            f'        add_header {name} "{value}" always;' for name, value in self.headers.items()
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
    types {{
        text/html html;
        application/json json;
        image/svg+xml svg;
        text/css css;
        application/javascript js;
        application/rss+xml rss;
        application/atom+xml atom;
    }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen {LOOPBACK}:{self.port};
        server_name localhost;
        root {self.root};
        index index.html;
{added}
        {self.extra}
        location / {{ try_files $uri $uri/ =404; }}
    }}
}}
"""

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        binary = nginx_binary()
        if binary is None:
            raise SystemExit("nginx is not installed (ensure_tools(nginx=True) installs it)")
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        argv = [
            binary,
            "-p",
            str(self.workdir),
            "-c",
            str(conf),
            "-e",
            str(self.workdir / "error.log"),
        ]
        return argv, dict(os.environ), self.workdir

    def output(self) -> str:
        text = super().output()
        error_log = self.workdir / "error.log"
        if error_log.exists():
            text += error_log.read_text(errors="replace")[-4000:]
        return text


# --- Load --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    bytes: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int  # connect/read/write errors and timeouts
    bad_status: int  # answers other than 2xx/3xx

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"{self.requests_per_second:9,.0f} req/s  p50 {self.p50_ms:6.2f} ms"
            f"  p99 {self.p99_ms:6.2f} ms  max {self.max_ms:7.2f} ms"
            f"  errors {self.errors}  non-2xx/3xx {self.bad_status}"
        )


def wrk(
    url: str,
    *,
    duration: float,
    connections: int,
    threads: int = 2,
    headers: Mapping[str, str] | None = None,
    timeout: float = 2.0,
) -> WrkResult:
    """One bounded wrk run against ``url`` (127.0.0.1 only)."""
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError(f"only {LOOPBACK} is loaded: {url}")
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (ensure_tools() installs it)")
    threads = max(1, min(threads, connections))
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "report.lua"
        script.write_text(WRK_REPORT)
        argv = [
            binary,
            "--threads",
            str(threads),
            "--connections",
            str(connections),
            "--duration",
            f"{max(1, round(duration))}s",
            "--timeout",
            f"{max(1, round(timeout))}s",
            "--script",
            str(script),
        ]
        for name, value in (headers or {}).items():
            argv += ["--header", f"{name}: {value}"]
        done = subprocess.run(  # noqa: S603 - wrk with fixed arguments
            [*argv, url],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=False,
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


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
