"""A change made while the cache is down wins once it is back (plumbing/cache.py,
"Forgets lost while the cache was down"): signing out, a deactivated person, a removed
membership, a revoked token. The outage is the default cache's Redis refusing every
connection (a closed port); what the cache held before the outage (in Redis, or in
memory on the SQLite pass) is there again when it is back."""

import contextlib
from collections import Counter
from datetime import timedelta

import pytest
import redis
from django.contrib.auth import get_user_model
from django.core.cache import cache, caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from customers.models import Membership
from customers.services import membership_remove
from plumbing import cache as cache_helpers
from plumbing.cache import (
    FORGET_SECONDS,
    Forgotten,
    RedisCache,
    longest_kept,
    redis_client,
    replay_lost_forgets,
)
from plumbing.models import LostForget
from plumbing.sessions import SessionStore
from plumbing.tasks import replay_lost_forgets as replay_task
from plumbing.tokens import api_token_create, api_token_revoke
from tests.customers.test_tailnet_page import NOW, signed_in

LATER = NOW + timedelta(seconds=FORGET_SECONDS + 1)


@pytest.fixture(autouse=True)
def at_now(time_machine):
    time_machine.move_to(NOW, tick=False)


def _moments_later(time_machine):
    """Setting the people up changed them, and a change keeps anyone from caching them
    for a moment (FORGET_SECONDS): past it, their pages are cached."""
    time_machine.move_to(LATER, tick=False)


