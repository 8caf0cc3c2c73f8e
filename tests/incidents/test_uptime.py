"""Tests for incidents.uptime: stories first, then properties against a brute-force model.

The model at the bottom applies the rules literally, one minute at a time; the
property tests check that the sweep in ``incidents.uptime`` agrees with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from functools import cache
from itertools import pairwise, zip_longest
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incidents.levels import COMPONENT_STATUSES, LEVELS
from incidents.uptime import (
    DayUptime,
    Interval,
    Tally,
    component_intervals,
    component_status_from_shards,
    daily_uptime,
    fleet_uptime,
    monthly,
    silent_everywhere,
    total,
)

DAY = date(2024, 3, 5)
MIDNIGHT = datetime(2024, 3, 5, tzinfo=UTC)
FULL_DAY = 24 * 60 * 60  # seconds
DAY_MINUTES = 24 * 60
LONG_AFTER = MIDNIGHT + timedelta(days=2)


def at(hour: int, minute: int = 0, second: int = 0, *, days: int = 0) -> datetime:
    """A time on DAY (or ``days`` later)."""
    return MIDNIGHT + timedelta(days=days, hours=hour, minutes=minute, seconds=second)


def one_day(
    intervals: Sequence[Interval],
    *,
    covered: Sequence[tuple[datetime, datetime | None]] = ((MIDNIGHT, None),),
    uncovered: Sequence[tuple[datetime, datetime | None]] = (),
    now: datetime = LONG_AFTER,
) -> DayUptime:
    [day] = daily_uptime(
        intervals=intervals,
        covered=covered,
        uncovered=uncovered,
        first_day=DAY,
        last_day=DAY,
        now=now,
    )
    return day


def in_minutes(**counts: int) -> Tally:
    """A tally written in minutes, as the stories below think in them."""
    return Tally(**{name.replace("_minutes", "_seconds"): 60 * n for name, n in counts.items()})


# --- uptime stories ----------------------------------------------------------


def test_a_24_minute_outage_costs_24_minutes() -> None:
    day = one_day([Interval(at(10, 2), at(10, 26), "outage")])

    assert day.tally == in_minutes(total_minutes=DAY_MINUTES, outage_minutes=24)
    assert day.tally.downtime_seconds == 60 * 24
    assert day.uptime_pct == pytest.approx(100 * (DAY_MINUTES - 24) / DAY_MINUTES)
    assert day.worst_level == "outage"


def test_a_partial_outage_is_weighted_0_3() -> None:
    day = one_day([Interval(at(9), at(10, 40), "partial")])

    assert day.tally.partial_seconds == 60 * 100
    assert day.tally.downtime_seconds == pytest.approx(60 * 30)
    assert day.uptime_pct == pytest.approx(100 * (DAY_MINUTES - 30) / DAY_MINUTES)
    assert day.worst_level == "partial"


def test_degraded_costs_nothing_but_is_reported() -> None:
    day = one_day([Interval(at(9), at(10), "degraded")])

    assert day.tally.degraded_seconds == 60 * 60
    assert day.tally.downtime_seconds == 60 * 0
    assert day.uptime_pct == 100.0
    assert day.worst_level == "degraded"


def test_two_overlapping_incidents_count_a_minute_once_at_its_worst_level() -> None:
    day = one_day(
        [
            Interval(at(10, 0), at(10, 30), "outage"),
            Interval(at(10, 20), at(11, 0), "partial"),
            Interval(at(10, 25), at(10, 50), "outage"),
        ]
    )

    assert day.tally.outage_seconds == 60 * 50
    assert day.tally.partial_seconds == 60 * 10


def test_a_65_second_outage_costs_65_seconds_not_the_two_minutes_it_touches() -> None:
    day = one_day([Interval(at(5, 19, 25), at(5, 20, 30), "outage")])

    assert day.tally.outage_seconds == 65
    assert day.tally.total_seconds == FULL_DAY


def test_fractions_of_a_second_are_cut_off_each_instant() -> None:
    half = timedelta(milliseconds=500)
    late_start = one_day([Interval(at(5, 19, 25) + half, at(5, 20, 30), "outage")])
    late_end = one_day([Interval(at(5, 19, 25), at(5, 20, 30) + half, "outage")])
    within_one_second = one_day([Interval(at(5, 19, 25), at(5, 19, 25) + half, "outage")])

    assert late_start.tally.outage_seconds == 65
    assert late_end.tally.outage_seconds == 65
    assert within_one_second.tally.outage_seconds == 0


def test_uptime_is_exact_and_the_float_is_the_same_number() -> None:
    day = one_day([Interval(at(5, 19, 25), at(5, 20, 30), "outage")])

    assert day.uptime == Fraction(100 * (FULL_DAY - 65), FULL_DAY)
    assert day.uptime_pct == float(day.uptime)


def test_minutes_before_coverage_are_grey_not_up() -> None:
    created_at_noon = one_day([], covered=[(at(12), None)])

    assert created_at_noon.tally.total_seconds == 60 * 720
    assert created_at_noon.uptime_pct == 100.0


def test_a_monitoring_gap_is_grey_unless_an_incident_covers_it() -> None:
    silent = one_day([], uncovered=[(at(10), at(11))])
    silent_during_an_outage = one_day(
        [Interval(at(10, 30), at(10, 40), "outage")], uncovered=[(at(10), at(11))]
    )

    assert silent.tally == Tally(total_seconds=FULL_DAY - 3600)
    assert silent_during_an_outage.tally == Tally(total_seconds=FULL_DAY - 3000, outage_seconds=600)


def test_a_component_has_no_data_only_while_every_shard_is_silent() -> None:
    gaps = {"use1": [(at(10), at(12))], "use2": [(at(11), None), (at(11, 30), at(11, 45))]}

    assert silent_everywhere(gaps, shard_count=2, now=at(13)) == [(at(11), at(12))]
    assert silent_everywhere(gaps, shard_count=3, now=at(13)) == []


def test_impact_outside_coverage_is_ignored() -> None:
    day = one_day(
        [Interval(at(11), at(13), "outage")],
        covered=[(at(12), at(18))],
    )

    assert day.tally == in_minutes(total_minutes=360, outage_minutes=60)


def test_a_day_without_coverage_has_no_uptime() -> None:
    day = one_day([Interval(at(11), at(13), "outage")], covered=[])

    assert day.tally == Tally()
    assert day.uptime_pct is None
    assert day.worst_level is None


def test_an_ongoing_outage_counts_up_to_now_only() -> None:
    day = one_day([Interval(at(10), None, "outage")], now=at(10, 30))

    assert day.tally == in_minutes(total_minutes=630, outage_minutes=30)


def test_the_second_in_progress_does_not_count_yet() -> None:
    day = one_day(
        [Interval(at(10), None, "outage"), Interval(at(10, 30, 40), None, "outage")],
        now=at(10, 30, 20) + timedelta(milliseconds=900),
    )

    assert day.tally == Tally(total_seconds=37820, outage_seconds=1820)


def test_future_minutes_are_not_counted() -> None:
    today, tomorrow = daily_uptime(
        intervals=[Interval(at(18), at(6, days=1), "outage")],
        covered=[(MIDNIGHT, None)],
        first_day=DAY,
        last_day=DAY + timedelta(days=1),
        now=at(12),
    )

    assert today.tally == in_minutes(total_minutes=720)
    assert tomorrow.tally == Tally()
    assert tomorrow.uptime_pct is None


def test_an_interval_straddling_midnight_is_split_across_days() -> None:
    today, tomorrow = daily_uptime(
        intervals=[Interval(at(23, 50), at(0, 15, days=1), "partial")],
        covered=[(MIDNIGHT, None)],
        first_day=DAY,
        last_day=DAY + timedelta(days=1),
        now=at(0, days=3),
    )

    assert (today.day, today.tally.partial_seconds) == (DAY, 600)
    assert (tomorrow.day, tomorrow.tally.partial_seconds) == (DAY + timedelta(days=1), 900)


def test_months_and_totals_are_sums_of_days() -> None:
    leap_day_eve = datetime(2024, 2, 28, 23, tzinfo=UTC)
    days = daily_uptime(
        intervals=[Interval(leap_day_eve, leap_day_eve + timedelta(days=2), "outage")],
        covered=[(datetime(2024, 2, 28, 12, tzinfo=UTC), None)],
        first_day=date(2024, 2, 27),
        last_day=date(2024, 3, 2),
        now=datetime(2024, 4, 1, tzinfo=UTC),
    )

    assert [d.day.day for d in days] == [27, 28, 29, 1, 2]
    assert monthly(days) == {
        (2024, 2): in_minutes(total_minutes=720 + DAY_MINUTES, outage_minutes=60 + DAY_MINUTES),
        (2024, 3): in_minutes(total_minutes=2 * DAY_MINUTES, outage_minutes=DAY_MINUTES - 60),
    }
    assert total(days) == in_minutes(
        total_minutes=720 + 3 * DAY_MINUTES, outage_minutes=2 * DAY_MINUTES
    )


def test_fleet_uptime_weights_tailnets_by_minutes_not_by_percentages() -> None:
    def last_90_days(impact: list[Interval], placed_at: datetime) -> Tally:
        days = daily_uptime(
            intervals=impact,
            covered=[(placed_at, None)],
            first_day=DAY - timedelta(days=89),
            last_day=DAY,
            now=at(0, days=1),
        )
        return total(days)

    new_tailnet = last_90_days([Interval(at(0), at(12), "outage")], placed_at=at(0))
    old_tailnet = last_90_days([], placed_at=at(0, days=-88))

    fleet = fleet_uptime([new_tailnet, old_tailnet])

    assert new_tailnet.uptime_pct == 50.0
    assert old_tailnet.uptime_pct == 100.0
    assert fleet == in_minutes(total_minutes=90 * DAY_MINUTES, outage_minutes=720)
    assert fleet.uptime_pct == pytest.approx(100 * (1 - 720 / (90 * DAY_MINUTES)))  # not 75%


def test_ninety_days_of_a_few_hundred_intervals_is_fast() -> None:
    first_day = DAY - timedelta(days=89)
    impacts = [
        Interval(
            at(i % 24, i % 60, i % 7, days=-(i % 90)),
            None if i % 50 == 0 else at(i % 24, i % 60, days=-(i % 90)) + timedelta(minutes=i),
            LEVELS[i % 3],
        )
        for i in range(300)
    ]

    started = time.perf_counter()
    days = daily_uptime(
        intervals=impacts,
        covered=[(at(0, days=-89), None)],
        first_day=first_day,
        last_day=DAY,
        now=at(0, days=1),
    )
    elapsed = time.perf_counter() - started

    assert len(days) == 90
    assert total(days).total_seconds == 90 * FULL_DAY
    assert elapsed < 1.0  # a minute-by-minute loop would be far slower than the sweep


# --- tallies and segments ----------------------------------------------------


def test_tallies_add_up_and_an_empty_tally_is_grey() -> None:
    a = in_minutes(total_minutes=100, outage_minutes=1, partial_minutes=2, degraded_minutes=3)
    b = in_minutes(total_minutes=50, outage_minutes=4, partial_minutes=5, degraded_minutes=6)

    assert a + b == in_minutes(
        total_minutes=150, outage_minutes=5, partial_minutes=7, degraded_minutes=9
    )
    assert Tally().uptime_pct is None
    assert total([]) == fleet_uptime([]) == Tally()
    assert monthly([]) == {}


def one_shard(intervals: list[Interval], *, now: datetime) -> list[Interval]:
    """A component with a single shard: its bar follows that shard's worst level."""
    return component_intervals(operator=[], shards={"use1": intervals}, shard_count=1, now=now)


