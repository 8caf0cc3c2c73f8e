"""A signed-in page reads the session, the person, their memberships and the API token
from the cache (plumbing/sessions.py, customers/backends.py, customers/access.py,
plumbing/tokens.py). Whatever changes who may see what is seen at the very next
request, and nothing needs the cache to work."""

import pickle
import zlib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from customers.models import Membership
from customers.services import membership_remove, membership_set_role
from fleet.services import tailnet_migrate
from incidents.models import Placement, Tailnet
from plumbing.cache import FORGET_SECONDS, redis_client
from plumbing.tokens import api_token_create, api_token_revoke
from reports.models import ReportStatus
from reports.services import report_mark, report_submit
from tests.conftest import PASSWORD

from .test_tailnet_page import NOW, M, outage, signed_in, text_of

NEW = "a whole new horse 2026"

DOWN = {
    "default": {
        "BACKEND": "plumbing.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens: refused
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }
}


@pytest.fixture(autouse=True)
def at_now(time_machine):
    """Autouse, so the people are set up at NOW too (see _moments_later)."""
    time_machine.move_to(NOW, tick=False)
    return NOW


def _moments_later(time_machine):
    """A change forgets what was cached and, for a moment (plumbing.cache.FORGET_SECONDS),
    keeps anyone from keeping it again; setting the people up changed them all."""
    time_machine.move_to(NOW + timedelta(seconds=FORGET_SECONDS + 1), tick=False)


def _tables_read(client, path):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    return response, " ".join(query["sql"] for query in captured)


def _carol_joins_acme(people):
    return Membership.objects.create(user=people["carol"], tailnet=people["acme"], role="member")


# --- Kept ----------------------------------------------------------------------------------


def test_alices_second_look_reads_nothing_from_the_database(client, people, at_now, time_machine):
    alice = signed_in(client, people["alice"])
    _moments_later(time_machine)
    assert alice.get("/t/acme/").status_code == 200

    again, read = _tables_read(alice, "/t/acme/")

    assert again.status_code == 200
    assert "acme.com" in text_of(again)
    assert read == ""  # no session, user, membership or page query


def test_a_tokens_second_call_reads_nothing_but_the_page_it_asks_for(people, at_now, time_machine):
    _, secret = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    _moments_later(time_machine)
    assert script.get("/api/v1/tailnets/acme/uptime").status_code == 200

    again, read = _tables_read(script, "/api/v1/tailnets/acme/uptime")

    assert again.status_code == 200
    assert again.json()["tailnet"] == {"slug": "acme", "name": "acme.com"}
    assert read == ""


def test_a_dashboard_polling_status_is_answered_from_the_cache_and_told_at_once(
    people, time_machine, committed, settings
):
    settings.STATUSPAGE_PUBLIC_URL = "https://status.example.com"
    _, secret = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    dashboard = APIClient()
    dashboard.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    _moments_later(time_machine)
    assert dashboard.get("/api/v1/tailnets/acme/status").json()["affected"] is False

    again, read = _tables_read(dashboard, "/api/v1/tailnets/acme/status")
    assert read == ""
    assert again.json()["status"] == "operational"

    with committed():
        outage(["use1"], NOW - 5 * M, None, title="Logins failing in US East 1")
    now = dashboard.get("/api/v1/tailnets/acme/status").json()
    assert now["affected"] is True
    assert [i["title"] for i in now["incidents"]] == ["Logins failing in US East 1"]
    assert now["incidents"][0]["url"] == "https://status.example.com/incidents/{}/".format(
        now["incidents"][0]["id"]
    )


# --- Changes seen at the next request ------------------------------------------------------


def test_carol_removed_from_acme_gets_the_404_at_her_next_request(client, people, at_now):
    membership = _carol_joins_acme(people)
    carol = signed_in(client, people["carol"])
    assert carol.get("/t/acme/").status_code == 200

    membership_remove(tailnet=people["acme"], membership=membership, by=people["alice"])

    assert carol.get("/t/acme/").status_code == 404
    assert carol.get("/api/v1/tailnets/acme/status").status_code == 404


def test_carol_made_admin_manages_tokens_at_her_next_request(client, people, at_now):
    membership = _carol_joins_acme(people)
    carol = signed_in(client, people["carol"])
    asked = {"action": "create", "name": "CI"}
    assert carol.post("/t/acme/tokens/", asked).status_code == 403

    membership_set_role(
        tailnet=people["acme"], membership=membership, role="admin", by=people["alice"]
    )

    assert carol.post("/t/acme/tokens/", asked).status_code == 201


