"""Reconcile: the control plane sends its whole current map, and what we believe at
``as_of`` becomes exactly that, through events a retry never repeats.

acme (alice's) and globex (bob's) live on use1, initech on use2, all since a day
before T0; the map is read an hour before NOW.
"""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from fleet import reconcile
from fleet.models import FleetEvent
from fleet.queries import believed_map
from fleet.reconcile import MapInvalid, fleet_reconcile
from fleet.services import fleet_events_ingest
from incidents.models import Placement, Tailnet, TailnetImpact
from incidents.services import WindowSpec, incident_create
from plumbing.tokens import api_token_create
from tests.conftest import T0

from .conftest import NOW, created, event

M = timedelta(minutes=1)
DAY = timedelta(days=1)
AS_OF = NOW - 60 * M
AS_OF_TEXT = "2026-01-06T09:00:00Z"
URL = "/api/v1/fleet/placements"
pytestmark = pytest.mark.usefixtures("frozen")


def line(tailnet, shard, display_name=None):
    item = {"tailnet": tailnet, "shard": shard}
    if display_name is not None:
        item["display_name"] = display_name
    return json.dumps(item) + "\n"


TODAY = [line("acme", "use1", "acme.com"), line("globex", "use1"), line("initech", "use2")]


def believed(at=AS_OF):
    return [tuple(row) for row in believed_map(at)]


def events():
    return sorted(FleetEvent.objects.filter(source="reconcile").values_list("id", "type"))


@pytest.fixture
def customers(fleet, committed):
    with committed():
        fleet_events_ingest(
            events=[
                created("acme-1", T0 - DAY, "acme", "use1"),
                created("globex-1", T0 - DAY, "globex", "use1"),
                created("initech-1", T0 - DAY, "initech", "use2"),
            ]
        )
    return fleet


def test_reconciling_the_map_we_already_believe_writes_nothing(customers):
    before = set(Placement.objects.values_list("pk", "shard_id", "starts_at", "ends_at"))

    counts = fleet_reconcile(lines=TODAY, as_of=AS_OF)

    assert counts == {
        "lines": 3,
        "unchanged": 3,
        "created": 0,
        "migrated": 0,
        "renamed": 0,
        "deleted": 0,
        "accepted": 0,
        "duplicates": 0,
        "elsewhere": 0,
        "elsewhere_tailnets": [],
    }
    assert events() == []
    assert set(Placement.objects.values_list("pk", "shard_id", "starts_at", "ends_at")) == before


def test_the_difference_becomes_events_at_as_of_and_the_placements_follow(customers, committed):
    the_map = [
        line("acme", "use2", "Acme Corporation"),  # moved and renamed
        line("globex", "use1", "globex.com"),  # unchanged (its name is globex.com)
        line("hooli", "euw1", "Hooli"),  # new to us
        # initech is gone
    ]

    with committed():
        counts = fleet_reconcile(lines=the_map, as_of=AS_OF)

    assert counts == {
        "lines": 3,
        "unchanged": 1,
        "created": 1,
        "migrated": 1,
        "renamed": 1,
        "deleted": 1,
        "accepted": 4,
        "duplicates": 0,
        "elsewhere": 0,
        "elsewhere_tailnets": [],
    }
    assert events() == sorted(
        [
            (f"reconcile:{AS_OF_TEXT}:acme:use2", "tailnet.migrated"),
            (
                f"reconcile:{AS_OF_TEXT}:acme:~name:"
                + reconcile.hashlib.sha256(b"Acme Corporation").hexdigest()[:16],
                "tailnet.renamed",
            ),
            (f"reconcile:{AS_OF_TEXT}:hooli:euw1", "tailnet.created"),
            (f"reconcile:{AS_OF_TEXT}:initech:~deleted", "tailnet.deleted"),
        ]
    )
    assert believed() == [
        ("acme", "use2", "Acme Corporation"),
        ("globex", "use1", "globex.com"),
        ("hooli", "euw1", "Hooli"),
    ]
    assert list(
        Placement.objects.filter(tailnet__slug="acme")
        .order_by("starts_at")
        .values_list("shard__slug", "starts_at", "ends_at")
    ) == [("use1", T0 - DAY, AS_OF), ("use2", AS_OF, None)]
    assert Tailnet.objects.get(slug="initech").deleted_at == AS_OF
    assert Tailnet.objects.get(slug="hooli").created_at == AS_OF


