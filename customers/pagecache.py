"""The tailnet's own part of its page, rendered once per tailnet per minute.

Every member of a tailnet sees the same status, history, uptime and latency; during
an incident they all reload the page at once. So the rendered part of the page that
is not personal (``templates/customers/_tailnet_body.html``) is kept in the cache
under a key made of:

- the tailnet;
- the **data version**, a counter bumped after the commit of any change to what the
  page is built from (incidents, their updates, components and impact windows,
  placements, shards, tailnets, and the bulk rebuild of affected tailnets);
- the current UTC minute, because the page shows times and durations that grow with
  the clock ("ongoing", "as of", the latest probe hour).

So a change is on the page at the next request after its commit, and nothing is ever
older than a minute. When the cache is down the page is simply rendered every time.
"""

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save

logger = logging.getLogger(__name__)
T = TypeVar("T")

VERSION_KEY = "customers:data-version"
FRAGMENT_TTL = 120  # seconds; the minute in the key makes an entry stale before that


# After a cache error the cache is left alone for this long: a hanging Redis must not
# add its socket timeout to every write of an incident or placement. Pages are keyed
# by the minute, so what a skipped bump could leave behind is at most a minute old.
BREAKER_SECONDS = 30.0
_down_until = 0.0


def _cache_is_down() -> bool:
    return time.monotonic() < _down_until


def _cache_failed(what: str) -> None:
    global _down_until
    _down_until = time.monotonic() + BREAKER_SECONDS
    logger.warning("page cache: %s; not used for %d s", what, BREAKER_SECONDS, exc_info=True)


def data_version() -> int | None:
    """The current data version, or None when the cache is unavailable."""
    if _cache_is_down():
        return None
    try:
        version = cache.get(VERSION_KEY)
        if version is None:
            # A new counter never repeats an old one: it starts at the clock.
            cache.add(VERSION_KEY, time.time_ns(), timeout=None)
            version = cache.get(VERSION_KEY)
    except Exception:
        _cache_failed("version not read")
        return None
    return version


def data_changed(**_: Any) -> None:
    """Bump the data version now, and again once the current transaction commits: a
    reader between the write and the commit may cache the old data under the first
    new version, never under the second."""
    _bump()
    transaction.on_commit(_bump, robust=True)


def _bump() -> None:
    if _cache_is_down():
        return
    try:
        cache.add(VERSION_KEY, time.time_ns(), timeout=None)
        cache.incr(VERSION_KEY)
    except Exception:
        _cache_failed("version not bumped")


def cached_fragment(*, kind: str, tailnet_id: int, now: datetime, build: Callable[[], T]) -> T:
    """``build()``'s result for this tailnet, data version and minute, from the cache
    when it is there."""
    version = data_version()
    if version is None:
        return build()
    # The database's name too: one cache shared by two databases (a staging copy, the
    # test runner's parallel workers) never mixes their pages.
    database = hashlib.sha256(str(connection.settings_dict["NAME"]).encode()).hexdigest()[:12]
    key = f"customers:{database}:{kind}:{tailnet_id}:{version}:{now:%Y%m%d%H%M}"
    try:
        hit = cache.get(key)
    except Exception:
        hit = None
    if hit is not None:
        return hit
    value = build()
    try:
        cache.set(key, value, timeout=FRAGMENT_TTL)
    except Exception:
        logger.warning("page cache unavailable", exc_info=True)
    return value


def connect_signals() -> None:
    from incidents import models, signals

    for model in (
        models.Incident,
        models.IncidentUpdate,
        models.IncidentComponent,
        models.Component,
        models.ShardImpact,
        models.Placement,
        models.Shard,
        models.Tailnet,
    ):
        post_save.connect(
            data_changed, sender=model, dispatch_uid=f"pagecache-save-{model.__name__}"
        )
        post_delete.connect(
            data_changed, sender=model, dispatch_uid=f"pagecache-delete-{model.__name__}"
        )
    signals.impacts_rebuilt.connect(data_changed, dispatch_uid="pagecache-impacts")
