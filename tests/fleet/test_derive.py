"""The derivation: what a tailnet's events say about its placements, name and life,
and a shard's events about the shard — whatever order and repetition they came in."""

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.derive import (
    Span,
    changed_intervals,
    merged,
    shard_derive,
    shard_retired_at,
    tailnet_derive,
)
from fleet.events import Event
from tests.conftest import T0

M = timedelta(minutes=1)


def ev(event_id, kind, minute, shard="", **payload):
    tailnet = "" if kind.startswith("shard.") else "acme"
    return Event(event_id, kind, T0 + minute * M, tailnet, shard, payload)


def test_created_then_migrated_then_deleted_is_two_placements_and_a_deletion():
    state = tailnet_derive(
        "acme",
        [
            ev("1", "tailnet.created", 0, "use1", display_name="acme.com"),
            ev("2", "tailnet.migrated", 10, "use2"),
            ev("3", "tailnet.deleted", 30),
        ],
    )
    assert state.placements == (("use1", T0, T0 + 10 * M), ("use2", T0 + 10 * M, T0 + 30 * M))
    assert (state.display_name, state.created_at, state.deleted_at) == (
        "acme.com",
        T0,
        T0 + 30 * M,
    )


def test_a_creation_after_a_deletion_brings_it_back_with_a_gap():
    state = tailnet_derive(
        "acme",
        [
            ev("1", "tailnet.created", 0, "use1", display_name="acme.com"),
            ev("2", "tailnet.deleted", 10),
            ev("3", "tailnet.migrated", 40, "euw1"),
        ],
    )
    assert state.placements == (("use1", T0, T0 + 10 * M), ("euw1", T0 + 40 * M, None))
    assert (state.created_at, state.deleted_at) == (T0, None)


def test_a_migration_to_the_shard_it_is_on_changes_nothing():
    events = [ev("1", "tailnet.created", 0, "use1", display_name="acme.com")]
    again = [*events, ev("2", "tailnet.migrated", 5, "use1")]
    assert tailnet_derive("acme", again) == tailnet_derive("acme", events)


def test_renamed_changes_only_the_name():
    state = tailnet_derive(
        "acme",
        [
            ev("1", "tailnet.created", 0, "use1", display_name="acme.com"),
            ev("2", "tailnet.renamed", 5, display_name="Acme Inc."),
        ],
    )
    assert (state.display_name, state.placements) == ("Acme Inc.", (("use1", T0, None),))


def test_any_event_creates_an_unknown_tailnet_a_rename_without_placing_it():
    state = tailnet_derive("acme", [ev("1", "tailnet.renamed", 3, display_name="Acme")])
    assert (state.display_name, state.created_at, state.placements) == ("Acme", T0 + 3 * M, ())
    state = tailnet_derive("acme", [ev("1", "tailnet.migrated", 3, "use2")])
    assert (state.display_name, state.placements) == ("acme", (("use2", T0 + 3 * M, None),))
    assert tailnet_derive("acme", []) is None


def test_a_stay_of_no_time_leaves_no_placement_and_coming_back_joins_the_placement():
    state = tailnet_derive(
        "acme",
        [
            ev("1", "tailnet.created", 0, "use1", display_name="acme.com"),
            ev("2", "tailnet.migrated", 10, "use2"),
            ev("3", "tailnet.migrated", 10, "use1"),
            ev("4", "tailnet.deleted", 20),
            ev("5", "tailnet.created", 20, "use1", display_name="acme.com"),
        ],
    )
    assert state.placements == (("use1", T0, None),)


def test_events_at_one_instant_apply_in_id_order():
    moves = [ev("b", "tailnet.migrated", 0, "use2"), ev("a", "tailnet.migrated", 0, "use1")]
    assert tailnet_derive("acme", moves).placements == (("use2", T0, None),)


# --- Any order, any repetition: equal to a brute-force model -----------------------------

TYPES = ["tailnet.created", "tailnet.migrated", "tailnet.renamed", "tailnet.deleted"]


@st.composite
def tailnet_events(draw):
    ids = draw(
        st.lists(st.text("ab09-:", min_size=1, max_size=3), min_size=1, max_size=10, unique=True)
    )
    events = []
    for event_id in ids:
        kind = draw(st.sampled_from(TYPES))
        minute = draw(st.sampled_from([0, 10, 20, 30, 40])) + draw(st.sampled_from([0, 0, 3]))
        shard = draw(st.sampled_from(["use1", "use2", "euw1"])) if kind in TYPES[:2] else ""
        name = {"display_name": draw(st.sampled_from(["a", "b"]))} if kind in TYPES[0:3:2] else {}
        events.append(Event(event_id, kind, T0 + minute * M, "acme", shard, name))
    return events