def test_a_retried_reconcile_is_a_no_op_and_a_corrected_map_adds_only_its_corrections(
    customers,
):
    first = [line("acme", "use2"), line("globex", "euw1"), line("initech", "use2")]
    fleet_reconcile(lines=first, as_of=AS_OF)
    stored = FleetEvent.objects.count()

    again = fleet_reconcile(lines=first, as_of=AS_OF)
    assert (again["accepted"], again["migrated"], FleetEvent.objects.count()) == (0, 0, stored)

    corrected = fleet_reconcile(
        lines=[line("acme", "use2"), line("globex", "use2"), line("initech", "use2")],
        as_of=AS_OF,
    )
    assert (corrected["accepted"], corrected["migrated"], corrected["elsewhere"]) == (1, 1, 0)
    assert believed() == [
        ("acme", "use2", "acme.com"),
        ("globex", "use2", "globex.com"),
        ("initech", "use2", "initech.com"),
    ]


def test_a_correction_an_earlier_reconcile_at_the_same_instant_outranks_is_reported(
    customers,
):
    fleet_reconcile(lines=[line("acme", "use1"), line("globex", "use2")], as_of=AS_OF)

    # globex:euw1 sorts before globex:use2, so at AS_OF the earlier event applies last.
    corrected = fleet_reconcile(lines=[line("acme", "use1"), line("globex", "euw1")], as_of=AS_OF)
    assert (corrected["elsewhere"], corrected["elsewhere_tailnets"]) == (1, ["globex"])

    later = fleet_reconcile(lines=[line("acme", "use1"), line("globex", "euw1")], as_of=AS_OF + M)
    assert (later["migrated"], later["elsewhere"]) == (1, 0)
    assert believed(AS_OF + M)[1][:2] == ("globex", "euw1")


def test_a_map_with_bad_lines_is_refused_whole_with_the_lines_at_fault(customers):
    bad = [
        line("acme", "use2"),
        "not json\n",
        "\n",
        line("globex", "nowhere"),
        json.dumps({"tailnet": "initech"}) + "\n",
        json.dumps({"tailnet": "hooli", "shard": "euw1", "region": "eu"}) + "\n",
        json.dumps(["acme"]) + "\n",
        json.dumps({"tailnet": "bad slug!", "shard": "use1"}) + "\n",
    ]

    with pytest.raises(MapInvalid) as refused:
        fleet_reconcile(lines=bad, as_of=AS_OF)

    assert [number for number, _ in refused.value.errors] == [2, 5, 6, 7, 8]
    assert "shard: This field is required." in refused.value.errors[1][1]
    assert "region: Unknown field" in refused.value.errors[2][1]
    assert events() == []
    assert believed()[0] == ("acme", "use1", "acme.com")


def test_unknown_shards_and_a_tailnet_twice_are_refused_before_anything_is_written(customers):
    with pytest.raises(MapInvalid) as refused:
        fleet_reconcile(
            lines=[line("acme", "use2"), line("globex", "nowhere"), line("acme", "use1")],
            as_of=AS_OF,
        )

    assert refused.value.errors == [
        (2, "shard: Unknown shard 'nowhere'."),
        (3, "tailnet: 'acme' is on 2 lines (first line 1); once each."),
    ]
    assert events() == []


def test_a_shard_retired_before_as_of_cannot_take_tailnets(customers):
    fleet_events_ingest(events=[event("r", "shard.retired", AS_OF - M, shard="euw1")])

    with pytest.raises(MapInvalid) as refused:
        fleet_reconcile(lines=[line("acme", "euw1")], as_of=AS_OF)

    assert refused.value.errors == [(1, "shard: Shard 'euw1' was retired at 2026-01-06T08:59:00Z.")]


