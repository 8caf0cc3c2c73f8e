"""The order of impact levels, component statuses and incident impacts (incidents.levels):
the one place every page, JSON answer and SQL statement gets "which is worse" from."""

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from incidents import levels
from incidents.models import ComponentStatus, ImpactLevel, IncidentImpact

maybe_levels = st.lists(st.sampled_from(levels.BY_RANK))


def test_the_django_choices_are_the_levels_in_order():
    assert tuple(ImpactLevel.values) == levels.LEVELS
    assert tuple(ComponentStatus.values) == levels.COMPONENT_STATUSES
    assert set(IncidentImpact.values) == set(levels.INCIDENT_IMPACTS)


def test_an_outage_is_worse_than_a_partial_outage_is_worse_than_slowness():
    assert [levels.rank(level) for level in (None, "degraded", "partial", "outage")] == [
        0,
        1,
        2,
        3,
    ]
    assert levels.worst(["degraded", None, "outage", "partial"]) == "outage"
    assert levels.worst([None, "degraded"]) == "degraded"


def test_no_impact_at_all_is_none():
    assert levels.worst([]) is None
    assert levels.worst([None, None]) is None
    assert levels.severity(None) == "none"
    assert levels.severity("partial") == "partial"


@given(maybe_levels)
def test_worst_is_the_highest_rank(given_levels):
    worst = levels.worst(given_levels)
    assert levels.rank(worst) == max(map(levels.rank, given_levels), default=0)
    assert worst is None or worst in given_levels


def test_unknown_levels_are_refused():
    with pytest.raises(ValueError, match="unknown impact level 'down'"):
        levels.rank("down")
    with pytest.raises(ValueError, match="unknown impact level 'down'"):
        levels.check_level("down")
    with pytest.raises(ValueError, match="unknown impact level"):
        levels.worst(["outage", "major_outage"])


@pytest.mark.parametrize(
    ("status", "level"),
    [
        ("operational", None),
        ("under_maintenance", None),
        ("degraded_performance", "degraded"),
        ("partial_outage", "partial"),
        ("major_outage", "outage"),
    ],
)
def test_each_component_status_stands_for_a_level(status, level):
    assert levels.level_for_status(status) == level


@pytest.mark.parametrize("level", levels.BY_RANK)
def test_a_level_and_its_component_status_go_both_ways(level):
    assert levels.level_for_status(levels.status_for_level(level)) == level


def test_the_status_of_no_impact_is_operational():
    assert levels.status_for_level(None) == "operational"


def test_unknown_statuses_are_refused():
    with pytest.raises(ValueError, match="unknown component status 'outage'"):
        levels.level_for_status("outage")
    with pytest.raises(ValueError, match="unknown impact level"):
        levels.status_for_level("major_outage")
    with pytest.raises(ValueError, match="unknown component status"):
        levels.worst_status(["operational", "down"])


@given(maybe_levels)
def test_component_statuses_are_ordered_as_their_levels(given_levels):
    statuses = [levels.status_for_level(level) for level in given_levels]
    assert levels.worst_status(statuses) == levels.status_for_level(levels.worst(given_levels))


def test_maintenance_is_worse_than_operational_and_better_than_any_impact():
    assert levels.worst_status([]) == "operational"
    assert levels.worst_status(["under_maintenance", "operational"]) == "under_maintenance"
    assert levels.worst_status(["under_maintenance", "degraded_performance"]) == (
        "degraded_performance"
    )


def test_incident_impacts_in_statuspage_order():
    assert levels.worst_impact([]) == "none"
    assert levels.worst_impact(["minor", "maintenance", "none"]) == "minor"
    assert levels.worst_impact(["major", "critical", "minor"]) == "critical"
    assert levels.worst_impact(["maintenance", "none"]) == "maintenance"
    assert levels.impact_rank("unheard-of") == levels.impact_rank("none") == 0


def test_the_sql_rank_is_built_from_the_levels():
    assert levels.sql_rank("ti.level") == (
        "CASE ti.level WHEN 'degraded' THEN 1 WHEN 'partial' THEN 2 WHEN 'outage' THEN 3 ELSE 0 END"
    )


@pytest.mark.parametrize("column", ["level; DROP TABLE x", "'outage'", "", "a.b.c"])
def test_the_sql_rank_takes_only_a_column_name(column):
    with pytest.raises(ValueError, match="not a column name"):
        levels.sql_rank(column)


def test_the_database_ranks_levels_as_python_does(db):
    row = "SELECT {} AS position, CAST(%s AS VARCHAR(20)) AS level"
    rows = " UNION ALL ".join(row.format(position) for position in range(len(levels.BY_RANK)))
    sql = f"SELECT position, {levels.sql_rank('level')} FROM ({rows}) t ORDER BY position"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, list(levels.BY_RANK))
        ranked = [rank for _, rank in cursor.fetchall()]
    assert ranked == [levels.rank(level) for level in levels.BY_RANK]
