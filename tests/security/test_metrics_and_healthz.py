"""``/metrics`` without a token answers only the networks the operator lists
(``METRICS_ALLOWED_NETWORKS``), judged by the visitor's own address: never a proxy's,
which every visitor behind it would share. ``/healthz`` tells a load balancer the
database is unavailable, not where it is.

Prometheus scrapes from this host; mallory is anywhere on the internet.
"""

import pytest
from django.core import checks
from django.db import OperationalError
from django.test import Client

from plumbing.proxy import own_address
from plumbing.tokens import api_token_create

LOOPBACK = "127.0.0.1"
MALLORY = "203.0.113.9"


def scrape(*, peer=LOOPBACK, **headers):
    return Client(REMOTE_ADDR=peer).get("/metrics", headers=headers)


@pytest.fixture
def hops(settings):
    def set_hops(value: int) -> None:
        settings.TRUSTED_PROXY_HOPS = value

    return set_hops


def test_prometheus_on_this_host_scrapes_without_a_token(db):
    assert scrape().status_code == 200


def test_mallory_on_the_internet_is_not_found(db):
    assert scrape(peer=MALLORY).status_code == 404


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": MALLORY},
        {"X-Real-IP": MALLORY},
        {"Forwarded": f"for={MALLORY}"},
        {"X-Forwarded-Proto": "https"},
    ],
)
def test_through_an_undeclared_proxy_on_this_host_mallory_is_not_let_in(db, header):
    # TRUSTED_PROXY_HOPS is 0, yet a proxy connected from 127.0.0.1 on mallory's behalf.
    assert scrape(**header).status_code == 404


def test_behind_a_trusted_proxy_the_forwarded_address_is_judged(db, hops):
    hops(1)
    assert scrape(**{"X-Forwarded-For": MALLORY}).status_code == 404
    # Prometheus scraping through the proxy from this host.
    assert scrape(**{"X-Forwarded-For": LOOPBACK}).status_code == 200


def test_behind_trusted_proxies_that_name_no_visitor_nobody_is_let_in(db, hops):
    hops(2)
    # One entry where two proxies would have written two: the outer one was bypassed.
    assert scrape(**{"X-Forwarded-For": LOOPBACK}).status_code == 404
    assert scrape().status_code == 404  # no header at all
    assert scrape(**{"X-Forwarded-For": f"{LOOPBACK}, 10.0.0.2"}).status_code == 200


def test_an_empty_allow_list_means_a_token_or_nothing(db, settings):
    settings.METRICS_ALLOWED_NETWORKS = []
    assert scrape().status_code == 404
    _, secret = api_token_create(name="prometheus", scope="metrics")
    assert scrape(peer=MALLORY, Authorization=f"Bearer {secret}").status_code == 200


def test_own_address_needs_the_middleware_to_have_named_the_visitor(rf, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    assert own_address(rf.get("/", REMOTE_ADDR=LOOPBACK, HTTP_X_FORWARDED_FOR=MALLORY)) is None


class DownDatabase:
    def cursor(self):
        raise OperationalError(
            'connection to server at "db.internal.example" (10.1.2.3), port 5432 failed: '
            "Connection refused"
        )


def test_healthz_says_the_database_is_unavailable_and_not_where_it_is(client, monkeypatch, db):
    monkeypatch.setattr("public.views.connection", DownDatabase())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unavailable"}
    body = response.content.decode()
    assert "10.1.2.3" not in body
    assert "5432" not in body
    assert "db.internal" not in body


def test_healthz_is_ok_with_the_database_up(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_an_allow_list_entry_that_is_no_network_is_refused_at_start_and_never_a_500(db, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/8", "10.0.0.0/33", "intranet"]
    errors = [e for e in checks.run_checks() if e.id == "probes.E001"]
    assert len(errors) == 1
    assert "'10.0.0.0/33', 'intranet'" in errors[0].msg
    assert scrape().status_code == 200  # 127.0.0.1/8 still reads as 127.0.0.0/8
    assert scrape(peer=MALLORY).status_code == 404
