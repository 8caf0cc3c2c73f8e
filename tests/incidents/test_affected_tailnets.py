"""Who an incident touched: placements overlapping impact windows, clipped, exact."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from fleet.services import tailnet_create, tailnet_migrate
from incidents.models import Placement, TailnetImpact
from incidents.services import (
    WindowSpec,
    incident_create,
    incident_post_update,
    shard_impact_change_level,
    tailnet_impacts_recompute,
)
from tests.conftest import T0

M = timedelta(minutes=1)


@pytest.fixture
def outage(committed):
    """Open a published incident with one window per shard; its recompute runs."""

    def open_outage(shards, start, end, level="outage"):
        with committed():
            return incident_create(
                title="Coordination server unavailable",
                body="We are investigating failed logins.",
                started_at=start,
                shard_impacts=[WindowSpec(s, level, start, end) for s in shards],
                published=True,
                at=start,
            )

    return open_outage


def _rows(incident):
    return {
        (r.tailnet.slug, r.level, r.starts_at, r.ends_at, r.seconds)
        for r in TailnetImpact.objects.filter(incident=incident).select_related("tailnet")
    }


def test_acme_on_the_failing_shard_is_affected_for_the_whole_outage(fleet, outage):
    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - 30 * M)
    tailnet_create(slug="globex", display_name="globex.com", shard="use2", at=T0 - 30 * M)

    incident = outage(["use1"], T0, T0 + 24 * M)

    assert _rows(incident) == {("acme", "outage", T0, T0 + 24 * M, 24 * 60)}
    assert acme.impacts.count() == 1


def test_acme_migrated_off_five_minutes_in_is_affected_five_minutes(fleet, outage, committed):
    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - 30 * M)
    with committed():
        incident = outage(["use1"], T0, T0 + 24 * M)
        tailnet_migrate(tailnet=acme, to_shard="use2", at=T0 + 5 * M)

    assert _rows(incident) == {("acme", "outage", T0, T0 + 5 * M, 300)}


def test_globex_migrated_onto_the_failing_shard_is_affected_from_arrival(fleet, outage, committed):
    globex = tailnet_create(slug="globex", display_name="globex.com", shard="use2", at=T0 - M)
    with committed():
        incident = outage(["use1"], T0, T0 + 24 * M)
        tailnet_migrate(tailnet=globex, to_shard="use1", at=T0 + 20 * M + timedelta(seconds=30))

    assert _rows(incident) == {
        ("globex", "outage", T0 + 20 * M + timedelta(seconds=30), T0 + 24 * M, 210)
    }


def test_an_ongoing_window_grows_until_it_closes(fleet, outage):
    tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - M)
    incident = outage(["use1"], T0, None)

    tailnet_impacts_recompute(incident_id=incident.pk, as_of=T0 + 3 * M)
    assert _rows(incident) == {("acme", "outage", T0, None, 180)}
    tailnet_impacts_recompute(incident_id=incident.pk, as_of=T0 + 7 * M)
    assert _rows(incident) == {("acme", "outage", T0, None, 420)}

    incident_post_update(incident=incident, status="resolved", body="Fixed.", at=T0 + 9 * M)
    tailnet_impacts_recompute(incident_id=incident.pk, as_of=T0 + 60 * M)
    assert _rows(incident) == {("acme", "outage", T0, T0 + 9 * M, 540)}


def test_recompute_is_idempotent(fleet, outage):
    for i in range(5):
        tailnet_create(slug=f"t{i}", display_name=f"t{i}", shard="use1", at=T0 - M)
    incident = outage(["use1", "use2"], T0, T0 + 24 * M)

    first = _rows(incident)
    assert tailnet_impacts_recompute(incident_id=incident.pk) == 5
    assert tailnet_impacts_recompute(incident_id=incident.pk) == 5
    assert _rows(incident) == first
    assert TailnetImpact.objects.filter(incident=incident).count() == 5


def test_a_level_change_splits_the_tailnet_rows(fleet, outage, committed):
    tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - M)
    with committed():
        incident = outage(["use1"], T0, None, level="degraded")
        shard_impact_change_level(
            impact=incident.shard_impacts.get(), level="outage", at=T0 + 4 * M
        )
    tailnet_impacts_recompute(incident_id=incident.pk, as_of=T0 + 10 * M)

    assert _rows(incident) == {
        ("acme", "degraded", T0, T0 + 4 * M, 240),
        ("acme", "outage", T0 + 4 * M, None, 360),
    }


def test_placements_touching_a_window_only_at_its_edge_are_not_affected(fleet, outage):
    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - 60 * M)
    tailnet_migrate(tailnet=acme, to_shard="use2", at=T0)  # left exactly as it began
    incident = outage(["use1"], T0, T0 + 24 * M)

    assert _rows(incident) == set()


def test_sub_second_boundaries_are_cut_to_their_whole_second_before_counting(fleet, outage):
    tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - M)
    start = T0 + timedelta(microseconds=700_000)
    end = start + timedelta(seconds=90, microseconds=500_000)  # T0 + 91.2 s
    incident = outage(["use1"], start, end)

    ((_, _, s, e, seconds),) = _rows(incident)
    # Seconds T0 .. T0+90 are counted, as every uptime figure counts them
    # (incidents.uptime.epoch_second), not the 90.5 s between the two instants.
    assert (s, e, seconds) == (start, end, 91)


class TestBadInput:
    def test_migrating_to_the_same_shard_is_refused(self, fleet):
        acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0)
        with pytest.raises(ValidationError, match="already on shard 'use1'"):
            tailnet_migrate(tailnet=acme, to_shard="use1", at=T0 + M)
        assert Placement.objects.filter(tailnet=acme).count() == 1

    def test_migrating_back_in_time_is_refused_and_nothing_changes(self, fleet):
        acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0)
        with pytest.raises(ValidationError, match="cannot overlap"):
            tailnet_migrate(tailnet=acme, to_shard="use2", at=T0 - M)
        assert list(Placement.objects.filter(tailnet=acme).values_list("ends_at", flat=True)) == [
            None
        ]

    def test_an_impact_on_an_unknown_shard_is_refused(self, fleet, outage):
        with pytest.raises(ValidationError, match="Unknown shard 'nope'"):
            outage(["nope"], T0, T0 + M)
        assert not TailnetImpact.objects.exists()

    def test_a_window_ending_before_it_starts_is_refused_and_nothing_is_written(
        self, fleet, outage
    ):
        from incidents.models import Incident

        with pytest.raises(ValidationError, match=r"ends .* before it starts"):
            outage(["use1"], T0, T0 - M)
        assert not Incident.objects.exists()

    def test_overlapping_windows_on_one_shard_are_refused(self, fleet):
        from incidents.models import Incident

        with pytest.raises(ValidationError, match="overlap"):
            incident_create(
                title="x",
                body="y",
                started_at=T0,
                shard_impacts=[
                    WindowSpec("use1", "outage", T0, T0 + 10 * M),
                    WindowSpec("use1", "partial", T0 + 5 * M, T0 + 20 * M),
                ],
            )
        assert not Incident.objects.exists()


class TestResolving:
    def test_resolving_refuses_a_window_that_starts_after_it_and_writes_nothing(self, fleet):
        incident = incident_create(
            title="x",
            body="y",
            started_at=T0,
            shard_impacts=[WindowSpec("use1", "outage", T0 + 10 * M)],
            at=T0,
        )
        with pytest.raises(ValidationError, match=r"starts at .* after this resolution"):
            incident_post_update(incident=incident, status="resolved", body="ok", at=T0 + 5 * M)
        incident.refresh_from_db()
        assert (incident.status, incident.resolved_at) == ("investigating", None)
        assert incident.updates.count() == 1

    def test_an_open_window_cannot_be_added_to_a_resolved_incident(self, fleet):
        from incidents.services import shard_impact_add

        incident = incident_create(title="x", body="y", started_at=T0, at=T0)
        incident_post_update(incident=incident, status="resolved", body="ok", at=T0 + 5 * M)
        with pytest.raises(ValidationError, match="resolved"):
            shard_impact_add(incident=incident, shard="use1", level="outage", starts_at=T0)
        window = shard_impact_add(
            incident=incident, shard="use1", level="outage", starts_at=T0, ends_at=T0 + 5 * M
        )
        assert window.ends_at == T0 + 5 * M
