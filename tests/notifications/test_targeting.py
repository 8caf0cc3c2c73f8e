"""Exactly the affected tailnets hear of an incident, about their own time, once.

acme (alice's tailnet) lives on use1 (US East 1), globex (bob's) on use2; each has
a webhook at the test's receiver. At T0 US East 1's control plane goes down.
"""

import json
from datetime import timedelta

import pytest

from fleet.services import fleet_events_ingest
from incidents.models import Incident, TailnetImpact
from incidents.services import (
    WindowSpec,
    incident_create,
    incident_post_update,
    incident_publish,
    incident_resolve,
    tailnet_impacts_recompute,
)
from notifications import delivery
from notifications.messages import notice_for
from notifications.models import Delivery
from tests.conftest import T0

from .conftest import mailbox, webhook

M = timedelta(minutes=1)


def received(sink, path):
    return [json.loads(r.body) for r in sink.received if r.path == path]


def kinds(sink, path):
    return [payload["type"] for payload in received(sink, path)]


def migrate(tailnet, shard, at, event_id):
    fleet_events_ingest(
        events=[
            {
                "id": event_id,
                "type": "tailnet.migrated",
                "at": at.isoformat(),
                "tailnet": tailnet,
                "shard": shard,
            }
        ],
        now=at,
    )


@pytest.fixture
def hooks(customers, sink):
    return {
        "acme": webhook(customers["acme"], sink.url("/acme")),
        "globex": webhook(customers["globex"], sink.url("/globex")),
    }


@pytest.fixture
def use1_down(hooks, committed, time_machine):
    """US East 1 down from T0, published two minutes in."""
    time_machine.move_to(T0 + 2 * M, tick=False)
    with committed():
        return incident_create(
            title="US East 1 control plane unavailable",
            body="We are investigating.",
            started_at=T0,
            shard_impacts=[WindowSpec("use1", "outage", T0)],
            published=True,
            at=T0 + 2 * M,
        )


def test_only_the_tailnet_on_the_failing_shard_is_told_it_is_affected(use1_down, sink):
    assert kinds(sink, "/acme") == ["incident.affected"]
    assert kinds(sink, "/globex") == []
    payload = received(sink, "/acme")[0]
    assert payload["tailnet"] == "acme"
    assert payload["incident"]["id"] == use1_down.pk
    assert payload["incident"]["name"] == "US East 1 control plane unavailable"
    assert payload["incident"]["url"].endswith(f"/incidents/{use1_down.pk}/")
    assert payload["affected"] == {
        "seconds": 120,
        "windows": [{"from": "2026-01-05T10:00:00Z", "to": None, "shard": "US East 1"}],
    }


def test_resolution_tells_each_affected_tailnet_its_exact_time(
    use1_down, sink, committed, time_machine
):
    time_machine.move_to(T0 + 10 * M + 5 * timedelta(seconds=1), tick=False)
    with committed():
        incident_resolve(incident=use1_down, body="Fixed.")

    assert kinds(sink, "/acme") == ["incident.affected", "incident.resolved"]
    resolved = received(sink, "/acme")[1]
    seconds = sum(
        TailnetImpact.objects.filter(incident=use1_down, tailnet__slug="acme").values_list(
            "seconds", flat=True
        )
    )
    assert resolved["affected"]["seconds"] == seconds == 605
    assert resolved["affected"]["windows"] == [
        {"from": "2026-01-05T10:00:00Z", "to": "2026-01-05T10:10:05Z", "shard": "US East 1"}
    ]
    assert kinds(sink, "/globex") == []


def test_a_tailnet_that_migrates_onto_the_failing_shard_is_told_when_it_becomes_affected(
    use1_down, sink, committed, time_machine
):
    time_machine.move_to(T0 + 4 * M, tick=False)
    with committed():
        migrate("globex", "use1", T0 + 3 * M, "globex-2")

    assert kinds(sink, "/globex") == ["incident.affected"]
    assert received(sink, "/globex")[0]["affected"]["windows"] == [
        {"from": "2026-01-05T10:03:00Z", "to": None, "shard": "US East 1"}
    ]


def test_a_tailnet_that_migrates_away_is_told_its_impact_ended(
    use1_down, sink, committed, time_machine
):
    time_machine.move_to(T0 + 8 * M, tick=False)
    with committed():
        migrate("acme", "use2", T0 + 7 * M, "acme-2")

    assert kinds(sink, "/acme") == ["incident.affected", "incident.impact_ended"]
    ended = received(sink, "/acme")[1]
    assert ended["affected"]["seconds"] == 420
    assert notice_for(Delivery.objects.get(type="incident.impact_ended")).text.startswith(
        "acme.com's impact ended at 10:07 UTC: it was affected from 10:00 to 10:07 UTC "
        "(7 min) on US East 1; existing connections kept working;"
    )


def test_updates_reach_the_tailnets_affected_when_they_are_posted(
    use1_down, sink, committed, time_machine
):
    time_machine.move_to(T0 + 5 * M, tick=False)
    with committed():
        incident_post_update(incident=use1_down, status="identified", body="A bad deploy.")

    assert kinds(sink, "/acme") == ["incident.affected", "incident.updated"]
    assert kinds(sink, "/globex") == []


