"""Django's ModelBackend, reading the signed-in user from the cache.

Every page a signed-in person loads reads their ``auth_user`` row once, in
``django.contrib.auth.get_user``; during an incident every member of every affected
tailnet reloads at once. This backend keeps that row in the cache for at most
``ACCOUNT_CACHE_SECONDS`` (a minute) and forgets it right away, and again after the
commit, whenever the user is saved or deleted (a new password, deactivation, sign-in
time), so Django's own checks work on current data: the session hash (a password
change signs other sessions out) and ``is_active``.

A change that bypasses ``save()`` (a bulk ``QuerySet.update()``) reaches signed-in
pages within the minute. The kept row is the whole ``auth_user`` row, password hash
included (Django's session check needs it): protect the cache as the database (it
already holds every session). Authentication itself (``authenticate()``, passwords,
permissions) is Django's, unchanged. With the cache down the row comes from the
database, as with Django's backend.
"""

import functools
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from plumbing.cache import Columns, forget, kept


@functools.cache
def _user_columns() -> Columns:
    return Columns(get_user_model())


def _key(user_id: Any) -> str:
    return f"auth:user:{_user_columns().tag}:{user_id}"


class CachedModelBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        def load() -> tuple[Any, ...] | None:
            user = get_user_model()._default_manager.filter(pk=user_id).first()
            return None if user is None else _user_columns().row(user)

        row = kept(_key(user_id), load, timeout=settings.ACCOUNT_CACHE_SECONDS)
        if row is None:
            return None
        user = _user_columns().instance(row)
        return user if self.user_can_authenticate(user) else None


def user_changed(instance: Any, **_: Any) -> None:
    """Forget a saved or deleted user now and once the transaction commits."""
    forget([_key(instance.pk)])
