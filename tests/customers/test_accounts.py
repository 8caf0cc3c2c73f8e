"""Signing in and out, resetting a password, the sign-in rate limit, demo people."""

import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from customers.models import Membership
from fleet import services as fleet_services
from plumbing import ratelimit
from tests.conftest import PASSWORD

LOGIN = "/accounts/login/"
WRONG = "not the password"


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """A cache of this test's own: rate-limit counts never leak between tests."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"accounts-{uuid.uuid4()}",
        }
    }


def sign_in(client, username, password, *, address="198.51.100.7", **extra):
    return client.post(
        LOGIN, {"username": username, "password": password, **extra}, REMOTE_ADDR=address
    )


def signed_in_as(client):
    response = client.get("/t/acme/members/")
    if response.status_code == 302:
        return None
    return response.wsgi_request.user.get_username()


# --- Signing in and out ------------------------------------------------------------------


def test_alice_signs_in_and_lands_on_the_page_she_asked_for(client, people):
    page = client.get("/t/acme/members/")
    assert page.status_code == 302
    assert page["Location"] == "/accounts/login/?next=/t/acme/members/"

    form = client.get(page["Location"])
    assert form.status_code == 200
    html = form.content.decode()
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html
    assert 'name="next" value="/t/acme/members/"' in html
    assert "Forgot your password?" in html

    response = sign_in(client, "alice", PASSWORD, next="/t/acme/members/")
    assert response.status_code == 302
    assert response["Location"] == "/t/acme/members/"
    assert "Members" in client.get("/t/acme/members/").content.decode()


def test_signing_in_without_a_destination_leads_to_your_tailnets(client, people):
    response = sign_in(client, "alice", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/t/"


def test_a_wrong_password_is_refused_with_a_clear_message(client, people):
    response = sign_in(client, "alice", WRONG)
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert signed_in_as(client) is None


def test_sign_out_is_a_form_with_a_csrf_token_and_ends_the_session(people):
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["alice"])
    page = client.get("/t/acme/members/").content.decode()
    form = re.search(r'<form method="post" action="/accounts/logout/">(.*?)</form>', page, re.S)
    assert form is not None, "the members page has a sign-out form"
    assert "Sign out" in form.group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(1)).group(1)

    assert client.get("/accounts/logout/").status_code == 405  # a link can't sign anyone out
    assert client.post("/accounts/logout/").status_code == 403  # nor a forged form
    assert signed_in_as(client) == "alice"

    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert signed_in_as(client) is None


def test_the_signed_out_page_points_back_to_the_status_page(client, people, settings):
    settings.LOGOUT_REDIRECT_URL = None
    client.force_login(people["alice"])
    html = client.post("/accounts/logout/").content.decode()
    assert "You are signed out" in html
    assert 'href="/"' in html


# --- Password reset ------------------------------------------------------------------------


def test_alice_resets_her_password_by_email(client, people, settings):
    settings.STATUSPAGE_PUBLIC_URL = "https://status.example.com"
    response = client.post("/accounts/password_reset/", {"email": "ALICE@acme.com"})
    assert response.status_code == 302
    done = client.get(response["Location"]).content.decode()
    assert "Check your email" in done

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@acme.com"]
    assert message.subject == "Reset your password for Coordination service status"
    assert "&amp;" not in message.body  # plain text, not HTML-escaped
    link = re.search(r"https://status.example.com(/accounts/reset/\S+/)", message.body).group(1)

    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    new = "a much longer new passphrase"
    response = client.post(
        form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}, follow=True
    )
    assert "Your password has been changed" in response.content.decode()

    assert "Please enter a correct" in sign_in(client, "alice", PASSWORD).content.decode()
    assert sign_in(client, "alice", new).status_code == 302

    # The link worked once.
    again = client.get(link, follow=True).content.decode()
    assert "work any more" in again


def test_a_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, people):
    response = client.post("/accounts/password_reset/", {"email": "mallory@example.org"})
    assert response.status_code == 302
    assert "Check your email" in client.get(response["Location"]).content.decode()
    assert mail.outbox == []


# --- The sign-in rate limit -------------------------------------------------------------------


def test_after_five_wrong_passwords_even_the_right_one_is_refused_for_a_while(client, people):
    for _ in range(5):
        assert "Please enter a correct" in sign_in(client, "alice", WRONG).content.decode()

    refused = sign_in(client, "alice", PASSWORD).content.decode()
    assert "Too many failed sign-in attempts for this username" in refused
    assert "please wait" in refused
    assert signed_in_as(client) is None
    assert "Too many" in sign_in(client, " ALICE", WRONG).content.decode()

    # Another address, or another person from this address, is not held up.
    assert sign_in(Client(), "alice", PASSWORD, address="192.0.2.99").status_code == 302
    assert sign_in(Client(), "bob", PASSWORD).status_code == 302

    # The window passes.
    with time_machine.travel(timezone.now() + timedelta(minutes=16), tick=False):
        assert sign_in(client, "alice", PASSWORD).status_code == 302


def test_signing_in_clears_earlier_failures(client, people):
    for _ in range(4):
        sign_in(client, "alice", WRONG)
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        sign_in(client, "alice", WRONG)
    assert sign_in(client, "alice", PASSWORD).status_code == 302


def test_sign_in_still_works_when_the_cache_is_down(client, people, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "plumbing.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    for _ in range(7):
        assert "Please enter a correct" in sign_in(client, "alice", WRONG).content.decode()
    assert sign_in(client, "alice", PASSWORD).status_code == 302


def test_hit_counts_per_key_and_window():
    key = f"test:{uuid.uuid4()}"
    assert [ratelimit.hit(key, 3, 60) for _ in range(4)] == [True, True, True, False]
    assert ratelimit.is_limited(key, 3, 60)
    assert ratelimit.hit(f"{key}:other", 3, 60)
    ratelimit.reset(key, 60)
    assert ratelimit.hit(key, 3, 60)


def test_hit_fails_open_when_the_cache_is_down(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "plumbing.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    assert all(ratelimit.hit("down", 1, 60) for _ in range(3))
    assert not ratelimit.is_limited("down", 1, 60)
    ratelimit.reset("down", 60)  # does not raise


@pytest.mark.parametrize(
    ("rate", "expected"),
    [("5/10min", (5, 600)), ("100/hour", (100, 3600)), ("3/s", (3, 1)), ("20/2hours", (20, 7200))],
)
def test_rates_read_like_settings(rate, expected):
    assert ratelimit.parse_rate(rate) == expected


@pytest.mark.parametrize("rate", ["5", "five/min", "0/min", "5/fortnight"])
def test_a_malformed_rate_is_refused(rate):
    with pytest.raises(ValueError, match="rate"):
        ratelimit.parse_rate(rate)


# --- Demo people -------------------------------------------------------------------------------


def test_demo_people_are_seeded_once_with_the_printed_logins(fleet, capsys):
    acme = fleet_services.tailnet_create(
        slug="acme-com", display_name="acme.com", shard=fleet["use1"]
    )
    globex = fleet_services.tailnet_create(
        slug="globex-com", display_name="globex.com", shard=fleet["euw1"]
    )
    call_command("seed_demo_users")
    first = capsys.readouterr().out
    assert "created alice, bob, carol, operator" in first
    assert "alice / alice-demo-password" in first
    call_command("seed_demo_users")
    assert "Demo people present." in capsys.readouterr().out

    users = get_user_model().objects
    assert users.count() == 4
    assert users.get(username="operator").is_staff
    assert Membership.objects.get(user__username="alice", tailnet=acme).role == "owner"
    assert Membership.objects.get(user__username="bob", tailnet=globex).role == "member"
    assert not Membership.objects.filter(user__username="carol").exists()

    client = Client()
    assert sign_in(client, "alice", "alice-demo-password").status_code == 302


def test_demo_people_need_the_demo_fleet(db):
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("seed_demo_users")


def test_password_reset_cannot_flood_an_inbox(client, people):
    for _ in range(5):
        response = client.post("/accounts/password_reset/", {"email": "alice@acme.com"})
        assert response.status_code == 302  # the same "check your email" every time
    assert len(mail.outbox) == 3


def test_one_address_cannot_ask_for_resets_endlessly(client, people):
    for n in range(10):
        client.post("/accounts/password_reset/", {"email": f"nobody{n}@example.org"})
    response = client.post("/accounts/password_reset/", {"email": "alice@acme.com"})
    assert response.status_code == 200
    assert "Too many password reset requests from your network." in response.content.decode()
    assert mail.outbox == []