def test_a_single_shard_component_is_sorted_disjoint_second_aligned_segments() -> None:
    tick = timedelta(milliseconds=250)
    segments = one_shard(
        [
            Interval(at(10, 5, 30), at(10, 20), "partial"),
            Interval(at(10, 0, 10) + tick, at(10, 10, 1) + tick, "outage"),
            Interval(at(10, 20), at(10, 30), "partial"),
            Interval(at(11), None, "degraded"),
        ],
        now=at(11, 2, 1) + tick,
    )

    assert segments == [
        Interval(at(10, 0, 10), at(10, 10, 1), "outage"),
        Interval(at(10, 10, 1), at(10, 30), "partial"),
        Interval(at(11), at(11, 2, 1), "degraded"),
    ]


def test_a_shard_window_starting_after_now_shows_nothing() -> None:
    assert one_shard([Interval(at(12), None, "outage")], now=at(11)) == []


# --- component status --------------------------------------------------------


@pytest.mark.parametrize(
    ("levels", "status"),
    [
        ([], "operational"),
        ([None, None], "operational"),
        (["outage"], "major_outage"),
        (["outage", "outage", "outage"], "major_outage"),
        (["outage", None], "partial_outage"),
        (["outage", "degraded"], "partial_outage"),
        (["partial", "partial"], "partial_outage"),
        ([None, "partial", "degraded"], "partial_outage"),
        (["degraded", None], "degraded_performance"),
        (["degraded", "degraded"], "degraded_performance"),
    ],
)
def test_component_status_from_shards(levels: list[str | None], status: str) -> None:
    assert component_status_from_shards(levels) == status


