"""Plain words for incidents: what kept working, what did not, for whom.

Every component kind at every impact level, while it happens and afterwards, says
something true about that kind of failure; no fixed sentence."""

import pytest

from incidents.impact import BlastRadius
from incidents.levels import LEVELS
from incidents.wording import KINDS, Affected, describe, what_happened, who

COORDINATION_DOWN_PAST = (
    "Existing connections kept working; "
    "logging in, approving devices and changing ACLs were blocked."
)


def words(kind, level, phase, incident_kind="incident", **extra):
    return describe(
        affected=[Affected(kind=kind, level=level, name=extra.pop("name", "Widget"))],
        incident_kind=incident_kind,
        phase=phase,
        **extra,
    )


# --- The coordination service: the motivating post's questions -------------------------


def test_a_coordination_outage_blocks_the_control_plane_but_not_connections():
    assert words("coordination", "outage", "past").sentence == COORDINATION_DOWN_PAST


def test_while_it_is_going_on_it_speaks_in_the_present():
    assert words("coordination", "outage", "ongoing").sentence == (
        "Existing connections keep working; "
        "logging in, approving devices and changing ACLs are blocked."
    )


def test_a_slow_coordination_service_is_slow_not_blocked():
    result = words("coordination", "degraded", "ongoing")
    assert result.headline == "Slow, not down"
    assert "slow, not blocked" in result.sentence
    assert "are blocked" not in result.sentence
    assert result.sentence.startswith("Existing connections keep working")


def test_a_partial_coordination_outage_says_some_attempts_fail():
    result = words("coordination", "partial", "past")
    assert result.headline == "Partial outage: some requests fail"
    assert result.sentence == (
        "Existing connections kept working; "
        "some attempts to log in, approve devices or change ACLs failed."
    )


def test_an_outage_is_called_an_outage():
    assert words("coordination", "outage", "ongoing").headline == "Outage"
    assert words("coordination", "outage", "past", incident_kind="maintenance").headline == (
        "Planned outage"
    )


# --- Each kind has its own consequences -------------------------------------------------


def test_the_admin_console_being_down_blocks_console_actions_only():
    sentence = words("admin_console", "outage", "ongoing").sentence
    assert "the admin console is down" in sentence
    assert "managing devices, users and ACLs there is blocked" in sentence
    assert sentence.startswith("Existing connections and devices already logged in keep working")


def test_the_api_being_down_fails_automation():
    sentence = words("api", "outage", "past").sentence
    assert "API requests (automation of devices, keys and ACLs) failed" in sentence


def test_a_login_outage_blocks_new_logins_not_logged_in_devices():
    sentence = words("login", "outage", "ongoing").sentence
    assert "new logins are blocked" in sentence
    assert "devices already logged in keep working" in sentence
    assert "logging in, approving devices" not in sentence


def test_a_derp_outage_does_break_relayed_connections():
    result = words("derp", "outage", "ongoing")
    assert "relayed connections break" in result.sentence
    # It must not claim that existing connections keep working: relayed ones don't.
    assert "existing connections" not in result.sentence.lower()
    assert result.sentence.startswith(
        "Direct connections between devices and logging in, approving devices and "
        "changing ACLs keep working"
    )


def test_slow_relays_are_slow_not_broken():
    sentence = words("derp", "degraded", "past").sentence
    assert "relayed connections were slower than usual, not broken" in sentence


def test_an_unknown_kind_names_itself_and_claims_nothing_else():
    assert words("other", "outage", "ongoing", name="Billing").sentence == "Billing is down."


def test_several_components_each_say_their_part_once():
    result = describe(
        affected=[
            Affected("coordination", "outage", "Coordination (US East)"),
            Affected("coordination", "outage", "Coordination (EU)"),
            Affected("admin_console", "degraded", "Admin console"),
        ],
        incident_kind="incident",
        phase="past",
    )
    assert result.severity == "outage"
    assert result.sentence == (
        "Existing connections and devices already logged in kept working; "
        "logging in, approving devices and changing ACLs were blocked; "
        "the admin console was slow, not blocked."
    )


def test_relays_down_with_coordination_down_claims_only_direct_connections():
    sentence = what_happened(
        affected=[Affected("coordination", "outage"), Affected("derp", "outage")],
        incident_kind="incident",
        phase="past",
    )
    assert sentence.startswith("Direct connections between devices kept working;")
    assert "logging in, approving devices and changing ACLs were blocked" in sentence
    assert "relayed connections broke" in sentence


# --- Maintenance and incidents without impact -----------------------------------------------


@pytest.mark.parametrize(
    ("phase", "sentence", "headline"),
    [
        ("upcoming", "Nothing is expected to be affected.", "No impact expected"),
        ("ongoing", "Nothing is affected.", "No impact expected"),
        ("past", "Nothing was affected.", "No impact"),
    ],
)
def test_maintenance_without_impact_affects_nothing(phase, sentence, headline):
    result = describe(affected=[], incident_kind="maintenance", phase=phase)
    assert (result.severity, result.sentence, result.headline) == ("none", sentence, headline)
    assert result.who == ""


