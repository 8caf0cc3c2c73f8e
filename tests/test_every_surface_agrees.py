"""Every surface tells the same truth: random fleets, live migrations, grey periods,
overlapping incidents and maintenance (with and without impact), asked of every
page, feed, CSV and API that shows a figure, and checked against a brute-force
model that walks the two hours second by second.

The story always runs from Jan 31, 23:00 to Feb 1, 01:00 UTC, so every figure
crosses a day and a month. Shards may go unmeasured for a while (monitoring
gaps): those seconds are grey unless an incident window covers them. Times are
whole seconds, never whole minutes, so a surface that counts touched minutes (or
rounds) disagrees at once.

Surfaces: the incident page's blast radius and the v2 JSON's ``affected_tailnets``;
each tailnet's history (page and ``/incidents`` API), month table (page), CSV and
``/uptime`` API; the public page's component bars and 90-day uptime; the fleet
uptime; the notifications each tailnet's webhook is owed (who, and the seconds they
carry); the reliability report's tailnet-seconds and fleet uptime, and each tailnet's
reliability figures, SLA statement (API and CSV, announced maintenance excluded) and
the incidents counted against it. Later surfaces join here when they are built.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from django.core.cache import caches
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import Membership
from fleet.services import fleet_events_ingest
from incidents import levels
from incidents.figures import duration_text, floor_pct, percent_text
from incidents.impact import incident_window_end
from incidents.models import Incident, MonitoringGap, Tailnet
from incidents.queries import fleet_uptime_tally
from incidents.services import WindowSpec, incident_create, incident_resolve
from incidents.uptime import Tally, component_status_from_shards
from notifications.messages import webhook_json
from notifications.models import Delivery, Subscription
from reliability.models import SlaCreditTier, SlaPolicy
from tests.conftest import PASSWORD, fleet_create

START = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
SPAN = 2 * 60 * 60  # seconds in the story
NOW = START + timedelta(seconds=SPAN)
DAYS = [date(2026, 1, 31), date(2026, 2, 1)]
SHARDS = ("use1", "use2", "euw1")
COMPONENT_SHARDS = {"us": ("use1", "use2"), "eu": ("euw1",)}
EXAMPLES = int(os.environ.get("SURFACE_EXAMPLES", "20"))  # CI's budget; raise it locally


def at(second: int) -> datetime:
    return START + timedelta(seconds=second)


# --- what happened -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stay:
    shard: str | None  # None: a grey period (the tailnet was deleted, on no shard)
    start: int
    end: int  # SPAN: still there now


@dataclass(frozen=True)
class Window:
    shard: str
    level: str
    start: int
    end: int | None  # None: still open


@dataclass(frozen=True)
class Happening:
    kind: str  # "incident" or "maintenance"
    published: bool
    windows: tuple[Window, ...]


seconds_in_story = st.integers(0, SPAN - 1)


@st.composite
def stays(draw) -> list[Stay]:
    """A tailnet's life: placed from its first second, migrating, maybe gone a while."""
    cuts = sorted(set(draw(st.lists(seconds_in_story, min_size=1, max_size=5))))
    shards: list[str | None] = [draw(st.sampled_from(SHARDS))]
    for _ in cuts[1:]:
        previous = shards[-1]
        options = [s for s in (*SHARDS, None) if s != previous and (s or previous)]
        shards.append(draw(st.sampled_from(options)))
    ends = [*cuts[1:], SPAN]
    return [Stay(s, a, b) for s, a, b in zip(shards, cuts, ends, strict=True)]


@st.composite
def happenings(draw) -> Happening:
    kind = draw(st.sampled_from(["incident", "incident", "maintenance"]))
    windows = []
    for shard in draw(st.lists(st.sampled_from(SHARDS), max_size=2, unique=True)):
        start = draw(seconds_in_story)
        end = draw(st.one_of(st.none(), st.integers(start + 1, SPAN)))
        windows.append(Window(shard, draw(st.sampled_from(levels.LEVELS)), start, end))
    if kind == "incident" and not windows:
        shard = draw(st.sampled_from(SHARDS))
        windows.append(Window(shard, "outage", draw(seconds_in_story), None))
    return Happening(kind, draw(st.booleans()) or kind == "incident", tuple(windows))


