"""The report's figures on a small story, each computed by hand (see conftest.story)."""

from datetime import UTC, datetime
from fractions import Fraction

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.services import WindowSpec
from public.snapshot import published_version_bump
from reliability.queries import reliability_report
from reliability.report import month_index

from .conftest import JAN, NOW, M, closed_incident

DAY = 86400
JANUARY, FEBRUARY, MARCH = 2026 * 12, 2026 * 12 + 1, 2026 * 12 + 2


def months(first=JANUARY, last=MARCH):
    return {month.index: month for month in reliability_report(first=first, last=last, now=NOW)}


def test_acme_live_migrating_ten_minutes_into_an_outage_lost_ten_minutes(story):
    january = months()[JANUARY]

    assert january.incidents == 1
    assert january.by_impact["major"] == 1
    assert january.duration.total == 30 * 60
    assert january.detect.median == 2 * 60
    assert january.first_update.median == 2 * 60
    assert january.resolve.median == 30 * 60
    # Only acme was on US East 1, of the three tailnets that existed.
    assert january.blast.median == january.blast.worst == Fraction(100, 3)
    assert january.tally.total_seconds == 3 * 31 * DAY
    assert january.tally.outage_seconds == 10 * 60
    assert january.tailnet_minutes_lost == 10


def test_february_counts_overlaps_once_and_maintenance_only_when_it_hurt(story):
    february = months()[FEBRUARY]

    # The maintenance without impact is not counted.
    assert february.incidents == 4
    assert {k: v for k, v in february.by_impact.items() if v} == {
        "minor": 1,
        "major": 1,
        "maintenance": 1,
        "critical": 1,
    }
    # Durations 60, 15, 60 (the maintenance until it completed) and 30 minutes.
    assert february.duration.total == (60 + 15 + 60 + 30) * 60
    assert february.duration.median == 45 * 60
    # Two incidents have no detection time: not measured, not zero.
    assert (february.detect.measured, february.detect.missing) == (2, 2)
    assert february.detect.median == (4 * 60 + 3 * 60) / 2
    assert february.first_update.median == 2 * 60
    assert february.first_update.worst == 2 * 60
    assert february.resolve.median == 45 * 60
    assert february.blast.median == Fraction(100, 3)
    assert february.blast.worst == Fraction(200, 3)
    # globex: 15 min of outage inside an hour of partial outage, each second once at
    # its worst (not 15 + 60 x 0.3), and 10 min of the midnight outage; acme and
    # initech 10 min each in the maintenance.
    assert february.tally.outage_seconds == (15 + 10 + 2 * 10) * 60
    assert february.tally.partial_seconds == 45 * 60
    assert february.tally.total_seconds == 3 * 28 * DAY
    assert february.tailnet_minutes_lost == pytest.approx(45 + 0.3 * 45)
    assert february.uptime == Fraction(
        100 * (3 * 28 * DAY - 45 * 60 - Fraction(3, 10) * 45 * 60), 3 * 28 * DAY
    )


