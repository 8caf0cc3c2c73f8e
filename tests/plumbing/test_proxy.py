"""Behind a load balancer, each visitor keeps their own rate limit."""

import pytest
from rest_framework.test import APIClient

from plumbing.proxy import forwarded_client
from reports.models import Report

BODY = {"what": "login"}  # started just now


@pytest.mark.parametrize(
    ("remote", "header", "hops", "seen"),
    [
        ("10.0.0.2", "", 1, "10.0.0.2"),  # no header: the peer
        ("10.0.0.2", "203.0.113.7", 0, "10.0.0.2"),  # no proxy trusted: header ignored
        ("10.0.0.2", "203.0.113.7", 1, "203.0.113.7"),
        # A client forges the leftmost entry; only the proxy's own entry counts.
        ("10.0.0.2", "1.2.3.4, 203.0.113.7", 1, "203.0.113.7"),
        ("10.0.0.2", "203.0.113.7, 10.0.0.9", 2, "203.0.113.7"),
        ("10.0.0.2", "203.0.113.7", 2, "10.0.0.2"),  # fewer entries than proxies
        ("10.0.0.2", "not-an-address", 1, "10.0.0.2"),
        ("10.0.0.2", "2001:db8::1", 1, "2001:db8::1"),
    ],
)
def test_the_client_address_is_the_one_the_trusted_proxy_saw(remote, header, hops, seen):
    assert forwarded_client(remote, header, hops) == seen


@pytest.mark.django_db
def test_two_visitors_behind_one_proxy_do_not_share_a_rate_limit(people, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "proxy"}
    }
    settings.REPORT_RATE_PER_IP = "1/10min"
    proxy = APIClient(REMOTE_ADDR="10.0.0.2")

    def post(visitor: str) -> int:
        return proxy.post(
            "/api/v1/reports", BODY, format="json", HTTP_X_FORWARDED_FOR=visitor
        ).status_code

    assert [post("203.0.113.7"), post("198.51.100.4"), post("203.0.113.7")] == [201, 201, 429]
    assert Report.objects.count() == 2