@st.composite
def gaps(draw) -> dict[str, tuple[int, int | None]]:
    """Monitoring gaps: a shard no probe region reported on for a while."""
    found = {}
    for shard in draw(st.lists(st.sampled_from(SHARDS), max_size=2, unique=True)):
        start = draw(seconds_in_story)
        found[shard] = (start, draw(st.one_of(st.none(), st.integers(start + 1, SPAN))))
    return found


fleets = st.tuples(
    st.lists(stays(), min_size=1, max_size=3),
    st.lists(happenings(), min_size=1, max_size=3),
    gaps(),
)


# --- the brute-force model -----------------------------------------------------------------


def worst(found: list[str]) -> str | None:
    return max(found, key=levels.rank, default=None)


def window_covers(window: Window, second: int) -> bool:
    return window.start <= second < (SPAN if window.end is None else window.end)


class Model:
    """The rules applied literally, one second at a time."""

    def __init__(
        self,
        tailnets: list[list[Stay]],
        incidents: list[Happening],
        gaps: dict[str, tuple[int, int | None]],
    ) -> None:
        self.tailnets = tailnets
        self.incidents = incidents
        self.silent = {
            shard: [
                shard in gaps and gaps[shard][0] <= s < (gaps[shard][1] or SPAN)
                for s in range(SPAN)
            ]
            for shard in SHARDS
        }
        published = [w for h in incidents if h.published for w in h.windows]
        self.shard_level = {
            shard: [
                worst([w.level for w in published if w.shard == shard and window_covers(w, s)])
                for s in range(SPAN)
            ]
            for shard in SHARDS
        }

    @staticmethod
    def shard_at(life: list[Stay], second: int) -> str | None:
        return next((s.shard for s in life if s.start <= second < s.end), None)

    def tailnet_tallies(self, n: int) -> dict[date, Tally]:
        counts: dict[date, dict[str, int]] = {day: defaultdict(int) for day in DAYS}
        for second in range(SPAN):
            shard = self.shard_at(self.tailnets[n], second)
            if shard is None:
                continue
            level = self.shard_level[shard][second]
            if level is None and self.silent[shard][second]:
                continue  # nobody measured it and no incident says anything: grey
            day = at(second).date()
            counts[day]["total"] += 1
            if level:
                counts[day][level] += 1
        return {day: _tally(c) for day, c in counts.items()}

    def affected_seconds(self, n: int, incident: Happening) -> int:
        return sum(
            1
            for second in range(SPAN)
            if any(
                w.shard == self.shard_at(self.tailnets[n], second) and window_covers(w, second)
                for w in incident.windows
            )
        )

    def sla_tallies(self, n: int, excluded: list[Happening]) -> dict[date, Tally]:
        """``tailnet_tallies`` with the excluded maintenance left out: a second only
        it covers is not measured; another impact covering it counts at its level."""
        counts: dict[date, dict[str, int]] = {day: defaultdict(int) for day in DAYS}
        published = [h for h in self.incidents if h.published and h not in excluded]
        for second in range(SPAN):
            shard = self.shard_at(self.tailnets[n], second)
            if shard is None:
                continue
            covers = [w for h in published for w in h.windows if w.shard == shard]
            level = worst([w.level for w in covers if window_covers(w, second)])
            left_out = any(
                w.shard == shard and window_covers(w, second) for h in excluded for w in h.windows
            )
            if level is None and (left_out or self.silent[shard][second]):
                continue
            day = at(second).date()
            counts[day]["total"] += 1
            if level:
                counts[day][level] += 1
        return {day: _tally(c) for day, c in counts.items()}

    def existed_during(self, n: int, start: datetime, end: datetime) -> bool:
        """Created before the window ended, and not deleted for good by the time it
        started (on no shard at the end of the story: deleted then)."""
        life = self.tailnets[n]
        deleted_at = at(life[-1].start) if life[-1].shard is None else None
        return at(life[0].start) < end and (deleted_at is None or deleted_at > start)

    def component_tallies(self, component: str) -> dict[date, Tally]:
        counts: dict[date, dict[str, int]] = {day: defaultdict(int) for day in DAYS}
        for second in range(SPAN):
            shards = COMPONENT_SHARDS[component]
            found = [self.shard_level[s][second] for s in shards]
            level = levels.level_for_status(component_status_from_shards(found))
            if level is None and all(self.silent[s][second] for s in shards):
                continue  # no shard of it measured, no incident: grey
            day = at(second).date()
            counts[day]["total"] += 1
            if level:
                counts[day][level] += 1
        return {day: _tally(c) for day, c in counts.items()}


