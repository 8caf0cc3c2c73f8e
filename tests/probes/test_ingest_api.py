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
    assert first.json() == {"received": 2, "refused_future": 0}
    assert again.status_code == 200
    assert ProbeSample.objects.count() == 2
    failed = ProbeSample.objects.get(ok=False)
    assert (failed.shard.slug, failed.error, failed.region) == ("use2", "timeout", ams)


def test_one_bad_item_refuses_the_whole_batch_with_per_item_errors(client, fleet, ams, probe_token):
    batch = {
        "region": "ams",
        "samples": [
            _sample(),
            _sample(shard="nope"),
            _sample(started_at="tomorrow"),
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
    assert "started_at" in errors[2]
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


def test_samples_from_the_future_are_refused_and_counted_and_the_rest_stored(
    client, fleet, ams, probe_token, settings
):
    settings.PROBE_MAX_CLOCK_SKEW_SECONDS = 60
    ahead = (timezone.now() + timedelta(seconds=90)).isoformat()
    batch = {"region": "ams", "samples": [_sample(), _sample(shard="use2", started_at=ahead)]}

    response = _post(client, batch, probe_token)

    assert response.status_code == 200
    assert response.json() == {"received": 1, "refused_future": 1}
    assert list(ProbeSample.objects.values_list("shard__slug", flat=True)) == ["use1"]
    ams.refresh_from_db()
    assert ams.future_refused_total == 1


def test_the_agent_tells_its_buffer_and_clock(client, fleet, ams, probe_token):
    sent_at = (timezone.now() + timedelta(seconds=3)).isoformat()
    agent = {"buffer_depth": 1200, "dropped_total": 7, "sent_at": sent_at}

    response = _post(client, {"region": "ams", "samples": [_sample()], "agent": agent}, probe_token)

    assert response.status_code == 200
    ams.refresh_from_db()
    assert ams.agent_buffer_depth == 1200
    assert ams.agent_dropped_total == 7
    assert 2 < ams.agent_clock_skew_seconds < 4
    assert ams.agent_last_batch_at is not None
    metrics = client.get("/metrics").content.decode()
    assert 'statuspage_probe_agent_buffer_depth{region="ams"} 1200.0' in metrics
    assert 'statuspage_probe_agent_dropped_samples_total{region="ams"} 7.0' in metrics
    assert 'statuspage_probe_future_samples_refused_total{region="ams"} 0.0' in metrics
    assert "statuspage_probe_agent_last_batch_age_seconds" in metrics


@pytest.mark.parametrize(
    "agent",
    [
        "healthy",
        {"buffer_depth": -1, "sent_at": "2026-01-01T00:00:00Z"},
        {"buffer_depth": True, "sent_at": "2026-01-01T00:00:00Z"},
        {"buffer_depth": 1},
        {"buffer_depth": 1, "sent_at": "yesterday"},
    ],
)
def test_a_garbled_agent_report_is_a_400_and_nothing_is_stored(
    client, fleet, ams, probe_token, agent
):
    response = _post(client, {"region": "ams", "samples": [_sample()], "agent": agent}, probe_token)

    assert response.status_code == 400
    assert "agent" in response.json()
    assert not ProbeSample.objects.exists()


# --- GET /api/v1/probes/shards ---------------------------------------------------------------


def _shards(client, secret, **headers):
    return client.get(
        "/api/v1/probes/shards", headers={"Authorization": f"Bearer {secret}", **headers}
    )


def test_the_agent_reads_its_shards_with_an_etag(client, fleet, ams, probe_token, settings):
    settings.PROBE_INTERVAL_SECONDS = 30
    fleet["use1"].probe_url = "http://127.0.0.1:8787/s/use1/key?v=88"
    fleet["use1"].save()

    first = _shards(client, probe_token)
    again = _shards(client, probe_token, **{"If-None-Match": first["ETag"]})

    assert first.status_code == 200
    body = first.json()
    assert body["region"] == "ams"
    assert body["shards"] == [
        {
            "slug": "use1",
            "probe_url": "http://127.0.0.1:8787/s/use1/key?v=88",
            "interval_seconds": 30,
            "timeout_seconds": settings.PROBE_TIMEOUT_SECONDS,
        }
    ]
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    fleet["use2"].probe_url = "http://127.0.0.1:8787/s/use2/key?v=88"
    fleet["use2"].save()
    changed = _shards(client, probe_token, **{"If-None-Match": first["ETag"]})
    assert changed.status_code == 200
    assert [s["slug"] for s in changed.json()["shards"]] == ["use1", "use2"]


def test_an_inactive_region_gets_no_shards(client, fleet, ams, probe_token):
    fleet["use1"].probe_url = "http://127.0.0.1:8787/s/use1/key?v=88"
    fleet["use1"].save()
    ams.active = False
    ams.save()

    body = _shards(client, probe_token).json()

    assert (body["active"], body["shards"]) == (False, [])


def test_the_shard_list_needs_a_probe_token_bound_to_a_region(client, fleet, ams):
    _, unbound = api_token_create(name="loose", scope="probe")
    _, staff = api_token_create(name="ops", scope="staff")

    assert _shards(client, unbound).status_code == 403
    assert _shards(client, staff).status_code == 403
    assert client.get("/api/v1/probes/shards").status_code == 401
