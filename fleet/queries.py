"""What the feed reads: the map of the fleet we believe at a moment."""

from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple

from django.db import connection

from incidents.models import Placement, Shard, Tailnet

PAGE = 5000  # rows per query when streaming the map


class MapLine(NamedTuple):
    tailnet: str
    shard: str
    display_name: str


def believed_map_sql(as_of: datetime) -> tuple[str, list[datetime]]:
    """``SELECT slug, shard, display_name`` of every tailnet placed at ``as_of``: the
    placement covering that instant (``starts_at <= as_of < ends_at``). The one rule
    of "where we believe each tailnet is", for the map and for reconcile's diff."""
    sql = (
        f"SELECT t.slug AS slug, s.slug AS shard, t.display_name AS display_name "  # noqa: S608
        f"FROM {Placement._meta.db_table} p "
        f"JOIN {Tailnet._meta.db_table} t ON t.id = p.tailnet_id "
        f"JOIN {Shard._meta.db_table} s ON s.id = p.shard_id "
        "WHERE p.starts_at <= %s AND (p.ends_at IS NULL OR p.ends_at > %s)"
    )
    return sql, [as_of, as_of]


def believed_map(as_of: datetime, *, page: int = PAGE) -> Iterator[MapLine]:
    """Every tailnet placed at ``as_of``, in slug order, read a page at a time (keyset),
    so a map of millions of tailnets streams in constant memory."""
    inner, params = believed_map_sql(as_of)
    last = ""
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT slug, shard, display_name FROM ({inner}) m "  # noqa: S608
                "WHERE slug > %s ORDER BY slug LIMIT %s",
                [*params, last, page],
            )
            rows = cursor.fetchall()
        yield from (MapLine(*row) for row in rows)
        if len(rows) < page:
            return
        last = rows[-1][0]
