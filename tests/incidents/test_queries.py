"""What pages read: blast radius, a tailnet's own history and uptime, current status."""

from datetime import date, timedelta

import pytest

from customers.queries import tailnet_uptime_report
from fleet.services import tailnet_create, tailnet_migrate
from incidents.queries import (
    component_statuses_now,
    components_uptime,
    fleet_uptime_tally,
    incident_blast_radius,
    status_page_incidents,
    tailnet_incident_history,
)
from incidents.services import WindowSpec, incident_create, incident_post_update
from tests.conftest import T0

M = timedelta(minutes=1)
DAY = date(2026, 1, 5)


@pytest.fixture
def acme(fleet):
    return tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - 30 * M)


@pytest.fixture
def globex(fleet):
    return tailnet_create(slug="globex", display_name="globex.com", shard="use2", at=T0 - 30 * M)


def _incident(windows, *, published=True, title="Coordination unavailable", at=T0):
    return incident_create(
        title=title,
        body="Investigating.",
        started_at=at,
        shard_impacts=[WindowSpec(*w) for w in windows],
        published=published,
        at=at,
    )


def test_blast_radius_counts_each_tailnet_once_at_its_worst_level(fleet, acme, globex, committed):
    for n in range(8):
        tailnet_create(slug=f"quiet{n}", display_name="q", shard="euw1", at=T0 - 30 * M)
    with committed():
        incident = _incident(
            [
                ("use1", "degraded", T0, T0 + 10 * M),
                ("use1", "outage", T0 + 10 * M, T0 + 24 * M),
                ("use2", "degraded", T0, T0 + 24 * M),
            ]
        )

    radius = incident_blast_radius(incident=incident)

    assert (radius.affected, radius.total) == (2, 10)
    assert radius.by_level == {"outage": 1, "degraded": 1}
    assert str(radius) == "2 tailnets, 20.00% of tailnets"


def test_tailnets_created_after_the_incident_are_not_in_the_denominator(fleet, acme, committed):
    with committed():
        incident = _incident([("use1", "outage", T0, T0 + 24 * M)])
    tailnet_create(slug="newcomer", display_name="n", shard="use2", at=T0 + 2 * 24 * 60 * M)

    assert incident_blast_radius(incident=incident).total == 1


def test_acme_history_shows_only_its_own_minutes_across_a_migration(fleet, acme, globex, committed):
    with committed():
        incident = _incident([("use1", "outage", T0, T0 + 24 * M)])
        tailnet_migrate(tailnet=acme, to_shard="use2", at=T0 + 5 * M)
        _incident([("euw1", "outage", T0, T0 + 60 * M)], title="EU only")

    (entry,) = tailnet_incident_history(tailnet_id=acme.pk, since=T0 - 90 * 24 * 60 * M)

    assert (entry.incident.pk, entry.incident.title) == (incident.pk, incident.title)
    assert (entry.worst_level, entry.affected_seconds) == ("outage", 300)
    assert (entry.first_affected_at, entry.last_affected_at) == (T0, T0 + 5 * M)
    assert tailnet_incident_history(tailnet_id=globex.pk, since=T0 - 60 * M) == []


def test_drafts_are_not_in_a_tailnets_history(fleet, acme, committed):
    with committed():
        _incident([("use1", "outage", T0, T0 + 24 * M)], published=False)

    assert tailnet_incident_history(tailnet_id=acme.pk, since=T0 - 60 * M) == []
    assert len(tailnet_incident_history(tailnet_id=acme.pk, since=T0, include_drafts=True)) == 1


def test_history_is_one_query(fleet, acme, committed, django_assert_num_queries):
    with committed():
        for n in range(5):
            _incident(
                [("use1", "partial", T0 + n * 60 * M, T0 + (n * 60 + 9) * M)], at=T0 + n * 60 * M
            )
    with django_assert_num_queries(1):
        assert len(tailnet_incident_history(tailnet_id=acme.pk, since=T0 - 60 * M)) == 5


def test_acme_uptime_is_stitched_across_migrations(fleet, acme, committed):
    """Acme sat on use1 during its partial outage, then moved onto use2 just as
    use2 went down: both count, each only while acme was there."""
    with committed():
        _incident([("use1", "partial", T0, T0 + 20 * M)])
        _incident([("use2", "outage", T0 + 10 * M, T0 + 40 * M)], title="use2 down")
        tailnet_migrate(tailnet=acme, to_shard="use2", at=T0 + 30 * M)

    (day,) = tailnet_uptime_report(
        tailnet_id=acme.pk, first_day=DAY, last_day=DAY, now=T0 + 14 * 60 * M
    ).days

    # Placed from 09:30; "now" is 24:00, so 14h30 of data that day.
    assert day.tally.total_seconds == (14 * 60 + 30) * 60
    assert (day.tally.partial_seconds, day.tally.outage_seconds) == (20 * 60, 10 * 60)
    assert day.uptime_pct == pytest.approx(100 * (870 - (10 + 0.3 * 20)) / 870)


