"""What a tailnet's (or a shard's) events say about it, as plain functions on plain
values: the one rule the feed writes placements by.

Events apply in (``at``, ``id``) order, each id once, so the answer depends only on
the set of events, never on the order or the number of times they arrived.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .events import (
    PLACING_TYPES,
    SHARD_ADDED,
    SHARD_FIELDS,
    SHARD_RETIRED,
    TAILNET_CREATED,
    TAILNET_DELETED,
    TAILNET_RENAMED,
    Event,
)

Span = tuple[str, datetime, datetime | None]  # (shard, starts_at, ends_at or None: still there)
Interval = tuple[datetime, datetime | None]


@dataclass(frozen=True)
class TailnetState:
    display_name: str
    created_at: datetime
    deleted_at: datetime | None
    placements: tuple[Span, ...]
    # Per placement, the ids of the events that began and ended it (None: still there).
    causes: tuple[tuple[str, str | None], ...] = ()


def in_order(events: Iterable[Event]) -> list[Event]:
    """Each id once, in the order events apply."""
    unique = {event.id: event for event in events}
    return sorted(unique.values(), key=lambda event: event.order)


def tailnet_derive(slug: str, events: Iterable[Event]) -> TailnetState | None:
    """A tailnet's placements, name and life from all its events (None without any).

    ``created``/``migrated`` put it on a shard from ``at`` (bringing it back if it was
    deleted: a gap in its history); a migration to the shard it is on changes
    nothing; ``deleted`` ends its placement; ``renamed`` (and ``created``) name it.
    Its first event, whatever it is, creates it. ``causes`` says which events began
    and ended each placement."""
    ordered = in_order(events)
    if not ordered:
        return None
    name = slug
    deleted_at: datetime | None = None
    spans: list[Span] = []
    causes: list[tuple[str, str | None]] = []
    current: tuple[str, datetime, str] | None = None  # the shard it is on, since when, why

    def leave(event: Event) -> None:
        assert current is not None
        if event.at > current[1]:  # an empty stay leaves no placement
            spans.append((current[0], current[1], event.at))
            causes.append((current[2], event.id))

    for event in ordered:
        if event.type in (TAILNET_CREATED, TAILNET_RENAMED):
            name = event.payload["display_name"]
        if event.type in PLACING_TYPES:
            deleted_at = None
            if current is not None and current[0] == event.shard:
                continue
            if current is not None:
                leave(event)
            current = (event.shard, event.at, event.id)
            if spans and spans[-1][0] == event.shard and spans[-1][2] == event.at:
                # Back to where it was an instant ago (an empty stay elsewhere between).
                current = (event.shard, spans.pop()[1], causes.pop()[0])
        elif event.type == TAILNET_DELETED:
            if current is not None:
                leave(event)
                current = None
            if deleted_at is None:
                deleted_at = event.at
    if current is not None:
        spans.append((current[0], current[1], None))
        causes.append((current[2], None))
    return TailnetState(
        display_name=name,
        created_at=ordered[0].at,
        deleted_at=deleted_at,
        placements=tuple(spans),
        causes=tuple(causes),
    )


# Which fields of a shard an event sets: the region's default component comes with a
# new region unless the event names one.
DEFAULT_COMPONENT = None


@dataclass(frozen=True)
class ShardState:
    fields: Mapping[str, str | None]  # only those some event set; component None: the default
    active: bool | None  # None: no event added or retired it
    retired_at: datetime | None
    added_at: datetime | None  # its first shard.added


def shard_derive(events: Iterable[Event]) -> ShardState:
    """A shard's fields from all its events: each field as the last event that set it
    says; ``added`` makes it active, ``retired`` inactive (history before stays valid)."""
    fields: dict[str, str | None] = {}
    active: bool | None = None
    retired_at = added_at = None
    for event in in_order(events):
        if event.type == SHARD_RETIRED:
            active, retired_at = False, retired_at or event.at
            continue
        if event.type == SHARD_ADDED:
            active, retired_at = True, None
            added_at = added_at or event.at
        given: dict[str, str | None] = {
            name: event.payload[name] for name in SHARD_FIELDS if name in event.payload
        }
        if "region" in given and "component" not in given:
            given["component"] = DEFAULT_COMPONENT
        fields.update(given)
    return ShardState(fields=fields, active=active, retired_at=retired_at, added_at=added_at)


def shard_retired_at(events: Iterable[Event], *, at: datetime) -> datetime | None:
    """When the shard was retired, if it was retired at ``at`` (it can be added again)."""
    return shard_derive(event for event in events if event.at <= at).retired_at


def changed_intervals(old: Iterable[Span], new: Iterable[Span]) -> dict[str, list[Interval]]:
    """Per shard, the times the tailnet was on it by one placement history and not
    by the other: exactly where who-was-affected can have changed."""
    before: dict[str, list[Interval]] = {}
    after: dict[str, list[Interval]] = {}
    for spans, by_shard in ((old, before), (new, after)):
        for shard, start, end in spans:
            by_shard.setdefault(shard, []).append((start, end))
    changed: dict[str, list[Interval]] = {}
    for shard in sorted(before.keys() | after.keys()):
        a, b = before.get(shard, []), after.get(shard, [])
        if sorted(a, key=_key) != sorted(b, key=_key):
            changed[shard] = _difference(a, b)
    return changed


def _difference(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Where exactly one of the two sets of intervals covers time (a sweep over edges)."""
    deltas: dict[datetime, list[int]] = {}
    for side, spans in ((0, a), (1, b)):
        for start, end in spans:
            deltas.setdefault(start, [0, 0])[side] += 1
            if end is not None:
                deltas.setdefault(end, [0, 0])[side] -= 1
    covered = [0, 0]
    since: datetime | None = None
    result: list[Interval] = []
    for at in sorted(deltas):
        covered[0] += deltas[at][0]
        covered[1] += deltas[at][1]
        differ = (covered[0] > 0) != (covered[1] > 0)
        if differ and since is None:
            since = at
        elif not differ and since is not None:
            result.append((since, at))
            since = None
    if since is not None:
        result.append((since, None))
    return result


def _key(interval: Interval) -> tuple[datetime, bool, datetime]:
    start, end = interval
    return (start, end is None, end or start)


def merged(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of intervals as sorted, disjoint ones (touching ones joined)."""
    result: list[Interval] = []
    for start, end in sorted(intervals, key=_key):
        if result:
            last_start, last_end = result[-1]
            if last_end is None:
                continue
            if start <= last_end:
                result[-1] = (last_start, None if end is None else max(end, last_end))
                continue
        result.append((start, end))
    return result
