"""Detection on stored samples opens, re-levels and resolves incidents."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.services import tailnet_create
from incidents.models import AuditEntry, Incident, ShardImpact, TailnetImpact
from incidents.services import incident_create
from probes.models import ProbeRegion, ShardState
from probes.services import (
    SampleIn,
    _late_samples_clear,
    _late_samples_since,
    detection_run,
    samples_store,
)
from tests.conftest import T0

ROUND = timedelta(seconds=30)
NYC = timedelta(milliseconds=1)  # nyc probes 1 ms after ams in each round (see probe)


@pytest.fixture
def regions(probe_regions):
    return probe_regions


@pytest.fixture
def probe(run_rounds):
    """probe("use1", {"ams": "..xxx", ...}): ``run_rounds`` of tests/probes/conftest.py."""
    return run_rounds


def test_an_outage_seen_from_two_regions_opens_a_published_incident_at_the_first_failure(
    fleet, probe
):
    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - ROUND * 100)
    probe("use1", {"ams": "..xxxx", "nyc": "..xxxx", "sfo": "......"})

    incident = Incident.objects.get()
    assert (incident.source, incident.published, incident.status) == (
        "probe",
        True,
        "investigating",
    )
    window = ShardImpact.objects.get()
    assert (window.shard, window.level, window.starts_at, window.ends_at) == (
        fleet["use1"],
        "outage",
        T0 + 2 * ROUND + NYC,
        None,
    )
    assert incident.started_at == T0 + 2 * ROUND + NYC  # nyc's failure completed the quorum
    assert incident.detected_at > incident.started_at  # time to detect is known
    assert TailnetImpact.objects.get().tailnet == acme
    assert ShardState.objects.get(shard=fleet["use1"]).state == "down"


def test_recovery_closes_the_window_and_resolves_the_incident(fleet, probe):
    tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - ROUND * 100)
    probe("use1", {"ams": "..xxxx..", "nyc": "..xxxx..", "sfo": "........"})

    incident = Incident.objects.get()
    assert incident.status == "resolved"
    window = ShardImpact.objects.get()
    assert (window.starts_at, window.ends_at) == (T0 + 2 * ROUND + NYC, T0 + 6 * ROUND)
    # Seconds T0+2R .. T0+6R: the start's millisecond is cut off like every instant's.
    assert TailnetImpact.objects.get().seconds == 4 * ROUND // timedelta(seconds=1)
    assert "answered normally" in incident.updates.first().body
    # Opened and resolved by the probes, and the audit trail says so.
    assert list(
        AuditEntry.objects.filter(incident=incident)
        .order_by("id")
        .values_list("action", "system", "user", "token")
    ) == [
        ("incident.create", "probe", None, None),
        ("impact.close", "probe", None, None),
        ("incident.resolve", "probe", None, None),
    ]


def test_one_partitioned_region_opens_nothing(fleet, probe):
    probe("use1", {"ams": "xxxxxxxx", "nyc": "........", "sfo": "........"})
    assert not Incident.objects.exists()


def test_detection_rerun_over_the_same_samples_changes_nothing(fleet, probe):
    probe("use1", {"ams": "..xxxx..", "nyc": "..xxxx..", "sfo": "........"})
    before = list(ShardImpact.objects.values_list("starts_at", "ends_at", "level"))
    state = ShardState.objects.get()

    assert detection_run(shard_ids=[fleet["use1"].pk], now=T0 + 20 * ROUND) == []
    assert list(ShardImpact.objects.values_list("starts_at", "ends_at", "level")) == before
    again = ShardState.objects.get()
    assert again.regions == state.regions
    assert again.updated_at == state.updated_at  # nothing new: not even rewritten
    assert Incident.objects.count() == 1


def test_slowness_then_outage_is_one_incident_with_two_windows(fleet, probe):
    probe("use1", {"ams": "sssssxxxx", "nyc": "sssssxxxx"})
    windows = list(
        ShardImpact.objects.order_by("starts_at").values_list("level", "starts_at", "ends_at")
    )
    assert windows == [
        ("degraded", T0, T0 + 5 * ROUND + NYC),
        ("outage", T0 + 5 * ROUND + NYC, None),
    ]
    assert Incident.objects.count() == 1


def test_a_draft_unless_auto_publish_is_on(fleet, probe, settings):
    probe("use1", {"ams": "..xxxx", "nyc": "..xxxx"})
    settings.PROBE_AUTO_PUBLISH = False
    probe("euw1", {"ams": "..xxxx", "nyc": "..xxxx"})
    published = dict(Incident.objects.values_list("shard_impacts__shard__slug", "published"))
    assert published == {"use1": True, "euw1": False}


def test_a_scheduled_maintenance_takes_the_impact_instead_of_a_new_incident(fleet, probe):
    maintenance = incident_create(
        title="Repairing a coordination server",
        body="Planned repair.",
        kind="maintenance",
        scheduled_for=T0,
        scheduled_until=T0 + 60 * ROUND,
        components={fleet["us"]: "under_maintenance"},
        published=True,
        at=T0 - 100 * ROUND,
    )
    probe("use1", {"ams": "..xxxx..", "nyc": "..xxxx.."})

    assert Incident.objects.count() == 1
    window = ShardImpact.objects.get()
    assert (window.incident, window.level, window.ends_at) == (
        maintenance,
        "outage",
        T0 + 6 * ROUND,
    )
    maintenance.refresh_from_db()
    assert maintenance.status == "scheduled"  # the operator ends a maintenance, not the probes


def test_two_shards_of_one_component_failing_together_are_one_incident(fleet, probe):
    probe("use1", {"ams": "..xxxx", "nyc": "..xxxx"})
    probe("use2", {"ams": "..xxxx", "nyc": "..xxxx"}, start=T0 + ROUND)
    assert Incident.objects.count() == 1
    assert set(ShardImpact.objects.values_list("shard__slug", flat=True)) == {"use1", "use2"}


def _one_round(fleet, regions, slugs, at):
    for region in regions.values():
        samples_store(
            region=region,
            samples=[
                SampleIn(shard_id=fleet[slug].pk, started_at=at, ok=True, latency_ms=40.0)
                for slug in slugs
            ],
        )


def test_detection_costs_the_same_few_queries_for_one_shard_or_many(fleet, regions):
    """Set-based: no query per shard (a fleet has thousands)."""
    _one_round(fleet, regions, ["use1"], T0)
    with CaptureQueriesContext(connection) as one:
        detection_run(now=T0 + ROUND / 3)
    _one_round(fleet, regions, ["use1", "use2", "euw1"], T0 + ROUND)
    with CaptureQueriesContext(connection) as three:
        detection_run(now=T0 + ROUND + ROUND / 3)

    assert len(three) == len(one)
    assert set(ShardState.objects.values_list("shard__slug", "state")) == {
        ("use1", "up"),
        ("use2", "up"),
        ("euw1", "up"),
    }


def test_without_shard_ids_detection_looks_at_every_shard_with_new_samples(fleet, regions):
    _one_round(fleet, regions, ["use2"], T0)
    detection_run(now=T0 + ROUND / 3)
    assert list(ShardState.objects.values_list("shard__slug", flat=True)) == ["use2"]


def _late_batch(fleet, region, pattern, *, start, stored_at):
    """One region's buffered rounds of use1 (x = failed, . = ok), all stored at once."""
    samples_store(
        region=region,
        samples=[
            SampleIn(
                shard_id=fleet["use1"].pk,
                started_at=start + i * ROUND,
                ok=mark != "x",
                latency_ms=40.0 if mark != "x" else None,
                error="" if mark != "x" else "refused",
            )
            for i, mark in enumerate(pattern)
        ],
        now=stored_at,
    )


