"""The operator API: alerting tools and operators open, update, publish and resolve
incidents and maintenance; every change says who made it and when.

alice is staff and her alerting tool holds a staff token; bob has a probe token;
anonymous has nothing.
"""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.crypto import get_random_string

from fleet.services import tailnet_create
from incidents.api import OperatorRateThrottle
from incidents.models import (
    AuditEntry,
    Incident,
    IncidentComponent,
    IncidentUpdate,
    ShardImpact,
)
from plumbing.tokens import api_token_create, api_token_revoke
from tests.conftest import T0

NOW = T0 + timedelta(hours=2)
URL = "/api/v1/incidents/"


@pytest.fixture(autouse=True)
def _frozen_now(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """Throttle counters live in the cache: a fresh one per test, never the file cache
    shared with other test runs."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": get_random_string(12),
        }
    }
    yield
    cache.clear()


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", "pw", is_staff=True)


@pytest.fixture
def alice_token(alice):
    token, secret = api_token_create(name="alerting", scope="staff", by=alice)
    return token, secret


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", "bob@example.com", "pw")


@pytest.fixture
def bob_probe_secret(bob):
    return api_token_create(name="bob's probe", scope="probe", by=bob)[1]


class Api:
    """A client speaking JSON with one bearer token."""

    def __init__(self, client, secret):
        self.client = client
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def get(self, path="", **params):
        return self.client.get(URL + path, params, headers=self.headers)

    def post(self, path="", body=None, **headers):
        return self.client.post(
            URL + path,
            body if body is not None else {},
            content_type="application/json",
            headers={**self.headers, **headers},
        )

    def patch(self, path, body):
        return self.client.patch(
            URL + path, body, content_type="application/json", headers=self.headers
        )


@pytest.fixture
def api(client, alice_token):
    return Api(client, alice_token[1])


def _outage(**overrides):
    body = {
        "title": "Coordination server performance issues",
        "body": "Logins and admin console actions fail for some tailnets.",
        "impact": "major",
        "started_at": (T0 + timedelta(minutes=5)).isoformat(),
        "detected_at": (T0 + timedelta(minutes=9)).isoformat(),
        "components": {"coordination-us-east": "partial_outage"},
        "shard_impacts": [
            {
                "shard": "use1",
                "level": "outage",
                "starts_at": (T0 + timedelta(minutes=5)).isoformat(),
            }
        ],
    }
    return {**body, **overrides}


def _maintenance(**overrides):
    body = {
        "title": "Coordination database upgrade",
        "body": "Admin console changes may be delayed for up to 10 minutes.",
        "kind": "maintenance",
        "status": "scheduled",
        "impact": "maintenance",
        "scheduled_for": (NOW + timedelta(days=1)).isoformat(),
        "scheduled_until": (NOW + timedelta(days=1, hours=1)).isoformat(),
        "components": {"coordination-eu-west": "under_maintenance"},
    }
    return {**body, **overrides}


def _rows():
    return {
        model.__name__: model.objects.count()
        for model in (Incident, IncidentUpdate, IncidentComponent, ShardImpact, AuditEntry)
    }


# --- Creating, reading, listing -----------------------------------------------------------


def test_alices_alerting_tool_opens_a_draft_incident(api, fleet, alice, alice_token, settings):
    settings.STATUSPAGE_PUBLIC_URL = "https://status.example.com"
    response = api.post(body=_outage())

    assert response.status_code == 201, response.content
    data = response.json()
    incident = Incident.objects.get()
    assert data["id"] == incident.pk
    assert data["name"] == data["title"] == "Coordination server performance issues"
    assert (data["kind"], data["status"], data["impact"]) == ("incident", "investigating", "major")
    assert data["published"] is False
    assert data["started_at"] == "2026-01-05T10:05:00Z"
    assert data["shortlink"] == f"https://status.example.com/incidents/{incident.pk}/"
    assert [(c["code"], c["status"]) for c in data["components"]] == [
        ("coordination-us-east", "partial_outage")
    ]
    (update,) = data["incident_updates"]
    assert update["status"] == "investigating"
    assert update["body"].startswith("Logins and admin console")
    assert update["affected_components"][0]["new_status"] == "partial_outage"
    (window,) = data["shard_impacts"]
    assert (window["shard"], window["level"], window["ends_at"]) == ("use1", "outage", None)
    assert incident.created_by == alice

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.incident, entry.token, entry.user) == (
        "incident.create",
        incident,
        alice_token[0],
        alice,
    )
    assert entry.at == NOW
    assert entry.remote_addr == "127.0.0.1"
    assert entry.changes["title"] == "Coordination server performance issues"
    assert entry.changes["components"] == {"coordination-us-east": "partial_outage"}
    assert entry.changes["shard_impacts"][0]["shard"] == "use1"


def test_a_maintenance_is_scheduled_then_completed_once_it_began(api, fleet, time_machine):
    created = api.post(body=_maintenance())
    assert created.status_code == 201, created.content
    incident_id = created.json()["id"]
    assert created.json()["status"] == "scheduled"
    assert created.json()["scheduled_for"] == "2026-01-06T12:00:00Z"
    assert created.json()["started_at"] == "2026-01-06T12:00:00Z"
    early = api.post(f"{incident_id}/resolve")
    assert early.status_code == 400
    assert early.json() == {"detail": "An incident cannot be resolved before it started."}

    time_machine.shift(timedelta(days=1, minutes=30))
    began = api.post(f"{incident_id}/updates", {"status": "in_progress", "body": "Started."})
    assert began.status_code == 201, began.content
    resolved = api.post(f"{incident_id}/resolve")

    assert resolved.status_code == 200, resolved.content
    data = resolved.json()
    assert data["status"] == "completed"
    assert data["resolved_at"] == "2026-01-06T12:30:00Z"
    assert data["incident_updates"][0]["body"] == "The scheduled maintenance has been completed."
    assert data["components"][0]["status"] == "operational"


def test_the_list_shows_drafts_newest_first_and_filters(api, fleet):
    older = api.post(body=_outage(title="Older", started_at=T0.isoformat())).json()
    newer = api.post(body=_outage(title="Newer", shard_impacts=[], published=True)).json()
    maintenance = api.post(body=_maintenance()).json()
    api.post(f"{older['id']}/resolve")

    def titles(**params):
        response = api.get(**params)
        assert response.status_code == 200, response.content
        return [i["title"] for i in response.json()["results"]]

    assert titles() == [maintenance["title"], "Newer", "Older"]
    assert api.get().json()["count"] == 3
    assert titles(kind="incident") == ["Newer", "Older"]
    assert titles(published="true") == ["Newer"]
    assert titles(published="false") == [maintenance["title"], "Older"]
    assert titles(open="true") == [maintenance["title"], "Newer"]
    assert titles(open="false") == ["Older"]
    assert titles(status="resolved,scheduled") == [maintenance["title"], "Older"]
    assert titles(limit=1, offset=1) == ["Newer"]
    first = api.get().json()["results"][1]
    assert first["incident_updates"][0]["body"].startswith("Logins")
    assert first["components"][0]["code"] == "coordination-us-east"
    assert newer["affected_tailnets"] == 0


def test_a_bad_filter_is_a_400(api, fleet):
    response = api.get(status="exploded")
    assert response.status_code == 400
    assert "Unknown status 'exploded'" in response.json()["status"][0]


def test_the_list_costs_the_same_queries_for_1_and_10_incidents(
    api, fleet, django_assert_max_num_queries
):
    api.post(body=_outage())
    with CaptureQueriesContext(connection) as captured:
        assert api.get().status_code == 200
    one = len(captured)  # now: the next request clears the connection's query log
    for n in range(9):
        api.post(body=_outage(title=f"Incident {n}", shard_impacts=[]))
        api.post(
            f"{Incident.objects.latest('pk').pk}/updates",
            {"status": "identified", "body": "Found it."},
        )

    with django_assert_max_num_queries(one):
        response = api.get()
    assert len(response.json()["results"]) == 10
    assert one <= 6  # token, its user, count, page, updates, components


def test_unknown_ids_are_404(api, fleet):
    assert api.get("999/").status_code == 404
    assert api.patch("999/", {"title": "x"}).status_code == 404
    assert api.post("999/updates", {"status": "identified", "body": "x"}).status_code == 404
    assert api.post("999/publish").status_code == 404
    assert api.post("999/resolve").status_code == 404
    assert api.post("999/impacts", {"shard": "use1", "level": "outage"}).status_code == 404
    incident_id = api.post(body=_outage()).json()["id"]
    assert api.post(f"{incident_id}/impacts/999/close").status_code == 404
    other = api.post(body=_outage(title="Other", shard_impacts=[])).json()["id"]
    window = ShardImpact.objects.get(incident_id=incident_id)
    assert api.post(f"{other}/impacts/{window.pk}/close").status_code == 404


# --- Changing ------------------------------------------------------------------------------


def test_patch_edits_title_impact_and_postmortem_and_records_old_and_new(api, fleet, alice):
    incident_id = api.post(body=_outage()).json()["id"]

    response = api.patch(
        f"{incident_id}/",
        {"title": "Coordination outage in us-east", "impact": "critical", "postmortem": "## Why"},
    )

    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["title"], data["name"], data["impact"]) == (
        "Coordination outage in us-east",
        "Coordination outage in us-east",
        "critical",
    )
    assert data["postmortem_body"] == "## Why"
    assert data["postmortem_published_at"] == "2026-01-05T12:00:00Z"
    entry = AuditEntry.objects.get(action="incident.edit")
    assert entry.user == alice
    assert entry.changes == {
        "title": ["Coordination server performance issues", "Coordination outage in us-east"],
        "impact": ["major", "critical"],
        "postmortem": ["", "## Why"],
        "postmortem_published_at": [None, "2026-01-05T12:00:00+00:00"],
    }
    # The same values again change nothing and leave no audit entry.
    assert api.patch(f"{incident_id}/", {"impact": "critical"}).status_code == 200
    assert AuditEntry.objects.filter(action="incident.edit").count() == 1


def test_patch_refuses_a_status_and_says_where_it_goes(api, fleet):
    incident_id = api.post(body=_outage()).json()["id"]
    before = _rows()

    response = api.patch(f"{incident_id}/", {"status": "resolved", "title": "Done"})

    assert response.status_code == 400
    assert "POST /api/v1/incidents/<id>/updates" in response.json()["status"][0]
    assert _rows() == before
    assert Incident.objects.get().title == "Coordination server performance issues"
    assert api.patch(f"{incident_id}/", {}).status_code == 400


def test_an_update_changes_status_and_components(api, fleet, alice_token):
    incident_id = api.post(body=_outage()).json()["id"]

    response = api.post(
        f"{incident_id}/updates",
        {
            "status": "identified",
            "body": "A message bus on **use1** is overloaded.",
            "components": {"coordination-us-east": "major_outage"},
        },
    )

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "identified"
    assert data["components"][0]["status"] == "major_outage"
    latest = data["incident_updates"][0]
    assert latest["body"] == "A message bus on **use1** is overloaded."
    assert latest["affected_components"] == [
        {
            "code": "coordination-us-east",
            "name": "Coordination (us-east)",
            "old_status": "partial_outage",
            "new_status": "major_outage",
        }
    ]
    entry = AuditEntry.objects.get(action="incident.update")
    assert entry.token == alice_token[0]
    assert entry.changes["components"] == {"coordination-us-east": "major_outage"}


def test_resolving_with_an_update_closes_the_open_windows(api, fleet):
    incident_id = api.post(body=_outage()).json()["id"]

    response = api.post(f"{incident_id}/updates", {"status": "resolved", "body": "Fixed."})

    assert response.status_code == 201, response.content
    assert response.json()["resolved_at"] == "2026-01-05T12:00:00Z"
    assert response.json()["shard_impacts"][0]["ends_at"] == "2026-01-05T12:00:00Z"


def test_publishing_a_draft_once(api, fleet):
    incident_id = api.post(body=_outage()).json()["id"]

    response = api.post(f"{incident_id}/publish")

    assert response.status_code == 200, response.content
    assert response.json()["published"] is True
    assert response.json()["published_at"] == "2026-01-05T12:00:00Z"
    assert AuditEntry.objects.filter(action="incident.publish").count() == 1
    assert api.post(f"{incident_id}/publish").status_code == 200
    assert AuditEntry.objects.filter(action="incident.publish").count() == 1


def test_resolve_posts_a_closing_update_once(api, fleet):
    incident_id = api.post(body=_outage()).json()["id"]

    response = api.post(f"{incident_id}/resolve")

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "resolved"
    assert data["incident_updates"][0]["body"] == "This incident has been resolved."
    assert data["components"][0]["status"] == "operational"
    assert data["shard_impacts"][0]["ends_at"] == "2026-01-05T12:00:00Z"
    entry = AuditEntry.objects.get(action="incident.resolve")
    assert entry.changes["components"] == {"coordination-us-east": "operational"}
    # Alerting tools retry: a second resolve writes nothing.
    again = api.post(f"{incident_id}/resolve", {"body": "Resolved, really."})
    assert again.status_code == 200
    assert IncidentUpdate.objects.filter(incident_id=incident_id).count() == 2
    assert AuditEntry.objects.filter(action="incident.resolve").count() == 1


def test_resolve_takes_a_body(api, fleet):
    incident_id = api.post(body=_outage()).json()["id"]
    response = api.post(f"{incident_id}/resolve", {"body": "We moved tailnets off use1."})
    assert response.json()["incident_updates"][0]["body"] == "We moved tailnets off use1."


def test_resolving_refuses_an_open_window_that_has_not_started(api, fleet):
    later = (NOW + timedelta(hours=1)).isoformat()
    incident_id = api.post(
        body=_outage(shard_impacts=[{"shard": "use2", "level": "degraded", "starts_at": later}])
    ).json()["id"]
    before = _rows()

    response = api.post(f"{incident_id}/resolve")

    assert response.status_code == 400
    assert "window on shard 'use2' starts at 2026-01-05 13:00:00 UTC" in response.json()["detail"]
    assert _rows() == before
    assert Incident.objects.get().status == "investigating"


def test_adding_and_closing_an_impact_window(api, fleet, alice_token):
    incident_id = api.post(body=_outage(shard_impacts=[])).json()["id"]

    added = api.post(
        f"{incident_id}/impacts",
        {"shard": "euw1", "level": "partial", "starts_at": (T0 + timedelta(minutes=7)).isoformat()},
    )

    assert added.status_code == 201, added.content
    window = added.json()
    assert (window["shard"], window["level"], window["ends_at"]) == ("euw1", "partial", None)
    at = (T0 + timedelta(minutes=40)).isoformat()
    closed = api.post(f"{incident_id}/impacts/{window['id']}/close", {"at": at})
    assert closed.status_code == 200, closed.content
    assert closed.json()["ends_at"] == "2026-01-05T10:40:00Z"
    assert [e.action for e in AuditEntry.objects.order_by("id")] == [
        "incident.create",
        "impact.add",
        "impact.close",
    ]
    entry = AuditEntry.objects.get(action="impact.close")
    assert entry.token == alice_token[0]
    assert entry.changes == {
        "impact_id": window["id"],
        "shard": "euw1",
        "ends_at": [None, "2026-01-05T10:40:00+00:00"],
    }

    before = _rows()
    twice = api.post(f"{incident_id}/impacts/{window['id']}/close", {"at": at})
    assert twice.status_code == 400
    assert "already closed" in twice.json()["detail"]
    overlapping = api.post(
        f"{incident_id}/impacts",
        {"shard": "euw1", "level": "outage", "starts_at": (T0 + timedelta(minutes=30)).isoformat()},
    )
    assert overlapping.status_code == 400
    assert "Impact windows on shard 'euw1' overlap" in overlapping.json()["detail"]
    assert _rows() == before


def test_a_window_cannot_close_before_it_starts(api, fleet):
    incident_id = api.post(body=_outage()).json()["id"]
    window = ShardImpact.objects.get()
    response = api.post(
        f"{incident_id}/impacts/{window.pk}/close", {"at": (T0 - timedelta(hours=1)).isoformat()}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "An impact window must end after it starts."}
    window.refresh_from_db()
    assert window.ends_at is None


def test_an_open_window_on_a_resolved_incident_is_refused(api, fleet):
    incident_id = api.post(body=_outage(shard_impacts=[])).json()["id"]
    api.post(f"{incident_id}/resolve")
    response = api.post(
        f"{incident_id}/impacts", {"shard": "use1", "level": "outage", "starts_at": T0.isoformat()}
    )
    assert response.status_code == 400
    assert "needs an end (ends_at)" in response.json()["detail"]
    assert not ShardImpact.objects.exists()


def test_affected_tailnets_appear_once_the_window_is_added(api, fleet, committed):
    with committed():
        for slug in ("acme", "globex"):
            tailnet_create(slug=slug, display_name=slug, shard="use1", at=T0 - timedelta(days=30))
        tailnet_create(
            slug="initech", display_name="initech", shard="euw1", at=T0 - timedelta(days=30)
        )
        incident_id = api.post(body=_outage(shard_impacts=[])).json()["id"]
    assert api.get(f"{incident_id}/").json()["affected_tailnets"] == 0

    with committed():
        response = api.post(
            f"{incident_id}/impacts",
            {
                "shard": "use1",
                "level": "outage",
                "starts_at": T0.isoformat(),
                "ends_at": (T0 + timedelta(minutes=30)).isoformat(),
            },
        )
        assert response.status_code == 201, response.content
        pending = api.get(f"{incident_id}/").json()
        assert pending["affected_tailnets_pending"] is True

    data = api.get(f"{incident_id}/").json()
    assert data["affected_tailnets"] == 2
    assert data["affected_tailnets_pending"] is False
    assert data["blast_radius"]["affected"] == 2
    assert data["blast_radius"]["total"] == 3
    assert data["blast_radius"]["by_level"] == {"outage": 2}
    assert data["blast_radius"]["summary"] == "2 tailnets, 66.66% of tailnets"
    listed = api.get().json()["results"][0]
    assert listed["affected_tailnets"] == 2


# --- Bad input: a clear 400 and nothing written ----------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            _outage(components={"coordination-mars": "major_outage"}),
            "components",
            "Unknown component 'coordination-mars'.",
        ),
        (
            _outage(components={"coordination-us-east": "on_fire"}),
            "components",
            '"on_fire" is not a valid choice.',
        ),
        (
            _outage(
                shard_impacts=[{"shard": "mars1", "level": "outage", "starts_at": T0.isoformat()}]
            ),
            "shard_impacts",
            "Unknown shard 'mars1'.",
        ),
        (
            _outage(status="scheduled"),
            "status",
            "Status 'scheduled' is not valid for incident; use one of investigating, identified,",
        ),
        (
            _maintenance(status="investigating"),
            "status",
            "Status 'investigating' is not valid for maintenance; use one of scheduled,",
        ),
        (_outage(body="   "), "body", "This field may not be blank."),
        ({k: v for k, v in _outage().items() if k != "body"}, "body", "This field is required."),
        (_outage(title=""), "title", "This field may not be blank."),
        (
            _maintenance(scheduled_until=None),
            "scheduled_until",
            "A maintenance needs a schedule",
        ),
        (
            _maintenance(scheduled_until=NOW.isoformat()),
            "scheduled_until",
            "The maintenance ends (2026-01-05 12:00:00 UTC) before it begins",
        ),
        (
            _outage(started_at="2026-01-05T10:00:00"),
            "started_at",
            "The time zone is missing (use Z or +00:00).",
        ),
        (_outage(name="Outage"), "name", "Send the incident's name as 'title'."),
        (_outage(impact="apocalyptic"), "impact", '"apocalyptic" is not a valid choice.'),
    ],
    ids=[
        "unknown-component",
        "unknown-component-status",
        "unknown-shard",
        "status-not-for-incident",
        "status-not-for-maintenance",
        "blank-body",
        "missing-body",
        "blank-title",
        "maintenance-without-end",
        "maintenance-ends-before-start",
        "naive-time",
        "unknown-field",
        "unknown-impact",
    ],
)
def test_bad_input_is_refused_with_a_clear_message(api, fleet, body, field, message):
    before = _rows()

    response = api.post(body=body)

    assert response.status_code == 400, response.content
    assert message in str(response.json()[field])
    assert _rows() == before


def test_a_window_ending_before_it_starts_is_refused(api, fleet):
    before = _rows()
    window = {
        "shard": "use1",
        "level": "outage",
        "starts_at": T0.isoformat(),
        "ends_at": (T0 - timedelta(minutes=1)).isoformat(),
    }

    response = api.post(body=_outage(shard_impacts=[window]))

    assert response.status_code == 400
    assert response.json() == {
        "shard_impacts": {
            "0": {
                "ends_at": [
                    "The window on shard 'use1' ends (2026-01-05 09:59:00 UTC) before it "
                    "starts (2026-01-05 10:00:00 UTC)."
                ]
            }
        }
    }
    assert _rows() == before


def test_overlapping_windows_are_refused_by_the_service_with_nothing_written(api, fleet):
    before = _rows()
    windows = [
        {"shard": "use1", "level": "degraded", "starts_at": T0.isoformat()},
        {"shard": "use1", "level": "outage", "starts_at": (T0 + timedelta(minutes=5)).isoformat()},
    ]

    response = api.post(body=_outage(shard_impacts=windows))

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Impact windows on shard 'use1' overlap")
    assert _rows() == before


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"status": "completed", "body": "x"}, "status", "Status 'completed' is not valid for"),
        ({"status": "identified", "body": ""}, "body", "This field may not be blank."),
        ({"status": "identified"}, "body", "This field is required."),
        (
            {"status": "identified", "body": "x", "components": {"nope": "major_outage"}},
            "components",
            "Unknown component 'nope'.",
        ),
    ],
    ids=["status-not-for-kind", "blank-body", "missing-body", "unknown-component"],
)
def test_a_bad_update_is_refused_with_nothing_written(api, fleet, body, field, message):
    incident_id = api.post(body=_outage()).json()["id"]
    before = _rows()

    response = api.post(f"{incident_id}/updates", body)

    assert response.status_code == 400, response.content
    assert message in str(response.json()[field])
    assert _rows() == before


def test_resolving_before_the_start_is_refused_with_nothing_written(api, fleet):
    incident_id = api.post(
        body=_outage(started_at=(NOW + timedelta(hours=3)).isoformat(), shard_impacts=[])
    ).json()["id"]
    before = _rows()

    response = api.post(f"{incident_id}/updates", {"status": "resolved", "body": "Done."})

    assert response.status_code == 400
    assert response.json() == {"detail": "An incident cannot be resolved before it started."}
    assert _rows() == before


# --- Who may call it ---------------------------------------------------------------------


def test_anonymous_is_asked_to_authenticate(client, fleet):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert client.post(URL, _outage(), content_type="application/json").status_code == 401
    assert not Incident.objects.exists()


def test_bobs_probe_token_is_refused(client, fleet, bob_probe_secret):
    bob = Api(client, bob_probe_secret)
    assert bob.get().status_code == 403
    response = bob.post(body=_outage())
    assert response.status_code == 403
    assert "staff-scoped token" in response.json()["detail"]
    assert not Incident.objects.exists()


def test_a_probe_token_made_by_staff_is_still_not_a_staff_token(client, fleet, alice):
    _, secret = api_token_create(name="alice's probe", scope="probe", by=alice)
    assert Api(client, secret).post(body=_outage()).status_code == 403
    assert not Incident.objects.exists()


def test_a_revoked_or_made_up_token_is_refused(client, fleet, alice_token):
    api_token_revoke(token=alice_token[0])
    assert Api(client, alice_token[1]).get().status_code == 401
    assert Api(client, "sp_made_up").get().status_code == 401


def test_bobs_session_is_refused(client, fleet, bob):
    client.force_login(bob)
    assert client.get(URL).status_code == 403


def test_alices_session_reads_but_must_send_csrf_to_write(fleet, alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.get(URL).status_code == 200

    refused = browser.post(URL, _outage(), content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert not Incident.objects.exists()

    token = get_random_string(32)
    browser.cookies["csrftoken"] = token
    accepted = browser.post(
        URL, _outage(), content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 201, accepted.content
    entry = AuditEntry.objects.get()
    assert (entry.user, entry.token) == (alice, None)


def test_a_token_is_throttled_by_the_configured_rate(api, fleet, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"operator_api": "2/min"},
    }
    assert api.get().status_code == 200
    assert api.get().status_code == 200
    response = api.get()
    assert response.status_code == 429
    assert "Retry-After" in response.headers


def test_the_api_works_when_the_cache_is_down(api, fleet, monkeypatch):
    class Unreachable:
        def get(self, *args, **kwargs):
            raise ConnectionRefusedError("cache is down")

        set = get

    monkeypatch.setattr(OperatorRateThrottle, "cache", Unreachable())
    assert api.post(body=_outage()).status_code == 201
    assert api.get().status_code == 200


# --- Retries: Idempotency-Key ------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_first_incident(api, fleet):
    first = api.post(body=_outage(), **{"Idempotency-Key": "pagerduty-123"})
    again = api.post(body=_outage(), **{"Idempotency-Key": "pagerduty-123"})

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Incident.objects.count() == 1
    assert AuditEntry.objects.get().idempotency_key == "pagerduty-123"


def test_an_idempotency_key_reused_for_another_request_is_refused(api, fleet):
    api.post(body=_outage(), **{"Idempotency-Key": "k1"})
    response = api.post(body=_outage(title="Something else"), **{"Idempotency-Key": "k1"})
    assert response.status_code == 422
    assert Incident.objects.count() == 1


def test_an_idempotency_key_is_per_token_and_lasts_a_day(api, client, fleet, alice, time_machine):
    first = api.post(body=_outage(), **{"Idempotency-Key": "k1"}).json()["id"]
    _, other_secret = api_token_create(name="second tool", scope="staff", by=alice)
    other = Api(client, other_secret).post(body=_outage(), **{"Idempotency-Key": "k1"})
    assert other.json()["id"] != first

    time_machine.shift(timedelta(hours=25))
    later = api.post(body=_outage(), **{"Idempotency-Key": "k1"})
    assert later.status_code == 201
    assert later.json()["id"] not in (first, other.json()["id"])
    assert Incident.objects.count() == 3


def test_a_retried_update_with_its_key_is_posted_once(api, fleet):
    incident_id = api.post(body=_outage()).json()["id"]
    body = {"status": "monitoring", "body": "A fix is in place."}
    for _ in range(2):
        response = api.post(f"{incident_id}/updates", body, **{"Idempotency-Key": "u1"})
        assert response.status_code == 201
    assert IncidentUpdate.objects.filter(incident_id=incident_id).count() == 2


def test_a_bad_request_does_not_use_up_its_key(api, fleet):
    assert api.post(body=_outage(body=""), **{"Idempotency-Key": "k1"}).status_code == 400
    assert api.post(body=_outage(), **{"Idempotency-Key": "k1"}).status_code == 201
    assert Incident.objects.count() == 1


# --- The audit trail in the admin --------------------------------------------------------


def test_the_audit_trail_is_in_the_admin_read_only(api, fleet, admin_client):
    incident_id = api.post(body=_outage()).json()["id"]
    api.post(f"{incident_id}/publish")
    entry = AuditEntry.objects.get(action="incident.publish")

    listing = admin_client.get("/admin/incidents/auditentry/?action=incident.publish")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "incident.publish" in page
    assert "token <a" in page
    assert "alerting" in page
    assert f"/admin/incidents/incident/{incident_id}/change/" in page
    assert admin_client.get("/admin/incidents/auditentry/?q=alerting").status_code == 200
    assert admin_client.get(f"/admin/incidents/auditentry/{entry.pk}/change/").status_code == 200
    assert admin_client.get("/admin/incidents/auditentry/add/").status_code == 403
    delete = admin_client.post(f"/admin/incidents/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403

    incident_page = admin_client.get(f"/admin/incidents/incident/{incident_id}/change/")
    assert "Audit trail" in incident_page.content.decode()
    assert "incident.create" in incident_page.content.decode()


def test_a_component_slug_with_a_nul_byte_is_unknown_not_a_server_error(api, fleet):
    # PostgreSQL refuses a NUL byte in a text parameter: the slug is never queried.
    response = api.post(body=_outage(components={"coordination\x00": "operational"}))
    assert response.status_code == 400
    assert response.json() == {"components": ["Unknown component 'coordination\\x00'."]}
