"""The demo fleet and the benchmark fleet, planned as plain values.

Pure: no ORM, no clock (the caller says what "now" is), seeded generators only. A plan
says which tailnets exist, when each was created and which shard it was on when: a
*history* ``[(starts_at, shard), ...]`` in UNIX seconds, consecutive, the last one still
open (``placements`` turns it into rows). The writers are elsewhere: ``demo.seed`` with
the ORM (``manage.py seed_demo``), ``bench/data.py`` with COPY.

Two shapes of fleet:
- the demo fleet (``Planner``): 24 named shards in four regions, tailnets with real
  looking names, a few pinned tailnets with a story (``demo.story``), random live
  migrations and two rebalancings;
- the benchmark fleet (``BenchFleet``, ``bench_incidents_plan``): N numbered shards over
  five regions, numbered tailnets with Poisson(4) migrations each, and designated
  tailnets steered into the historic incidents.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

HOUR = 3600
DAY = 86400


def placements(history: Sequence[tuple[int, int]]) -> Iterator[tuple[int, int, int | None]]:
    """(shard, starts_at, ends_at) of each placement in ``history``; the last is open."""
    for k, (starts, shard) in enumerate(history):
        yield shard, starts, history[k + 1][0] if k + 1 < len(history) else None


# === The demo fleet ==================================================================


FLEET_AGE = timedelta(days=3 * 365)  # the shards (and the first tailnets) are this old
NEW_DURING_WINDOW = 0.12  # share of tailnets created during the window
MOVE_ONCE = 0.03  # share of tailnets live-migrated once during the window
MOVE_SEVERAL = 0.015  # ... and 2 to 4 times
OTHER_REGION = 0.12  # share of migrations that change region


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
# Where a demo shard's probes measure: the simulator (probes/simulator.py), wherever
# PROBE_SIMULATOR_URL says it listens.
PROBE_PATH = "/s/{slug}/key?v=88"


# Where the demo's probes measure from: the vantage points of ``manage.py seed_probe_regions``.
PROBE_REGIONS = {
    "nyc": "New York",
    "sfo": "San Francisco",
    "ams": "Amsterdam",
    "sin": "Singapore",
}


def coordination_slug(region: str) -> str:
    """The slug of a region's coordination component."""
    return f"coordination-{region}"


COORDINATION_SLUGS = [coordination_slug(r.slug) for r in REGIONS]


# --- Clock ---------------------------------------------------------------------------


def as_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def as_seconds(value: datetime) -> int:
    return int(value.timestamp())


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
        rng = self.rng("fleet")
        self.shards = [
            ShardInfo(
                index=index,
                slug=slug,
                region=index // SHARDS_PER_REGION,
                created=as_seconds(clock.new_shard_at if slug == NEW_SHARD else clock.fleet_born),
                weight=0.7 + 0.6 * rng.random(),
            )
            for index, slug in enumerate(SHARD_SLUGS)
        ]
        self.index = {shard.slug: shard.index for shard in self.shards}

    def rng(self, stream: str) -> random.Random:
        # One stream per concern, so changing one part of the story leaves the rest as is.
        return random.Random(f"{self.seed}:{stream}")  # noqa: S311 - demo data, not secrets

    def names(self) -> Iterator[tuple[str, str]]:
        """(slug, display name) of each tailnet in plan order, the pinned ones first."""
        names = NameMaker(self.rng("names"))
        for pinned in PINNED:
            yield names.reserve(pinned.display)
        for _ in range(self.n - len(PINNED)):
            yield names.make()

    def _weight(self, shard: ShardInfo, at: int) -> float:
        if shard.created >= at:
            return 0.0
        # A fresh shard takes a bigger share of new signups for a while.
        return shard.weight * (3.0 if shard.slug == NEW_SHARD else 1.0)

    def plan(self) -> Plan:
        clock = self.clock
        rng = self.rng("tailnets")
        now, start = as_seconds(clock.now), as_seconds(clock.window_start)
        first_signup = as_seconds(clock.fleet_born) + 30 * DAY
        older = start - first_signup
        created = []
        for _ in range(self.n - len(PINNED)):
            if rng.random() < NEW_DURING_WINDOW:
                created.append(rng.randint(start, now - 3600))
            else:  # squared: more signups recently, as a growing product has
                created.append(start - 1 - int(older * rng.random() ** 2))
        created.sort()
        # The pinned tailnets are the oldest customers, a day apart.
        pinned = [as_seconds(clock.fleet_born) + (k + 1) * DAY for k in range(len(PINNED))]
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
        now, start = as_seconds(self.clock.now), as_seconds(self.clock.window_start)
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
            events.append((as_seconds(rebalance.at), seq, -1, k, -1))
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
        plan.moves[jane] = [(as_seconds(rebalances[1].at) + 180, self.index["euc3"])]

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


