"""Bearer tokens: creation (the secret is shown once), hashing, lookup for DRF."""

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from plumbing.cache import Columns, cache_failed, cached, forget

from .models import ApiToken

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "sp_"  # noqa: S105 - a public marker, lets secret scanners spot leaked tokens
# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(
    *, name: str, scope: str, tailnet: Any = None, probe_region: Any = None, by: Any = None
) -> tuple[ApiToken, str]:
    """Create a token; returns it and its secret, which is never stored. A probe token
    posts samples only for its ``probe_region`` (without one, for none)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        scope=scope,
        tailnet=tailnet,
        probe_region=probe_region,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        digest=digest(secret),
        created_by=by if by is not None and by.is_authenticated else None,
    )
    token.full_clean()
    with transaction.atomic():
        token.save()
    return token, secret


def api_token_bind_region(*, token: ApiToken, region: Any) -> ApiToken:
    """Bind a probe token made before tokens had a region to the one it posts for.
    Once: a bound token stays bound (revoke it and create another to move it)."""
    if token.scope != ApiToken.Scope.PROBE:
        raise ValidationError({"probe_region": "Only probe tokens have a region."})
    if token.probe_region_id not in (None, region.pk):
        raise ValidationError({"probe_region": "This token is bound to another region."})
    token.probe_region = region
    token.save(update_fields=["probe_region"])
    return token


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_for_secret(secret: str) -> ApiToken | None:
    """The active token with this secret (its tailnet loaded), or None. Marks it used."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = _token_for_digest(digest(secret))
    if token is None or token.revoked_at is not None:
        return None
    # A deleted tailnet's tokens stop working (it may come back: they work again then).
    if token.tailnet is not None and getattr(token.tailnet, "deleted_at", None) is not None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        _mark_used(token, now)
    return token


def _mark_used(token: ApiToken, now: Any) -> None:
    """Record the token's use, at most once per LAST_USED_RESOLUTION: the cached row's
    time may be older than the database's, so the cache says who records it."""
    period = int(LAST_USED_RESOLUTION.total_seconds())
    window = int(now.timestamp()) // period
    try:
        first = cache.add(f"api-token-used:{token.pk}:{window}", 1, timeout=period * 2)
    except Exception as error:
        cache_failed(logger, "token cache: use not counted", error)
        first = True
    if first:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now


# --- Tokens cached ----------------------------------------------------------------
#
# Every API request looks its token up; a probe fleet or a customer's dashboard does so
# many times a second. A token (with its tailnet) is cached for at most
# ACCOUNT_CACHE_SECONDS and forgotten right away, and again after the commit, when it is
# saved or deleted (revoked) or its tailnet is: a revoked token is refused at its next
# request. Only tokens that exist are cached; an unknown secret always asks the database.

_TOKEN = Columns(ApiToken)
# The tailnet a token is for, by its relation: this app sits below the domain's.
_TAILNET = Columns(ApiToken._meta.get_field("tailnet").related_model)


def _token_key(token_digest: str) -> str:
    return f"api-token:{_TOKEN.tag}{_TAILNET.tag}:{token_digest}"


def _token_for_digest(token_digest: str) -> ApiToken | None:
    def load() -> tuple[Any, Any] | None:
        token = ApiToken.objects.select_related("tailnet").filter(digest=token_digest).first()
        if token is None:
            return None
        tailnet = token.tailnet
        return (_TOKEN.row(token), None if tailnet is None else _TAILNET.row(tailnet))

    row = cached(_token_key(token_digest), load, timeout=settings.ACCOUNT_CACHE_SECONDS)
    if row is None:
        return None
    token: ApiToken = _TOKEN.instance(row[0])
    if row[1] is not None:
        token.tailnet = _TAILNET.instance(row[1])
    return token


def _token_row_changed(instance: ApiToken, **_: Any) -> None:
    forget([_token_key(instance.digest)])


def _tailnet_row_changed(instance: Any, **_: Any) -> None:
    tailnet_tokens_forget([instance.pk])


def tailnet_tokens_forget(tailnet_ids: Any) -> None:
    """Forget the cached tokens of these tailnets (now and after the commit): for
    writers that change tailnet rows in bulk, which sends no model signal."""
    digests = ApiToken.objects.filter(tailnet_id__in=list(tailnet_ids)).values_list(
        "digest", flat=True
    )
    forget([_token_key(d) for d in digests])


def connect_signals() -> None:
    senders = ((ApiToken, _token_row_changed), ("incidents.Tailnet", _tailnet_row_changed))
    for model, receiver in senders:
        post_save.connect(receiver, sender=model, dispatch_uid=f"tokens-save-{model}")
        post_delete.connect(receiver, sender=model, dispatch_uid=f"tokens-delete-{model}")


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
        if token.created_by_id is None:
            return (AnonymousUser(), token)
        # The creator is read only by the views that record who did something.
        return (SimpleLazyObject(lambda: token.created_by or AnonymousUser()), token)

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
