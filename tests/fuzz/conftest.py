"""The fuzzers' world and harness.

The world: the customer tests' people (alice owns acme on use1, bob is a member of
globex on euw1, carol has no tailnet, staff runs the service), a token for each API
(acme's tailnet token, a staff, a probe and a fleet token), an open incident on use1
(with a follow-up), a resolved one and a scheduled maintenance (all published), acme's webhook and
recipient, a public subscriber, a pending invitation, a probe region and a report.

The harness: each request goes to the WSGI application as a server hands it over
(the snapshot's layer, then Django's handler and middleware), inside a savepoint
rolled back afterwards, so every example starts from the same world (and a database
error on PostgreSQL cannot poison the next one). What a commit would run after it
(tasks, run inline here) runs too. A request fails the test if it answers 5xx or
logs anything at ERROR. Nothing leaves the machine: webhook deliveries fail at once
and only loopback addresses can be connected to.

``FUZZ_EXAMPLES`` sets how many examples each fuzzer tries (default ``BUDGET``).
"""

import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework.views import APIView

from customers.services import membership_invite
from incidents.models import IncidentKind
from incidents.services import WindowSpec, follow_up_add, incident_create, incident_resolve
from notifications import links, webhooks
from notifications.services import recipient_add, subscription_create_public, webhook_create
from plumbing.tokens import api_token_create
from probes.models import ProbeRegion
from public.serving import SnapshotWSGI

# Examples per fuzzer (and per page) unless FUZZ_EXAMPLES says otherwise: enough to
# keep the fuzz part of a run under a minute with -n 2 (the budget is 5); a nightly
# run can ask for more.
BUDGET = 50
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or BUDGET)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The world is built once per test, then every example starts from it again.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


@dataclass
class World:
    secrets: dict[str, str]
    incidents: dict[str, int]
    impacts: list[int]
    webhook: int
    links: dict[str, str]  # the public subscriber's: confirm, manage, unsubscribe
    invitation: str
    report: str
    slugs: dict[str, list[str]] = field(default_factory=dict)
    follow_ups: list[int] = field(default_factory=list)

    def bearer(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[scope]}"}


@pytest.fixture
def world(people, committed, no_network) -> World:
    staff, alice = people["staff"], people["alice"]
    now = timezone.now()
    ams = ProbeRegion.objects.create(slug="ams", name="Amsterdam")
    secrets = {
        "tailnet": api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])[1],
        "staff": api_token_create(name="alerting", scope="staff", by=staff)[1],
        "probe": api_token_create(name="ams probe", scope="probe", probe_region=ams, by=staff)[1],
        "fleet": api_token_create(name="control plane", scope="fleet", by=staff)[1],
    }
    with committed():
        open_ = incident_create(
            title="Sign-ins fail on US East 1",
            body="We are looking into it.",
            components={people["us"]: "partial_outage"},
            shard_impacts=[WindowSpec("use1", "outage", now - timedelta(hours=1), None)],
            published=True,
            by=staff,
        )
        resolved = incident_create(
            title="Slow map updates",
            body="Investigating.",
            started_at=now - timedelta(days=3),
            shard_impacts=[
                WindowSpec("euw1", "degraded", now - timedelta(days=3), now - timedelta(days=2))
            ],
            published=True,
            by=staff,
        )
        incident_resolve(incident=resolved, body="Fixed.", components=None, by=staff)
        follow_up = follow_up_add(
            incident=open_, text="Alert on disk usage", owner="Alice Ng", by=staff
        )
        maintenance = incident_create(
            title="Database upgrade",
            body="Planned.",
            kind=IncidentKind.MAINTENANCE,
            scheduled_for=now + timedelta(days=1),
            scheduled_until=now + timedelta(days=1, hours=1),
            published=True,
            by=staff,
        )
        webhook = webhook_create(
            tailnet=people["acme"], url="https://hooks.example.com/acme", by=alice
        )
        recipient_add(tailnet=people["acme"], email="oncall@acme.com", by=alice)
        subscriber = subscription_create_public(
            email="fan@example.net", components=[], client_address="192.0.2.1"
        )
        _, invitation = membership_invite(
            tailnet=people["acme"], email="dave@acme.com", role="member", by=alice
        )
    assert subscriber is not None
    report = Client().post(
        "/api/v1/reports",
        {"what": "login", "tailnet": "acme", "description": "Cannot sign in."},
        content_type="application/json",
    )
    assert report.status_code == 201, report.content
    return World(
        secrets=secrets,
        incidents={"open": open_.pk, "resolved": resolved.pk, "maintenance": maintenance.pk},
        impacts=list(open_.shard_impacts.values_list("pk", flat=True)),
        webhook=webhook.pk,
        links={
            "confirm": links.confirm_token(subscriber.pk),
            "manage": links.manage_token(subscriber.pk),
            "unsubscribe": links.unsubscribe_token(subscriber.pk),
        },
        invitation=invitation,
        report=report.json()["id"],
        slugs={
            "tailnet": ["acme", "globex"],
            "shard": ["use1", "use2", "euw1"],
            "component": ["coordination-us-east", "coordination-eu-west"],
            "region": ["ams"],
        },
        follow_ups=[follow_up.pk],
    )


# --- The harness ------------------------------------------------------------------------


class ErrorRecords(logging.Handler):
    """Every record at ERROR or above, from any logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
        return [formatter.format(record) for record in self.records]


@dataclass
class Harness:
    app: Callable[..., Any]
    capture: Callable[..., Any]
    errors: ErrorRecords = field(default_factory=ErrorRecords)

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """One request's worth of work: rolled back afterwards, its after-commit
        callbacks run, its ERROR records kept in ``self.errors`` until the next."""
        self.errors.records.clear()
        root = logging.getLogger()
        root.addHandler(self.errors)
        try:
            with transaction.atomic():
                with self.capture(execute=True):
                    yield
                transaction.set_rollback(True)
        finally:
            root.removeHandler(self.errors)

    def problem(self, status: int, what: str) -> str | None:
        """Why this answer fails the fuzz test, or None."""
        if status >= 500 or self.errors.records:
            logged = "\n".join(self.errors.lines()) or "(nothing logged)"
            return f"{what} answered {status}; logged at ERROR:\n{logged}"
        return None


@pytest.fixture
def harness(django_capture_on_commit_callbacks, no_network, no_throttles) -> Iterator[Harness]:
    # As Django's test client does: the test's connection (and its transaction) stays
    # open across requests instead of being closed when each one ends.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield Harness(SnapshotWSGI(get_wsgi_application()), django_capture_on_commit_callbacks)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def no_throttles(monkeypatch):
    """The APIs' per-token rate limits would turn most examples into 429s."""
    monkeypatch.setattr(APIView, "get_throttles", lambda self: [])


def _loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return True  # a Unix socket
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@pytest.fixture
def no_network(monkeypatch):
    """Fuzzed URLs and hosts go nowhere: webhook deliveries fail at once, and nothing
    resolves or connects but loopback (the test database and Redis)."""
    monkeypatch.setattr(
        webhooks.Poster,
        "post",
        lambda self, items: [webhooks.Outcome(False, error="No network here.") for _ in items],
    )
    resolve, connect = socket.getaddrinfo, socket.socket.connect

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, "No network in the fuzz tests")
        return resolve(host, *args, **kwargs)

    def guarded_connect(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if not _loopback(host):
            raise ConnectionRefusedError("No network in the fuzz tests")
        return connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
