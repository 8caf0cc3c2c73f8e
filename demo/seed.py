"""Writes the demo: the planned fleet (``demo.fleet``) through the fleet feed, as the
coordination service's control plane would have sent it (``tailnet.created`` and
``tailnet.migrated`` events with ids ``demo:<tailnet>:<n>``, in batches), then the
story (``demo.story``) through ``incidents.services``, as an operator would have.

What it builds, all relative to "now" (the current minute, or ``--now``):

- the components of the public page: one coordination component per region in the
  "Coordination service" group, plus Admin console, Login, DERP relays and API;
- 24 coordination shards, 6 per region (one of them, US East 6, added during the
  window as a hot spare), each with a probe URL on the local simulator;
- N tailnets with their placement history: most never move, a few percent
  live-migrate once or several times, and two rebalancing events move many tailnets
  off one shard within minutes;
- the incidents of the motivating post: a planned repair that took US East 3 offline
  for exactly 24 minutes (with a postmortem), nine short partial outages in the last
  five weeks, an older DERP relay incident and one upcoming scheduled maintenance. A
  handful of tailnets are live-migrated off failing shards mid-incident
  (``tailnet.migrated`` events), so the per-tailnet stitching is visible;
- the derived affected-tailnet rows (recomputed directly: no worker needed);
- the probe regions and a week of probe history behind every tailnet page's latency
  chart: hourly and daily rollups of every shard from every region (``demo.latency``),
  failing and slow where the story's incidents say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model

from customers.queries import LATENCY_DAYS
from demo import latency, story
from demo.fleet import (
    COORDINATION_SLUGS,
    PINNED,
    PROBE_PATH,
    PROBE_REGIONS,
    REGIONS,
    SHARD_SLUGS,
    SHARDS_PER_REGION,
    Clock,
    Plan,
    Planner,
    as_datetime,
    as_seconds,
    coordination_slug,
)
from fleet.events import TAILNET_CREATED, TAILNET_MIGRATED
from fleet.models import FleetEventSource
from fleet.services import fleet_events_ingest
from incidents import services
from incidents.models import (
    Component,
    ComponentGroup,
    ComponentStatus,
    ImpactLevel,
    Incident,
    IncidentImpact,
    IncidentKind,
    Shard,
    ShardImpact,
    TailnetImpact,
)
from incidents.queries import incident_blast_radius
from probes.models import ProbeRegion, ProbeRollup

BATCH_SIZE = 5000
EVENTS_PER_BATCH = 2000  # fleet events per ingest, well under the feed API's limit
COMPONENT_SLUGS = COORDINATION_SLUGS + [slug for slug, *_ in story.STANDALONE_COMPONENTS]
COMPONENT_STATUS_FOR_LEVEL = {
    ImpactLevel.DEGRADED: ComponentStatus.DEGRADED_PERFORMANCE,
    ImpactLevel.PARTIAL: ComponentStatus.PARTIAL_OUTAGE,
    # One shard of six down is a partial outage of the region's coordination service.
    ImpactLevel.OUTAGE: ComponentStatus.PARTIAL_OUTAGE,
}


def hm(value: datetime) -> str:
    return value.strftime("%H:%M")


def day_text(value: datetime) -> str:
    return f"{value:%B} {value.day}"


def probe_url(slug: str) -> str:
    """Where the demo shard ``slug`` is probed: the simulator at PROBE_SIMULATOR_URL."""
    return settings.PROBE_SIMULATOR_URL.rstrip("/") + PROBE_PATH.format(slug=slug)


def demo_fleet_present() -> str | None:
    """What shows the demo fleet is already there, or None."""
    if ComponentGroup.objects.filter(name=story.GROUP_NAME).exists():
        return f"component group {story.GROUP_NAME!r}"
    shard = Shard.objects.filter(slug__in=SHARD_SLUGS).values_list("slug", flat=True).first()
    if shard:
        return f"shard {shard!r}"
    component = (
        Component.objects.filter(slug__in=COMPONENT_SLUGS).values_list("slug", flat=True).first()
    )
    if component:
        return f"component {component!r}"
    return None


def demo_probe_urls_align() -> int:
    """Point the demo shards' probes at the simulator where ``PROBE_SIMULATOR_URL``
    says it is now (a fleet seeded earlier may have measured another port). Returns
    how many shards changed."""
    changed = 0
    for shard in Shard.objects.filter(slug__in=SHARD_SLUGS).only("pk", "slug", "probe_url"):
        if shard.probe_url != probe_url(shard.slug):
            shard.probe_url = probe_url(shard.slug)
            shard.save(update_fields=["probe_url"])
            changed += 1
    return changed


def operator_ensure() -> Any:
    """The operator superuser: created if missing (returns it), else None."""
    users = get_user_model()
    if users.objects.filter(username=story.OPERATOR_USERNAME).exists():
        return None
    return users.objects.create_superuser(
        username=story.OPERATOR_USERNAME,
        email=story.OPERATOR_EMAIL,
        password=story.OPERATOR_PASSWORD,
    )


@dataclass
class Summary:
    service_migrations: int = 0
    rollups: int = 0
    pinned: list[tuple[str, str]] = field(default_factory=list)


class Seeder:
    """Writes the fleet, then tells the story through the services."""

    def __init__(self, *, seed: int, clock: Clock, tailnets: int, log: Callable[[str], None]):
        self.clock = clock
        self.n = tailnets
        self.log = log
        self.planner = Planner(seed=seed, clock=clock, tailnets=tailnets)
        self.rng = self.planner.rng("incidents")
        self.summary = Summary()
        self.components: dict[str, Component] = {}
        self.shards: dict[str, Shard] = {}
        self.names: list[tuple[str, str]] = []  # (slug, display name) in plan order
        self.accepted = 0  # fleet events the feed took as new
        self.plan: Plan | None = None
        self.user: Any = None

    # -- fleet ------------------------------------------------------------------------

    def build(self, user: Any) -> None:
        self.user = user
        self._components()
        self._shards()
        with self._timed("planned {:,} tailnets", self.n):
            self.plan = self.planner.plan()
        with self._timed(
            "wrote {:,} tailnets and {:,} placements", self.n, self.n + self.plan.migrations
        ):
            self._tailnets(self.plan)
        with self._timed(
            "wrote {} incidents and their affected tailnets", 2 + len(story.OUTAGES) + 1
        ):
            self._incidents()
        with self._timed("wrote {} days of probe history", LATENCY_DAYS):
            self._latency()

    @contextmanager
    def _timed(self, what: str, *args: object) -> Iterator[None]:
        wall, cpu = time.monotonic(), time.process_time()
        yield
        self.log(
            f"  {what.format(*args)} in {time.monotonic() - wall:.1f}s "
            f"({time.process_time() - cpu:.1f}s CPU)"
        )

    def _components(self) -> None:
        born = self.clock.fleet_born
        group = ComponentGroup.objects.create(
            name=story.GROUP_NAME, description=story.GROUP_DESCRIPTION, position=1, created_at=born
        )
        for position, region in enumerate(REGIONS, start=1):
            self.components[coordination_slug(region.slug)] = Component.objects.create(
                slug=coordination_slug(region.slug),
                name=story.COORDINATION_NAME.format(region=region.label),
                description=story.COORDINATION_DESCRIPTION.format(region=region.label),
                group=group,
                kind="coordination",
                region=region.slug,
                position=position,
                created_at=born,
            )
        for slug, name, kind, position, description in story.STANDALONE_COMPONENTS:
            self.components[slug] = Component.objects.create(
                slug=slug,
                name=name,
                description=description,
                kind=kind,
                position=position,
                created_at=born,
            )

    def _shards(self) -> None:
        shards = []
        for info in self.planner.shards:
            region = REGIONS[info.region]
            number = info.index % SHARDS_PER_REGION + 1
            shards.append(
                Shard(
                    slug=info.slug,
                    region=region.slug,
                    public_name=f"{region.label} {number}",
                    component=self.components[coordination_slug(region.slug)],
                    probe_url=probe_url(info.slug),
                    latency_threshold_ms=region.latency_threshold_ms,
                    created_at=as_datetime(info.created),
                )
            )
        for shard in Shard.objects.bulk_create(shards):
            self.shards[shard.slug] = shard
        if any(shard.pk is None for shard in self.shards.values()):
            self.shards = {s.slug: s for s in Shard.objects.filter(slug__in=SHARD_SLUGS)}

    def _tailnets(self, plan: Plan) -> None:
        for batch in self.fleet_events(plan):
            self._send(batch)
        self.summary.pinned = [(self.names[i][0], p.note) for i, p in enumerate(PINNED)]

    def fleet_events(self, plan: Plan) -> Iterator[list[dict[str, str]]]:
        """The planned fleet as the control plane sends it: each tailnet's creation
        and its moves, in batches; the same events for the same seed and clock."""
        if not self.names:
            self.names = list(self.planner.names())
        batch: list[dict[str, str]] = []
        for i in range(len(plan)):
            for n, (starts, shard) in enumerate(plan.history(i), start=1):
                batch.append(self._event(i, n, starts, shard))
            if len(batch) >= EVENTS_PER_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _event(self, i: int, n: int, at: int, shard: int) -> dict[str, str]:
        """The ``n``-th event of tailnet ``i``: its creation, then its moves."""
        slug, display = self.names[i]
        event = {
            "id": f"demo:{slug}:{n}",
            "type": TAILNET_CREATED if n == 1 else TAILNET_MIGRATED,
            "at": as_datetime(at).isoformat(),
            "tailnet": slug,
            "shard": SHARD_SLUGS[shard],
        }
        if n == 1:
            event["display_name"] = display
        return event

    def _send(self, events: list[dict[str, str]]) -> None:
        counts = fleet_events_ingest(events=events, source=FleetEventSource.API, now=self.clock.now)
        self.accepted += counts["accepted"]

    def _migrate_off(
        self,
        shard: str,
        at: datetime,
        targets: Sequence[str],
        count: int,
        first: int | None = None,
    ) -> list[str]:
        """Live-migrate ``count`` tailnets that are on ``shard`` at ``at`` (and never
        moved again afterwards) to ``targets``, through the feed."""
        assert self.plan is not None
        plan, index, when = self.plan, self.planner.index, as_seconds(at)
        candidates = [
            i
            for i in range(len(PINNED), len(plan))
            if plan.last(i)[1] == index[shard] and plan.last(i)[0] < when
        ]
        chosen = sorted(self.rng.sample(candidates, min(count, len(candidates))))
        if first is not None:
            chosen = [first, *chosen]
        events = []
        for k, i in enumerate(chosen):
            target = index[targets[k % len(targets)]]
            events.append(self._event(i, len(plan.history(i)) + 1, when, target))
            plan.moves.setdefault(i, []).append((when, target))
        self._send(events)
        self.summary.service_migrations += len(events)
        return [self.names[i][0] for i in chosen]

    # -- probe history ----------------------------------------------------------------

    def _latency(self) -> None:
        """The probe regions, and hourly and daily rollups of every shard from each
        of them over the days the tailnet pages chart, with the story's incidents in
        them (its shard impact windows, written by then)."""
        now = self.clock.now
        regions = {
            slug: ProbeRegion.objects.get_or_create(slug=slug, defaults={"name": name})[0]
            for slug, name in PROBE_REGIONS.items()
        }
        windows = [
            latency.Window(shard, level, starts_at, ends_at)
            for shard, level, starts_at, ends_at in ShardImpact.objects.filter(
                shard__slug__in=SHARD_SLUGS,
                starts_at__lt=now,
            )
            .exclude(ends_at__lte=latency.window_start(now, LATENCY_DAYS))
            .values_list("shard__slug", "level", "starts_at", "ends_at")
        ]
        hours = list(
            latency.hourly_rollups(
                seed=self.planner.seed,
                now=now,
                days=LATENCY_DAYS,
                shards=[
                    latency.ShardSpec(s.slug, s.region, s.created_at) for s in self.shards.values()
                ],
                regions=list(regions),
                windows=windows,
            )
        )
        rows = [
            ProbeRollup(
                shard=self.shards[r.shard],
                region=regions[r.region],
                granularity=r.granularity,
                bucket_start=r.bucket_start,
                count=r.count,
                failures=r.failures,
                latency_sum_ms=r.latency_sum_ms,
                latency_max_ms=r.latency_max_ms,
                histogram=r.histogram,
            )
            for r in [*hours, *latency.daily_rollups(hours)]
        ]
        # Replaces what is there (nothing, on a fresh fleet): the same rows every run.
        ProbeRollup.objects.bulk_create(
            rows,
            batch_size=BATCH_SIZE,
            update_conflicts=True,
            unique_fields=["shard", "region", "granularity", "bucket_start"],
            update_fields=["count", "failures", "latency_sum_ms", "latency_max_ms", "histogram"],
        )
        self.summary.rollups = len(rows)

    # -- incidents --------------------------------------------------------------------

    def _incidents(self) -> None:
        incidents = [self._derp(), self._repair()]
        incidents += [self._outage(spec) for spec in story.OUTAGES]
        incidents.append(self._upcoming())
        for incident in incidents:
            services.tailnet_impacts_recompute(incident_id=incident.pk)
        self._postmortem(incidents[1])

    def _repair_times(self) -> dict[str, str]:
        r = self.clock.repair_at
        times = {f"t{n}": hm(r + timedelta(minutes=n)) for n in (6, 11, 24, 29, 38)}
        return times | {
            "start": hm(r),
            "date": day_text(r),
            "flagged": hm(r - timedelta(minutes=40)),
            "announced": hm(r - timedelta(minutes=12)),
        }

    def _repair(self) -> Incident:
        """The planned repair that took US East 3 offline for exactly 24 minutes."""
        r = self.clock.repair_at
        m = timedelta(minutes=1)
        text, times = story.REPAIR, self._repair_times()
        coordination = self.components["coordination-us-east"]
        incident = services.incident_create(
            title=text.title,
            kind=IncidentKind.MAINTENANCE,
            status="scheduled",
            impact=IncidentImpact.MAINTENANCE,
            scheduled_for=r,
            scheduled_until=r + 45 * m,
            detected_at=r - 40 * m,
            published=True,
            by=self.user,
            at=r - 12 * m,
            body=text.announced.format(**times),
        )
        services.incident_post_update(
            incident=incident,
            status="in_progress",
            components={coordination: ComponentStatus.PARTIAL_OUTAGE},
            by=self.user,
            at=r,
            body=text.offline.format(**times),
        )
        outage = services.shard_impact_add(
            incident=incident, shard=self.shards["use3"], level="outage", starts_at=r
        )
        slow = {
            "use2": (r + m, r + 29 * m),
            "use4": (r + m, r + 27 * m),
            "use5": (r + 2 * m, r + 29 * m),
        }
        windows = {
            slug: services.shard_impact_add(
                incident=incident, shard=self.shards[slug], level="degraded", starts_at=start
            )
            for slug, (start, _) in slow.items()
        }
        globex = next(k for k, p in enumerate(PINNED) if p.display == "globex.com")
        self._migrate_off("use3", r + 6 * m, ("use2", "use1"), 3, first=globex)
        self._migrate_off("use3", r + 11 * m, ("use1",), 3)
        services.incident_post_update(
            incident=incident,
            status="in_progress",
            by=self.user,
            at=r + 13 * m,
            body=text.migrated.format(**times),
        )
        services.shard_impact_close(impact=outage, at=r + 24 * m)
        services.incident_post_update(
            incident=incident,
            status="verifying",
            components={coordination: ComponentStatus.DEGRADED_PERFORMANCE},
            by=self.user,
            at=r + 24 * m,
            body=text.back.format(**times),
        )
        for slug, (_, end) in sorted(slow.items(), key=lambda item: item[1][1]):
            services.shard_impact_close(impact=windows[slug], at=end)
        services.incident_post_update(
            incident=incident,
            status="completed",
            components={coordination: ComponentStatus.OPERATIONAL},
            by=self.user,
            at=r + 38 * m,
            body=text.completed.format(**times),
        )
        return incident

    def _postmortem(self, incident: Incident) -> None:
        """Written after the fact, with the measured blast radius."""
        rows = TailnetImpact.objects.filter(incident=incident)
        outage_seconds: dict[int, int] = {}
        for tailnet_id, seconds in rows.filter(level="outage").values_list("tailnet_id", "seconds"):
            outage_seconds[tailnet_id] = outage_seconds.get(tailnet_id, 0) + seconds
        full = sum(1 for s in outage_seconds.values() if s >= 24 * 60)
        incident.refresh_from_db()
        # The figures the incident's own page shows.
        radius = incident_blast_radius(incident=incident, as_of=self.clock.now)
        postmortem = story.REPAIR.postmortem.format(
            **self._repair_times(),
            full=full,
            moved=len(outage_seconds) - full,
            slowed=radius.affected - len(outage_seconds),
            affected=radius.affected,
            total=radius.total,
            percent=radius.percent_text,
        )
        services.incident_edit(
            incident=incident,
            changes={"postmortem": postmortem},
            by=self.user,
            at=self.clock.repair_at + timedelta(days=3, hours=2),
        )

    def _outage(self, spec: story.Outage) -> Incident:
        """One short partial outage, written as it unfolded."""
        start = self.clock.day(spec.days_ago, *spec.at)
        shard = self.shards[spec.shard]

        def t(minutes: int) -> datetime:
            return start + timedelta(minutes=minutes)

        def level_at(minutes: int) -> str:
            return [level for offset, level in spec.levels if offset <= minutes][-1]

        coordination = self.components[coordination_slug(shard.region)]
        admin = self.components["admin-console"]

        def components(minutes: int | None) -> dict[Component, str]:
            if minutes is None:
                status = ComponentStatus.OPERATIONAL
                admin_status = ComponentStatus.OPERATIONAL
            else:
                status = COMPONENT_STATUS_FOR_LEVEL[ImpactLevel(level_at(minutes))]
                admin_status = ComponentStatus.DEGRADED_PERFORMANCE
            result: dict[Component, str] = {coordination: status}
            if spec.admin_console:
                result[admin] = admin_status
            return result

        times = {"start": hm(start), "fixed": hm(t(spec.fixed)), "window": spec.fixed}
        for offset, _ in spec.levels:
            times[f"t{offset}"] = hm(t(offset))
        if spec.migrate:
            times[f"t{spec.migrate[0]}"] = hm(t(spec.migrate[0]))
        levels = {level for _, level in spec.levels}
        works = (
            story.WORKS_SLOW
            if levels == {"degraded"}
            else story.WORKS.format(shard=shard.public_name)
        )
        impact = IncidentImpact.MAJOR if "outage" in levels else IncidentImpact.MINOR

        # What detection knew when the incident was opened, backdated to the first
        # failing sample; later level changes follow as they happen.
        known = [(o, lvl) for o, lvl in spec.levels if o <= spec.detected]
        windows = [
            services.WindowSpec(
                shard, level, t(offset), t(known[k + 1][0]) if k + 1 < len(known) else None
            )
            for k, (offset, level) in enumerate(known)
        ]
        by_probe = spec.source == "probe"
        incident = services.incident_create(
            title=spec.title,
            body=spec.investigating.format(**times) + "\n\n" + works + "\n\n" + story.INVESTIGATING,
            impact=impact,
            started_at=start,
            detected_at=t(spec.detected),
            components=components(spec.detected),
            shard_impacts=windows,
            published=not by_probe,  # detection opens a draft; an operator publishes it
            source=spec.source,
            by=self.user,
            at=t(spec.detected),
        )
        if by_probe:
            services.incident_publish(incident=incident, by=self.user, at=t(spec.detected + 2))
        window = incident.shard_impacts.get(ends_at__isnull=True)

        # (minute, order within the minute, action), run in time order.
        steps: list[tuple[int, int, Callable[[], object]]] = []

        def change(level: str, minutes: int) -> Callable[[], None]:
            def run() -> None:
                nonlocal window  # the open window is the one the last change opened
                window = services.shard_impact_change_level(
                    impact=window, level=level, at=t(minutes)
                )

            return run

        def close(minutes: int) -> Callable[[], None]:
            def run() -> None:
                services.shard_impact_close(impact=window, at=t(minutes))

            return run

        def update(
            status: str, body: str, minutes: int, comps: dict[Component, str]
        ) -> Callable[[], object]:
            return partial(
                services.incident_post_update,
                incident=incident,
                status=status,
                body=body,
                components=comps,
                by=self.user,
                at=t(minutes),
            )

        for offset, level in spec.levels:
            if offset > spec.detected:
                steps.append((offset, 0, change(level, offset)))
        steps.append(
            (
                spec.identified,
                2,
                update(
                    "identified",
                    spec.identified_text.format(**times),
                    spec.identified,
                    components(spec.identified),
                ),
            )
        )
        if spec.progress:
            minutes, text = spec.progress
            body = text.format(**times) + "\n\n" + works
            steps.append((minutes, 2, update("identified", body, minutes, components(minutes))))
        if spec.migrate:
            minutes, targets, count, pinned = spec.migrate
            first = next((k for k, p in enumerate(PINNED) if p.display == pinned), None)
            count -= first is not None
            migrate = partial(self._migrate_off, spec.shard, t(minutes), targets, count, first)
            steps.append((minutes, 1, migrate))
        steps.append((spec.fixed, 1, close(spec.fixed)))
        steps.append(
            (
                spec.fixed,
                2,
                update("monitoring", spec.monitoring.format(**times), spec.fixed, components(None)),
            )
        )
        resolved = story.RESOLVED + spec.resolved_text.format(**times) + "\n\n" + story.YOUR_TAILNET
        steps.append((spec.resolved, 2, update("resolved", resolved, spec.resolved, {})))
        for _, _, step in sorted(steps, key=lambda item: item[:2]):
            step()
        return incident

    def _derp(self) -> Incident:
        """A DERP relay incident: no shard impact, the control plane untouched."""
        start = self.clock.derp_at
        m = timedelta(minutes=1)
        text = story.DERP
        derp = self.components["derp-relays"]
        incident = services.incident_create(
            title=text.title,
            started_at=start,
            detected_at=start + 6 * m,
            components={derp: ComponentStatus.DEGRADED_PERFORMANCE},
            published=True,
            source="reports",
            by=self.user,
            at=start + 6 * m,
            body=text.investigating,
        )
        services.incident_post_update(
            incident=incident,
            status="identified",
            by=self.user,
            at=start + 19 * m,
            body=text.identified,
        )
        services.incident_post_update(
            incident=incident,
            status="monitoring",
            components={derp: ComponentStatus.OPERATIONAL},
            by=self.user,
            at=start + 33 * m,
            body=text.monitoring,
        )
        services.incident_post_update(
            incident=incident,
            status="resolved",
            by=self.user,
            at=start + 52 * m,
            body=text.resolved.format(start=hm(start), t33=hm(start + 33 * m)),
        )
        return incident

    def _upcoming(self) -> Incident:
        """A maintenance that hasn't started: no impact, and no component status yet
        (an operator-set status on an open incident would override the live one)."""
        at = self.clock.upcoming_at
        until = at + timedelta(hours=2)
        return services.incident_create(
            title=story.UPCOMING_TITLE,
            kind=IncidentKind.MAINTENANCE,
            status="scheduled",
            impact=IncidentImpact.MAINTENANCE,
            scheduled_for=at,
            scheduled_until=until,
            published=True,
            by=self.user,
            at=self.clock.day(2, 10, 0),
            body=story.UPCOMING_BODY.format(date=day_text(at), start=hm(at), end=hm(until)),
        )
