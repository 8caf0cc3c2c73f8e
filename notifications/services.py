"""Every write of subscriptions, from every door (the public pages, a tailnet's page,
its API, the admin, the links in messages).

Public subscribers are double opt-in: an address hears nothing before the link
mailed to it is used, and asking to subscribe says the same whatever the address's
state (the mail it gets says the rest). A public webhook is confirmed by a test
delivery answered 2xx. A tailnet's managers add recipients (a member's address is
confirmed at once, any other confirms by mail) and webhooks (confirmed at once).

Each service validates what it is given and raises ``ValidationError`` with a
message meant for the person who asked (by field when it is about one); a refused
request writes nothing.
"""

import logging
import secrets
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import BaseUserManager
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import Membership
from incidents.models import Component, Tailnet
from plumbing import ratelimit

from . import delivery, emails, webhooks
from .models import Channel, Delivery, DeliveryStatus, Subscription, WebhookFormat

logger = logging.getLogger(__name__)

SECRET_MAX = 100  # Subscription.secret
TOO_MANY_SUBSCRIPTIONS = (
    "Too many subscriptions from your network in the last hour. Please try again later."
)
_URL = URLValidator(schemes=["http", "https"])


# --- Rules shared by the doors ---------------------------------------------------------------


def webhook_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook, or None: an http(s) URL of at most 500
    characters, not to a private, loopback or link-local address."""
    if not url:
        return "A URL is required."
    problem = webhooks.url_problem(url)
    if problem is not None:
        return problem
    try:
        _URL(url)
    except ValidationError:
        return "Enter a valid http:// or https:// URL."
    return None


def secret_new() -> str:
    """A webhook secret, when none is given."""
    return secrets.token_urlsafe(32)


def _webhook_fields(*, url: str, secret: str, format: str) -> tuple[str, str, str]:
    url, secret = url.strip(), secret.strip()
    errors: dict[str, str] = {}
    problem = webhook_url_problem(url)
    if problem is not None:
        errors["url"] = problem
    if len(secret) > SECRET_MAX:
        errors["secret"] = f"At most {SECRET_MAX} characters."
    if format not in WebhookFormat.values:
        errors["format"] = "Choose json or slack."
    if errors:
        raise ValidationError(errors)
    return url, secret or secret_new(), format


def _address(email: str) -> str:
    address = BaseUserManager.normalize_email(email.strip())
    try:
        if len(address) > 254:
            raise ValidationError("too long")
        validate_email(address)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid email address."}) from None
    return address


def _within(*limits: tuple[str, str]) -> bool:
    """Count a hit on each ``(key, rate)``: True when all are within their rate."""
    return all(ratelimit.hit_many([(key, *ratelimit.parse_rate(rate)) for key, rate in limits]))


def _address_limit(address: str) -> tuple[str, str]:
    """Confirmation mails (or public webhook tests) to one address."""
    return f"notify:address:{address.casefold()}", settings.NOTIFY_CONFIRM_RATE_PER_ADDRESS


def _client_limit(client_address: str | None) -> tuple[str, str]:
    """Public subscriptions asked for from one client address."""
    return f"notify:client:{client_address or '-'}", settings.NOTIFY_SUBSCRIBE_RATE_PER_IP


def _send(message: EmailMultiAlternatives) -> bool:
    try:
        message.send(fail_silently=False)
    except Exception:  # SMTP refusals and network errors alike: logged, never shown
        logger.exception("a subscription email was not sent")
        return False
    return True


def _person(by: Any) -> Any:
    return by if by is not None and getattr(by, "is_authenticated", False) else None


def _open_tailnet(tailnet: Tailnet) -> None:
    """Lock the tailnet's row (its caps are counted under it) and refuse a deleted one."""
    deleted = list(
        Tailnet.objects.select_for_update()
        .filter(pk=tailnet.pk)
        .values_list("deleted_at", flat=True)
    )
    if not deleted or deleted[0] is not None:
        raise ValidationError(
            f"{tailnet.display_name} was deleted: it hears about nothing more.", code="deleted"
        )


