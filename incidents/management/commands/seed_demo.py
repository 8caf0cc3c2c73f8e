"""``manage.py seed_demo``: a realistic demo fleet, deterministic and idempotent.

What it builds, all relative to "now" (the current minute, or ``--now``):

- the components of the public page: one coordination component per region in the
  "Coordination service" group, plus Admin console, Login, DERP relays and API;
- 24 coordination shards, 6 per region (one of them, US East 6, added during the
  window as a hot spare), each with a probe URL on the local simulator;
- N tailnets (``--tailnets``, default 5000) with ``--days`` (default 90) of placement
  history: most never move, a few percent live-migrate once or several times, and
  two rebalancing events move many tailnets off one shard within minutes;
- the incidents of the motivating post, written through the services as an
  operator would: a planned repair that took US East 3 offline for exactly 24
  minutes (with a postmortem), nine short partial outages in the last five weeks,
  an older DERP relay incident and one upcoming scheduled maintenance. A handful of
  tailnets are live-migrated off failing shards mid-incident (``placement_migrate``),
  so the per-tailnet stitching is visible;
- the derived affected-tailnet rows (recomputed directly: no worker needed);
- a staff superuser ``operator`` for the console.

The bulk part (tailnets, placements) is planned in Python from ``random.Random(seed)``
and written with ``bulk_create`` in batches, so it scales to millions of tailnets.
Everything runs in one transaction: a failed seed leaves nothing behind, and a
second run finds the demo fleet and changes nothing (``make run`` calls it on
every start).
"""

from __future__ import annotations

import heapq
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from incidents.models import (
    Component,
    ComponentGroup,
    ComponentKind,
    ComponentStatus,
    ImpactLevel,
    Incident,
    IncidentImpact,
    IncidentKind,
    IncidentSource,
    Placement,
    Shard,
    ShardImpact,
    Tailnet,
    TailnetImpact,
)
from incidents.queries import incident_blast_radius
from incidents.services import (
    WindowSpec,
    incident_create,
    incident_edit,
    incident_post_update,
    incident_publish,
    placement_migrate,
    shard_impact_add,
    shard_impact_change_level,
    shard_impact_close,
    tailnet_impacts_recompute,
)

OPERATOR_USERNAME = "operator"
OPERATOR_PASSWORD = "operator-demo-password"  # noqa: S105 - the documented demo login
ADMIN_URL = "http://127.0.0.1:8000/admin/"
PROBE_URL = "http://127.0.0.1:8787/s/{slug}/key?v=88"

BATCH_SIZE = 5000
MIN_TAILNETS = 20
MIN_DAYS = 60
MAX_DAYS = 3650
FLEET_AGE = timedelta(days=3 * 365)  # the shards (and the first tailnets) are this old
NEW_DURING_WINDOW = 0.12  # share of tailnets created during the window
MOVE_ONCE = 0.03  # share of tailnets live-migrated once during the window
MOVE_SEVERAL = 0.015  # ... and 2 to 4 times
OTHER_REGION = 0.12  # share of migrations that change region

GROUP_NAME = "Coordination service"
GROUP_DESCRIPTION = (
    "Every tailnet lives on one coordination shard: a message bus that distributes keys, "
    "network maps and ACLs to its devices. When a shard has trouble, existing connections "
    "keep working; logging in, approving devices and changing ACLs may fail for the "
    "tailnets on it."
)


@dataclass(frozen=True)
class Region:
    slug: str
    label: str
    prefix: str
    weight: float  # share of new tailnets placed here
    latency_threshold_ms: int | None = None


REGIONS = (
    Region("us-east", "US East", "use", 0.38),
    Region("us-west", "US West", "usw", 0.24),
    Region("eu-central", "EU Central", "euc", 0.25),
    Region("ap-southeast", "AP Southeast", "apse", 0.13, latency_threshold_ms=1500),
)
SHARDS_PER_REGION = 6
SHARD_SLUGS = [f"{r.prefix}{n}" for r in REGIONS for n in range(1, SHARDS_PER_REGION + 1)]
NEW_SHARD = "use6"  # added during the window; rebalancing fills it

# (slug, name, kind, position, description) of the components outside the group.
STANDALONE_COMPONENTS = (
    (
        "admin-console",
        "Admin console",
        ComponentKind.ADMIN_CONSOLE,
        10,
        "The web console for managing machines, users, ACLs and settings.",
    ),
    (
        "login",
        "Login",
        ComponentKind.LOGIN,
        11,
        "Signing in and authenticating new devices through your identity provider.",
    ),
    (
        "derp-relays",
        "DERP relays",
        ComponentKind.DERP,
        12,
        "Encrypted relays that carry traffic when devices can't connect directly. "
        "Not involved in logins or ACL changes.",
    ),
    (
        "api",
        "API",
        ComponentKind.API,
        13,
        "The public REST API for automation: devices, keys, ACLs.",
    ),
)
COMPONENT_SLUGS = [f"coordination-{r.slug}" for r in REGIONS] + [
    slug for slug, *_ in STANDALONE_COMPONENTS
]


def _coordination_slug(region: str) -> str:
    return f"coordination-{region}"


# --- Clock ---------------------------------------------------------------------------


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _ts(value: datetime) -> int:
    return int(value.timestamp())


def _hm(value: datetime) -> str:
    return value.strftime("%H:%M")


def _date(value: datetime) -> str:
    return f"{value:%B} {value.day}"


