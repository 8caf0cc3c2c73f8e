"""What the subscription pages read: a tailnet's subscriptions and its recent
deliveries, the components a public subscriber chooses from. A constant number of
queries each."""

from django.db.models import Count, Q

from incidents.models import Component, Tailnet

from .models import Delivery, DeliveryStatus, Subscription

RECENT_DELIVERIES = 50


def tailnet_subscriptions(*, tailnet: Tailnet) -> list[Subscription]:
    """The tailnet's recipients and webhooks (emails first), with who added them."""
    return list(
        Subscription.objects.filter(tailnet=tailnet)
        .select_related("created_by")
        .order_by("channel", "created_at", "id")
    )


def tailnet_deliveries(
    *, tailnet: Tailnet, failed_only: bool = False, limit: int = RECENT_DELIVERIES
) -> list[Delivery]:
    """The tailnet's latest deliveries (tests included), newest first."""
    rows = Delivery.objects.filter(tailnet=tailnet)
    if failed_only:
        rows = rows.filter(status=DeliveryStatus.FAILED)
    return list(rows.select_related("subscription", "incident").order_by("-created_at")[:limit])


def tailnet_delivery_counts(*, tailnet: Tailnet) -> dict[str, int]:
    """How many of the tailnet's deliveries are failed and pending (retrying)."""
    return Delivery.objects.filter(tailnet=tailnet).aggregate(
        failed=Count("pk", filter=Q(status=DeliveryStatus.FAILED)),
        pending=Count("pk", filter=Q(status=DeliveryStatus.PENDING)),
    )


def public_components() -> list[Component]:
    """What a public subscriber may choose, in the status page's order."""
    return list(Component.objects.select_related("group"))


def subscription_components(*, subscription: Subscription) -> list[Component]:
    return list(subscription.components.select_related("group"))