# === The benchmark fleet =============================================================

BENCH_REGIONS = ["us-east", "us-west", "eu-west", "eu-central", "ap-southeast"]
DESIGNATED = 10  # tailnets with exactly DESIGNATED_MIGRATIONS migrations in the window
DESIGNATED_MIGRATIONS = 20
DESIGNATED_TARGETS = 14  # incidents each designated tailnet is steered into
MEAN_MIGRATIONS = 4.0  # Poisson mean per ordinary tailnet: ~5 placements each
SAME_REGION = 0.85  # share of migrations that stay in the tailnet's region
CREATED_IN_WINDOW = 0.15  # tailnets created during the window; the rest before it
CHUNK = 50_000  # tailnets per seeded generator (bench/data.py: per COPY transaction)


@dataclass
class PlannedIncident:
    start: int
    end: int
    region: str
    kind: str
    level: str
    published: bool
    # (shard_id, level, starts_at, ends_at), per shard consecutive and non-overlapping
    windows: list[tuple[int, str, int, int]] = field(default_factory=list)

    def span(self, shard_id: int) -> tuple[int, int]:
        """When ``shard_id`` was hit at all (its windows are consecutive)."""
        mine = [(a, b) for s, _, a, b in self.windows if s == shard_id]
        return min(a for a, _ in mine), max(b for _, b in mine)

    @property
    def shard_ids(self) -> list[int]:
        return sorted({s for s, *_ in self.windows})


def incidents_plan(
    rng: random.Random, count: int, by_region: dict[str, list[int]], start: int, end: int
) -> list[PlannedIncident]:
    """Regional incidents over [start, end): mostly short, on one to five shards."""
    planned = []
    for _ in range(count):
        bucket = rng.random()
        if bucket < 0.5:
            duration = rng.randrange(5 * 60, 30 * 60)
        elif bucket < 0.85:
            duration = rng.randrange(30 * 60, 2 * HOUR)
        else:
            duration = rng.randrange(2 * HOUR, 6 * HOUR)
        begins = rng.randrange(start + 6 * HOUR, end - DAY - duration)
        region = rng.choice(BENCH_REGIONS)
        width = rng.choices([1, 2, 3, 4, 5], weights=[35, 25, 20, 10, 10])[0]
        shards = rng.sample(by_region[region], min(width, len(by_region[region])))
        level = rng.choices(["outage", "partial", "degraded"], weights=[4, 3, 3])[0]
        kind = "maintenance" if rng.random() < 0.1 else "incident"
        incident = PlannedIncident(
            start=begins,
            end=begins + duration,
            region=region,
            kind=kind,
            level=level,
            published=rng.random() < 0.9,
        )
        # A quarter start degraded and get worse: two consecutive windows per shard.
        worsens = level != "degraded" and duration >= 10 * 60 and rng.random() < 0.25
        for shard in shards:
            a = begins + rng.randrange(0, 61)
            b = begins + duration
            if worsens:
                m = a + int((b - a) * rng.uniform(0.2, 0.6))
                incident.windows.append((shard, "degraded", a, m))
                incident.windows.append((shard, level, m, b))
            else:
                incident.windows.append((shard, level, a, b))
        planned.append(incident)
    planned.sort(key=lambda i: i.start)
    return planned


