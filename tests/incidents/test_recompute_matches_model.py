"""The SQL recompute gives exactly the answer of the pure rule in incidents.impact,
for random placements (with live migrations) and random impact windows."""

from datetime import timedelta

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidents.impact import ImpactWindow, PlacementSpan, affected_windows
from incidents.models import Incident, Placement, ShardImpact, Tailnet, TailnetImpact
from incidents.services import tailnet_impacts_recompute
from tests.conftest import T0

SHARDS = ["use1", "use2", "euw1"]
# Shared round offsets make windows and placements meet exactly at their edges.
second_offsets = st.one_of(
    st.sampled_from([0, 600, 1200, 1800, 3600]), st.integers(min_value=0, max_value=4 * 3600)
)


@st.composite
def placement_histories(draw):
    """Per tailnet: consecutive placements (a migration closes one, opens the next)."""
    histories = []
    for _ in range(draw(st.integers(1, 4))):
        cuts = sorted(set(draw(st.lists(second_offsets, min_size=1, max_size=5))))
        shards = [draw(st.sampled_from(SHARDS)) for _ in cuts]
        still_placed = draw(st.booleans())
        spans = []
        for i, (cut, shard) in enumerate(zip(cuts, shards, strict=True)):
            end = cuts[i + 1] if i + 1 < len(cuts) else None
            if end is None and not still_placed:
                end = cut + draw(st.integers(1, 3600))
            spans.append((shard, cut, end))
        histories.append(spans)
    return histories


@st.composite
def windows(draw):
    result = []
    for shard in draw(st.lists(st.sampled_from(SHARDS), min_size=1, max_size=3, unique=True)):
        start, end = sorted(draw(st.lists(second_offsets, min_size=2, max_size=2, unique=True)))
        level = draw(st.sampled_from(["degraded", "partial", "outage"]))
        result.append((shard, level, start, draw(st.sampled_from([end, None]))))
    return result


def at(offset, micro=0):
    return None if offset is None else T0 + timedelta(seconds=offset, microseconds=micro)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    histories=placement_histories(),
    impacts=windows(),
    micro=st.sampled_from([0, 0, 500_000, 999_999]),
)
def test_sql_recompute_equals_the_pure_rule(fleet, histories, impacts, micro):
    as_of = T0 + timedelta(hours=6)
    with transaction.atomic():
        incident = Incident.objects.create(title="x", started_at=T0, published=True)
        spans, model_windows = [], []
        for n, history in enumerate(histories):
            tailnet = Tailnet.objects.create(slug=f"t{n}", display_name=f"t{n}", created_at=T0)
            for shard, start, end in history:
                Placement.objects.create(
                    tailnet=tailnet,
                    shard=fleet[shard],
                    starts_at=at(start, micro),
                    ends_at=at(end, micro),
                )
                spans.append(
                    PlacementSpan(tailnet.pk, fleet[shard].pk, at(start, micro), at(end, micro))
                )
        for shard, level, start, end in impacts:
            window = ShardImpact.objects.create(
                incident=incident,
                shard=fleet[shard],
                level=level,
                starts_at=at(start),
                ends_at=at(end),
            )
            model_windows.append(
                ImpactWindow(window.pk, fleet[shard].pk, level, window.starts_at, window.ends_at)
            )

        tailnet_impacts_recompute(incident_id=incident.pk, as_of=as_of)

        got = sorted(
            (
                r.shard_impact_id,
                r.tailnet_id,
                r.shard_id,
                r.level,
                r.starts_at,
                r.ends_at,
                r.seconds,
            )
            for r in TailnetImpact.objects.filter(incident=incident)
        )
        expected = sorted(
            (w.key, w.tailnet, w.shard, w.level, w.start, w.end, w.seconds(as_of=as_of))
            for w in affected_windows(spans, model_windows)
        )
        assert got == expected
        transaction.set_rollback(True)