def test_a_component_named_without_impact_is_no_impact():
    result = words("coordination", None, "ongoing", incident_kind="maintenance")
    assert result.sentence == "Nothing is affected."


def test_an_incident_still_being_investigated_says_so():
    result = describe(affected=[], incident_kind="incident", phase="ongoing")
    assert result.sentence == "We're still finding out what is affected."
    assert result.headline == "Impact not yet known"


def test_upcoming_maintenance_with_planned_impact_speaks_of_the_future():
    result = words("coordination", "outage", "upcoming", incident_kind="maintenance")
    assert result.sentence == (
        "Existing connections will keep working; "
        "logging in, approving devices and changing ACLs will be blocked."
    )


# --- Every kind x level x phase ----------------------------------------------------------

EXPECTED_HIT = {
    ("coordination", "outage"): "blocked",
    ("coordination", "partial"): "fail",
    ("coordination", "degraded"): "slow, not blocked",
    ("admin_console", "outage"): "blocked",
    ("admin_console", "partial"): "fail",
    ("admin_console", "degraded"): "slow, not blocked",
    ("login", "outage"): "blocked",
    ("login", "partial"): "fail",
    ("login", "degraded"): "slow, not blocked",
    ("derp", "outage"): "break",
    ("derp", "partial"): "break",
    ("derp", "degraded"): "slower than usual, not broken",
    ("api", "outage"): "fail",
    ("api", "partial"): "fail",
    ("api", "degraded"): "slow, not blocked",
    ("other", "outage"): "down",
    ("other", "partial"): "fail",
    ("other", "degraded"): "slow, not blocked",
}
PAST_FORMS = {
    "blocked": "blocked",
    "fail": "failed",
    "break": "broke",
    "down": "was down",
    "slow, not blocked": "slow, not blocked",
    "slower than usual, not broken": "slower than usual, not broken",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("phase", ["ongoing", "past"])
def test_every_kind_and_level_says_what_it_does(kind, level, phase):
    result = words(kind, level, phase, name="Billing")
    expected = EXPECTED_HIT[(kind, level)]
    if phase == "past":
        expected = PAST_FORMS[expected]
    assert expected in result.sentence
    assert result.severity == level
    assert result.sentence.endswith(".")
    assert result.sentence[0].isupper()
    # Tense: nothing ongoing speaks in the past, nothing past in the present.
    if phase == "ongoing":
        assert " were " not in result.sentence
        assert "kept working" not in result.sentence
    else:
        assert " are " not in result.sentence
        assert "keep working" not in result.sentence
    # The headline answers "an outage, or just slow?".
    assert (
        result.headline
        == {
            "outage": "Outage",
            "partial": "Partial outage: some requests fail",
            "degraded": "Slow, not down",
        }[level]
    )


def test_an_unknown_level_is_refused():
    with pytest.raises(ValueError, match="unknown impact level"):
        words("coordination", "catastrophic", "past")


# --- Who ------------------------------------------------------------------------------


def test_who_is_the_measured_blast_radius_and_where():
    radius = BlastRadius(affected=3, total=15000, by_level={"outage": 3})
    assert who(blast_radius=radius, places=["US East 3"]) == (
        "3 tailnets, 0.02% of tailnets, on US East 3"
    )


def test_who_separates_the_blocked_from_the_merely_slowed():
    radius = BlastRadius(affected=412, total=5000, by_level={"outage": 40, "degraded": 372})
    assert who(blast_radius=radius, places=["US East 2", "US East 3"]) == (
        "412 tailnets, 8.24% of tailnets, on US East 2 and US East 3 "
        "(40 with failures, 372 only slowed)"
    )


def test_who_before_the_affected_tailnets_are_counted():
    radius = BlastRadius(affected=0, total=100)
    assert who(blast_radius=radius, places=["US East 3"]) == (
        "The tailnets on US East 3 (still being counted)"
    )


def test_a_shared_component_affects_anyone_using_it():
    result = words("derp", "degraded", "past", name="DERP relays")
    assert result.who == "Any tailnet using DERP relays (not measured per tailnet)"


def test_a_shard_incident_uses_its_blast_radius():
    radius = BlastRadius(affected=1, total=2, by_level={"outage": 1})
    result = words("coordination", "outage", "past", blast_radius=radius, places=["US East 1"])
    assert result.who == "1 tailnet, 50.00% of tailnets, on US East 1"


def test_one_shard_down_and_its_neighbours_slow_each_get_their_words():
    result = describe(
        affected=[
            Affected("coordination", "degraded", "US East", ("US East 2", "US East 4")),
            Affected("coordination", "outage", "US East", ("US East 3",)),
            Affected("derp", "degraded", "DERP relays"),
        ],
        incident_kind="maintenance",
        phase="ongoing",
    )
    assert result.headline == "Planned outage"
    assert result.sentence == (
        "Existing connections keep working; "
        "on US East 3, logging in, approving devices and changing ACLs are blocked; "
        "on US East 2 and US East 4, they are only slow; "
        "relayed connections are slower than usual, not broken."
    )
