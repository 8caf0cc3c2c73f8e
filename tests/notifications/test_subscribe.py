"""Public subscribers: dana subscribes by email to the coordination service in
us-east, erin to the whole page; hooks.example's operator subscribes a webhook.

Nothing is sent to an address before its confirmation link is used; asking to
subscribe answers the same whatever the address's state; a message's links
unsubscribe (without signing in, in one click) and change what it hears about.
"""

import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client

from incidents.services import incident_create
from notifications import delivery, outbox
from notifications.models import Delivery, Subscription
from tests.conftest import T0

from .conftest import mailbox

M = timedelta(minutes=1)
H = timedelta(hours=1)
SENT = "/subscribe/sent/"


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def link(message, kind: str) -> str:
    """The path of the ``kind`` link (confirm, unsubscribe, manage) in a message."""
    found = re.search(rf"https?://\S+/subscribe/{kind}/[^/\s]+/", text_of(message))
    assert found is not None, text_of(message)
    return urlsplit(found.group(0)).path


def subscribe(client, email, *components, address="192.0.2.10"):
    return client.post(
        "/subscribe/",
        {"email": email, "components": [c.pk for c in components]},
        REMOTE_ADDR=address,
    )


def outage(component, title, *, at):
    return incident_create(
        title=title,
        body="We are investigating.",
        components={component: "major_outage"},
        published=True,
        at=at,
    )


@pytest.fixture
def at_t0(time_machine):
    time_machine.move_to(T0, tick=False)
    return T0


