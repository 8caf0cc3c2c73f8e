"""Plain words for an incident: the questions every customer asks when something
breaks, answered from what the incident affected rather than a fixed sentence.

- Is it an outage, or is it just slow?
- Does it affect everyone, or just some people (and how many)?
- If the coordination service is down, are my connections broken? What kept working?

Pure functions on plain values (component kinds, impact levels, a phase, a blast
radius): no ORM, no clock. ``views.py`` collects the values from an incident.

Tense follows the phase: "upcoming" speaks of the future ("will be blocked"),
"ongoing" of the present ("are blocked"), "past" of the past ("were blocked").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import levels
from .impact import BlastRadius

PHASES = ("upcoming", "ongoing", "past")
KINDS = ("coordination", "admin_console", "login", "derp", "api", "other")

# A phrase in the three tenses: (upcoming, ongoing, past).
_Tensed = tuple[str, str, str]


def _tense(phrase: _Tensed, phase: str) -> str:
    return phrase[PHASES.index(phase)]


@dataclass(frozen=True)
class Affected:
    """One public component an incident touched, at the worst level it reached
    (None: named on the incident, but without impact, e.g. "under maintenance")."""

    kind: str
    level: str | None
    name: str = ""
    # Where, when one component was hit at several levels in different places
    # (e.g. one shard down, its neighbours only slow): the shards' public names.
    where: tuple[str, ...] = ()


# What keeps working, by key. A hit on some component suppresses the keys it
# contradicts (a coordination outage blocks logins, so "logging in" is not kept).
_KEPT = {
    "connections": "existing connections",
    "direct": "direct connections between devices",
    "devices": "devices already logged in",
    "control": "logging in, approving devices and changing ACLs",
}


@dataclass(frozen=True)
class _Effect:
    hit: _Tensed
    kept: tuple[str, ...]
    suppresses: tuple[str, ...] = ()
    # The same, said again of another place ("on US East 2, they were only slow").
    again: _Tensed | None = None


_EFFECTS: dict[tuple[str, str], _Effect] = {
    # The coordination service is a message bus per shard: when it is down, no
    # control-plane message passes for the tailnets on it, but every node keeps its
    # cached network map, so the data plane carries on.
    ("coordination", "outage"): _Effect(
        (
            "logging in, approving devices and changing ACLs will be blocked",
            "logging in, approving devices and changing ACLs are blocked",
            "logging in, approving devices and changing ACLs were blocked",
        ),
        kept=("connections",),
        suppresses=("control",),
        again=("they will be blocked", "they are blocked", "they were blocked"),
    ),
    ("coordination", "partial"): _Effect(
        (
            "some attempts to log in, approve devices or change ACLs will fail",
            "some attempts to log in, approve devices or change ACLs fail",
            "some attempts to log in, approve devices or change ACLs failed",
        ),
        kept=("connections",),
        suppresses=("control",),
        again=("some of them will fail", "some of them fail", "some of them failed"),
    ),
    ("coordination", "degraded"): _Effect(
        (
            "logging in, approving devices and changing ACLs will be slow, not blocked",
            "logging in, approving devices and changing ACLs are slow, not blocked",
            "logging in, approving devices and changing ACLs were slow, not blocked",
        ),
        kept=("connections",),
        suppresses=("control",),
        again=("they will only be slow", "they are only slow", "they were only slow"),
    ),
    ("admin_console", "outage"): _Effect(
        (
            "the admin console will be down: managing devices, users and ACLs there "
            "will be blocked",
            "the admin console is down: managing devices, users and ACLs there is blocked",
            "the admin console was down: managing devices, users and ACLs there was blocked",
        ),
        kept=("connections", "devices"),
    ),
    ("admin_console", "partial"): _Effect(
        (
            "some admin console actions will fail",
            "some admin console actions fail",
            "some admin console actions failed",
        ),
        kept=("connections", "devices"),
    ),
    ("admin_console", "degraded"): _Effect(
        (
            "the admin console will be slow, not blocked",
            "the admin console is slow, not blocked",
            "the admin console was slow, not blocked",
        ),
        kept=("connections", "devices"),
    ),
    ("api", "outage"): _Effect(
        (
            "API requests (automation of devices, keys and ACLs) will fail",
            "API requests (automation of devices, keys and ACLs) fail",
            "API requests (automation of devices, keys and ACLs) failed",
        ),
        kept=("connections", "devices"),
    ),
    ("api", "partial"): _Effect(
        (
            "some API requests will fail",
            "some API requests fail",
            "some API requests failed",
        ),
        kept=("connections", "devices"),
    ),
    ("api", "degraded"): _Effect(
        (
            "API requests will be slow, not blocked",
            "API requests are slow, not blocked",
            "API requests were slow, not blocked",
        ),
        kept=("connections", "devices"),
    ),
    ("login", "outage"): _Effect(
        (
            "new logins will be blocked: signing in and adding devices will fail",
            "new logins are blocked: signing in and adding devices fail",
            "new logins were blocked: signing in and adding devices failed",
        ),
        kept=("connections", "devices"),
        suppresses=("control",),
    ),
    ("login", "partial"): _Effect(
        (
            "some new logins will fail",
            "some new logins fail",
            "some new logins failed",
        ),
        kept=("connections", "devices"),
        suppresses=("control",),
    ),
    ("login", "degraded"): _Effect(
        (
            "new logins will be slow, not blocked",
            "new logins are slow, not blocked",
            "new logins were slow, not blocked",
        ),
        kept=("connections", "devices"),
        suppresses=("control",),
    ),
    # DERP relays carry the traffic of devices that can't connect directly: when
    # they are down, those connections DO break. The control plane is not involved.
    ("derp", "outage"): _Effect(
        (
            "relayed connections will break: devices that can't connect directly will lose contact",
            "relayed connections break: devices that can't connect directly lose contact",
            "relayed connections broke: devices that couldn't connect directly lost contact",
        ),
        kept=("direct", "control"),
        suppresses=("connections",),
    ),
    ("derp", "partial"): _Effect(
        (
            "some relayed connections will break or lose packets",
            "some relayed connections break or lose packets",
            "some relayed connections broke or lost packets",
        ),
        kept=("direct", "control"),
        suppresses=("connections",),
    ),
    ("derp", "degraded"): _Effect(
        (
            "relayed connections will be slower than usual, not broken",
            "relayed connections are slower than usual, not broken",
            "relayed connections were slower than usual, not broken",
        ),
        kept=("direct", "control"),
    ),
}


def _other_effect(name: str, level: str) -> _Effect:
    subject = name or "this component"
    phrases: dict[str, _Tensed] = {
        "outage": (f"{subject} will be down", f"{subject} is down", f"{subject} was down"),
        "partial": (
            f"{subject} will partly fail",
            f"{subject} partly fails",
            f"{subject} partly failed",
        ),
        "degraded": (
            f"{subject} will be slow, not blocked",
            f"{subject} is slow, not blocked",
            f"{subject} was slow, not blocked",
        ),
    }
    # Nothing is known about what an "other" component's failure leaves working,
    # so it makes no claim.
    return _Effect(phrases[level], kept=())


def _effect(item: Affected) -> _Effect | None:
    if item.level is None:
        return None
    levels.check_level(item.level)
    effect = _EFFECTS.get((item.kind, item.level))
    return effect if effect is not None else _other_effect(item.name, item.level)


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _kept_verb(phase: str) -> str:
    return _tense(("will keep working", "keep working", "kept working"), phase)


@dataclass(frozen=True)
class Words:
    """What the page says about an incident, in plain words."""

    severity: str  # "outage" | "partial" | "degraded" | "none"
    headline: str  # "Outage", "Partial outage", "Slow, not down", "No impact", ...
    sentence: str  # "Existing connections kept working; logging in ... were blocked."
    who: str  # "3 tailnets, 0.02% of tailnets, on US East 3" / "Any tailnet using ..." / ""


def headline(*, severity: str, incident_kind: str, phase: str) -> str:
    """Is it an outage, or is it just slow?"""
    planned = incident_kind == "maintenance"
    if severity == "outage":
        return "Planned outage" if planned else "Outage"
    if severity == "partial":
        return "Planned partial outage" if planned else "Partial outage: some requests fail"
    if severity == "degraded":
        return "Slow, not down"
    if planned:
        return "No impact expected" if phase != "past" else "No impact"
    return "Impact not yet known" if phase == "ongoing" else "No impact recorded"


def _ordered(affected: Sequence[Affected]) -> list[Affected]:
    """Components in the order given, each component's worst level first."""
    first: dict[tuple[str, str], int] = {}
    for index, item in enumerate(affected):
        first.setdefault((item.kind, item.name), index)
    return sorted(affected, key=lambda i: (first[(i.kind, i.name)], -levels.rank(i.level)))