def _tally(counts: dict[str, int]) -> Tally:
    return Tally(
        total_seconds=counts["total"],
        outage_seconds=counts["outage"],
        partial_seconds=counts["partial"],
        degraded_seconds=counts["degraded"],
    )


# --- building it through the services ------------------------------------------------------


def build(fleet, tailnets: list[list[Stay]], incidents: list[Happening], gaps, user):
    for shard, (start, end) in gaps.items():
        MonitoringGap.objects.create(
            shard=fleet[shard], starts_at=at(start), ends_at=None if end is None else at(end)
        )
    made = []
    for n, life in enumerate(tailnets):
        # Its life as the control plane tells it: created, migrated, deleted, back.
        slug, events = f"t{n}", []
        for k, stay in enumerate(life):
            sent = {"id": f"t{n}:{k}", "at": at(stay.start).isoformat(), "tailnet": slug}
            if stay.shard is None:
                events.append({**sent, "type": "tailnet.deleted"})
            elif k == 0 or life[k - 1].shard is None:
                events.append(
                    {**sent, "type": "tailnet.created", "shard": stay.shard,
                     "display_name": f"Tailnet {n}"}
                )  # fmt: skip
            else:
                events.append({**sent, "type": "tailnet.migrated", "shard": stay.shard})
        fleet_events_ingest(events=events)
        tailnet = Tailnet.objects.get(slug=slug)
        Membership.objects.create(user=user, tailnet=tailnet, role="owner")
        # A closed loopback port, never reached: only what each webhook is owed is checked.
        Subscription.objects.create(
            channel="webhook", tailnet=tailnet, url="http://127.0.0.1:9/", secret="s",
            confirmed_at=START,
        )  # fmt: skip
        made.append(tailnet)
    records = []
    for n, happening in enumerate(incidents):
        maintenance = happening.kind == "maintenance"
        first = min((w.start for w in happening.windows), default=0)
        incident = incident_create(
            title=f"{happening.kind} {n}",
            body="Investigating.",
            kind=happening.kind,
            status="in_progress" if maintenance else None,
            started_at=at(first),
            scheduled_for=at(0) if maintenance else None,
            scheduled_until=at(SPAN + 3600) if maintenance else None,
            shard_impacts=[
                WindowSpec(
                    fleet[w.shard], w.level, at(w.start), None if w.end is None else at(w.end)
                )
                for w in happening.windows
            ],
            published=happening.published,
            # Maintenance is announced when its scheduled window opens (see
            # check_reliability); an incident is opened when it starts.
            at=at(0) if maintenance else at(first),
        )
        if happening.windows and all(w.end is not None for w in happening.windows):
            resolved = max(w.end for w in happening.windows if w.end is not None)
            incident_resolve(incident=incident, body="Fixed.", at=at(resolved))
        records.append(incident)
    return made, records


# --- asking every surface ------------------------------------------------------------------


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).strip()


