"""Remote probes push batches: validated whole, stored once, or refused with reasons."""

from datetime import timedelta

import pytest
from django.utils import timezone

from plumbing.tokens import api_token_create
from probes.models import ProbeRegion, ProbeSample

URL = "/api/v1/probes/samples"


@pytest.fixture
def ams(db):
    return ProbeRegion.objects.create(slug="ams", name="Amsterdam")


@pytest.fixture
def probe_token(ams):
    _, secret = api_token_create(name="ams probe", scope="probe", probe_region=ams)
    return secret


def _post(client, body, secret):
    return client.post(
        URL, body, content_type="application/json", headers={"Authorization": f"Bearer {secret}"}
    )


def _sample(**overrides):
    sample = {
        "shard": "use1",
        "started_at": (timezone.now() - timedelta(seconds=30)).isoformat(),
        "ok": True,
        "latency_ms": 41.5,
        "connect_ms": 3.2,
    }
    return {**sample, **overrides}


def test_a_batch_is_stored_once_however_often_it_is_sent(client, fleet, ams, probe_token):
    batch = {
        "region": "ams",
        "samples": [_sample(), _sample(shard="use2", ok=False, latency_ms=None, error="timeout")],
    }
    first = _post(client, batch, probe_token)
    again = _post(client, batch, probe_token)

    assert first.status_code == 200, first.content
    assert first.json() == {"received": 2}
    assert again.status_code == 200
    assert ProbeSample.objects.count() == 2
    failed = ProbeSample.objects.get(ok=False)
    assert (failed.shard.slug, failed.error, failed.region) == ("use2", "timeout", ams)


def test_one_bad_item_refuses_the_whole_batch_with_per_item_errors(client, fleet, ams, probe_token):
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    batch = {
        "region": "ams",
        "samples": [
            _sample(),
            _sample(shard="nope"),
            _sample(started_at=future),
            _sample(ok="yes", latency_ms="fast"),
            _sample(ok=False, latency_ms=None),
            "not an object",
            _sample(started_at="2026-01-05T10:00:00"),
        ],
    }
    response = _post(client, batch, probe_token)

    assert response.status_code == 400
    errors = response.json()["samples"]
    assert errors[0] == {}
    assert errors[1] == {"shard": ["Unknown shard 'nope'."]}
    assert "future" in errors[2]["started_at"][0]
    assert set(errors[3]) == {"ok", "latency_ms"}
    assert "error" in errors[4]
    assert "non_field_errors" in errors[5]
    assert "time zone" in errors[6]["started_at"][0]
    assert not ProbeSample.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"region": "mars", "samples": [{}]}, "region"),
        ({"region": "ams", "samples": []}, "samples"),
        ({"region": "ams", "samples": "many"}, "samples"),
        ([1, 2, 3], "non_field_errors"),
    ],
)
def test_a_malformed_batch_says_what_is_wrong(client, fleet, ams, probe_token, body, field):
    response = _post(client, body, probe_token)
    assert response.status_code == 400
    assert field in response.json()


def test_broken_json_is_a_400(client, fleet, ams, probe_token):
    response = client.post(
        URL,
        "{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {probe_token}"},
    )
    assert response.status_code == 400


def test_without_a_probe_token_nothing_is_stored(client, fleet, ams):
    batch = {"region": "ams", "samples": [_sample()]}
    assert client.post(URL, batch, content_type="application/json").status_code == 401
    assert _post(client, batch, "sp_not-a-real-token").status_code == 401
    _, staff_secret = api_token_create(name="ops", scope="staff")
    assert _post(client, batch, staff_secret).status_code == 403
    assert not ProbeSample.objects.exists()


def test_a_revoked_token_is_refused(client, fleet, ams):
    from plumbing.tokens import api_token_revoke

    token, secret = api_token_create(name="old probe", scope="probe", probe_region=ams)
    api_token_revoke(token=token)
    assert _post(client, {"region": "ams", "samples": [_sample()]}, secret).status_code == 401


def test_tokens_are_stored_hashed_and_record_their_last_use(client, fleet, ams):
    token, secret = api_token_create(name="ams probe", scope="probe", probe_region=ams)
    assert secret not in token.digest
    assert token.prefix == secret[:9]
    _post(client, {"region": "ams", "samples": [_sample()]}, secret)
    token.refresh_from_db()
    assert token.last_used_at is not None
