"""nginx with the shipped site config (deploy/nginx/statuspage.conf), rendered as
deploy/README.md says: the public snapshot straight from disk, with the app's headers
and validators that survive rebuilds; everything else, and whatever the snapshot
lacks, from the app; the snapshot still answers when the app is down."""

import gzip
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils.http import http_date

from public import snapshot
from public.snapshot import CACHE_CONTROL, snapshot_rebuild
from tests.conftest import T0
from tests.public.test_snapshot import _incident

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "statuspage.conf"
NGINX = Path("/usr/sbin/nginx")
SERVER_NAME = "status.test"
NOW = T0 + timedelta(minutes=30)
GZIP = "gzip, deflate, br"

pytestmark = pytest.mark.skipif(
    not NGINX.exists(),
    reason="nginx is not installed (/usr/sbin/nginx; apt-get install nginx): "
    ".ci/run installs it, so CI never skips this",
)


@pytest.fixture
def fleet(fleet):
    snapshot._pending.clear()  # the fixture's writes queued a rebuild; build when we say
    return fleet


# --- The app's own headers, under production settings -------------------------------------


@pytest.fixture(scope="module")
def app_headers(tmp_path_factory) -> dict[str, str]:
    """The security headers the app adds to every https answer with its production
    settings (no DJANGO_DEBUG), from a process of its own: what nginx must add too."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "SECURE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="statuspage.settings",
        DJANGO_SECRET_KEY="only-to-read-the-settings",
        STATUSPAGE_VAR_DIR=str(tmp_path_factory.mktemp("var")),
    )
    code = (
        "import django, json; django.setup(); "
        "from public.serving import security_headers; "
        "print(json.dumps(dict(security_headers(secure=True))))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, fixed script
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def _directives(policy: str) -> set[str]:
    return {" ".join(part.split()) for part in policy.split(";") if part.strip()}


# --- A stub of the app, and nginx ---------------------------------------------------------


class Upstream:
    """The app's stand-in on gunicorn's address: answers every request with where it
    was asked, and remembers what reached it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                upstream.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers)}
                )
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = f"the app answers {self.command} {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()

    def paths(self) -> list[str]:
        return [request["path"] for request in self.requests]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render(template: str, values: dict[str, str]) -> str:
    """What ``envsubst '${SERVER_NAME} ${HTTP_LISTEN} …'`` does (deploy/README.md):
    the named placeholders only; nginx's own $variables stay."""
    rendered = string.Template(template).safe_substitute(values)
    left = re.findall(r"\$\{[A-Z_]+\}", rendered)
    assert not left, f"placeholders without a value: {left}"
    return rendered


class Nginx:
    def __init__(self, workdir: Path, *, snapshot_dir: Path, upstream_port: int) -> None:
        self.workdir = workdir
        self.http_port = _free_port()
        self.https_port = _free_port()
        cert, key = workdir / "cert.pem", workdir / "key.pem"
        subprocess.run(  # noqa: S603 - fixed arguments
            [
                *("openssl", "req", "-x509", "-nodes", "-days", "2"),
                *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
                *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={SERVER_NAME}"),
                *("-addext", f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1"),
            ],
            check=True,
            capture_output=True,
        )
        site = render(
            SITE.read_text(),
            {
                "SERVER_NAME": SERVER_NAME,
                "HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
                "HTTPS_LISTEN": f"127.0.0.1:{self.https_port}",
                "TLS_CERT": str(cert),
                "TLS_KEY": str(key),
                "SNAPSHOT_DIR": str(snapshot_dir),
                "UPSTREAM": f"127.0.0.1:{upstream_port}",
            },
        )
        (workdir / "statuspage.conf").write_text(site)
        temp = {
            name: workdir / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        }
        # Debian's /etc/nginx/nginx.conf, cut to what matters, around the site.
        (workdir / "nginx.conf").write_text(
            f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    sendfile on;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {workdir}/access.log;
    gzip on;
    {" ".join(f"{name}_temp_path {path};" for name, path in temp.items())}
    include {workdir}/statuspage.conf;
}}
"""
        )
        self.process = subprocess.Popen(  # noqa: S603 - Debian's nginx, our config
            [
                str(NGINX),
                "-p",
                str(workdir),
                "-c",
                str(workdir / "nginx.conf"),
                "-e",
                str(workdir / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # it says it all in error.log
        )
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx did not start: {self.error_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"nginx is not listening: {self.error_log()}") from None
                time.sleep(0.05)
        self.tls = ssl.create_default_context(cafile=str(cert))

    def error_log(self) -> str:
        log = self.workdir / "error.log"
        return log.read_text() if log.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def request(
        self, method: str, path: str, *, tls: bool = True, body: bytes | None = None, **headers: str
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        if tls:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.https_port, context=self.tls, timeout=10
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            conn.request(
                method,
                path,
                body=body,
                headers={
                    "Host": SERVER_NAME,
                    **{k.replace("_", "-"): v for k, v in headers.items()},
                },
            )
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def get(self, path: str, **headers: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        return self.request("GET", path, **headers)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture
def nginx(tmp_path, settings, upstream) -> Iterator[Nginx]:
    workdir = tmp_path / "nginx"
    workdir.mkdir()
    server = Nginx(workdir, snapshot_dir=Path(settings.SNAPSHOT_DIR), upstream_port=upstream.port)
    yield server
    server.stop()


@pytest.fixture
def built(fleet, settings, time_machine) -> dict[str, Any]:
    """A snapshot with an incident's page, built at NOW; returns its manifest."""
    time_machine.move_to(NOW, tick=False)
    _incident()
    snapshot_rebuild()
    current = Path(settings.SNAPSHOT_DIR) / "current"
    return dict(json.loads((current / "manifest.json").read_text()))