def test_an_outage_across_midnight_belongs_to_february_but_its_downtime_is_split(story):
    report = months()
    march = report[MARCH]

    assert march.incidents == 0
    assert march.duration.median is None
    assert march.tally.outage_seconds == 20 * 60  # globex, 00:00 to 00:20 on 1 March
    assert march.tally.total_seconds == 3 * (14 * DAY + DAY // 2)  # up to NOW
    assert march.tailnet_minutes_lost == 20


def test_drafts_count_nowhere(tailnets, committed):
    from incidents.services import incident_create

    with committed():
        incident_create(
            title="Draft",
            body="Not public.",
            started_at=JAN,
            shard_impacts=[WindowSpec("use1", "outage", JAN, JAN + 30 * M)],
            at=JAN,
        )
    january = months()[JANUARY]

    assert january.incidents == 0
    assert january.tally.outage_seconds == 0
    assert january.uptime == 100


def test_an_open_incident_counts_until_now_and_is_not_resolved_yet(tailnets, committed):
    from incidents.services import incident_create

    start = NOW - 30 * M
    with committed():
        incident_create(
            title="US East 1 down now",
            body="Investigating.",
            started_at=start,
            shard_impacts=[WindowSpec("use1", "outage", start)],
            published=True,
            at=start,
        )
    march = months()[MARCH]

    assert march.duration.total == 30 * 60
    assert (march.resolve.measured, march.resolve.missing) == (0, 1)
    assert march.tally.outage_seconds == 30 * 60


def test_no_tailnets_and_no_incidents_is_no_data_not_full_uptime(db):
    report = months()

    assert [month.uptime for month in report.values()] == [None, None, None]
    assert month_index(NOW) == MARCH


def _queries(first, last):
    cache.clear()  # the ended months' tallies too: every call computes everything
    with CaptureQueriesContext(connection) as queries:
        reliability_report(first=first, last=last, now=NOW)
    return len(queries)


def test_the_report_takes_the_same_queries_for_one_incident_or_five(tailnets, committed):
    with committed():
        closed_incident(
            "one",
            windows=[WindowSpec("use1", "outage", JAN, JAN + 5 * M)],
            started_at=JAN,
        )
    one = _queries(JANUARY - 11, JANUARY)
    with committed():
        for hour in range(1, 5):
            at = JAN + hour * 60 * M
            closed_incident(
                f"again {hour}",
                windows=[WindowSpec("euw1", "partial", at, at + 5 * M)],
                started_at=at,
            )
    assert _queries(JANUARY - 11, JANUARY) == one <= 9


def test_the_monthly_tally_agrees_with_the_fleet_uptime_of_the_status_page(story):
    from datetime import date

    from incidents.queries import fleet_uptime_tally

    report = months()
    for index, first_day, last_day in (
        (JANUARY, date(2026, 1, 1), date(2026, 1, 31)),
        (FEBRUARY, date(2026, 2, 1), date(2026, 2, 28)),
        (MARCH, date(2026, 3, 1), date(2026, 3, 31)),
    ):
        expected = fleet_uptime_tally(first_day=first_day, last_day=last_day, now=NOW)
        assert report[index].tally == expected


def test_grey_periods_have_no_data_unless_an_impact_covers_them(story, fleet):
    from datetime import UTC, date, datetime

    from incidents.models import MonitoringGap
    from incidents.queries import fleet_uptime_tally

    # No region reported on US East 2 (acme and initech) for two hours in January,
    # nor on EU West 1 (globex) for an hour from 00:10 on 1 March, ten minutes into
    # the midnight outage, which is data all the same.
    MonitoringGap.objects.create(
        shard=fleet["use2"],
        starts_at=datetime(2026, 1, 10, tzinfo=UTC),
        ends_at=datetime(2026, 1, 10, 2, tzinfo=UTC),
    )
    MonitoringGap.objects.create(
        shard=fleet["euw1"],
        starts_at=datetime(2026, 3, 1, 0, 10, tzinfo=UTC),
        ends_at=datetime(2026, 3, 1, 1, 10, tzinfo=UTC),
    )
    report = months()

    assert report[JANUARY].tally.total_seconds == 3 * 31 * DAY - 2 * 2 * 3600
    assert report[MARCH].tally.total_seconds == 3 * (14 * DAY + DAY // 2) - 3600 + 10 * 60
    assert report[MARCH].tally.outage_seconds == 20 * 60
    assert report[JANUARY].tally == fleet_uptime_tally(
        first_day=date(2026, 1, 1), last_day=date(2026, 1, 31), now=NOW
    )
    assert report[MARCH].tally == fleet_uptime_tally(
        first_day=date(2026, 3, 1), last_day=date(2026, 3, 31), now=NOW
    )


def test_maintenance_planned_for_later_this_month_is_not_counted_yet(tailnets, committed):
    from datetime import timedelta

    from incidents.services import incident_create

    later = NOW + timedelta(days=2)
    with committed():
        incident_create(
            title="Upgrading US East 1",
            body="Planned.",
            kind="maintenance",
            scheduled_for=later,
            scheduled_until=later + 60 * M,
            shard_impacts=[WindowSpec("use1", "outage", later, later + 10 * M)],
            published=True,
            at=NOW,
        )
    march = months()[MARCH]

    assert march.incidents == 0
    assert march.tally.outage_seconds == 0


def test_ended_months_are_computed_once_per_published_version_and_this_month_every_time(
    tailnets, committed
):
    """The snapshot rebuilds the report every minute: January and February no longer
    change with time and are kept; March, in progress, is computed each time."""
    cache.clear()
    with committed():
        closed_incident(
            "January", windows=[WindowSpec("use1", "outage", JAN, JAN + 5 * M)], started_at=JAN
        )
    missed = _cached_queries()
    again = _cached_queries()
    march = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)
    with committed():
        closed_incident(
            "March", windows=[WindowSpec("use2", "outage", march, march + 7 * M)], started_at=march
        )
    after_march = months()

    assert again == missed - 2  # the two tally statements of the ended months
    assert after_march[MARCH].tally.outage_seconds == 7 * 60  # initech, this month
    assert after_march[JANUARY].tally.outage_seconds == 5 * 60  # acme, January

    published_version_bump()  # as a commit of published data does
    assert _cached_queries() == missed


def _cached_queries():
    with CaptureQueriesContext(connection) as queries:
        reliability_report(first=JANUARY, last=MARCH, now=NOW)
    return len(queries)
