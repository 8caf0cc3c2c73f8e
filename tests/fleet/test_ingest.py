"""The control plane tells us what happened in the fleet; the placements (and so who
each incident affected) follow exactly, a batch is stored whole or not at all, and
only the incidents whose windows a change touches are computed again.

acme (alice's) and globex (bob's) live on use1; initech on use2.
"""

from datetime import timedelta

import pytest

from fleet.models import FleetEvent
from fleet.services import (
    FleetEventsConflict,
    FleetEventsInvalid,
    fleet_events_ingest,
)
from incidents import signals
from incidents.models import Component, Incident, Placement, Shard, Tailnet, TailnetImpact
from incidents.queries import incident_blast_radius
from incidents.services import WindowSpec, incident_create, incident_post_update
from tests.conftest import T0

from .conftest import NOW, created, deleted, event, migrated, renamed

M = timedelta(minutes=1)
DAY = timedelta(days=1)
pytestmark = pytest.mark.usefixtures("frozen")


def placements(slug):
    return list(
        Placement.objects.filter(tailnet__slug=slug)
        .order_by("starts_at")
        .values_list("shard__slug", "starts_at", "ends_at")
    )


def affected(incident, slug):
    return sorted(
        TailnetImpact.objects.filter(incident=incident, tailnet__slug=slug).values_list(
            "shard__slug", "starts_at", "ends_at", "seconds"
        )
    )


@pytest.fixture
def customers(fleet, committed):
    """acme and globex on use1, initech on use2, all through the feed, a day before T0."""
    with committed():
        fleet_events_ingest(
            events=[
                created("acme-1", T0 - DAY, "acme", "use1"),
                created("globex-1", T0 - DAY, "globex", "use1"),
                created("initech-1", T0 - DAY, "initech", "use2"),
            ]
        )
    return fleet


def test_a_late_migration_into_an_ongoing_incident_changes_exactly_that_tailnets_seconds(
    customers, committed, time_machine
):
    time_machine.move_to(NOW - M, tick=False)
    with committed():
        use1_down = incident_create(
            title="use1 down",
            body="x",
            started_at=T0,
            shard_impacts=[WindowSpec("use1", "outage", T0)],
            published=True,
            at=T0,
        )
        euw1_slow = incident_create(
            title="euw1 slow",
            body="x",
            started_at=T0,
            shard_impacts=[WindowSpec("euw1", "degraded", T0, T0 + 5 * M)],
            published=True,
            at=T0,
        )
    assert affected(use1_down, "globex") == [("use1", T0, None, 24 * 3600 - 60)]
    untouched = Incident.objects.get(pk=euw1_slow.pk).impacts_computed_at

    # Arriving a minute later: globex was live-migrated off use1 ten minutes into it.
    time_machine.move_to(NOW, tick=False)
    with committed():
        counts = fleet_events_ingest(events=[migrated("globex-2", T0 + 10 * M, "globex", "use2")])

    assert counts == {"accepted": 1, "duplicates": 0}
    assert placements("globex") == [("use1", T0 - DAY, T0 + 10 * M), ("use2", T0 + 10 * M, None)]
    assert affected(use1_down, "globex") == [("use1", T0, T0 + 10 * M, 600)]
    assert affected(use1_down, "acme") == [("use1", T0, None, 24 * 3600)]
    assert affected(use1_down, "initech") == []
    assert Incident.objects.get(pk=euw1_slow.pk).impacts_computed_at == untouched


def test_only_incidents_overlapping_a_changed_interval_are_computed_again(
    customers, committed, time_machine
):
    time_machine.move_to(NOW - M, tick=False)
    with committed():
        over_before = incident_create(
            title="use2 blip",
            body="x",
            started_at=T0,
            shard_impacts=[WindowSpec("use2", "outage", T0, T0 + 5 * M)],
            published=True,
            at=T0,
        )
        later = incident_create(
            title="use1 slow",
            body="x",
            started_at=T0 + 20 * M,
            shard_impacts=[WindowSpec("use1", "degraded", T0 + 20 * M, T0 + 60 * M)],
            published=True,
            at=T0,
        )
    changed_at = dict(Incident.objects.values_list("pk", "impacts_changed_at"))

    time_machine.move_to(NOW, tick=False)
    with committed():
        fleet_events_ingest(events=[migrated("acme-2", T0 + 30 * M, "acme", "use2")])

    now_changed = dict(Incident.objects.values_list("pk", "impacts_changed_at"))
    assert now_changed[over_before.pk] == changed_at[over_before.pk]
    assert now_changed[later.pk] > changed_at[later.pk]
    assert affected(later, "acme") == [("use1", T0 + 20 * M, T0 + 30 * M, 600)]


