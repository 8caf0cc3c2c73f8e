"""manage.py seed_demo: a deterministic, idempotent demo fleet that tells the story
of the motivating post (a 24-minute repair, nine short partial outages)."""

import itertools
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Model

from demo.fleet import Clock
from demo.seed import Seeder
from fleet.models import FleetEvent
from fleet.services import fleet_events_ingest
from incidents.models import (
    Component,
    ComponentGroup,
    Incident,
    IncidentComponent,
    IncidentUpdate,
    Placement,
    Shard,
    ShardImpact,
    Tailnet,
    TailnetImpact,
)
from incidents.services import tailnet_impacts_recompute
from reliability.models import SlaPolicy, TailnetSla

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
N = 300
MINUTE = timedelta(minutes=1)


def seed(**options):
    out = StringIO()
    params = {"tailnets": N, "seed": 7, "now": NOW.isoformat()} | options
    call_command("seed_demo", stdout=out, **params)
    return out.getvalue()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The seed creates the operator login; PBKDF2 would dominate these tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def seeded(db):
    return seed()


def snapshot():
    """Everything the seed wrote, by natural keys (ids differ between databases)."""
    return {
        "components": sorted(
            Component.objects.values_list("slug", "name", "kind", "region", "position")
        ),
        "shards": sorted(
            Shard.objects.values_list(
                "slug", "region", "public_name", "component__slug", "probe_url", "created_at"
            )
        ),
        "tailnets": sorted(Tailnet.objects.values_list("slug", "display_name", "created_at")),
        "placements": sorted(
            Placement.objects.values_list("tailnet__slug", "shard__slug", "starts_at", "ends_at"),
            key=str,
        ),
        "incidents": sorted(
            Incident.objects.values_list(
                "title", "kind", "status", "impact", "source", "published_at", "started_at",
                "detected_at", "resolved_at", "scheduled_for", "scheduled_until", "postmortem",
            ),
            key=str,
        ),
        "updates": sorted(
            (u.incident.title, u.status, u.body, u.display_at, str(u.affected_components))
            for u in IncidentUpdate.objects.select_related("incident")
        ),
        "components_set": sorted(
            IncidentComponent.objects.values_list("incident__title", "component__slug", "status")
        ),
        "shard_impacts": sorted(
            ShardImpact.objects.values_list(
                "incident__title", "shard__slug", "level", "starts_at", "ends_at"
            ),
            key=str,
        ),
        "tailnet_impacts": sorted(
            TailnetImpact.objects.values_list(
                "incident__title", "tailnet__slug", "shard__slug", "level", "starts_at",
                "ends_at", "seconds",
            ),
            key=str,
        ),
    }  # fmt: skip


