"""A tailnet's placement history with the events behind it, for the operator console:
each placement with the events that began and ended it, as the derivation applied
them (``derive.tailnet_derive``)."""

from dataclasses import dataclass
from datetime import datetime

from incidents.models import Placement, Tailnet

from .derive import tailnet_derive
from .events import Event
from .models import FleetEvent

# How many of a tailnet's events its admin page lists (the latest first); the event
# log, filtered by the tailnet, has them all.
EVENTS_SHOWN = 100


@dataclass(frozen=True)
class PlacementHistoryRow:
    shard: str
    starts_at: datetime
    ends_at: datetime | None  # None: still there
    began: FleetEvent | None  # None: no event says so (a row from before the feed)
    ended: FleetEvent | None


@dataclass(frozen=True)
class TailnetLog:
    placements: list[PlacementHistoryRow]  # newest first
    events: list[FleetEvent]  # the latest EVENTS_SHOWN, newest first
    event_count: int


def tailnet_log(*, tailnet: Tailnet) -> TailnetLog:
    """A tailnet's placements, newest first, each with the events that began and
    ended it (as the derivation applied them), and its events. Two queries."""
    events = list(FleetEvent.objects.filter(tailnet=tailnet.slug).order_by("at", "id"))
    state = tailnet_derive(
        tailnet.slug,
        (Event(e.id, e.type, e.at, e.tailnet, e.shard, e.payload or {}) for e in events),
    )
    causes = dict(zip(state.placements, state.causes, strict=True)) if state else {}
    by_id = {event.id: event for event in events}
    rows = []
    for shard, starts_at, ends_at in (
        Placement.objects.filter(tailnet=tailnet)
        .order_by("-starts_at")
        .values_list("shard__slug", "starts_at", "ends_at")
    ):
        began, ended = causes.get((shard, starts_at, ends_at), (None, None))
        rows.append(
            PlacementHistoryRow(
                shard=shard,
                starts_at=starts_at,
                ends_at=ends_at,
                began=by_id.get(began) if began else None,
                ended=by_id.get(ended) if ended else None,
            )
        )
    return TailnetLog(placements=rows, events=events[::-1][:EVENTS_SHOWN], event_count=len(events))