def test_one_bad_event_refuses_the_batch_and_writes_nothing(customers):
    batch = [
        migrated("acme-2", T0, "acme", "use2"),
        migrated("globex-2", T0, "globex", "use7"),
        created("hooli-1", NOW + 6 * M, "hooli", "use1"),
        "not an event",
    ]
    with pytest.raises(FleetEventsInvalid) as refused:
        fleet_events_ingest(events=batch)

    assert refused.value.errors[0] == {}
    assert refused.value.errors[1] == {"shard": ["Unknown shard 'use7'."]}
    assert "future" in refused.value.errors[2]["at"][0]
    assert refused.value.errors[3] == {"non_field_errors": ["Each event must be a JSON object."]}
    assert FleetEvent.objects.count() == 3
    assert not Tailnet.objects.filter(slug="hooli").exists()
    assert placements("acme") == [("use1", T0 - DAY, None)]


def test_a_stored_id_with_other_content_is_a_conflict_and_nothing_is_written(customers):
    with pytest.raises(FleetEventsConflict) as conflict:
        fleet_events_ingest(
            events=[
                migrated("acme-2", T0, "acme", "use2"),
                created("globex-1", T0 - DAY, "globex", "euw1"),  # stored on use1
            ]
        )
    assert conflict.value.ids == ["globex-1"]
    assert FleetEvent.objects.count() == 3
    assert placements("acme") == [("use1", T0 - DAY, None)]

    with pytest.raises(FleetEventsConflict) as twice:
        fleet_events_ingest(
            events=[migrated("x-1", T0, "acme", "use2"), migrated("x-1", T0, "acme", "euw1")]
        )
    assert twice.value.ids == ["x-1"]
    assert FleetEvent.objects.count() == 3


def test_an_event_sent_again_is_a_duplicate_even_written_differently(customers):
    at = (T0 + 5 * M).isoformat().replace("+00:00", "Z")
    first = fleet_events_ingest(events=[migrated("acme-2", at, "acme", "use2")])
    again = fleet_events_ingest(
        events=[
            migrated("acme-2", (T0 + 5 * M).isoformat(), "acme", "use2"),
            migrated("acme-2", (T0 + 5 * M).astimezone().isoformat(), "acme", "use2"),
            created("acme-1", T0 - DAY, "acme", "use1"),
        ]
    )
    assert (first, again) == ({"accepted": 1, "duplicates": 0}, {"accepted": 0, "duplicates": 3})
    assert placements("acme") == [("use1", T0 - DAY, T0 + 5 * M), ("use2", T0 + 5 * M, None)]


def test_a_rename_and_a_deletion_and_a_return(customers):
    fleet_events_ingest(
        events=[
            deleted("acme-3", T0 + 30 * M, "acme"),
            renamed("acme-2", T0, "acme", "Acme Inc."),
            created("acme-4", T0 + 90 * M, "acme", "euw1", display_name="ACME"),
        ]
    )
    acme = Tailnet.objects.get(slug="acme")
    assert (acme.display_name, acme.created_at, acme.deleted_at) == ("ACME", T0 - DAY, None)
    assert placements("acme") == [("use1", T0 - DAY, T0 + 30 * M), ("euw1", T0 + 90 * M, None)]

    fleet_events_ingest(events=[deleted("acme-5", T0 + 100 * M, "acme")])
    acme.refresh_from_db()
    assert acme.deleted_at == T0 + 100 * M


def test_an_unknown_shard_is_refused_unless_the_same_batch_adds_it(customers):
    new_shard = event(
        "use3-added",
        "shard.added",
        T0,
        shard="use3",
        region="us-east",
        public_name="US East 3",
        probe_url="https://use3.example.com/health",
    )
    with pytest.raises(FleetEventsInvalid) as refused:
        fleet_events_ingest(events=[migrated("acme-2", T0 + M, "acme", "use3")])
    assert refused.value.errors == [{"shard": ["Unknown shard 'use3'."]}]

    counts = fleet_events_ingest(events=[migrated("acme-2", T0 + M, "acme", "use3"), new_shard])

    assert counts == {"accepted": 2, "duplicates": 0}
    use3 = Shard.objects.get(slug="use3")
    assert (use3.region, use3.public_name, use3.component, use3.created_at) == (
        "us-east",
        "US East 3",
        customers["us"],
        T0,
    )
    assert placements("acme")[-1] == ("use3", T0 + M, None)