def _within_cap(tailnet: Tailnet, channel: str) -> None:
    cap, what = (
        (settings.NOTIFY_TAILNET_WEBHOOKS_MAX, "webhooks")
        if channel == Channel.WEBHOOK
        else (settings.NOTIFY_TAILNET_RECIPIENTS_MAX, "email recipients")
    )
    if Subscription.objects.filter(tailnet=tailnet, channel=channel).count() >= cap:
        raise ValidationError(
            f"{tailnet.display_name} has {cap} {what}, the most a tailnet may have. "
            "Remove one first.",
            code="limit",
        )


# --- Public subscribers ------------------------------------------------------------------------


def subscription_create_public(
    *, email: str, components: Iterable[Component] = (), client_address: str | None
) -> Subscription | None:
    """Subscribe ``email`` to the whole page (no components) or to ``components``.

    A new address, one not confirmed yet, or one that unsubscribed gets the
    confirmation link (for this choice of components) and hears nothing else until
    it is used; a confirmed address is changed in no way and told so by mail, with
    its link to change what it hears. Past ``NOTIFY_CONFIRM_RATE_PER_ADDRESS`` mails
    to the address or ``NOTIFY_SUBSCRIBE_RATE_PER_IP`` requests from the client,
    nothing is written or sent (None). The asker learns none of this."""
    address = _address(email)
    chosen = list(components)
    if not _within(_address_limit(address), _client_limit(client_address)):
        return None
    try:
        with transaction.atomic():
            subscription = (
                Subscription.objects.select_for_update()
                .filter(channel=Channel.EMAIL, tailnet__isnull=True, email__iexact=address)
                .first()
            )
            already = (
                subscription is not None
                and subscription.active
                and subscription.confirmed_at is not None
            )
            if subscription is None:
                subscription = Subscription.objects.create(channel=Channel.EMAIL, email=address)
                subscription.components.set(chosen)
            elif not already:
                _reopen(subscription, confirmed_at=None)
                subscription.components.set(chosen)
    except IntegrityError:  # the same address, asked twice at once: the other one mails
        return None
    _send(
        emails.subscribed_email(subscription)
        if already
        else emails.confirmation_email(subscription)
    )
    return subscription


def _reopen(subscription: Subscription, *, confirmed_at: Any) -> None:
    subscription.active = True
    subscription.confirmed_at = confirmed_at
    subscription.disabled_reason = ""
    subscription.failing_since = None
    subscription.save(update_fields=["active", "confirmed_at", "disabled_reason", "failing_since"])


def webhook_create_public(
    *,
    url: str,
    secret: str = "",
    format: str = WebhookFormat.JSON,
    components: Iterable[Component] = (),
    client_address: str | None,
) -> tuple[Subscription, delivery.Result]:
    """A public webhook (the whole page, or ``components``), and the test delivery
    that confirms it when answered 2xx; until one is, it hears nothing. Its secret is
    generated when not given. Limited per client address and per URL."""
    url, secret, format = _webhook_fields(url=url, secret=secret, format=format)
    chosen = list(components)
    if not _within(_client_limit(client_address), _address_limit(url)):
        raise ValidationError(TOO_MANY_SUBSCRIPTIONS, code="rate_limited")
    with transaction.atomic():
        subscription = Subscription.objects.create(
            channel=Channel.WEBHOOK, url=url, secret=secret, format=format
        )
        subscription.components.set(chosen)
    return subscription, _test(subscription)


def components_set(*, subscription: Subscription, components: Iterable[Component]) -> Subscription:
    """What a public subscriber hears about: ``components`` (none: the whole page)."""
    if not subscription.is_public:
        raise ValidationError(
            "A tailnet's recipients hear about its own incidents, not chosen components.",
            code="tailnet",
        )
    with transaction.atomic():
        subscription.components.set(list(components))
    return subscription


# --- A tailnet's recipients and webhooks -------------------------------------------------------