# --- The snapshot, from disk ----------------------------------------------------------


def test_every_snapshot_page_is_served_by_nginx_with_the_apps_headers(
    built, nginx, upstream, settings, app_headers
):
    assert {"Content-Security-Policy", "Strict-Transport-Security"} <= set(app_headers)
    current = Path(settings.SNAPSHOT_DIR) / "current"
    assert any(re.match(r"^/incidents/\d+/$", path) for path in built["entries"])
    assert "/api/v2/summary.json" in built["entries"]
    for path, entry in built["entries"].items():
        status, headers, body = nginx.get(path)
        assert status == 200, path
        assert body == (current / entry["file"]).read_bytes(), path
        assert headers["Content-Type"] == entry["content_type"], path
        assert headers["Cache-Control"] == CACHE_CONTROL
        assert "stale-while-revalidate" in headers["Cache-Control"]
        assert "stale-if-error" in headers["Cache-Control"]
        # CORS exactly where the app sends it (the v2 JSON).
        assert headers.get("Access-Control-Allow-Origin") == entry["headers"].get(
            "Access-Control-Allow-Origin"
        ), path
        for name, value in app_headers.items():
            if name == "Content-Security-Policy":
                assert _directives(headers[name]) == _directives(value), path
            else:
                assert headers[name] == value, (path, name)
    assert upstream.requests == []


def test_a_browser_gets_the_gzipped_copy_the_snapshot_wrote(built, nginx, settings):
    current = Path(settings.SNAPSHOT_DIR) / "current"
    status, headers, body = nginx.get("/", Accept_Encoding=GZIP)
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert body == (current / "index.html.gz").read_bytes()
    assert gzip.decompress(body) == (current / "index.html").read_bytes()
    assert headers["Vary"] == "Accept-Encoding"
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"

    status, headers, body = nginx.get("/api/v2/summary.json", Accept_Encoding=GZIP)
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(gzip.decompress(body))["page"]

    status, headers, body = nginx.get("/")
    assert "Content-Encoding" not in headers
    assert body == (current / "index.html").read_bytes()


def test_a_visitor_with_a_current_copy_gets_304(built, nginx):
    for encoding in ("identity", GZIP):
        _, first, _ = nginx.get("/history/", Accept_Encoding=encoding)
        status, headers, body = nginx.get(
            "/history/", Accept_Encoding=encoding, If_None_Match=first["ETag"]
        )
        assert (status, body) == (304, b"")
        assert headers["ETag"] == first["ETag"]
        assert headers["Cache-Control"] == CACHE_CONTROL
        status, _, _ = nginx.get(
            "/history/", Accept_Encoding=encoding, If_Modified_Since=first["Last-Modified"]
        )
        assert status == 304
    status, _, _ = nginx.get("/history/", If_None_Match='"someone-elses"')
    assert status == 200


def test_a_rebuild_keeps_last_modified_and_etag_of_unchanged_pages(
    built, nginx, settings, time_machine
):
    directory = Path(settings.SNAPSHOT_DIR)
    before = {
        (path, encoding): nginx.get(path, Accept_Encoding=encoding)[1]
        for path in built["entries"]
        for encoding in ("identity", GZIP)
    }
    generation = os.readlink(directory / "current")

    # Five minutes on, the open incident's page says it has lasted longer; the feeds
    # and badges are the same bytes.
    time_machine.move_to(NOW + timedelta(minutes=5), tick=False)
    result = snapshot_rebuild()
    assert os.readlink(directory / "current") != generation
    assert {"/feed.rss", "/badge.svg"} <= set(result.unchanged)
    assert "gzip" in built["entries"]["/feed.rss"]

    for path in result.unchanged:
        for encoding in ("identity", GZIP):
            validators = before[path, encoding]
            _, again, _ = nginx.get(path, Accept_Encoding=encoding)
            assert again["ETag"] == validators["ETag"], (path, encoding)
            assert again["Last-Modified"] == validators["Last-Modified"]
            assert again["Last-Modified"] == http_date(NOW.timestamp())
            status, _, _ = nginx.get(
                path, Accept_Encoding=encoding, If_None_Match=validators["ETag"]
            )
            assert status == 304, (path, encoding)


