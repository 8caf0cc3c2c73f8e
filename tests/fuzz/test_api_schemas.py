"""The two OpenAPI schemas cover every JSON API, so that the fuzzers cover it too: the
public one (/api/schema/, /api/docs/) the customer, webhooks and report APIs and the
Statuspage-v2 JSON; the staff one (/api/staff/schema/, /api/staff/docs/), which only
staff may read, the operator API, probe ingestion and the fleet feed."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from rest_framework.views import APIView

from customers.views import api_patterns
from statuspage.api_docs import SETTINGS, staff_api_patterns

# The schemas and their pages are not APIs they describe.
DOCS = {"/api/schema/", "/api/docs/", "/api/staff/schema/", "/api/staff/docs/"}


def _routes(patterns, prefix=""):
    """(path, view) for every route: ``<slug:slug>`` and ``{slug}`` both read ``{}``."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield re.sub(r"<[^>]+>", "{}", "/" + route), pattern.callback


def _schema(patterns):
    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    assert not GENERATOR_STATS, f"schema warnings/errors: {GENERATOR_STATS}"
    return {re.sub(r"{[^}]+}", "{}", path) for path in schema["paths"]}


@pytest.fixture(scope="module")
def schemas():
    public = _schema(api_patterns())
    with patched_settings(SETTINGS):
        staff = _schema(staff_api_patterns())
    return public, staff


def test_every_api_route_is_in_exactly_one_schema(schemas):
    public, staff = schemas
    routes = {
        path
        for path, view in _routes(get_resolver().url_patterns)
        if path.startswith("/api/") and path not in DOCS
    }
    assert routes == public | staff
    assert public & staff == set()


def test_every_drf_view_is_an_api_route():
    """A DRF view outside /api/ would escape both schemas (and the fuzzers)."""
    outside = [
        path
        for path, view in _routes(get_resolver().url_patterns)
        if isinstance(getattr(view, "cls", None), type)
        and issubclass(view.cls, APIView)
        and not path.startswith("/api/")
    ]
    assert outside == []


def test_the_groups_are_where_they_belong(schemas):
    public, staff = schemas
    assert {"/api/v1/tailnets/{}/status", "/api/v1/tailnets/{}/webhooks/{}"} <= public
    assert {"/api/v1/reports", "/api/v2/summary.json", "/api/v2/incidents/unresolved.json"} <= (
        public
    )
    assert {"/api/v1/incidents/", "/api/v1/probes/samples", "/api/v1/fleet/placements"} <= staff


def test_anyone_reads_the_public_schema_and_docs(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v2/summary.json" in paths
    assert "/api/v1/tailnets/{slug}/webhooks" in paths
    assert not any(path.startswith(("/api/v1/incidents", "/api/v1/fleet")) for path in paths)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"GET /api/v2/summary.json" in docs.content
    assert b"POST /api/v1/fleet/events" not in docs.content


@pytest.mark.parametrize("url", ["/api/staff/schema/", "/api/staff/docs/"])
def test_only_staff_read_the_staff_schema_and_docs(client, people, url):
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"] == f"/admin/login/?next={url}"
    client.force_login(people["alice"])  # an owner of acme, not staff
    assert client.get(url)["Location"] == f"/admin/login/?next={url}"
    client.force_login(people["staff"])
    assert client.get(url).status_code == 200


def test_the_staff_schema_describes_the_operator_probe_and_fleet_apis(client, people):
    client.force_login(people["staff"])
    paths = client.get("/api/staff/schema/?format=json").json()["paths"]
    assert set(paths) >= {
        "/api/v1/incidents/",
        "/api/v1/incidents/{incident_id}/updates",
        "/api/v1/probes/samples",
        "/api/v1/fleet/events",
        "/api/v1/fleet/placements",
    }
    assert "/api/v1/reports" not in paths
    placements = paths["/api/v1/fleet/placements"]["put"]
    assert set(placements["requestBody"]["content"]) == {"application/x-ndjson"}
    events = paths["/api/v1/fleet/events"]["post"]["requestBody"]["content"]
    assert events["application/json"]["schema"] == {"$ref": "#/components/schemas/FleetEventsIn"}
    docs = client.get("/api/staff/docs/")
    assert b"POST /api/v1/probes/samples" in docs.content
    assert b"PUT /api/v1/fleet/placements" in docs.content
    assert b"GET /api/v2/summary.json" not in docs.content
