"""The feed's events as plain values, and the check of one event as a producer sent
it (a JSON object): no database, no clock (``now`` is given).

What the database must answer (is the shard known, retired, which component) is
checked by ``services.fleet_events_ingest``.
"""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

TAILNET_CREATED = "tailnet.created"
TAILNET_MIGRATED = "tailnet.migrated"
TAILNET_RENAMED = "tailnet.renamed"
TAILNET_DELETED = "tailnet.deleted"
SHARD_ADDED = "shard.added"
SHARD_UPDATED = "shard.updated"
SHARD_RETIRED = "shard.retired"
TAILNET_TYPES = (TAILNET_CREATED, TAILNET_MIGRATED, TAILNET_RENAMED, TAILNET_DELETED)
SHARD_TYPES = (SHARD_ADDED, SHARD_UPDATED, SHARD_RETIRED)
TYPES = TAILNET_TYPES + SHARD_TYPES
# Tailnet events that put a tailnet on a shard.
PLACING_TYPES = (TAILNET_CREATED, TAILNET_MIGRATED)

ID_MAX = 200
MAX_CLOCK_SKEW = timedelta(minutes=5)
SHARD_FIELDS = ("region", "public_name", "probe_url", "component")

# The fields of each type beyond id, type and at: (required, optional).
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    TAILNET_CREATED: (("tailnet", "display_name", "shard"), ()),
    TAILNET_MIGRATED: (("tailnet", "shard"), ()),
    TAILNET_RENAMED: (("tailnet", "display_name"), ()),
    TAILNET_DELETED: (("tailnet",), ()),
    SHARD_ADDED: (("shard", "region", "public_name", "probe_url"), ("component",)),
    SHARD_UPDATED: (("shard",), SHARD_FIELDS),
    SHARD_RETIRED: (("shard",), ()),
}
# Kept in the event's columns; every other field of its type goes to its payload.
COLUMNS = ("tailnet", "shard")

# RFC 3339: a full date, "T" (or a space), a full time with optional fraction, and a zone.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_url = URLValidator(schemes=["http", "https"])
# Django's validate_slug pattern, compiled once: its lazy regex costs 5x per call, and
# reconcile checks two slugs on each of millions of lines.
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")


@dataclass(frozen=True, slots=True)
class Event:
    """One event: ``tailnet`` is empty for shard events, ``shard`` for the tailnet
    events that name none; ``payload`` holds the other fields the producer sent."""

    id: str
    type: str
    at: datetime
    tailnet: str = ""
    shard: str = ""
    payload: Mapping[str, str] = field(default_factory=dict)

    def content(self) -> tuple[Any, ...]:
        """What makes two events with one id the same event: parsed values, so
        ``Z`` and ``+00:00`` are the same time."""
        return (self.type, self.at, self.tailnet, self.shard, sorted(self.payload.items()))

    @property
    def order(self) -> tuple[datetime, str]:
        """Events apply in this order: by time, then by id (code point order)."""
        return (self.at, self.id)


def parse_at(value: Any) -> tuple[datetime | None, str | None]:
    """An RFC 3339 time with its zone, in UTC; or the reason it is not one."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return (
            None,
            "An RFC 3339 date-time with a time zone is required (e.g. 2026-01-05T10:00:00Z).",
        )
    try:
        parsed = datetime.fromisoformat(value.upper().replace(" ", "T"))
        return parsed.astimezone(UTC), None
    except (ValueError, OverflowError):
        return None, "Not a valid date-time."


def _text(value: Any, *, max_length: int, allow_empty: bool = False) -> str | None:
    """Why ``value`` is not acceptable text, or None."""
    if not isinstance(value, str):
        return "Must be a string."
    if not value and not allow_empty:
        return "May not be empty."
    if len(value) > max_length:
        return f"At most {max_length} characters."
    if not value.isprintable() and any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        return "Control characters are not allowed."
    return None


def _slug(value: Any, *, max_length: int) -> str | None:
    problem = _text(value, max_length=max_length)
    if problem is not None:
        return problem
    if _SLUG.fullmatch(value) is None:
        return "Letters, numbers, underscores or hyphens only."
    return None


def _url_problem(value: Any) -> str | None:
    problem = _text(value, max_length=300, allow_empty=True)
    if problem is not None or value == "":
        return problem
    try:
        _url(value)
    except ValidationError:
        return "An http(s) URL, or empty."
    return None


CHECKS = {
    "tailnet": lambda v: _slug(v, max_length=100),
    "shard": lambda v: _slug(v, max_length=64),
    "display_name": lambda v: _text(v, max_length=200),
    "region": lambda v: _slug(v, max_length=32),
    "public_name": lambda v: _text(v, max_length=100),
    "probe_url": _url_problem,
    "component": lambda v: _slug(v, max_length=64),
}


def event_parse(item: Any, *, now: datetime) -> tuple[Event | None, dict[str, list[str]]]:
    """The event, or None and the problems by field (DRF's error shape)."""
    if not isinstance(item, Mapping):
        return None, {"non_field_errors": ["Each event must be a JSON object."]}
    problems: dict[str, list[str]] = {}

    def problem(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    event_id = item.get("id")
    if "id" not in item:
        problem("id", "This field is required.")
    elif (why := _text(event_id, max_length=ID_MAX)) is not None:
        problem("id", why)
    sent = item.get("type")
    kind = sent if isinstance(sent, str) else ""  # a list or an object is no type
    if kind not in FIELDS:
        problem("type", f"Unknown type {str(sent)[:40]!r}; use one of {', '.join(TYPES)}.")
    at, why = parse_at(item.get("at")) if "at" in item else (None, "This field is required.")
    if why is not None:
        problem("at", why)
    elif at is not None and at > now + MAX_CLOCK_SKEW:
        problem("at", "More than 5 minutes in the future: check the producer's clock.")
    if kind not in FIELDS:
        return None, problems

    required, optional = FIELDS[kind]
    allowed = ("id", "type", "at", *required, *optional)
    for name in item:
        if name not in allowed:
            problem(str(name)[:40], f"Not a field of {kind}; it has {', '.join(allowed)}.")
    for name in required:
        if name not in item:
            problem(name, "This field is required.")
    for name in (*required, *optional):
        if name in item and (why := CHECKS[name](item[name])) is not None:
            problem(name, why)
    if kind == SHARD_UPDATED and not any(name in item for name in optional):
        problem("non_field_errors", f"Send at least one of {', '.join(optional)}.")
    if problems or at is None or not isinstance(event_id, str):
        return None, problems
    return (
        Event(
            id=event_id,
            type=kind,
            at=at,
            tailnet=item.get("tailnet", ""),
            shard=item.get("shard", ""),
            payload={
                name: item[name]
                for name in (*required, *optional)
                if name in item and name not in COLUMNS
            },
        ),
        {},
    )