@pytest.fixture
def story(db, client, time_machine, django_capture_on_commit_callbacks, django_user_model):
    time_machine.move_to(NOW, tick=False)
    fleet = fleet_create(START - timedelta(days=1))
    user = django_user_model.objects.create_user("dana", "dana@example.com", PASSWORD)
    client.force_login(user)
    return fleet, user


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fleets)
def test_every_surface_agrees_with_the_second_by_second_model(
    story, client, django_capture_on_commit_callbacks, scenario
):
    fleet, user = story
    tailnets, incidents, silent = scenario
    model = Model(tailnets, incidents, silent)
    for cache in caches.all():
        cache.clear()  # ids repeat across examples (each one is rolled back)
    with transaction.atomic():
        with django_capture_on_commit_callbacks(execute=True):
            made, records = build(fleet, tailnets, incidents, silent, user)
        check_tailnets(client, model, made, records)
        check_incidents(client, model, made, records)
        check_components(client, model)
        check_fleet(model)
        check_notifications(model, made, records)
        check_reliability(client, model, made, records)
        transaction.set_rollback(True)


def check_tailnets(client, model: Model, made, records) -> None:
    span = {"from": DAYS[0].isoformat(), "to": DAYS[-1].isoformat()}
    for n, tailnet in enumerate(made):
        days = model.tailnet_tallies(n)
        whole = days[DAYS[0]] + days[DAYS[1]]

        uptime = client.get(f"/api/v1/tailnets/{tailnet.slug}/uptime", span).json()
        for got, day in zip(uptime["days"], DAYS, strict=True):
            assert _seconds(got) == _seconds_of(days[day]), (tailnet.slug, day)
            assert got["uptime_pct"] == floor_pct(days[day].uptime)
        assert [m["month"] for m in uptime["months"]] == ["2026-01", "2026-02"]
        for got, day in zip(uptime["months"], DAYS, strict=True):
            assert _seconds(got) == _seconds_of(days[day])
        assert _seconds(uptime["total"]) == _seconds_of(whole)
        assert uptime["total"]["uptime_pct"] == floor_pct(whole.uptime)

        rows = list(csv.DictReader(io.StringIO(
            client.get(f"/t/{tailnet.slug}/uptime.csv", span).content.decode()
        )))  # fmt: skip
        assert [r["month"] for r in rows] == ["2026-01", "2026-02", "total"]
        for row, expected in zip(rows, [*uptime["months"], uptime["total"]], strict=True):
            assert {k: row[k] for k in _SECONDS} == {k: str(expected[k]) for k in _SECONDS}
            assert row["uptime_pct"] == ("" if expected["uptime_pct"] is None
                                         else str(expected["uptime_pct"]))  # fmt: skip

        page = client.get(f"/t/{tailnet.slug}/").content.decode()
        for day in DAYS:
            month = re.search(rf'<th scope="row">{day:%Y-%m}</th>(.*?)</tr>', page, re.S)
            cells = re.findall(r"<td[^>]*>(.*?)</td>", month.group(1))
            t = days[day]
            assert cells == [
                percent_text(t.uptime),
                duration_text(t.outage_seconds),
                duration_text(t.partial_seconds),
                duration_text(t.degraded_seconds),
                duration_text(t.downtime_seconds),
            ], (tailnet.slug, day)

        history = client.get(f"/api/v1/tailnets/{tailnet.slug}/incidents").json()["incidents"]
        listed = {item["id"]: item for item in history}
        for incident, happening in zip(records, model.incidents, strict=True):
            seconds = model.affected_seconds(n, happening) if happening.published else 0
            if not seconds:
                assert incident.pk not in listed
                continue
            item = listed.pop(incident.pk)
            assert item["affected_seconds"] == seconds
            assert sum(w["seconds"] for w in item["windows"]) == seconds  # totals = windows
            line = re.search(rf'<tr id="history-{incident.pk}">(.*?)</tr>', page, re.S)
            assert line is not None
            affected_for = re.search(r'class="affected-for"[^>]*>(.*?)<', line.group(0))
            assert affected_for is not None
            ongoing = item["affected_until"] is None
            assert affected_for.group(1) == duration_text(seconds) + (" so far" if ongoing else "")
        assert listed == {}