def what_happened(*, affected: Sequence[Affected], incident_kind: str, phase: str) -> str:
    """One sentence: what kept working, then what did not (each component's own way)."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; expected one of {PHASES}")
    effects = [e for e in (_effect(item) for item in affected) if e is not None]
    if not effects:
        if incident_kind == "maintenance":
            return _tense(
                (
                    "Nothing is expected to be affected.",
                    "Nothing is affected.",
                    "Nothing was affected.",
                ),
                phase,
            )
        return _tense(
            (
                "Nothing is expected to be affected.",
                "We're still finding out what is affected.",
                "No customer impact was recorded.",
            ),
            phase,
        )
    suppressed = {key for effect in effects for key in effect.suppresses}
    kept: list[str] = []
    for effect in effects:
        for key in effect.kept:
            if key not in suppressed and key not in kept:
                kept.append(key)
    if "connections" in kept and "direct" in kept:
        kept.remove("direct")  # all existing connections include the direct ones
    hits: list[str] = []
    placed: set[str] = set()  # kinds already described for one place
    for item in _ordered(affected):
        said = _effect(item)
        if said is None:
            continue
        hit = _tense(said.hit, phase)
        if item.where:
            if item.kind in placed and said.again is not None:
                hit = _tense(said.again, phase)
            hit = f"on {_join(list(item.where))}, {hit}"
            placed.add(item.kind)
        if hit not in hits:
            hits.append(hit)
    parts = []
    if kept:
        parts.append(f"{_join([_KEPT[key] for key in kept])} {_kept_verb(phase)}")
    parts.extend(hits)
    sentence = "; ".join(parts)
    return sentence[0].upper() + sentence[1:] + "."


def who(
    *,
    blast_radius: BlastRadius | None,
    places: Sequence[str] = (),
    shared: Sequence[str] = (),
) -> str:
    """How many customers: the measured blast radius of shard impact, else the
    shared components everyone uses; empty when nobody is affected."""
    where = f"on {_join(list(places))}" if places else ""
    if blast_radius is not None:
        if blast_radius.affected == 0 and where:
            # The affected tailnets are computed just after a change is saved.
            return f"The tailnets {where} (still being counted)"
        text = str(blast_radius) + (f", {where}" if where else "")
        degraded = blast_radius.by_level.get("degraded", 0)
        hard = blast_radius.affected - degraded
        if degraded and hard:
            text += f" ({hard:,} with failures, {degraded:,} only slowed)"
        return text
    if shared:
        return f"Any tailnet using {_join(list(shared))} (not measured per tailnet)"
    return ""


def describe(
    *,
    affected: Sequence[Affected],
    incident_kind: str,
    phase: str,
    blast_radius: BlastRadius | None = None,
    places: Sequence[str] = (),
) -> Words:
    """Everything the page says in plain words about one incident.

    ``blast_radius`` is given when the incident has shard impact windows (it is
    then measured per tailnet); ``places`` are the public names of those shards.
    """
    for item in affected:
        if item.level is not None:
            levels.check_level(item.level)
    severity = levels.severity(levels.worst(item.level for item in affected))
    shared = [item.name for item in affected if item.level is not None and item.name]
    return Words(
        severity=severity,
        headline=headline(severity=severity, incident_kind=incident_kind, phase=phase),
        sentence=what_happened(affected=affected, incident_kind=incident_kind, phase=phase),
        who=(
            who(blast_radius=blast_radius, places=places)
            if blast_radius is not None
            else who(blast_radius=None, shared=shared)
        ),
    )