@dataclass(frozen=True)
class Clock:
    """Every moment of the demo story, relative to ``now``."""

    now: datetime
    days: int

    def day(self, days_ago: int, hour: int, minute: int) -> datetime:
        midnight = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=days_ago) + timedelta(hours=hour, minutes=minute)

    @property
    def window_start(self) -> datetime:
        return self.now - timedelta(days=self.days)

    @property
    def fleet_born(self) -> datetime:
        return self.window_start - FLEET_AGE

    @property
    def repair_at(self) -> datetime:
        return self.day(round(self.days * 2 / 3), 14, 6)

    @property
    def new_shard_at(self) -> datetime:
        return self.day(self.days // 2 + 1, 9, 30)

    @property
    def derp_at(self) -> datetime:
        return self.day(self.days - 12, 8, 20)

    @property
    def upcoming_at(self) -> datetime:
        return self.day(-4, 9, 0)


@dataclass(frozen=True)
class Rebalance:
    """Many tailnets leave one shard within ``spread`` seconds of ``at``."""

    at: datetime
    source: str
    targets: tuple[str, ...]
    share: float
    spread: int


def _rebalances(clock: Clock) -> list[Rebalance]:
    return [
        # The new hot spare takes load off the busiest US East shard.
        Rebalance(clock.day(clock.days // 2, 14, 0), "use1", (NEW_SHARD,), 0.40, 25 * 60),
        # After two overload incidents on EU Central 2 (see OUTAGES).
        Rebalance(clock.day(24, 10, 15), "euc2", ("euc1", "euc3", "euc5"), 0.30, 15 * 60),
    ]


# --- Names ---------------------------------------------------------------------------

ORG_WORDS = (
    "acme", "globex", "initech", "umbrella", "hooli", "vandelay", "wonka", "tyrell", "cyberdyne",
    "soylent", "stark", "wayne", "oscorp", "aperture", "massive", "gringotts", "monarch",
    "dunder", "bluth", "pied", "sterling", "prestige", "atlas", "beacon", "cedar", "copper",
    "delta", "ember", "falcon", "granite", "harbor", "helix", "juniper", "kestrel", "lattice",
    "lumen", "maple", "meridian", "nimbus", "north", "onyx", "orbit", "pixel", "prairie",
    "quantum", "quartz", "raven", "river", "sierra", "summit", "tundra", "vertex", "willow",
    "zephyr", "aurora", "basalt", "cobalt", "dune", "evergreen", "fjord", "glacier", "horizon",
    "indigo", "jasper", "kiwi", "lagoon", "magnet", "nova", "oak", "pebble", "polar", "redwood",
    "saffron", "tidal", "ultra", "velvet", "wren", "yonder", "zenith", "alpine", "birch",
    "canyon", "drift", "echo", "flint", "grove", "hazel", "iron", "jade", "keystone", "lark",
    "mesa", "nectar", "opal", "pine", "quill", "rustic", "slate", "thistle", "umber", "vista",
    "wild", "yarrow", "bright", "clear", "swift", "bold", "silver",
)  # fmt: skip
ORG_SUFFIXES = (
    "labs", "systems", "corp", "tech", "cloud", "works", "data", "health", "bank", "logistics",
    "robotics", "studio", "games", "energy", "bio", "networks", "security", "analytics", "media",
    "foods", "motors", "capital", "partners", "devices", "software",
)  # fmt: skip
ORG_TLDS = (
    ("com", 55),
    ("io", 12),
    ("dev", 5),
    ("net", 5),
    ("co", 4),
    ("org", 4),
    ("ai", 4),
    ("cloud", 2),
    ("tech", 2),
    ("de", 3),
    ("co.uk", 2),
    ("com.au", 1),
    ("fr", 1),
)
FIRST_NAMES = (
    "jane", "john", "maria", "li", "wei", "ana", "carlos", "fatima", "ahmed", "olga", "ivan",
    "sara", "david", "emma", "noah", "liam", "mia", "lucas", "sofia", "mateo", "aisha", "omar",
    "yuki", "hiro", "chen", "priya", "arjun", "ravi", "kofi", "amara", "zoe", "leo", "nina",
    "felix", "hana", "jonas", "lena", "paul", "marta", "tomas", "eva", "kai", "rosa", "diego",
    "ines", "pedro", "lucia", "sam", "alex", "chris", "taylor", "jordan", "morgan", "casey",
    "riley", "quinn", "avery", "dana", "robin", "elena", "marco", "giulia", "anders", "freya",
    "lars", "ingrid", "sven", "astrid", "mei", "ren", "akira", "sakura",
)  # fmt: skip
LAST_NAMES = (
    "doe", "smith", "garcia", "kim", "nguyen", "patel", "mueller", "rossi", "silva", "tanaka",
    "ivanova", "cohen", "okafor", "jensen", "novak", "dubois", "martin", "lopez", "brown",
    "wilson", "khan", "ali", "singh", "chen", "wang", "sato", "suzuki", "schmidt", "weber",
    "fischer", "costa", "santos", "oliveira", "ferreira", "moreau", "bernard", "petit", "larsen",
    "berg", "nilsen", "lindqvist", "kowalski", "horvat", "popescu", "murphy", "kelly", "walsh",
    "reyes", "cruz", "ortiz", "morales", "haddad", "mensah", "adeyemi", "banda",
)  # fmt: skip
PERSONAL_DOMAINS = ("example.com", "example.net", "example.org")
PERSONAL_SHARE = 0.35


def _slugify(display: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", display.lower()).strip("-")


class NameMaker:
    """Unique (slug, display name) pairs that look like real tailnets.

    A name's base (letters only) is counted; repeats get a number inserted before
    the domain ("acme-labs2.com", "jane.doe2@example.net"). Bases have no digits,
    so the slugs are unique by construction and memory grows with the number of
    distinct bases, not with the number of tailnets.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen: dict[str, int] = {}
        self.tlds = [tld for tld, _ in ORG_TLDS]
        self.tld_weights = [weight for _, weight in ORG_TLDS]

    def reserve(self, display: str) -> tuple[str, str]:
        slug = _slugify(display)
        if slug in self.seen:
            raise ValueError(f"{display!r} is already taken")
        self.seen[slug] = 1
        return slug, display

    def make(self) -> tuple[str, str]:
        rng = self.rng
        if rng.random() < PERSONAL_SHARE:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            local = rng.choice((f"{first}.{last}", f"{first}{last}", first, f"{first[0]}.{last}"))
            name, sep, domain = local, "@", rng.choice(PERSONAL_DOMAINS)
        else:
            word = rng.choice(ORG_WORDS)
            shape = rng.random()
            if shape < 0.35:
                name = f"{word}-{rng.choice(ORG_SUFFIXES)}"
            elif shape < 0.7:
                name = f"{word}{rng.choice(ORG_SUFFIXES)}"
            else:
                name = word
            sep, domain = ".", rng.choices(self.tlds, self.tld_weights)[0]
        base = _slugify(f"{name}{sep}{domain}")
        count = self.seen.get(base, 0)
        self.seen[base] = count + 1
        if count:
            name = f"{name}{count + 1}"
        display = f"{name}{sep}{domain}"
        return _slugify(display), display


# --- The tailnets' placement history, planned in Python -------------------------------


@dataclass(frozen=True)
class Pinned:
    """A named tailnet with a known story, for demos (the first tailnets created)."""

    display: str
    shard: str
    note: str


PINNED = (
    Pinned("acme.com", "use3", "on US East 3 for the whole 24-minute repair"),
    Pinned("globex.com", "use3", "live-migrated off US East 3 six minutes into the repair"),
    Pinned("initech.com", "use2", "on a neighbouring shard: only slower during the repair"),
    Pinned("umbrella.io", "use4", "live-migrated off US East 4 during a 75-minute incident"),
    Pinned("jane@example.net", "euc2", "hit twice on EU Central 2, then rebalanced off it"),
)


@dataclass
class Plan:
    """Per tailnet index: when it was created, where it started, and its moves."""

    created: list[int]
    first_shard: list[int]
    moves: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.created)

    def history(self, i: int) -> list[tuple[int, int]]:
        """[(starts_at, shard index), ...]: consecutive placements of tailnet ``i``."""
        return [(self.created[i], self.first_shard[i]), *self.moves.get(i, ())]

    def last(self, i: int) -> tuple[int, int]:
        moves = self.moves.get(i)
        return moves[-1] if moves else (self.created[i], self.first_shard[i])

    @property
    def migrations(self) -> int:
        return sum(len(moves) for moves in self.moves.values())


@dataclass(frozen=True)
class ShardInfo:
    index: int
    slug: str
    region: int
    created: int
    weight: float


class Planner:
    def __init__(self, *, seed: int, clock: Clock, tailnets: int) -> None:
        self.seed = seed
        self.clock = clock
        self.n = tailnets
        rng = self._rng("fleet")
        self.shards = [
            ShardInfo(
                index=index,
                slug=slug,
                region=index // SHARDS_PER_REGION,
                created=_ts(clock.new_shard_at if slug == NEW_SHARD else clock.fleet_born),
                weight=0.7 + 0.6 * rng.random(),
            )
            for index, slug in enumerate(SHARD_SLUGS)
        ]
        self.index = {shard.slug: shard.index for shard in self.shards}

    def _rng(self, stream: str) -> random.Random:
        # One stream per concern, so changing one part of the story leaves the rest as is.
        return random.Random(f"{self.seed}:{stream}")  # noqa: S311 - demo data, not secrets

    def _weight(self, shard: ShardInfo, at: int) -> float:
        if shard.created >= at:
            return 0.0
        # A fresh shard takes a bigger share of new signups for a while.
        return shard.weight * (3.0 if shard.slug == NEW_SHARD else 1.0)

    def plan(self) -> Plan:
        clock = self.clock
        rng = self._rng("tailnets")
        now, start = _ts(clock.now), _ts(clock.window_start)
        first_signup = _ts(clock.fleet_born) + 30 * 86400
        older = start - first_signup
        created = []
        for _ in range(self.n - len(PINNED)):
            if rng.random() < NEW_DURING_WINDOW:
                created.append(rng.randint(start, now - 3600))
            else:  # squared: more signups recently, as a growing product has
                created.append(start - 1 - int(older * rng.random() ** 2))
        created.sort()
        # The pinned tailnets are the oldest customers, a day apart.
        pinned = [_ts(clock.fleet_born) + (k + 1) * 86400 for k in range(len(PINNED))]
        created = pinned + created

        region_weights = [r.weight for r in REGIONS]
        by_region = [[s for s in self.shards if s.region == r] for r in range(len(REGIONS))]
        first_shard = [self.index[p.shard] for p in PINNED]
        for at in created[len(PINNED) :]:
            shards = by_region[rng.choices(range(len(REGIONS)), region_weights)[0]]
            weights = [self._weight(s, at) for s in shards]
            first_shard.append(rng.choices(shards, weights)[0].index)

        plan = Plan(created=created, first_shard=first_shard)
        self._migrations(plan, rng)
        return plan

    def _migrations(self, plan: Plan, rng: random.Random) -> None:
        """Random live migrations and rebalancing events, replayed in time order so
        every move starts from where the tailnet really was at that moment."""
        now, start = _ts(self.clock.now), _ts(self.clock.window_start)
        rebalances = _rebalances(self.clock)
        # (at, tiebreak, tailnet index or -1 for a rebalancing, target shard or -1 for
        # "pick one then", shard it must still be on or -1)
        events: list[tuple[int, int, int, int, int]] = []
        seq = 0
        for i in range(len(PINNED), len(plan)):
            draw = rng.random()
            if draw < MOVE_ONCE:
                count = 1
            elif draw < MOVE_ONCE + MOVE_SEVERAL:
                count = rng.randint(2, 4)
            else:
                continue
            low, high = max(plan.created[i], start) + 60, now - 60
            if high <= low:
                continue
            for at in sorted(rng.randint(low, high) for _ in range(count)):
                events.append((at, seq, i, -1, -1))
                seq += 1
        for k, rebalance in enumerate(rebalances):
            events.append((_ts(rebalance.at), seq, -1, k, -1))
            seq += 1
        heapq.heapify(events)

        current = list(plan.first_shard)
        since = list(plan.created)
        protected = len(PINNED)  # pinned tailnets follow their own story
        while events:
            at, _, i, target, must_be_on = heapq.heappop(events)
            if i == -1:
                rebalance = rebalances[target]
                source = self.index[rebalance.source]
                targets = [self.index[slug] for slug in rebalance.targets]
                on_source = [
                    j for j in range(protected, len(plan)) if current[j] == source and since[j] < at
                ]
                chosen = sorted(rng.sample(on_source, round(len(on_source) * rebalance.share)))
                for j in chosen:
                    when = at + rng.randint(0, rebalance.spread)
                    heapq.heappush(events, (when, seq, j, rng.choice(targets), source))
                    seq += 1
                continue
            if at <= since[i] or (must_be_on != -1 and current[i] != must_be_on):
                continue  # it moved in the meantime
            if target == -1:
                target = self._random_target(current[i], at, rng)
                if target == -1:
                    continue
            plan.moves.setdefault(i, []).append((at, target))
            current[i], since[i] = target, at

        # jane@example.net leaves EU Central 2 in the second rebalancing.
        jane = next(k for k, p in enumerate(PINNED) if p.display == "jane@example.net")
        plan.moves[jane] = [(_ts(rebalances[1].at) + 180, self.index["euc3"])]

    def _random_target(self, shard: int, at: int, rng: random.Random) -> int:
        region = self.shards[shard].region
        same_region = rng.random() >= OTHER_REGION
        options = [
            s
            for s in self.shards
            if s.index != shard and s.created < at and (s.region == region) == same_region
        ]
        if not options:
            return -1
        return rng.choices(options, [s.weight for s in options])[0].index


# --- The incidents -------------------------------------------------------------------

WORKS = (
    "**What still works:** existing connections. Devices that are already connected can "
    "still reach each other, directly or through DERP relays.\n\n"
    "**What may fail:** logging in, approving devices, changing ACLs and adding or "
    "removing nodes, for tailnets on {shard}. Please don't restart Tailscale on affected "
    "devices until this is resolved: a restarted client needs the coordination service "
    "to rejoin the network."
)
WORKS_SLOW = (
    "**What still works:** everything. Existing connections are not affected, and "
    "logging in, approving devices and changing ACLs still succeed, only more slowly."
)
YOUR_TAILNET = (
    "Tailnets on other shards were not affected. Sign in and open your tailnet's page to "
    "see whether your tailnet was affected, and for exactly how long."
)


@dataclass(frozen=True)
class Outage:
    """One of the nine short partial outages. Offsets are minutes after the start."""

    days_ago: int
    at: tuple[int, int]
    shard: str
    levels: tuple[tuple[int, str], ...]  # (offset, level) changes, the first at 0
    detected: int
    identified: int
    fixed: int  # the shard is healthy again: windows close, status "monitoring"
    resolved: int
    source: str
    title: str
    investigating: str
    identified_text: str
    monitoring: str
    resolved_text: str
    admin_console: bool = False
    progress: tuple[int, str] | None = None
    # (offset, to shards, how many, a pinned tailnet to move first)
    migrate: tuple[int, tuple[str, ...], int, str | None] | None = None


OUTAGES = (
    Outage(
        days_ago=36,
        at=(9, 14),
        shard="usw2",
        levels=((0, "partial"),),
        detected=3,
        identified=11,
        fixed=18,
        resolved=31,
        source=IncidentSource.PROBE,
        title="Some logins and ACL changes failing on US West 2",
        investigating=(
            "Our probes show about a third of control-plane requests failing on "
            "coordination shard **US West 2** since {start} UTC. Tailnets on that shard may "
            "be unable to log in, approve new devices or change ACLs; retrying sometimes "
            "works."
        ),
        identified_text=(
            "A routine deploy to US West 2 at {start} UTC shipped a database connection "
            "pool much smaller than intended, so requests queue and time out under normal "
            "load. We're rolling the deploy back."
        ),
        monitoring=(
            "The rollback finished at {fixed} UTC and control-plane requests on US West 2 "
            "are succeeding again. We're monitoring."
        ),
        resolved_text=(
            "From {start} to {fixed} UTC ({window} minutes), some control-plane requests "
            "failed for tailnets on US West 2. Existing connections were not affected. The "
            "deploy pipeline now checks the connection pool size, so this configuration "
            "can't ship again."
        ),
    ),
    Outage(
        days_ago=33,
        at=(17, 42),
        shard="euc2",
        levels=((0, "degraded"), (6, "partial")),
        detected=9,
        identified=16,
        fixed=27,
        resolved=41,
        source=IncidentSource.REPORTS,
        admin_console=True,
        title="Slow and failing admin console actions for some tailnets in EU Central",
        investigating=(
            "Several customers have reported that the admin console is slow and that "
            "approving devices fails. The affected tailnets are on coordination shard "
            "**EU Central 2**, where control-plane requests have been slow since {start} UTC "
            "and some have been failing since {t6} UTC."
        ),
        identified_text=(
            "One very large tailnet on EU Central 2 is generating a burst of network map "
            "updates, and fanning them out saturates the shard's message bus. We're "
            "rate-limiting the burst and adding capacity to the shard."
        ),
        monitoring=(
            "Capacity was added at {fixed} UTC; latency and error rates on EU Central 2 are "
            "back to normal, and the admin console is responsive again. We're monitoring."
        ),
        resolved_text=(
            "Tailnets on EU Central 2 saw slow control-plane requests from {start} UTC and "
            "intermittent failures from {t6} to {fixed} UTC. Existing connections kept "
            "working throughout. We're changing how updates of very large tailnets are "
            "batched, so that one tailnet can't saturate a shard."
        ),
    ),
    Outage(
        days_ago=29,
        at=(3, 5),
        shard="apse3",
        levels=((0, "outage"),),
        detected=2,
        identified=7,
        fixed=12,
        resolved=22,
        source=IncidentSource.PROBE,
        title="Coordination shard AP Southeast 3 unavailable",
        investigating=(
            "Coordination shard **AP Southeast 3** stopped answering at {start} UTC. "
            "Tailnets on that shard can't log in, approve devices or change ACLs right now."
        ),
        identified_text=(
            "The shard's primary process crashed, and the standby didn't take over "
            "automatically because the failover watchdog didn't consider the primary dead "
            "yet. We're promoting the standby by hand."
        ),
        monitoring=(
            "The standby was promoted at {fixed} UTC and AP Southeast 3 is answering "
            "normally. We're monitoring."
        ),
        resolved_text=(
            "Tailnets on AP Southeast 3 couldn't use the control plane for {window} minutes "
            "(from {start} to {fixed} UTC). Existing connections kept working. We've tightened the "
            "failover watchdog so a crashed primary is replaced within seconds, and we're "
            "still investigating the crash itself."
        ),
    ),
    Outage(
        days_ago=26,
        at=(13, 27),
        shard="euc2",
        levels=((0, "partial"),),
        detected=3,
        identified=12,
        fixed=34,
        resolved=52,
        source=IncidentSource.PROBE,
        title="Some control-plane requests failing on EU Central 2",
        investigating=(
            "Our probes show some control-plane requests failing on coordination shard "
            "**EU Central 2** since {start} UTC."
        ),
        identified_text=(
            "EU Central 2 is overloaded by message-bus fan-out again, the same cause as the "
            "incident a week ago. We're pausing non-urgent background work on the shard to "
            "shed load."
        ),
        monitoring=(
            "Background work is paused and EU Central 2 has answered normally since {fixed} "
            "UTC. We're monitoring."
        ),
        resolved_text=(
            "From {start} to {fixed} UTC some control-plane requests failed for tailnets on "
            "EU Central 2; existing connections were not affected. Since this shard has now "
            "been overloaded twice, we'll live-migrate part of its tailnets to other EU "
            "Central shards over the next few days. Live migrations are seamless: devices "
            "stay connected while their tailnet moves."
        ),
    ),
    Outage(
        days_ago=21,
        at=(20, 51),
        shard="use4",
        levels=((0, "degraded"), (9, "partial"), (58, "degraded")),
        detected=4,
        identified=19,
        fixed=63,
        resolved=75,
        source=IncidentSource.PROBE,
        admin_console=True,
        title="Degraded coordination service for some tailnets in US East",
        investigating=(
            "Control-plane requests on coordination shard **US East 4** have been slow since "
            "{start} UTC. Tailnets on that shard may see slow logins and device approvals, "
            "and ACL changes may take longer than usual to reach devices."
        ),
        identified_text=(
            "Since {t9} UTC some requests on US East 4 are failing, not just slow. The "
            "storage volume behind the shard's log is responding slowly, so writes stall. "
            "We're failing over to a healthy volume; meanwhile we'll live-migrate some "
            "tailnets to other US East shards."
        ),
        progress=(
            23,
            "We've live-migrated some tailnets off US East 4 to healthy shards; for them "
            "the problem ended when they moved, at {t22} UTC. The storage failover for "
            "the rest is in progress.",
        ),
        migrate=(22, ("use5", "use2"), 3, "umbrella.io"),
        monitoring=(
            "US East 4 moved to a healthy volume at {t58} UTC: failures stopped at once, and "
            "latency was back to normal by {fixed} UTC. We're monitoring."
        ),
        resolved_text=(
            "Tailnets on US East 4 saw slow control-plane requests from {start} UTC and "
            "failing requests from {t9} to {t58} UTC (49 minutes); tailnets we migrated to "
            "other shards during the incident were affected only until they moved. Existing "
            "connections kept working. This took longer than it should have: we're adding "
            "automatic failover for slow storage, so it doesn't wait for a human."
        ),
    ),
    Outage(
        days_ago=17,
        at=(6, 33),
        shard="usw5",
        levels=((0, "partial"),),
        detected=2,
        identified=8,
        fixed=14,
        resolved=25,
        source=IncidentSource.PROBE,
        title="Logins failing for some tailnets in US West",
        investigating=(
            "Our probes show control-plane requests failing on coordination shard "
            "**US West 5** since {start} UTC. Some tailnets on that shard can't log in or "
            "approve devices."
        ),
        identified_text=(
            "An internal TLS certificate between US West 5 and one of its database proxies "
            "expired at {start} UTC, so connections through that proxy are refused. We're "
            "rotating the certificate."
        ),
        monitoring=(
            "The certificate was rotated at {fixed} UTC and requests are succeeding again. "
            "We're monitoring."
        ),
        resolved_text=(
            "From {start} to {fixed} UTC some control-plane requests failed for tailnets on "
            "US West 5; existing connections kept working. Certificates like this one now "
            "alert 14 days before they expire, and we've checked every shard for the same "
            "gap."
        ),
    ),
    Outage(
        days_ago=12,
        at=(15, 8),
        shard="use1",
        levels=((0, "degraded"),),
        detected=5,
        identified=13,
        fixed=21,
        resolved=38,
        source=IncidentSource.REPORTS,
        title="Slow logins and ACL changes for some tailnets in US East",
        investigating=(
            "We've had reports of slow logins and of ACL changes taking a long time to reach "
            "devices. Control-plane requests on coordination shard **US East 1** take "
            "several seconds instead of milliseconds. Nothing is failing, but it is slow."
        ),
        identified_text=(
            "Another workload on the same host is competing with US East 1 for CPU. We're "
            "moving the shard to a dedicated host; the move is live and won't disconnect "
            "anyone."
        ),
        monitoring=(
            "US East 1 has been on its dedicated host since {fixed} UTC and latency is back "
            "to normal. We're monitoring."
        ),
        resolved_text=(
            "From {start} to {fixed} UTC control-plane requests for tailnets on US East 1 "
            "were slow, but they succeeded. Existing connections were not affected. "
            "Coordination shards now only run on dedicated hosts."
        ),
    ),
    Outage(
        days_ago=7,
        at=(11, 46),
        shard="apse1",
        levels=((0, "partial"), (9, "outage"), (16, "partial")),
        detected=2,
        identified=6,
        fixed=22,
        resolved=35,
        source=IncidentSource.PROBE,
        title="Coordination outage for some tailnets in AP Southeast",
        investigating=(
            "Our probes show control-plane requests failing on coordination shard "
            "**AP Southeast 1** since {start} UTC. Some tailnets on that shard can't log in, "
            "approve devices or change ACLs."
        ),
        identified_text=(
            "A configuration change to the load balancer in front of AP Southeast 1 sends "
            "part of its traffic to an address that doesn't answer. We're reverting it."
        ),
        progress=(
            17,
            "The revert made things worse before it made them better: from {t9} to {t16} "
            "UTC AP Southeast 1 was unreachable. Since {t16} UTC most requests succeed "
            "again; the revert is still rolling out.",
        ),
        monitoring=(
            "The revert completed at {fixed} UTC and AP Southeast 1 is answering normally. "
            "We're monitoring."
        ),
        resolved_text=(
            "Tailnets on AP Southeast 1 saw failing control-plane requests from {start} to "
            "{fixed} UTC, and no control plane at all from {t9} to {t16} UTC. Existing "
            "connections kept working. Load balancer changes now roll out to one shard at a "
            "time, with an automatic rollback when probes fail."
        ),
    ),
    Outage(
        days_ago=3,
        at=(22, 19),
        shard="euc4",
        levels=((0, "partial"),),
        detected=3,
        identified=14,
        fixed=26,
        resolved=44,
        source=IncidentSource.PROBE,
        title="Some control-plane requests failing on EU Central 4",
        investigating=(
            "Our probes show some control-plane requests failing on coordination shard "
            "**EU Central 4** since {start} UTC."
        ),
        identified_text=(
            "A brief network interruption between two availability zones left the message "
            "bus of EU Central 4 without an elected leader. We're forcing a new election."
        ),
        monitoring=(
            "A new leader was elected at {fixed} UTC and requests are succeeding again. "
            "We're monitoring."
        ),
        resolved_text=(
            "From {start} to {fixed} UTC some control-plane requests failed for tailnets on "
            "EU Central 4; existing connections kept working. We're fixing the election "
            "timeout that kept the bus leaderless after the network had recovered."
        ),
    ),
)

COMPONENT_STATUS_FOR_LEVEL = {
    ImpactLevel.DEGRADED: ComponentStatus.DEGRADED_PERFORMANCE,
    ImpactLevel.PARTIAL: ComponentStatus.PARTIAL_OUTAGE,
    # One shard of six down is a partial outage of the region's coordination service.
    ImpactLevel.OUTAGE: ComponentStatus.PARTIAL_OUTAGE,
}


@dataclass
class Summary:
    service_migrations: int = 0
    pinned: list[tuple[str, str]] = field(default_factory=list)


class Seeder:
    """Writes the fleet, then tells the story through the services."""

    def __init__(self, *, seed: int, clock: Clock, tailnets: int, log: Callable[[str], None]):
        self.clock = clock
        self.n = tailnets
        self.log = log
        self.planner = Planner(seed=seed, clock=clock, tailnets=tailnets)
        self.rng = self.planner._rng("incidents")
        self.summary = Summary()
        self.components: dict[str, Component] = {}
        self.shards: dict[str, Shard] = {}
        self.tailnet_ids: list[int] = []
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
        with self._timed("wrote {} incidents and their affected tailnets", 2 + len(OUTAGES) + 1):
            self._incidents()

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
            name=GROUP_NAME, description=GROUP_DESCRIPTION, position=1, created_at=born
        )
        for position, region in enumerate(REGIONS, start=1):
            self.components[_coordination_slug(region.slug)] = Component.objects.create(
                slug=_coordination_slug(region.slug),
                name=f"Coordination service ({region.label})",
                description=(
                    f"The coordination shards in {region.label}: keys, network maps and ACL "
                    "changes for the tailnets placed there."
                ),
                group=group,
                kind=ComponentKind.COORDINATION,
                region=region.slug,
                position=position,
                created_at=born,
            )
        for slug, name, kind, position, description in STANDALONE_COMPONENTS:
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
                    component=self.components[_coordination_slug(region.slug)],
                    probe_url=PROBE_URL.format(slug=info.slug),
                    latency_threshold_ms=region.latency_threshold_ms,
                    created_at=_dt(info.created),
                )
            )
        for shard in Shard.objects.bulk_create(shards):
            self.shards[shard.slug] = shard
        if any(shard.pk is None for shard in self.shards.values()):
            self.shards = {s.slug: s for s in Shard.objects.filter(slug__in=SHARD_SLUGS)}

    def _tailnets(self, plan: Plan) -> None:
        names = NameMaker(self.planner._rng("names"))
        shard_pks = [self.shards[slug].pk for slug in SHARD_SLUGS]
        for first in range(0, len(plan), BATCH_SIZE):
            indexes = range(first, min(first + BATCH_SIZE, len(plan)))
            batch = []
            for i in indexes:
                if i < len(PINNED):
                    slug, display = names.reserve(PINNED[i].display)
                    self.summary.pinned.append((slug, PINNED[i].note))
                else:
                    slug, display = names.make()
                batch.append(
                    Tailnet(slug=slug, display_name=display, created_at=_dt(plan.created[i]))
                )
            created = Tailnet.objects.bulk_create(batch, batch_size=BATCH_SIZE)
            if any(t.pk is None for t in created):  # a backend that can't return ids
                ids = dict(
                    Tailnet.objects.filter(slug__in=[t.slug for t in batch]).values_list(
                        "slug", "pk"
                    )
                )
                self.tailnet_ids.extend(ids[t.slug] for t in batch)
            else:
                self.tailnet_ids.extend(t.pk for t in created)
            placements = []
            for i in indexes:
                history = plan.history(i)
                tailnet_id = self.tailnet_ids[i]
                for k, (starts, shard) in enumerate(history):
                    ends = history[k + 1][0] if k + 1 < len(history) else None
                    placements.append(
                        Placement(
                            tailnet_id=tailnet_id,
                            shard_id=shard_pks[shard],
                            starts_at=_dt(starts),
                            ends_at=None if ends is None else _dt(ends),
                        )
                    )
            Placement.objects.bulk_create(placements, batch_size=BATCH_SIZE)

    def _migrate_off(
        self,
        shard: str,
        at: datetime,
        targets: Sequence[str],
        count: int,
        first: int | None = None,
    ) -> list[Tailnet]:
        """Live-migrate ``count`` tailnets that are on ``shard`` at ``at`` (and never
        moved again afterwards) to ``targets``, through the service."""
        assert self.plan is not None
        plan, index, when = self.plan, self.planner.index, _ts(at)
        candidates = [
            i
            for i in range(len(PINNED), len(plan))
            if plan.last(i)[1] == index[shard] and plan.last(i)[0] < when
        ]
        chosen = sorted(self.rng.sample(candidates, min(count, len(candidates))))
        if first is not None:
            chosen = [first, *chosen]
        moved = []
        for k, i in enumerate(chosen):
            target = targets[k % len(targets)]
            tailnet = Tailnet.objects.get(pk=self.tailnet_ids[i])
            placement_migrate(tailnet=tailnet, to_shard=self.shards[target], at=at)
            plan.moves.setdefault(i, []).append((when, index[target]))
            moved.append(tailnet)
        self.summary.service_migrations += len(moved)
        return moved

    # -- incidents --------------------------------------------------------------------

    def _incidents(self) -> None:
        incidents = [self._derp(), self._repair()]
        incidents += [self._outage(spec) for spec in OUTAGES]
        incidents.append(self._upcoming())
        for incident in incidents:
            tailnet_impacts_recompute(incident_id=incident.pk)
        self._postmortem(incidents[1])

    def _repair(self) -> Incident:
        """The planned repair that took US East 3 offline for exactly 24 minutes."""
        r = self.clock.repair_at
        m = timedelta(minutes=1)
        coordination = self.components["coordination-us-east"]
        incident = incident_create(
            title="Urgent repair of coordination shard US East 3",
            kind=IncidentKind.MAINTENANCE,
            status="scheduled",
            impact=IncidentImpact.MAINTENANCE,
            scheduled_for=r,
            scheduled_until=r + 45 * m,
            detected_at=r - 40 * m,
            published=True,
            by=self.user,
            at=r - 12 * m,
            body=(
                "We've found an internal problem on coordination shard **US East 3** before it "
                "affected anyone, and we're going to repair it now rather than wait for it to "
                f"turn into an outage. Part of the repair needs the shard offline, starting at "
                f"{_hm(r)} UTC, for up to 30 minutes.\n\n"
                "**What still works:** existing connections, for everyone. Devices that are "
                "already connected keep reaching each other.\n\n"
                "**What may fail:** while the shard is offline, tailnets on US East 3 can't log "
                "in, approve devices, change ACLs or add and remove nodes. Tailnets on other US "
                "East shards may see slower control-plane requests while they take extra load."
                "\n\nWe're sorry for the short notice: the alternative was an unplanned outage "
                "later."
            ),
        )
        incident_post_update(
            incident=incident,
            status="in_progress",
            components={coordination: ComponentStatus.PARTIAL_OUTAGE},
            by=self.user,
            at=r,
            body=(
                f"US East 3 is offline for the repair as of {_hm(r)} UTC. Tailnets on it can't "
                "log in, approve devices or change ACLs until it's back; existing connections "
                "keep working. Please don't restart Tailscale on devices in those tailnets "
                "until the shard is back: a restarted client needs the coordination service "
                "to rejoin the network.\n\n"
                "US East 2, 4 and 5 are picking up extra load and may be slower than usual."
            ),
        )
        outage = shard_impact_add(
            incident=incident, shard=self.shards["use3"], level="outage", starts_at=r
        )
        slow = {
            "use2": (r + m, r + 29 * m),
            "use4": (r + m, r + 27 * m),
            "use5": (r + 2 * m, r + 29 * m),
        }
        windows = {
            slug: shard_impact_add(
                incident=incident, shard=self.shards[slug], level="degraded", starts_at=start
            )
            for slug, (start, _) in slow.items()
        }
        globex = next(k for k, p in enumerate(PINNED) if p.display == "globex.com")
        self._migrate_off("use3", r + 6 * m, ("use2", "use1"), 3, first=globex)
        self._migrate_off("use3", r + 11 * m, ("use1",), 3)
        incident_post_update(
            incident=incident,
            status="in_progress",
            by=self.user,
            at=r + 13 * m,
            body=(
                "To shorten the impact we've live-migrated some tailnets off US East 3 to "
                f"healthy shards; for them the outage ended when they moved, at {_hm(r + 6 * m)} "
                f"or {_hm(r + 11 * m)} UTC. Moving every tailnet would take longer than the "
                "repair itself, so the rest stay put. The repair is on track."
            ),
        )
        shard_impact_close(impact=outage, at=r + 24 * m)
        incident_post_update(
            incident=incident,
            status="verifying",
            components={coordination: ComponentStatus.DEGRADED_PERFORMANCE},
            by=self.user,
            at=r + 24 * m,
            body=(
                f"US East 3 is back online as of {_hm(r + 24 * m)} UTC, 24 minutes after it "
                "went offline. Logins, device approvals and ACL changes are succeeding again. "
                "Latency on US East 2, 4 and 5 is coming back down. We're verifying the repair."
            ),
        )
        for slug, (_, end) in sorted(slow.items(), key=lambda item: item[1][1]):
            shard_impact_close(impact=windows[slug], at=end)
        incident_post_update(
            incident=incident,
            status="completed",
            components={coordination: ComponentStatus.OPERATIONAL},
            by=self.user,
            at=r + 38 * m,
            body=(
                "The repair is complete and every US East shard is operating normally.\n\n"
                f"Tailnets on US East 3 couldn't use the control plane for 24 minutes "
                f"(from {_hm(r)} to {_hm(r + 24 * m)} UTC), except those we moved off during the "
                "repair, which were affected only until they moved. Tailnets on US East 2, 4 "
                "and 5 saw higher latency for up to 28 minutes. Existing connections kept "
                "working throughout. Sign in and open your tailnet's page to see whether your "
                "tailnet was affected, and for exactly how long.\n\n"
                "We'll publish a postmortem."
            ),
        )
        return incident

    def _postmortem(self, incident: Incident) -> None:
        """Written after the fact, with the measured blast radius."""
        r = self.clock.repair_at
        m = timedelta(minutes=1)
        rows = TailnetImpact.objects.filter(incident=incident)
        outage_seconds: dict[int, int] = {}
        for tailnet_id, seconds in rows.filter(level="outage").values_list("tailnet_id", "seconds"):
            outage_seconds[tailnet_id] = outage_seconds.get(tailnet_id, 0) + seconds
        full = sum(1 for s in outage_seconds.values() if s >= 24 * 60)
        moved = len(outage_seconds) - full
        incident.refresh_from_db()
        # The figures the incident's own page shows.
        radius = incident_blast_radius(incident=incident, as_of=self.clock.now)
        slowed = radius.affected - len(outage_seconds)
        postmortem = f"""### Summary

On {_date(r)} our monitoring found a fault building up inside coordination shard US East 3,
before any customer noticed it. Repairing it required taking the shard offline, which we
did at {_hm(r)} UTC after a short-notice maintenance announcement. The shard was offline for
exactly 24 minutes.

### Impact

- **{full:,}** tailnets on US East 3 couldn't log in, approve devices, change ACLs or add
  and remove nodes for the full 24 minutes, from {_hm(r)} to {_hm(r + 24 * m)} UTC.
- **{moved:,}** tailnets were live-migrated to other shards during the repair: they lost
  the control plane for 6 or 11 minutes instead of 24, then at most saw higher latency on
  their new shard.
- **{slowed:,}** tailnets on US East 2, 4 and 5 saw control-plane requests take several
  seconds for up to 28 minutes, while those shards absorbed extra load. Nothing failed for
  them.
- In all, {radius.affected:,} of {radius.total:,} tailnets ({radius.percent_text}) were
  affected in some way. Existing connections kept working for every tailnet, direct or
  relayed.

### Timeline (UTC)

| Time | What happened |
|---|---|
| {_hm(r - 40 * m)} | Monitoring flags a slowly growing backlog in US East 3's message bus. |
| {_hm(r - 12 * m)} | We announce the repair; the shard must go offline to fix the backlog safely. |
| {_hm(r)} | US East 3 goes offline. US East 2, 4 and 5 slow down as clients retry. |
| {_hm(r + 6 * m)} | First live migrations off US East 3 complete. |
| {_hm(r + 11 * m)} | Second batch of live migrations completes. |
| {_hm(r + 24 * m)} | US East 3 is back online; control-plane requests succeed again. |
| {_hm(r + 29 * m)} | Latency on the neighbouring shards is back to normal. |
| {_hm(r + 38 * m)} | Repair verified and the maintenance completed. |

### What went well

- We caught the fault before it caused an outage, so the downtime was planned, short and
  limited to one shard.
- Data-plane traffic was never interrupted.
- Live migration took some tailnets out of the blast radius while the repair ran.

### What went wrong

- 24 minutes is a long time to be unable to approve a device or change an ACL.
- Twelve minutes is not advance notice. Customers who needed the control plane at that
  moment had no way to plan around it.
- Devices that restarted during the window fell off their tailnet until the shard returned,
  because clients don't keep their network map across restarts.

### What we're changing

1. **Network map caching across restarts**, so a restarted client rejoins from its cache
   while its coordination shard is unavailable.
2. **Hot spares per region**, so a shard can be repaired by failing over instead of going
   offline.
3. **Faster bulk live migration**, so a shard can be emptied before it is taken offline
   rather than while it is down.
4. **Neighbour isolation**, so that retries from one shard's tailnets don't slow down the
   shards next to it.
"""
        incident_edit(
            incident=incident,
            changes={"postmortem": postmortem},
            by=self.user,
            at=r + timedelta(days=3, hours=2),
        )

    def _outage(self, spec: Outage) -> Incident:
        """One short partial outage, written as it unfolded."""
        start = self.clock.day(spec.days_ago, *spec.at)
        shard = self.shards[spec.shard]

        def t(minutes: int) -> datetime:
            return start + timedelta(minutes=minutes)

        def level_at(minutes: int) -> str:
            return [level for offset, level in spec.levels if offset <= minutes][-1]

        coordination = self.components[_coordination_slug(shard.region)]
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

        times = {"start": _hm(start), "fixed": _hm(t(spec.fixed)), "window": spec.fixed}
        for offset, _ in spec.levels:
            times[f"t{offset}"] = _hm(t(offset))
        if spec.migrate:
            times[f"t{spec.migrate[0]}"] = _hm(t(spec.migrate[0]))
        levels = {level for _, level in spec.levels}
        works = WORKS_SLOW if levels == {"degraded"} else WORKS.format(shard=shard.public_name)
        impact = IncidentImpact.MAJOR if "outage" in levels else IncidentImpact.MINOR

        # What detection knew when the incident was opened, backdated to the first
        # failing sample; later level changes follow as they happen.
        known = [(o, lvl) for o, lvl in spec.levels if o <= spec.detected]
        windows = [
            WindowSpec(shard, level, t(offset), t(known[k + 1][0]) if k + 1 < len(known) else None)
            for k, (offset, level) in enumerate(known)
        ]
        by_probe = spec.source == IncidentSource.PROBE
        incident = incident_create(
            title=spec.title,
            body=spec.investigating.format(**times) + "\n\n" + works + "\n\nWe're investigating.",
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
            incident_publish(incident=incident, by=self.user, at=t(spec.detected + 2))
        window = incident.shard_impacts.get(ends_at__isnull=True)

        # (minute, order within the minute, action), run in time order.
        steps: list[tuple[int, int, Callable[[], object]]] = []

        def change(level: str, minutes: int) -> Callable[[], None]:
            def run() -> None:
                nonlocal window  # the open window is the one the last change opened
                window = shard_impact_change_level(impact=window, level=level, at=t(minutes))

            return run

        def close(minutes: int) -> Callable[[], None]:
            def run() -> None:
                shard_impact_close(impact=window, at=t(minutes))

            return run

        def update(
            status: str, body: str, minutes: int, comps: dict[Component, str]
        ) -> Callable[[], object]:
            return partial(
                incident_post_update,
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
        resolved = (
            "This incident has been resolved. "
            + spec.resolved_text.format(**times)
            + "\n\n"
            + YOUR_TAILNET
        )
        steps.append((spec.resolved, 2, update("resolved", resolved, spec.resolved, {})))
        for _, _, step in sorted(steps, key=lambda item: item[:2]):
            step()
        return incident

    def _derp(self) -> Incident:
        """A DERP relay incident: no shard impact, the control plane untouched."""
        start = self.clock.derp_at
        m = timedelta(minutes=1)
        derp = self.components["derp-relays"]
        incident = incident_create(
            title="Slower relayed connections in Frankfurt",
            started_at=start,
            detected_at=start + 6 * m,
            components={derp: ComponentStatus.DEGRADED_PERFORMANCE},
            published=True,
            source=IncidentSource.REPORTS,
            by=self.user,
            at=start + 6 * m,
            body=(
                "Some connections relayed through our DERP servers in Frankfurt are slower "
                "than usual, and some see packet loss. Direct connections between devices "
                "aren't affected.\n\n"
                "**What still works:** the coordination service. Logging in, approving "
                "devices and changing ACLs work normally, for every tailnet.\n\n"
                "We're investigating."
            ),
        )
        incident_post_update(
            incident=incident,
            status="identified",
            by=self.user,
            at=start + 19 * m,
            body=(
                "A network problem at our hosting provider is dropping packets on the path to "
                "one of our Frankfurt relays. We're taking that relay out of rotation; clients "
                "switch to the next-nearest relay on their own within seconds."
            ),
        )
        incident_post_update(
            incident=incident,
            status="monitoring",
            components={derp: ComponentStatus.OPERATIONAL},
            by=self.user,
            at=start + 33 * m,
            body=(
                "The Frankfurt relay is out of rotation and relayed connections in Europe are "
                "back to normal latency. We're monitoring."
            ),
        )
        incident_post_update(
            incident=incident,
            status="resolved",
            by=self.user,
            at=start + 52 * m,
            body=(
                "This incident has been resolved. From "
                f"{_hm(start)} to {_hm(start + 33 * m)} UTC some connections relayed through "
                "Frankfurt were slower or lost packets. Direct connections and the "
                "coordination service were not affected. The relay will return to rotation "
                "once the provider confirms the fix."
            ),
        )
        return incident

    def _upcoming(self) -> Incident:
        """A maintenance that hasn't started: no impact, and no component status yet
        (an operator-set status on an open incident would override the live one)."""
        at = self.clock.upcoming_at
        until = at + timedelta(hours=2)
        return incident_create(
            title="Scheduled maintenance: hardware upgrade of EU Central 3",
            kind=IncidentKind.MAINTENANCE,
            status="scheduled",
            impact=IncidentImpact.MAINTENANCE,
            scheduled_for=at,
            scheduled_until=until,
            published=True,
            by=self.user,
            at=self.clock.day(2, 10, 0),
            body=(
                f"On {_date(at)} from {_hm(at)} to {_hm(until)} UTC we'll upgrade the hardware "
                "behind coordination shard **EU Central 3**. Before the upgrade, every tailnet "
                "on the shard will be live-migrated to other EU Central shards, and moved back "
                "afterwards.\n\n"
                "We don't expect any downtime: devices stay connected during a live "
                "migration, and logging in, approving devices and changing ACLs keep working. "
                "While a tailnet moves, its control-plane requests may take a few seconds "
                "longer.\n\n"
                "If anything goes differently, we'll post updates here."
            ),
        )


# --- The command ---------------------------------------------------------------------


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return timezone.now().replace(second=0, microsecond=0)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--now must be an ISO 8601 datetime, not {value!r}.") from None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(second=0, microsecond=0)


def demo_fleet_present() -> str | None:
    """What shows the demo fleet is already there, or None."""
    if ComponentGroup.objects.filter(name=GROUP_NAME).exists():
        return f"component group {GROUP_NAME!r}"
    shard = Shard.objects.filter(slug__in=SHARD_SLUGS).values_list("slug", flat=True).first()
    if shard:
        return f"shard {shard!r}"
    component = (
        Component.objects.filter(slug__in=COMPONENT_SLUGS).values_list("slug", flat=True).first()
    )
    if component:
        return f"component {component!r}"
    return None


class Command(BaseCommand):
    help = (
        "Seed a realistic demo fleet (components, shards, tailnets with placement history, "
        "incidents) deterministically; does nothing if the demo fleet already exists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tailnets", type=int, default=5000, help="How many tailnets (default 5000)."
        )
        parser.add_argument(
            "--days", type=int, default=90, help="Days of placement history (default 90)."
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="Random seed: same seed, same fleet."
        )
        parser.add_argument(
            "--now",
            help="Pretend it is this time (ISO 8601; UTC if no offset). Default: this minute.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        tailnets, days, seed = options["tailnets"], options["days"], options["seed"]
        if tailnets < MIN_TAILNETS:
            raise CommandError(f"--tailnets must be at least {MIN_TAILNETS}, not {tailnets}.")
        if not MIN_DAYS <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between {MIN_DAYS} and {MAX_DAYS}, not {days}.")
        now = _parse_now(options["now"])
        verbose = options["verbosity"] >= 2

        def log(message: str) -> None:
            if verbose:
                self.stdout.write(message)

        found = demo_fleet_present()
        if found is not None:
            with transaction.atomic():
                created_user = self._operator() is not None
            self.stdout.write(
                f"Demo fleet already present ({found} exists); nothing to seed."
                + (" Created the operator login." if created_user else "")
            )
            self._print_login()
            return

        clock = Clock(now=now, days=days)
        self.stdout.write(
            f"Seeding the demo fleet: {tailnets:,} tailnets, {days} days up to "
            f"{now:%Y-%m-%d %H:%M} UTC, seed {seed}..."
        )
        seeder = Seeder(seed=seed, clock=clock, tailnets=tailnets, log=log)
        with transaction.atomic():
            user = self._operator() or get_user_model().objects.get(username=OPERATOR_USERNAME)
            seeder.build(user)
        elapsed = time.monotonic() - started
        self._print_summary(seeder, elapsed)
        self._print_login()

    def _operator(self) -> Any:
        """The operator superuser: created if missing (returns it), else None."""
        users = get_user_model()
        if users.objects.filter(username=OPERATOR_USERNAME).exists():
            return None
        return users.objects.create_superuser(
            username=OPERATOR_USERNAME,
            email="operator@example.com",
            password=OPERATOR_PASSWORD,
        )

    def _print_login(self) -> None:
        self.stdout.write(
            f"Operator console: {ADMIN_URL}  user {OPERATOR_USERNAME!r}, "
            f"password {OPERATOR_PASSWORD!r}"
        )

    def _print_summary(self, seeder: Seeder, elapsed: float) -> None:
        placements = Placement.objects.count()
        migrations = Placement.objects.filter(ends_at__isnull=False).count()
        incidents = Incident.objects.filter(published=True)
        lines = [
            f"Seeded in {elapsed:.1f}s:",
            f"  {Shard.objects.count():,} shards in {len(REGIONS)} regions, "
            f"{Component.objects.count():,} components",
            f"  {Tailnet.objects.count():,} tailnets, {placements:,} placements, "
            f"{migrations:,} live migrations ({seeder.summary.service_migrations} of them "
            "mid-incident)",
            f"  {Incident.objects.count():,} incidents ({incidents.filter(kind='incident').count()}"
            f" incidents, {incidents.filter(kind='maintenance').count()} maintenances), "
            f"{ShardImpact.objects.count():,} shard impact windows, "
            f"{TailnetImpact.objects.count():,} tailnet impact rows",
            "  Tailnets with a story: "
            + ", ".join(f"{slug} ({note})" for slug, note in seeder.summary.pinned),
        ]
        self.stdout.write("\n".join(lines))