def test_a_component_follows_its_shards() -> None:
    segments = component_intervals(
        operator=[],
        shards={
            "use1": [Interval(at(10), at(11), "outage")],
            "use2": [Interval(at(10, 30), at(10, 45), "outage")],
        },
        shard_count=3,
        now=at(12),
    )
    assert segments == [Interval(at(10), at(11), "partial")]

    segments = component_intervals(
        operator=[],
        shards={
            "use1": [Interval(at(10), at(11), "outage")],
            "use2": [Interval(at(10, 30), at(10, 45), "outage")],
        },
        shard_count=2,
        now=at(12),
    )
    assert segments == [
        Interval(at(10), at(10, 30), "partial"),
        Interval(at(10, 30), at(10, 45), "outage"),
        Interval(at(10, 45), at(11), "partial"),
    ]


def test_the_operator_word_overrides_the_shards() -> None:
    segments = component_intervals(
        operator=[
            (at(10, 15), at(10, 30), "operational"),  # a false alarm from the probes
            (at(12), at(13), "major_outage"),  # probes were fine, customers were not
            (at(12, 30), at(14), "degraded_performance"),
            (at(14), None, "under_maintenance"),
        ],
        shards={"use1": [Interval(at(10), at(11), "outage"), Interval(at(14), None, "outage")]},
        shard_count=1,
        now=at(15),
    )

    assert segments == [
        Interval(at(10), at(10, 15), "outage"),
        Interval(at(10, 30), at(11), "outage"),
        Interval(at(12), at(13), "outage"),
        Interval(at(13), at(14), "degraded"),
    ]