def test_minutes_before_a_tailnet_existed_are_not_counted_as_up(fleet):
    late = tailnet_create(slug="late", display_name="l", shard="use1", at=T0 + 14 * 60 * M)
    days = tailnet_uptime_report(
        tailnet_id=late.pk, first_day=DAY - timedelta(days=1), last_day=DAY, now=T0 + 14 * 60 * M
    ).days
    assert [d.tally.total_seconds for d in days] == [0, 0]
    assert [d.uptime_pct for d in days] == [None, None]


class TestComponentStatusNow:
    def test_one_of_two_shards_out_is_a_partial_outage(self, fleet, committed):
        with committed():
            _incident([("use1", "outage", T0, None)])
        statuses = component_statuses_now(now=T0 + M)
        assert statuses[fleet["us"].pk] == "partial_outage"
        assert statuses[fleet["eu"].pk] == "operational"

    def test_every_shard_out_is_a_major_outage(self, fleet, committed):
        with committed():
            _incident([("use1", "outage", T0, None), ("use2", "outage", T0, None)])
        assert component_statuses_now(now=T0 + M)[fleet["us"].pk] == "major_outage"

    def test_the_status_an_operator_set_wins(self, fleet, committed):
        with committed():
            incident_create(
                title="Slow admin console",
                body="Investigating.",
                started_at=T0,
                components={fleet["us"]: "degraded_performance"},
                shard_impacts=[WindowSpec("use1", "outage", T0)],
                published=True,
                at=T0,
            )
        assert component_statuses_now(now=T0 + M)[fleet["us"].pk] == "degraded_performance"

    def test_drafts_and_resolved_incidents_do_not_count(self, fleet, committed):
        with committed():
            _incident([("use1", "outage", T0, None)], published=False)
            done = _incident([("use2", "outage", T0, None)])
            incident_post_update(incident=done, status="resolved", body="Fixed.", at=T0 + 5 * M)
        assert component_statuses_now(now=T0 + 10 * M)[fleet["us"].pk] == "operational"

    def test_the_status_page_lists_1_or_10_open_incidents_in_as_many_queries(
        self, fleet, committed
    ):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        def page_queries():
            with CaptureQueriesContext(connection) as queries:
                listed = status_page_incidents(now=T0 + 2 * 60 * M)
            return len(queries), listed

        with committed():
            _incident([("use1", "degraded", T0, T0 + M)])
        few, _ = page_queries()
        with committed():
            for n in range(1, 10):
                _incident([("use2", "degraded", T0 + n * M, T0 + (n + 1) * M)], at=T0 + n * M)
        many, listed = page_queries()

        assert few == many
        assert len([i for i in listed if i.resolved_at is None]) == 10


class TestComponentUptime:
    def test_one_of_two_shards_out_for_24_minutes_is_24_partial_minutes(self, fleet, committed):
        with committed():
            incident = _incident([("use1", "outage", T0, T0 + 24 * M)])
            incident_post_update(incident=incident, status="resolved", body="ok", at=T0 + 24 * M)

        uptime = components_uptime(first_day=DAY, last_day=DAY, now=T0 + 14 * 60 * M)

        (us_day,) = uptime[fleet["us"].pk]
        assert (us_day.tally.partial_seconds, us_day.tally.outage_seconds) == (24 * 60, 0)
        assert us_day.uptime_pct == pytest.approx(100 * (1440 - 0.3 * 24) / 1440)
        (eu_day,) = uptime[fleet["eu"].pk]
        assert eu_day.uptime_pct == 100

    def test_an_operator_status_follows_the_updates_timeline(self, fleet, committed):
        us = fleet["us"]
        with committed():
            incident = incident_create(
                title="Admin console slow",
                body="Investigating.",
                started_at=T0,
                components={us: "degraded_performance"},
                published=True,
                at=T0,
            )
            incident_post_update(
                incident=incident,
                status="identified",
                body="Worse.",
                components={us: "major_outage"},
                at=T0 + 10 * M,
            )
            incident_post_update(incident=incident, status="resolved", body="ok", at=T0 + 25 * M)

        (day,) = components_uptime(first_day=DAY, last_day=DAY, now=T0 + 14 * 60 * M)[us.pk]

        assert (day.tally.degraded_seconds, day.tally.outage_seconds) == (10 * 60, 15 * 60)

    def test_drafts_do_not_count(self, fleet, committed):
        with committed():
            _incident([("use1", "outage", T0, T0 + 24 * M)], published=False)
        (day,) = components_uptime(first_day=DAY, last_day=DAY, now=T0 + 14 * 60 * M)[
            fleet["us"].pk
        ]
        assert day.uptime_pct == 100


def test_fleet_uptime_weights_customer_minutes(fleet, acme, globex, committed):
    with committed():
        _incident([("use1", "outage", T0, T0 + 24 * M)])
        _incident([("use1", "partial", T0 + 10 * M, T0 + 40 * M)], title="overlapping")

    tally = fleet_uptime_tally(first_day=DAY, last_day=DAY, now=T0 + 60 * M)

    # Both tailnets placed from 09:30 to 11:00: 2 x 90 minutes.
    assert tally.total_seconds == 180 * 60
    # acme: 24 outage minutes, then 16 more partial ones (a second counts once).
    assert (tally.outage_seconds, tally.partial_seconds) == (24 * 60, 16 * 60)
