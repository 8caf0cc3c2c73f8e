"""Emails: notifications (multipart text and HTML, the tailnet's name in the subject,
a one-click unsubscribe link in the message and in the ``List-Unsubscribe`` /
``List-Unsubscribe-Post`` headers (RFC 8058), and for a public subscriber the link
that changes its components), and the confirmation an address gets before anything
else is sent to it."""

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from . import links
from .messages import Notice
from .models import Subscription


def email_for(notice: Notice) -> EmailMultiAlternatives:
    subscription = notice.delivery.subscription
    unsubscribe = links.unsubscribe_url(subscription.pk)
    context = {
        "notice": notice,
        "unsubscribe_url": unsubscribe,
        "manage_url": links.manage_url(subscription.pk) if subscription.is_public else "",
        "page_name": settings.STATUSPAGE_NAME,
        "delivery_id": str(notice.delivery.pk),
    }
    message = EmailMultiAlternatives(
        subject=notice.subject.replace("\n", " ")[:200],
        body=render_to_string("notifications/email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscription.email],
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Statuspage-Delivery": str(notice.delivery.pk),
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(render_to_string("notifications/email.html", context), "text/html")
    return message


def confirmation_email(
    subscription: Subscription, *, added_by: Any = None
) -> EmailMultiAlternatives:
    """The double opt-in message: nothing else is sent to the address until its link
    is used. ``added_by``: the tailnet manager who added the address."""
    page = settings.STATUSPAGE_NAME
    tailnet = subscription.tailnet
    subject = (
        f"[{page}] Confirm notifications about {tailnet.display_name}"
        if tailnet is not None
        else f"[{page}] Confirm your subscription"
    )
    context = {
        "subscription": subscription,
        "tailnet": tailnet,
        "added_by": added_by.get_username() if added_by is not None else "",
        "components": list(subscription.components.all()) if tailnet is None else [],
        "confirm_url": links.confirm_url(subscription.pk),
        "page_name": page,
    }
    return _email(subscription, subject, "confirm_email", context)


def subscribed_email(subscription: Subscription) -> EmailMultiAlternatives:
    """For an address that asked to subscribe again while it already is: how to change
    what it hears about, or stop (the page that was asked says the same as for a new
    address, so only the address's owner learns it was subscribed)."""
    page = settings.STATUSPAGE_NAME
    context = {
        "subscription": subscription,
        "components": list(subscription.components.all()),
        "manage_url": links.manage_url(subscription.pk),
        "unsubscribe_url": links.unsubscribe_url(subscription.pk),
        "page_name": page,
    }
    return _email(subscription, f"[{page}] You are already subscribed", "subscribed_email", context)


def _email(
    subscription: Subscription, subject: str, template: str, context: dict[str, Any]
) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject.replace("\n", " ")[:200],
        body=render_to_string(f"notifications/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscription.email],
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(
        render_to_string(f"notifications/{template}.html", context), "text/html"
    )
    return message
