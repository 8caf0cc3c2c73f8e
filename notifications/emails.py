"""Notification emails: multipart text and HTML, the tailnet's name in the subject,
and a one-click unsubscribe link in the message and in the ``List-Unsubscribe`` /
``List-Unsubscribe-Post`` headers (RFC 8058)."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from . import links
from .messages import Notice


def email_for(notice: Notice) -> EmailMultiAlternatives:
    subscription = notice.delivery.subscription
    unsubscribe = links.unsubscribe_url(subscription.pk)
    context = {
        "notice": notice,
        "unsubscribe_url": unsubscribe,
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