def test_a_window_starts_at_the_first_failing_probe_of_batches_stored_half_an_hour_late(
    fleet, regions, committed, settings
):
    """The page was down for half an hour while the shard failed: ams and nyc kept
    their samples on disk and send them when it is back, far beyond detection's
    usual ten-minute look-back."""
    settings.PROBE_AUTO_PUBLISH = True
    back = T0 + timedelta(minutes=31)
    _late_batch(fleet, regions["ams"], "...." + "x" * 56, start=T0, stored_at=back)
    # nyc's agent sends what it kept after its own first batches got through: its
    # buffer starts with the failures.
    _late_batch(fleet, regions["nyc"], "x" * 56, start=T0 + 4 * ROUND, stored_at=back)
    with committed():
        detection_run(now=back + timedelta(seconds=5))

    window = ShardImpact.objects.get()
    assert (window.shard.slug, window.level) == ("use1", "outage")
    assert window.starts_at == T0 + 4 * ROUND
    assert window.incident.started_at == T0 + 4 * ROUND
    assert set(ProbeRegion.objects.values_list("slug", "late_batches_total")) == {
        ("ams", 1),
        ("nyc", 1),
        ("sfo", 0),
    }
    # Read once: the next run looks back its usual ten minutes only.
    assert not ProbeRegion.objects.filter(late_samples_from__isnull=False).exists()


def test_a_late_batch_stored_while_detection_runs_is_read_by_the_next_run(fleet, regions):
    """Detection clears the marks it read; a batch that came meanwhile keeps its own."""
    back = T0 + timedelta(minutes=31)
    _late_batch(fleet, regions["ams"], "....", start=T0, stored_at=back)
    since, seen = _late_samples_since(back)
    _late_batch(fleet, regions["ams"], "....", start=T0 - 4 * ROUND, stored_at=back)
    _late_samples_clear(seen)

    assert since == T0 - timedelta(minutes=2)  # a little before: detection reads after it
    ams = ProbeRegion.objects.get(slug="ams")
    assert (ams.late_samples_from, ams.late_batches_total) == (T0 - 4 * ROUND, 2)


def test_fresh_batches_are_not_marked_late(fleet, regions):
    _late_batch(fleet, regions["ams"], "..", start=T0, stored_at=T0 + ROUND * 2)
    ams = ProbeRegion.objects.get(slug="ams")
    assert (ams.late_samples_from, ams.late_batches_total) == (None, 0)
