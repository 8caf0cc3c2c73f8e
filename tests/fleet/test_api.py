"""POST /api/v1/fleet/events: the control plane's door, with a fleet-scoped token.
bob's staff token and the probes' token do not open it."""

import json
from datetime import timedelta

import pytest

from fleet.api import MAX_BYTES
from fleet.models import FleetEvent
from incidents.models import Placement
from plumbing.tokens import api_token_create
from tests.conftest import T0

from .conftest import created, migrated

URL = "/api/v1/fleet/events"
M = timedelta(minutes=1)
pytestmark = pytest.mark.usefixtures("frozen")


def post(client, body, secret=None, **extra):
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(URL, data, content_type="application/json", headers=headers, **extra)


def test_a_batch_is_accepted_once_and_then_counted_as_duplicates(client, fleet, control_plane):
    batch = {
        "events": [
            created("acme-1", T0, "acme", "use1"),
            migrated("acme-2", T0 + M, "acme", "use2"),
        ]
    }
    first = post(client, batch, control_plane)
    again = post(client, batch, control_plane)

    assert (first.status_code, first.json()) == (200, {"accepted": 2, "duplicates": 0})
    assert (again.status_code, again.json()) == (200, {"accepted": 0, "duplicates": 2})
    assert Placement.objects.count() == 2
    assert set(FleetEvent.objects.values_list("source", flat=True)) == {"api"}


def test_a_bad_batch_answers_per_event_and_writes_nothing(client, fleet, control_plane):
    batch = {
        "events": [
            created("acme-1", T0, "acme", "use1"),
            migrated("globex-2", T0, "globex", "x"),
            {"id": "y", "type": "tailnet.deleted", "at": "2026-01-05T10:00:00"},
        ]
    }
    response = post(client, batch, control_plane)

    assert response.status_code == 400
    assert response.json() == {
        "events": [
            {},
            {"shard": ["Unknown shard 'x'."]},
            {
                "at": [
                    "An RFC 3339 date-time with a time zone is required "
                    "(e.g. 2026-01-05T10:00:00Z)."
                ],
                "tailnet": ["This field is required."],
            },
        ]
    }
    assert not FleetEvent.objects.exists()


def test_a_stored_id_with_other_content_is_a_409(client, fleet, control_plane):
    post(client, {"events": [created("acme-1", T0, "acme", "use1")]}, control_plane)
    response = post(
        client,
        {"events": [created("acme-1", T0, "acme", "use2"), created("b-1", T0, "b", "use1")]},
        control_plane,
    )
    assert (response.status_code, response.json()) == (409, {"conflicts": ["acme-1"]})
    assert FleetEvent.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        '{"events": [{"id": "a", "type": "tailnet.deleted", "at": NaN, "tailnet": "acme"}]}',
        '{"events": [{"id": Infinity}]}',
        "{not json",
    ],
)
def test_json_that_is_not_json_is_a_400(client, fleet, control_plane, body):
    response = post(client, body, control_plane)
    assert response.status_code == 400
    assert not FleetEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [({"events": "many"}, "events"), ([1], "events"), ({"events": [], "shards": []}, "shards")],
)
def test_a_body_without_a_list_of_events_is_a_400(client, fleet, control_plane, body, field):
    response = post(client, body, control_plane)
    assert response.status_code == 400
    assert field in response.json()


def test_an_empty_batch_is_nothing_to_do(client, fleet, control_plane):
    response = post(client, {"events": []}, control_plane)
    assert (response.status_code, response.json()) == (200, {"accepted": 0, "duplicates": 0})


def test_only_a_fleet_token_may_send_events(client, fleet, control_plane):
    batch = {"events": [created("acme-1", T0, "acme", "use1")]}
    assert post(client, batch).status_code == 401
    assert post(client, batch, "sp_not-a-real-token").status_code == 401
    for scope in ("staff", "probe", "metrics"):
        secret = api_token_create(name=f"bob's {scope}", scope=scope)[1]
        response = post(client, batch, secret)
        assert response.status_code == 403, scope
        assert "'fleet' scope" in response.json()["detail"]
    assert not FleetEvent.objects.exists()


def test_more_than_ten_thousand_events_is_a_413(client, fleet, control_plane):
    events = [migrated(f"m{n}", T0, "acme", "use1") for n in range(10_001)]
    response = post(client, {"events": events}, control_plane)
    assert response.status_code == 413
    assert response.json() == {"detail": "At most 10,000 events per request."}
    assert not FleetEvent.objects.exists()


def test_more_than_ten_megabytes_is_a_413_before_the_body_is_read(client, fleet, control_plane):
    body = json.dumps({"events": [created("acme-1", T0, "acme", "use1", "x" * MAX_BYTES)]})
    response = post(client, body, control_plane)
    assert response.status_code == 413
    assert response.json() == {"detail": "At most 10 MB per request."}


def test_a_body_above_djangos_upload_limit_but_within_ten_megabytes_is_read(
    client, fleet, control_plane, settings
):
    """Django refuses request bodies above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) when
    read whole; this API reads the stream, so its own limit is the one that counts."""
    events = [created(f"t{n}", T0, f"t{n}", "use1", display_name="x" * 200) for n in range(10_000)]
    body = json.dumps({"events": events})
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE < len(body) < MAX_BYTES
    response = post(client, body, control_plane)
    assert (response.status_code, response.json()) == (200, {"accepted": 10_000, "duplicates": 0})


def test_the_fleet_api_is_throttled_by_its_own_rate(client, fleet, control_plane, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"fleet_api": "2/min"},
    }
    assert post(client, {"events": []}, control_plane).status_code == 200
    assert post(client, {"events": []}, control_plane).status_code == 200
    assert post(client, {"events": []}, control_plane).status_code == 429


def test_only_json_is_read(client, fleet, control_plane):
    response = client.post(
        URL, {"events": "[]"}, headers={"Authorization": f"Bearer {control_plane}"}
    )
    assert response.status_code == 415