def test_carol_added_to_acme_sees_it_at_her_next_request(client, people, at_now):
    carol = signed_in(client, people["carol"])
    assert carol.get("/t/acme/").status_code == 404

    _carol_joins_acme(people)

    assert carol.get("/t/acme/").status_code == 200


def test_a_renamed_tailnet_answers_only_at_its_new_address(client, people, at_now):
    alice = signed_in(client, people["alice"])
    assert alice.get("/t/acme/").status_code == 200

    acme = Tailnet.objects.get(slug="acme")
    acme.slug, acme.display_name = "acme-corp", "Acme Corporation"
    acme.save()

    assert alice.get("/t/acme/").status_code == 404
    renamed = alice.get("/t/acme-corp/")
    assert renamed.status_code == 200
    assert "Acme Corporation" in text_of(renamed)


def test_a_revoked_token_is_refused_at_its_next_call(people, at_now):
    token, secret = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert script.get("/api/v1/tailnets/acme/status").status_code == 200

    api_token_revoke(token=token)

    assert script.get("/api/v1/tailnets/acme/status").status_code == 401


def test_a_deleted_token_is_refused_at_its_next_call(people, at_now):
    token, secret = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert script.get("/api/v1/tailnets/acme/status").status_code == 200

    token.delete()

    assert script.get("/api/v1/tailnets/acme/status").status_code == 401


def test_a_tokens_use_is_recorded_once_a_minute(people, at_now, time_machine):
    token, secret = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    script.get("/api/v1/tailnets/acme/status")
    token.refresh_from_db()
    assert token.last_used_at == NOW

    time_machine.move_to(NOW + 2 * M, tick=False)
    script.get("/api/v1/tailnets/acme/status")

    token.refresh_from_db()
    assert token.last_used_at == NOW + 2 * M


def test_alices_other_sessions_end_when_she_changes_her_password(people, at_now):
    laptop, phone = Client(), Client()
    signed_in(laptop, people["alice"])
    signed_in(phone, people["alice"])
    assert phone.get("/t/acme/").status_code == 200

    response = laptop.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": NEW,
            "new_password2": NEW,
        },
    )
    assert response.status_code == 302

    assert laptop.get("/t/acme/").status_code == 200  # the session that changed it stays
    assert phone.get("/t/acme/").status_code == 302  # the other is signed out


def test_a_deactivated_person_is_signed_out_at_their_next_request(client, people, at_now):
    alice = signed_in(client, people["alice"])
    assert alice.get("/t/acme/").status_code == 200

    user = get_user_model().objects.get(username="alice")
    user.is_active = False
    user.save()

    assert alice.get("/t/acme/").status_code == 302


def test_signing_out_ends_the_session_for_good(people, at_now):
    alice = signed_in(Client(), people["alice"])
    assert alice.get("/t/acme/").status_code == 200
    cookie = alice.cookies["sessionid"].value

    alice.post("/accounts/logout/")

    replayed = Client()
    replayed.cookies["sessionid"] = cookie
    assert replayed.get("/t/acme/").status_code == 302


# --- No secret in the cache -----------------------------------------------------------------


@pytest.fixture(params=["file", "redis"])
def raw_cache(request, settings, tmp_path):
    """Every value in the cache, as the bytes the cache holds: on disk (a file cache)
    or in Redis (CI's second pass, the configured cache)."""
    if request.param == "file":
        folder = tmp_path / "cache"
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(folder),
            }
        }

        def values() -> bytes:
            found = []
            for path in folder.glob("*.djcache"):
                with open(path, "rb") as f:
                    pickle.load(f)  # noqa: S301 - the expiry this test's cache wrote
                    found.append(zlib.decompress(f.read()))
            return b"\n".join(found)

        return values
    if not settings.CACHES["default"]["BACKEND"].endswith("plumbing.cache.RedisCache"):
        pytest.skip("the cache is not Redis (REDIS_URL unset)")
    prefix = settings.CACHES["default"]["KEY_PREFIX"]

    def from_redis() -> bytes:
        from django.core.cache import caches

        client = redis_client(caches["default"])
        assert client is not None
        values = [client.get(key) for key in client.scan_iter(f"{prefix}:*")]
        return b"\n".join(value for value in values if isinstance(value, bytes))

    return from_redis