def check_notifications(model: Model, made, records) -> None:
    """Exactly the tailnets an incident affected (and not deleted since) are owed a
    notice, and it carries the seconds every other surface shows."""
    for n, tailnet in enumerate(made):
        deleted = Tailnet.objects.get(pk=tailnet.pk).deleted_at is not None
        for incident, happening in zip(records, model.incidents, strict=True):
            seconds = model.affected_seconds(n, happening) if happening.published else 0
            owed = list(
                Delivery.objects.filter(incident=incident, tailnet=tailnet).order_by("created_at")
            )
            if not seconds or deleted:
                assert owed == [], (tailnet.slug, incident.title)
                continue
            resolved = Incident.objects.get(pk=incident.pk).resolved_at is not None
            assert owed[-1].type == ("incident.resolved" if resolved else "incident.affected")
            payload = webhook_json(owed[-1], sent_at=NOW)
            assert payload["affected"]["seconds"] == seconds, (tailnet.slug, incident.title)


def check_incidents(client, model: Model, made, records) -> None:
    v2 = {i["id"]: i for i in client.get("/api/v2/incidents.json").json()["incidents"]}
    maintenances = client.get("/api/v2/scheduled-maintenances.json").json()
    v2.update({i["id"]: i for i in maintenances["scheduled_maintenances"]})
    for incident, happening in zip(records, model.incidents, strict=True):
        if not happening.published:
            continue
        incident.refresh_from_db()
        ends = [None if w.end is None else at(w.end) for w in happening.windows]
        end = incident_window_end(resolved_at=incident.resolved_at, window_ends=ends, as_of=NOW)
        affected = sum(1 for n in range(len(made)) if model.affected_seconds(n, happening) > 0)
        start = at(min(w.start for w in happening.windows)) if happening.windows else end
        existed = sum(1 for n in range(len(made)) if model.existed_during(n, start, end))
        if not happening.windows:
            continue  # no shard impact: no blast radius to show
        assert v2[str(incident.pk)]["affected_tailnets"] == affected
        words = text(client.get(f"/incidents/{incident.pk}/"))
        noun = "tailnet" if affected == 1 else "tailnets"
        share = percent_text(Fraction(100 * affected, existed) if existed else 0)
        assert f"Blast radius {affected:,} {noun}, {share} of tailnets" in words


def check_components(client, model: Model) -> None:
    page = client.get("/").content.decode()
    for name, slug in (("us", "coordination-us-east"), ("eu", "coordination-eu-west")):
        days = model.component_tallies(name)
        # The component exists from a day before the story (Jan 30, 23:00): all up.
        jan31 = Tally(total_seconds=23 * 3600) + days[DAYS[0]]
        whole = Tally(total_seconds=3600) + jan31 + days[DAYS[1]]
        row = re.search(rf'<ol class="bars" id="bars-{slug}".*?</ol>(.*?)</p>', page, re.S).group(0)
        assert f"{percent_text(whole.uptime)} uptime" in text_of_html(row), slug
        for day, tally in ((DAYS[0], jan31), (DAYS[1], days[DAYS[1]])):
            # A day is an <li> holding a tooltip (a <div>, with <li>s of its own).
            item = re.search(
                rf'<li class="day[^"]*"><button[^>]*d-{slug}-{day:%Y%m%d}.*?</div></li>', row, re.S
            )
            said = text_of_html(item.group(0))
            if tally.total_seconds == 0:
                assert "No data for this day" in said, (slug, day, said)
            else:
                assert f"{percent_text(tally.uptime)} uptime" in said, (slug, day, said)
            for label, seconds in (
                ("Outage", tally.outage_seconds),
                ("Partial outage", tally.partial_seconds),
                ("Degraded performance", tally.degraded_seconds),
            ):
                if seconds:
                    assert f"{label}: {duration_text(seconds)}" in said, (slug, day, said)


