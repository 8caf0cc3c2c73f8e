"""Who manages a tailnet's subscriptions. Who may see the tailnet at all is
``customers.access``'s business (the one door); this is the rule after it."""

from customers.access import TailnetAccess


def can_manage_subscriptions(access: TailnetAccess) -> bool:
    """Owners and admins, signed in, and the tailnet's own API token (its managers
    made it) add and remove recipients and webhooks; plain members only see them."""
    return access.token is not None or access.can_manage
