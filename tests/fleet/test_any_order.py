"""Events reach us late, twice and out of order (several control-plane hosts,
retries, a replayed queue). For random fleets, incidents and event sets, every
delivery — shuffled, with repeats, in random batches — leaves the same placements,
tailnets and affected-tailnet rows as delivering them one by one in order, and both
equal a brute-force answer: placements asked instant by instant, the affected
windows by ``incidents.impact.affected_windows``."""

from datetime import timedelta

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.events import event_parse
from fleet.services import fleet_events_ingest
from incidents.impact import ImpactWindow, PlacementSpan, affected_windows
from incidents.models import Placement, ShardImpact, Tailnet, TailnetImpact
from incidents.services import WindowSpec, incident_create
from tests.conftest import T0

from .conftest import NOW, event
from .test_derive import brute_force

M = timedelta(minutes=1)
SHARDS = ["use1", "use2", "euw1"]
TAILNETS = ["acme", "globex", "initech"]
minutes = st.sampled_from([0, 10, 20, 30, 40]).flatmap(lambda m: st.sampled_from([m, m, m + 3]))


@st.composite
def event_sets(draw):
    ids = draw(
        st.lists(st.text("ab09:", min_size=1, max_size=3), min_size=1, max_size=14, unique=True)
    )
    events = []
    for event_id in ids:
        kind = draw(
            st.sampled_from(
                ["tailnet.created", "tailnet.migrated", "tailnet.renamed", "tailnet.deleted"]
            )
        )
        fields = {"tailnet": draw(st.sampled_from(TAILNETS))}
        if kind in ("tailnet.created", "tailnet.migrated"):
            fields["shard"] = draw(st.sampled_from(SHARDS))
        if kind in ("tailnet.created", "tailnet.renamed"):
            fields["display_name"] = draw(st.sampled_from(["one", "two"]))
        at = T0 + draw(minutes) * M + timedelta(microseconds=draw(st.sampled_from([0, 500_000])))
        events.append(event(event_id, kind, at.isoformat(), **fields))
    return events


@st.composite
def incidents(draw):
    result = []
    for _ in range(draw(st.integers(1, 2))):
        windows = []
        for shard in draw(st.lists(st.sampled_from(SHARDS), min_size=1, unique=True)):
            start, end = sorted(draw(st.lists(minutes, min_size=2, max_size=2, unique=True)))
            level = draw(st.sampled_from(["degraded", "partial", "outage"]))
            windows.append((shard, level, start, draw(st.sampled_from([end, None]))))
        result.append(windows)
    return result


def _at(minute):
    return None if minute is None else T0 + minute * M


def what_we_believe(fleet):
    """Placements, tailnets and affected-tailnet rows (open rows without their
    seconds: those grow with the clock of each rebuild)."""
    placements = sorted(
        Placement.objects.values_list("tailnet__slug", "shard__slug", "starts_at", "ends_at")
    )
    tailnets = sorted(
        Tailnet.objects.values_list("slug", "display_name", "created_at", "deleted_at")
    )
    affected = sorted(
        (title, slug, shard, level, s, e, seconds if e is not None else None)
        for title, slug, shard, level, s, e, seconds in TailnetImpact.objects.values_list(
            "incident__title",
            "tailnet__slug",
            "shard__slug",
            "level",
            "starts_at",
            "ends_at",
            "seconds",
        )
    )
    return placements, tailnets, affected


def brute_force_answer(events, planned):
    parsed = [event_parse(item, now=NOW)[0] for item in events]
    placements, tailnets, spans = [], [], []
    for slug in TAILNETS:
        own = [e for e in parsed if e.tailnet == slug]
        if not own:
            continue
        placed, name, created_at, deleted_at = brute_force(own, slug)
        tailnets.append((slug, name, created_at, deleted_at))
        for shard, s, e in placed:
            placements.append((slug, shard, s, e))
            spans.append(PlacementSpan(slug, shard, s, e))
    affected = []
    for n, windows in enumerate(planned):
        model = [ImpactWindow(n, shard, level, _at(s), _at(e)) for shard, level, s, e in windows]
        for w in affected_windows(spans, model):
            seconds = w.seconds(as_of=NOW) if w.end is not None else None
            affected.append((f"incident {n}", w.tailnet, w.shard, w.level, w.start, w.end, seconds))
    return sorted(placements), sorted(tailnets), sorted(affected)


def deliver(batches, planned, committed, time_machine):
    """The incidents first, then the batches, a second apart (a rebuild is skipped when
    nothing changed after the last one, to the microsecond)."""
    time_machine.move_to(NOW - timedelta(hours=1), tick=False)
    with committed():
        for n, windows in enumerate(planned):
            incident_create(
                title=f"incident {n}",
                body="x",
                started_at=T0,
                shard_impacts=[WindowSpec(sh, lv, _at(s), _at(e)) for sh, lv, s, e in windows],
                published=True,
                at=T0,
            )
    accepted = 0
    for n, batch in enumerate(batches):
        time_machine.move_to(NOW - timedelta(seconds=len(batches) - n), tick=False)
        with committed():
            accepted += fleet_events_ingest(events=batch)["accepted"]
    return accepted


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=event_sets(), planned=incidents(), data=st.data())
def test_every_delivery_order_gives_the_same_answer_as_brute_force(
    fleet, committed, time_machine, events, planned, data
):
    expected = brute_force_answer(events, planned)
    in_order = sorted(events, key=lambda e: (event_parse(e, now=NOW)[0].at, e["id"]))
    repeated = data.draw(st.lists(st.sampled_from(events), max_size=5))
    shuffled = data.draw(st.permutations(events + repeated))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(shuffled)), max_size=4)))
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True)]

    for delivery in ([[e] for e in in_order], batches):
        with transaction.atomic():
            accepted = deliver(delivery, planned, committed, time_machine)
            assert accepted == len(events)
            assert what_we_believe(fleet) == expected
            assert ShardImpact.objects.count() == sum(len(w) for w in planned)
            transaction.set_rollback(True)
