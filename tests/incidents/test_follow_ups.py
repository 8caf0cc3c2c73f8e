"""Follow-ups: the improvements an incident led to. alice runs the service (staff, with
a staff token for her scripts); bob holds only a probe token. The outage on US East 1
started on Monday 5 January 2026 at 10:00 UTC and was resolved 24 minutes later;
today is Thursday 8 January.

Written by the services (from the admin and the operator API alike), each write
audited; public, and so announced to the snapshot, once the postmortem is published."""

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.crypto import get_random_string

from incidents import services
from incidents.models import AuditEntry, FollowUp, Incident
from incidents.services import WindowSpec, incident_create, incident_edit, incident_resolve
from incidents.signals import published_data_changed
from plumbing.tokens import api_token_create
from tests.conftest import T0
from tests.incidents.test_admin import _add_row, _post_data

M = timedelta(minutes=1)
NOW = T0 + timedelta(days=3, hours=2)  # Thursday 2026-01-08 12:00 UTC
TODAY = date(2026, 1, 8)
MONDAY = date(2026, 1, 5)


@pytest.fixture(autouse=True)
def _frozen_now(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """Throttle counters live in the cache: a fresh one per test."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": get_random_string(12),
        }
    }
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user(
        "alice", "alice@example.com", "pw", is_staff=True, is_superuser=True
    )


@pytest.fixture
def alice_token(alice):
    return api_token_create(name="alice's scripts", scope="staff", by=alice)


@pytest.fixture
def bob_probe_secret(db):
    bob = get_user_model().objects.create_user("bob", "bob@example.com", "pw")
    return api_token_create(name="bob's probe", scope="probe", by=bob)[1]


def _outage(title="US East 1 down", start=T0, minutes=24):
    incident = incident_create(
        title=title,
        body="Logins fail on US East 1.",
        started_at=start,
        shard_impacts=[WindowSpec("use1", "outage", start, start + minutes * M)],
        published=True,
        at=start,
    )
    return incident_resolve(incident=incident, at=start + minutes * M)


@pytest.fixture
def outage(fleet, committed):
    with committed():
        return _outage()


@pytest.fixture
def announced():
    """How many times the published data was announced as changed."""
    calls = []

    def receiver(**kwargs):
        calls.append(kwargs)

    published_data_changed.connect(receiver, dispatch_uid="test-follow-ups")
    yield calls
    published_data_changed.disconnect(dispatch_uid="test-follow-ups")


def _publish_postmortem(incident):
    return incident_edit(
        incident=incident,
        changes={"postmortem": "A full disk stopped the coordination server."},
        at=NOW - timedelta(hours=1),
    )


# --- The service -------------------------------------------------------------------------


def test_alice_records_an_open_follow_up_and_it_is_audited(outage, alice, announced):
    follow_up = services.follow_up_add(
        incident=outage, text="  Alert on disk usage above 80%  ", owner="Alice Ng", by=alice
    )

    assert (follow_up.text, follow_up.owner, follow_up.status, follow_up.done_on) == (
        "Alert on disk usage above 80%",
        "Alice Ng",
        "open",
        None,
    )
    assert follow_up.created_at == follow_up.updated_at == NOW
    entry = AuditEntry.objects.get(action="follow_up.add")
    assert (entry.user, entry.incident_id) == (alice, outage.pk)
    assert entry.changes == {
        "follow_up_id": follow_up.pk,
        "text": "Alert on disk usage above 80%",
        "owner": "Alice Ng",
        "status": "open",
        "done_on": None,
    }
    # The postmortem is not published: nothing public changed.
    assert announced == []


def test_once_the_postmortem_is_published_each_change_is_announced(outage, alice, announced):
    _publish_postmortem(outage)
    announced.clear()
    follow_up = services.follow_up_add(
        incident=outage, text="Alert on disk usage", owner="Alice Ng", by=alice
    )
    assert len(announced) == 1
    assert Incident.objects.get(pk=outage.pk).updated_at == NOW  # the public page moved
    services.follow_up_change(
        follow_up=follow_up, changes={"status": "done", "done_on": TODAY}, by=alice
    )
    assert len(announced) == 2
    services.follow_up_remove(follow_up=follow_up, by=alice)
    assert len(announced) == 3


def test_done_needs_a_date_and_open_has_none(outage):
    with pytest.raises(ValidationError) as done:
        services.follow_up_add(incident=outage, text="Add a disk", owner="carol", status="done")
    assert list(done.value.message_dict) == ["done_on"]
    with pytest.raises(ValidationError) as still_open:
        services.follow_up_add(incident=outage, text="Add a disk", owner="carol", done_on=TODAY)
    assert list(still_open.value.message_dict) == ["done_on"]
    assert not FollowUp.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="follow_up").exists()


@pytest.mark.parametrize(
    ("done_on", "problem"),
    [
        (date(2026, 1, 9), "2026-01-09 is in the future (today is 2026-01-08, UTC)."),
        (date(2026, 1, 4), "2026-01-04 is before the incident started (2026-01-05)."),
    ],
)
def test_a_done_date_is_between_the_incident_and_today(outage, done_on, problem):
    with pytest.raises(ValidationError) as refused:
        services.follow_up_add(
            incident=outage, text="Add a disk", owner="carol", status="done", done_on=done_on
        )
    assert refused.value.message_dict == {"done_on": [problem]}


def test_the_incidents_first_day_and_today_are_both_fine(outage):
    for done_on in (MONDAY, TODAY):
        follow_up = services.follow_up_add(
            incident=outage, text="Add a disk", owner="carol", status="done", done_on=done_on
        )
        assert follow_up.done_on == done_on


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("text", "   "),
        ("text", "x" * 501),
        ("text", "two\nlines"),
        ("owner", ""),
        ("owner", "o" * 121),
        ("owner", "nul\x00"),
    ],
)
def test_text_and_owner_are_one_line_of_plain_text_within_the_column(outage, field, value):
    given = {"text": "Add a disk", "owner": "carol", field: value}
    with pytest.raises(ValidationError) as refused:
        services.follow_up_add(incident=outage, **given)
    assert list(refused.value.message_dict) == [field]


def test_the_longest_text_and_owner_fit(outage):
    follow_up = services.follow_up_add(incident=outage, text="x" * 500, owner="o" * 120)
    follow_up.refresh_from_db()
    assert (len(follow_up.text), len(follow_up.owner)) == (500, 120)


def test_marking_done_then_reopening_clears_the_date(outage, alice):
    follow_up = services.follow_up_add(incident=outage, text="Add a disk", owner="carol")
    services.follow_up_change(
        follow_up=follow_up, changes={"status": "done", "done_on": date(2026, 1, 7)}, by=alice
    )
    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.done_on) == ("done", date(2026, 1, 7))
    services.follow_up_change(follow_up=follow_up, changes={"status": "open"}, by=alice)
    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.done_on) == ("open", None)
    changes = [
        entry.changes
        for entry in AuditEntry.objects.filter(action="follow_up.change").order_by("id")
    ]
    assert changes == [
        {
            "follow_up_id": follow_up.pk,
            "status": ["open", "done"],
            "done_on": [None, "2026-01-07"],
        },
        {
            "follow_up_id": follow_up.pk,
            "status": ["done", "open"],
            "done_on": ["2026-01-07", None],
        },
    ]


def test_reopening_with_a_date_is_refused_and_a_change_to_nothing_writes_nothing(outage):
    follow_up = services.follow_up_add(
        incident=outage, text="Add a disk", owner="carol", status="done", done_on=TODAY
    )
    with pytest.raises(ValidationError) as refused:
        services.follow_up_change(follow_up=follow_up, changes={"status": "open", "done_on": TODAY})
    assert list(refused.value.message_dict) == ["done_on"]
    services.follow_up_change(follow_up=follow_up, changes={"owner": "carol"})
    assert not AuditEntry.objects.filter(action="follow_up.change").exists()


def test_removing_a_follow_up_is_audited(outage, alice):
    follow_up = services.follow_up_add(incident=outage, text="Add a disk", owner="carol")
    services.follow_up_remove(follow_up=follow_up, by=alice)
    assert not FollowUp.objects.exists()
    entry = AuditEntry.objects.get(action="follow_up.remove")
    assert (entry.user, entry.incident_id, entry.changes["text"]) == (
        alice,
        outage.pk,
        "Add a disk",
    )


@pytest.mark.parametrize(("status", "done_on"), [("done", None), ("open", TODAY), ("gone", None)])
def test_the_database_refuses_a_done_date_that_does_not_match_the_status(outage, status, done_on):
    with pytest.raises(IntegrityError), transaction.atomic():
        FollowUp.objects.create(
            incident=outage, text="Add a disk", owner="carol", status=status, done_on=done_on
        )


# --- The operator API --------------------------------------------------------------------


def _url(incident_id, follow_up_id=None):
    base = f"/api/v1/incidents/{incident_id}/follow-ups"
    return base if follow_up_id is None else f"{base}/{follow_up_id}"


class Api:
    def __init__(self, client, secret):
        self.client = client
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def get(self, url):
        return self.client.get(url, headers=self.headers)

    def post(self, url, body, **headers):
        return self.client.post(
            url, body, content_type="application/json", headers={**self.headers, **headers}
        )

    def patch(self, url, body):
        return self.client.patch(url, body, content_type="application/json", headers=self.headers)

    def delete(self, url):
        return self.client.delete(url, headers=self.headers)


@pytest.fixture
def api(client, alice_token):
    return Api(client, alice_token[1])


def test_alices_script_records_lists_changes_and_removes_follow_ups(
    api, outage, alice, alice_token
):
    created = api.post(_url(outage.pk), {"text": "Alert on disk usage", "owner": "Alice Ng"})
    assert created.status_code == 201, created.content
    data = created.json()
    follow_up = FollowUp.objects.get()
    assert data == {
        "id": follow_up.pk,
        "incident_id": outage.pk,
        "text": "Alert on disk usage",
        "owner": "Alice Ng",
        "status": "open",
        "done_on": None,
        "created_at": "2026-01-08T12:00:00Z",
        "updated_at": "2026-01-08T12:00:00Z",
    }
    entry = AuditEntry.objects.get(action="follow_up.add")
    assert (entry.token, entry.user, entry.remote_addr) == (alice_token[0], alice, "127.0.0.1")

    second = api.post(
        _url(outage.pk),
        {"text": "Add a second disk", "owner": "carol", "status": "done", "done_on": "2026-01-06"},
    )
    assert second.status_code == 201, second.content
    listed = api.get(_url(outage.pk))
    assert listed.status_code == 200
    assert [(f["text"], f["status"], f["done_on"]) for f in listed.json()] == [
        ("Alert on disk usage", "open", None),
        ("Add a second disk", "done", "2026-01-06"),
    ]

    done = api.patch(_url(outage.pk, follow_up.pk), {"status": "done", "done_on": "2026-01-08"})
    assert done.status_code == 200, done.content
    assert (done.json()["status"], done.json()["done_on"]) == ("done", "2026-01-08")
    reopened = api.patch(_url(outage.pk, follow_up.pk), {"status": "open"})
    assert (reopened.json()["status"], reopened.json()["done_on"]) == ("open", None)

    removed = api.delete(_url(outage.pk, follow_up.pk))
    assert removed.status_code == 204
    assert list(FollowUp.objects.values_list("text", flat=True)) == ["Add a second disk"]
    assert list(
        AuditEntry.objects.filter(action__startswith="follow_up")
        .order_by("id")
        .values_list("action", flat=True)
    ) == [
        "follow_up.add",
        "follow_up.add",
        "follow_up.change",
        "follow_up.change",
        "follow_up.remove",
    ]


def test_a_retry_with_the_same_key_records_the_follow_up_once(api, outage):
    body = {"text": "Alert on disk usage", "owner": "Alice Ng", "status": "done"}
    body["done_on"] = "2026-01-07"
    first = api.post(_url(outage.pk), body, **{"Idempotency-Key": "fu-1"})
    again = api.post(_url(outage.pk), body, **{"Idempotency-Key": "fu-1"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert FollowUp.objects.count() == 1
    other = api.post(_url(outage.pk), {**body, "owner": "carol"}, **{"Idempotency-Key": "fu-1"})
    assert other.status_code == 422
    api.delete(_url(outage.pk, first.json()["id"]))
    gone = api.post(_url(outage.pk), body, **{"Idempotency-Key": "fu-1"})
    assert gone.status_code == 409
    assert not FollowUp.objects.exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"text", "owner"}),
        ({"text": "Add a disk"}, {"owner"}),
        ({"text": "Add a disk", "owner": "carol", "status": "done"}, {"done_on"}),
        ({"text": "Add a disk", "owner": "carol", "done_on": "2026-01-08"}, {"done_on"}),
        ({"text": "Add a disk", "owner": "carol", "status": "closed"}, {"status"}),
        ({"text": "Add a disk", "owner": "carol", "done_on": "2026-13-01"}, {"done_on"}),
        ({"text": "x" * 501, "owner": "carol"}, {"text"}),
        ({"text": "Add a disk", "owner": "o" * 121}, {"owner"}),
        ({"text": "Add a disk", "owner": "carol", "due": "2026-02-01"}, {"due"}),
        ({"text": ["Add a disk"], "owner": "carol"}, {"text"}),
    ],
)
def test_bad_input_is_a_400_naming_the_fields(api, outage, body, fields):
    response = api.post(_url(outage.pk), body)
    assert response.status_code == 400, response.content
    assert set(response.json()) == fields
    assert not FollowUp.objects.exists()


def test_a_bad_change_is_a_400_naming_the_field(api, outage):
    follow_up = services.follow_up_add(incident=outage, text="Add a disk", owner="carol")
    assert set(api.patch(_url(outage.pk, follow_up.pk), {"status": "done"}).json()) == {"done_on"}
    assert set(api.patch(_url(outage.pk, follow_up.pk), {"owner": " "}).json()) == {"owner"}
    nothing = api.patch(_url(outage.pk, follow_up.pk), {})
    assert nothing.status_code == 400
    assert set(nothing.json()) == {"detail"}


def test_another_incidents_follow_up_is_not_found_here(api, outage, committed):
    with committed():
        other = _outage("EU West 1 slow", start=T0 + 2 * timedelta(hours=1))
    theirs = services.follow_up_add(incident=other, text="Tune the cache", owner="carol")

    assert api.patch(_url(outage.pk, theirs.pk), {"owner": "mallory"}).status_code == 404
    assert api.delete(_url(outage.pk, theirs.pk)).status_code == 404
    assert api.get(_url(999_999)).status_code == 404
    assert api.post(_url(999_999), {"text": "x", "owner": "y"}).status_code == 404
    assert api.delete(_url(outage.pk, 999_999)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.owner == "carol"


def test_no_token_is_a_401_and_a_probe_token_a_403(client, outage, bob_probe_secret):
    follow_up = services.follow_up_add(incident=outage, text="Add a disk", owner="carol")
    anonymous = Api(client, None)
    assert anonymous.get(_url(outage.pk)).status_code == 401
    assert anonymous.post(_url(outage.pk), {"text": "x", "owner": "y"}).status_code == 401
    probe = Api(client, bob_probe_secret)
    assert probe.get(_url(outage.pk)).status_code == 403
    assert probe.patch(_url(outage.pk, follow_up.pk), {"owner": "bob"}).status_code == 403
    assert probe.delete(_url(outage.pk, follow_up.pk)).status_code == 403
    assert FollowUp.objects.get().owner == "carol"


# --- The admin ---------------------------------------------------------------------------


def _change_url(incident):
    return reverse("admin:incidents_incident_change", args=[incident.pk])


def test_alice_adds_edits_and_removes_follow_ups_on_the_incident_page(client, alice, outage):
    client.force_login(alice)
    page = client.get(_change_url(outage))
    assert "follow_ups-TOTAL_FORMS" in page.content.decode()
    data = _add_row(
        _post_data(page), "follow_ups", text="Alert on disk usage", owner="Alice Ng", status="open"
    )
    response = client.post(_change_url(outage), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    follow_up = FollowUp.objects.get()
    assert (follow_up.text, follow_up.owner, follow_up.status) == (
        "Alert on disk usage",
        "Alice Ng",
        "open",
    )
    assert AuditEntry.objects.get(action="follow_up.add").user == alice

    data = _post_data(client.get(_change_url(outage)))
    data["follow_ups-0-status"] = "done"
    data["follow_ups-0-done_on"] = "2026-01-07"
    assert client.post(_change_url(outage), data).status_code == 302
    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.done_on) == ("done", date(2026, 1, 7))
    assert AuditEntry.objects.get(action="follow_up.change").changes["status"] == ["open", "done"]

    data = _post_data(client.get(_change_url(outage)))
    data["follow_ups-0-DELETE"] = "on"
    assert client.post(_change_url(outage), data).status_code == 302
    assert not FollowUp.objects.exists()
    assert AuditEntry.objects.filter(action="follow_up.remove").count() == 1


def test_the_admin_shows_a_done_follow_up_without_a_date_as_an_error(client, alice, outage):
    client.force_login(alice)
    data = _add_row(
        _post_data(client.get(_change_url(outage))),
        "follow_ups",
        text="Add a disk",
        owner="carol",
        status="done",
    )
    response = client.post(_change_url(outage), data)
    assert response.status_code == 200
    assert "A done follow-up needs the date it was done." in response.content.decode()
    assert not FollowUp.objects.exists()