def test_as_of_in_the_future_is_refused(customers):
    with pytest.raises(reconcile.ValidationError, match="future"):
        fleet_reconcile(lines=TODAY, as_of=NOW + 6 * M)


def test_a_map_larger_than_a_chunk_is_applied_a_chunk_at_a_time(customers, monkeypatch):
    monkeypatch.setattr(reconcile, "STAGE", 2)
    monkeypatch.setattr(reconcile, "EVENTS", 2)
    calls = []
    real = reconcile.fleet_events_ingest

    def counting(**kwargs):
        calls.append(len(kwargs["events"]))
        return real(**kwargs)

    monkeypatch.setattr(reconcile, "fleet_events_ingest", counting)
    the_map = [line(f"t{n:02}", "euw1") for n in range(7)]

    counts = fleet_reconcile(lines=the_map, as_of=AS_OF)

    # Seven new tailnets, and acme, globex and initech gone: ten events, two at a time.
    assert (counts["created"], counts["deleted"], counts["accepted"]) == (7, 3, 10)
    assert calls == [2, 2, 2, 2, 2]
    assert [slug for slug, *_ in believed()] == [f"t{n:02}" for n in range(7)]


def test_a_tailnet_moved_into_an_ongoing_incident_is_affected_from_as_of(
    customers, committed, time_machine
):
    time_machine.move_to(NOW - M, tick=False)
    with committed():
        incident = incident_create(
            title="use2 unavailable",
            body="x",
            started_at=AS_OF - 30 * M,
            shard_impacts=[WindowSpec("use2", "outage", AS_OF - 30 * M)],
            published=True,
            at=AS_OF - 30 * M,
        )

    time_machine.move_to(NOW, tick=False)
    with committed():
        fleet_reconcile(
            lines=[line("acme", "use2"), line("globex", "use1"), line("initech", "use2")],
            as_of=AS_OF,
        )

    assert sorted(
        TailnetImpact.objects.filter(incident=incident).values_list("tailnet__slug", "starts_at")
    ) == [("acme", AS_OF), ("initech", AS_OF - 30 * M)]


# --- The command --------------------------------------------------------------------------


def test_the_command_reconciles_a_file_and_prints_the_counts(customers, tmp_path):
    path = tmp_path / "map.ndjson"
    path.write_text("".join([line("acme", "use2"), line("globex", "use1")]))
    out = io.StringIO()

    call_command("fleet_reconcile", str(path), "--as-of", AS_OF_TEXT, stdout=out)

    assert out.getvalue().strip() == (
        "2 tailnets in the map: 1 unchanged, 0 created, 1 migrated, 0 renamed, 1 deleted. "
        "Events: 2 stored, 0 already stored."
    )


def test_the_command_names_the_bad_lines_and_writes_nothing(customers, tmp_path):
    path = tmp_path / "map.ndjson"
    path.write_text(line("acme", "use2") + "{oops\n")

    with pytest.raises(CommandError) as refused:
        call_command("fleet_reconcile", str(path), "--as-of", AS_OF_TEXT)

    assert str(refused.value).startswith("1 bad line(s); nothing was reconciled.\n  line 2: ")
    assert events() == []


def test_the_command_refuses_an_as_of_without_a_zone_and_a_missing_file(customers, tmp_path):
    with pytest.raises(CommandError, match="--as-of: An RFC 3339"):
        call_command("fleet_reconcile", "-", "--as-of", "2026-01-06T09:00:00")
    with pytest.raises(CommandError, match="No such file"):
        call_command("fleet_reconcile", str(tmp_path / "nope"), "--as-of", AS_OF_TEXT)


# --- The API ------------------------------------------------------------------------------


def put(client, body, secret, as_of=AS_OF_TEXT, content_type="application/x-ndjson"):
    return client.put(
        f"{URL}?as_of={as_of}",
        body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {secret}"},
    )


def get(client, secret, as_of=AS_OF_TEXT):
    return client.get(f"{URL}?as_of={as_of}", headers={"Authorization": f"Bearer {secret}"})


