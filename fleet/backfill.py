"""The event log of tailnets that have none, from their placements, so that deriving
placements from events loses no history: run once for every tailnet by migration
0002 (and by ``bench/data.py`` after its load), and for any tailnet the feed touches
whose rows were written without events (before the feed existed).

Per tailnet, its placements in time order become: ``tailnet.created`` for the first
one and for each after a gap, ``tailnet.migrated`` for each that starts where the
last one ended, ``tailnet.deleted`` where a gap starts or the last one ended, and a
``tailnet.renamed`` at ``created_at`` when it was created before its first placement
(or has none), so its name and age survive too. Ids are ``backfill:<tailnet>:<n>``.
One INSERT … SELECT (window functions, both databases): a million tailnets take
seconds to minutes, not hours.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection as default_connection
from django.utils import timezone

_JSON = {
    "postgresql": ("jsonb_build_object('display_name', {})", "'{{}}'::jsonb"),
    "sqlite": ("json_object('display_name', {})", "'{{}}'"),
}

# INSERT first, the CTEs in its SELECT: Python's sqlite3 counts rows only for
# statements that begin as DML.
_EVENTS_SQL = """
INSERT INTO fleet_fleetevent (id, type, at, tailnet, shard, payload, source, received_at)
WITH chosen AS (
    SELECT t.id, t.slug, t.display_name, t.created_at FROM incidents_tailnet t
    WHERE {chosen}
      AND NOT EXISTS (SELECT 1 FROM fleet_fleetevent e WHERE e.tailnet = t.slug)
), placed AS (
    SELECT c.slug, c.display_name, s.slug AS shard, p.starts_at, p.ends_at,
           ROW_NUMBER() OVER w AS k,
           LAG(p.ends_at) OVER w AS prev_end,
           LEAD(p.starts_at) OVER w AS next_start
    FROM chosen c
    JOIN incidents_placement p ON p.tailnet_id = c.id
    JOIN incidents_shard s ON s.id = p.shard_id
    WINDOW w AS (PARTITION BY p.tailnet_id ORDER BY p.starts_at)
)
SELECT 'backfill:' || slug || ':'
           || CAST(ROW_NUMBER() OVER (PARTITION BY slug ORDER BY at) AS TEXT),
       type, at, slug, shard, payload, 'backfill', %(now)s
FROM (
    SELECT slug,
           CASE WHEN k = 1 OR prev_end < starts_at THEN 'tailnet.created'
                ELSE 'tailnet.migrated' END AS type,
           starts_at AS at, shard,
           CASE WHEN k = 1 OR prev_end < starts_at THEN {name} ELSE {empty} END AS payload
    FROM placed
    UNION ALL
    SELECT slug, 'tailnet.deleted', ends_at, '', {empty}
    FROM placed
    WHERE ends_at IS NOT NULL AND (next_start IS NULL OR next_start > ends_at)
    UNION ALL
    SELECT c.slug, 'tailnet.renamed', c.created_at, '', {name}
    FROM chosen c
    WHERE NOT EXISTS (
        SELECT 1 FROM incidents_placement p
        WHERE p.tailnet_id = c.id AND p.starts_at <= c.created_at
    )
) events
"""

# What the backfilled log derives about deletion: deleted when its last placement ended.
_DELETED_SQL = """
UPDATE incidents_tailnet SET deleted_at = (
    SELECT MAX(p.ends_at) FROM incidents_placement p WHERE p.tailnet_id = incidents_tailnet.id
)
WHERE {chosen}
  AND deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM fleet_fleetevent e WHERE e.tailnet = incidents_tailnet.slug)
  AND EXISTS (SELECT 1 FROM incidents_placement p WHERE p.tailnet_id = incidents_tailnet.id)
  AND NOT EXISTS (
      SELECT 1 FROM incidents_placement p
      WHERE p.tailnet_id = incidents_tailnet.id AND p.ends_at IS NULL
  )
"""

SQLITE_CHUNK = 5000  # ids per statement, well under SQLite's limit on parameters


def fleet_events_backfill(
    *,
    tailnet_ids: Sequence[int] | None = None,
    connection: Any = None,
    now: datetime | None = None,
) -> int:
    """Backfill the log of these tailnets (default: all) that have no events yet;
    returns how many events were written."""
    connection = connection or default_connection
    name, empty = _JSON[connection.vendor]
    received = connection.ops.adapt_datetimefield_value(now or timezone.now())
    if tailnet_ids is None:
        batches: list[tuple[str, list[Any]]] = [("1 = 1", [])]
    elif connection.vendor == "postgresql":
        batches = [("{table}.id = ANY(%(ids)s)", list(tailnet_ids))]
    else:
        ids = list(tailnet_ids)
        batches = [
            (
                "{table}.id IN ("
                + ", ".join(str(int(pk)) for pk in ids[i : i + SQLITE_CHUNK])
                + ")",
                [],
            )
            for i in range(0, len(ids), SQLITE_CHUNK)
        ]
    written = 0
    with connection.cursor() as cursor:
        for chosen, ids in batches:
            # Only the parameters the statement names: Django's debug cursor (DEBUG on,
            # as in `make run`) quotes every one on SQLite, and a list it cannot.
            params: dict[str, Any] = {"now": received}
            if "%(ids)s" in chosen:
                params["ids"] = ids
            cursor.execute(
                _DELETED_SQL.format(chosen=chosen.format(table="incidents_tailnet")), params
            )
            cursor.execute(
                _EVENTS_SQL.format(
                    chosen=chosen.format(table="t"),
                    name=name.format("display_name"),
                    empty=empty.format(),
                ),
                params,
            )
            written += max(cursor.rowcount, 0)
    return written
