"""Feed health, as Oscar the operator sees it: in /metrics and in the admin's event
log, where he can also correct the fleet with an event of his own."""

import re

import pytest
from rest_framework.test import APIClient

from fleet.models import FleetEvent, FleetRejection
from fleet.services import tailnet_create
from incidents.models import Placement, Tailnet
from tests.conftest import T0

from .conftest import NOW, M, event, migrated


def _post(secret, events):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.post("/api/v1/fleet/events", {"events": events}, format="json")


def _metric(client, name):
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return None if found is None else float(found.group(1))


def test_metrics_show_the_feed_flowing_refusing_and_stranding(client, fleet, frozen, control_plane):
    # acme's rows were written before the feed existed: no event behind them yet.
    acme = Tailnet.objects.create(slug="acme", display_name="acme.com", created_at=T0)
    Placement.objects.create(tailnet=acme, shard=fleet["use1"], starts_at=T0)
    assert _metric(client, "statuspage_fleet_events_per_minute") == 0
    assert _metric(client, "statuspage_fleet_newest_event_age_seconds") is None

    assert _post(control_plane, [migrated("cp:1", NOW - M, "acme", "use2")]).status_code == 200
    assert _post(control_plane, [migrated("cp:2", NOW, "acme", "nowhere")]).status_code == 400
    assert _post(control_plane, [migrated("cp:1", NOW, "acme", "use1")]).status_code == 409
    retired = event("cp:3", "shard.retired", NOW, shard="use2")
    assert _post(control_plane, [retired]).status_code == 200

    assert _metric(client, "statuspage_fleet_newest_event_age_seconds") == 0
    # The backfill of acme's history, the migration and the retirement: 3 in 5 minutes.
    assert _metric(client, "statuspage_fleet_events_per_minute") == pytest.approx(
        FleetEvent.objects.count() / 5
    )
    assert _metric(client, "statuspage_fleet_rejected_batches") == 2
    assert _metric(client, "statuspage_fleet_tailnets_on_retired_shards") == 1
    assert list(FleetRejection.objects.order_by("received_at").values_list("status", "events")) == [
        (400, 1),
        (409, 1),
    ]


def test_oscar_corrects_a_placement_with_an_event_and_the_log_keeps_it(
    oscar, fleet, frozen, control_plane
):
    tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0)

    response = oscar.post(
        "/admin/fleet/fleetevent/add/",
        {"type": "tailnet.migrated", "at": (NOW - 10 * M).strftime("%Y-%m-%d %H:%M:%S"),
         "tailnet": "acme", "shard": "use2"},
    )  # fmt: skip

    assert response.status_code == 302, response.content.decode()[:2000]
    stored = FleetEvent.objects.get(source="admin", type="tailnet.migrated")
    assert (stored.type, stored.tailnet, stored.shard) == ("tailnet.migrated", "acme", "use2")
    current = Placement.objects.get(tailnet__slug="acme", ends_at__isnull=True)
    assert (current.shard.slug, current.starts_at) == ("use2", NOW - 10 * M)
    page = oscar.get("/admin/fleet/fleetevent/?q=acme").content.decode()
    assert "tailnet.migrated" in page
    assert "events/min" in page
    # The log is kept as it arrived.
    assert oscar.get(f"/admin/fleet/fleetevent/{stored.pk}/delete/").status_code == 403


def test_a_correction_the_feed_refuses_is_shown_and_writes_nothing(oscar, fleet, frozen):
    tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0)
    before = FleetEvent.objects.count()

    response = oscar.post(
        "/admin/fleet/fleetevent/add/",
        {"type": "tailnet.migrated", "at": NOW.strftime("%Y-%m-%d %H:%M:%S"),
         "tailnet": "acme", "shard": "nowhere"},
    )  # fmt: skip

    assert response.status_code == 200
    assert "nowhere" in response.content.decode()
    assert FleetEvent.objects.count() == before
    assert Placement.objects.get(tailnet__slug="acme").shard.slug == "use1"


def test_a_deleted_tailnets_token_stops_working_and_works_again_when_it_returns(
    fleet, frozen, control_plane
):
    from plumbing.tokens import api_token_create

    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0)
    _, dashboard = api_token_create(name="acme dashboard", scope="tailnet", tailnet=acme)
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {dashboard}")
    assert reader.get("/api/v1/tailnets/acme/status").status_code == 200  # and now cached

    gone = event("cp:9", "tailnet.deleted", NOW - M, tailnet="acme")
    assert _post(control_plane, [gone]).status_code == 200
    assert reader.get("/api/v1/tailnets/acme/status").status_code == 401

    back = event("cp:10", "tailnet.created", NOW, tailnet="acme", shard="use2",
                 display_name="acme.com")  # fmt: skip
    assert _post(control_plane, [back]).status_code == 200
    assert reader.get("/api/v1/tailnets/acme/status").status_code == 200
