"""Detection rules, property-tested: quorum, hysteresis, start at the first failure."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from probes.detection import Detector, Sample, percentile

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
ROUND = timedelta(seconds=30)
REGIONS = ["ams", "nyc", "sfo", "sin"]
NYC = timedelta(milliseconds=10)  # in rounds(), nyc's samples come 10 ms after ams's


def rounds(pattern: dict[str, str]) -> list[Sample]:
    """'..xxx..' per region: one character per 30-second round, x = failed probe."""
    return [
        Sample(region, T0 + i * ROUND + timedelta(milliseconds=10 * r), mark == ".", 40.0)
        for r, (region, marks) in enumerate(pattern.items())
        for i, mark in enumerate(marks)
        if mark != " "
    ]


def feed(samples, detector=None):
    detector = detector or Detector()
    return detector, detector.feed(samples, threshold_ms=1000)


def test_two_of_three_regions_failing_open_an_outage_when_agreement_first_held():
    _, changes = feed(rounds({"ams": "..xxxxx..", "nyc": "...xxxx..", "sfo": "........."}))
    assert [c.level for c in changes] == ["outage", None]
    # nyc's failure completed the quorum: the outage starts at nyc's first failure.
    assert changes[0].at == T0 + 3 * ROUND + NYC
    # Recovered at the first success of the recovery that broke the quorum.
    assert changes[1].at == T0 + 7 * ROUND


def test_a_region_partitioned_for_hours_does_not_pull_the_start_back():
    """Amsterdam lost its route to the shard hours ago (a partition: no incident).
    Then the shard really fails and New York agrees: the outage starts at New York's
    first failure, not at Amsterdam's, hours earlier."""
    hours = 6 * 60 * 2  # six hours of 30-second rounds
    partitioned = "x" * (hours + 10)
    real = "." * hours + "xxxxxxxxxx"
    _, changes = feed(rounds({"ams": partitioned, "nyc": real, "sfo": "." * (hours + 10)}))
    assert [(c.level, c.at) for c in changes] == [("outage", T0 + hours * ROUND + NYC)]


def test_an_outage_never_starts_before_the_previous_recovery():
    detector, first = feed(rounds({"ams": "xxxx..", "nyc": "xxxx..", "sfo": "......"}))
    assert [c.level for c in first] == ["outage", None]
    later = [
        Sample(region, T0 + (6 + i) * ROUND + timedelta(milliseconds=10 * r), mark == ".", 40.0)
        for r, (region, marks) in enumerate({"ams": "xxx", "nyc": "xxx", "sfo": "..."}.items())
        for i, mark in enumerate(marks)
    ]
    _, again = feed(later, detector)
    assert [c.level for c in again] == ["outage"]
    assert again[0].at >= first[1].at


def test_one_partitioned_region_never_opens_an_incident():
    _, changes = feed(rounds({"ams": "xxxxxxxxxx", "nyc": "..........", "sfo": ".........."}))
    assert changes == []


def test_a_lone_region_cannot_open_an_incident_even_if_it_is_the_only_one():
    _, changes = feed(rounds({"ams": "xxxxxxxxxx"}))
    assert changes == []


def test_two_failures_are_not_an_outage():
    _, changes = feed(rounds({"ams": "..xx....", "nyc": "..xx....", "sfo": "..xx...."}))
    assert changes == []


def test_a_single_success_inside_an_outage_does_not_close_it():
    _, changes = feed(rounds({"ams": "xxx.xxx..", "nyc": "xxx.xxx..", "sfo": "........."}))
    assert [(c.level, c.at) for c in changes] == [
        ("outage", T0 + NYC),  # both failed in the first round; nyc's completed the quorum
        (None, T0 + 7 * ROUND),
    ]


def test_slow_answers_make_the_shard_degraded_from_the_first_slow_probe():
    samples = [
        Sample(region, T0 + i * ROUND, True, 2500.0 if i >= 4 else 50.0)
        for i in range(10)
        for region in ("ams", "nyc")
    ]
    _, changes = feed(samples)
    assert [(c.level, c.at) for c in changes] == [("degraded", T0 + 4 * ROUND)]


def test_feeding_the_same_samples_again_changes_nothing():
    samples = rounds({"ams": "..xxxxx..", "nyc": "...xxxx..", "sfo": "........."})
    detector, _ = feed(samples)
    before = detector.to_json()
    _, again = feed(samples, detector)
    assert again == []
    assert detector.to_json() == before