def test_a_shard_in_a_region_without_coordination_component_needs_one_named(customers):
    added = {
        "shard": "apse1",
        "region": "ap-southeast",
        "public_name": "Singapore 1",
        "probe_url": "",
    }
    with pytest.raises(FleetEventsInvalid) as refused:
        fleet_events_ingest(events=[event("s1", "shard.added", T0, **added)])
    assert refused.value.errors == [
        {
            "component": [
                "Region 'ap-southeast' has no single coordination component; name one in component."
            ]
        }
    ]
    with pytest.raises(FleetEventsInvalid) as unknown:
        fleet_events_ingest(events=[event("s1", "shard.added", T0, component="nope", **added)])
    assert unknown.value.errors == [{"component": ["Unknown component 'nope'."]}]

    fleet_events_ingest(
        events=[event("s1", "shard.added", T0, component="coordination-eu-west", **added)]
    )
    assert Shard.objects.get(slug="apse1").component == customers["eu"]


def test_shard_updates_and_retirement(customers):
    fleet_events_ingest(
        events=[
            event("u2", "shard.updated", T0 + 2 * M, shard="use2", public_name="US East 2b"),
            event("u1", "shard.updated", T0 + M, shard="use2", public_name="US East Two"),
            event("u3", "shard.updated", T0 + 3 * M, shard="use2", region="eu-west"),
            event("r1", "shard.retired", T0 + 60 * M, shard="use2"),
        ]
    )
    use2 = Shard.objects.get(slug="use2")
    assert (use2.public_name, use2.region, use2.component, use2.active) == (
        "US East 2b",
        "eu-west",
        customers["eu"],
        False,
    )
    # Before its retirement it was a shard like any other; after, nothing moves onto it.
    fleet_events_ingest(events=[migrated("acme-2", T0 + 59 * M, "acme", "use2")])
    with pytest.raises(FleetEventsInvalid) as refused:
        fleet_events_ingest(events=[migrated("globex-2", T0 + 60 * M, "globex", "use2")])
    assert refused.value.errors == [
        {"shard": ["Shard 'use2' was retired at 2026-01-05 11:00:00 UTC."]}
    ]
    # initech still lives there until a migration moves it.
    assert placements("initech") == [("use2", T0 - DAY, None)]


def test_a_tailnet_created_before_the_feed_keeps_its_history(fleet):
    # Rows written before the feed existed: no event behind them.
    acme = Tailnet.objects.create(slug="acme", display_name="acme.com", created_at=T0 - 10 * DAY)
    Placement.objects.create(tailnet=acme, shard=fleet["use1"], starts_at=T0 - 10 * DAY)
    fleet_events_ingest(events=[migrated("acme-9", T0, "acme", "use2")])
    assert placements("acme") == [("use1", T0 - 10 * DAY, T0), ("use2", T0, None)]
    assert set(FleetEvent.objects.values_list("id", "source")) == {
        ("backfill:acme:1", "backfill"),
        ("acme-9", "api"),
    }


def test_deleted_tailnets_leave_the_blast_radius_of_later_windows(customers, committed):
    fleet_events_ingest(
        events=[
            deleted("initech-2", T0 - 60 * M, "initech"),  # gone before the incident
            deleted("globex-2", T0 + 10 * M, "globex"),  # gone during it
            created("hooli-1", T0 + 2 * 60 * M, "hooli", "use1"),  # after it
        ]
    )
    with committed():
        incident = incident_create(
            title="use1 down",
            body="x",
            started_at=T0,
            shard_impacts=[WindowSpec("use1", "outage", T0, T0 + 60 * M)],
            published=True,
            at=T0,
        )
        incident_post_update(incident=incident, status="resolved", body="ok", at=T0 + 60 * M)
    radius = incident_blast_radius(incident=Incident.objects.get(pk=incident.pk), as_of=NOW)
    assert (radius.affected, radius.total) == (2, 2)  # acme and globex, of acme and globex
    assert Tailnet.objects.get(slug="initech").deleted_at == T0 - 60 * M


def test_a_tailnet_deleted_at_the_instant_a_window_starts_did_not_exist_during_it(customers):
    fleet_events_ingest(events=[deleted("initech-2", T0, "initech")])
    incident = incident_create(
        title="x",
        body="x",
        started_at=T0,
        shard_impacts=[WindowSpec("use1", "outage", T0, T0 + M)],
        at=T0,
    )
    assert incident_blast_radius(incident=incident, as_of=NOW).total == 2


def test_the_caches_hear_which_tailnets_changed(customers):
    heard = []

    def listen(tailnet_ids, **_):
        heard.append(tailnet_ids)

    signals.tailnet_data_changed.connect(listen)
    try:
        fleet_events_ingest(events=[renamed("acme-2", T0, "acme", "Acme")])
    finally:
        signals.tailnet_data_changed.disconnect(listen)
    assert heard == [[Tailnet.objects.get(slug="acme").pk]]


def test_an_unknown_source_is_a_programming_error(customers):
    with pytest.raises(ValueError, match="Unknown source"):
        fleet_events_ingest(events=[], source="gossip")
    assert Component.objects.exists()