def designated_plan(
    rng: random.Random,
    incidents: list[PlannedIncident],
    shard_ids: list[int],
    window_start: int,
    window_end: int,
) -> list[tuple[int, int]]:
    """Exactly DESIGNATED_MIGRATIONS migrations, as [(at, to_shard)]: onto a hit shard
    shortly before each of ~14 incidents, off again mid-incident about half the time
    (to a healthy shard, or to another shard the same incident hits), and the rest at
    random in between. Returns [(-1, first shard), (at, to_shard) ... 20 of them]."""
    margin = 3 * HOUR
    candidates = [
        i
        for i, inc in enumerate(incidents)
        if inc.start - margin > window_start + HOUR and inc.end + margin < window_end - HOUR
    ]
    rng.shuffle(candidates)
    for wanted in range(DESIGNATED_TARGETS, 0, -1):
        chosen: list[int] = []
        for i in candidates:
            lo, hi = incidents[i].start - margin, incidents[i].end + margin
            if all(
                hi <= incidents[c].start - margin or incidents[c].end + margin <= lo for c in chosen
            ):
                chosen.append(i)
                if len(chosen) == wanted:
                    break
        if not chosen:
            break
        chosen.sort(key=lambda i: incidents[i].start)
        plan = _designated_events(rng, [incidents[i] for i in chosen], shard_ids, window_start)
        if plan is not None and len(plan) == DESIGNATED_MIGRATIONS + 1:
            return plan
    raise ValueError("Could not plan a designated tailnet: too few incidents in the window.")


def _designated_events(
    rng: random.Random, targets: list[PlannedIncident], shard_ids: list[int], window_start: int
) -> list[tuple[int, int]] | None:
    # The shard hit by each target, avoiding the previous target's shard where possible.
    target_shards: list[int] = []
    for inc in targets:
        options = inc.shard_ids
        previous = target_shards[-1] if target_shards else None
        preferred = [s for s in options if s != previous]
        target_shards.append(rng.choice(preferred or options))
    spans = [inc.span(s) for inc, s in zip(targets, target_shards, strict=True)]
    arrivals = [a - rng.randrange(5 * 60, HOUR) for a, _ in spans]
    # Gap g lies before target g; gap len(targets) after the last one.
    forced = [
        g
        for g in range(1, len(targets))
        if target_shards[g] == target_shards[g - 1]  # must leave before coming back
    ]
    mids = [rng.random() < 0.5 for _ in targets]
    while len(targets) + len(forced) + sum(mids) > DESIGNATED_MIGRATIONS and any(mids):
        mids[mids.index(True)] = False
    fillers = DESIGNATED_MIGRATIONS - len(targets) - len(forced) - sum(mids)
    if fillers < 0:
        return None
    gaps = [*forced, *(rng.randrange(len(targets) + 1) for _ in range(fillers))]
    events: list[tuple[int, str, int]] = []  # (at, what, target index)
    for g in gaps:
        lo = window_start + HOUR if g == 0 else spans[g - 1][1] + 60
        hi = arrivals[g] - 60 if g < len(targets) else spans[-1][1] + 2 * HOUR
        events.append((rng.randrange(lo, hi), "filler", g))
    for j, ((a, b), arrival) in enumerate(zip(spans, arrivals, strict=True)):
        events.append((arrival, "target", j))
        if mids[j]:
            events.append((a + int((b - a) * rng.uniform(0.3, 0.7)), "mid", j))
    events.sort()
    if len({at for at, _, _ in events}) != len(events):
        return None
    next_target: list[int | None] = [None] * len(events)
    upcoming: int | None = None
    for k in range(len(events) - 1, -1, -1):
        next_target[k] = upcoming
        if events[k][1] == "target":
            upcoming = target_shards[events[k][2]]
    first_target = target_shards[0] if targets else None
    current = rng.choice([s for s in shard_ids if s != first_target])
    plan = [(-1, current)]
    for k, (at, what, j) in enumerate(events):
        avoid = {current, next_target[k]}
        if what == "target":
            to = target_shards[j]
            if to == current:
                return None
        elif what == "mid":
            inc = targets[j]
            others = [
                s for s in inc.shard_ids if s not in avoid and inc.span(s)[0] <= at < inc.span(s)[1]
            ]
            if others and rng.random() < 0.5:
                to = rng.choice(others)
            else:
                to = rng.choice([s for s in shard_ids if s not in avoid | set(inc.shard_ids)])
        else:
            to = rng.choice([s for s in shard_ids if s not in avoid])
        plan.append((at, to))
        current = to
    return plan


