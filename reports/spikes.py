"""Spike detection on plain values: no ORM, no clock.

A spike is at least ``threshold`` reports from at least ``threshold`` distinct
tailnets within any ``window`` (closed at both ends). Since distinct tailnets can't
outnumber reports, that is the same as ``threshold`` distinct tailnets in a window.
"""

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Point:
    at: datetime
    tailnet: Hashable
    key: Hashable = None  # the report's id, carried through to the answer


@dataclass(frozen=True)
class Spike:
    starts_at: datetime
    ends_at: datetime
    points: tuple[Point, ...]

    @property
    def tailnets(self) -> int:
        return len({point.tailnet for point in self.points})


def find_spike(points: Sequence[Point], *, threshold: int, window: timedelta) -> Spike | None:
    """The earliest window that holds ``threshold`` distinct tailnets, grown to
    every point within ``window`` of its first point; None if there is none."""
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    ordered = sorted(points, key=lambda p: p.at)
    counts: Counter[Hashable] = Counter()
    first = 0
    for last, point in enumerate(ordered):
        counts[point.tailnet] += 1
        while point.at - ordered[first].at > window:
            gone = ordered[first].tailnet
            counts[gone] -= 1
            if counts[gone] == 0:
                del counts[gone]
            first += 1
        if len(counts) >= threshold:
            start = ordered[first].at
            end = last
            while end + 1 < len(ordered) and ordered[end + 1].at - start <= window:
                end += 1
            members = tuple(ordered[first : end + 1])
            return Spike(starts_at=start, ends_at=members[-1].at, points=members)
    return None
