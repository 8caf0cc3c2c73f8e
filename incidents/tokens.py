"""Bearer tokens: creation (the secret is shown once), hashing, lookup for DRF."""

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .models import ApiToken, Tailnet

TOKEN_PREFIX = "sp_"  # noqa: S105 - a public marker, lets secret scanners spot leaked tokens
# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(
    *, name: str, scope: str, tailnet: Tailnet | None = None, by: Any = None
) -> tuple[ApiToken, str]:
    """Create a token; returns it and its secret, which is never stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        scope=scope,
        tailnet=tailnet,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        digest=digest(secret),
        created_by=by if by is not None and by.is_authenticated else None,
    )
    token.full_clean()
    with transaction.atomic():
        token.save()
    return token, secret


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_for_secret(secret: str) -> ApiToken | None:
    """The active token with this secret, or None. Marks it used."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = ApiToken.objects.filter(digest=digest(secret), revoked_at__isnull=True).first()
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def bearer_secret(header: str) -> str | None:
    parts = header.split()
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1]
    return None


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer sp_…``. request.user is the token's creator (or
    anonymous), request.auth the ApiToken; views check ``request.auth.scope``."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        secret = bearer_secret(header)
        if secret is None:
            return None
        token = token_for_secret(secret)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return (token.created_by or AnonymousUser(), token)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class HasScope:
    """DRF permission factory: ``permission_classes = [HasScope.of("probe")]``."""

    @staticmethod
    def of(scope: str) -> type:
        class _HasScope(BasePermission):
            message = f"This endpoint needs a token with the {scope!r} scope."

            def has_permission(self, request: Request, view: Any) -> bool:
                return isinstance(request.auth, ApiToken) and request.auth.scope == scope

        _HasScope.__name__ = f"HasScope_{scope}"
        return _HasScope
