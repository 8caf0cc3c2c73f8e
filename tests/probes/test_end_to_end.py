"""Probe rounds against the fleet simulator: a fault becomes an incident on the
right shard, touching the right tailnets; clearing it resolves the incident."""

from datetime import datetime, timedelta

import pytest

from fleet.services import tailnet_create
from incidents.models import Incident, Shard, ShardImpact, TailnetImpact
from probes.models import ProbeRegion, ProbeSample
from probes.services import region_round

REGIONS = ("ams", "nyc", "sfo")


@pytest.fixture
def probed_fleet(fleet, simulator, settings):
    """The test fleet's shards served by the simulator, probed from three regions."""
    settings.PROBE_AUTO_PUBLISH = True
    settings.PROBE_TIMEOUT_SECONDS = 1.0
    for shard in Shard.objects.all():
        shard.probe_url = f"{simulator.url}/s/{shard.slug}/key?v=88"
        shard.save(update_fields=["probe_url"])
    for slug in REGIONS:
        ProbeRegion.objects.create(slug=slug, name=slug)
    return fleet


def _rounds(n, committed):
    for _ in range(n):
        with committed():
            for region in REGIONS:
                region_round(region_slug=region)


def test_a_shard_going_down_opens_an_incident_that_resolves_when_it_recovers(
    probed_fleet, simulator, committed
):
    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1")
    tailnet_create(slug="globex", display_name="globex.com", shard="use2")
    _rounds(2, committed)
    assert not Incident.objects.exists()

    simulator.fleet.set_fault("use1", "down")
    _rounds(3, committed)

    incident = Incident.objects.get()
    window = ShardImpact.objects.get()
    first_failures: dict[str, datetime] = {}  # each region's first failing probe
    for region, started_at in (
        ProbeSample.objects.filter(shard__slug="use1", ok=False)
        .order_by("started_at")
        .values_list("region__slug", "started_at")
    ):
        first_failures.setdefault(region, started_at)
    assert (window.shard.slug, window.level, window.ends_at) == ("use1", "outage", None)
    # Every region failed from the same round: the outage starts at the first failure
    # of the region whose failure completed the quorum, one of that round's.
    assert window.starts_at in set(first_failures.values())
    assert max(first_failures.values()) - min(first_failures.values()) < timedelta(seconds=5)
    assert list(TailnetImpact.objects.values_list("tailnet", flat=True)) == [acme.pk]
    assert incident.status == "investigating"

    simulator.fleet.clear("use1")
    _rounds(2, committed)

    incident.refresh_from_db()
    window.refresh_from_db()
    assert incident.status == "resolved"
    assert window.ends_at is not None
    assert TailnetImpact.objects.get().ends_at == window.ends_at


def test_a_partition_seen_from_one_region_opens_nothing(probed_fleet, simulator, committed):
    simulator.fleet.set_fault("use1", "down", region="ams")
    _rounds(5, committed)
    assert ProbeSample.objects.filter(ok=False, region__slug="ams").count() == 5
    assert not Incident.objects.exists()


def test_a_slow_shard_is_degraded(probed_fleet, simulator, committed, settings):
    settings.SHARD_LATENCY_THRESHOLD_MS = 100
    simulator.fleet.set_fault("euw1", "slow", latency_ms=300)
    _rounds(3, committed)
    window = ShardImpact.objects.get()
    assert (window.shard.slug, window.level) == ("euw1", "degraded")


def test_a_round_stores_nothing_twice_when_redelivered(probed_fleet, committed):
    _rounds(1, committed)
    stored = ProbeSample.objects.count()
    assert stored == len(REGIONS) * 3
    # The same samples again (a re-delivered batch) change nothing.
    from probes.services import SampleIn, samples_store

    again = [
        SampleIn(shard_id=s.shard_id, started_at=s.started_at, ok=s.ok, latency_ms=s.latency_ms)
        for s in ProbeSample.objects.filter(region__slug="ams")
    ]
    samples_store(region=ProbeRegion.objects.get(slug="ams"), samples=again)
    assert ProbeSample.objects.count() == stored
