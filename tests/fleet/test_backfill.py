"""The placements recorded before the feed become its first events (migration 0002,
``fleet.backfill``): deriving them gives the same history back, so the feed's first
event about a tailnet loses none of it."""

from datetime import timedelta

from fleet.backfill import fleet_events_backfill
from fleet.derive import tailnet_derive
from fleet.events import Event
from fleet.models import FleetEvent
from incidents.models import Placement, Tailnet
from tests.conftest import T0

H = timedelta(hours=1)


def history(fleet, slug, spans, *, created_at=None):
    tailnet = Tailnet.objects.create(
        slug=slug, display_name=f"{slug}.com", created_at=created_at or spans[0][1]
    )
    for shard, start, end in spans:
        Placement.objects.create(tailnet=tailnet, shard=fleet[shard], starts_at=start, ends_at=end)
    return tailnet


def logged(slug):
    return [
        (e.id, e.type, e.at, e.shard, e.payload)
        for e in FleetEvent.objects.filter(tailnet=slug).order_by("at")
    ]


def test_migrations_gaps_and_an_ended_placement_become_events(fleet):
    history(
        fleet,
        "acme",
        [
            ("use1", T0, T0 + H),
            ("use2", T0 + H, T0 + 2 * H),  # live-migrated
            ("euw1", T0 + 5 * H, T0 + 6 * H),  # gone for three hours, then back
        ],
        created_at=T0 - H,
    )

    assert fleet_events_backfill() == 6

    assert logged("acme") == [
        ("backfill:acme:1", "tailnet.renamed", T0 - H, "", {"display_name": "acme.com"}),
        ("backfill:acme:2", "tailnet.created", T0, "use1", {"display_name": "acme.com"}),
        ("backfill:acme:3", "tailnet.migrated", T0 + H, "use2", {}),
        ("backfill:acme:4", "tailnet.deleted", T0 + 2 * H, "", {}),
        ("backfill:acme:5", "tailnet.created", T0 + 5 * H, "euw1", {"display_name": "acme.com"}),
        ("backfill:acme:6", "tailnet.deleted", T0 + 6 * H, "", {}),
    ]
    assert set(FleetEvent.objects.values_list("source", flat=True)) == {"backfill"}
    assert Tailnet.objects.get(slug="acme").deleted_at == T0 + 6 * H


def test_deriving_the_backfilled_events_gives_the_same_tailnets_back(fleet):
    tailnets = [
        history(fleet, "acme", [("use1", T0, T0 + H), ("use2", T0 + H, None)]),
        history(fleet, "globex", [("euw1", T0, T0 + H), ("use1", T0 + 3 * H, None)]),
        history(fleet, "initech", [("use2", T0, T0 + 2 * H)]),
        Tailnet.objects.create(slug="hooli", display_name="Hooli", created_at=T0),
    ]
    fleet_events_backfill()

    for tailnet in tailnets:
        tailnet.refresh_from_db()
        events = [
            Event(e.id, e.type, e.at, e.tailnet, e.shard, e.payload)
            for e in FleetEvent.objects.filter(tailnet=tailnet.slug)
        ]
        state = tailnet_derive(tailnet.slug, events)
        assert state.placements == tuple(
            tailnet.placements.order_by("starts_at").values_list(
                "shard__slug", "starts_at", "ends_at"
            )
        )
        assert (state.display_name, state.created_at, state.deleted_at) == (
            tailnet.display_name,
            tailnet.created_at,
            tailnet.deleted_at,
        )
    assert Tailnet.objects.get(slug="initech").deleted_at == T0 + 2 * H
    assert Tailnet.objects.get(slug="acme").deleted_at is None


def test_a_second_backfill_writes_nothing_and_only_the_tailnets_asked_for(fleet):
    acme = history(fleet, "acme", [("use1", T0, None)])
    globex = history(fleet, "globex", [("use2", T0, None)])

    assert fleet_events_backfill(tailnet_ids=[acme.pk]) == 1
    assert fleet_events_backfill(tailnet_ids=[acme.pk]) == 0
    assert fleet_events_backfill() == 1
    assert fleet_events_backfill() == 0
    assert logged("globex") == [
        ("backfill:globex:1", "tailnet.created", T0, "use2", {"display_name": "globex.com"})
    ]
    assert globex.pk != acme.pk


def test_the_backfill_runs_under_djangos_debug_cursor(fleet):
    """`make run` migrates with DEBUG on, where Django's debug cursor quotes every
    parameter of every statement (on SQLite, a list it cannot)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    history(fleet, "acme", [("use1", T0, None)])

    with CaptureQueriesContext(connection):
        assert fleet_events_backfill() == 1
        assert fleet_events_backfill(tailnet_ids=[Tailnet.objects.get().pk]) >= 0
