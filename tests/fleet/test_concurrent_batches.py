"""Several control-plane hosts post at once, about the same tailnets, in different
orders, some creating the same new tailnets and shard with the same events: no
batch deadlocks or fails, each event is stored once, and the placements are what all
the events together say (PostgreSQL: real row locks between connections)."""

import json
import random
import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.test import Client

from fleet.derive import tailnet_derive
from fleet.events import Event
from fleet.models import FleetEvent
from fleet.services import fleet_events_ingest
from incidents.models import Placement, Shard, Tailnet
from incidents.services import WindowSpec, incident_create
from plumbing.tokens import api_token_create
from tests.conftest import T0, fleet_create

from .conftest import created, event, migrated

S = timedelta(seconds=1)
HOSTS = 6
TAILNETS = [f"t{n:03d}" for n in range(300)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_touching_the_same_tailnets_all_commit():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: concurrent transactions on separate connections")
    fleet_create(T0 - timedelta(days=365))
    secret = api_token_create(name="control plane", scope="fleet")[1]
    fleet_events_ingest(events=[created(f"{slug}-1", T0, slug, "use1") for slug in TAILNETS])
    incident_create(
        title="use1 down",
        body="x",
        started_at=T0,
        shard_impacts=[WindowSpec("use1", "outage", T0 + 100 * S)],
        published=True,
        at=T0,
    )
    # Every host creates the same new tailnets; two of them also add the same shard.
    shared = [created(f"new{n}-1", T0 + S, f"new{n}", "use2") for n in range(5)]
    use3 = [
        event(
            "use3-added",
            "shard.added",
            T0,
            shard="use3",
            region="us-east",
            public_name="US East 3",
            probe_url="",
        ),
        created("hooli-1", T0 + S, "hooli", "use3"),
    ]
    batches = []
    for host in range(HOSTS):
        own = [
            migrated(f"h{host}-{slug}", T0 + (host * 400 + n + 2) * S, slug, f"use{1 + host % 2}")
            for n, slug in enumerate(TAILNETS)
        ]
        batch = own + shared + (use3 if host < 2 else [])
        random.Random(host).shuffle(batch)
        batches.append(batch)

    barrier = threading.Barrier(HOSTS)
    answers, errors = [], []

    def post(batch):
        try:
            connection.ensure_connection()  # connected first, so they start together
            barrier.wait()
            response = Client().post(
                "/api/v1/fleet/events",
                json.dumps({"events": batch}),
                content_type="application/json",
                headers={"Authorization": f"Bearer {secret}"},
            )
            answers.append((response.status_code, response.json()))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=post, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert [status for status, _ in answers] == [200] * HOSTS
    stored = len(TAILNETS) * HOSTS + len(shared) + len(use3)
    assert sum(body["accepted"] for _, body in answers) == stored
    assert FleetEvent.objects.count() == len(TAILNETS) + stored
    assert Shard.objects.filter(slug="use3").count() == 1
    for tailnet in Tailnet.objects.all():
        events = [
            Event(e.id, e.type, e.at, e.tailnet, e.shard, e.payload)
            for e in FleetEvent.objects.filter(tailnet=tailnet.slug)
        ]
        assert (
            tuple(
                Placement.objects.filter(tailnet=tailnet)
                .order_by("starts_at")
                .values_list("shard__slug", "starts_at", "ends_at")
            )
            == tailnet_derive(tailnet.slug, events).placements
        )