def test_a_changed_page_gets_new_validators(built, nginx, time_machine):
    _, before, _ = nginx.get("/")
    time_machine.move_to(NOW + timedelta(minutes=10), tick=False)
    _incident(title="Slow logins in eu-west", at=NOW)
    result = snapshot_rebuild()
    assert "/" in result.changed
    _, after, body = nginx.get("/")
    assert b"Slow logins in eu-west" in body
    assert after["ETag"] != before["ETag"]
    assert after["Last-Modified"] == http_date((NOW + timedelta(minutes=10)).timestamp())


# --- The app ---------------------------------------------------------------------------


def test_what_the_snapshot_does_not_answer_goes_to_the_app(built, nginx, upstream):
    asked = [
        ("GET", "/admin/login/"),  # not a snapshot page
        ("GET", "/incidents/999999/"),  # a snapshot path the snapshot lacks
        ("GET", "/history/?page=2"),  # a query string: the live view
        ("POST", "/"),  # not GET or HEAD
        ("GET", "/manifest.json"),  # the snapshot's own files are not published
        ("GET", "/index.html.gz"),
        ("GET", "/history"),  # the app redirects it
    ]
    for method, path in asked:
        status, headers, body = nginx.request(method, path, body=b"" if method == "POST" else None)
        assert (status, body) == (200, f"the app answers {method} {path}".encode()), path
        # The app's own answers get no snapshot headers from nginx.
        assert "Cache-Control" not in headers
    assert [(r["method"], r["path"]) for r in upstream.requests] == asked
    forwarded = upstream.requests[0]["headers"]
    assert forwarded["X-Forwarded-Proto"] == "https"
    assert forwarded["X-Forwarded-For"] == "127.0.0.1"
    assert forwarded["Host"] == SERVER_NAME


def test_before_the_first_snapshot_everything_goes_to_the_app(fleet, nginx, upstream):
    status, _, body = nginx.get("/")
    assert (status, body) == (200, b"the app answers GET /")


def test_with_the_app_down_the_snapshot_still_answers(built, nginx, upstream):
    upstream.stop()
    for path in built["entries"]:
        status, _, _ = nginx.get(path, Accept_Encoding=GZIP)
        assert status == 200, path
    status, _, _ = nginx.get("/admin/login/")
    assert status == 502


def test_browsers_get_the_page_over_http2(built, nginx, settings):
    """ALPN offers h2, and a real HTTP/2 client gets the snapshot's gzipped page."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", nginx.https_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"

    curl = shutil.which("curl")
    assert curl, "curl is needed (.ci/run installs it)"
    out = subprocess.run(  # noqa: S603 - curl, fixed arguments
        [
            curl,
            "--silent",
            "--insecure",
            "--http2",
            "--compressed",
            "--resolve",
            f"{SERVER_NAME}:{nginx.https_port}:127.0.0.1",
            "--write-out",
            "\n%{http_version} %{response_code}",
            f"https://{SERVER_NAME}:{nginx.https_port}/",
        ],
        capture_output=True,
        check=True,
        timeout=20,
    ).stdout
    body, _, status = out.rpartition(b"\n")
    assert status == b"2 200"
    current = Path(settings.SNAPSHOT_DIR) / "current"
    assert body == (current / "index.html").read_bytes()


def test_plain_http_is_sent_to_https(nginx, upstream):
    status, headers, _ = nginx.request("GET", "/history/?page=2", tls=False)
    assert status == 301
    assert headers["Location"] == f"https://{SERVER_NAME}/history/?page=2"
    assert upstream.requests == []


PLACEHOLDERS = (
    *("SERVER_NAME", "HTTP_LISTEN", "HTTPS_LISTEN"),
    *("TLS_CERT", "TLS_KEY", "SNAPSHOT_DIR", "UPSTREAM"),
)


def test_the_config_has_only_the_placeholders_the_readme_documents():
    template = SITE.read_text()
    assert set(re.findall(r"\$\{([A-Z_]+)\}", template)) == set(PLACEHOLDERS)
    readme = (ROOT / "deploy" / "README.md").read_text()
    listed = " ".join(f"${{{name}}}" for name in PLACEHOLDERS)
    assert f"envsubst '{listed}'" in readme
    envsubst = shutil.which("envsubst")
    if envsubst is None:
        pytest.skip("no envsubst (gettext-base) to compare the rendering with")
    values = {name: f"value-of-{name.lower()}" for name in PLACEHOLDERS}
    rendered = subprocess.run(  # noqa: S603 - fixed arguments
        [envsubst, listed],
        input=template,
        env={**os.environ, **values},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert rendered == render(template, values)
