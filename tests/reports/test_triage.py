"""Triage: the shard through the placement at the reported time; a spike opens
exactly one draft incident (source=reports) and never publishes it."""

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import close_old_connections, connection
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from fleet.services import tailnet_create, tailnet_migrate
from incidents.models import AuditEntry, Incident
from incidents.services import WindowSpec, incident_create
from reports.models import Report
from reports.services import report_mark, report_submit, report_triage
from reports.spikes import Point, find_spike

from .conftest import NOW

MINUTE = timedelta(minutes=1)
_addresses = (f"10.0.{n // 256}.{n % 256}" for n in itertools.count(1))


def file_report(*, tailnet_name="", at=NOW, started_at=None, what="login", **extra):
    """A report from someone at an address of their own, unless one is given."""
    extra.setdefault("client_address", next(_addresses))
    return report_submit(
        what=what,
        started_at=started_at or at - 5 * MINUTE,
        tailnet_name=tailnet_name,
        at=at,
        **extra,
    )


@pytest.fixture
def tailnets_on_use1(people):
    """Five more tailnets on use1 besides acme."""
    since = NOW - timedelta(days=30)
    return [
        tailnet_create(slug=f"t{n}", display_name=f"t{n}.example", shard="use1", at=since)
        for n in range(5)
    ]


@pytest.mark.django_db
def test_a_report_is_placed_on_the_shard_its_tailnet_was_on_when_it_started(people):
    tailnet_migrate(tailnet=people["acme"], to_shard="use2", at=NOW - 20 * MINUTE)
    before = file_report(tailnet_name="acme", started_at=NOW - 30 * MINUTE)
    after = file_report(tailnet_name="acme", started_at=NOW - 10 * MINUTE)

    assert report_triage(report_id=before.pk).shard == people["use1"]
    assert report_triage(report_id=after.pk).shard == people["use2"]


@pytest.mark.django_db
def test_a_typed_display_name_is_resolved_and_an_unknown_one_is_kept_as_typed(people):
    by_domain = report_triage(report_id=file_report(tailnet_name=" GLOBEX.com ").pk)
    unknown = report_triage(report_id=file_report(tailnet_name="initech").pk)

    assert (by_domain.tailnet, by_domain.shard) == (people["globex"], people["euw1"])
    assert (unknown.tailnet, unknown.shard, unknown.tailnet_name) == (None, None, "initech")
    assert unknown.status == "triaged"


@pytest.mark.django_db
def test_triage_is_idempotent(people):
    report = file_report(tailnet_name="acme")
    assert report_triage(report_id=report.pk) is not None
    assert report_triage(report_id=report.pk) is None  # the sweep got there second


@pytest.mark.django_db
def test_a_report_during_an_open_incident_on_its_shard_joins_it(people):
    incident = incident_create(
        title="Outage on use1",
        body="Investigating.",
        started_at=NOW - 15 * MINUTE,
        shard_impacts=[WindowSpec("use1", "outage", NOW - 15 * MINUTE)],
        published=True,
        at=NOW - 15 * MINUTE,
    )
    report = report_triage(report_id=file_report(tailnet_name="acme").pk)
    elsewhere = report_triage(report_id=file_report(tailnet_name="globex").pk)
    assert report.incident == incident
    assert elsewhere.incident is None


@pytest.mark.django_db
def test_a_spike_opens_exactly_one_draft_incident_and_never_publishes_it(
    people, tailnets_on_use1, settings
):
    settings.REPORT_SPIKE_THRESHOLD = 3
    settings.REPORT_SPIKE_WINDOW_MINUTES = 10
    names = ["acme", "t0", "t1", "t2", "t3"]
    reports = [
        file_report(tailnet_name=name, at=NOW + n * MINUTE, what="login" if n % 2 else "change_acl")
        for n, name in enumerate(names)
    ]

    report_triage(report_id=reports[0].pk)
    report_triage(report_id=reports[1].pk)
    assert not Incident.objects.exists()  # two tailnets are not a spike
    report_triage(report_id=reports[2].pk)
    report_triage(report_id=reports[3].pk)
    report_triage(report_id=reports[4].pk)

    incident = Incident.objects.get()
    assert incident.source == "reports"
    (entry,) = AuditEntry.objects.filter(incident=incident)
    assert (entry.action, entry.system, entry.user) == ("incident.create", "reports", None)
    assert not incident.published
    assert incident.published_at is None
    assert incident.status == "investigating"
    assert incident.title == "Reports of problems on US East 1"
    assert [(w.shard_id, w.level, w.ends_at) for w in incident.shard_impacts.all()] == [
        (people["use1"].pk, "partial", None)
    ]
    body = incident.updates.get().body
    assert "3 reports from 3 tailnets on US East 1" in body
    assert "Changing an ACL, Logging in" in body
    assert incident.started_at == NOW - 5 * MINUTE
    assert set(Report.objects.values_list("incident", flat=True)) == {incident.pk}


