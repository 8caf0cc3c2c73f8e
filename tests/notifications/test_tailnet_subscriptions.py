"""acme's notifications page: alice (its owner) adds recipients and webhooks, tests
them and sees what was sent; bob (a plain member of globex) only sees globex's;
carol, in no tailnet, sees none."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Membership
from notifications import delivery
from notifications.models import Delivery, Subscription
from notifications.services import webhook_create
from tests.conftest import PASSWORD, T0

from .conftest import mailbox, webhook

PAGE = "/t/acme/notifications/"


@pytest.fixture
def alice(client, people):
    client.force_login(people["alice"])
    return client


def post(client, path=PAGE, **data):
    return client.post(path, data, follow=True)


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_the_tailnet_page_links_to_its_notifications(alice):
    assert f'href="{PAGE}"' in alice.get("/t/acme/").content.decode()


def test_a_members_address_hears_at_once_without_a_confirmation_mail(alice, people, smtp):
    dave = get_user_model().objects.create_user("dave", "Dave@Acme.com", PASSWORD)
    Membership.objects.create(user=dave, tailnet=people["acme"], role="member")

    page = post(alice, action="add_email", email="dave@acme.com")

    assert page.status_code == 200
    assert "will hear about incidents that affect acme.com" in text(page)
    added = Subscription.objects.get(tailnet=people["acme"])
    assert added.confirmed_at is not None
    assert added.created_by == people["alice"]
    assert smtp.messages == []


def test_an_outside_address_confirms_first(alice, people, smtp):
    page = post(alice, action="add_email", email="oncall@pager.example")

    assert "We sent oncall@pager.example a link to confirm" in text(page)
    assert "Waiting for confirmation" in text(page)
    added = Subscription.objects.get(email="oncall@pager.example")
    assert added.confirmed_at is None
    (confirmation,) = smtp.messages
    body = confirmation.get_body(preferencelist=("plain",)).get_content()
    assert "alice asked for this address to hear about incidents that affect acme.com" in body
    # Nothing reaches it before the link is used, not even a test.
    refused = post(alice, action="test", subscription=added.pk)
    assert "has not confirmed yet" in text(refused)
    assert len(smtp.messages) == 1

    path = re.search(r"https?://\S+?(/subscribe/confirm/[^/\s]+/)", body).group(1)
    Client().post(path)  # the recipient, not signed in
    added.refresh_from_db()
    assert added.confirmed_at is not None
    tested = post(alice, action="test", subscription=added.pk)
    assert "oncall@pager.example: Test sent." in text(tested)
    assert smtp.messages[-1]["Subject"] == "[Coordination service status] Test notification"


def test_adding_an_address_twice_is_a_clear_error(alice, people):
    mailbox(people["acme"], "ops@acme.com")

    page = alice.post(PAGE, {"action": "add_email", "email": "OPS@acme.com"})

    assert page.status_code == 400
    assert "ops@acme.com is already a recipient of acme.com." in text(page)


def test_a_new_webhook_shows_its_secret_once_and_is_on_at_once(alice, people, sink):
    page = alice.post(PAGE, {"action": "add_webhook", "url": sink.url("/acme"), "format": "slack"})

    assert page.status_code == 201
    hook = Subscription.objects.get(tailnet=people["acme"], channel="webhook")
    assert (hook.format, hook.confirmed_at is not None) == ("slack", True)
    assert len(hook.secret) >= 32
    assert hook.secret in page.content.decode()
    assert hook.secret not in alice.get(PAGE).content.decode()


def test_send_a_test_shows_the_receivers_answer(alice, people, sink):
    hook = webhook(people["acme"], sink.url("/acme"))

    ok = post(alice, action="test", subscription=hook.pk)
    assert f"{sink.url('/acme')}: Test delivered: answered 200." in text(ok)

    sink.status = 500
    failed = post(alice, action="test", subscription=hook.pk)
    assert f"{sink.url('/acme')}: Test not delivered: Answered 500." in text(failed)
    # The recent deliveries show both, the failed one with its answer.
    assert [d.status for d in Delivery.objects.order_by("created_at")] == ["sent", "failed"]
    assert "Failed</strong>" in text(failed)
    assert "500 Answered 500." in text(failed)
    assert len(sink.received) == 2


def test_failed_deliveries_are_easy_to_find(alice, people):
    hook = webhook(people["acme"], "https://hooks.example.net/acme")
    for n, status in enumerate(["sent", "failed", "pending"]):
        Delivery.objects.create(
            subscription=hook,
            tailnet=people["acme"],
            type="test",
            status=status,
            attempts=3,
            last_error=f"Could not connect: error {n}" if status != "sent" else "",
            created_at=timezone.now() - timedelta(minutes=n),
        )

    page = text(alice.get(PAGE))
    assert "1 failed, 1 waiting to be sent or retried." in page
    only_failed = text(alice.get(PAGE + "?deliveries=failed"))
    assert "Could not connect: error 1" in only_failed
    assert "error 2" not in only_failed


def test_a_turned_off_webhook_shows_why_and_turns_on_again(alice, people, smtp):
    hook = webhook(people["acme"], "https://hooks.example.net/acme")
    delivery.webhook_disable(hook, reason="Failing for 24 hours straight.")

    page = text(alice.get(PAGE))
    assert "Turned off</strong>: Failing for 24 hours straight." in page
    assert "Turn on again" in page

    post(alice, action="enable", subscription=hook.pk)
    hook.refresh_from_db()
    assert (hook.active, hook.disabled_reason, hook.failing_since) == (True, "", None)


def test_removing_stops_everything(alice, people):
    hook = webhook(people["acme"], "https://hooks.example.net/acme")

    page = post(alice, action="remove", subscription=hook.pk)

    assert "removed: nothing more is sent to it" in text(page)
    assert not Subscription.objects.filter(pk=hook.pk).exists()


def test_a_tailnet_has_at_most_twenty_webhooks_and_fifty_recipients(alice, people):
    acme = people["acme"]
    for n in range(20):
        webhook_create(tailnet=acme, url=f"https://hooks.example.net/{n}")
    Subscription.objects.bulk_create(
        Subscription(channel="email", tailnet=acme, email=f"p{n}@acme.com") for n in range(50)
    )

    hook = alice.post(PAGE, {"action": "add_webhook", "url": "https://hooks.example.net/x"})
    mail = alice.post(PAGE, {"action": "add_email", "email": "one-more@acme.com"})

    assert hook.status_code == mail.status_code == 400
    assert "acme.com has 20 webhooks, the most a tailnet may have." in text(hook)
    assert "acme.com has 50 email recipients, the most a tailnet may have." in text(mail)
    assert Subscription.objects.filter(tailnet=acme).count() == 70


def test_a_webhook_inside_our_network_is_refused(alice, people, settings):
    settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK = False

    page = alice.post(PAGE, {"action": "add_webhook", "url": "http://169.254.169.254/latest"})

    assert page.status_code == 400
    assert "private, loopback or link-local" in text(page)


def test_bob_a_plain_member_sees_globexs_notifications_but_cannot_change_them(client, people):
    webhook(people["globex"], "https://hooks.slack.example/services/T0/B0/secretpath")
    client.force_login(people["bob"])

    page = client.get("/t/globex/notifications/")
    refused = client.post(
        "/t/globex/notifications/", {"action": "add_email", "email": "bob@globex.com"}
    )

    assert page.status_code == 200
    assert "https://hooks.slack.example/…" in text(page)
    assert "secretpath" not in text(page)  # a Slack URL is itself a key
    assert "Only the tailnet's owners and admins" in text(page)
    assert refused.status_code == 403
    assert not Subscription.objects.filter(email="bob@globex.com").exists()


def test_a_foreign_tailnet_is_a_404(client, people):
    client.force_login(people["carol"])
    assert client.get(PAGE).status_code == 404
    client.force_login(people["alice"])
    assert client.get("/t/globex/notifications/").status_code == 404
    assert client.post("/t/globex/notifications/", {"action": "add_email"}).status_code == 404


def test_another_tailnets_subscription_cannot_be_touched(alice, people):
    theirs = webhook(people["globex"], "https://hooks.example.net/globex")

    assert alice.post(PAGE, {"action": "remove", "subscription": theirs.pk}).status_code == 404
    assert Subscription.objects.filter(pk=theirs.pk).exists()


def test_every_form_needs_its_csrf_token(people):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(people["alice"])

    refused = browser.post(PAGE, {"action": "add_email", "email": "ops@acme.com"})

    assert refused.status_code == 403
    assert not Subscription.objects.exists()
    assert 'name="csrfmiddlewaretoken"' in browser.get(PAGE).content.decode()


def test_a_deleted_tailnet_gets_no_new_subscriptions(alice, people):
    people["acme"].deleted_at = T0
    people["acme"].save(update_fields=["deleted_at"])

    page = alice.post(PAGE, {"action": "add_webhook", "url": "https://hooks.example.net/x"})

    assert page.status_code == 400
    assert "acme.com was deleted" in text(page)


def test_operators_find_failed_deliveries_and_never_see_a_whole_secret(client, people):
    hook = webhook(people["acme"], "https://hooks.example.net/acme", secret="abcd-very-secret")
    Delivery.objects.create(
        subscription=hook, tailnet=people["acme"], type="test", status="failed",
        last_error="Answered 500.",
    )  # fmt: skip
    client.force_login(people["staff"])

    listed = client.get("/admin/notifications/subscription/", {"q": "hooks.example.net"})
    shown = client.get(f"/admin/notifications/subscription/{hook.pk}/change/")
    failed = client.get("/admin/notifications/delivery/", {"status__exact": "failed"})
    searched = client.get("/admin/notifications/delivery/", {"q": "not-a-uuid"})

    assert listed.status_code == shown.status_code == failed.status_code == 200
    assert searched.status_code == 200
    assert "https://hooks.example.net/acme" in text(listed)
    assert "abcd…" in text(shown)
    assert "very-secret" not in text(shown)
    assert "Answered 500." in text(failed)
    assert client.get("/admin/notifications/delivery/add/").status_code == 403


def test_the_page_reads_the_same_number_of_queries_however_many_rows(alice, people):
    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            assert alice.get(PAGE).status_code == 200
        return len(seen)

    def add(n: int) -> None:
        hook = webhook(people["acme"], f"https://hooks.example.net/{n}")
        hook.created_by = people["alice"]
        hook.save(update_fields=["created_by"])
        mailbox(people["acme"], f"p{n}@acme.com", created_by=people["alice"])
        Delivery.objects.create(subscription=hook, tailnet=people["acme"], type="test")

    add(0)
    queries()  # the memberships are cached from here on
    few = queries()
    for n in range(1, 6):
        add(n)
    assert queries() == few