def test_the_subscribe_page_offers_email_and_webhook_with_every_component(client, fleet):
    page = client.get("/subscribe/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'action="/subscribe/"' in html
    assert 'action="/subscribe/webhook/"' in html
    assert "Coordination (us-east)" in html
    assert "Coordination (eu-west)" in html
    assert "no-store" in page["Cache-Control"] or "max-age=0" in page["Cache-Control"]


def test_dana_hears_nothing_until_she_confirms_then_only_about_her_component(
    client, fleet, smtp, committed, at_t0
):
    answer = subscribe(client, "dana@example.org", fleet["us"])

    assert (answer.status_code, answer["Location"]) == (303, SENT)
    assert "Check your inbox" in client.get(SENT).content.decode()
    (confirmation,) = smtp.messages
    assert confirmation["To"] == "dana@example.org"
    assert "Confirm" in confirmation["Subject"]
    assert "Coordination (us-east)" in text_of(confirmation)
    assert "/subscribe/confirm/" in html_of(confirmation)

    with committed():
        outage(fleet["us"], "Logins failing in us-east", at=T0)
    assert len(smtp.messages) == 1  # still only the confirmation
    assert not Delivery.objects.exists()

    confirm = link(confirmation, "confirm")
    shown = client.get(confirm)
    assert "Confirm my subscription" in shown.content.decode()
    assert Subscription.objects.get(email="dana@example.org").confirmed_at is None
    done = client.post(confirm)
    assert "Confirmed" in done.content.decode()
    assert "/subscribe/manage/" in done.content.decode()

    with committed():
        outage(fleet["us"], "Admin console slow in us-east", at=T0 + M)
        outage(fleet["eu"], "Logins failing in eu-west", at=T0 + 2 * M)

    told = smtp.messages[1:]
    assert [m["Subject"] for m in told] == [
        "[Coordination service status] Admin console slow in us-east"
    ]
    assert told[0]["To"] == "dana@example.org"
    assert "/subscribe/manage/" in text_of(told[0])
    assert told[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_answer_is_the_same_for_a_new_and_an_existing_address(client, fleet, smtp):
    mailbox(None, "erin@example.org")  # subscribed, confirmed, to the whole page

    new = subscribe(client, "frank@example.org", fleet["us"])
    existing = subscribe(client, "erin@example.org", fleet["eu"])
    again = subscribe(client, "frank@example.org", fleet["us"])

    assert (new.status_code, new["Location"], new.content) == (
        existing.status_code,
        existing["Location"],
        existing.content,
    )
    assert (again.status_code, again["Location"]) == (303, SENT)
    # erin's choice is unchanged: whoever asked does not own her inbox (or does,
    # and her mail says how to change it).
    erin = Subscription.objects.get(email="erin@example.org")
    assert list(erin.components.all()) == []
    to_erin = [m for m in smtp.messages if m["To"] == "erin@example.org"]
    assert [m["Subject"] for m in to_erin] == [
        "[Coordination service status] You are already subscribed"
    ]
    assert "/subscribe/manage/" in text_of(to_erin[0])
    # frank, not confirmed yet, got his link again
    to_frank = [m for m in smtp.messages if m["To"] == "frank@example.org"]
    assert len(to_frank) == 2
    assert all("/subscribe/confirm/" in text_of(m) for m in to_frank)
    assert Subscription.objects.filter(email__iexact="frank@example.org").count() == 1


def test_someone_who_unsubscribed_subscribes_again_by_confirming_again(
    client, fleet, smtp, committed, at_t0
):
    gone = mailbox(None, "gina@example.org", active=False, disabled_reason="Unsubscribed.")

    assert subscribe(client, "gina@example.org")["Location"] == SENT
    gone.refresh_from_db()
    assert gone.confirmed_at is None  # nothing reaches her before she confirms
    with committed():
        outage(fleet["us"], "Before confirming", at=T0)
    assert not Delivery.objects.exists()

    (confirmation,) = smtp.messages
    client.post(link(confirmation, "confirm"))
    with committed():
        outage(fleet["us"], "After confirming", at=T0 + M)
    assert [m["Subject"] for m in smtp.messages[1:]] == [
        "[Coordination service status] After confirming"
    ]


def test_unsubscribing_needs_no_sign_in_and_a_get_changes_nothing(fleet, smtp, committed, at_t0):
    dana = mailbox(None, "dana@example.org")
    with committed():
        outage(fleet["us"], "Logins failing", at=T0)
    (notice,) = smtp.messages
    from_header = urlsplit(str(notice["List-Unsubscribe"]).strip().strip("<>")).path
    assert from_header == link(notice, "unsubscribe")

    browser = Client(enforce_csrf_checks=True)
    page = browser.get(from_header)
    assert page.status_code == 200
    assert "<button" in page.content.decode()
    dana.refresh_from_db()
    assert dana.active  # a GET (a mail scanner) never unsubscribes

    # What a mail client sends for List-Unsubscribe-Post (RFC 8058): no CSRF token.
    done = browser.post(
        from_header,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert done.status_code == 200
    assert "is unsubscribed" in done.content.decode()
    dana.refresh_from_db()
    assert not dana.active

    with committed():
        outage(fleet["us"], "Another one", at=T0 + M)
    assert len(smtp.messages) == 1


def test_the_link_in_every_message_changes_what_dana_hears_about(fleet, smtp, committed, at_t0):
    dana = mailbox(None, "dana@example.org")  # the whole page
    with committed():
        outage(fleet["eu"], "Logins failing in eu-west", at=T0)
    manage = link(smtp.messages[0], "manage")

    browser = Client(enforce_csrf_checks=True)
    page = browser.get(manage)
    assert page.status_code == 200
    assert "The whole page" in page.content.decode()
    forged = browser.post(manage, {"action": "components", "components": [fleet["us"].pk]})
    assert forged.status_code == 403  # no CSRF token: not from this page
    token = page.cookies["csrftoken"].value
    saved = browser.post(
        manage,
        {"action": "components", "components": [fleet["us"].pk], "csrfmiddlewaretoken": token},
    )
    assert saved.status_code == 200
    assert list(dana.components.all()) == [fleet["us"]]

    with committed():
        outage(fleet["eu"], "eu-west again", at=T0 + M)
        outage(fleet["us"], "us-east now", at=T0 + 2 * M)
    assert [m["Subject"] for m in smtp.messages[1:]] == [
        "[Coordination service status] us-east now"
    ]


def test_a_tampered_link_is_a_404(client, fleet):
    assert client.get("/subscribe/manage/not-a-signed-link/").status_code == 404
    assert client.get("/subscribe/confirm/not-a-signed-link/").status_code == 404


# --- Limits --------------------------------------------------------------------------------


def test_one_address_gets_at_most_three_confirmations_an_hour(client, fleet, smtp):
    answers = [subscribe(client, "dana@example.org") for _ in range(5)]

    assert {(a.status_code, a["Location"]) for a in answers} == {(303, SENT)}
    assert len(smtp.messages) == 3


def test_one_network_asks_for_at_most_ten_subscriptions_an_hour(client, fleet, smtp):
    answers = [subscribe(client, f"person{n}@example.org") for n in range(12)]
    elsewhere = subscribe(client, "someone@example.org", address="198.51.100.7")

    assert {(a.status_code, a["Location"]) for a in answers} == {(303, SENT)}
    assert elsewhere["Location"] == SENT
    assert len(smtp.messages) == 11  # ten from the first network, one from the other
    assert not Subscription.objects.filter(email="person11@example.org").exists()


def test_a_bad_address_is_a_clear_error(client, fleet, smtp):
    page = client.post("/subscribe/", {"email": "not an address"})

    assert page.status_code == 400
    assert "Enter a valid email address." in page.content.decode()
    assert smtp.messages == []


# --- Public webhooks -------------------------------------------------------------------------


def test_a_public_webhook_is_on_once_a_test_is_answered(client, fleet, sink, committed, at_t0):
    page = client.post(
        "/subscribe/webhook/",
        {"url": sink.url("/status"), "format": "json", "components": [fleet["us"].pk]},
    )

    assert page.status_code == 201
    hook = Subscription.objects.get(url=sink.url("/status"))
    html = page.content.decode()
    assert len(hook.secret) >= 32  # generated
    assert hook.secret in html  # and shown this once
    assert "Test delivered: answered 200." in html
    assert hook.confirmed_at is not None
    (test,) = sink.received
    assert json.loads(test.body)["type"] == "test"
    assert test.headers["X-Statuspage-Signature"].startswith("t=")

    with committed():
        outage(fleet["us"], "Logins failing", at=T0)
    assert [json.loads(r.body)["type"] for r in sink.received[1:]] == ["incident.published"]

    manage = re.search(r'href="https?://[^/"]+(/subscribe/manage/[^"]+)"', html)
    assert manage is not None
    assert hook.secret not in client.get(manage.group(1)).content.decode()


def test_a_failing_test_leaves_it_off_until_a_test_again_succeeds(
    client, fleet, sink, committed, at_t0
):
    sink.status = 500
    page = client.post(
        "/subscribe/webhook/", {"url": sink.url("/status"), "secret": "my own secret"}
    )

    assert page.status_code == 201
    html = page.content.decode()
    assert "Test not delivered: Answered 500." in html
    assert "Send a test again" in html
    hook = Subscription.objects.get(url=sink.url("/status"))
    assert (hook.secret, hook.confirmed_at) == ("my own secret", None)
    with committed():
        outage(fleet["us"], "Unheard", at=T0)
    assert len(sink.received) == 1  # only the test

    sink.status = 202
    manage = re.search(r'action="(/subscribe/manage/[^"]+)"', html)
    assert manage is not None
    again = client.post(manage.group(1), {"action": "test"})
    assert "Test delivered: answered 202." in again.content.decode()
    hook.refresh_from_db()
    assert hook.confirmed_at is not None


def test_a_webhook_to_loopback_is_refused_unless_allowed(client, fleet, settings):
    settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK = False

    page = client.post("/subscribe/webhook/", {"url": "http://127.0.0.1:8000/hook"})

    assert page.status_code == 400
    assert "private, loopback or link-local" in page.content.decode()
    assert not Subscription.objects.exists()


def test_public_webhooks_from_one_network_are_limited(client, fleet, sink):
    answers = [
        client.post("/subscribe/webhook/", {"url": sink.url(f"/h{n}"), "format": "json"})
        for n in range(11)
    ]

    assert [a.status_code for a in answers] == [201] * 10 + [429]
    assert "Too many subscriptions" in answers[-1].content.decode()
    assert len(sink.received) == 10


# --- Maintenance ---------------------------------------------------------------------------------


def test_maintenance_notices_reach_public_subscribers_of_its_component(
    fleet, smtp, committed, time_machine
):
    time_machine.move_to(T0, tick=False)
    dana = mailbox(None, "dana@example.org")
    dana.components.set([fleet["us"]])
    eve = mailbox(None, "eve@example.org")
    eve.components.set([fleet["eu"]])

    with committed():
        incident_create(
            title="Database upgrade in us-east",
            body="Logins may pause for a minute.",
            kind="maintenance",
            status="scheduled",
            scheduled_for=T0 + 2 * H,
            scheduled_until=T0 + 3 * H,
            components={fleet["us"]: "under_maintenance"},
            published=True,
            at=T0,
        )
    assert list(Delivery.objects.values_list("type", "subscription__email")) == [
        ("maintenance.scheduled", "dana@example.org")
    ]
    (scheduled,) = smtp.messages
    assert scheduled["To"] == "dana@example.org"
    assert "Scheduled maintenance" in scheduled["Subject"]

    assert outbox.maintenance_reminders_add(now=T0 + 30 * M) == 0  # 90 min ahead
    time_machine.move_to(T0 + H + 30 * M, tick=False)
    assert outbox.maintenance_reminders_add(now=T0 + H + 30 * M) == 1
    delivery.deliver_due()

    reminder = smtp.messages[-1]
    assert reminder["To"] == "dana@example.org"
    assert "Maintenance soon" in reminder["Subject"]
    assert "eve@example.org" not in [m["To"] for m in smtp.messages]


@pytest.mark.parametrize("component", ["99999999999999999999999", "²", "-1", "1e3"])
def test_a_component_that_cannot_exist_is_a_clear_error(client, fleet, component):
    answer = client.post("/subscribe/", {"email": "erin@example.com", "components": [component]})
    assert answer.status_code in (200, 400)
    assert "Select a valid choice" in answer.content.decode()