def test_a_draft_tells_no_one_until_it_is_published(hooks, sink, committed, time_machine):
    time_machine.move_to(T0 + 2 * M, tick=False)
    with committed():
        draft = incident_create(
            title="US East 1 down",
            body="Investigating.",
            started_at=T0,
            shard_impacts=[WindowSpec("use1", "outage", T0)],
            published=False,
            at=T0 + 2 * M,
        )
    assert sink.received == []
    assert not Delivery.objects.exists()

    time_machine.move_to(T0 + 3 * M, tick=False)
    with committed():
        incident_publish(incident=draft)
    assert kinds(sink, "/acme") == ["incident.affected"]


def test_recomputing_again_and_again_owes_nothing_twice(use1_down, sink, time_machine):
    for minute in (3, 4, 5):
        time_machine.move_to(T0 + minute * M, tick=False)
        tailnet_impacts_recompute(incident_id=use1_down.pk)
    delivery.deliver_due()

    assert Delivery.objects.filter(type="incident.affected").count() == 1
    assert kinds(sink, "/acme") == ["incident.affected"]


def test_a_worker_killed_mid_send_resends_with_the_same_id(hooks, sink, committed, time_machine):
    time_machine.move_to(T0 + 2 * M, tick=False)
    with committed():
        incident_create(
            title="US East 1 down",
            body="Investigating.",
            started_at=T0,
            shard_impacts=[WindowSpec("use1", "outage", T0)],
            published=False,
            at=T0 + 2 * M,
        )
    incident_publish(incident=Incident.objects.get())  # no commit: nothing sends it yet
    # A worker claims the row and dies before sending: nothing is recorded.
    claimed = delivery.deliveries_claim(now=T0 + 3 * M)
    assert len(claimed) == 1
    delivery.deliver_due()
    assert sink.received == []  # leased: not due again yet

    time_machine.move_to(T0 + 3 * M + delivery.LEASE, tick=False)
    delivery.deliver_due()
    delivery.deliver_due()

    assert len(sink.received) == 1
    assert sink.received[0].headers["X-Statuspage-Delivery"] == str(claimed[0])
    assert json.loads(sink.received[0].body)["id"] == str(claimed[0])


def test_a_deleted_tailnet_hears_nothing_new(customers, sink, committed, time_machine):
    webhook(customers["acme"], sink.url("/acme"))
    time_machine.move_to(T0, tick=False)
    with committed():
        fleet_events_ingest(
            events=[
                {"id": "acme-x", "type": "tailnet.deleted", "at": T0.isoformat(), "tailnet": "acme"}
            ],
            now=T0,
        )
    time_machine.move_to(T0 + 2 * M, tick=False)
    with committed():
        incident_create(
            title="US East 1 down",
            body="Investigating.",
            started_at=T0 - 5 * M,
            shard_impacts=[WindowSpec("use1", "outage", T0 - 5 * M)],
            published=True,
            at=T0 + 2 * M,
        )

    assert TailnetImpact.objects.filter(tailnet__slug="acme").exists()  # its history stays
    assert sink.received == []


def test_an_email_recipient_gets_the_tailnets_time_in_words(
    customers, smtp, committed, time_machine
):
    mailbox(customers["acme"], "oncall@acme.com")
    time_machine.move_to(T0 + 2 * M, tick=False)
    with committed():
        incident = incident_create(
            title="US East 1 control plane unavailable",
            body="Investigating.",
            started_at=T0,
            shard_impacts=[WindowSpec("use1", "outage", T0)],
            published=True,
            at=T0 + 2 * M,
        )
    time_machine.move_to(T0 + 5 * M, tick=False)
    with committed():
        incident_resolve(incident=incident)

    subjects = [message["Subject"] for message in smtp.messages]
    assert subjects == [
        "[acme.com] Affected: US East 1 control plane unavailable",
        "[acme.com] Resolved: US East 1 control plane unavailable",
    ]
    resolved = smtp.messages[1]
    text = resolved.get_body(preferencelist=("plain",)).get_content()
    assert text.startswith(
        "US East 1 control plane unavailable is resolved. acme.com was affected from "
        "10:00 to 10:05 UTC (5 min) on US East 1; existing connections kept working;"
    )
    assert resolved.get_body(preferencelist=("html",)) is not None
    assert resolved["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert resolved["List-Unsubscribe"].strip().startswith("<https://")
    assert resolved["To"] == "oncall@acme.com"


def test_a_migration_between_two_failing_shards_is_one_stretch_of_affected_time(
    hooks, sink, committed, time_machine
):
    time_machine.move_to(T0 + 2 * M, tick=False)
    with committed():
        incident_create(
            title="US East down",
            body="Investigating.",
            started_at=T0,
            shard_impacts=[WindowSpec("use1", "outage", T0), WindowSpec("use2", "outage", T0)],
            published=True,
            at=T0 + 2 * M,
        )
    time_machine.move_to(T0 + 4 * M, tick=False)
    with committed():
        migrate("acme", "use2", T0 + 3 * M, "acme-2")
    time_machine.move_to(T0 + 7 * M, tick=False)
    with committed():
        migrate("acme", "euw1", T0 + 6 * M, "acme-3")

    assert kinds(sink, "/acme") == ["incident.affected", "incident.impact_ended"]
    ended = received(sink, "/acme")[1]
    assert ended["affected"]["seconds"] == 360
    assert [w["shard"] for w in ended["affected"]["windows"]] == ["US East 1", "US East 2"]
    assert Delivery.objects.get(type="incident.impact_ended").window_start == T0 + 6 * M