def brute_force(events, slug="acme"):
    """Which shard it is on at each instant, asked instant by instant from scratch."""
    unique = sorted({e.id: e for e in events}.values(), key=lambda e: (e.at, e.id))
    times = sorted({e.at for e in unique})

    def shard_at(t):
        shard = None
        for e in unique:
            if e.at <= t and e.type in ("tailnet.created", "tailnet.migrated"):
                shard = e.shard
            elif e.at <= t and e.type == "tailnet.deleted":
                shard = None
        return shard

    spans: list[Span] = []
    for i, t in enumerate(times):
        shard, end = shard_at(t), times[i + 1] if i + 1 < len(times) else None
        if shard is None:
            continue
        if spans and spans[-1][0] == shard and spans[-1][2] == t:
            spans[-1] = (shard, spans[-1][1], end)
        else:
            spans.append((shard, t, end))
    names = [e.payload["display_name"] for e in unique if "display_name" in e.payload]
    last_placing = max(
        (i for i, e in enumerate(unique) if e.type in ("tailnet.created", "tailnet.migrated")),
        default=-1,
    )
    deletions = [e.at for e in unique[last_placing + 1 :] if e.type == "tailnet.deleted"]
    return (
        tuple(spans),
        names[-1] if names else slug,
        times[0],
        deletions[0] if deletions else None,
    )


@settings(max_examples=300, deadline=None)
@given(events=tailnet_events(), data=st.data())
def test_every_order_and_repetition_derives_what_the_brute_force_model_says(events, data):
    repeated = data.draw(st.lists(st.sampled_from(events), max_size=4))
    shuffled = data.draw(st.permutations(events + repeated))
    state = tailnet_derive("acme", shuffled)
    assert state == tailnet_derive("acme", sorted(events, key=lambda e: (e.at, e.id)))
    assert (state.placements, state.display_name, state.created_at, state.deleted_at) == (
        brute_force(events)
    )


@settings(max_examples=200, deadline=None)
@given(old=tailnet_events(), new=tailnet_events())
def test_changed_intervals_are_exactly_where_the_two_histories_disagree(old, new):
    before, after = tailnet_derive("acme", old).placements, tailnet_derive("acme", new).placements
    changed = changed_intervals(before, after)

    def on(spans, shard, t):
        return any(s == shard and a <= t and (b is None or t < b) for s, a, b in spans)

    instants = {T0 + minute * M for minute in range(-1, 50)}
    for shard in ("use1", "use2", "euw1"):
        for t in instants:
            inside = any(a <= t and (b is None or t < b) for a, b in changed.get(shard, []))
            assert inside == (on(before, shard, t) != on(after, shard, t))
        assert merged(changed.get(shard, [])) == changed.get(shard, [])


def test_merged_joins_overlapping_and_touching_intervals():
    assert merged([(T0 + 5 * M, None), (T0, T0 + 5 * M), (T0 - 9 * M, T0 - 8 * M)]) == [
        (T0 - 9 * M, T0 - 8 * M),
        (T0, None),
    ]


# --- Shards ------------------------------------------------------------------------------


def test_a_shard_takes_each_field_from_the_last_event_that_set_it():
    state = shard_derive(
        [
            ev("3", "shard.updated", 20, "use9", public_name="US East 9 (new)"),
            ev(
                "1",
                "shard.added",
                0,
                "use9",
                region="us-east",
                public_name="US East 9",
                probe_url="https://use9.example.com/",
            ),
            ev("2", "shard.updated", 10, "use9", region="eu-west"),
        ]
    )
    assert state.fields == {
        "region": "eu-west",
        "public_name": "US East 9 (new)",
        "probe_url": "https://use9.example.com/",
        "component": None,  # the new region's coordination component
    }
    assert (state.active, state.added_at, state.retired_at) == (True, T0, None)


def test_a_retired_shard_is_retired_from_its_retirement_on():
    events = [
        ev("1", "shard.added", 0, "use9", region="us-east", public_name="x", probe_url=""),
        ev("2", "shard.retired", 30, "use9"),
    ]
    assert shard_derive(events).active is False
    assert shard_retired_at(events, at=T0 + 29 * M) is None
    assert shard_retired_at(events, at=T0 + 30 * M) == T0 + 30 * M