def recipient_add(*, tailnet: Tailnet, email: str, by: Any = None) -> Subscription:
    """Add an email recipient of ``tailnet``'s notifications. A member's address is
    confirmed at once; any other gets the confirmation link and hears nothing until
    it is used. At most ``NOTIFY_TAILNET_RECIPIENTS_MAX`` per tailnet."""
    address = _address(email)
    member = Membership.objects.filter(tailnet=tailnet, user__email__iexact=address).exists()
    with transaction.atomic():
        _open_tailnet(tailnet)
        subscription = (
            Subscription.objects.select_for_update()
            .filter(channel=Channel.EMAIL, tailnet=tailnet, email__iexact=address)
            .first()
        )
        if subscription is not None and subscription.active:
            raise ValidationError(
                {"email": f"{subscription.email} is already a recipient of {tailnet.display_name}."}
            )
        if subscription is None:
            _within_cap(tailnet, Channel.EMAIL)
        if not member and not _within(_address_limit(address)):
            raise ValidationError(
                {
                    "email": "Too many confirmation emails went to this address in the last "
                    "hour. Please try again later."
                },
                code="rate_limited",
            )
        confirmed_at = timezone.now() if member else None
        if subscription is None:
            subscription = Subscription.objects.create(
                channel=Channel.EMAIL,
                tailnet=tailnet,
                email=address,
                confirmed_at=confirmed_at,
                created_by=_person(by),
            )
        else:  # it had unsubscribed: asked again
            _reopen(subscription, confirmed_at=confirmed_at)
    if not member:
        _send(emails.confirmation_email(subscription, added_by=_person(by)))
    return subscription


def webhook_create(
    *,
    tailnet: Tailnet,
    url: str,
    secret: str = "",
    format: str = WebhookFormat.JSON,
    by: Any = None,
) -> Subscription:
    """A webhook of ``tailnet``, confirmed at once (its own managers made it); its
    secret is generated when not given. At most ``NOTIFY_TAILNET_WEBHOOKS_MAX``."""
    url, secret, format = _webhook_fields(url=url, secret=secret, format=format)
    with transaction.atomic():
        _open_tailnet(tailnet)
        _within_cap(tailnet, Channel.WEBHOOK)
        return Subscription.objects.create(
            channel=Channel.WEBHOOK,
            tailnet=tailnet,
            url=url,
            secret=secret,
            format=format,
            confirmed_at=timezone.now(),
            created_by=_person(by),
        )


def webhook_enable(*, subscription: Subscription) -> Subscription:
    """Turn a webhook on again (it was turned off for failing, or unsubscribed)."""
    if subscription.channel != Channel.WEBHOOK:
        raise ValidationError(
            "Only a webhook is turned on again here; an email address subscribes again.",
            code="channel",
        )
    if not subscription.active:
        with transaction.atomic():
            _reopen(subscription, confirmed_at=subscription.confirmed_at)
    return subscription


# --- Any subscription ----------------------------------------------------------------------------


def subscription_test(*, subscription: Subscription) -> delivery.Result:
    """Send a test delivery now and say how it went (``NOTIFY_TEST_RATE`` per
    subscription). An address that has not confirmed is sent nothing, tests
    included; a public webhook is confirmed by a test answered 2xx."""
    if subscription.channel == Channel.EMAIL and subscription.confirmed_at is None:
        raise ValidationError(
            f"{subscription.email} has not confirmed yet: nothing is sent to it, tests "
            "included, until it uses the link it was sent.",
            code="unconfirmed",
        )
    if not _within((f"notify:test:{subscription.pk}", settings.NOTIFY_TEST_RATE)):
        raise ValidationError(
            "Too many tests of this subscription in the last hour. Please try again later.",
            code="rate_limited",
        )
    return _test(subscription)


def _test(subscription: Subscription) -> delivery.Result:
    result = delivery.test_send(subscription)
    if result.ok and subscription.confirmed_at is None:
        subscription_confirm(subscription=subscription)
    return result


def subscription_remove(*, subscription: Subscription) -> None:
    """Delete a subscription and what it was owed (nothing more is sent to it)."""
    with transaction.atomic():
        subscription.delete()


def subscription_confirm(*, subscription: Subscription) -> Subscription:
    """Confirm a subscription (its link was used). Confirming twice changes nothing;
    an unsubscribed address stays unsubscribed."""
    if subscription.confirmed_at is None:
        subscription.confirmed_at = timezone.now()
        Subscription.objects.filter(pk=subscription.pk, confirmed_at__isnull=True).update(
            confirmed_at=subscription.confirmed_at
        )
    return subscription


def subscription_unsubscribe(*, subscription: Subscription) -> Subscription:
    """Stop everything to this subscription, at once: what it is still owed is
    skipped. Kept (inactive), so the address can be told it is unsubscribed."""
    with transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(
            active=False, disabled_reason="Unsubscribed."
        )
        Delivery.objects.filter(subscription=subscription, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.SKIPPED
        )
    subscription.active = False
    subscription.disabled_reason = "Unsubscribed."
    return subscription
