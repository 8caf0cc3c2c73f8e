"""The tailnet's own part of its page, rendered once per tailnet per minute.

Every member of a tailnet sees the same status, history, uptime, latency and outage
reports; during an incident they all reload the page at once. So the rendered part
of the page that is not personal (``templates/customers/_tailnet_body.html``) and the
``/uptime`` JSON are cached, one entry per tailnet (and kind), stamped
with what it was built for:

- the **fleet version**, a counter bumped after the commit of any change that can
  touch many tailnets (incidents, their updates, components and impact windows,
  shards, and the bulk rebuild of affected tailnets);
- the **tailnet's version**, a counter of its own, bumped after the commit of a
  change to it alone (its placements, its name, its outage reports), so a migration
  or a new report re-renders one tailnet's page, not everyone's;
- the current UTC minute, because the page shows times and durations that grow with
  the clock ("ongoing", "as of", the latest probe hour).

The two counters and the entry are read in one round trip; an entry whose stamp is
not the current one is built again. A change is on the page at the next request
after its commit, and nothing is ever older than a minute. When the cache
is down the page is simply rendered every time (plumbing/cache.py's breaker keeps
a hanging Redis from costing a timeout per request).
"""

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import connection, transaction

from plumbing.cache import cache_failed

logger = logging.getLogger(__name__)
T = TypeVar("T")

FLEET_VERSION_KEY = "customers:data-version"
FRAGMENT_TTL = 120  # seconds; the minute in the key makes an entry stale before that


def _tailnet_version_key(tailnet_id: int) -> str:
    return f"customers:tailnet-version:{tailnet_id}"


def _failed(what: str, error: Exception) -> None:
    cache_failed(logger, f"page cache: {what}", error)


def versions(tailnet_id: int) -> tuple[int, int] | None:
    """The fleet's and the tailnet's data versions, or None when the cache is
    unavailable. A missing counter starts at the clock, so it never repeats an old one."""
    keys = [FLEET_VERSION_KEY, _tailnet_version_key(tailnet_id)]
    try:
        found = cache.get_many(keys)
        if len(found) < len(keys):
            for key in keys:
                if key not in found:
                    cache.add(key, time.time_ns(), timeout=None)
            found = cache.get_many(keys)
        return found[keys[0]], found[keys[1]]
    except Exception as error:
        _failed("versions not read", error)
        return None


def data_version() -> int | None:
    """The fleet's data version, or None when the cache is unavailable."""
    try:
        version = cache.get(FLEET_VERSION_KEY)
        if version is None:
            cache.add(FLEET_VERSION_KEY, time.time_ns(), timeout=None)
            version = cache.get(FLEET_VERSION_KEY)
    except Exception as error:
        _failed("version not read", error)
        return None
    return version


def data_changed(**_: Any) -> None:
    """Bump the fleet's data version now, and again once the current transaction
    commits: a reader between the write and the commit may cache the old data under
    the first new version, never under the second."""
    _bump([FLEET_VERSION_KEY])
    transaction.on_commit(lambda: _bump([FLEET_VERSION_KEY]), robust=True)


def tailnets_changed(tailnet_ids: Iterable[int | None]) -> None:
    """Bump these tailnets' own versions, now and after the commit (as data_changed)."""
    keys = sorted({_tailnet_version_key(pk) for pk in tailnet_ids if pk is not None})
    if keys:
        _bump(keys)
        transaction.on_commit(lambda: _bump(keys), robust=True)


def _bump(keys: list[str]) -> None:
    try:
        for key in keys:
            cache.add(key, time.time_ns(), timeout=None)
            cache.incr(key)
    except Exception as error:
        _failed("version not bumped", error)


def cached_fragment(*, kind: str, tailnet_id: int, now: datetime, build: Callable[[], T]) -> T:
    """``build()``'s result for this tailnet, its versions and minute, from the cache
    when it is there. One round trip when it is: the two versions and the cached
    fragment (stamped with the versions and minute it was built for) in one MGET."""
    # The database's name too: one cache shared by two databases (a staging copy, the
    # test runner's parallel workers) never mixes their pages.
    database = hashlib.sha256(str(connection.settings_dict["NAME"]).encode()).hexdigest()[:12]
    key = f"customers:{database}:{kind}:{tailnet_id}"
    keys = [FLEET_VERSION_KEY, _tailnet_version_key(tailnet_id), key]
    try:
        found = cache.get_many(keys)
    except Exception as error:
        _failed("page not read", error)
        return build()
    fleet, own = found.get(keys[0]), found.get(keys[1])
    if fleet is None or own is None:  # a counter not started yet (or evicted): start it
        started = versions(tailnet_id)
        if started is None:
            return build()
        fleet, own = started
    stamp = (fleet, own, f"{now:%Y%m%d%H%M}")
    entry = found.get(key)
    if entry is not None and entry[0] == stamp:
        return entry[1]
    value = build()
    try:
        cache.set(key, (stamp, value), timeout=FRAGMENT_TTL)
    except Exception as error:
        _failed("page not cached", error)
    return value


def _tailnet_data_changed(tailnet_ids: Iterable[int], **_: Any) -> None:
    tailnets_changed(tailnet_ids)


def connect_signals() -> None:
    """Every change the domain announces (``incidents.signals``): published data
    bumps the fleet's version, a tailnet's own data that tailnet's."""
    from incidents import signals

    signals.published_data_changed.connect(data_changed, dispatch_uid="pagecache-published")
    signals.tailnet_data_changed.connect(_tailnet_data_changed, dispatch_uid="pagecache-tailnets")
