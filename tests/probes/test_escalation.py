"""An incident detection opened follows the worst it has seen: impact, component
status and title, with a public update saying what changed; never back down while
it is open, and never over what an operator set. Slowness ends a couple of rounds
after the answers are fast again."""

import pytest
from django.contrib.auth import get_user_model

from incidents.models import AuditEntry, Incident, IncidentComponent, ShardImpact
from incidents.services import incident_components_save, incident_edit
from tests.conftest import T0

from .conftest import ROUND

NYC = ROUND / 30_000  # nyc probes 1 ms after ams in each round (see run_rounds)


def _component_status(incident: Incident, slug: str = "coordination-us-east") -> str:
    return IncidentComponent.objects.get(incident=incident, component__slug=slug).status


def _shown(incident: Incident) -> tuple[str, str, str]:
    incident.refresh_from_db()
    return incident.impact, _component_status(incident), incident.title


def test_an_outage_alone_is_a_major_partial_outage(fleet, run_rounds):
    """What escalation must reach: the same outage opened on its own."""
    run_rounds("use1", {"ams": "xxxx", "nyc": "xxxx"})
    assert _shown(Incident.objects.get()) == (
        "major",
        "partial_outage",  # one of the component's two shards
        "Coordination (us-east): control plane unavailable for some tailnets",
    )


def test_the_only_shard_of_a_component_down_is_a_major_outage_of_it(fleet, run_rounds):
    """The page's rule for a component from its shards (``component_status_from_shards``)."""
    run_rounds("euw1", {"ams": "xxxx", "nyc": "xxxx"})
    incident = Incident.objects.get()
    assert _component_status(incident, "coordination-eu-west") == "major_outage"


def test_a_slow_shard_that_stops_answering_escalates_its_incident(fleet, run_rounds):
    run_rounds("use1", {"ams": "sssssxxxx", "nyc": "sssssxxxx"})

    incident = Incident.objects.get()
    assert _shown(incident) == (
        "major",
        "partial_outage",
        "Coordination (us-east): control plane unavailable for some tailnets",
    )
    update = incident.updates.order_by("-display_at", "-id").first()
    assert update is not None
    assert update.status == "investigating"
    assert update.body.startswith(
        "Escalated: US East 1 now fails to answer our probes since 10:02 UTC; impact raised "
        "from minor to major, Coordination (us-east) from degraded performance to partial "
        "outage. "
    )
    assert update.affected_components == [
        {
            "code": "coordination-us-east",
            "name": "Coordination (us-east)",
            "old_status": "degraded_performance",
            "new_status": "partial_outage",
        }
    ]
    assert (
        AuditEntry.objects.filter(incident=incident, action="incident.edit")
        .values_list("system", "changes")
        .get()
    ) == (
        "probe",
        {
            "impact": ["minor", "major"],
            "title": [
                "Coordination (us-east): slow control plane for some tailnets",
                "Coordination (us-east): control plane unavailable for some tailnets",
            ],
        },
    )


def test_another_shard_failing_joins_the_slow_incident_and_escalates_it(fleet, run_rounds):
    run_rounds("use1", {"ams": "ssssssssss", "nyc": "ssssssssss"})
    run_rounds("use2", {"ams": "xxxx", "nyc": "xxxx"}, start=T0 + 4 * ROUND)

    incident = Incident.objects.get()
    assert set(ShardImpact.objects.values_list("shard__slug", "level")) == {
        ("use1", "degraded"),
        ("use2", "outage"),
    }
    assert _shown(incident) == (
        "major",
        "partial_outage",  # one shard down, one slow
        "Coordination (us-east): control plane unavailable for some tailnets",
    )
    assert "Escalated: US East 2 now fails to answer our probes since 10:02 UTC" in (
        incident.updates.first().body
    )


