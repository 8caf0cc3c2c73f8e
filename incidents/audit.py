"""Who made a change: the ``Actor`` every service takes as ``by``, and the one
writer of ``AuditEntry`` rows (called by the services, inside their transaction).

A change is made by a person (a user, possibly through one of their API tokens)
or by the system: probe detection, report triage, or the system itself (seeds,
management commands). Derived work — rebuilding affected tailnets, snapshots,
rollups — is not audited: it would flood the log and says nothing about who
decided anything.
"""

import hashlib
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models

from plumbing.models import ApiToken

from .models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who is changing something, and through which request."""

    user: Any = None  # an authenticated user, or None
    token: ApiToken | None = None
    system: str = ""  # AuditEntry.System when no person made the change
    remote_addr: str | None = None
    # The operator API's retry protection: the key and the digest of its request.
    idempotency_key: str = ""
    request_digest: str = ""


SYSTEM = Actor(system=AuditEntry.System.SYSTEM)
PROBE = Actor(system=AuditEntry.System.PROBE)
REPORTS = Actor(system=AuditEntry.System.REPORTS)

# What services accept as ``by``: an Actor, a user (the admin, scripts), or None
# for the system.
By = Actor | AbstractBaseUser | AnonymousUser | None


def actor_of(by: By) -> Actor:
    if isinstance(by, Actor):
        return by
    if by is not None and by.is_authenticated:
        return Actor(user=by)
    return SYSTEM


def actor_for_request(
    request: Any,
    *,
    token: ApiToken | None = None,
    idempotency_key: str = "",
    request_data: Mapping[str, Any] | None = None,
) -> Actor:
    """The person behind a web request (the admin's, or the operator API's with the
    token it came with), from where, and the retry key with a digest of its input."""
    user = getattr(request, "user", None)
    addr = request.META.get("REMOTE_ADDR")  # the visitor's, behind trusted proxies
    try:
        remote_addr = str(ipaddress.ip_address(addr)) if addr else None
    except ValueError:
        remote_addr = None
    return Actor(
        user=user if user is not None and user.is_authenticated else None,
        token=token,
        remote_addr=remote_addr,
        idempotency_key=idempotency_key,
        request_digest=(
            request_digest(request_data) if idempotency_key and request_data is not None else ""
        ),
    )


def jsonable(value: Any) -> Any:
    """``value`` as JSON: times in UTC ISO 8601, model rows by slug (or pk)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, models.Model):
        return getattr(value, "slug", None) or value.pk
    if isinstance(value, Mapping):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def request_digest(request_data: Mapping[str, Any]) -> str:
    """A stable digest of a request's validated input: a retry carrying the same
    idempotency key must carry the same request."""
    text = json.dumps(
        jsonable(request_data), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def audit_record(
    *, by: By, action: str, incident_id: int | None, changes: Mapping[str, Any]
) -> AuditEntry:
    actor = actor_of(by)
    return AuditEntry.objects.create(
        user=actor.user,
        token=actor.token,
        system="" if actor.user is not None or actor.token is not None else actor.system,
        action=action,
        incident_id=incident_id,
        changes=jsonable(changes),
        remote_addr=actor.remote_addr,
        idempotency_key=actor.idempotency_key,
        request_digest=actor.request_digest,
    )