# --- errors ------------------------------------------------------------------


def test_unknown_levels_and_statuses_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown impact level 'down'"):
        Interval(at(10), at(11), "down")
    with pytest.raises(ValueError, match="unknown impact level"):
        component_status_from_shards(["outage", "major_outage"])
    with pytest.raises(ValueError, match="unknown component status"):
        component_intervals(operator=[(at(10), None, "down")], shards={}, shard_count=0, now=at(11))


def test_intervals_must_end_after_they_start() -> None:
    with pytest.raises(ValueError, match="must end after it starts"):
        Interval(at(10), at(10), "outage")
    with pytest.raises(ValueError, match="must end after it starts"):
        one_day([], covered=[(at(11), at(10))])
    with pytest.raises(ValueError, match="must end after it starts"):
        component_intervals(
            operator=[(at(11), at(10), "major_outage")], shards={}, shard_count=0, now=at(12)
        )


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2024, 3, 5, 10)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(naive, None, "outage")
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(at(9), naive, "outage")
    with pytest.raises(ValueError, match="timezone-aware"):
        one_day([], covered=[(naive, None)])
    with pytest.raises(ValueError, match="timezone-aware"):
        one_day([], now=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        component_intervals(operator=[], shards={}, shard_count=0, now=naive)


def test_other_nonsense_is_rejected() -> None:
    with pytest.raises(ValueError, match="before first_day"):
        daily_uptime(
            intervals=[], covered=[], first_day=DAY, last_day=DAY - timedelta(days=1), now=at(0)
        )
    with pytest.raises(ValueError, match="shard_count"):
        component_intervals(operator=[], shards={"a": [], "b": []}, shard_count=1, now=at(0))
    with pytest.raises(ValueError, match="more impacted seconds"):
        in_minutes(total_minutes=1, outage_minutes=1, degraded_minutes=1)
    with pytest.raises(ValueError, match="negative"):
        in_minutes(total_minutes=1, outage_minutes=-1)


# --- the brute-force model ---------------------------------------------------
#
# The rules applied literally, one second at a time: a second counts when a span
# covers it once each instant is cut to its whole second. Looping over every second
# of four days would take minutes per run, so the model asks each stretch of seconds
# between two consecutive boundaries (where no span starts or stops, every second
# is alike) about its first second, and counts the stretch's length.

BASE = datetime(2024, 2, 27, tzinfo=UTC)  # ranges cross Feb 29 and a month end
BASE_DAY = BASE.date()
MODEL_LEVELS = {None: 0, "degraded": 1, "partial": 2, "outage": 3}
MODEL_STATUS_LEVEL = {
    "operational": None,
    "under_maintenance": None,
    "degraded_performance": "degraded",
    "partial_outage": "partial",
    "major_outage": "outage",
}

Span = tuple[int, int]
Covered = list[tuple[datetime, datetime | None]]
Operator = list[tuple[datetime, datetime | None, str]]
T = TypeVar("T")


def seconds(moment: datetime) -> int:
    """The instant's whole second, counted from BASE."""
    return math.floor((moment - BASE).total_seconds())


def cut(start: datetime, end: datetime | None, now: datetime) -> Span | None:
    """``[start, end)`` as whole seconds with the future removed, or None if empty."""
    first, stop = seconds(start), seconds(now if end is None else min(end, now))
    return (first, stop) if first < stop else None


def covering(spans: Sequence[tuple[Span, T]], second: int) -> list[T]:
    """What the spans covering ``second`` carry."""
    return [payload for (start, end), payload in spans if start <= second < end]


def stretches(spans: Sequence[tuple[Span, object]], first: int, stop: int) -> list[Span]:
    """``[first, stop)`` cut at every span boundary: seconds within one are alike."""
    cuts = {first, stop} | {b for span, _ in spans for b in span if first < b < stop}
    return list(pairwise(sorted(cuts)))


def worst(levels: list[str | None]) -> str | None:
    return max(levels, key=MODEL_LEVELS.__getitem__, default=None)


def model_levels(intervals: list[Interval], now: datetime) -> list[tuple[Span, str]]:
    return [(span, i.level) for i in intervals if (span := cut(i.start, i.end, now))]


def model_daily(
    intervals: list[Interval],
    covered: Covered,
    n_days: int,
    now: datetime,
    uncovered: Covered = (),  # type: ignore[assignment]
) -> list[Tally]:
    impacts = model_levels(intervals, now)
    data = [(span, True) for start, end in covered if (span := cut(start, end, now))]
    gaps = [(span, True) for start, end in uncovered if (span := cut(start, end, now))]
    tallies = []
    for day in range(n_days):
        counts = {"total": 0, "outage": 0, "partial": 0, "degraded": 0}
        pieces = stretches([*impacts, *data, *gaps], day * FULL_DAY, (day + 1) * FULL_DAY)
        for first, stop in pieces:
            if not covering(data, first):
                continue
            level = worst(covering(impacts, first))
            if level is None and covering(gaps, first):
                continue  # a monitoring gap, and no incident says anything
            counts["total"] += stop - first
            if level is not None:
                counts[level] += stop - first
        tallies.append(
            Tally(
                total_seconds=counts["total"],
                outage_seconds=counts["outage"],
                partial_seconds=counts["partial"],
                degraded_seconds=counts["degraded"],
            )
        )
    return tallies


def model_worst_level(intervals: list[Interval], now: datetime, second: int) -> str | None:
    return worst(covering(model_levels(intervals, now), second))


def model_status(levels: list[str | None]) -> str:
    down = levels.count("outage")
    if levels and down == len(levels):
        return "major_outage"
    if down or "partial" in levels:
        return "partial_outage"
    if "degraded" in levels:
        return "degraded_performance"
    return "operational"


def model_component(
    operator: Operator,
    shards: dict[str, list[Interval]],
    shard_count: int,
    now: datetime,
    second: int,
) -> str | None:
    said = [
        (span, MODEL_STATUS_LEVEL[status])
        for start, end, status in operator
        if (span := cut(start, end, now))
    ]
    if operator_levels := covering(said, second):
        return worst(operator_levels)
    shard_levels = [model_worst_level(intervals, now, second) for intervals in shards.values()]
    shard_levels += [None] * (shard_count - len(shard_levels))
    return MODEL_STATUS_LEVEL[model_status(shard_levels)]


def boundaries(segments: list[Interval], *spans: Iterable[tuple[datetime, datetime | None]]):
    """Every second where the segments or the given spans may change, and the one before."""
    points = {-FULL_DAY, 2 * FULL_DAY}
    for segment in segments:
        points |= {seconds(segment.start), seconds(segment.end)}
    for group in spans:
        for start, end in group:
            points |= {seconds(start)} | ({seconds(end)} if end is not None else set())
    return sorted(points | {p - 1 for p in points})


def level_at(segments: list[Interval], second: int) -> str | None:
    """The level of the segment covering ``second``, checking the segments' shape."""
    for segment, following in zip_longest(segments, segments[1:]):
        assert segment.end is not None
        assert segment.start.microsecond == segment.end.microsecond == 0
        assert segment.start < segment.end
        if following is not None:
            assert segment.end <= following.start
            assert segment.end < following.start or segment.level != following.level
    return next(
        (s.level for s in segments if seconds(s.start) <= second < seconds(s.end)),
        None,
    )


# --- property tests ----------------------------------------------------------


# Strategies are built once per shape (hence the caches): building them on
# every draw would cost more than the model does.

SECONDS = st.one_of(st.just(0), st.integers(0, 59))
MICROSECONDS = st.one_of(st.just(0), st.integers(0, 999_999))  # instants mid-second
LENGTHS = st.one_of(
    st.none(),
    st.integers(1, 180_000_000),  # microseconds: blips within or across a second
    st.integers(1, 2 * FULL_DAY).map(lambda seconds: seconds * 1_000_000),
)


@cache
def moments(n_days: int) -> st.SearchStrategy[datetime]:
    """A time in or near the range, often near a midnight, sometimes mid-second."""
    anywhere = st.integers(-5400, n_days * FULL_DAY + 5400)
    near_midnight = st.builds(
        lambda day, second: day * FULL_DAY + second,
        st.integers(0, n_days),
        st.integers(-180, 180),
    )
    return st.builds(
        lambda second, micro: BASE + timedelta(seconds=second, microseconds=micro),
        st.one_of(anywhere, near_midnight),
        MICROSECONDS,
    )


def span(start: datetime, length: int | None) -> tuple[datetime, datetime | None]:
    return start, None if length is None else start + timedelta(microseconds=length)


@cache
def spans(n_days: int) -> st.SearchStrategy[tuple[datetime, datetime | None]]:
    return st.builds(span, moments(n_days), LENGTHS)


@cache
def intervals(n_days: int, max_size: int) -> st.SearchStrategy[list[Interval]]:
    one = st.builds(
        lambda span, level: Interval(span[0], span[1], level),
        spans(n_days),
        st.sampled_from(LEVELS),
    )
    return st.lists(one, max_size=max_size)


uptime_scenarios = st.integers(1, 4).flatmap(
    lambda n_days: st.tuples(
        intervals(n_days, max_size=8),
        st.one_of(st.just([(BASE - timedelta(days=1), None)]), st.lists(spans(n_days), max_size=3)),
        st.just(n_days),
        moments(n_days),
        st.lists(spans(n_days), max_size=2),  # monitoring gaps
    )
)

# Components have no notion of days: one is plenty.
component_scenarios = st.tuples(
    st.lists(
        st.builds(
            lambda span, status: (*span, status), spans(1), st.sampled_from(COMPONENT_STATUSES)
        ),
        max_size=3,
    ),
    st.lists(intervals(1, max_size=4), max_size=3).map(
        lambda shards: {f"shard{n}": shard for n, shard in enumerate(shards)}
    ),
    st.integers(0, 1),  # active shards without any interval
    moments(1),
)


@settings(max_examples=200, deadline=None)
@given(uptime_scenarios)
def test_daily_uptime_matches_the_second_by_second_model(
    scenario: tuple[list[Interval], Covered, int, datetime, Covered],
) -> None:
    impacts, covered, n_days, now, gaps = scenario

    days = daily_uptime(
        intervals=impacts,
        covered=covered,
        first_day=BASE_DAY,
        last_day=BASE_DAY + timedelta(days=n_days - 1),
        now=now,
        uncovered=gaps,
    )

    assert [d.day for d in days] == [BASE_DAY + timedelta(days=n) for n in range(n_days)]
    assert [d.tally for d in days] == model_daily(impacts, covered, n_days, now, gaps)
    assert sum(monthly(days).values(), Tally()) == total(days)


@settings(max_examples=200, deadline=None)
@given(intervals(1, max_size=8), moments(1))
def test_a_single_shard_component_matches_the_model(impacts: list[Interval], now: datetime) -> None:
    segments = one_shard(impacts, now=now)

    for second in boundaries(segments, [(i.start, i.end) for i in impacts], [(now, None)]):
        assert level_at(segments, second) == model_worst_level(impacts, now, second), second


@settings(max_examples=200, deadline=None)
@given(component_scenarios)
def test_component_intervals_match_the_model(
    scenario: tuple[Operator, dict[str, list[Interval]], int, datetime],
) -> None:
    operator, shards, idle_shards, now = scenario
    shard_count = len(shards) + idle_shards

    segments = component_intervals(
        operator=operator, shards=shards, shard_count=shard_count, now=now
    )

    spans = [(i.start, i.end) for intervals in shards.values() for i in intervals]
    said = [(start, end) for start, end, _ in operator]
    for second in boundaries(segments, spans, said, [(now, None)]):
        expected = model_component(operator, shards, shard_count, now, second)
        assert level_at(segments, second) == expected, second
