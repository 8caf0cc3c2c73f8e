"""Django's Redis cache, keeping its clients and leaving a failing Redis alone.

One change to ``django.core.cache.backends.redis``, everything else is Django's:
**a breaker**. A status page is visited most when things break. When Redis refuses
or times out, every later command on that server fails at once for
``BREAKER_SECONDS`` instead of waiting for its socket timeout again: the callers
already treat a cache error as a miss (sessions and users come from the database,
pages are rendered, rate limits let people through), so a hanging Redis costs one
timeout per process every half a minute, not one per cache call.

The breaker remembers a failure in the client, so there is one client per
connection pool (Django's ``get_client`` builds a new ``redis.Redis`` for every
command; a ``redis.Redis`` over a pool is safe to share between threads). This is
the one module that touches the private names of Django's Redis cache
(``_client``, ``_get_connection_pool``, ``_cache``, ``_class``);
tests/plumbing/test_cache.py holds them to what Django does.

Below them, ``cached()`` and ``forget()``: rows read on every request (the signed-in
user, memberships, API tokens, sessions) cached briefly and forgotten by the change
that makes them wrong, on whichever cache backend is configured. A forget that cannot
reach the cache is written to the database and replayed once the cache is back, so a
change made while the cache is down still wins over what the cache held before.
"""

import hashlib
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

import redis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient
from django.core.signals import setting_changed

logger = logging.getLogger(__name__)
T = TypeVar("T")

BREAKER_SECONDS = 30.0
FAILURES = (redis.ConnectionError, redis.TimeoutError)


class CacheSkipped(redis.ConnectionError):
    """Raised instead of talking to a Redis that failed less than BREAKER_SECONDS ago."""


class BreakerRedis(redis.Redis):
    """``redis.Redis`` whose commands fail fast for a while after a connection error."""

    down_until = 0.0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self._closed_or_raise()
        try:
            return super().execute_command(*args, **options)
        except FAILURES:
            self._trip()
            raise

    def pipelined(self, fill: Callable[[Any], None]) -> list[Any]:
        """Commands ``fill(pipeline)`` queues, in one round trip (no MULTI), under
        the same breaker."""
        self._closed_or_raise()
        pipe = self.pipeline(transaction=False)
        fill(pipe)
        try:
            return pipe.execute()
        except FAILURES:
            self._trip()
            raise

    def _closed_or_raise(self) -> None:
        if time.monotonic() < self.down_until:
            raise CacheSkipped(f"the cache failed less than {BREAKER_SECONDS:.0f} s ago")

    def _trip(self) -> None:
        self.down_until = time.monotonic() + BREAKER_SECONDS
        logger.warning("cache unreachable; not used for %d s", BREAKER_SECONDS, exc_info=True)


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client = BreakerRedis
        self._clients: dict[int, BreakerRedis] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> BreakerRedis:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with a breaker."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


def redis_client(backend: Any) -> BreakerRedis | None:
    """The Redis client behind one of our Redis caches (for pipelines), or None for
    any other cache backend."""
    if not isinstance(backend, RedisCache):
        return None
    return cast(RedisCacheClient, backend._cache).get_client(write=True)


def cache_failed(log: logging.Logger, what: str, error: Exception) -> None:
    """Log a failed best-effort cache operation, once per outage: while the breaker
    is open the calls that it skips are not logged again."""
    if not isinstance(error, CacheSkipped):
        log.warning("%s", what, exc_info=True)


# --- Rows cached for a short while, forgotten when they change -------------------------------
#
# The signed-in user, a person's memberships and API tokens are read on every request
# and decide who may see what. They are cached for a short while and forgotten
# (now and after the commit) by the save or delete that changes them. A plain delete
# would leave a race: a request that read the old row just before the change commits
# could put it back just after the change forgot it. So forgetting leaves a marker for
# FORGET_SECONDS; while it is there nobody keeps the row again, and a refill that
# started before the change (``add``) can never replace it.

FORGET_SECONDS = 2.0


@dataclass(frozen=True)
class Forgotten:
    until: float  # time.time() after which the row may be cached again


class Columns:
    """How ``cached()`` keeps a model's rows: the values of its columns in a tuple, built
    back into an instance without a query. ``tag`` (a hash of the column names) goes
    into the cache key, so a deploy that adds a column never reads rows cached before.
    Columns in ``exclude`` are never cached (secrets): the instance reads them from the
    database if and when they are used (Django's deferred fields)."""

    def __init__(self, model: Any, *, exclude: tuple[str, ...] = ()) -> None:
        self.model = model
        self.names = tuple(
            field.attname for field in model._meta.concrete_fields if field.attname not in exclude
        )
        self.tag = hashlib.sha256(",".join(self.names).encode()).hexdigest()[:8]

    def row(self, instance: Any) -> tuple[Any, ...]:
        return tuple(getattr(instance, name) for name in self.names)

    def instance(self, row: tuple[Any, ...]) -> Any:
        from django.db import DEFAULT_DB_ALIAS

        return self.model.from_db(DEFAULT_DB_ALIAS, self.names, row)


