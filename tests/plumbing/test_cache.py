"""plumbing/cache.py: Django's Redis cache with a breaker, and the
rows cached for a short while and forgotten when they change."""

import pytest
import redis
from django.core.cache import cache, caches

from plumbing import cache as cache_helpers
from plumbing.cache import CacheSkipped, Columns, Forgotten, cached, forget

REFUSED = {
    "BACKEND": "plumbing.cache.RedisCache",
    "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens: refused
    "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
}


@pytest.fixture
def locmem(settings, request):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": request.node.nodeid,
        }
    }


def test_one_redis_client_serves_every_call(settings):
    settings.CACHES = {"default": REFUSED}
    factory = caches["default"]._cache  # type: ignore[attr-defined]

    assert factory.get_client("a") is factory.get_client("b", write=True)


def test_after_a_refusal_redis_is_left_alone_for_a_while(settings, monkeypatch):
    settings.CACHES = {"default": REFUSED}
    clock = [1000.0]
    monkeypatch.setattr(cache_helpers.time, "monotonic", lambda: clock[0])

    with pytest.raises(redis.ConnectionError) as first:
        cache.get("status")
    assert not isinstance(first.value, CacheSkipped)  # it really tried
    with pytest.raises(CacheSkipped):
        cache.set("status", "ok")  # and now does not, for any command

    clock[0] += cache_helpers.BREAKER_SECONDS + 1
    with pytest.raises(redis.ConnectionError) as later:
        cache.get("status")
    assert not isinstance(later.value, CacheSkipped)  # half a minute on, it tries again


def test_a_cached_row_is_read_once(locmem):
    loads = []

    def load():
        loads.append(1)
        return ("alice", True)

    assert cached("user:1", load, timeout=60) == ("alice", True)
    assert cached("user:1", load, timeout=60) == ("alice", True)
    assert len(loads) == 1


def test_nothing_is_kept_for_a_row_that_is_not_there(locmem):
    loads = []

    def load():
        loads.append(1)

    assert cached("user:404", load, timeout=60) is None
    assert cached("user:404", load, timeout=60) is None
    assert len(loads) == 2


def test_a_read_racing_a_change_cannot_put_the_old_row_back(locmem, db):
    def load_while_the_change_commits():
        forget(["token:1"])  # the revocation commits while this request reads
        return ("token", "not revoked")

    assert cached("token:1", load_while_the_change_commits, timeout=60) == ("token", "not revoked")

    assert isinstance(cache.get("token:1"), Forgotten)
    assert cached("token:1", lambda: ("token", "revoked"), timeout=60) == ("token", "revoked")


def test_a_forgotten_row_is_kept_again_moments_later(locmem, db, time_machine):
    time_machine.move_to("2026-01-05 10:00:00+00:00", tick=False)
    forget(["user:1"])
    loads = []

    def load():
        loads.append(1)
        return ("alice", True)

    cached("user:1", load, timeout=60)
    cached("user:1", load, timeout=60)
    assert len(loads) == 2  # not kept while just forgotten

    time_machine.shift(cache_helpers.FORGET_SECONDS + 1)
    cached("user:1", load, timeout=60)
    cached("user:1", load, timeout=60)
    assert len(loads) == 3


def test_with_the_cache_down_every_read_loads(settings, db):
    settings.CACHES = {"default": REFUSED}
    loads = []

    def load():
        loads.append(1)
        return ("alice", True)

    for _ in range(3):
        assert cached("user:1", load, timeout=60) == ("alice", True)
    forget(["user:1"])  # best effort, no error
    assert len(loads) == 3


def test_an_excluded_column_is_never_kept_and_read_only_when_used(people):
    from django.contrib.auth import get_user_model

    users = get_user_model()
    columns = Columns(users, exclude=("password",))
    alice = users.objects.get(username="alice")

    row = columns.row(alice)
    assert alice.password not in row
    assert "password" not in columns.names
    assert columns.tag != Columns(users).tag  # never read as a whole row kept before

    rebuilt = columns.instance(row)
    assert (rebuilt.pk, rebuilt.email) == (alice.pk, "alice@acme.com")
    assert rebuilt.get_deferred_fields() == {"password"}
    assert rebuilt.password == alice.password  # from the database, when asked


class _SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers: a
    Redis that hangs. Counts the connections it was asked for."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_a_hanging_redis_is_waited_for_once_not_on_every_page(settings, client, people):
    from django.contrib.sessions.models import Session

    hanging = _SilentServer()
    try:
        settings.CACHES = {
            "default": {
                "BACKEND": "plumbing.cache.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{hanging.port}/0",
                "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
            }
        }
        client.force_login(people["alice"])
        statuses = [client.get("/t/acme/").status_code for _ in range(5)]
        tried = len(hanging.accepted)
    finally:
        hanging.close()

    assert statuses == [200] * 5
    assert Session.objects.count() == 1  # signed in through the database
    # Each page makes four or more cache calls; without the breaker every one of them
    # would connect and wait. With it, the first timeout (and redis-py's own retries
    # of that one command) is all.
    assert 1 <= tried <= 4
