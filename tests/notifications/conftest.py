"""The notification stories' world: a real SMTP server (aiosmtpd) and a real HTTP
receiver for webhooks, both on loopback ports of their own; acme (alice's tailnet)
on use1 and globex (bob's) on use2, through the fleet feed, a day before T0."""

import contextlib
import email
import email.policy
import http.server
import mailbox as maildir_format
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fleet.services import fleet_events_ingest
from incidents.models import Tailnet
from notifications.models import Subscription
from tests.conftest import T0

M = timedelta(minutes=1)
DAY = timedelta(days=1)


# --- A real SMTP server ----------------------------------------------------------------
# aiosmtpd runs in a process of its own: it imports a module named ``public`` (from
# atpublic), which this project's ``public`` app shadows inside the test process.


class Inbox:
    """What the SMTP server received, as parsed messages, oldest first."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        box = maildir_format.Maildir(self.maildir, factory=None, create=False)
        found = [
            (path.stat().st_mtime_ns, path.name, path.read_bytes())
            for path in (self.maildir / "new").iterdir()
        ]
        del box
        return [
            email.message_from_bytes(raw, policy=email.policy.default)
            for _, _, raw in sorted(found)
        ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def _smtp_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("smtp")
    maildir = home / "maildir"
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(maildir),
        ],
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"aiosmtpd did not start: {server.stderr.read()!r}") from None
            time.sleep(0.05)
    yield port, maildir
    server.terminate()
    server.wait(10)


@pytest.fixture
def smtp(settings, _smtp_server):
    """Mail goes through SMTP to a real server; ``smtp.messages`` is what it got
    during this test."""
    port, maildir = _smtp_server
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
        for old in (maildir / sub).iterdir():
            old.unlink()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    return Inbox(maildir)


# --- A real webhook receiver -------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Sink:
    """Answers every POST with ``status`` (after ``delay`` seconds) and keeps it."""

    port: int = 0
    status: int = 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def sink(settings):
    settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK = True
    state = Sink()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            state.received.append(
                Received(self.path, dict(self.headers.items()), self.rfile.read(length))
            )
            if state.delay:
                threading.Event().wait(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# --- The fleet and its customers ---------------------------------------------------------


@pytest.fixture
def customers(fleet, committed):
    """acme (alice's) on use1, globex (bob's) on use2, since a day before T0."""
    with committed():
        fleet_events_ingest(
            events=[
                _created("acme-1", "acme", "use1", "acme.com"),
                _created("globex-1", "globex", "use2", "globex.com"),
            ],
            now=T0,
        )
    return {
        **fleet,
        "acme": Tailnet.objects.get(slug="acme"),
        "globex": Tailnet.objects.get(slug="globex"),
    }


def _created(event_id: str, tailnet: str, shard: str, name: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "tailnet.created",
        "at": (T0 - DAY).isoformat(),
        "tailnet": tailnet,
        "shard": shard,
        "display_name": name,
    }


def webhook(
    tailnet: Tailnet | None,
    url: str,
    *,
    secret: str = "s3cret",  # noqa: S107
    **fields: Any,
) -> Subscription:
    """A confirmed webhook subscription (of a tailnet, or public)."""
    return Subscription.objects.create(
        channel="webhook", tailnet=tailnet, url=url, secret=secret, confirmed_at=T0 - DAY, **fields
    )


def mailbox(tailnet: Tailnet | None, address: str, **fields: Any) -> Subscription:
    fields.setdefault("confirmed_at", T0 - DAY)
    return Subscription.objects.create(channel="email", tailnet=tailnet, email=address, **fields)