def _secrets_of(user) -> list[str]:
    """The shortest prefixes of the password hash that must never be cached: the hash
    (``algorithm$salt$digest``) from its algorithm and a few characters of its salt
    on, and its digest alone."""
    algorithm, *_, digest = user.password.split("$")
    return [user.password[: len(algorithm) + 5], digest[:8]]


def test_alices_password_hash_never_reaches_the_cache(people, raw_cache, time_machine):
    phone = signed_in(Client(), people["alice"])
    laptop = Client()
    laptop.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    _moments_later(time_machine)
    assert phone.get("/t/acme/").status_code == 200
    assert laptop.get("/t/acme/").status_code == 200
    before = get_user_model().objects.get(username="alice")

    laptop.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW},
    )
    time_machine.move_to(NOW + 2 * timedelta(seconds=FORGET_SECONDS + 1), tick=False)
    assert laptop.get("/t/acme/").status_code == 200
    assert phone.get("/t/acme/").status_code == 302
    after = get_user_model().objects.get(username="alice")

    stored = raw_cache()
    assert b"alice@acme.com" in stored  # her row is cached, without the hash
    for secret in _secrets_of(before) + _secrets_of(after):
        assert secret.encode() not in stored


# --- The page's own cache, per tailnet -----------------------------------------------------


def test_alices_report_is_on_acmes_page_at_the_next_request(client, people, at_now, committed):
    alice = signed_in(client, people["alice"])
    assert "No reports from your tailnet" in text_of(alice.get("/t/acme/"))

    with committed():
        report = report_submit(
            what="login", started_at=NOW - 5 * M, tailnet=people["acme"], reporter=people["alice"]
        )
    assert "No reports from your tailnet" not in text_of(alice.get("/t/acme/"))

    with committed():
        report_mark(report_ids=[report.pk], status=ReportStatus.RESOLVED)
    row = text_of(alice.get("/t/acme/")).split("Your reports")[1]
    assert "Resolved" in row


def test_another_tailnets_migration_leaves_acmes_page_in_the_cache(
    client, people, at_now, time_machine
):
    alice = signed_in(client, people["alice"])
    _moments_later(time_machine)
    alice.get("/t/acme/")

    tailnet_migrate(tailnet=people["globex"], to_shard=people["use2"], at=NOW - M)
    assert Placement.objects.filter(tailnet=people["globex"]).count() == 2

    _, read = _tables_read(alice, "/t/acme/")
    assert read == ""  # acme's page was not rendered again


def test_acmes_own_migration_is_on_its_page_at_the_next_request(client, people, at_now):
    alice = signed_in(client, people["alice"])
    assert "US East 1" in text_of(alice.get("/t/acme/"))

    tailnet_migrate(tailnet=people["acme"], to_shard=people["use2"], at=NOW - M)

    assert "US East 2" in text_of(alice.get("/t/acme/"))


# --- Without the cache ---------------------------------------------------------------------


def test_with_the_cache_down_alice_signs_in_reads_and_signs_out(people, at_now, settings):
    settings.CACHES = DOWN
    alice = Client()

    response = alice.post(
        "/accounts/login/",
        {"username": "alice", "password": "correct horse battery staple"},
    )
    assert response.status_code == 302
    assert alice.get("/t/acme/").status_code == 200
    assert alice.get("/t/globex/").status_code == 404

    cookie = alice.cookies["sessionid"].value
    assert alice.post("/accounts/logout/").status_code == 302
    replayed = Client()
    replayed.cookies["sessionid"] = cookie
    assert replayed.get("/t/acme/").status_code == 302


def test_with_the_cache_down_removal_and_revocation_still_hold(client, people, at_now, settings):
    settings.CACHES = DOWN
    membership = _carol_joins_acme(people)
    carol = signed_in(client, people["carol"])
    token, secret = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert carol.get("/t/acme/").status_code == 200
    assert script.get("/api/v1/tailnets/acme/status").status_code == 200

    membership_remove(tailnet=people["acme"], membership=membership, by=people["alice"])
    api_token_revoke(token=token)

    assert carol.get("/t/acme/").status_code == 404
    assert script.get("/api/v1/tailnets/acme/status").status_code == 401
