"""/api/v2/*.json as a Statuspage client sees it.

Our output is compared with real Statuspage responses kept in public repositories'
test data (abridged copies in ``fixtures/``, see fixtures/README.md):

* ``github-summary.json``: sergeyshevch/statuspage-exporter, ``example.json``,
  commit eec47cbb7f44a9172ca3189dce55e75e5bc1944e
* ``instructure-summary.json``: atc0005/check-statuspage,
  ``testdata/summary/instructure-summary.json``,
  commit cdfc7959850f2641cff76df96021ed7de1778ec0
* ``renku-summary-maintenance.json``: SwissDataScienceCenter/renku-ui,
  ``client/src/api-client/test-samples/statuspage.js``,
  commit 4ebe1ceaa7e100c74ade549e773a1f49fdbbe35b
* ``github-components.json``: atc0005/check-statuspage,
  ``testdata/components/github-components-with-problem.json``,
  commit 9bfb84128a2c0116a6c0a6d9eb6f972adc6b50d7

The stories: the fleet of ``tests/conftest.py`` (coordination in us-east on shards
use1 and use2, in eu-west on euw1, both in the "Coordination service" group) plus an
ungrouped admin console; acme's tailnet lives on use1, globex's on euw1, initech's
on use2.
"""

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from fleet.services import tailnet_create
from incidents.models import (
    Component,
    ComponentGroup,
    ComponentStatus,
    IncidentImpact,
    IncidentStatus,
)
from incidents.services import WindowSpec, incident_create, incident_post_update
from public import api_v2
from tests.conftest import T0

M = timedelta(minutes=1)
H = timedelta(hours=1)
NOW = T0 + 10 * M
FIXTURES = Path(__file__).parent / "fixtures"

# Statuspage's enums, as its documentation and the real responses have them.
INDICATORS = {"none", "minor", "major", "critical", "maintenance"}
COMPONENT_STATUSES = {
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
}
INCIDENT_STATUSES = {"investigating", "identified", "monitoring", "resolved", "postmortem"}
MAINTENANCE_STATUSES = {"scheduled", "in_progress", "verifying", "completed"}
IMPACTS = {"none", "minor", "major", "critical", "maintenance"}
# Atlassian, "Top-level status and incident impact calculations".
DESCRIPTIONS = {
    "All Systems Operational",
    "Major System Outage",
    "Partial System Outage",
    "Minor Service Outage",
    "Degraded System Service",
    "Partially Degraded Service",
    "Service Under Maintenance",
}

ENDPOINTS = [
    "/api/v2/summary.json",
    "/api/v2/status.json",
    "/api/v2/components.json",
    "/api/v2/incidents.json",
    "/api/v2/incidents/unresolved.json",
    "/api/v2/scheduled-maintenances.json",
    "/api/v2/scheduled-maintenances/upcoming.json",
    "/api/v2/scheduled-maintenances/active.json",
]
UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
STATUSPAGE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")
TIME_KEYS = re.compile(r"(_at|^scheduled_for|^scheduled_until)$")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


SUMMARY_FIXTURES = [
    "github-summary.json",
    "instructure-summary.json",
    "renku-summary-maintenance.json",
]
ALL_FIXTURES = [*SUMMARY_FIXTURES, "github-components.json"]
RENKU = "renku-summary-maintenance.json"


# --- A small recursive shape comparer ---------------------------------------------------


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not JSON: {value!r}")


