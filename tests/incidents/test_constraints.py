"""Rules the database itself keeps, so no code path can break them."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from fleet.services import tailnet_create
from incidents.models import Incident, Placement, ShardImpact
from tests.conftest import T0

M = timedelta(minutes=1)
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="exclusion constraints exist on PostgreSQL only"
)


def test_a_placement_cannot_end_before_it_starts(fleet):
    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Placement.objects.create(tailnet=acme, shard=fleet["use2"], starts_at=T0, ends_at=T0 - M)


def test_a_tailnet_has_at_most_one_current_placement(fleet):
    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Placement.objects.create(tailnet=acme, shard=fleet["use2"], starts_at=T0 + M)


def test_an_incident_status_must_match_its_kind(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.create(title="x", kind="incident", status="scheduled", started_at=T0)


def test_a_closed_incident_has_a_resolution_time(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.create(title="x", status="resolved", started_at=T0)


@postgres_only
def test_postgres_refuses_overlapping_placements_of_one_tailnet(fleet):
    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0)
    Placement.objects.filter(tailnet=acme).update(ends_at=T0 + 60 * M)
    with pytest.raises(IntegrityError, match="placement_no_overlap"), transaction.atomic():
        Placement.objects.create(
            tailnet=acme, shard=fleet["use2"], starts_at=T0 + 30 * M, ends_at=T0 + 90 * M
        )
    # Back to back is fine: [a, b) and [b, c) do not overlap.
    Placement.objects.create(tailnet=acme, shard=fleet["use2"], starts_at=T0 + 60 * M)


@postgres_only
def test_postgres_refuses_overlapping_windows_of_one_incident_on_one_shard(fleet):
    incident = Incident.objects.create(title="x", started_at=T0)
    ShardImpact.objects.create(
        incident=incident, shard=fleet["use1"], level="outage", starts_at=T0, ends_at=T0 + 10 * M
    )
    with pytest.raises(IntegrityError, match="shardimpact_no_overlap"), transaction.atomic():
        ShardImpact.objects.create(
            incident=incident, shard=fleet["use1"], level="partial", starts_at=T0 + 5 * M
        )
