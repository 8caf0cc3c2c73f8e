"""Where an incident's window ends, and the blast radius counted up to there: one rule
(``impact.incident_window_end``, ``queries.incidents_blast_radius``) that the pages,
the operator API and the Statuspage JSON all show."""

from datetime import timedelta

import pytest
from django.test import RequestFactory

from fleet.services import tailnet_create
from incidents.impact import incident_window_end
from incidents.models import Incident
from incidents.queries import incident_blast_radius, incidents_blast_radius
from incidents.services import WindowSpec, incident_create, incident_post_update
from public import api_v2
from tests.conftest import T0

M = timedelta(minutes=1)
NOW = T0 + 60 * M


class TestWindowEnd:
    def test_an_open_window_runs_until_now(self):
        ends = [T0 + 5 * M, None]
        assert incident_window_end(resolved_at=T0 + 9 * M, window_ends=ends, as_of=NOW) == NOW

    def test_closed_windows_end_at_the_last_window_or_the_resolution_whichever_is_later(self):
        ends = [T0 + 5 * M, T0 + 20 * M]
        assert incident_window_end(resolved_at=None, window_ends=ends, as_of=NOW) == T0 + 20 * M
        assert (
            incident_window_end(resolved_at=T0 + 30 * M, window_ends=ends, as_of=NOW) == T0 + 30 * M
        )
        assert (
            incident_window_end(resolved_at=T0 + 10 * M, window_ends=ends, as_of=NOW) == T0 + 20 * M
        )

    def test_without_windows_it_runs_until_resolved(self):
        assert incident_window_end(resolved_at=None, window_ends=[], as_of=NOW) == NOW
        assert incident_window_end(resolved_at=T0 + 7 * M, window_ends=[], as_of=NOW) == T0 + 7 * M


@pytest.fixture
def three_incidents(fleet, committed):
    """acme on use1 and globex on use2 from the start; initech arrives on use1 after
    the second incident's window closed but before it was resolved; late after now."""
    tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - 60 * M)
    tailnet_create(slug="globex", display_name="globex.com", shard="use2", at=T0 - 60 * M)
    tailnet_create(slug="initech", display_name="initech.com", shard="use1", at=T0 + 20 * M)
    tailnet_create(slug="late", display_name="late.com", shard="euw1", at=NOW + M)
    with committed():
        open_windows = incident_create(
            title="use1 down",
            body="x",
            started_at=T0,
            shard_impacts=[WindowSpec("use1", "outage", T0), WindowSpec("use2", "degraded", T0)],
            published=True,
            at=T0,
        )
        resolved_later = incident_create(
            title="use2 slow",
            body="x",
            started_at=T0,
            shard_impacts=[WindowSpec("use2", "degraded", T0, T0 + 10 * M)],
            published=True,
            at=T0,
        )
        incident_post_update(incident=resolved_later, status="resolved", body="ok", at=T0 + 30 * M)
        no_windows = incident_create(title="DNS", body="x", started_at=T0, published=True, at=T0)
        incident_post_update(incident=no_windows, status="resolved", body="ok", at=T0 + 5 * M)
    return tuple(Incident.objects.get(pk=i.pk) for i in (open_windows, resolved_later, no_windows))


def test_each_incident_counts_the_tailnets_that_existed_until_its_window_ended(
    three_incidents,
):
    open_windows, resolved_later, no_windows = three_incidents
    radii = incidents_blast_radius(incidents=three_incidents, as_of=NOW)

    # Still going on: everyone created until now, initech hit from its arrival.
    assert (radii[open_windows.pk].affected, radii[open_windows.pk].total) == (3, 3)
    assert radii[open_windows.pk].by_level == {"outage": 2, "degraded": 1}
    # Resolved 20 minutes after its window closed: initech, created in between, counts.
    assert (radii[resolved_later.pk].affected, radii[resolved_later.pk].total) == (1, 3)
    # No windows: up to its resolution, nobody measured as affected.
    assert (radii[no_windows.pk].affected, radii[no_windows.pk].total) == (0, 2)
    for incident in three_incidents:
        assert incident_blast_radius(incident=incident, as_of=NOW) == radii[incident.pk]


def test_the_statuspage_json_shows_the_same_blast_radius(three_incidents):
    request = RequestFactory().get("/api/v2/incidents.json")
    listed = {int(item["id"]): item for item in api_v2.incidents(request, NOW)["incidents"]}

    assert listed.keys() == {incident.pk for incident in three_incidents}
    for incident in three_incidents:
        radius = incident_blast_radius(incident=incident, as_of=NOW)
        shown = listed[incident.pk]
        assert (shown["affected_tailnets"], shown["affected_tailnets_share"]) == (
            radius.affected,
            radius.share,
        )
    assert listed[three_incidents[0].pk]["affected_shards"] == ["US East 1", "US East 2"]
    assert listed[three_incidents[2].pk]["affected_shards"] == []
