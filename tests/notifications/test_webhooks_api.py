"""acme's webhooks through its API, as alice's scripts use it: with her session or
acme's token; bob, a plain member of globex, is refused; nobody learns about a
tailnet they may not see."""

import json
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from incidents.services import WindowSpec, incident_create
from notifications.models import Subscription
from plumbing.tokens import api_token_create
from tests.conftest import T0

from .conftest import mailbox, webhook

API = "/api/v1/tailnets"
HOOK = "https://hooks.example.net/acme"


@pytest.fixture
def alice(people):
    client = APIClient()
    client.force_login(people["alice"])
    return client


@pytest.fixture
def script(people):
    """acme's bearer token, no session."""
    _, secret = api_token_create(name="Terraform", scope="tailnet", tailnet=people["acme"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_alice_adds_lists_and_removes_a_webhook(alice, people):
    created = alice.post(f"{API}/acme/webhooks", {"url": HOOK}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "url", "format", "secret"}
    assert (body["url"], body["format"]) == (HOOK, "json")
    assert len(body["secret"]) >= 32  # generated, shown only here
    hook = Subscription.objects.get(pk=body["id"])
    assert (hook.tailnet, hook.secret, hook.created_by) == (
        people["acme"],
        body["secret"],
        people["alice"],
    )
    assert hook.confirmed_at is not None  # its own manager made it

    listed = alice.get(f"{API}/acme/webhooks")
    assert listed.status_code == 200
    assert [(w["id"], w["url"], w["format"], w["active"]) for w in listed.json()] == [
        (hook.pk, HOOK, "json", True)
    ]
    assert "secret" not in listed.json()[0]
    assert body["secret"] not in listed.content.decode()
    assert "no-store" in listed["Cache-Control"]

    removed = alice.delete(f"{API}/acme/webhooks/{hook.pk}")
    assert (removed.status_code, removed.content) == (204, b"")
    assert alice.get(f"{API}/acme/webhooks").json() == []


def test_a_given_secret_and_format_are_kept(alice):
    created = alice.post(
        f"{API}/acme/webhooks",
        {"url": HOOK, "secret": "my-own-secret", "format": "slack"},
        format="json",
    )

    assert created.status_code == 201
    assert (created.json()["secret"], created.json()["format"]) == ("my-own-secret", "slack")


def test_acmes_token_manages_acmes_webhooks_and_no_others(script, people):
    created = script.post(f"{API}/acme/webhooks", {"url": HOOK}, format="json")
    assert created.status_code == 201
    assert Subscription.objects.get(pk=created.json()["id"]).created_by is None
    assert [w["url"] for w in script.get(f"{API}/acme/webhooks").json()] == [HOOK]
    assert script.delete(f"{API}/acme/webhooks/{created.json()['id']}").status_code == 204

    theirs = webhook(people["globex"], "https://hooks.example.net/globex")
    assert script.get(f"{API}/globex/webhooks").status_code == 404
    assert script.delete(f"{API}/globex/webhooks/{theirs.pk}").status_code == 404
    # Even with globex's id under acme's name: only acme's webhooks are acme's.
    assert script.delete(f"{API}/acme/webhooks/{theirs.pk}").status_code == 404
    assert Subscription.objects.filter(pk=theirs.pk).exists()


def test_bob_a_plain_member_is_refused(people):
    bob = APIClient()
    bob.force_login(people["bob"])

    assert bob.get(f"{API}/globex/webhooks").status_code == 403
    refused = bob.post(f"{API}/globex/webhooks", {"url": HOOK}, format="json")
    assert refused.status_code == 403
    assert "owners and admins" in refused.json()["detail"]
    assert not Subscription.objects.exists()


def test_a_foreign_tailnet_is_the_same_404_as_none(alice, people):
    foreign = alice.post(f"{API}/globex/webhooks", {"url": HOOK}, format="json")
    unknown = alice.post(f"{API}/no-such-tailnet/webhooks", {"url": HOOK}, format="json")

    assert foreign.status_code == unknown.status_code == 404
    assert foreign.content == unknown.content
    assert not Subscription.objects.exists()


def test_without_a_session_or_token_it_is_a_401(people):
    assert APIClient().get(f"{API}/acme/webhooks").status_code == 401


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.example.net/x", "An http:// or https:// URL is required."),
        ("not a url", "An http:// or https:// URL is required."),
        ("http://10.1.2.3/hook", "private, loopback or link-local"),
        ("http://[fd00::1]/hook", "private, loopback or link-local"),
        ("http://127.0.0.1:8000/hook", "private, loopback or link-local"),
        ("http://localhost/hook", "private, loopback or link-local"),
        ("https://hooks.example.net/" + "x" * 500, "At most 500 characters."),
        ("", "A URL is required."),
    ],
)
def test_a_bad_url_is_a_clear_field_error(alice, settings, url, problem):
    settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK = False

    refused = alice.post(f"{API}/acme/webhooks", {"url": url}, format="json")

    assert refused.status_code == 400
    assert list(refused.json()) == ["url"]
    assert problem in refused.json()["url"][0]
    assert not Subscription.objects.exists()


def test_unknown_fields_and_formats_are_refused(alice):
    typo = alice.post(f"{API}/acme/webhooks", {"url": HOOK, "fromat": "slack"}, format="json")
    bad_format = alice.post(f"{API}/acme/webhooks", {"url": HOOK, "format": "xml"}, format="json")
    long_secret = alice.post(
        f"{API}/acme/webhooks", {"url": HOOK, "secret": "s" * 101}, format="json"
    )

    assert typo.status_code == bad_format.status_code == long_secret.status_code == 400
    assert list(typo.json()) == ["fromat"]
    assert list(bad_format.json()) == ["format"]
    assert list(long_secret.json()) == ["secret"]
    assert not Subscription.objects.exists()


def test_a_session_write_needs_its_csrf_token(people):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(people["alice"])

    refused = browser.post(f"{API}/acme/webhooks", {"url": HOOK}, format="json")

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]


def test_a_tailnet_has_at_most_twenty_webhooks(script, people):
    for n in range(20):
        webhook(people["acme"], f"https://hooks.example.net/{n}")

    refused = script.post(f"{API}/acme/webhooks", {"url": HOOK}, format="json")

    assert refused.status_code == 400
    assert refused.json() == {
        "detail": "acme.com has 20 webhooks, the most a tailnet may have. Remove one first."
    }


def test_an_email_recipient_is_not_a_webhook(script, people):
    recipient = mailbox(people["acme"], "ops@acme.com")

    assert script.delete(f"{API}/acme/webhooks/{recipient.pk}").status_code == 404
    assert script.get(f"{API}/acme/webhooks").json() == []


def test_a_webhook_made_through_the_api_hears_when_acme_is_affected(
    script, people, sink, committed, time_machine
):
    created = script.post(f"{API}/acme/webhooks", {"url": sink.url("/acme")}, format="json")
    assert created.status_code == 201

    time_machine.move_to(T0 + timedelta(minutes=2), tick=False)
    with committed():
        incident_create(
            title="US East 1 control plane unavailable",
            body="We are investigating.",
            started_at=T0,
            shard_impacts=[WindowSpec("use1", "outage", T0)],
            published=True,
            at=T0 + timedelta(minutes=2),
        )

    (received,) = sink.received
    assert json.loads(received.body)["type"] == "incident.affected"
    assert json.loads(received.body)["tailnet"] == "acme"
