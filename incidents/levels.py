"""The order of impact levels, component statuses and incident impacts: the one place
that knows which is worse. Plain values, no Django.

- An impact level (a shard's or a tailnet's): ``degraded < partial < outage``; no
  impact is rank 0 (``None``).
- A component status, in Statuspage's order, each level standing for one of them;
  ``operational`` and ``under_maintenance`` are no impact.
- An incident's impact, as Statuspage has it: ``none < maintenance < minor < major
  < critical``.

SQL that needs the order of levels gets it from ``sql_rank``, built from the same tuple.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

LEVELS: tuple[str, ...] = ("degraded", "partial", "outage")
# Rank -> level: 0 is no impact, so "worst" is "max".
BY_RANK: tuple[str | None, ...] = (None, *LEVELS)
_RANK: dict[str | None, int] = {level: rank for rank, level in enumerate(BY_RANK)}

# What the page's words and CSS classes call a level; "none" is no impact.
NO_SEVERITY = "none"

COMPONENT_STATUSES: tuple[str, ...] = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)
_STATUS_FOR_LEVEL: dict[str | None, str] = {
    None: "operational",
    "degraded": "degraded_performance",
    "partial": "partial_outage",
    "outage": "major_outage",
}
_LEVEL_FOR_STATUS: dict[str, str | None] = {
    "operational": None,
    "under_maintenance": None,
    **{status: level for level, status in _STATUS_FOR_LEVEL.items() if level is not None},
}

INCIDENT_IMPACTS: tuple[str, ...] = ("none", "maintenance", "minor", "major", "critical")


# --- impact levels -------------------------------------------------------------------


def _unknown_level(level: object) -> ValueError:
    return ValueError(f"unknown impact level {level!r}; expected one of {LEVELS}")


def check_level(level: str) -> None:
    if level not in LEVELS:
        raise _unknown_level(level)


def rank(level: str | None) -> int:
    """0 for no impact, then 1, 2, 3 from ``degraded`` to ``outage``."""
    try:
        return _RANK[level]
    except KeyError:
        raise _unknown_level(level) from None


def worst(levels: Iterable[str | None]) -> str | None:
    """The worst of some impact levels; None if there is no impact at all."""
    return max(levels, key=rank, default=None)


def severity(level: str | None) -> str:
    """A level as the page's words and CSS classes key it: the level, or "none"."""
    return NO_SEVERITY if level is None else level


_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def sql_rank(column: str) -> str:
    """A SQL expression for ``rank(column)``:
    ``CASE level WHEN 'degraded' THEN 1 ... ELSE 0 END``."""
    if not _COLUMN.match(column):
        raise ValueError(f"not a column name: {column!r}")
    whens = " ".join(f"WHEN '{level}' THEN {_RANK[level]}" for level in LEVELS)
    return f"CASE {column} {whens} ELSE 0 END"


# --- component statuses --------------------------------------------------------------


def check_status(status: str) -> None:
    if status not in COMPONENT_STATUSES:
        raise ValueError(
            f"unknown component status {status!r}; expected one of {COMPONENT_STATUSES}"
        )


def status_rank(status: str) -> int:
    check_status(status)
    return COMPONENT_STATUSES.index(status)


def worst_status(statuses: Iterable[str]) -> str:
    """The worst of some component statuses; ``operational`` for none."""
    return max(statuses, key=status_rank, default="operational")


def level_for_status(status: str) -> str | None:
    """The impact level a component status stands for; maintenance alone is not downtime."""
    check_status(status)
    return _LEVEL_FOR_STATUS[status]


def status_for_level(level: str | None) -> str:
    """The component status that stands for an impact level (None: ``operational``)."""
    rank(level)  # validates
    return _STATUS_FOR_LEVEL[level]


# --- incident impacts ----------------------------------------------------------------


def impact_rank(impact: str) -> int:
    """Statuspage's order of an incident's impact; anything unknown counts as none."""
    return INCIDENT_IMPACTS.index(impact) if impact in INCIDENT_IMPACTS else 0


def worst_impact(impacts: Iterable[str]) -> str:
    return max(impacts, key=impact_rank, default="none")