@contextlib.contextmanager
def redis_down():
    """Inside the block the default cache is a Redis at a closed port (refused, its
    breaker tripped), as a web process sees its Redis while Redis is down."""
    kept = caches["default"]
    caches["default"] = RedisCache(
        "redis://127.0.0.1:9/0",  # nothing listens: refused
        {"OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}},
    )
    try:
        yield
    finally:
        caches["default"] = kept


def _with_cookie(cookie):
    replayed = Client()
    replayed.cookies["sessionid"] = cookie
    return replayed


def _a_process_that_did_not_see_the_outage(monkeypatch):
    monkeypatch.setattr(cache_helpers, "_failures", Counter())
    monkeypatch.setattr(cache_helpers, "_replayed", {})


# --- What people see once Redis is back -------------------------------------------------


def test_alice_signed_out_while_redis_was_down_stays_signed_out(people, time_machine):
    alice = signed_in(Client(), people["alice"])
    _moments_later(time_machine)
    assert alice.get("/t/acme/").status_code == 200  # her session, row, memberships cached
    cookie = alice.cookies["sessionid"].value

    with redis_down():
        assert alice.post("/accounts/logout/").status_code == 302
        assert _with_cookie(cookie).get("/t/acme/").status_code == 302

    assert _with_cookie(cookie).get("/t/acme/").status_code == 302
    assert not LostForget.objects.exists()  # replayed


def test_alice_deactivated_while_redis_was_down_stays_out(people, time_machine):
    alice = signed_in(Client(), people["alice"])
    _moments_later(time_machine)
    assert alice.get("/t/acme/").status_code == 200

    with redis_down():
        user = get_user_model().objects.get(username="alice")
        user.is_active = False
        user.save()

    assert alice.get("/t/acme/").status_code == 302


def test_carol_removed_from_acme_while_redis_was_down_stays_out(people, time_machine):
    membership = Membership.objects.create(
        user=people["carol"], tailnet=people["acme"], role="member"
    )
    carol = signed_in(Client(), people["carol"])
    _moments_later(time_machine)
    assert carol.get("/t/acme/").status_code == 200

    with redis_down():
        membership_remove(tailnet=people["acme"], membership=membership, by=people["alice"])

    assert carol.get("/t/acme/").status_code == 404
    assert carol.get("/api/v1/tailnets/acme/status").status_code == 404


def test_a_token_revoked_while_redis_was_down_stays_refused(people, time_machine):
    token, secret = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    grafana = APIClient()
    grafana.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    _moments_later(time_machine)
    assert grafana.get("/api/v1/tailnets/acme/status").status_code == 200

    with redis_down():
        api_token_revoke(token=token)

    assert grafana.get("/api/v1/tailnets/acme/status").status_code == 401


def test_a_change_to_alices_session_saved_while_redis_was_down_is_what_is_read(people):
    session = SessionStore()
    session["theme"] = "light"
    session.create()  # cached as it is saved

    with redis_down():
        changed = SessionStore(session.session_key)
        changed["theme"] = "dark"
        changed.save()

    assert SessionStore(session.session_key).load()["theme"] == "dark"


def test_a_web_process_that_did_not_see_the_outage_is_told_by_the_minutely_task(
    people, time_machine, monkeypatch
):
    alice = signed_in(Client(), people["alice"])
    _moments_later(time_machine)
    assert alice.get("/t/acme/").status_code == 200
    cookie = alice.cookies["sessionid"].value
    with redis_down():
        alice.post("/accounts/logout/")

    _a_process_that_did_not_see_the_outage(monkeypatch)
    assert replay_task.delay().get() >= 1  # beat's task, in any worker

    assert _with_cookie(cookie).get("/t/acme/").status_code == 302


# --- What it costs ---------------------------------------------------------------------------


def test_bob_pays_one_small_query_once_after_the_outage_and_nothing_after(people, time_machine):
    bob = signed_in(Client(), people["bob"])
    alice = signed_in(Client(), people["alice"])
    _moments_later(time_machine)
    assert bob.get("/t/globex/").status_code == 200
    with redis_down():
        assert bob.get("/t/globex/").status_code == 200  # from the database
        alice.post("/accounts/logout/")

    with CaptureQueriesContext(connection) as first:
        assert bob.get("/t/globex/").status_code == 200
    time_machine.move_to(LATER + timedelta(seconds=FORGET_SECONDS + 1), tick=False)
    with CaptureQueriesContext(connection) as then:
        assert bob.get("/t/globex/").status_code == 200

    tables = [query["sql"] for query in first]
    assert len(tables) == 2  # the lost forgets read, then deleted: nothing else
    assert all('"plumbing_lostforget"' in sql for sql in tables)
    assert [query["sql"] for query in then] == []


def test_while_redis_is_still_down_the_task_keeps_what_it_could_not_replay(people):
    token, _ = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    with redis_down():
        api_token_revoke(token=token)
        assert LostForget.objects.count() == 1

        assert replay_task.delay().get() == 0

    assert LostForget.objects.count() == 1
    assert replay_task.delay().get() == 1
    assert not LostForget.objects.exists()


def test_a_forget_lost_longer_ago_than_any_copy_lives_is_dropped(db):
    cache.set("auth:user:1", ("alice",), timeout=600)  # kept by someone, by hand
    LostForget.objects.create(
        key="auth:user:1", cache_alias="default", lost_at=NOW - longest_kept() - timedelta(1)
    )

    assert replay_lost_forgets() == 0

    assert cache.get("auth:user:1") == ("alice",)
    assert not LostForget.objects.exists()


# --- The same Redis, its breaker closing again ------------------------------------------------


def test_the_same_redis_back_after_its_breaker_forgets_alices_session(
    people, time_machine, monkeypatch, settings
):
    if not settings.CACHES["default"]["BACKEND"].endswith("plumbing.cache.RedisCache"):
        pytest.skip("the cache is not Redis (REDIS_URL unset)")
    alice = signed_in(Client(), people["alice"])
    _moments_later(time_machine)
    assert alice.get("/t/acme/").status_code == 200
    cookie = alice.cookies["sessionid"].value

    def refused(*args, **kwargs):
        raise redis.ConnectionError("Connection refused")

    with monkeypatch.context() as outage:
        outage.setattr(redis.ConnectionPool, "get_connection", refused)
        assert alice.post("/accounts/logout/").status_code == 302
    client = redis_client(caches["default"])
    assert client is not None
    assert client.down_until > 0  # the breaker is open
    client.down_until = 0.0  # BREAKER_SECONDS later: it lets commands through again

    assert _with_cookie(cookie).get("/t/acme/").status_code == 302
    assert not LostForget.objects.exists()


def test_a_replayed_forget_is_the_marker_forget_leaves(people):
    token, _ = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    with redis_down():
        token.delete()
    key = LostForget.objects.get().key

    assert replay_lost_forgets() == 1

    assert isinstance(cache.get(key), Forgotten)
