"""One event as a producer sends it: refused with a reason per field, or parsed to the
values that decide whether two events with one id are the same event."""

from datetime import UTC, datetime, timedelta

import pytest

from fleet.events import event_parse

from .conftest import NOW, created, event, migrated


def parse(item):
    return event_parse(item, now=NOW)


def test_z_and_an_offset_are_the_same_time():
    zulu, _ = parse(migrated("m1", "2026-01-05T10:00:00Z", "acme", "use2"))
    offset, _ = parse(migrated("m1", "2026-01-05T12:00:00+02:00", "acme", "use2"))
    assert zulu.content() == offset.content()
    assert zulu.at == datetime(2026, 1, 5, 10, tzinfo=UTC)


def test_nanoseconds_and_lowercase_are_read():
    parsed, problems = parse(migrated("m1", "2026-01-05t10:00:00.123456789z", "acme", "use2"))
    assert problems == {}
    assert parsed.at == datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("2026-01-05T10:00:00", "RFC 3339"),  # no zone
        ("2026-01-05 10:00", "RFC 3339"),
        ("20260105T100000Z", "RFC 3339"),
        ("2026-02-30T10:00:00Z", "Not a valid date-time"),
        ("0001-01-01T00:00:00+01:00", "Not a valid date-time"),
        (1767607200, "RFC 3339"),
        (None, "RFC 3339"),
    ],
)
def test_a_time_without_zone_or_not_rfc3339_is_refused(at, message):
    _, problems = parse(migrated("m1", at, "acme", "use2"))
    assert message in problems["at"][0]


def test_a_time_more_than_five_minutes_ahead_is_refused():
    ok, _ = parse(migrated("m1", NOW + timedelta(minutes=5), "acme", "use2"))
    _, problems = parse(migrated("m1", NOW + timedelta(minutes=5, seconds=1), "acme", "use2"))
    assert ok is not None
    assert problems == {"at": ["More than 5 minutes in the future: check the producer's clock."]}


def test_each_type_needs_its_fields_and_only_those():
    _, problems = parse(event("c1", "tailnet.created", NOW, tailnet="acme", colour="red"))
    assert problems["display_name"] == ["This field is required."]
    assert problems["shard"] == ["This field is required."]
    assert problems["colour"][0].startswith("Not a field of tailnet.created")
    _, problems = parse(event("u1", "shard.updated", NOW, shard="use1"))
    assert problems == {
        "non_field_errors": ["Send at least one of region, public_name, probe_url, component."]
    }
    _, problems = parse(event("x", "tailnet.exploded", NOW, tailnet="acme"))
    assert problems["type"][0].startswith("Unknown type 'tailnet.exploded'")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "x" * 201, "At most 200 characters."),
        ("id", "", "May not be empty."),
        ("id", 7, "Must be a string."),
        ("id", "a\x00b", "Control characters are not allowed."),
        ("tailnet", "acme corp", "Letters, numbers, underscores or hyphens only."),
        ("tailnet", float("nan"), "Must be a string."),
        ("display_name", "x" * 201, "At most 200 characters."),
        ("display_name", "\ud800", "Control characters are not allowed."),
        ("shard", ["use1"], "Must be a string."),
    ],
)
def test_garbage_is_refused_with_a_reason(field, value, message):
    _, problems = parse({**created("c1", NOW, "acme", "use1"), field: value})
    assert problems[field] == [message]


def test_a_display_name_may_hold_any_printable_text():
    parsed, problems = parse(
        created("c1", NOW, "acme", "use1", display_name="Acme\u00a0👩\u200d💻")
    )
    assert problems == {}
    assert parsed.payload == {"display_name": "Acme\u00a0👩\u200d💻"}


def test_not_an_object_is_refused():
    assert parse(["id", "c1"]) == (
        None,
        {"non_field_errors": ["Each event must be a JSON object."]},
    )


def test_a_shard_added_keeps_its_fields_in_the_payload():
    parsed, problems = parse(
        event(
            "s1",
            "shard.added",
            NOW,
            shard="use9",
            region="us-east",
            public_name="US East 9",
            probe_url="https://use9.example.com/health",
        )
    )
    assert problems == {}
    assert (parsed.tailnet, parsed.shard) == ("", "use9")
    assert parsed.payload == {
        "region": "us-east",
        "public_name": "US East 9",
        "probe_url": "https://use9.example.com/health",
    }
    _, problems = parse(
        event(
            "s1",
            "shard.added",
            NOW,
            shard="use9",
            region="us-east",
            public_name="x",
            probe_url="ftp://nope",
        )
    )
    assert problems == {"probe_url": ["An http(s) URL, or empty."]}