def span(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """Both ends of a window that must be set."""
    assert start is not None
    assert end is not None
    return start, end


def counts():
    models: list[type[Model]] = [
        ComponentGroup, Component, Shard, Tailnet, Placement, Incident, IncidentUpdate,
        IncidentComponent, ShardImpact, TailnetImpact, get_user_model(), FleetEvent,
    ]  # fmt: skip
    return {model.__name__: model._default_manager.count() for model in models}


def wipe():
    for model in (
        TailnetImpact, ShardImpact, IncidentUpdate, IncidentComponent, Incident, Placement,
        Tailnet, Shard, Component, ComponentGroup, FleetEvent,
    ):  # fmt: skip
        model.objects.all().delete()


def test_the_same_seed_builds_the_same_fleet(db):
    seed()
    first = snapshot()
    first_rollups = rollups()
    assert len(first["tailnets"]) == N
    assert len(first["shards"]) == 24

    wipe()
    seed()
    assert snapshot() == first
    assert rollups() == first_rollups

    wipe()
    seed(seed=8)
    other = snapshot()
    assert other["tailnets"] != first["tailnets"]
    # The story is fixed (only the postmortem's counts vary); the fleet varies.
    assert [i[:-1] for i in other["incidents"]] == [i[:-1] for i in first["incidents"]]
    assert other["shard_impacts"] == first["shard_impacts"]


def test_a_second_run_changes_nothing(seeded):
    before = counts()
    assert before["Tailnet"] == N
    assert before["Incident"] == 12

    out = seed()
    assert "already present" in out
    assert "operator" in out
    assert counts() == before

    out = seed(tailnets=1000, seed=99)  # other parameters: still the same fleet
    assert counts() == before


def test_the_probes_go_where_the_simulator_listens(db, settings):
    settings.PROBE_SIMULATOR_URL = "http://127.0.0.1:18787"
    seed()
    urls = set(Shard.objects.values_list("probe_url", flat=True))
    assert urls
    assert all(url.startswith("http://127.0.0.1:18787/s/") for url in urls)

    settings.PROBE_SIMULATOR_URL = "http://127.0.0.1:28787/"  # the next start, another port
    out = seed()

    assert f"{len(urls)} shards probed at http://127.0.0.1:28787/" in out
    assert Shard.objects.get(slug="use1").probe_url == "http://127.0.0.1:28787/s/use1/key?v=88"


def test_the_fleet_came_through_the_feed_and_sending_it_again_adds_nothing(seeded):
    events = FleetEvent.objects.all()
    assert set(events.values_list("source", flat=True)) == {"api"}  # as the control plane
    assert all(pk.startswith("demo:") for pk in events.values_list("pk", flat=True))
    # Every placement began with an event: a tailnet's creation or a live migration.
    assert events.count() == Placement.objects.count()
    assert events.filter(type="tailnet.created").count() == N
    # globex.com left US East 3 six minutes into the repair: an event like any other.
    outage = ShardImpact.objects.get(incident__kind="maintenance", level="outage")
    assert list(
        events.filter(tailnet="globex-com").order_by("at").values_list("pk", "type", "shard")
    ) == [
        ("demo:globex-com:1", "tailnet.created", "use3"),
        ("demo:globex-com:2", "tailnet.migrated", "use2"),
    ]
    assert events.get(pk="demo:globex-com:2").at == outage.starts_at + 6 * MINUTE

    # The same seed and clock plan the same events: sent again, each is a duplicate.
    seeder = Seeder(seed=7, clock=Clock(now=NOW, days=90), tailnets=N, log=print)
    batches = list(seeder.fleet_events(seeder.planner.plan()))
    assert sum(len(batch) for batch in batches) > N
    for batch in batches:
        assert fleet_events_ingest(events=batch, now=NOW) == {
            "accepted": 0,
            "duplicates": len(batch),
        }
    assert events.count() == Placement.objects.count()


def test_placements_are_consecutive_with_exactly_one_current_per_tailnet(seeded):
    created = dict(Tailnet.objects.values_list("pk", "created_at"))
    shard_born = dict(Shard.objects.values_list("pk", "created_at"))
    by_tailnet = defaultdict(list)
    for row in Placement.objects.values_list("tailnet_id", "shard_id", "starts_at", "ends_at"):
        by_tailnet[row[0]].append(row)

    assert by_tailnet.keys() == created.keys()
    for tailnet_id, rows in by_tailnet.items():
        rows.sort(key=lambda row: row[2])
        assert rows[0][2] == created[tailnet_id]
        assert [row[3] for row in rows].count(None) == 1
        assert rows[-1][3] is None
        for before, after in itertools.pairwise(rows):
            assert before[3] is not None
            assert before[2] < before[3] == after[2]  # a migration: close and open at once
            assert before[1] != after[1]
        for _, shard_id, starts_at, _ in rows:
            assert starts_at >= shard_born[shard_id]

    moves = [len(rows) - 1 for rows in by_tailnet.values()]
    assert moves.count(0) / len(moves) > 0.8  # most tailnets never move
    assert sum(1 for m in moves if m >= 2) >= 1  # some move several times
    window_start = NOW - timedelta(days=90)
    new = sum(1 for at in created.values() if at >= window_start)
    assert 0 < new < len(created) / 3  # most existed before the window


def test_rebalancing_moves_many_tailnets_off_one_shard_at_once(seeded):
    """Besides the handful moved during incidents, two rebalancings each move
    several tailnets off one shard within half an hour."""
    ends: dict[int, list[datetime]] = defaultdict(list)
    impacts = [
        (shard_id, *span(start, end))
        for shard_id, start, end in ShardImpact.objects.values_list(
            "shard_id", "starts_at", "ends_at"
        )
    ]
    for shard_id, ends_at in Placement.objects.filter(ends_at__isnull=False).values_list(
        "shard_id", "ends_at"
    ):
        assert ends_at is not None
        during_incident = any(
            s == shard_id and start <= ends_at <= end for s, start, end in impacts
        )
        if not during_incident:
            ends[shard_id].append(ends_at)
    bursts = 0
    for times in ends.values():
        times.sort()
        busiest = max(sum(1 for other in times if at <= other < at + 30 * MINUTE) for at in times)
        bursts += int(busiest >= 3)
    assert bursts >= 2


def test_the_24_minute_repair(seeded):
    outage = ShardImpact.objects.select_related("incident", "shard").get(
        incident__kind="maintenance", level="outage"
    )
    repair = outage.incident
    assert repair.published
    assert repair.status == "completed"
    scheduled_for, scheduled_until = span(repair.scheduled_for, repair.scheduled_until)
    assert scheduled_for <= outage.starts_at < scheduled_until
    outage_start, outage_end = span(outage.starts_at, outage.ends_at)
    assert outage_end - outage_start == 24 * MINUTE
    assert "24 minutes" in repair.postmortem
    resolved_at, postmortem_at = span(repair.resolved_at, repair.postmortem_published_at)
    assert postmortem_at > resolved_at
    assert [u.status for u in repair.updates.order_by("display_at", "id")] == [
        "scheduled", "in_progress", "in_progress", "verifying", "completed",
    ]  # fmt: skip

    # The other shards of the region only saw latency.
    others = repair.shard_impacts.exclude(pk=outage.pk)
    assert 2 <= others.count() <= 3
    assert set(others.values_list("level", flat=True)) == {"degraded"}
    assert set(others.values_list("shard__region", flat=True)) == {outage.shard.region}
    for window in others:
        start, end = span(window.starts_at, window.ends_at)
        assert start < outage_end
        assert end > outage_start

    seconds = dict(outage.tailnet_impacts.values_list("tailnet__slug", "seconds"))
    whole = [slug for slug, s in seconds.items() if s == 24 * 60]
    moved = [slug for slug, s in seconds.items() if 0 < s < 24 * 60]
    assert "acme-com" in whole
    assert "globex-com" in moved
    assert len(whole) > len(moved) >= 2
    # Stitched: a tailnet moved off mid-way is affected on its new shard from then on.
    globex = TailnetImpact.objects.filter(incident=repair, tailnet__slug="globex-com")
    assert sorted(globex.values_list("shard__slug", "level", "seconds")) == [
        ("use2", "degraded", 23 * 60),
        ("use3", "outage", 6 * 60),
    ]


def test_nine_short_partial_outages_in_the_last_weeks(seeded):
    recent = Incident.objects.filter(
        kind="incident", started_at__gte=NOW - timedelta(days=40), shard_impacts__isnull=False
    ).distinct()
    assert recent.count() == 9
    durations = sorted(
        end - start for start, end in (span(i.started_at, i.resolved_at) for i in recent)
    )
    assert sum(1 for d in durations if d < timedelta(hours=1)) == 8
    assert timedelta(minutes=70) <= durations[-1] <= timedelta(minutes=80)

    levels = set()
    for incident in recent:
        assert incident.published
        assert incident.status == "resolved"
        statuses = [u.status for u in incident.updates.order_by("display_at", "id")]
        assert statuses[0] == "investigating"
        assert statuses[-2:] == ["monitoring", "resolved"]
        assert "identified" in statuses
        assert "existing connections" in incident.updates.earliest("display_at").body.lower()
        windows = list(incident.shard_impacts.all())
        assert len({w.shard_id for w in windows}) == 1
        for window in windows:
            _, resolved_at = span(incident.started_at, incident.resolved_at)
            assert span(window.starts_at, window.ends_at)[1] <= resolved_at
        levels |= {w.level for w in windows}
        region = windows[0].shard.region
        assert incident.affected_components.filter(
            component__kind="coordination", component__region=region
        ).exists()
        assert incident.tailnet_impacts.exists()
    assert levels == {"degraded", "partial", "outage"}
    assert (
        IncidentComponent.objects.filter(
            incident__in=recent, component__slug="admin-console"
        ).count()
        >= 1
    )


def test_derp_incident_and_upcoming_maintenance_leave_the_fleet_healthy_now(seeded):
    derp = Incident.objects.get(title__icontains="relayed")
    assert not derp.shard_impacts.exists()
    assert list(derp.affected_components.values_list("component__slug", flat=True)) == [
        "derp-relays"
    ]
    assert derp.started_at < NOW - timedelta(days=40)

    upcoming = Incident.objects.get(status="scheduled")
    assert upcoming.kind == "maintenance"
    assert upcoming.published
    assert span(upcoming.scheduled_for, upcoming.scheduled_until)[0] > NOW
    assert not upcoming.shard_impacts.exists()

    assert not Incident.objects.filter(published=False).exists()
    assert list(Incident.objects.filter(resolved_at__isnull=True)) == [upcoming]
    assert not ShardImpact.objects.filter(ends_at__isnull=True).exists()
    assert not ShardImpact.objects.filter(ends_at__gt=NOW).exists()


def test_the_affected_tailnets_are_already_computed(seeded):
    """No worker ran, yet the derived rows are there and a rebuild changes nothing."""
    before = snapshot()["tailnet_impacts"]
    assert before
    for pk in Incident.objects.values_list("pk", flat=True):
        tailnet_impacts_recompute(incident_id=pk)
    assert snapshot()["tailnet_impacts"] == before
    assert not Incident.objects.filter(
        shard_impacts__isnull=False, impacts_computed_at__isnull=True
    ).exists()


def test_the_operator_can_log_in(seeded):
    operator = get_user_model().objects.get(username="operator")
    assert operator.is_staff
    assert operator.is_superuser
    assert operator.check_password("operator-demo-password")
    assert "http://127.0.0.1:8000/admin/" in seeded


def test_the_summary_counts_what_was_written(seeded):
    assert f"{N:,} tailnets" in seeded
    assert "24 shards" in seeded
    assert f"{Placement.objects.count():,} placements" in seeded
    assert f"{TailnetImpact.objects.count():,} tailnet impact rows" in seeded


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"days": 10}, "--days"),
        ({"tailnets": 5}, "--tailnets"),
        ({"now": "yesterday"}, "--now"),
    ],
)
def test_bad_arguments_are_refused_before_writing(db, options, message):
    with pytest.raises(CommandError, match=message):
        seed(**options)
    assert not Tailnet.objects.exists()


