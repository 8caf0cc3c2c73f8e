"""Sessions read from the cache, stored in the database, and working without the cache.

Django's ``cached_db`` engine (read from the cache, fall back to the database), with
what a status page needs on top (``SESSION_ENGINE = "plumbing.sessions"``):

- **The cache may be down.** Django's engine survives a failed read or save, but a
  cache error while refilling the cache after a database read, in ``exists()`` or in
  ``delete()`` (signing out) raises: a Redis outage would sign nobody in or out. Here
  every cache operation is best effort; the database is the record.
- **Short cache lifetime.** A session stays in the cache at most
  ``SESSION_CACHE_SECONDS`` (5 minutes), not its whole two weeks, and carries its
  expiry, checked on every read. It costs one database read per active session per
  five minutes.
- **Signing out is final.** Deleting a session forgets its cached copy the way
  ``plumbing.cache.forget`` does: a request that read the session just before
  cannot put it back in the cache just after. With the cache down, the forget (and a
  saved change the cache could not take) is replayed once the cache is back: the old
  copy is never trusted again.
"""

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.utils import timezone

from plumbing.cache import cache_failed, cached, forget, forget_later

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
    # Its own prefix: what is cached here is (data, expiry), not Django's bare data.
    cache_key_prefix = "plumbing.sessions:"
    _cache: Any  # caches[settings.SESSION_CACHE_ALIAS]

    def load(self) -> dict[str, Any]:
        def from_db() -> tuple[dict[str, Any], datetime] | None:
            stored = self._get_session_from_db()  # type: ignore[attr-defined]
            if stored is None:
                return None
            return self.decode(stored.session_data), stored.expire_date

        found = cached(
            self.cache_key,
            from_db,
            timeout=settings.SESSION_CACHE_SECONDS,
            using=settings.SESSION_CACHE_ALIAS,
        )
        if found is None or found[1] <= timezone.now():
            return {}
        return found[0]

    def exists(self, session_key: str | None) -> bool:
        if not session_key:
            return False
        try:
            if (self.cache_key_prefix + session_key) in self._cache:
                return True
        except Exception as error:
            cache_failed(logger, "session cache: not looked up", error)
        return DBStore.exists(self, session_key)

    def save(self, must_create: bool = False) -> None:
        DBStore.save(self, must_create)
        data = (self._session, self.get_expiry_date())  # type: ignore[attr-defined]
        try:
            self._cache.set(self.cache_key, data, settings.SESSION_CACHE_SECONDS)
        except Exception as error:
            cache_failed(logger, "session cache: not cached", error)
            if not must_create:  # a new key has no older copy
                # The copy the cache may hold is older than this save.
                forget_later([self.cache_key], using=settings.SESSION_CACHE_ALIAS)

    def delete(self, session_key: str | None = None) -> None:
        DBStore.delete(self, session_key)
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        forget([self.cache_key_prefix + session_key], using=settings.SESSION_CACHE_ALIAS)