def test_percentile_is_a_value_that_was_seen():
    assert percentile([10, 20, 30, 40], 50) == 20
    assert percentile([10, 20, 30, 40], 95) == 40
    assert percentile([7], 99) == 7


# --- properties -------------------------------------------------------------------------

patterns = st.dictionaries(
    st.sampled_from(REGIONS), st.text(alphabet=".x ", min_size=0, max_size=40), min_size=1
)


@settings(max_examples=300, deadline=None)
@given(patterns, st.sampled_from(REGIONS))
def test_one_region_alone_never_opens_an_outage(pattern, culprit):
    """Whatever one region sees, if every other region only ever succeeds, no outage."""
    pattern = {r: (m if r == culprit else m.replace("x", ".")) for r, m in pattern.items()}
    _, changes = feed(rounds(pattern))
    assert "outage" not in [c.level for c in changes]


@settings(max_examples=300, deadline=None)
@given(patterns)
def test_flapping_never_opens_an_outage(pattern):
    """With never three failures in a row from any region, there is no outage."""
    flapping = {r: m.replace(" ", "").replace("xxx", "x.x") for r, m in pattern.items()}
    while any("xxx" in m for m in flapping.values()):
        flapping = {r: m.replace("xxx", "x.x") for r, m in flapping.items()}
    _, changes = feed(rounds(flapping))
    assert "outage" not in [c.level for c in changes]


@settings(max_examples=300, deadline=None)
@given(patterns)
def test_every_outage_starts_at_a_failing_sample_and_opens_and_closes_alternately(pattern):
    samples = rounds(pattern)
    failing = {s.at for s in samples if not s.ok}
    _, changes = feed(samples)
    outages = [c for c in changes if c.level == "outage"]
    assert all(c.at in failing for c in outages)
    levels = [c.level == "outage" for c in changes]
    assert all(a != b for a, b in pairwise(levels))  # never opened twice in a row
    times = [c.at for c in changes]
    assert times == sorted(times)


@settings(max_examples=200, deadline=None)
@given(patterns, st.integers(min_value=0, max_value=200))
def test_any_batching_and_a_save_in_between_give_the_same_answer(pattern, cut):
    samples = sorted(rounds(pattern), key=lambda s: (s.at, s.region))
    cut = min(cut, len(samples))
    _, whole = feed(samples)
    first_half, early = feed(samples[:cut])
    restored = Detector.from_json(first_half.to_json())
    _, late = feed(samples[cut:], restored)
    assert early + late == whole


def test_an_outage_reopened_by_another_region_never_ends_before_it_began():
    """Found by hypothesis: sfo's first success came before nyc reopened the outage."""
    _, changes = feed(rounds({"ams": "xxxxx..", "nyc": "xx..xx  x", "sfo": "xxxxxxx.."}))
    times = [c.at for c in changes]
    assert times == sorted(times)
    assert [c.level for c in changes] == ["outage", None, "outage", None]


# --- slowness ---------------------------------------------------------------------------

SLOW, FAST = 2500.0, 40.0


def timed(pattern: dict[str, str], start: int = 0) -> list[Sample]:
    """Like rounds(), from round ``start``: . = fast answer, s = slow answer, x = failed."""
    return [
        Sample(
            region,
            T0 + (start + i) * ROUND + timedelta(milliseconds=10 * r),
            mark != "x",
            None if mark == "x" else SLOW if mark == "s" else FAST,
        )
        for r, (region, marks) in enumerate(pattern.items())
        for i, mark in enumerate(marks)
        if mark != " "
    ]


def round_by_round(pattern: dict[str, str]) -> list[tuple[int, str | None, datetime]]:
    """(round fed, level, at) of every change, feeding one round at a time."""
    detector = Detector()
    found = []
    for i in range(max(len(marks) for marks in pattern.values())):
        one = {region: marks[i : i + 1] for region, marks in pattern.items()}
        found += [(i, c.level, c.at) for c in detector.feed(timed(one, i), threshold_ms=1000)]
    return found


def test_slowness_ends_two_fast_rounds_later_at_the_first_fast_answer():
    slow_then_fast = {"ams": "ssssss" + "." * 12, "nyc": "ssssss" + "." * 12}
    assert round_by_round(slow_then_fast) == [
        (1, "degraded", T0),  # the third slow answer: sustained
        (7, None, T0 + 6 * ROUND),  # the second fast round, not five minutes later
    ]