def test_every_shard_of_a_component_down_is_a_major_outage_of_it(fleet, run_rounds):
    run_rounds("use1", {"ams": "xxxxxxxx", "nyc": "xxxxxxxx"})
    run_rounds("use2", {"ams": "xxxx", "nyc": "xxxx"}, start=T0 + 4 * ROUND)

    incident = Incident.objects.get()
    assert _shown(incident)[:2] == ("major", "major_outage")
    assert incident.updates.first().body.startswith(
        "Escalated: US East 2 now fails to answer our probes since 10:02 UTC; "
        "Coordination (us-east) from partial outage to major outage. "
    )


def test_escalation_leaves_what_an_operator_set_alone(fleet, run_rounds):
    operator = get_user_model().objects.create_user("oncall", "oncall@example.com", "x")
    run_rounds("use1", {"ams": "sssss", "nyc": "sssss"})
    incident = Incident.objects.get()
    incident_edit(incident=incident, changes={"title": "Slow logins in us-east"}, by=operator)
    # Not slow for everyone, the operator says: the component stays as they set it.
    incident_components_save(incident=incident, statuses={fleet["us"]: "operational"}, by=operator)

    run_rounds("use1", {"ams": "xxxx", "nyc": "xxxx"}, start=T0 + 5 * ROUND)

    assert _shown(incident) == ("major", "operational", "Slow logins in us-east")
    assert incident.updates.first().body.startswith(
        "Escalated: US East 1 now fails to answer our probes since 10:02 UTC; impact raised "
        "from minor to major. "
    )


def test_an_operator_who_set_everything_gets_no_automatic_update(fleet, run_rounds):
    operator = get_user_model().objects.create_user("oncall", "oncall@example.com", "x")
    run_rounds("use1", {"ams": "sssss", "nyc": "sssss"})
    incident = Incident.objects.get()
    incident_edit(
        incident=incident, changes={"title": "Slow logins", "impact": "minor"}, by=operator
    )  # the impact unchanged: nothing is recorded for it
    incident_edit(incident=incident, changes={"impact": "critical"}, by=operator)
    incident_edit(incident=incident, changes={"impact": "minor"}, by=operator)
    incident_components_save(incident=incident, statuses={fleet["us"]: "operational"}, by=operator)
    updates = incident.updates.count()

    run_rounds("use1", {"ams": "xxxx", "nyc": "xxxx"}, start=T0 + 5 * ROUND)

    assert _shown(incident) == ("minor", "operational", "Slow logins")
    assert incident.updates.count() == updates


def test_an_outage_that_turns_into_slowness_stays_a_major_incident(fleet, run_rounds):
    run_rounds("use1", {"ams": "xxxxxsssss", "nyc": "xxxxxsssss"})

    incident = Incident.objects.get()
    assert list(ShardImpact.objects.order_by("starts_at").values_list("level", "ends_at")) == [
        ("outage", T0 + 5 * ROUND),
        ("degraded", None),
    ]
    assert _shown(incident) == (
        "major",
        "partial_outage",
        "Coordination (us-east): control plane unavailable for some tailnets",
    )
    assert incident.updates.count() == 1  # the opening one: nothing escalated


def test_a_slow_shard_resolves_two_rounds_after_answering_fast_again(fleet, run_rounds):
    run_rounds(
        "use1", {"ams": "ssssss..", "nyc": "ssssss..", "sfo": "ssssss.."}
    )  # two fast rounds, not five minutes of them

    incident = Incident.objects.get()
    assert incident.status == "resolved"
    window = ShardImpact.objects.get()
    assert (window.level, window.starts_at, window.ends_at) == (
        "degraded",
        T0,
        T0 + 6 * ROUND,  # the first fast answer
    )


@pytest.mark.parametrize("marks", ["..s.....s.....", "..ss..........", "s...........s."])
def test_a_slow_answer_now_and_then_opens_nothing(fleet, run_rounds, marks):
    run_rounds("use1", {"ams": marks, "nyc": ".............."})
    assert not Incident.objects.exists()