@pytest.mark.django_db
def test_reports_from_one_tailnet_or_spread_out_are_no_spike(people, tailnets_on_use1, settings):
    settings.REPORT_SPIKE_THRESHOLD = 3
    for n in range(5):  # one tailnet, five times
        report_triage(report_id=file_report(tailnet_name="acme", at=NOW + n * MINUTE).pk)
    for n, name in enumerate(["t0", "t1", "t2"]):  # three tailnets, 11 minutes apart
        report_triage(report_id=file_report(tailnet_name=name, at=NOW + n * 11 * MINUTE).pk)
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_bots_and_reports_marked_noise_never_make_a_spike(people, tailnets_on_use1, settings):
    settings.REPORT_SPIKE_THRESHOLD = 3
    file_report(tailnet_name="t0", honeypot=True)
    noisy = report_triage(report_id=file_report(tailnet_name="t1").pk)
    report_mark(report_ids=[noisy.pk], status="noise")
    report_triage(report_id=file_report(tailnet_name="t2").pk)
    report_triage(report_id=file_report(tailnet_name="t3").pk)
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_marking_reports(people):
    new = file_report(tailnet_name="acme")
    triaged = report_triage(report_id=file_report(tailnet_name="acme").pk)

    assert report_mark(report_ids=[new.pk, triaged.pk], status="duplicate") == 2
    new.refresh_from_db()
    assert (new.status, new.triaged_at is not None) == ("duplicate", True)
    assert report_mark(report_ids=[new.pk], status="duplicate") == 0
    with pytest.raises(Exception, match="can be marked"):
        report_mark(report_ids=[new.pk], status="new")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_triage_of_a_spike_opens_one_draft(settings):
    """Eight workers triage eight reports of one spike at once (PostgreSQL: real
    row locks between connections)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: concurrent transactions on separate connections")
    from incidents.models import Component, Shard

    settings.REPORT_SPIKE_THRESHOLD = 3
    component = Component.objects.create(slug="c", name="Coordination", kind="coordination")
    Shard.objects.create(
        slug="use1", region="us-east", public_name="US East 1", component=component
    )
    for n in range(8):
        tailnet_create(slug=f"t{n}", display_name=f"t{n}", shard="use1", at=NOW - timedelta(days=1))
    # Saved without the service: its after-commit triage would run them one by one here.
    reports = [
        Report.objects.create(
            what="login",
            started_at=NOW - 5 * MINUTE,
            tailnet_name=f"t{n}",
            client_hash=f"reporter-{n}",
            created_at=NOW,
        )
        for n in range(8)
    ]
    barrier = threading.Barrier(len(reports))
    errors = []

    def work(report_id):
        try:
            connection.ensure_connection()  # connected first, so they start together
            barrier.wait()
            report_triage(report_id=report_id)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=work, args=(r.pk,)) for r in reports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Incident.objects.filter(source="reports").count() == 1
    assert Report.objects.filter(incident__isnull=True).count() == 0


# --- The pure spike finder, against brute force ------------------------------------------

T = datetime(2026, 1, 5, tzinfo=UTC)
points = st.lists(
    st.builds(
        Point,
        at=st.integers(0, 60).map(lambda m: T + m * MINUTE),
        tailnet=st.integers(0, 6),
        source=st.integers(0, 6),
    ),
    max_size=25,
)


def brute_force(pts, threshold, window):
    for first in pts:
        inside = [p for p in pts if first.at <= p.at <= first.at + window]
        tailnets, sources = {p.tailnet for p in inside}, {p.source for p in inside}
        if len(tailnets) >= threshold and len(sources) >= threshold:
            return True
    return False


@hypothesis_settings(max_examples=300, deadline=None)
@given(pts=points, threshold=st.integers(1, 5), minutes=st.integers(0, 20))
def test_find_spike_agrees_with_brute_force(pts, threshold, minutes):
    window = minutes * MINUTE
    spike = find_spike(pts, threshold=threshold, window=window)
    assert (spike is not None) == brute_force(pts, threshold, window)
    if spike is not None:
        assert spike.tailnets >= threshold
        assert spike.sources >= threshold
        assert spike.ends_at - spike.starts_at <= window
        assert all(spike.starts_at <= p.at <= spike.ends_at for p in spike.points)