def test_slowness_ends_as_fast_with_probes_a_few_seconds_late_or_early():
    samples = [
        Sample(region, T0 + i * ROUND + timedelta(seconds=jitter), True, SLOW if i < 6 else FAST)
        for i in range(12)
        for region, jitter in (("ams", 4 if i % 2 else -4), ("nyc", 0))
    ]
    changes = Detector().feed(samples, threshold_ms=1000)
    assert [(c.level, c.at) for c in changes] == [
        ("degraded", T0 - timedelta(seconds=4)),
        (None, T0 + 6 * ROUND - timedelta(seconds=4)),
    ]


def test_a_slow_answer_or_two_is_noise_not_slowness():
    _, changes = feed(timed({"ams": "..s.........s....", "nyc": "...s............."}))
    assert changes == []


def test_slow_answers_from_before_the_recovery_never_reopen_it():
    """Five minutes of answers: the slow ones are still in them after the recovery,
    and must not open the slowness again (no flapping)."""
    detector = Detector()
    changes = detector.feed(
        timed({"ams": "sssss" + "." * 12 + "s", "nyc": "sssss" + "." * 13}), threshold_ms=1000
    )
    assert [c.level for c in changes] == ["degraded", None]


def test_an_outage_ending_in_slowness_is_degraded_from_the_recovery():
    _, changes = feed(timed({"ams": "xxxxxsssss", "nyc": "xxxxxsssss"}))
    assert [(c.level, c.at) for c in changes] == [
        ("outage", T0 + NYC),
        ("degraded", T0 + 5 * ROUND),
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(REGIONS), st.text(alphabet=".sx ", min_size=0, max_size=40), min_size=1
    )
)
def test_every_change_is_a_new_level_and_nothing_ends_before_it_began(pattern):
    samples = timed(pattern)
    changes = Detector().feed(samples, threshold_ms=1000)
    levels = [None, *(c.level for c in changes)]
    assert all(a != b for a, b in pairwise(levels))
    rank = {None: 0, "degraded": 1, "outage": 2}
    for before, after in pairwise(changes):
        if rank[after.level] < rank[before.level]:  # an end (or a step down), not an
            assert after.at >= before.at  # outage dated back to its first failure
    slow = [s.at for s in samples if s.latency_ms == SLOW]
    if len(slow) < 3:
        assert "degraded" not in levels


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(REGIONS), st.text(alphabet=".sx ", min_size=0, max_size=40), min_size=1
    ),
    st.integers(min_value=0, max_value=200),
)
def test_slowness_too_gives_the_same_answer_whatever_the_batches(pattern, cut):
    samples = sorted(timed(pattern), key=lambda s: (s.at, s.region))
    cut = min(cut, len(samples))
    _, whole = feed(samples)
    first_half, early = feed(samples[:cut])
    _, late = feed(samples[cut:], Detector.from_json(first_half.to_json()))
    assert early + late == whole


# --- losing contact ---------------------------------------------------------------------


def test_after_contact_is_lost_an_outage_is_established_again_from_its_own_first_failure():
    detector, changes = feed(timed({"ams": "..xxxx", "nyc": "..xxxx", "sfo": "......"}))
    assert [c.level for c in changes] == ["outage"]
    detector.lost_contact(T0 + 5 * ROUND + NYC)
    assert detector.level is None

    again = detector.feed(timed({"ams": "xxxx", "nyc": "xxxx"}, start=40), threshold_ms=1000)

    # Not the old run's failures: the new run's, when its quorum held.
    assert [(c.level, c.at) for c in again] == [("outage", T0 + 40 * ROUND + NYC)]


def test_after_contact_is_lost_answers_that_come_back_fine_change_nothing():
    detector, _ = feed(timed({"ams": "..xxxx", "nyc": "..xxxx", "sfo": "......"}))
    detector.lost_contact(T0 + 5 * ROUND + 2 * NYC)
    assert (
        detector.feed(
            timed({"ams": "....", "nyc": "....", "sfo": "...."}, start=40), threshold_ms=1000
        )
        == []
    )


def test_samples_from_before_contact_was_lost_count_for_nothing():
    detector, _ = feed(timed({"ams": "..xx", "nyc": "..xx", "sfo": "...."}))
    detector.lost_contact(T0 + 4 * ROUND)
    # Late ones from before (a region's batch delayed), then two failures each: no outage.
    late = timed({"ams": "    x", "nyc": "    x", "sfo": "    x"})
    assert (
        detector.feed([*late, *timed({"ams": "xx", "nyc": "xx"}, start=40)], threshold_ms=1000)
        == []
    )
    assert Detector.from_json(detector.to_json()) == detector
