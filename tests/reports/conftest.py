from datetime import UTC, datetime

import pytest

from tests.conftest import real_broker

# A moment the named people's tailnets exist at (they were created 200 days before T0).
NOW = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
CLOSED_PORT = "127.0.0.1:9"  # nothing listens on discard: connections are refused


@pytest.fixture(autouse=True)
def _own_cache(settings, request):
    """Rate-limit counters of one test never leak into another (nor into var/)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"reports-{request.node.nodeid}",
        }
    }
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def cache_down(settings):
    """Django's cache is a Redis that refuses connections (a real closed port)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "plumbing.cache.RedisCache",
            "LOCATION": f"redis://{CLOSED_PORT}/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }


@pytest.fixture
def broker_down():
    """Celery publishes to a Redis broker that refuses connections, not eagerly."""
    with real_broker(f"redis://{CLOSED_PORT}/0", socket_connect_timeout=0.2, socket_timeout=0.2):
        yield


def report_data(**overrides):
    data = {
        "what": "login",
        "started_at": "2026-01-05T10:20",
        "tailnet": "",
        "email": "",
        "description": "",
        "website": "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture(autouse=True)
def _clock():
    """Every report test happens at NOW (the clock keeps ticking from there)."""
    import time_machine

    with time_machine.travel(NOW):
        yield