def test_get_returns_the_map_we_believe_and_putting_it_back_changes_nothing(
    client, customers, control_plane
):
    answer = get(client, control_plane)
    body = b"".join(answer.streaming_content).decode()

    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/x-ndjson"
    assert body.splitlines() == [
        '{"tailnet": "acme", "shard": "use1", "display_name": "acme.com"}',
        '{"tailnet": "globex", "shard": "use1", "display_name": "globex.com"}',
        '{"tailnet": "initech", "shard": "use2", "display_name": "initech.com"}',
    ]
    again = put(client, body, control_plane)
    assert (again.status_code, again.json()["unchanged"], again.json()["accepted"]) == (200, 3, 0)


def test_put_reconciles_and_answers_with_the_counts(client, customers, control_plane):
    answer = put(client, line("acme", "use2") + line("globex", "use1"), control_plane)

    assert answer.status_code == 200
    assert answer.json() == {
        "lines": 2,
        "unchanged": 1,
        "created": 0,
        "migrated": 1,
        "renamed": 0,
        "deleted": 1,
        "accepted": 2,
        "duplicates": 0,
        "elsewhere": 0,
        "elsewhere_tailnets": [],
    }
    # Before as_of, the map was what it was.
    assert [row[:2] for row in believed(AS_OF - M)] == [
        ("acme", "use1"),
        ("globex", "use1"),
        ("initech", "use2"),
    ]


def test_an_as_of_with_an_unencoded_plus_is_read_as_its_zone(client, customers, control_plane):
    answer = put(client, "".join(TODAY), control_plane, as_of="2026-01-06T10:00:00+01:00")

    assert (answer.status_code, answer.json()["unchanged"]) == (200, 3)


def test_put_refuses_bad_lines_with_their_numbers_and_writes_nothing(
    client, customers, control_plane
):
    answer = put(client, line("acme", "use2") + line("globex", "nowhere"), control_plane)

    assert answer.status_code == 400
    assert answer.json() == {
        "lines": [{"line": 2, "error": "shard: Unknown shard 'nowhere'."}],
        "count": 1,
    }
    assert events() == []


def test_put_refuses_other_media_types_a_bad_as_of_and_too_many_lines(
    client, customers, control_plane, monkeypatch
):
    assert put(client, "".join(TODAY), control_plane, content_type="text/csv").status_code == 415
    bad = put(client, "".join(TODAY), control_plane, as_of="yesterday")
    assert (bad.status_code, list(bad.json())) == (400, ["as_of"])
    monkeypatch.setattr("fleet.api.MAX_MAP_LINES", 2)
    too_many = put(client, "".join(TODAY), control_plane)
    assert too_many.status_code == 413
    assert "manage.py fleet_reconcile" in too_many.json()["detail"]
    assert events() == []


def test_the_map_needs_a_fleet_token(client, customers):
    assert client.get(URL).status_code == 401
    for scope in ("staff", "probe", "metrics"):
        secret = api_token_create(name=f"bob's {scope}", scope=scope)[1]
        assert get(client, secret).status_code == 403, scope
        assert put(client, "".join(TODAY), secret).status_code == 403, scope
    assert events() == []


def test_an_empty_map_is_refused_rather_than_deleting_every_tailnet(
    client, customers, control_plane
):
    with pytest.raises(MapInvalid) as refused:
        fleet_reconcile(lines=["\n"], as_of=AS_OF)
    assert refused.value.errors == [(0, "The map is empty: nothing was reconciled.")]

    assert put(client, "\n", control_plane).status_code == 400
    assert put(client, "", control_plane).status_code in (400, 415)  # no body: never a 500
    assert events() == []
    assert len(believed()) == 3


def test_a_line_nested_too_deep_is_a_bad_line_not_a_crash(customers):
    with pytest.raises(MapInvalid) as refused:
        fleet_reconcile(lines=[line("acme", "use1"), "[" * 50_000 + "\n"], as_of=AS_OF)
    assert refused.value.errors[0][0] == 2
