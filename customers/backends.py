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
pages within the minute. Authentication itself (passwords, permissions) is Django's,
checked within the sign-in limit (``customers.signin``): every door that signs in
with a password goes through ``authenticate()``, so through here. With the cache down
the row comes from the database, as with Django's backend.
"""

import functools
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from plumbing.cache import Columns, cached, forget

from . import signin

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
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        name = username if username is not None else kwargs.get(get_user_model().USERNAME_FIELD)
        if name is None or password is None:
            return None
        check = functools.partial(super().authenticate, request, username, password, **kwargs)
        return signin.password_checked(request, name, check)

    async def aauthenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        return await sync_to_async(self.authenticate)(request, username, password, **kwargs)

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
