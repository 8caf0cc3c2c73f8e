"""Spike detection on plain values: no ORM, no clock.

A spike is at least ``threshold`` reports from at least ``threshold`` distinct
tailnets *and* ``threshold`` distinct sources (client addresses; IPv6 by /64 network)
within any ``window`` (closed at both ends): one client naming many tailnets is no
spike, nor are many clients naming one. Since neither count can outnumber the reports,
that is the same as ``threshold`` distinct tailnets and sources in a window.
"""

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Point:
    at: datetime
    tailnet: Hashable
    source: Hashable  # who sent it: a keyed hash of the client's address or network
    key: Hashable = None  # the report's id, carried through to the answer


@dataclass(frozen=True)
class Spike:
    starts_at: datetime
    ends_at: datetime
    points: tuple[Point, ...]

    @property
    def tailnets(self) -> int:
        return len({point.tailnet for point in self.points})

    @property
    def sources(self) -> int:
        return len({point.source for point in self.points})


def find_spike(points: Sequence[Point], *, threshold: int, window: timedelta) -> Spike | None:
    """The earliest window that holds ``threshold`` distinct tailnets and as many
    distinct sources, grown to every point within ``window`` of its first point; None
    if there is none."""
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    ordered = sorted(points, key=lambda p: p.at)
    tailnets: Counter[Hashable] = Counter()
    sources: Counter[Hashable] = Counter()
    first = 0
    for last, point in enumerate(ordered):
        tailnets[point.tailnet] += 1
        sources[point.source] += 1
        while point.at - ordered[first].at > window:
            _drop(tailnets, ordered[first].tailnet)
            _drop(sources, ordered[first].source)
            first += 1
        if len(tailnets) >= threshold and len(sources) >= threshold:
            start = ordered[first].at
            end = last
            while end + 1 < len(ordered) and ordered[end + 1].at - start <= window:
                end += 1
            members = tuple(ordered[first : end + 1])
            return Spike(starts_at=start, ends_at=members[-1].at, points=members)
    return None


def _drop(counts: Counter[Hashable], value: Hashable) -> None:
    counts[value] -= 1
    if counts[value] == 0:
        del counts[value]