# --- Tailnets and their placements -----------------------------------------------------


def poisson_table(mean: float, upto: int = 16) -> list[float]:
    cumulative, total = [], 0.0
    for k in range(upto):
        total += math.exp(-mean) * mean**k / math.factorial(k)
        cumulative.append(total)
    return cumulative


def bench_shards(count: int) -> list[tuple[str, str, str]]:
    """(slug, region, public name) of ``count`` shards, dealt round-robin over the regions."""
    regions = BENCH_REGIONS
    return [
        (
            f"{regions[n % len(regions)]}-{n // len(regions) + 1:03d}",
            regions[n % len(regions)],
            f"{regions[n % len(regions)]} shard {n // len(regions) + 1}",
        )
        for n in range(count)
    ]


def bench_incidents_plan(
    *,
    seed: int,
    tailnets: int,
    days: int,
    shard_ids: list[int],
    by_region: dict[str, list[int]],
    window_start: int,
    window_end: int,
) -> tuple[list[PlannedIncident], dict[int, list[tuple[int, int]]]]:
    """The historic incidents, and the designated tailnets (id -> ``designated_plan``)."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data, not secrets
    planned = incidents_plan(rng, max(10, days * 2 // 3), by_region, window_start, window_end)
    count = min(DESIGNATED, max(1, tailnets // 100))
    designated_ids = [(j + 1) * tailnets // (count + 1) for j in range(count)]
    designated = {
        tid: designated_plan(rng, planned, shard_ids, window_start, window_end)
        for tid in designated_ids
    }
    return planned, designated


@dataclass
class BenchFleet:
    """Tailnets 1..``tailnets`` and their histories, CHUNK tailnets per seeded generator,
    so a chunk can be planned (and written) without the others, in any order."""

    tailnets: int
    shard_ids: list[int]
    region_of: dict[int, str]
    by_region: dict[str, list[int]]
    designated: dict[int, list[tuple[int, int]]]
    window_start: int
    window_end: int
    seed: int
    migrations: list[float] = field(default_factory=lambda: poisson_table(MEAN_MIGRATIONS))

    @property
    def chunks(self) -> range:
        """The first tailnet id of each chunk."""
        return range(1, self.tailnets + 1, CHUNK)

    def chunk(self, first: int) -> tuple[range, list[int], Iterator[list[tuple[int, int]]]]:
        """The chunk's tailnet ids, when each was created and, lazily in id order, each
        one's history."""
        rng = random.Random(f"{self.seed}/{first}")  # noqa: S311 - benchmark data
        ids = range(first, min(first + CHUNK, self.tailnets + 1))
        created = [self._created(rng, tid) for tid in ids]
        histories = (
            self._history(rng, tid, since) for tid, since in zip(ids, created, strict=True)
        )
        return ids, created, histories

    def _created(self, rng: random.Random, tid: int) -> int:
        if tid in self.designated:
            return self.window_start - rng.randrange(30 * DAY, 400 * DAY)
        if rng.random() < CREATED_IN_WINDOW:
            return rng.randrange(self.window_start, self.window_end - DAY)
        return rng.randrange(self.window_start - 3 * 365 * DAY, self.window_start)

    def _history(self, rng: random.Random, tid: int, since: int) -> list[tuple[int, int]]:
        plan = self.designated.get(tid)
        if plan is not None:
            return [(since, plan[0][1]), *plan[1:]]
        shard_ids = self.shard_ids
        shard = shard_ids[rng.randrange(len(shard_ids))]
        history = [(since, shard)]
        lo = max(since, self.window_start) + 1
        count = bisect.bisect(self.migrations, rng.random())
        for at in sorted({rng.randrange(lo, self.window_end) for _ in range(count)}):
            if rng.random() < SAME_REGION:
                peers = self.by_region[self.region_of[shard]]
                to = peers[rng.randrange(len(peers) - 1)]
                to = peers[-1] if to == shard else to
            else:
                to = shard_ids[rng.randrange(len(shard_ids) - 1)]
                to = shard_ids[-1] if to == shard else to
            history.append((at, to))
            shard = to
        return history
