"""Every operation of both OpenAPI schemas, fuzzed by schemathesis: whatever is sent,
no answer is a server error and nothing is logged at ERROR.

The public schema (customer, webhooks and report APIs, Statuspage v2) is called with
acme's tailnet token; the staff schema with each API's own token (staff for the
operator API, probe for probe ingestion, fleet for the fleet feed). Path parameters
and the body fields that name things (tailnet, shard, region, component, a time)
are often steered to what exists, so the examples get past "not found".
"""

import json
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from customers.views import api_patterns
from statuspage.api_docs import staff_schema

from .conftest import FUZZ, Harness, World

PUBLIC = schemathesis.openapi.from_dict(
    SchemaGenerator(patterns=api_patterns()).get_schema(request=None, public=True)
)
STAFF = schemathesis.openapi.from_dict(staff_schema())

# What the hooks steer generated values to; filled from each test's world.
STEER: dict[str, list[Any]] = {}

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@pytest.fixture(autouse=True)
def _steer(world: World) -> None:
    now = timezone.now()
    STEER.clear()
    STEER.update(
        slug=["acme", "acme", "globex"],
        id=[world.webhook],
        incident_id=list(world.incidents.values()),
        impact_id=world.impacts,
        follow_up_id=world.follow_ups,
        tailnet=world.slugs["tailnet"],
        shard=world.slugs["shard"],
        region=world.slugs["region"],
        component=world.slugs["component"],
        time=[(now - timedelta(minutes=m)).isoformat() for m in (0, 1, 90)],
        done_on=[now.date().isoformat()],
    )


TIMES = ("at", "started_at", "starts_at", "ends_at", "detected_at", "scheduled_for")


@st.composite
def _steered(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with some of its named fields replaced by what exists."""
    if isinstance(value, list):
        return [draw(_steered(item)) for item in value]
    if not isinstance(value, dict):
        return value
    steered = {}
    for key, item in value.items():
        known = STEER.get("time" if key in TIMES else key)
        if key == "components" and isinstance(item, dict) and draw(st.booleans()):
            names = draw(st.lists(st.sampled_from(STEER["component"]), max_size=2, unique=True))
            steered[key] = dict(zip(names, item.values(), strict=False))
        elif known and isinstance(key, str) and draw(st.booleans()):
            steered[key] = draw(st.sampled_from(known))
        elif isinstance(item, int | float) and not isinstance(item, bool):
            # Valid JSON that no float or 64-bit column holds (NaN and Infinity, which
            # are not JSON, are test_any_body's).
            steered[key] = draw(st.sampled_from([item, item, -(2**63) - 1, 10**400]))
        else:
            steered[key] = draw(_steered(item))
    return steered


def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    if not path_parameters:
        return st.just(path_parameters)
    return st.fixed_dictionaries(
        {
            name: st.sampled_from([*STEER.get(name, []), value])
            for name, value in path_parameters.items()
        }
    )


def flatmap_body(context: Any, body: Any) -> Any:
    return _steered(body)


for schema in (PUBLIC, STAFF):
    schema.hook(flatmap_path_parameters)
    schema.hook(flatmap_body)


@st.composite
def _placement_maps(draw: st.DrawFn) -> bytes:
    """An NDJSON map: mostly well-formed lines naming what exists, some not."""
    line = st.one_of(
        st.fixed_dictionaries(
            {
                "tailnet": st.one_of(st.sampled_from(["acme", "globex", "initech"]), text),
                "shard": st.one_of(st.sampled_from(["use1", "use2", "euw1"]), text),
                "display_name": text,
            }
        ).map(json.dumps),
        text,
    )
    return "\n".join(draw(st.lists(line, max_size=5))).encode()


schemathesis.openapi.media_type("application/x-ndjson", _placement_maps())

TOKEN_FOR = {
    "/api/v1/incidents": "staff",
    "/api/v1/probes": "probe",
    "/api/v1/fleet": "fleet",
}


def _send(case: Any, harness: Harness, headers: dict[str, str]) -> None:
    with harness.request():
        response = case.call(app=harness.app, headers=headers)
    problem = harness.problem(response.status_code, case.operation.label)
    assert problem is None, f"{problem}\n\nReproduce: {case.as_curl_command(headers)}"
    case.validate_response(response, checks=[not_a_server_error], headers=headers)


@PUBLIC.parametrize()
@FUZZ
def test_public_apis(case, harness, world):
    _send(case, harness, world.bearer("tailnet"))


@STAFF.parametrize()
@FUZZ
def test_staff_apis(case, harness, world):
    scope = next(scope for prefix, scope in TOKEN_FOR.items() if case.path.startswith(prefix))
    _send(case, harness, world.bearer(scope))


# --- Any bytes, to every operation that reads a body ---------------------------------------
# Bodies no schema describes, for the parsers: deep nesting, NaN, 1e999, NUL, not UTF-8.

NASTY = [
    b"",
    b"null",
    b"[" * 5_000,
    b'{"a":' * 3_000,
    b"NaN",
    b'{"x": Infinity, "y": -Infinity}',
    b"1e999",
    b"9" * 5000,
    b'"\\u0000"',
    b'{"\\u0000": "\\ud800"}',
    b"\xff\xfe\x00",
    b'{"region": "ams", "samples": [{"shard": "use1", "latency_ms": 1e999, "ok": true}]}',
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=10,
)
bodies = st.one_of(
    st.sampled_from(NASTY),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=300),
)
CONTENT_TYPES = (
    "application/json",
    "application/json; charset=latin-1",
    "application/x-ndjson",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain",
)


def _writes(schema: Any) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if method in ("post", "put", "patch")
    ]


WRITES = [
    pytest.param(
        method,
        path,
        scope,
        id=f"{method} {path}",
    )
    for schema, default in ((PUBLIC, "tailnet"), (STAFF, None))
    for method, path in _writes(schema)
    for scope in [default or next(s for p, s in TOKEN_FOR.items() if path.startswith(p))]
]


@pytest.mark.parametrize(("method", "path", "scope"), WRITES)
@FUZZ
@given(body=bodies, content_type=st.sampled_from(CONTENT_TYPES))
def test_any_body(method, path, scope, body, content_type, harness, world):
    url = path.format(
        slug="acme",
        id=world.webhook,
        incident_id=world.incidents["open"],
        impact_id=world.impacts[0],
        follow_up_id=world.follow_ups[0],
    )
    client = Client(raise_request_exception=False)
    with harness.request():
        response = client.generic(method, url, body, content_type, headers=world.bearer(scope))
    problem = harness.problem(response.status_code, f"{method} {url} {body[:200]!r}")
    assert problem is None, problem


# --- The v2 shapes are described, never used to render: they must match the JSON --------

V2 = sorted(path for path in PUBLIC.raw_schema["paths"] if path.startswith("/api/v2/"))


@pytest.mark.parametrize("path", V2)
def test_the_v2_json_is_what_the_public_schema_says(path, harness, world):
    case = PUBLIC[path]["GET"].Case()
    with harness.request():
        response = case.call(app=harness.app)
    assert response.status_code == 200
    case.validate_response(response, checks=[response_schema_conformance])