# --- A week of probe latency behind every tailnet page ------------------------------------

HOUR = timedelta(hours=1)
REGIONS = 4  # demo.fleet.PROBE_REGIONS, each probing every shard once a minute


def rollups():
    from probes.models import ProbeRollup

    return sorted(
        ProbeRollup.objects.values_list(
            "shard__slug", "region__slug", "granularity", "bucket_start", "count", "failures",
            "latency_sum_ms", "latency_max_ms", "histogram",
        ),
        key=str,
    )  # fmt: skip


def test_alice_sees_a_week_of_latency_on_acmes_page(seeded, client, time_machine):
    call_command("seed_demo_users", stdout=StringIO())
    time_machine.move_to(NOW, tick=False)
    client.force_login(get_user_model().objects.get(username="alice"))

    html = client.get("/t/acme-com/").content.decode()

    section = html.split('id="latency"')[1].split("</section>")[0]
    for line in ("p50", "p95", "p99"):
        assert f'<path class="line {line}" d="M' in section
    rows = re.findall(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', section)
    # Every hour of the week but the current one, which has had no probe yet at 12:00.
    assert len(rows) == 7 * 24 - 1
    assert "The numbers behind the chart (167 hours)" in section
    assert rows[-1][0] == f"{NOW - HOUR:%Y-%m-%d %H:%M}"
    for _, cells in rows:
        shard, p50, p95, p99, probes, failed = re.findall(r"<td[^>]*>(.*?)</td>", cells)
        assert shard == "US East 3"
        assert 30 <= int(p50.removesuffix(" ms")) <= 100
        assert int(p50.removesuffix(" ms")) <= int(p95.removesuffix(" ms"))
        assert int(p95.removesuffix(" ms")) <= int(p99.removesuffix(" ms"))
        assert (probes, failed) == (str(REGIONS * 60), "0")


def test_demo_tailnets_have_their_shards_latency_for_every_hour_of_the_week(seeded):
    from customers.queries import LATENCY_DAYS, tailnet_latency, tailnet_stays

    # One tailnet on each shard now, and every one that moved or was created this week.
    week = NOW + HOUR - timedelta(days=LATENCY_DAYS)
    on_shard = dict(
        Placement.objects.filter(ends_at__isnull=True).values_list("shard_id", "tailnet_id")
    )
    recent = Placement.objects.filter(starts_at__gte=week).values_list("tailnet_id", flat=True)
    tailnets = Tailnet.objects.filter(pk__in={*on_shard.values(), *recent})
    assert len(on_shard) == 24
    measured = 0
    for tailnet in tailnets:
        hours = tailnet_latency(stays=tailnet_stays(tailnet_id=tailnet.pk), now=NOW)
        assert len(hours) == LATENCY_DAYS * 24
        for hour in hours:
            if hour.shard_name is None or hour.start >= NOW:
                assert hour.p50_ms is None  # before the tailnet existed, or not yet probed
                continue
            assert hour.samples == REGIONS * 60
            assert hour.p50_ms is not None
            assert hour.p95_ms is not None
            assert hour.p99_ms is not None
            assert hour.p50_ms <= hour.p95_ms <= hour.p99_ms
            measured += 1
    assert measured >= 0.9 * len(tailnets) * LATENCY_DAYS * 24


def test_the_probes_saw_the_weeks_incident_and_nothing_else(seeded):
    from probes.models import ProbeRollup
    from probes.rollup import merge, quantiles_ms

    week = NOW + HOUR - timedelta(days=7)  # the tailnet page's first hour
    (window,) = ShardImpact.objects.filter(ends_at__gt=week)
    assert (window.shard.slug, window.level) == ("euc4", "partial")  # 22:19-22:45, 3 days ago
    hour = window.starts_at.replace(minute=0)

    failing = ProbeRollup.objects.filter(granularity="hour", failures__gt=0)
    assert set(failing.values_list("shard__slug", "bucket_start")) == {("euc4", hour)}

    def p95(at):
        found = ProbeRollup.objects.filter(shard__slug="euc4", granularity="hour", bucket_start=at)
        return quantiles_ms(merge(found.values_list("histogram", flat=True)), (0.95,))[0]

    # A third of its probes failed for 26 minutes, and the others were slow.
    failures = sum(failing.values_list("failures", flat=True))
    assert 0.2 * 26 * REGIONS < failures < 0.5 * 26 * REGIONS
    assert p95(hour) > max(p95(hour - 2 * HOUR), p95(hour + 2 * HOUR))


def test_day_rollups_add_up_the_hours(seeded):
    from probes.models import ProbeRollup
    from probes.rollup import merge

    hours = ProbeRollup.objects.filter(shard__slug="use1", region__slug="nyc", granularity="hour")
    days = ProbeRollup.objects.filter(shard__slug="use1", region__slug="nyc", granularity="day")
    assert days.count() == 8  # the week starts at 13:00 eight days ago
    for day in days:
        of_day = hours.filter(
            bucket_start__gte=day.bucket_start, bucket_start__lt=day.bucket_start + 24 * HOUR
        )
        assert day.count == sum(h.count for h in of_day)
        assert day.histogram == merge(h.histogram for h in of_day)


def test_seeding_again_changes_no_rollup(seeded):
    before = rollups()
    # 167 hours (none yet for the current one) and the 8 days they touch.
    assert len(before) == 24 * REGIONS * (7 * 24 - 1 + 8)

    seed()
    seed(now=(NOW + timedelta(days=1)).isoformat())  # a day later: the fleet is there

    assert rollups() == before


def test_alice_reads_acmes_sla_statement_under_the_demos_enterprise_policy(
    seeded, client, time_machine
):
    call_command("seed_demo_users", stdout=StringIO())
    call_command("seed_demo_users", stdout=StringIO())  # idempotent: no second policy
    time_machine.move_to(NOW, tick=False)
    client.force_login(get_user_model().objects.get(username="alice"))

    html = client.get("/t/acme-com/reliability/").content.decode()
    sla = client.get("/api/v1/tailnets/acme-com/sla").json()

    assert "under the <strong>Enterprise</strong> policy" in html
    assert sla["policy"]["target_pct"] == 99.99
    assert len(sla["months"]) == 12
    # acme-com was caught in the demo's outages: some month misses 99.99 %.
    assert any(month["credit_pct"] > 0 for month in sla["months"])
    # bob's tailnet is under the default; alice is not its member.
    assert client.get("/api/v1/tailnets/globex-com/sla").status_code == 404
    assert TailnetSla.objects.get().tailnet.slug == "acme-com"
    assert SlaPolicy.objects.get(is_default=True).name == "Standard"
