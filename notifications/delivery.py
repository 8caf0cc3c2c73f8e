"""Sending what the outbox owes. ``deliver_due`` claims due rows (a lease: their next
try moves ``LEASE`` ahead, so a worker that dies mid-send leaves them to be sent
again, with the same id, when the lease runs out), sends them — webhooks
concurrently, emails over one SMTP connection — and records each outcome: sent, or
the next try on an exponential backoff, or failed once ``GIVE_UP_AFTER`` has passed
since it was owed. The schedule is in the rows, not in Celery countdowns (a broker's
visibility timeout would deliver those twice).

A webhook failing for ``DISABLE_AFTER`` straight is turned off, and the tailnet's
owners are told by email.
"""

import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from incidents.models import Incident

from . import emails, messages, webhooks
from .models import Channel, Delivery, DeliveryStatus, EventType, Subscription, WebhookFormat

logger = logging.getLogger(__name__)

BATCH = 200  # rows claimed at a time
LEASE = timedelta(minutes=2)  # longer than a batch takes to send
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)
DISABLE_AFTER = timedelta(hours=24)


def retry_after(attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` tries: 30 s, 1 min, 2 min, …, 1 h."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_WAIT)


def deliveries_claim(*, now: datetime, limit: int = BATCH) -> list[UUID]:
    """Take up to ``limit`` due rows for this worker (others skip them)."""
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        Delivery.objects.filter(pk__in=ids).update(
            next_attempt_at=now + LEASE, attempts=F("attempts") + 1
        )
    return ids


def deliver_due(*, budget_seconds: float = 50.0) -> int:
    """Send due deliveries, batch after batch, until none is due or the budget is
    spent. Returns how many were tried."""
    started = time.monotonic()
    tried = 0
    with webhooks.Poster() as poster:
        while time.monotonic() - started < budget_seconds:
            ids = deliveries_claim(now=timezone.now())
            if not ids:
                break
            deliveries_send(ids, poster=poster)
            tried += len(ids)
    return tried


@dataclass(frozen=True)
class Result:
    ok: bool
    status: int | None = None
    error: str = ""
    skipped: bool = False  # its subscription was turned off, or its tailnet deleted


SKIPPED = Result(False, error="Not sent: the subscription is off.", skipped=True)


def deliveries_send(
    ids: Sequence[UUID], *, poster: webhooks.Poster | None = None
) -> dict[UUID, Result]:
    """Send these (claimed) deliveries now and record what happened."""
    rows = list(
        Delivery.objects.filter(pk__in=list(ids), status=DeliveryStatus.PENDING).select_related(
            "subscription", "tailnet"
        )
    )
    # A batch is usually about one incident: read it once, not once per row.
    incidents = Incident.objects.in_bulk({row.incident_id for row in rows if row.incident_id})
    for row in rows:
        if row.incident_id is not None:
            row.incident = incidents[row.incident_id]
    results: dict[UUID, Result] = {}
    hooks: list[tuple[Delivery, webhooks.Outgoing]] = []
    mails: list[Delivery] = []
    now = timezone.now()
    loaded = messages.load(rows)
    for row in rows:
        subscription = row.subscription
        if not subscription.active or (row.tailnet is not None and row.tailnet.deleted_at):
            results[row.pk] = SKIPPED
            continue
        if subscription.channel == Channel.WEBHOOK:
            hooks.append(
                (
                    row,
                    webhooks.Outgoing(
                        url=subscription.url,
                        body=body_for(row, sent_at=now, loaded=loaded),
                        secret=subscription.secret,
                        delivery_id=str(row.pk),
                    ),
                )
            )
        else:
            mails.append(row)
    items = [item for _, item in hooks]
    outcomes = poster.post(items) if poster is not None else webhooks.post_all(items)
    for (row, _), outcome in zip(hooks, outcomes, strict=True):
        results[row.pk] = Result(outcome.ok, outcome.status, outcome.error)
    results.update(_send_mails(mails, loaded))
    _record(rows, results)
    return results


def body_for(row: Delivery, *, sent_at: datetime, loaded: messages.Loaded | None = None) -> bytes:
    """A webhook delivery's body, in its subscription's format."""
    if row.subscription.format == WebhookFormat.SLACK:
        notice = messages.notice_for(row, loaded)
        text = notice.text + (f"\n{notice.body}" if notice.body else "")
        payload = webhooks.slack_body(text, notice.link, "Details")
    else:
        payload = messages.webhook_json(row, sent_at=sent_at, loaded=loaded)
    return json.dumps(payload, separators=(",", ":")).encode()


def _send_mails(rows: Sequence[Delivery], loaded: messages.Loaded) -> dict[UUID, Result]:
    results: dict[UUID, Result] = {}
    if not rows:
        return results
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
        for row in rows:
            try:
                connection.send_messages([emails.email_for(messages.notice_for(row, loaded))])
                results[row.pk] = Result(True)
            except Exception as error:  # SMTP refusals and network errors alike
                results[row.pk] = Result(False, error=f"{type(error).__name__}: {error}"[:500])
    except Exception as error:  # could not connect to the mail server at all
        failed = Result(False, error=f"{type(error).__name__}: {error}"[:500])
        for row in rows:
            results.setdefault(row.pk, failed)
    finally:
        with contextlib.suppress(Exception):  # closing a broken connection
            connection.close()
    return results


def _record(rows: Sequence[Delivery], results: dict[UUID, Result]) -> None:
    """Write each outcome to its row: those sent (or skipped) alike in one UPDATE per
    answer, a failure on its own (its next try depends on its tries)."""
    now = timezone.now()
    sent: dict[int | None, list[UUID]] = {}
    skipped: list[UUID] = []
    for row in rows:
        result = results.get(row.pk)
        if result is None:
            continue
        if result.skipped:
            skipped.append(row.pk)
            continue
        if result.ok:
            sent.setdefault(result.status, []).append(row.pk)
        else:
            gave_up = now - row.created_at >= GIVE_UP_AFTER
            Delivery.objects.filter(pk=row.pk).update(
                status=DeliveryStatus.FAILED if gave_up else DeliveryStatus.PENDING,
                next_attempt_at=now + retry_after(row.attempts),  # claiming counted this try
                response_status=result.status,
                last_error=result.error[:500],
            )
        if row.subscription.channel == Channel.WEBHOOK and row.type != EventType.TEST:
            _webhook_health(row.subscription, ok=result.ok, now=now)
    for status, ids in sent.items():
        Delivery.objects.filter(pk__in=ids).update(
            status=DeliveryStatus.SENT, sent_at=now, response_status=status, last_error=""
        )
    if skipped:
        Delivery.objects.filter(pk__in=skipped).update(status=DeliveryStatus.SKIPPED)


def _webhook_health(subscription: Subscription, *, ok: bool, now: datetime) -> None:
    if ok:
        if subscription.failing_since is not None:
            Subscription.objects.filter(pk=subscription.pk).update(failing_since=None)
            subscription.failing_since = None
        return
    if subscription.failing_since is None:
        Subscription.objects.filter(pk=subscription.pk, failing_since__isnull=True).update(
            failing_since=now
        )
        subscription.failing_since = now
        return
    if now - subscription.failing_since >= DISABLE_AFTER and subscription.active:
        webhook_disable(subscription, reason="Failing for 24 hours straight.")


def webhook_disable(subscription: Subscription, *, reason: str) -> None:
    """Turn a failing webhook off, and tell the tailnet's owners."""
    changed = Subscription.objects.filter(pk=subscription.pk, active=True).update(
        active=False, disabled_reason=reason
    )
    subscription.active = False
    if not changed:
        return
    Delivery.objects.filter(subscription=subscription, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.SKIPPED
    )
    if subscription.tailnet is None:
        return
    from customers.models import Membership, Role  # the members live in the app above

    owners = list(
        Membership.objects.filter(tailnet=subscription.tailnet, role=Role.OWNER)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if owners:
        send_mail(
            subject=f"[{subscription.tailnet.display_name}] A webhook was turned off",
            message=(
                f"The webhook {subscription.url} of {subscription.tailnet.display_name} has "
                f"failed every delivery for 24 hours, so it was turned off: {reason}\n"
                "Turn it on again from the tailnet's notifications page once it answers."
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=owners,
            fail_silently=True,
        )


def test_send(subscription: Subscription) -> Result:
    """Send a test delivery to ``subscription`` now and record it (a row of type
    ``test``). A public webhook answered 2xx is confirmed by it."""
    row = Delivery.objects.create(
        subscription=subscription,
        tailnet=subscription.tailnet,
        type=EventType.TEST,
        attempts=1,
        next_attempt_at=timezone.now() + LEASE,
    )
    row.subscription = subscription
    result = deliveries_send([row.pk])[row.pk]
    if not result.ok:
        # A test is not retried: it shows its result to the person who asked.
        Delivery.objects.filter(pk=row.pk).update(status=DeliveryStatus.FAILED)
    return result