def nodes(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every value in a document with its path. List items are ``[]``; a component
    group (``"group": true``) is ``[]{group}``, since it has keys the others lack."""
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from nodes(child, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            group = "{group}" if isinstance(item, dict) and item.get("group") is True else ""
            yield from nodes(item, f"{path}[]{group}")


def role(path: str) -> str:
    """What a path names wherever it sits: ``$.incidents[].components[].status`` and
    ``$.components[].status`` are both a component's status, and a scheduled
    maintenance is an incident with two more keys."""
    segments = path.replace("scheduled_maintenances[]", "incidents[]").split(".")
    for i in range(len(segments) - 2, -1, -1):
        if "[]" in segments[i]:
            return ".".join(segments[i:])
    return ".".join(segments)


def objects_by_path(document: Any) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for path, value in nodes(document):
        if isinstance(value, dict):
            found.setdefault(path, []).append(value)
    return found


def types_by_role(documents: list[Any]) -> dict[str, set[str]]:
    types: dict[str, set[str]] = {}
    for document in documents:
        for path, value in nodes(document):
            types.setdefault(role(path), set()).add(json_type(value))
    return types


# The JSON types Statuspage gives each field, across every real response we hold.
# The fixtures only show open incidents; a resolved one has both times set (Emma's
# incidents.json in ZSharpe/ManagerDashboard, status.js).
STATUSPAGE_TYPES = types_by_role([load(name) for name in ALL_FIXTURES])
STATUSPAGE_TYPES["incidents[].monitoring_at"].add("string")
STATUSPAGE_TYPES["incidents[].resolved_at"].add("string")


def shape_errors(real: Any, ours: Any, *, partial: bool = False) -> list[str]:
    """How ``ours`` differs in shape from a real response: a key the real one has on
    every object at some path that ours lacks (ours may add keys), a JSON type
    Statuspage never gives that field, or a kind of object the real response has
    that ours does not show at all (unless ``partial``, for another endpoint than
    the real one's: then only the paths both have, below the root, are compared,
    and at least one must be)."""
    errors = []
    mine = objects_by_path(ours)
    compared = 0
    for path, samples in objects_by_path(real).items():
        if partial and path == "$":
            continue
        if path not in mine:
            if not partial:
                errors.append(f"{path}: not in ours, so not compared")
            continue
        compared += 1
        required = set.intersection(*(set(sample) for sample in samples))
        for obj in mine[path]:
            if missing := required - obj.keys():
                errors.append(f"{path}: missing {sorted(missing)}")
    for path, value in nodes(ours):
        allowed = STATUSPAGE_TYPES.get(role(path))
        if allowed is not None and json_type(value) not in allowed:
            errors.append(f"{path}: {json_type(value)}, Statuspage gives {sorted(allowed)}")
    if partial and compared == 0:
        errors.append("no path in common")
    return errors


ENUMS = {
    "$.status.indicator": INDICATORS,
    "$.status.description": DESCRIPTIONS,
    "components[].status": COMPONENT_STATUSES,
    "components[]{group}.status": COMPONENT_STATUSES,
    "incidents[].status": INCIDENT_STATUSES | MAINTENANCE_STATUSES,
    "incidents[].impact": IMPACTS,
    "incident_updates[].status": INCIDENT_STATUSES | MAINTENANCE_STATUSES,
    "affected_components[].old_status": COMPONENT_STATUSES,
    "affected_components[].new_status": COMPONENT_STATUSES,
}


def enum_errors(document: Any) -> list[str]:
    errors = []
    for path, value in nodes(document):
        allowed = ENUMS.get(role(path))
        if allowed is not None and value not in allowed:
            errors.append(f"{path}: {value!r} is not one of Statuspage's values")
    return errors


def time_errors(document: Any, pattern: re.Pattern[str]) -> list[str]:
    return [
        f"{path}: {value!r}"
        for path, value in nodes(document)
        if TIME_KEYS.search(path.rsplit(".", 1)[-1])
        and value is not None
        and not pattern.match(value)
    ]


def test_the_comparer_catches_a_missing_key_a_wrong_type_and_a_missing_object():
    real = load("github-summary.json")
    ours = json.loads(json.dumps(real))
    assert shape_errors(real, ours) == []
    del ours["incidents"][0]["incident_updates"][1]["tweet_id"]
    ours["components"][0]["position"] = "1"
    ours["incidents"][0]["components"] = []
    errors = shape_errors(real, ours)
    assert "$.incidents[].incident_updates[]: missing ['tweet_id']" in errors
    assert "$.components[].position: string, Statuspage gives ['number']" in errors
    assert "$.incidents[].components[]: not in ours, so not compared" in errors


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_the_real_responses_use_the_enums_and_times_we_use(name):
    fixture = load(name)
    assert enum_errors(fixture) == []
    assert time_errors(fixture, STATUSPAGE_TIME) == []


def test_our_models_speak_statuspages_enums():
    assert set(ComponentStatus.values) == COMPONENT_STATUSES
    assert set(IncidentStatus.values) == INCIDENT_STATUSES | MAINTENANCE_STATUSES
    assert set(IncidentImpact.values) == IMPACTS
    assert set(api_v2.INDICATORS) == INDICATORS


@pytest.mark.parametrize("name", SUMMARY_FIXTURES)
def test_page_status_is_derived_as_statuspage_derives_it(name):
    """Each real page's own components (and open incidents) give the status it
    showed: GitHub's major incident under a "minor" page included."""
    fixture = load(name)
    leaves = [c["status"] for c in fixture["components"] if not c["group"]]
    impacts = [i["impact"] for i in fixture["incidents"] if i["resolved_at"] is None]
    in_progress = any(
        m["status"] in ("in_progress", "verifying") for m in fixture["scheduled_maintenances"]
    )
    indicator, description = api_v2.page_status(
        leaves, open_impacts=impacts, maintenance_in_progress=in_progress
    )
    assert {"indicator": indicator, "description": description} == fixture["status"]


OPERATIONAL = ("none", "All Systems Operational")
MAINTENANCE = ("maintenance", "Service Under Maintenance")


@pytest.mark.parametrize(
    ("statuses", "impacts", "maintenance", "expected"),
    [
        (["operational", "operational"], [], False, OPERATIONAL),
        (["major_outage", "major_outage"], [], False, ("critical", "Major System Outage")),
        (["major_outage", "operational"], [], False, ("major", "Partial System Outage")),
        (["partial_outage"], [], False, ("major", "Partial System Outage")),
        (["partial_outage", "operational"], ["critical"], False, ("minor", "Minor Service Outage")),
        (["degraded_performance"], [], False, ("minor", "Degraded System Service")),
        (
            ["degraded_performance", "operational"],
            [],
            False,
            ("minor", "Partially Degraded Service"),
        ),
        (["under_maintenance", "operational"], [], False, MAINTENANCE),
        (["operational"], ["major", "minor"], True, ("major", "Partial System Outage")),
        (["operational"], ["none"], True, MAINTENANCE),
        ([], [], False, OPERATIONAL),
    ],
)
def test_page_status_rule(statuses, impacts, maintenance, expected):
    assert (
        api_v2.page_status(statuses, open_impacts=impacts, maintenance_in_progress=maintenance)
        == expected
    )


# --- The fleet and its stories ----------------------------------------------------------


@pytest.fixture(autouse=True)
def _live_views(settings, tmp_path):
    """These tests read the views themselves, never a snapshot of them that some
    other test (or a developer's server) left on disk."""
    settings.SNAPSHOT_DIR = tmp_path / "snapshot"


@pytest.fixture
def world(fleet):
    ComponentGroup.objects.update(created_at=T0 - 365 * 24 * H)
    console = Component.objects.create(
        slug="admin-console",
        name="Admin console",
        kind="admin_console",
        position=2,
        created_at=T0 - 365 * 24 * H,
    )
    for slug, shard in [("acme", "use1"), ("globex", "euw1"), ("initech", "use2")]:
        tailnet_create(slug=slug, display_name=f"{slug}.com", shard=shard, at=T0 - 24 * H)
    return {**fleet, "console": console}


def get(client, path: str, now=NOW) -> Any:
    with time_machine.travel(now, tick=False):
        response = client.get(path)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "public, max-age=30"
    return response.json()


def partial_outage_in_us_east(world, *, impact="minor", published=True):
    """use1's message bus is down: logins fail for the tailnets on it."""
    incident = incident_create(
        title="Coordination server unavailable in us-east",
        body="Logins are failing on **one** shard.",
        impact=impact,
        started_at=T0,
        detected_at=T0 + 2 * M,
        components={world["us"]: "partial_outage"},
        shard_impacts=[WindowSpec("use1", "outage", T0)],
        published=published,
        at=T0,
    )
    incident_post_update(
        incident=incident,
        status="identified",
        body="A message bus node ran out of disk. Existing connections keep working.",
        at=T0 + 5 * M,
    )
    return incident


def maintenance(world, *, status, starts, hours=2, component="eu", published=True):
    return incident_create(
        title=f"Message bus upgrade ({status})",
        body="We are upgrading the message bus; the admin console may be slow.",
        kind="maintenance",
        status=status,
        impact="maintenance",
        scheduled_for=starts,
        scheduled_until=starts + hours * H,
        components={world[component]: "under_maintenance"},
        published=published,
        at=T0 - 24 * H,
    )


def resolved_incident(world):
    incident = incident_create(
        title="Admin console slow",
        body="Investigating slow page loads.",
        started_at=T0 - 48 * H,
        components={world["console"]: "degraded_performance"},
        published=True,
        at=T0 - 48 * H,
    )
    incident_post_update(
        incident=incident, status="monitoring", body="Fix deployed.", at=T0 - 47 * H
    )
    incident_post_update(
        incident=incident,
        status="resolved",
        body="Page loads are back to normal.",
        components={world["console"]: "operational"},
        at=T0 - 46 * H,
    )
    return incident


def by_id(items: list[dict]) -> dict[str, dict]:
    return {item["id"]: item for item in items}


# --- Scenarios --------------------------------------------------------------------------


def test_all_operational(client, world, settings):
    settings.STATUSPAGE_PUBLIC_URL = "https://status.example.com"
    status = get(client, "/api/v2/status.json")
    assert status["status"] == {"indicator": "none", "description": "All Systems Operational"}
    page = status["page"]
    assert page == {
        "id": "coordination",
        "name": "Coordination service status",
        "url": "https://status.example.com",
        "time_zone": "Etc/UTC",
        "updated_at": page["updated_at"],
    }
    assert UTC_TIME.match(page["updated_at"])
    summary = get(client, "/api/v2/summary.json")
    assert summary["incidents"] == []
    assert summary["scheduled_maintenances"] == []
    assert {c["status"] for c in summary["components"]} == {"operational"}
    assert [c["id"] for c in summary["components"]] == [
        f"group-{world['us'].group_id}",
        "coordination-eu-west",  # the public page's order: position, then name
        "coordination-us-east",
        "admin-console",
    ]
    group = summary["components"][0]
    assert group["group"] is True
    assert group["name"] == "Coordination service"
    assert group["components"] == ["coordination-eu-west", "coordination-us-east"]
    assert summary["components"][1]["group_id"] == group["id"]
    assert summary["components"][3]["group_id"] is None
    assert summary["components"][1]["start_date"] == "2025-01-05"


def test_an_open_partial_outage_in_us_east(client, world, committed, settings):
    """acme (on use1) cannot log in; the page says so and says who was hit."""
    settings.STATUSPAGE_PUBLIC_URL = "https://status.example.com"
    with committed():
        incident = partial_outage_in_us_east(world)

    summary = get(client, "/api/v2/summary.json")

    assert summary["status"] == {"indicator": "minor", "description": "Minor Service Outage"}
    components = by_id(summary["components"])
    assert components["coordination-us-east"]["status"] == "partial_outage"
    assert components["coordination-us-east"]["updated_at"] == "2026-01-05T10:05:00.000Z"
    assert components[f"group-{world['us'].group_id}"]["status"] == "partial_outage"
    assert components["coordination-eu-west"]["status"] == "operational"
    [shown] = summary["incidents"]
    assert shown["id"] == str(incident.pk)
    assert shown["name"] == "Coordination server unavailable in us-east"
    assert shown["status"] == "identified"
    assert shown["impact"] == "minor"
    assert shown["started_at"] == "2026-01-05T10:00:00.000Z"
    assert shown["updated_at"] == "2026-01-05T10:05:00.000Z"
    assert shown["resolved_at"] is None
    assert shown["monitoring_at"] is None
    assert shown["shortlink"] == f"https://status.example.com/incidents/{incident.pk}/"
    identified, investigating = shown["incident_updates"]  # newest first
    assert identified["status"] == "identified"
    assert identified["display_at"] == "2026-01-05T10:05:00.000Z"
    assert identified["affected_components"] is None
    assert investigating["body"] == "Logins are failing on **one** shard."  # raw Markdown
    assert investigating["incident_id"] == str(incident.pk)
    assert investigating["affected_components"] == [
        {
            "code": "coordination-us-east",
            "name": "Coordination (us-east)",
            "old_status": "operational",
            "new_status": "partial_outage",
        }
    ]
    # The code of an affected component is a component id, as in Statuspage.
    assert shown["components"] == [components["coordination-us-east"]]
    # Who was hit: acme, one of the three tailnets, on US East 1.
    assert shown["affected_tailnets"] == 1
    assert shown["affected_tailnets_share"] == pytest.approx(1 / 3)
    assert shown["affected_shards"] == ["US East 1"]
    assert summary["page"]["updated_at"] == "2026-01-05T10:05:00.000Z"

    assert get(client, "/api/v2/incidents/unresolved.json")["incidents"] == [shown]
    assert get(client, "/api/v2/incidents.json")["incidents"] == [shown]
    assert get(client, "/api/v2/status.json")["status"] == summary["status"]


def test_the_components_decide_the_status_not_the_impact(client, world):
    """As on GitHub's page: an incident of impact major whose component is in partial
    outage shows a minor page."""
    partial_outage_in_us_east(world, impact="major")
    assert get(client, "/api/v2/status.json")["status"] == {
        "indicator": "minor",
        "description": "Minor Service Outage",
    }


def test_an_incident_without_components_shows_its_impact(client, world):
    incident_create(
        title="Elevated error rates",
        body="Investigating.",
        impact="major",
        started_at=T0,
        published=True,
        at=T0,
    )
    assert get(client, "/api/v2/status.json")["status"] == {
        "indicator": "major",
        "description": "Partial System Outage",
    }


def test_a_maintenance_in_progress(client, world):
    underway = maintenance(world, status="in_progress", starts=T0 - 30 * M)

    active = get(client, "/api/v2/scheduled-maintenances/active.json")
    [shown] = active["scheduled_maintenances"]
    assert shown["id"] == str(underway.pk)
    assert shown["status"] == "in_progress"
    assert shown["impact"] == "maintenance"
    assert shown["scheduled_for"] == "2026-01-05T09:30:00.000Z"
    assert shown["scheduled_until"] == "2026-01-05T11:30:00.000Z"
    assert [c["id"] for c in shown["components"]] == ["coordination-eu-west"]
    assert shown["components"][0]["status"] == "under_maintenance"
    assert (
        get(client, "/api/v2/scheduled-maintenances/upcoming.json")["scheduled_maintenances"] == []
    )
    summary = get(client, "/api/v2/summary.json")
    assert summary["status"] == {
        "indicator": "maintenance",
        "description": "Service Under Maintenance",
    }
    assert summary["scheduled_maintenances"] == [shown]
    assert summary["incidents"] == []
    assert get(client, "/api/v2/incidents.json")["incidents"] == []


def test_a_maintenance_in_progress_without_components_still_says_maintenance(client, world):
    incident_create(
        title="Database failover rehearsal",
        body="Writes may pause for a few seconds.",
        kind="maintenance",
        status="in_progress",
        impact="maintenance",
        scheduled_for=T0,
        scheduled_until=T0 + H,
        published=True,
        at=T0,
    )
    assert get(client, "/api/v2/status.json")["status"]["indicator"] == "maintenance"


def test_an_upcoming_maintenance(client, world):
    upcoming = maintenance(world, status="scheduled", starts=T0 + 24 * H)
    later = maintenance(world, status="scheduled", starts=T0 + 48 * H, component="us")

    shown = get(client, "/api/v2/scheduled-maintenances/upcoming.json")["scheduled_maintenances"]
    assert [m["id"] for m in shown] == [str(upcoming.pk), str(later.pk)]  # soonest first
    assert shown[0]["status"] == "scheduled"
    # Announced, not begun: the component is not under maintenance yet.
    eu_west = shown[0]["components"][0]
    assert eu_west["status"] == "operational"
    assert eu_west["updated_at"] == eu_west["created_at"]
    assert get(client, "/api/v2/scheduled-maintenances/active.json")["scheduled_maintenances"] == []
    summary = get(client, "/api/v2/summary.json")
    assert summary["status"]["indicator"] == "none"
    assert [m["id"] for m in summary["scheduled_maintenances"]] == [
        str(upcoming.pk),
        str(later.pk),
    ]
    everything = get(client, "/api/v2/scheduled-maintenances.json")["scheduled_maintenances"]
    assert [m["id"] for m in everything] == [str(later.pk), str(upcoming.pk)]  # latest first


def test_a_resolved_incident(client, world):
    incident = resolved_incident(world)

    assert get(client, "/api/v2/incidents/unresolved.json")["incidents"] == []
    [shown] = get(client, "/api/v2/incidents.json")["incidents"]
    assert shown["id"] == str(incident.pk)
    assert shown["status"] == "resolved"
    assert shown["monitoring_at"] == "2026-01-03T11:00:00.000Z"
    assert shown["resolved_at"] == "2026-01-03T12:00:00.000Z"
    assert [u["status"] for u in shown["incident_updates"]] == [
        "resolved",
        "monitoring",
        "investigating",
    ]
    assert shown["incident_updates"][0]["affected_components"] == [
        {
            "code": "admin-console",
            "name": "Admin console",
            "old_status": "degraded_performance",
            "new_status": "operational",
        }
    ]
    summary = get(client, "/api/v2/summary.json")
    assert summary["incidents"] == []
    assert summary["status"]["indicator"] == "none"
    assert by_id(summary["components"])["admin-console"]["status"] == "operational"


def test_drafts_never_appear(client, world):
    """An operator's drafts, however bad, change nothing anyone can read."""
    before = {path: get(client, path) for path in ENDPOINTS}
    incident_create(
        title="DRAFT eu-west down",
        body="Not confirmed.",
        impact="critical",
        started_at=T0,
        components={world["eu"]: "major_outage"},
        shard_impacts=[WindowSpec("euw1", "outage", T0)],
        published=False,
        at=T0,
    )
    maintenance(world, status="in_progress", starts=T0, published=False)
    maintenance(world, status="scheduled", starts=T0 + 24 * H, published=False)

    for path in ENDPOINTS:
        document = get(client, path)
        text = json.dumps(document)
        assert "DRAFT" not in text, path
        assert "Message bus upgrade" not in text, path
        if "status" in document:
            assert document["status"]["indicator"] == "none", path
        for component in document.get("components", []):
            assert component["status"] == "operational", path
        assert document == before[path], path


def test_incidents_json_lists_the_50_most_recent(client, world):
    for n in range(51):
        incident_create(
            title=f"Blip {n}", body="Short.", started_at=T0 - n * H, published=True, at=T0
        )
    shown = get(client, "/api/v2/incidents.json")["incidents"]
    assert len(shown) == 50
    assert shown[0]["name"] == "Blip 0"
    assert shown[-1]["name"] == "Blip 49"
    assert len(get(client, "/api/v2/incidents/unresolved.json")["incidents"]) == 51


# --- Shapes against the real responses --------------------------------------------------


@pytest.fixture
def busy_day(world, committed):
    """Everything at once, so every kind of object Statuspage has shows up: an open
    incident, a resolved one, a maintenance in progress and one upcoming, a draft."""
    with committed():
        partial_outage_in_us_east(world)
    resolved_incident(world)
    maintenance(world, status="in_progress", starts=T0 - 30 * M, component="console")
    maintenance(world, status="scheduled", starts=T0 + 24 * H)
    incident_create(
        title="DRAFT",
        body="x",
        started_at=T0,
        components={world["eu"]: "major_outage"},
        at=T0,
    )
    return world


@pytest.mark.parametrize(
    ("fixture", "endpoint"),
    [
        ("github-summary.json", "/api/v2/summary.json"),
        ("instructure-summary.json", "/api/v2/summary.json"),
        (RENKU, "/api/v2/summary.json"),
        ("github-components.json", "/api/v2/components.json"),
    ],
)
def test_our_shape_matches_a_real_response(client, busy_day, fixture, endpoint):
    ours = get(client, endpoint)
    assert shape_errors(load(fixture), ours) == []
    assert enum_errors(ours) == []
    assert time_errors(ours, UTC_TIME) == []


MAINTENANCES = "scheduled_maintenances"


@pytest.mark.parametrize(
    ("fixture", "endpoint", "root"),
    [
        ("github-summary.json", "/api/v2/status.json", "status"),
        ("github-summary.json", "/api/v2/incidents.json", "incidents"),
        ("instructure-summary.json", "/api/v2/incidents/unresolved.json", "incidents"),
        (RENKU, "/api/v2/scheduled-maintenances.json", MAINTENANCES),
        (RENKU, "/api/v2/scheduled-maintenances/upcoming.json", MAINTENANCES),
        (RENKU, "/api/v2/scheduled-maintenances/active.json", MAINTENANCES),
    ],
)
def test_the_other_endpoints_share_the_shapes(client, busy_day, fixture, endpoint, root):
    """Statuspage's other endpoints are the page plus one list (or the status) of the
    same objects as in its summary."""
    ours = get(client, endpoint)
    assert list(ours) == ["page", root]
    assert shape_errors(load(fixture), ours, partial=True) == []
    assert enum_errors(ours) == []
    assert time_errors(ours, UTC_TIME) == []
    for incident in ours.get("incidents", []):
        assert incident["status"] in INCIDENT_STATUSES
    for item in ours.get("scheduled_maintenances", []):
        assert item["status"] in MAINTENANCE_STATUSES
        assert {"scheduled_for", "scheduled_until"} <= item.keys()


def test_summary_lists_what_statuspage_lists(client, busy_day):
    summary = get(client, "/api/v2/summary.json")
    assert list(summary) == ["page", "components", "incidents", "scheduled_maintenances", "status"]
    assert [i["status"] for i in summary["incidents"]] == ["identified"]
    assert [m["status"] for m in summary["scheduled_maintenances"]] == [
        "in_progress",
        "scheduled",
    ]
    # us-east partly down outranks the console's maintenance.
    assert summary["status"] == {"indicator": "minor", "description": "Minor Service Outage"}


# --- HTTP -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_head_answers_with_the_headers_and_no_body(client, world, path):
    response = client.head(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response.content == b""


@pytest.mark.parametrize("path", ENDPOINTS)
def test_writes_are_refused(world, path):
    client = Client(enforce_csrf_checks=True)  # as a real client meets it
    for method in (client.post, client.put, client.delete):
        response = method(path)
        assert response.status_code == 405
        assert response["Allow"] == "GET, HEAD"


def test_builders_are_pure_functions_of_the_database_and_now(rf: RequestFactory, busy_day):
    """What a snapshot layer relies on: same database and ``now``, same output, in
    plain JSON values; another ``now`` reads the same database as of then."""
    request = rf.get("/api/v2/summary.json")
    for name, build in api_v2.BUILDERS.items():
        first = build(request, NOW)
        assert build(request, NOW) == first, name
        json.dumps(first)  # plain JSON values only
    assert api_v2.summary(request, NOW)["status"]["indicator"] == "minor"
    # Before use1 went down, only the console's maintenance was going on.
    earlier = api_v2.summary(request, T0 - 30 * M)
    assert earlier["status"]["indicator"] == "maintenance"
    assert by_id(earlier["components"])["coordination-us-east"]["status"] == "operational"
    assert earlier["page"]["updated_at"] == "2026-01-05T09:30:00.000Z"


# --- A constant number of queries -------------------------------------------------------


def a_bad_hour(world, n: int) -> None:
    """Incident n: a partial outage on one us-east shard with two updates, plus a
    maintenance announced for later, each touching components."""
    shard = "use1" if n % 2 else "use2"
    incident = incident_create(
        title=f"Incident {n}",
        body="Investigating.",
        started_at=T0 - n * H,
        components={world["us"]: "partial_outage", world["console"]: "degraded_performance"},
        shard_impacts=[WindowSpec(shard, "partial", T0 - n * H, T0 - n * H + 30 * M)],
        published=True,
        at=T0 - n * H,
    )
    incident_post_update(
        incident=incident,
        status="resolved",
        body="Resolved.",
        components={world["us"]: "operational"},
        at=T0 - n * H + 30 * M,
    )
    maintenance(world, status="scheduled", starts=T0 + n * H)


def test_every_endpoint_runs_as_many_queries_for_15_incidents_as_for_1(
    client, world, committed, django_assert_max_num_queries
):
    with committed():
        a_bad_hour(world, 1)
    baseline = {}
    for path in ENDPOINTS:
        with CaptureQueriesContext(connection) as queries:
            get(client, path)
        baseline[path] = len(queries)
    with committed():
        for n in range(2, 16):
            a_bad_hour(world, n)

    for path in ENDPOINTS:
        with django_assert_max_num_queries(baseline[path]):
            document = get(client, path)
        listed = document.get("incidents", document.get("scheduled_maintenances", []))
        assert len(listed) in (0, 15), path
    assert get(client, "/api/v2/incidents.json")["incidents"][0]["affected_tailnets"] == 1
