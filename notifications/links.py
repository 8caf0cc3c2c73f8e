"""Links in messages that act without signing in: confirm a subscription, unsubscribe
in one click, change a public subscription's components. Signed (Django's signing,
salted per purpose), never stored: nothing to leak from the database, and a link
names one subscription only."""

from django.core import signing
from django.urls import reverse

from plumbing.site import absolute

CONFIRM_SALT = "notifications.confirm"
UNSUBSCRIBE_SALT = "notifications.unsubscribe"
MANAGE_SALT = "notifications.manage"
CONFIRM_MAX_AGE = 7 * 24 * 3600  # a confirmation link works for a week


def confirm_token(subscription_id: int) -> str:
    return signing.dumps(subscription_id, salt=CONFIRM_SALT, compress=True)


def unsubscribe_token(subscription_id: int) -> str:
    return signing.dumps(subscription_id, salt=UNSUBSCRIBE_SALT, compress=True)


def manage_token(subscription_id: int) -> str:
    return signing.dumps(subscription_id, salt=MANAGE_SALT, compress=True)


def confirmed_id(token: str) -> int | None:
    """The subscription a confirmation link names, or None (bad, or over a week old)."""
    try:
        return int(signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE))
    except (signing.BadSignature, TypeError, ValueError):
        return None


def unsubscribed_id(token: str) -> int | None:
    """The subscription an unsubscribe link names (it never expires), or None."""
    try:
        return int(signing.loads(token, salt=UNSUBSCRIBE_SALT))
    except (signing.BadSignature, TypeError, ValueError):
        return None


def managed_id(token: str) -> int | None:
    """The subscription a manage link names (it never expires, as it is in every
    message), or None."""
    try:
        return int(signing.loads(token, salt=MANAGE_SALT))
    except (signing.BadSignature, TypeError, ValueError):
        return None


def confirm_url(subscription_id: int) -> str:
    return absolute(
        reverse("notifications:confirm", kwargs={"token": confirm_token(subscription_id)})
    )


def unsubscribe_url(subscription_id: int) -> str:
    return absolute(
        reverse("notifications:unsubscribe", kwargs={"token": unsubscribe_token(subscription_id)})
    )


def manage_url(subscription_id: int) -> str:
    return absolute(
        reverse("notifications:manage", kwargs={"token": manage_token(subscription_id)})
    )