def cached(
    key: str, load: Callable[[], T | None], *, timeout: int, using: str = "default"
) -> T | None:
    """What is cached under ``key`` in cache ``using``, or else ``load()`` (from the
    database), cached for ``timeout`` seconds unless it was forgotten moments ago.
    ``None`` is not cached. With the cache down every call loads; once it is back, the
    forgets lost meanwhile are replayed before anything it kept is trusted (below)."""
    from django.core.cache import caches

    cache = caches[using]

    try:
        value = cache.get(key)
        if value is not None and _failed_since_replay(using):
            _replay_here(using)  # before trusting anything the cache kept (below)
            value = cache.get(key)
    except Exception as error:
        _failed(using)
        cache_failed(logger, f"cache: {key!r} not read", error)
        return load()
    if value is not None and not isinstance(value, Forgotten):
        return value
    fresh = load()
    if fresh is None:
        return None
    try:
        if value is None:
            cache.add(key, fresh, timeout=timeout)
        elif value.until <= time.time():
            cache.set(key, fresh, timeout=timeout)
    except Exception as error:
        cache_failed(logger, f"cache: {key!r} not cached", error)
    return fresh


def forget(keys: list[str], *, using: str = "default") -> None:
    """Forget what ``cached()`` keeps under ``keys``, now and again once the current
    transaction commits (see above). With the cache down (or its breaker open) the
    forget is recorded in the database, with the change if it is not committed yet,
    and replayed once the cache is back (below)."""
    from django.core.cache import caches
    from django.db import transaction

    cache = caches[using]
    recorded = False

    def mark() -> None:
        nonlocal recorded
        marker = Forgotten(until=time.time() + FORGET_SECONDS)
        try:
            cache.set_many(dict.fromkeys(keys, marker), timeout=math.ceil(FORGET_SECONDS) + 1)
        except Exception as error:
            cache_failed(logger, f"cache: {keys!r} not forgotten until the cache is back", error)
            if not recorded:
                forget_later(keys, using=using)
                recorded = True
            else:  # recorded before the commit, seen by a replay only from now on
                _failed(using)

    if keys:
        mark()
        transaction.on_commit(mark, robust=True)


# --- Forgets lost while the cache was down ------------------------------------------------
#
# The one rule: a change made while the cache is down wins once it is back. A forget
# that cannot reach the cache is recorded in the database (``LostForget``), where the
# change itself is, and replayed (its markers set, its row deleted) before anything the
# cache kept from before is trusted again:
# - by a process that saw the cache fail (a read or a forget in ``cached()`` or
#   ``forget()``; every signed-in request reads its session there first), at its first
#   read that finds something cached in it afterwards: one small query, once;
# - by every process, through the ``plumbing.replay_lost_forgets`` task every minute
#   (beat), for those that did not see the outage.
# A process that saw no failure reads nothing from the database for this. A row older
# than the longest a copy is kept is deleted unreplayed: what it was to forget has
# expired by then.

# Cache failures this process saw, by cache alias, and how many of them a finished replay
# covers: counters, so a failure seen while a replay runs is never taken as covered.
_failures: Counter[str] = Counter()
_replayed: dict[str, int] = {}
REPLAY_BATCH = 500


def _failed(using: str) -> None:
    _failures[using] += 1


def _failed_since_replay(using: str) -> bool:
    return _failures[using] != _replayed.get(using, 0)


def _replay_here(using: str) -> None:
    seen = _failures[using]
    replay_lost_forgets(using)
    _replayed[using] = seen


def _caches_configured(*, setting: str, **_: Any) -> None:
    """Caches configured anew (each test does) have failed nowhere yet."""
    if setting == "CACHES":
        _failures.clear()
        _replayed.clear()


setting_changed.connect(_caches_configured, dispatch_uid="plumbing.cache.caches_configured")


def forget_later(keys: list[str], *, using: str = "default") -> None:
    """Record that ``keys`` are to be forgotten once cache ``using`` is back: for a
    caller whose cache write just failed, as ``forget()`` does."""
    from .models import LostForget

    _failed(using)
    LostForget.objects.bulk_create([LostForget(key=key, cache_alias=using) for key in keys])


def longest_kept() -> timedelta:
    """The longest a copy cached by ``cached()`` (or a session) lives, with the margin
    of a forget's marker."""
    seconds = max(settings.SESSION_CACHE_SECONDS, settings.ACCOUNT_CACHE_SECONDS)
    return timedelta(seconds=seconds + math.ceil(FORGET_SECONDS) + 1)


def replay_lost_forgets(using: str | None = None) -> int:
    """Forget now what was lost while a cache was down (cache ``using``, or every cache):
    the markers set as ``forget()`` sets them, then the rows deleted. Returns how many
    keys were forgotten. Raises when a cache cannot be written: the rows stay for the
    next replay."""
    from django.core.cache import caches
    from django.utils import timezone

    from .models import LostForget

    lost = LostForget.objects.order_by()
    if using is not None:
        lost = lost.filter(cache_alias=using)
    forgotten = 0
    while True:
        rows = list(lost.values_list("pk", "key", "cache_alias", "lost_at")[:REPLAY_BATCH])
        expired_before = timezone.now() - longest_kept()
        keys: dict[str, set[str]] = {}
        for _, key, alias, lost_at in rows:
            if lost_at >= expired_before and alias in settings.CACHES:
                keys.setdefault(alias, set()).add(key)
        marker = Forgotten(until=time.time() + FORGET_SECONDS)
        for alias, some in keys.items():
            caches[alias].set_many(
                dict.fromkeys(some, marker), timeout=math.ceil(FORGET_SECONDS) + 1
            )
            forgotten += len(some)
        if rows:
            LostForget.objects.filter(pk__in=[row[0] for row in rows]).delete()
        if len(rows) < REPLAY_BATCH:
            return forgotten
