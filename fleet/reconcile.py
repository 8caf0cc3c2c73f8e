"""Reconcile: the coordination service's whole current map of tailnets (NDJSON, one
``{"tailnet", "shard", "display_name"}`` a line) turned into the events that make what
we believe at ``as_of`` equal to it: tailnets new to us created, missing ones deleted,
moved ones migrated, renamed ones renamed, all at ``as_of``, through the feed's one
writer (``services.fleet_events_ingest``, source ``reconcile``).

Millions of lines in constant memory: the lines are checked as they stream and staged
in a temporary table (COPY on PostgreSQL) — nothing of the map is held in Python —
then compared with what we believe in one set-based query into a second temporary
table, whose (usually few) differences are applied in chunks of ``EVENTS`` events,
each its own short transaction, so on SQLite no other write waits long. A map with a
bad line is refused whole before anything is written.

Event ids come from ``as_of``, the tailnet and the target
(``reconcile:<as_of>:<tailnet>:<shard>``), so a retry after an interruption stores
only what is missing, a repeated reconcile stores nothing, and a corrected map adds
events for the corrected lines only.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypedDict

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from incidents.models import Placement, Shard, Tailnet

from .derive import shard_retired_at
from .events import (
    CHECKS,
    ID_MAX,
    MAX_CLOCK_SKEW,
    TAILNET_CREATED,
    TAILNET_DELETED,
    TAILNET_MIGRATED,
    TAILNET_RENAMED,
)
from .models import FleetEventSource
from .queries import believed_map_sql
from .services import Counts, fleet_events_ingest, shard_history

STAGE = 5000  # lines staged per statement
EVENTS = 1000  # events per ingest transaction
ERRORS_SHOWN = 20
FIELDS = ("tailnet", "shard", "display_name")
MAP = "fleet_reconcile_map"
DIFF = "fleet_reconcile_diff"


class ReconcileCounts(TypedDict):
    lines: int
    unchanged: int
    created: int
    migrated: int
    renamed: int
    deleted: int
    accepted: int
    duplicates: int
    # Still on another shard at as_of: an earlier reconcile at the same as_of wins the
    # tie (events at one instant apply in id order). Reconcile with a later as_of.
    elsewhere: int
    elsewhere_tailnets: list[str]


class MapInvalid(ValidationError):
    """The map has bad lines (``errors``: ``(line, message)``, the first
    ``ERRORS_SHOWN``; ``count``: all of them). Nothing was written."""

    def __init__(self, errors: list[tuple[int, str]], count: int) -> None:
        super().__init__(f"{count} bad line(s) in the map; nothing was reconciled.")
        self.errors = errors
        self.count = count


def as_of_text(as_of: datetime) -> str:
    return as_of.astimezone(UTC).isoformat().replace("+00:00", "Z")


def reconcile_event_id(as_of: datetime, tailnet: str, target: str) -> str:
    """``reconcile:<as_of>:<tailnet>:<target>``; a target is a shard slug, ``~deleted``
    or ``~name:<digest>`` (``~`` is in no slug). Hashed in the rare case it is too long."""
    event_id = f"reconcile:{as_of_text(as_of)}:{tailnet}:{target}"
    if len(event_id) <= ID_MAX:
        return event_id
    digest = hashlib.sha256(f"{tailnet}:{target}".encode()).hexdigest()
    return f"reconcile:{as_of_text(as_of)}:{digest}"


def fleet_reconcile(
    *,
    lines: Iterable[bytes | str],
    as_of: datetime,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReconcileCounts:
    """Make what we believe at ``as_of`` equal to the map in ``lines``. Raises
    ``MapInvalid`` (nothing written) for bad lines, ``ValidationError`` for a bad
    ``as_of``; ``progress`` is called with the number of lines staged so far."""
    now = now or timezone.now()
    if timezone.is_naive(as_of):
        raise ValidationError("as_of needs a time zone.")
    if as_of > now + MAX_CLOCK_SKEW:
        raise ValidationError("as_of is more than 5 minutes in the future.")
    with _staging():
        count, errors, error_count = _stage(lines, progress=progress)
        if count == 0 and not error_count:
            # Surely a producer's mistake, and it would delete every tailnet.
            raise MapInvalid([(0, "The map is empty: nothing was reconciled.")], 1)
        errors, error_count = _check_map(errors, error_count, as_of=as_of)
        if error_count:
            raise MapInvalid(errors, error_count)
        changes = _diff(as_of)
        counts, stuck, stuck_count = _apply(as_of=as_of, now=now)
    changed = sum(changes[kind] for kind in ("created", "migrated", "renamed"))
    return {
        "lines": count,
        "unchanged": count - changed + changes["both"],
        "created": changes["created"],
        "migrated": changes["migrated"],
        "renamed": changes["renamed"],
        "deleted": changes["deleted"],
        **counts,
        "elsewhere": stuck_count,
        "elsewhere_tailnets": stuck,
    }


# --- Staging ----------------------------------------------------------------------------


@contextmanager
def _staging() -> Iterator[None]:
    """The two temporary tables, for this connection only, dropped afterwards."""
    with connection.cursor() as cursor:
        for table in (MAP, DIFF):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {MAP} (line integer NOT NULL, slug varchar(100) NOT NULL, "
            "shard varchar(64) NOT NULL, display_name varchar(200))"
        )
        # kind: created (new to us at as_of), moved (shard and maybe name), renamed, deleted.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {DIFF} (slug varchar(100) NOT NULL, "
            "kind varchar(10) NOT NULL, shard varchar(64), display_name varchar(200), "
            "renamed boolean NOT NULL)"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for table in (MAP, DIFF):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")


def _parse(number: int, raw: bytes | str) -> tuple[tuple[Any, ...] | None, str | None]:
    """One line as a row to stage, or why it is not one (None, None: a blank line)."""
    if not raw.strip():
        return None, None
    try:
        item = _DECODER.decode(raw.decode() if isinstance(raw, bytes) else raw)
    except RecursionError:
        return None, "Not JSON (nested too deep)."
    except ValueError as error:
        return None, f"Not JSON ({error})."
    if not isinstance(item, dict):
        return None, 'Each line is a JSON object: {"tailnet", "shard", "display_name"}.'
    problems = [
        f"{name}: Unknown field; a line has {', '.join(FIELDS)}."
        for name in item
        if name not in FIELDS
    ]
    for name in FIELDS:
        if name not in item:
            if name != "display_name":
                problems.append(f"{name}: This field is required.")
        elif (why := CHECKS[name](item[name])) is not None:
            problems.append(f"{name}: {why}")
    if problems:
        return None, " ".join(problems)
    return (number, item["tailnet"], item["shard"], item.get("display_name")), None


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


# One decoder for every line (json.loads with an option builds a new one each call).
_DECODER = json.JSONDecoder(parse_constant=_refuse)


def _stage(
    lines: Iterable[bytes | str], *, progress: Callable[[int], None] | None
) -> tuple[int, list[tuple[int, str]], int]:
    """Check and stage every line; returns the number of map lines and the errors."""
    errors: list[tuple[int, str]] = []
    error_count = count = 0
    chunk: list[tuple[Any, ...]] = []
    for number, raw in enumerate(lines, start=1):
        row, problem = _parse(number, raw)
        if problem is not None:
            error_count += 1
            if len(errors) < ERRORS_SHOWN:
                errors.append((number, problem))
        elif row is not None:
            count += 1
            if not error_count:  # once the map is refused, only its errors matter
                chunk.append(row)
                if len(chunk) >= STAGE:
                    _insert(chunk)
                    chunk = []
                    if progress is not None:
                        progress(count)
    if chunk and not error_count:
        _insert(chunk)
    if progress is not None:
        progress(count)
    return count, errors, error_count


def _insert(rows: list[tuple[Any, ...]]) -> None:
    columns = "(line, slug, shard, display_name)"
    # A short transaction per chunk: on SQLite it holds the write lock for milliseconds.
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {MAP} {columns} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(
                f"INSERT INTO {MAP} {columns} VALUES (%s, %s, %s, %s)",  # noqa: S608
                rows,
            )


def _check_map(
    errors: list[tuple[int, str]], error_count: int, *, as_of: datetime
) -> tuple[list[tuple[int, str]], int]:
    """Every tailnet once; every shard known and not retired at ``as_of``."""
    if error_count:
        return errors, error_count
    found: list[tuple[int, str]] = []
    with connection.cursor() as cursor:
        try:
            # The unique index is the check for a tailnet twice; only a map that fails
            # it pays for finding the lines.
            with transaction.atomic():
                cursor.execute(f"CREATE UNIQUE INDEX {MAP}_slug ON {MAP} (slug)")
        except IntegrityError:
            cursor.execute(
                f"SELECT slug, MIN(line), MAX(line), COUNT(*) FROM {MAP} "  # noqa: S608
                f"GROUP BY slug HAVING COUNT(*) > 1 ORDER BY MIN(line) LIMIT {ERRORS_SHOWN + 1}"
            )
            for slug, first, last, times in cursor.fetchall():
                found.append(
                    (
                        last,
                        f"tailnet: {slug!r} is on {times} lines (first line {first}); once each.",
                    )
                )
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {MAP}")  # temporary tables are never auto-analyzed
        cursor.execute(f"SELECT shard, MIN(line) FROM {MAP} GROUP BY shard")  # noqa: S608
        shards = dict(cursor.fetchall())
    known = dict(Shard.objects.filter(slug__in=list(shards)).values_list("slug", "active"))
    history = shard_history([slug for slug, active in known.items() if not active])
    for slug, line in sorted(shards.items(), key=lambda item: item[1]):
        if slug not in known:
            found.append((line, f"shard: Unknown shard {slug!r}."))
        elif slug in history and (retired := shard_retired_at(history[slug], at=as_of)):
            found.append((line, f"shard: Shard {slug!r} was retired at {as_of_text(retired)}."))
    found.sort()
    return found[:ERRORS_SHOWN], len(found)


# --- Diff and apply ---------------------------------------------------------------------


def _diff(as_of: datetime) -> dict[str, int]:
    """The differences between the map and what we believe at ``as_of``, into DIFF
    (one set-based statement each way); returns how many of each kind, and ``both``
    (moved and renamed: one line, two events)."""
    believed, params = believed_map_sql(as_of)
    name_differs = "(m.display_name IS NOT NULL AND m.display_name <> b.display_name)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {DIFF} (slug, kind, shard, display_name, renamed) "  # noqa: S608
            "SELECT m.slug, CASE WHEN b.slug IS NULL THEN 'created' "
            "WHEN b.shard <> m.shard THEN 'moved' ELSE 'renamed' END, "
            f"m.shard, m.display_name, CASE WHEN b.slug IS NOT NULL AND {name_differs} "
            "THEN TRUE ELSE FALSE END "
            f"FROM {MAP} m LEFT JOIN ({believed}) b ON b.slug = m.slug "
            f"WHERE b.slug IS NULL OR b.shard <> m.shard OR {name_differs}",
            params,
        )
        cursor.execute(
            f"INSERT INTO {DIFF} (slug, kind, shard, display_name, renamed) "  # noqa: S608
            f"SELECT b.slug, 'deleted', NULL, NULL, FALSE FROM ({believed}) b "
            f"WHERE NOT EXISTS (SELECT 1 FROM {MAP} m WHERE m.slug = b.slug)",
            params,
        )
        cursor.execute(f"CREATE INDEX {DIFF}_slug ON {DIFF} (slug)")
        cursor.execute(
            f"SELECT kind, renamed, COUNT(*) FROM {DIFF} GROUP BY kind, renamed"  # noqa: S608
        )
        by_kind = {(kind, bool(renamed)): n for kind, renamed, n in cursor.fetchall()}
    return {
        "created": by_kind.get(("created", False), 0),
        "migrated": by_kind.get(("moved", False), 0) + by_kind.get(("moved", True), 0),
        "renamed": by_kind.get(("renamed", True), 0) + by_kind.get(("moved", True), 0),
        "deleted": by_kind.get(("deleted", False), 0),
        "both": by_kind.get(("moved", True), 0),
    }


def _apply(*, as_of: datetime, now: datetime) -> tuple[Counts, list[str], int]:
    """DIFF as events, a chunk at a time in slug order, each chunk its own transaction.
    Also returns the tailnets still elsewhere afterwards (the first ``ERRORS_SHOWN``,
    and how many): events at one instant apply in id order, so an earlier reconcile
    at this same ``as_of`` whose id sorts after ours keeps its placement."""
    at = as_of_text(as_of)
    total: Counts = {"accepted": 0, "duplicates": 0}
    stuck: list[str] = []
    stuck_count = 0
    last = ""
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT slug, kind, shard, display_name, renamed FROM {DIFF} "  # noqa: S608
                "WHERE slug > %s ORDER BY slug LIMIT %s",
                [last, EVENTS],
            )
            rows = cursor.fetchall()
        if not rows:
            return total, stuck, stuck_count
        names = _names([slug for slug, kind, *_ in rows if kind == "created"])
        events: list[dict[str, str]] = []
        for slug, kind, shard, display_name, renamed in rows:
            events.extend(_events(slug, kind, shard, display_name, bool(renamed), as_of, at, names))
        counts = fleet_events_ingest(events=events, source=FleetEventSource.RECONCILE, now=now)
        total["accepted"] += counts["accepted"]
        total["duplicates"] += counts["duplicates"]
        targets = {slug: shard for slug, kind, shard, *_ in rows if kind in ("created", "moved")}
        for slug in sorted(set(targets) - _placed_as_wanted(targets, as_of)):
            stuck_count += 1
            if len(stuck) < ERRORS_SHOWN:
                stuck.append(slug)
        last = rows[-1][0]


def _placed_as_wanted(targets: dict[str, str], as_of: datetime) -> set[str]:
    """The tailnets of ``targets`` that are on their target shard at ``as_of``."""
    if not targets:
        return set()
    placed = Placement.objects.filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=as_of),
        tailnet__slug__in=list(targets),
        starts_at__lte=as_of,
    ).values_list("tailnet__slug", "shard__slug")
    return {slug for slug, shard in placed if targets[slug] == shard}


def _names(slugs: list[str]) -> dict[str, str]:
    """Display names of tailnets we know but do not believe placed at ``as_of``."""
    return dict(Tailnet.objects.filter(slug__in=slugs).values_list("slug", "display_name"))


def _events(
    slug: str,
    kind: str,
    shard: str | None,
    display_name: str | None,
    renamed: bool,
    as_of: datetime,
    at: str,
    names: dict[str, str],
) -> list[dict[str, str]]:
    """The events of one difference (moved and renamed: two)."""
    if kind == "deleted":
        return [
            {
                "id": reconcile_event_id(as_of, slug, "~deleted"),
                "type": TAILNET_DELETED,
                "at": at,
                "tailnet": slug,
            }
        ]
    assert shard is not None
    if kind == "created":
        return [
            {
                "id": reconcile_event_id(as_of, slug, shard),
                "type": TAILNET_CREATED,
                "at": at,
                "tailnet": slug,
                "shard": shard,
                "display_name": display_name or names.get(slug) or slug,
            }
        ]
    events = []
    if kind == "moved":
        events.append(
            {
                "id": reconcile_event_id(as_of, slug, shard),
                "type": TAILNET_MIGRATED,
                "at": at,
                "tailnet": slug,
                "shard": shard,
            }
        )
    if renamed:
        assert display_name is not None
        digest = hashlib.sha256(display_name.encode()).hexdigest()[:16]
        events.append(
            {
                "id": reconcile_event_id(as_of, slug, f"~name:{digest}"),
                "type": TAILNET_RENAMED,
                "at": at,
                "tailnet": slug,
                "display_name": display_name,
            }
        )
    return events
