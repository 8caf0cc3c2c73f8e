"""When the probes stop reporting, the monitoring's gap is not the customers'
downtime: detection's window ends at the last failing sample, the incident says
monitoring lost contact, and an outage after reports come back is a new one."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as conf
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from customers.queries import tailnet_uptime_report
from fleet.services import tailnet_create
from incidents.models import AuditEntry, Incident, MonitoringGap, ShardImpact, TailnetImpact
from incidents.queries import components_uptime
from incidents.services import WindowSpec, incident_create
from plumbing.tokens import api_token_create
from probes import tasks
from probes.models import ShardState
from probes.services import silence_check
from tests.conftest import T0

from .conftest import ROUND

ROOT = Path(__file__).resolve().parents[2]

MS = timedelta(milliseconds=1)
# use1 fails from round 2 (ams, then nyc 1 ms later); the last round is round 5.
OUTAGE = {"ams": "..xxxx", "nyc": "..xxxx", "sfo": "......"}
LAST_FAILURE = T0 + 5 * ROUND + MS  # nyc's, in round 5
LAST_SAMPLE = T0 + 5 * ROUND + 2 * MS  # sfo's
SILENT = LAST_SAMPLE + 3 * ROUND + timedelta(seconds=1)  # three rounds without a report


def test_silence_is_three_rounds_by_default():
    assert conf.PROBE_SILENCE_ROUNDS == 3
    assert conf.CELERY_BEAT_SCHEDULE["probe-silence"]["task"] == "probes.check_silence"


def test_a_few_quiet_seconds_are_not_silence(fleet, run_rounds, committed):
    run_rounds("use1", OUTAGE)
    with committed():
        assert silence_check(now=LAST_SAMPLE + 2 * ROUND) == []
    assert ShardImpact.objects.get().ends_at is None
    assert Incident.objects.get().status == "investigating"


def test_probes_stopped_the_window_ends_at_the_last_failing_sample(fleet, run_rounds, committed):
    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - 100 * ROUND)
    run_rounds("use1", OUTAGE)

    with committed():
        assert silence_check(now=SILENT) == [fleet["use1"].pk]
        # An hour later nothing has grown.
        assert silence_check(now=SILENT + timedelta(hours=1)) == []

    window = ShardImpact.objects.get()
    assert (window.starts_at, window.ends_at) == (T0 + 2 * ROUND + MS, LAST_FAILURE)
    assert TailnetImpact.objects.get(tailnet=acme).ends_at == LAST_FAILURE
    incident = Incident.objects.get()
    assert (incident.status, incident.resolved_at) == ("resolved", SILENT)
    update = incident.updates.first()
    assert update.body == (
        "Our probes stopped reporting on US East 1 at 10:02 UTC, so we cannot tell how it "
        "is doing now. We count no downtime after its last failed probe, at 10:02 UTC. "
        "We are closing this incident; if our probes find the problem again once they "
        "report, we will open a new one."
    )
    assert list(
        AuditEntry.objects.filter(incident=incident).order_by("id").values_list("action", "system")
    ) == [
        ("incident.create", "probe"),
        ("impact.close", "probe"),
        ("incident.resolve", "probe"),
    ]
    state = ShardState.objects.get(shard=fleet["use1"])
    assert (state.state, state.incident) == ("unknown", None)
    # From the last report on, the shard has no data: grey, neither down nor up.
    gap = MonitoringGap.objects.get()
    assert (gap.shard, gap.starts_at, gap.ends_at) == (fleet["use1"], LAST_SAMPLE, None)


def test_the_silent_hour_is_grey_in_acmes_uptime_not_up_and_not_down(fleet, run_rounds, committed):
    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0)
    run_rounds("use1", OUTAGE)
    with committed():
        silence_check(now=SILENT)
    an_hour_later = SILENT + timedelta(hours=1)

    (day,) = tailnet_uptime_report(
        tailnet_id=acme.pk, first_day=T0.date(), last_day=T0.date(), now=an_hour_later
    ).days
    (us,) = components_uptime(first_day=T0.date(), last_day=T0.date(), now=an_hour_later)[
        fleet["us"].pk
    ]

    # acme was placed from T0 and measured until the last sample (10:02:30.002):
    # the rest of the hour and more is no data, and only the outage counts as down.
    outage = (LAST_FAILURE - (T0 + 2 * ROUND + MS)) // timedelta(seconds=1)
    assert day.tally.total_seconds == (LAST_SAMPLE - T0) // timedelta(seconds=1)
    assert day.tally.outage_seconds == outage
    # US East has another shard that never went silent: the component still has data.
    assert us.tally.total_seconds == (an_hour_later - T0.replace(hour=0)) // timedelta(seconds=1)


def test_failures_after_reports_resume_open_a_new_window_at_their_first_failure(
    fleet, run_rounds, committed
):
    run_rounds("use1", OUTAGE)
    with committed():
        silence_check(now=SILENT)

    run_rounds("use1", {"ams": "xxxx", "nyc": "xxxx", "sfo": "...."}, start=T0 + 12 * ROUND)

    first, second = ShardImpact.objects.order_by("starts_at")
    assert first.ends_at == LAST_FAILURE
    # The new run's own first failure (nyc's completed the quorum), not the old one's.
    assert (second.level, second.starts_at, second.ends_at) == (
        "outage",
        T0 + 12 * ROUND + MS,
        None,
    )
    assert first.incident.status == "resolved"
    assert second.incident.status == "investigating"
    assert ShardState.objects.get(shard=fleet["use1"]).state == "down"
    # The gap ended at the first report after it.
    assert MonitoringGap.objects.get().ends_at == T0 + 12 * ROUND


def test_reports_that_resume_fine_leave_the_window_closed(fleet, run_rounds, committed):
    run_rounds("use1", OUTAGE)
    with committed():
        silence_check(now=SILENT)

    run_rounds("use1", {"ams": "....", "nyc": "....", "sfo": "...."}, start=T0 + 12 * ROUND)

    assert list(ShardImpact.objects.values_list("ends_at", flat=True)) == [LAST_FAILURE]
    assert Incident.objects.get().status == "resolved"
    assert ShardState.objects.get(shard=fleet["use1"]).state == "up"


def test_a_slow_shard_out_of_sight_ends_at_its_last_slow_answer(fleet, run_rounds, committed):
    run_rounds("use1", {"ams": "..ssss", "nyc": "..ssss", "sfo": "..ssss"})
    with committed():
        tasks.check_silence.delay()  # what beat runs every round; it is "now" here
    window = ShardImpact.objects.get()
    assert (window.level, window.ends_at) == ("degraded", T0 + 5 * ROUND + 2 * MS)
    assert "after its last slow answer, at 10:02 UTC" in Incident.objects.get().updates.first().body


def test_another_window_still_open_keeps_the_incident_open(fleet, run_rounds, committed):
    run_rounds("use1", OUTAGE)
    # use2 fails too and joins the incident; it keeps being probed.
    run_rounds("use2", {"ams": "xxxxxxx", "nyc": "xxxxxxx"}, start=T0 + 2 * ROUND)
    with committed():
        assert silence_check(now=SILENT) == [fleet["use1"].pk]

    incident = Incident.objects.get()
    assert incident.status == "investigating"
    assert dict(ShardImpact.objects.values_list("shard__slug", "ends_at")) == {
        "use1": LAST_FAILURE,
        "use2": None,
    }
    assert incident.updates.first().body == (
        "Our probes stopped reporting on US East 1 at 10:02 UTC, so we cannot tell how it "
        "is doing now. We count no downtime after its last failed probe, at 10:02 UTC."
    )


def test_a_window_an_operator_opened_is_theirs(fleet, run_rounds, committed):
    operator = get_user_model().objects.create_user("oncall", "oncall@example.com", "x")
    run_rounds("use1", {"ams": "....", "nyc": "...."})
    with committed():
        incident = incident_create(
            title="US East 1 is down",
            body="We are on it.",
            shard_impacts=[WindowSpec("use1", "outage", T0 + ROUND)],
            published=True,
            by=operator,
            at=T0 + 2 * ROUND,
        )
        assert silence_check(now=T0 + 10 * ROUND) == [fleet["use1"].pk]

    assert ShardImpact.objects.get().ends_at is None
    incident.refresh_from_db()
    assert (incident.status, incident.updates.count()) == ("investigating", 1)
    assert ShardState.objects.get(shard=fleet["use1"]).state == "unknown"


def test_an_incidents_totals_and_its_windows_agree_in_one_answer(
    fleet, people, run_rounds, committed, settings, time_machine
):
    """acme's incident while the outage goes on: the window's seconds are counted to
    the same "now" as the incident's, not to the last rebuild of the affected rows."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    run_rounds("use1", {"ams": "..xxxx", "nyc": "..xxxx"})  # rebuilt when it opened
    _, secret = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    time_machine.move_to(T0 + timedelta(hours=1), tick=False)

    (item,) = client.get("/api/v1/tailnets/acme/incidents").json()["incidents"]

    (window,) = item["windows"]
    assert item["affected_seconds"] == window["seconds"] >= 3600 - 61  # from 10:01:00.001


@pytest.mark.parametrize(("worker_regions", "scheduled"), [("", False), ("ams", True), ("*", True)])
def test_beat_schedules_probe_rounds_only_for_regions_probed_from_a_worker(
    worker_regions, scheduled
):
    """Agents probe; beat fans out rounds only if PROBE_WORKER_REGIONS names regions."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBE_")}
    env.update(DJANGO_SETTINGS_MODULE="statuspage.settings", PROBE_WORKER_REGIONS=worker_regions)
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print('probe-rounds' in settings.CELERY_BEAT_SCHEDULE)"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, fixed script
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(scheduled)
