"""The rate limiter counts per window, on whichever cache is configured, and lets
everyone through when the cache is down."""

import os
import uuid

import pytest

from plumbing import ratelimit

REDIS_URL = os.environ.get("REDIS_URL", "")
BACKENDS = ["locmem"] + (["redis"] if REDIS_URL else [])


@pytest.fixture(params=BACKENDS)
def cache_backend(request, settings):
    if request.param == "redis":
        config = {"BACKEND": "plumbing.cache.RedisCache", "LOCATION": REDIS_URL}
    else:
        config = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rl"}
    # A prefix of this test's own, so counters never meet another run's.
    settings.CACHES = {"default": {**config, "KEY_PREFIX": f"t-{uuid.uuid4().hex}"}}
    return request.param


def test_a_crowd_and_a_flood_are_counted_apart(cache_backend):
    allowed = [
        ratelimit.hit_many([("ip:mallory", 3, 600), ("tailnet:acme", 5, 600)]) for _ in range(6)
    ]

    assert [ip for ip, _ in allowed] == [True, True, True, False, False, False]
    assert [tailnet for _, tailnet in allowed] == [True] * 5 + [False]
    # What hit_many counted is what is_limited reads, and reset forgets it.
    assert ratelimit.is_limited("ip:mallory", 3, 600)
    ratelimit.reset("ip:mallory", 600)
    assert not ratelimit.is_limited("ip:mallory", 3, 600)
    assert ratelimit.hit("ip:mallory", 3, 600)


def test_when_the_cache_is_down_everyone_gets_through(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "plumbing.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens: refused
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    assert ratelimit.hit_many([("ip:alice", 1, 60), ("ip:alice", 1, 60)]) == [True, True]
    assert not ratelimit.is_limited("ip:alice", 1, 60)
