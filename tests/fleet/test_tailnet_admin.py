"""Oscar the operator changes tailnets in the admin: creating, renaming, live-migrating
and deleting one are fleet events of source ``admin``, and its placements follow from
the whole log; a refusal is shown on the form he filled in, and nothing is stored. A
tailnet's page shows its placements with the events that began and ended each."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model

from fleet.models import FleetEvent
from fleet.services import fleet_events_ingest, tailnet_migrate
from incidents.models import AuditEntry, Placement, Tailnet, TailnetImpact
from incidents.services import WindowSpec, incident_create
from tests.conftest import T0

from .conftest import NOW, M, created, migrated

H = timedelta(hours=1)
API, ADMIN = ["Feed", "API"], ["Operator", "(admin)"]  # sources, as the page words them
TAILNETS = "/admin/incidents/tailnet/"


def _time(value):
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _placements(slug):
    return list(
        Placement.objects.filter(tailnet__slug=slug)
        .order_by("starts_at")
        .values_list("shard__slug", "starts_at", "ends_at")
    )


def _page(slug, view=""):
    return f"{TAILNETS}{Tailnet.objects.get(slug=slug).pk}/{view}"


@pytest.fixture
def acme(fleet, frozen):
    """The control plane created acme on use1 at T0."""
    fleet_events_ingest(events=[created("cp:acme:1", T0, "acme", "use1")])
    return Tailnet.objects.get(slug="acme")


# --- Create and rename ---------------------------------------------------------------------


def test_oscar_adds_a_tailnet_and_the_log_has_his_event(oscar, fleet, frozen):
    response = oscar.post(
        f"{TAILNETS}add/",
        {
            "slug": "initech",
            "display_name": "initech.com",
            "shard": fleet["euw1"].pk,
            "created_at_0": "2026-01-05",
            "created_at_1": "12:00:00",
        },
    )

    assert response.status_code == 302
    event = FleetEvent.objects.get(tailnet="initech")
    assert event.id.startswith("admin:")
    assert (event.type, event.source, event.shard, event.at) == (
        "tailnet.created",
        "admin",
        "euw1",
        T0 + 2 * H,
    )
    assert event.payload == {"display_name": "initech.com"}
    assert _placements("initech") == [("euw1", T0 + 2 * H, None)]
    audit = AuditEntry.objects.get(action="tailnet.create")
    assert (audit.user.username, audit.changes["event"]) == ("oscar", event.id)


def test_a_tailnet_created_in_the_future_is_refused_on_the_form(oscar, fleet, frozen):
    later = NOW + H
    response = oscar.post(
        f"{TAILNETS}add/",
        {
            "slug": "initech",
            "display_name": "initech.com",
            "shard": fleet["euw1"].pk,
            "created_at_0": later.strftime("%Y-%m-%d"),
            "created_at_1": later.strftime("%H:%M:%S"),
        },
    )

    assert response.status_code == 200
    assert "More than 5 minutes in the future" in response.content.decode()
    assert response.context["adminform"].form.errors["created_at"]
    assert not Tailnet.objects.filter(slug="initech").exists()
    assert not FleetEvent.objects.exists()


def test_oscar_renames_acme_with_an_event(oscar, acme):
    response = oscar.post(_page("acme", "change/"), {"display_name": "ACME Corporation"})

    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.display_name == "ACME Corporation"
    renamed = FleetEvent.objects.get(type="tailnet.renamed")
    assert (renamed.source, renamed.at, renamed.payload) == (
        "admin",
        NOW,
        {"display_name": "ACME Corporation"},
    )
    assert _placements("acme") == [("use1", T0, None)]
    assert AuditEntry.objects.get(action="tailnet.rename").changes["display_name"] == [
        "acme.com",
        "ACME Corporation",
    ]


# --- Live-migrate ----------------------------------------------------------------------------


def test_oscar_live_migrates_acme_off_a_failing_shard(oscar, acme, fleet, committed):
    incident = incident_create(
        title="US East 1 down",
        body="Logins fail.",
        started_at=NOW - 2 * H,
        shard_impacts=[WindowSpec("use1", "outage", NOW - 2 * H, None)],
        published=True,
        at=NOW - 2 * H,
    )
    form = oscar.get(_page("acme", "live-migrate/")).content.decode()
    assert "To shard" in form

    with committed():
        response = oscar.post(
            _page("acme", "live-migrate/"),
            {"to_shard": fleet["use2"].pk, "at": _time(NOW - H)},
            follow=True,
        )

    assert response.redirect_chain[-1][0] == _page("acme", "change/")
    assert "Live-migrated acme to use2 at 2026-01-06 09:00:00 UTC." in response.content.decode()
    assert _placements("acme") == [("use1", T0, NOW - H), ("use2", NOW - H, None)]
    moved = FleetEvent.objects.get(type="tailnet.migrated")
    assert (moved.source, moved.shard, moved.at) == ("admin", "use2", NOW - H)
    # Moving it off the failing shard ended its impact: one hour, not two.
    assert TailnetImpact.objects.get(incident=incident, tailnet=acme).seconds == 3600
    assert AuditEntry.objects.get(action="tailnet.migrate").changes["to"] == "use2"


@pytest.mark.parametrize(
    ("shard", "at", "field", "message"),
    [
        ("use1", NOW - H, "to_shard", "is already on shard &#x27;use1&#x27;; nothing to migrate"),
        ("use2", T0 - H, "at", "is not after the current placement began"),
        ("use2", NOW + H, "at", "More than 5 minutes in the future"),
    ],
    ids=["same-shard", "before-its-placement", "in-the-future"],
)
def test_a_refused_migration_is_shown_on_the_form_and_changes_nothing(
    oscar, acme, fleet, shard, at, field, message
):
    response = oscar.post(
        _page("acme", "live-migrate/"), {"to_shard": fleet[shard].pk, "at": _time(at)}
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    form = response.context["form"]
    assert form.errors[field]
    assert form["to_shard"].value() == str(fleet[shard].pk)  # what he chose, kept
    assert list(FleetEvent.objects.values_list("id", flat=True)) == ["cp:acme:1"]
    assert _placements("acme") == [("use1", T0, None)]


# --- Delete ----------------------------------------------------------------------------------


def test_oscar_deletes_acme_and_its_history_stays_marked_deleted(oscar, acme):
    response = oscar.post(
        _page("acme", "delete-tailnet/"), {"at": _time(NOW - H), "confirm": "on"}, follow=True
    )

    assert "Deleted acme at 2026-01-06 09:00:00 UTC; its history stays." in (
        response.content.decode()
    )
    acme.refresh_from_db()
    assert acme.deleted_at == NOW - H
    assert _placements("acme") == [("use1", T0, NOW - H)]
    gone = FleetEvent.objects.get(type="tailnet.deleted")
    assert (gone.source, gone.at) == ("admin", NOW - H)

    listed = oscar.get(f"{TAILNETS}?deleted=yes").content.decode()
    assert "Deleted 2026-01-06 09:00:00 UTC" in listed
    assert ">acme<" in listed
    assert ">acme<" not in oscar.get(f"{TAILNETS}?deleted=no").content.decode()
    page = oscar.get(_page("acme", "change/")).content.decode()
    assert "acme: deleted 2026-01-06 09:00:00 UTC" in page
    assert "live-migrate/" not in page  # nothing to move
    # The row stays: blast radius counts the tailnets that existed during a window.
    assert oscar.get(_page("acme", "delete/")).status_code == 403


def test_deleting_needs_a_confirmation(oscar, acme):
    response = oscar.post(_page("acme", "delete-tailnet/"), {"at": _time(NOW - H)})

    assert response.status_code == 200
    assert response.context["form"].errors["confirm"]
    acme.refresh_from_db()
    assert acme.deleted_at is None
    assert not FleetEvent.objects.filter(type="tailnet.deleted").exists()


def test_a_deleted_tailnet_cannot_be_deleted_or_moved_again(oscar, acme, fleet):
    oscar.post(_page("acme", "delete-tailnet/"), {"at": _time(NOW - H), "confirm": "on"})

    again = oscar.post(_page("acme", "delete-tailnet/"), {"at": _time(NOW), "confirm": "on"})
    assert "was already deleted at 2026-01-06 09:00:00 UTC" in again.content.decode()
    moved = oscar.post(
        _page("acme", "live-migrate/"), {"to_shard": fleet["use2"].pk, "at": _time(NOW)}
    )
    assert "has no current placement to move (it was deleted)" in moved.content.decode()
    assert FleetEvent.objects.count() == 2


# --- The placement history, with the events behind it ---------------------------------------


def _cell(event_id, kind, at, source):
    """An event as the history shows it: its id, type, time and source."""
    return [event_id, kind, "at", *at.split(), "UTC", "source:", *source]


def _history_rows(html):
    table = html.split("<th>Began with</th>")[1].split("</table>")[0]
    return [
        [re.sub(r"<[^>]+>", " ", cell).split() for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]


def test_acmes_page_shows_each_placement_with_the_events_behind_it(oscar, acme, fleet):
    fleet_events_ingest(
        events=[
            migrated("cp:acme:2", T0 + 6 * H, "acme", "use2"),
            created("cp:globex:1", T0, "globex", "euw1"),
        ]
    )
    operator = get_user_model().objects.get(username="oscar")
    tailnet_migrate(tailnet=acme, to_shard="use1", at=NOW - 10 * M, by=operator)
    back = FleetEvent.objects.get(source="admin").id

    html = oscar.get(_page("acme", "change/")).content.decode()

    assert _history_rows(html) == [
        [
            ["use1"],
            ["2026-01-06", "09:50:00", "UTC"],
            ["—", "current", "—"],
            _cell(back, "tailnet.migrated", "2026-01-06 09:50:00", ADMIN),
            ["—"],
        ],
        [
            ["use2"],
            ["2026-01-05", "16:00:00", "UTC"],
            ["2026-01-06", "09:50:00", "UTC"],
            _cell("cp:acme:2", "tailnet.migrated", "2026-01-05 16:00:00", API),
            _cell(back, "tailnet.migrated", "2026-01-06 09:50:00", ADMIN),
        ],
        [
            ["use1"],
            ["2026-01-05", "10:00:00", "UTC"],
            ["2026-01-05", "16:00:00", "UTC"],
            _cell("cp:acme:1", "tailnet.created", "2026-01-05 10:00:00", API),
            _cell("cp:acme:2", "tailnet.migrated", "2026-01-05 16:00:00", API),
        ],
    ]
    for event_id in ("cp:acme:1", "cp:acme:2", back):
        url = f"/admin/fleet/fleetevent/{quote(event_id)}/change/"
        assert f'href="{url}"' in html
        assert oscar.get(url).status_code == 200
    assert "cp:globex:1" not in html

    log = "/admin/fleet/fleetevent/?tailnet=acme"
    assert f'<a href="{log}">All 3 events of this tailnet in the event log</a>' in html
    listed = oscar.get(log).content.decode()
    for event_id in ("cp:acme:1", "cp:acme:2", back):
        assert f"/admin/fleet/fleetevent/{quote(event_id)}/change/" in listed
    assert quote("cp:globex:1") not in listed


def test_a_placement_from_before_the_feed_says_so(oscar, fleet, frozen):
    initech = Tailnet.objects.create(slug="initech", display_name="initech.com", created_at=T0)
    Placement.objects.create(tailnet=initech, shard=fleet["use1"], starts_at=T0)

    html = oscar.get(_page("initech", "change/")).content.decode()

    assert _history_rows(html)[0][3] == ["—", "(from", "before", "the", "feed)"]
    assert "No event yet: it was created before the feed" in html
