"""Links from messages, used without signing in: confirm, and unsubscribe in one
click. A GET only shows the page with its one button (mail scanners follow links;
RFC 8058 asks that a GET never unsubscribe); the POST acts. The unsubscribe POST is
also what mail clients send for ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``,
without a CSRF token: the signed link is its authority."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import links, services
from .models import Subscription


def _subscription(subscription_id: int | None) -> Subscription:
    found = None
    if subscription_id is not None:
        found = Subscription.objects.select_related("tailnet").filter(pk=subscription_id).first()
    if found is None:
        raise Http404("This link is not valid (or has expired).")
    return found


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    subscription = _subscription(links.confirmed_id(token))
    done = False
    if request.method == "POST":
        services.subscription_confirm(subscription=subscription)
        done = True
    return render(
        request,
        "notifications/confirm.html",
        {"subscription": subscription, "done": done or subscription.confirmed_at is not None},
    )


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    subscription = _subscription(links.unsubscribed_id(token))
    if request.method == "POST":
        services.subscription_unsubscribe(subscription=subscription)
    return render(
        request,
        "notifications/unsubscribe.html",
        {"subscription": subscription, "done": not subscription.active},
    )