def check_reliability(client, model: Model, made, records) -> None:
    """The public report's tailnet-seconds are every tailnet's; each tailnet's own
    figures and SLA statement carry its seconds and count the incidents that touched
    it, in the month they started. The default policy excludes maintenance announced
    at least 0 hours ahead, which every maintenance here is (published when its
    scheduled window opens), within that window (the whole story)."""
    months = {"from": "2026-01", "to": "2026-02"}
    public = client.get("/api/v1/reliability", months).json()["months"]
    for got, day in zip(public, DAYS, strict=True):
        expected = Tally()
        for n in range(len(made)):
            expected += model.tailnet_tallies(n)[day]
        assert got["tailnet_seconds"] == _tailnet_seconds_of(expected), day
        assert got["uptime_pct"] == floor_pct(expected.uptime)

    policy = SlaPolicy.objects.create(
        name="Standard", target_percent=Decimal("99.9"), maintenance_notice_hours=0,
        is_default=True,
    )  # fmt: skip
    SlaCreditTier.objects.create(policy=policy, below_percent=Decimal("99.9"), credit_percent=10)
    excluded = [h for h in model.incidents if h.published and h.kind == "maintenance"]
    for n, tailnet in enumerate(made):
        days = model.tailnet_tallies(n)
        own = client.get(f"/api/v1/tailnets/{tailnet.slug}/reliability", months).json()
        sla = client.get(f"/api/v1/tailnets/{tailnet.slug}/sla", months).json()
        for k, day in enumerate(DAYS):
            assert own["months"][k]["tailnet_seconds"] == _tailnet_seconds_of(days[day])
            touched = sum(
                1
                for happening in model.incidents
                if happening.published
                and model.affected_seconds(n, happening) > 0
                and at(min(w.start for w in happening.windows)).date() == day
            )
            assert own["months"][k]["incidents"] == touched, (tailnet.slug, day)
            held = model.sla_tallies(n, excluded)[day]
            month = sla["months"][k]
            assert {**_tailnet_seconds_of(held)} == {
                "seconds_with_data": month["seconds_with_data"],
                "outage_seconds": month["outage_seconds"],
                "partial_seconds": month["partial_seconds"],
                "degraded_seconds": month["degraded_seconds"],
            }, (tailnet.slug, day)
            owed = held.uptime is not None and held.uptime < Fraction(999, 10)
            assert month["credit_pct"] == (10.0 if owed else 0.0), (tailnet.slug, day)
        sheet = list(csv.DictReader(io.StringIO(
            client.get(f"/t/{tailnet.slug}/sla.csv", months).content.decode()
        )))  # fmt: skip
        assert [row["seconds_with_data"] for row in sheet] == [
            str(m["seconds_with_data"]) for m in sla["months"]
        ]
        assert [row["credit_pct"] for row in sheet] == [str(m["credit_pct"]) for m in sla["months"]]


def _tailnet_seconds_of(t: Tally) -> dict:
    return {
        "seconds_with_data": t.total_seconds,
        "outage_seconds": t.outage_seconds,
        "partial_seconds": t.partial_seconds,
        "degraded_seconds": t.degraded_seconds,
    }


def text_of_html(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def check_fleet(model: Model) -> None:
    expected = Tally()
    for n in range(len(model.tailnets)):
        for tally in model.tailnet_tallies(n).values():
            expected += tally
    got = fleet_uptime_tally(first_day=DAYS[0], last_day=DAYS[1], now=NOW)
    assert got == expected


_SECONDS = (
    "seconds_with_data",
    "outage_seconds",
    "partial_seconds",
    "degraded_seconds",
    "affected_seconds",
    "downtime_seconds",
)


def _seconds(data: dict) -> dict:
    return {k: data[k] for k in _SECONDS}


def _seconds_of(t: Tally) -> dict:
    return {
        "seconds_with_data": t.total_seconds,
        "outage_seconds": t.outage_seconds,
        "partial_seconds": t.partial_seconds,
        "degraded_seconds": t.degraded_seconds,
        "affected_seconds": t.affected_seconds,
        "downtime_seconds": round(t.downtime_seconds, 1),
    }
