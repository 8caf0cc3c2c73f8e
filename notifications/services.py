"""Every write of subscriptions: confirm, unsubscribe (the rest of their life is
added with the pages that make them)."""

from django.db import transaction
from django.utils import timezone

from .models import Delivery, DeliveryStatus, Subscription


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
