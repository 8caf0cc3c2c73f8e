"""Deliveries a receiver can trust: signed as the README says, bounded, retried on
the row's own schedule, given up after a day, and never sent inside our network.

acme (alice's tailnet) has a webhook at the test's receiver; US East 1 goes down.
"""

import hashlib
import hmac
import ipaddress
import json
import time
from datetime import timedelta

import pytest

from incidents.services import WindowSpec, incident_create
from notifications import delivery, webhooks
from notifications.models import Delivery, Subscription
from tests.conftest import T0

from .conftest import webhook

M = timedelta(minutes=1)
H = timedelta(hours=1)


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance: int = 300) -> bool:
    """The receiver's recipe, as the README gives it."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    t = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(now - t) <= tolerance and hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
def acme_hook(customers, sink):
    return webhook(customers["acme"], sink.url("/acme"), secret="whsec_alice")


def use1_down(at):
    return incident_create(
        title="US East 1 control plane unavailable",
        body="Investigating.",
        started_at=T0,
        shard_impacts=[WindowSpec("use1", "outage", T0)],
        published=True,
        at=at,
    )


def test_every_delivery_is_signed_as_the_readme_says(acme_hook, sink, committed, time_machine):
    time_machine.move_to(T0 + 2 * M, tick=False)
    with committed():
        use1_down(T0 + 2 * M)

    (got,) = sink.received
    header = got.headers["X-Statuspage-Signature"]
    now = time.time()
    assert verify("whsec_alice", header, got.body, now=now)
    assert not verify("someone-else", header, got.body, now=now)
    assert not verify("whsec_alice", header, got.body + b" ", now=now)
    assert not verify("whsec_alice", header, got.body, now=now + 301)  # replayed later
    assert got.headers["Content-Type"] == "application/json"
    assert json.loads(got.body)["id"] == got.headers["X-Statuspage-Delivery"]


def test_a_failing_receiver_is_retried_on_the_rows_schedule_then_given_up(
    acme_hook, sink, committed, time_machine
):
    sink.status = 503
    time_machine.move_to(T0 + 2 * M, tick=False)
    with committed():
        use1_down(T0 + 2 * M)
    row = Delivery.objects.get()
    assert (row.status, row.attempts, row.response_status) == ("pending", 1, 503)
    assert row.next_attempt_at == T0 + 2 * M + 30 * timedelta(seconds=1)
    assert row.last_error == "Answered 503."

    time_machine.move_to(T0 + 3 * M, tick=False)
    delivery.deliver_due()
    row.refresh_from_db()
    assert (row.attempts, row.next_attempt_at) == (2, T0 + 3 * M + M)

    time_machine.move_to(T0 + 2 * M + 25 * H, tick=False)
    delivery.deliver_due()
    row.refresh_from_db()
    assert row.status == "failed"
    assert len(sink.received) == 3
    assert len({r.headers["X-Statuspage-Delivery"] for r in sink.received}) == 1


def test_a_webhook_failing_for_a_day_is_turned_off_and_the_owners_told(
    people, sink, committed, time_machine, mailoutbox
):
    hook = webhook(people["acme"], sink.url("/acme"))
    sink.status = 500
    time_machine.move_to(T0 + 2 * M, tick=False)
    with committed():
        use1_down(T0 + 2 * M)
    for hours in (6, 12, 18, 24):
        time_machine.move_to(T0 + 3 * M + hours * H, tick=False)
        delivery.deliver_due()

    hook.refresh_from_db()
    assert (hook.active, hook.disabled_reason) == (False, "Failing for 24 hours straight.")
    (told,) = [m for m in mailoutbox if "turned off" in m.subject]
    assert told.to == ["alice@acme.com"]
    assert sink.url("/acme") in told.body


def test_a_slack_webhook_gets_slacks_message_format(customers, sink, committed, time_machine):
    webhook(customers["acme"], sink.url("/slack"), format="slack")
    time_machine.move_to(T0 + 2 * M, tick=False)
    with committed():
        use1_down(T0 + 2 * M)

    body = json.loads(sink.received[0].body)
    assert body["text"].startswith(
        "acme.com is affected by US East 1 control plane unavailable since 5 Jan 10:00 UTC "
        "on US East 1"
    )
    assert body["blocks"][0]["type"] == "section"
    assert "<https://" in body["blocks"][0]["text"]["text"]


def test_redirects_are_not_followed_and_only_a_little_of_the_answer_is_read(
    customers, settings, time_machine
):
    import http.server
    import threading

    asked = []

    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            asked.append(self.path)
            self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/moved":
                self.send_response(307)
                self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 10_000_000)  # a receiver that never stops talking

        def log_message(self, *args):
            pass

    settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        moved, chatty = webhooks.post_all(
            [
                webhooks.Outgoing(f"http://127.0.0.1:{port}/moved", b"{}", "s", "1"),
                webhooks.Outgoing(f"http://127.0.0.1:{port}/chatty", b"{}", "s", "2"),
            ]
        )
    finally:
        server.shutdown()
        server.server_close()
    assert (moved.ok, moved.status) == (False, 307)
    assert chatty.ok
    assert sorted(asked) == ["/chatty", "/moved"]


def test_a_receiver_that_does_not_answer_times_out(customers, sink, settings):
    settings.NOTIFY_WEBHOOK_TIMEOUT_SECONDS = 0.5
    sink.delay = 2
    (outcome,) = webhooks.post_all([webhooks.Outgoing(sink.url(), b"{}", "s", "1")])
    assert (outcome.ok, outcome.error) == (False, "No answer within the timeout.")


# --- SSRF ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://[::1]/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://localhost/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
        "not a url",
    ],
)
def test_a_webhook_url_inside_our_network_is_a_clear_error(url, settings):
    settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK = False
    assert webhooks.url_problem(url) is not None


def test_a_public_url_is_fine_and_loopback_only_when_allowed(settings):
    settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK = True
    assert webhooks.url_problem("https://hooks.example.com/x") is None
    assert webhooks.url_problem("http://127.0.0.1:9000/x") is None
    assert webhooks.url_problem("http://10.0.0.5/x") is not None  # private stays refused


def test_the_address_actually_connected_to_is_checked(sink, settings, monkeypatch):
    """DNS rebinding: a name that looked public resolves to loopback when used."""
    settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK = False
    url = f"http://rebind.example:{sink.port}/hook"
    assert webhooks.url_problem(url) is None

    async def resolve(self, host, port=0, family=0):
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": 2,
                "proto": 0,
                "flags": 0,
            }
        ]

    monkeypatch.setattr("aiohttp.ThreadedResolver.resolve", resolve)
    (outcome,) = webhooks.post_all([webhooks.Outgoing(url, b"{}", "s", "1")])

    assert not outcome.ok
    assert "Refused" in outcome.error
    assert sink.received == []


def test_a_literal_private_address_is_refused_when_sending_too(sink, settings):
    settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK = False
    (outcome,) = webhooks.post_all([webhooks.Outgoing(sink.url(), b"{}", "s", "1")])
    assert (outcome.ok, sink.received) == (False, [])


@pytest.mark.parametrize(
    ("address", "allowed"),
    [("8.8.8.8", True), ("2606:4700::1111", True), ("100.64.0.1", False), ("fd00::1", False)],
)
def test_address_rules(address, allowed, settings):
    settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK = True
    assert webhooks.address_allowed(ipaddress.ip_address(address)) is allowed


def test_a_test_delivery_reports_what_the_receiver_answered(customers, sink):
    hook = webhook(customers["acme"], sink.url("/acme"))
    assert delivery.test_send(hook) == delivery.Result(True, 200)
    sink.status = 500
    failed = delivery.test_send(hook)
    assert (failed.ok, failed.status, failed.error) == (False, 500, "Answered 500.")
    assert json.loads(sink.received[0].body)["type"] == "test"
    assert Subscription.objects.get(pk=hook.pk).active  # a test never disables it
