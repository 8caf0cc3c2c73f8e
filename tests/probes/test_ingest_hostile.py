"""Mallory holds the Amsterdam probe's token. Whatever she sends, she gets a 400 that
names what is wrong (never a 500), she posts for Amsterdam only, and nothing she
could store stops detection for the fleet."""

import json
import logging
import math
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Incident
from plumbing.models import ApiToken
from plumbing.tokens import api_token_create
from probes.models import ProbeRegion, ProbeSample, ShardState
from probes.services import detection_run
from tests.conftest import T0

URL = "/api/v1/probes/samples"
ROUND = timedelta(seconds=30)


@pytest.fixture
def regions(db):
    return {
        slug: ProbeRegion.objects.create(slug=slug, name=slug)
        for slug in ("ams", "nyc", "sfo", "sin")
    }


@pytest.fixture
def mallory(regions):
    """The secret of the Amsterdam probe's token, in Mallory's hands."""
    return api_token_create(name="ams probe", scope="probe", probe_region=regions["ams"])[1]


def post(client, body, secret):
    return client.post(
        URL, body, content_type="application/json", headers={"Authorization": f"Bearer {secret}"}
    )


def sample(**overrides):
    return {
        "shard": "use1",
        "started_at": (timezone.now() - ROUND).isoformat(),
        "ok": True,
        "latency_ms": 41.5,
        **overrides,
    }


def batch(*samples, region="ams"):
    return {"region": region, "samples": list(samples)}


# --- Numbers that are not numbers -------------------------------------------------------


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["latency_ms", "connect_ms"])
def test_a_number_that_is_not_finite_is_a_400_naming_its_field(
    client, fleet, mallory, field, number
):
    # Written as Python's json writes them, or as numbers too large for a float.
    body = json.dumps(batch(sample(**{"connect_ms": 3, field: "N"}))).replace('"N"', number)

    response = post(client, body, mallory)

    assert response.status_code == 400, response.content
    assert f"samples[0].{field}" in response.json()["detail"]
    assert not ProbeSample.objects.exists()


def test_an_integer_too_large_for_a_float_is_a_400_naming_its_field(client, fleet, mallory):
    response = post(client, batch(sample(latency_ms=10**400)), mallory)

    assert response.status_code == 400
    assert "latency_ms" in response.json()["samples"][0]
    assert not ProbeSample.objects.exists()


def test_a_body_nested_fifty_thousand_deep_is_a_400(client, fleet, mallory):
    response = post(client, "[" * 50_000, mallory)

    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


# --- Text and times PostgreSQL or Python would choke on ----------------------------------


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (sample(shard="use1\x00"), "shard"),
        (sample(ok=False, latency_ms=None, error="timeout", detail="refused\x00"), "detail"),
    ],
)
def test_a_nul_character_is_a_400_naming_its_field(client, fleet, mallory, item, field):
    response = post(client, batch(item), mallory)

    assert response.status_code == 400
    assert "NUL" in response.json()["samples"][0][field][0]
    assert not ProbeSample.objects.exists()


def test_a_nul_character_in_the_region_is_a_400(client, fleet, mallory):
    response = post(client, batch(sample(), region="ams\x00"), mallory)

    assert response.status_code == 400
    assert "region" in response.json()


@pytest.mark.parametrize(
    "started_at",
    [
        "2026-13-45T00:00:00Z",
        "2026-01-05T10:00:00+24:00",
        "2026-01-05T10:00:00-99:99",
        "2026-02-30T25:61:00Z",
    ],
)
def test_an_impossible_time_is_a_400_naming_started_at(client, fleet, mallory, started_at):
    response = post(client, batch(sample(started_at=started_at)), mallory)

    assert response.status_code == 400, response.content
    assert list(response.json()["samples"][0]) == ["started_at"]


def test_an_error_that_is_not_a_string_is_a_400(client, fleet, mallory):
    response = post(client, batch(sample(ok=False, latency_ms=None, error=["timeout"])), mallory)

    assert response.status_code == 400
    assert "error" in response.json()["samples"][0]


# --- One token, one region -----------------------------------------------------------------


def test_the_amsterdam_token_cannot_post_as_any_other_region(client, fleet, mallory):
    for region in ("nyc", "sfo", "sin"):
        response = post(client, batch(sample(), region=region), mallory)
        assert response.status_code == 403, region
        assert "own region" in response.json()["detail"]
    assert not ProbeSample.objects.exists()
    assert post(client, batch(sample()), mallory).status_code == 200


def test_one_token_posting_failures_as_every_region_opens_no_incident(client, fleet, mallory):
    """Four regions seeing use1 down would be a quorum; one token is one region."""
    start = timezone.now() - 10 * ROUND
    for n in range(4):
        failed = sample(
            started_at=(start + n * ROUND).isoformat(), ok=False, latency_ms=None, error="refused"
        )
        for region in ("ams", "nyc", "sfo", "sin"):
            post(client, batch(failed, region=region), mallory)
    detection_run()

    assert set(ProbeSample.objects.values_list("region__slug", flat=True)) == {"ams"}
    assert not Incident.objects.exists()


def test_a_probe_token_bound_to_no_region_is_refused_until_it_is_bound(client, fleet, regions):
    """Tokens made before probe tokens had a region post nothing until an operator
    binds them."""
    token, secret = api_token_create(name="old ams probe", scope="probe")

    refused = post(client, batch(sample()), secret)

    assert refused.status_code == 403
    assert "no region" in refused.json()["detail"]
    from plumbing.tokens import api_token_bind_region

    api_token_bind_region(token=ApiToken.objects.get(pk=token.pk), region=regions["ams"])
    assert post(client, batch(sample()), secret).status_code == 200
    assert post(client, batch(sample(), region="nyc"), secret).status_code == 403


# --- Bad data in the database stops detection for its shard only ---------------------------


def test_a_poisoned_sample_stops_detection_for_its_shard_only(fleet, regions, caplog):
    """A row no check let through (inserted here directly) must not roll back every
    other shard's detection, run after run."""
    ProbeSample.objects.create(
        shard=fleet["use1"], region=regions["ams"], started_at=T0, ok=True, latency_ms=math.inf
    )
    for n in range(1, 5):
        for region in ("ams", "nyc"):
            for shard in ("use1", "use2"):
                ProbeSample.objects.create(
                    shard=fleet[shard],
                    region=regions[region],
                    started_at=T0 + n * ROUND,
                    ok=False,
                    error="refused",
                )

    with caplog.at_level(logging.ERROR, logger="probes.services"):
        changes = detection_run(now=T0 + 5 * ROUND)

    incident = Incident.objects.get()
    assert list(incident.shard_impacts.values_list("shard__slug", flat=True)) == ["use2"]
    assert [change.level for change in changes] == ["outage"]
    assert ShardState.objects.get(shard=fleet["use2"]).state == "down"
    assert not ShardState.objects.filter(shard=fleet["use1"], state="down").exists()
    assert f"skipped shard {fleet['use1'].pk}" in caplog.text
