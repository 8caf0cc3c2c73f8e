"""During an incident every member of a tailnet reloads its page; the tailnet's part
of the page is rendered once per minute and per change, and never shows old news."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from .test_tailnet_page import NOW, M, outage, resolve, signed_in, text_of


@pytest.fixture
def at_now(time_machine):
    time_machine.move_to(NOW, tick=False)
    return NOW


@pytest.fixture(autouse=True)
def _own_cache(settings, request):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"pagecache-{request.node.nodeid}",
        }
    }


def _get(client, path):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return response, len(queries)


def test_a_second_member_within_the_minute_gets_the_page_without_its_reads(client, people, at_now):
    alice = signed_in(client, people["alice"])
    first, cold = _get(alice, "/t/acme/")
    again, warm = _get(alice, "/t/acme/")

    assert warm < cold
    assert text_of(again) == text_of(first)


def test_an_incident_is_on_the_page_at_the_next_request(client, people, at_now, committed):
    alice = signed_in(client, people["alice"])
    assert "Not right now" in text_of(alice.get("/t/acme/"))

    with committed():
        outage(["use1"], NOW - 10 * M, None, title="Logins failing in US East 1")

    words = text_of(alice.get("/t/acme/"))
    assert "Yes, right now" in words
    assert "Logins failing in US East 1" in words


def test_durations_move_on_with_the_clock(client, people, at_now, committed, time_machine):
    with committed():
        incident = outage(["use1"], NOW - 10 * M, None)
    alice = signed_in(client, people["alice"])
    assert "10 min so far" in text_of(alice.get("/t/acme/"))

    time_machine.move_to(NOW + 5 * M)
    assert "15 min so far" in text_of(alice.get("/t/acme/"))
    with committed():
        resolve(incident, NOW + 5 * M)
    assert "Not right now" in text_of(alice.get("/t/acme/"))


def test_another_tailnet_never_gets_acmes_page(client, people, at_now):
    signed_in(client, people["alice"]).get("/t/acme/")
    client.logout()
    words = text_of(signed_in(client, people["bob"]).get("/t/globex/"))

    assert "globex.com" in words
    assert "acme.com" not in words


def test_with_the_cache_down_the_page_is_still_there(client, people, at_now, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "plumbing.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens: refused
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    response = signed_in(client, people["alice"]).get("/t/acme/")

    assert response.status_code == 200
    assert "Were we affected?" in text_of(response)


def test_a_minute_later_it_is_rendered_again(client, people, at_now, time_machine):
    alice = signed_in(client, people["alice"])
    _, cold = _get(alice, "/t/acme/")
    time_machine.move_to(NOW + timedelta(minutes=1))
    _, next_minute = _get(alice, "/t/acme/")

    assert next_minute == cold


def test_a_broken_cache_is_left_alone_for_a_while(people, settings, caplog):
    from customers import pagecache

    settings.CACHES = {
        "default": {
            "BACKEND": "plumbing.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens: refused
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    for _ in range(5):
        pagecache.data_changed()
    assert pagecache.data_version() is None

    tried = [r for r in caplog.records if r.name == "customers.pagecache"]
    assert len(tried) == 1  # one attempt, then the cache is left alone
