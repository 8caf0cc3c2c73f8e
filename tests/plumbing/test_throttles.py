"""Every API throttle fails open: with Redis down, alerting tools, probe agents and
people reporting an outage still get through (the outage may be Redis itself)."""

from collections.abc import Iterator
from datetime import timedelta

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.throttling import SimpleRateThrottle

from plumbing.throttles import FailOpenScopedThrottle
from plumbing.tokens import api_token_create
from probes.models import ProbeRegion, ProbeSample
from tests.reports.conftest import cache_down  # noqa: F401 - a fixture


def _views(patterns: list, prefix: str = "") -> Iterator[tuple[str, type]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _views(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            view = getattr(entry.callback, "view_class", None) or getattr(
                entry.callback, "cls", None
            )
            if view is not None:
                yield prefix + str(entry.pattern), view


def test_every_throttle_of_every_api_view_fails_open():
    throttled = {
        route: throttle
        for route, view in _views(get_resolver().url_patterns)
        for throttle in getattr(view, "throttle_classes", [])
        if issubclass(throttle, SimpleRateThrottle)
    }
    assert "api/v1/probes/samples" in throttled  # the walk finds the APIs
    closed = {
        route: throttle.__name__
        for route, throttle in throttled.items()
        if not issubclass(throttle, FailOpenScopedThrottle)
    }
    assert closed == {}


def test_a_probe_agent_posts_its_samples_while_redis_is_down(client, fleet, cache_down):  # noqa: F811
    sin = ProbeRegion.objects.create(slug="sin", name="Singapore")
    _, secret = api_token_create(name="sin agent", scope="probe", probe_region=sin)
    at = timezone.now() - timedelta(seconds=20)
    answer = client.post(
        "/api/v1/probes/samples",
        {
            "region": "sin",
            "samples": [
                {
                    "shard": "use1",
                    "started_at": at.isoformat(),
                    "ok": False,
                    "latency_ms": None,
                    "error": "timeout",
                }
            ],
        },
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 200, answer.content
    assert ProbeSample.objects.filter(region=sin, ok=False).count() == 1
    shards = client.get("/api/v1/probes/shards", headers={"Authorization": f"Bearer {secret}"})
    assert shards.status_code == 200
