"""What the fuzzers found, kept as the exact requests: none is a server error.

Each case is one request (through the same harness as the fuzzers) that once
answered 500, or that stands for a kind of input known to: numbers JSON should not
carry, NUL characters, impossible times, deep nesting, digits that are not ASCII.
"""

import json
import math

import pytest
from django.test import Client
from django.utils import timezone

from .conftest import Harness, World

DEEP = "[" * 100_000


def _sample(**fields):
    sample = {"shard": "use1", "started_at": timezone.now().isoformat(), "ok": True}
    return json.dumps({"region": "ams", "samples": [{**sample, "latency_ms": 12.5, **fields}]})


def _event(**fields):
    event = {"id": "e1", "type": "tailnet.created", "at": "2026-01-05T10:00:00Z"}
    return json.dumps({"events": [{**event, "tailnet": "initech", "shard": "use1", **fields}]})


def _incident(**fields):
    return json.dumps({"title": "Sign-ins fail", "body": "Looking.", **fields})


# (what, token scope or person, method, url, body or form, content type)
CASES = [
    # The fleet feed: an event's type that is a JSON object (TypeError: unhashable).
    ("fleet-type-object", "fleet", "POST", "/api/v1/fleet/events", _event(type={}), "json"),
    ("fleet-type-list", "fleet", "POST", "/api/v1/fleet/events", _event(type=[]), "json"),
    # A tailnet's webhooks API: deep nesting (RecursionError in DRF's JSON parser).
    ("webhooks-deep", "tailnet", "POST", "/api/v1/tailnets/acme/webhooks", DEEP, "json"),
    # Probe ingestion: numbers that are not finite, NUL, impossible times, nesting.
    (
        "probe-1e999",
        "probe",
        "POST",
        "/api/v1/probes/samples",
        _sample().replace("12.5", "1e999"),
        "json",
    ),
    ("probe-nan", "probe", "POST", "/api/v1/probes/samples", _sample(connect_ms=math.nan), "json"),
    (
        "probe-infinity",
        "probe",
        "POST",
        "/api/v1/probes/samples",
        _sample(latency_ms=math.inf),
        "json",
    ),
    ("probe-nul", "probe", "POST", "/api/v1/probes/samples", _sample(detail="a\x00b"), "json"),
    (
        "probe-month-13",
        "probe",
        "POST",
        "/api/v1/probes/samples",
        _sample(started_at="2026-13-45T10:00:00Z"),
        "json",
    ),
    (
        "probe-offset-24h",
        "probe",
        "POST",
        "/api/v1/probes/samples",
        _sample(started_at="2026-01-05T10:00:00+24:00"),
        "json",
    ),
    ("probe-deep", "probe", "POST", "/api/v1/probes/samples", DEEP, "json"),
    ("operator-deep", "staff", "POST", "/api/v1/incidents/", DEEP, "json"),
    # The operator API's times.
    (
        "operator-month-13",
        "staff",
        "POST",
        "/api/v1/incidents/",
        _incident(started_at="2026-13-45T10:00:00Z"),
        "json",
    ),
    (
        "operator-year-9999",
        "staff",
        "POST",
        "/api/v1/incidents/",
        _incident(started_at="9999-12-31T23:59:59-23:59"),
        "json",
    ),
    (
        "operator-year-1",
        "staff",
        "POST",
        "/api/v1/incidents/",
        _incident(started_at="0001-01-01T00:00:00+23:59"),
        "json",
    ),
    # Pages: digits that are not ASCII, and the first day there is.
    ("history-superscript", None, "GET", "/history/?page=%C2%B2", None, None),
    ("uptime-year-1", "alice", "GET", "/t/acme/uptime.csv?to=0001-01-01", None, None),
    (
        "uptime-api-year-1",
        "tailnet",
        "GET",
        "/api/v1/tailnets/acme/uptime?from=0001-01-01&to=0001-01-01",
        None,
        None,
    ),
    ("tokens-superscript", "alice", "POST", "/t/acme/tokens/", {"action": "revoke", "token": "²"}),
]


def _ids(case):
    return case[0]


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_none_is_a_server_error(case, harness: Harness, world: World, people):
    _, who, method, url, body, *kind = case
    client = Client(raise_request_exception=False)
    headers = {}
    if who in people:
        client.force_login(people[who])
    elif who is not None:
        headers = world.bearer(who)
    with harness.request():
        if isinstance(body, str):
            response = client.generic(method, url, body, f"application/{kind[0]}", headers=headers)
        elif method == "POST":
            response = client.post(url, body, headers=headers)
        else:
            response = client.get(url, headers=headers)
    assert harness.problem(response.status_code, f"{method} {url}") is None
    assert response.status_code in (200, 400, 403, 404), response.content[:300]


def test_an_event_whose_type_is_an_object_is_refused_with_a_reason(harness, world):
    with harness.request():
        response = Client().post(
            "/api/v1/fleet/events",
            _event(type={"a": 1}),
            content_type="application/json",
            headers=world.bearer("fleet"),
        )
    assert response.status_code == 400
    assert "Unknown type" in response.json()["events"][0]["type"][0]


def test_a_deeply_nested_webhook_is_refused_with_a_reason(harness, world):
    with harness.request():
        response = Client().post(
            "/api/v1/tailnets/acme/webhooks",
            DEEP,
            content_type="application/json",
            headers=world.bearer("tailnet"),
        )
    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]
