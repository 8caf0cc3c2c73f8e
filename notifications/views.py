"""Subscription pages.

- Links from messages, used without signing in: confirm, unsubscribe in one click,
  and (public subscribers) choose components. A GET only shows the page with its
  buttons (mail scanners follow links; RFC 8058 asks that a GET never unsubscribe);
  the POST acts. The unsubscribe POST is also what mail clients send for
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, without a CSRF token: the
  signed link is its authority, and it is the only view exempt from CSRF.
- ``/subscribe/``: anyone subscribes an address (the same "check your inbox" answer,
  whatever its state) or a webhook (confirmed by a test delivery).
- ``/t/<tailnet>/notifications/``: a tailnet's recipients and webhooks and what was
  sent to them; its owners and admins change them, members see them.

Thin: a form, a service, a query.
"""

from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseRedirect,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from customers.access import TailnetAccess, tailnet_view
from plumbing.params import whole_number

from . import links, queries, services
from .access import can_manage_subscriptions
from .delivery import Result
from .forms import (
    ComponentsForm,
    EmailSubscribeForm,
    RecipientForm,
    WebhookFields,
    WebhookSubscribeForm,
)
from .models import Channel, Subscription

WEBHOOK_AUTO_ID = "webhook_%s"


def _subscription(subscription_id: int | None) -> Subscription:
    found = None
    if subscription_id is not None:
        found = Subscription.objects.select_related("tailnet").filter(pk=subscription_id).first()
    if found is None:
        raise Http404("This link is not valid (or has expired).")
    return found


def _client(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")  # the visitor's, behind trusted proxies


def result_text(result: Result) -> str:
    """What a test delivery's result says to the person who sent it."""
    if result.ok:
        return f"Test delivered: answered {result.status}." if result.status else "Test sent."
    return f"Test not delivered: {result.error}"


# --- Links from messages ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    subscription = _subscription(links.confirmed_id(token))
    done = False
    if request.method == "POST":
        services.subscription_confirm(subscription=subscription)
        done = True
    manage_url = links.manage_url(subscription.pk) if subscription.is_public else ""
    return render(
        request,
        "notifications/confirm.html",
        {
            "subscription": subscription,
            "done": done or subscription.confirmed_at is not None,
            "manage_url": manage_url,
        },
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


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def manage(request: HttpRequest, token: str) -> HttpResponse:
    """A public subscription's own page: its components, and for a webhook a test
    (which confirms it when answered 2xx) and turning it on again."""
    subscription = _subscription(links.managed_id(token))
    if not subscription.is_public:
        raise Http404("This link is not valid (or has expired).")
    form = ComponentsForm(
        initial={"components": queries.subscription_components(subscription=subscription)}
    )
    context: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "components":
                form = ComponentsForm(request.POST)
                if not form.is_valid():
                    status = 400
                else:
                    services.components_set(
                        subscription=subscription, components=form.cleaned_data["components"]
                    )
                    context["saved"] = True
            elif action == "test":
                result = services.subscription_test(subscription=subscription)
                context.update(result=result_text(result), result_ok=result.ok)
            elif action == "enable":
                services.webhook_enable(subscription=subscription)
                context["enabled"] = True
            else:
                return HttpResponseBadRequest(
                    "Unknown action.\n", content_type="text/plain; charset=utf-8"
                )
        except ValidationError as error:
            context["problem"] = " ".join(error.messages)
            status = 429 if getattr(error, "code", None) == "rate_limited" else 400
    return _render_manage(request, subscription, form, context, status)


def _render_manage(
    request: HttpRequest,
    subscription: Subscription,
    form: ComponentsForm,
    context: dict[str, Any],
    status: int,
) -> HttpResponse:
    return render(
        request,
        "notifications/manage.html",
        {
            "subscription": subscription,
            "components": queries.subscription_components(subscription=subscription),
            "form": form,
            "manage_url": links.manage_url(subscription.pk),
            "manage_path": reverse(
                "notifications:manage", args=[links.manage_token(subscription.pk)]
            ),
            "unsubscribe_path": reverse(
                "notifications:unsubscribe", args=[links.unsubscribe_token(subscription.pk)]
            ),
            **context,
        },
        status=status,
    )


# --- Subscribing --------------------------------------------------------------------------------


def _render_subscribe(
    request: HttpRequest,
    *,
    email_form: EmailSubscribeForm | None = None,
    webhook_form: WebhookSubscribeForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "email_form": email_form or EmailSubscribeForm(),
        "webhook_form": webhook_form or WebhookSubscribeForm(auto_id=WEBHOOK_AUTO_ID),
        "nav": "subscribe",
    }
    return render(request, "notifications/subscribe.html", context, status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def subscribe(request: HttpRequest) -> HttpResponse:
    """Subscribe an email address. Whatever its state (new, waiting for its
    confirmation, subscribed, unsubscribed, or over a rate limit), the answer is the
    same redirect to "check your inbox"."""
    if request.method != "POST":
        return _render_subscribe(request)
    form = EmailSubscribeForm(request.POST)
    if form.is_valid():
        try:
            services.subscription_create_public(
                email=form.cleaned_data["email"],
                components=form.cleaned_data["components"],
                client_address=_client(request),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            # 303: the browser GETs the answer, so reloading it never asks again.
            sent = HttpResponseRedirect(reverse("notifications:subscribe_sent"))
            sent.status_code = 303
            return sent
    return _render_subscribe(request, email_form=form, status=400)


@never_cache
@require_safe
def subscribe_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "notifications/subscribe_sent.html", {"nav": "subscribe"})


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def subscribe_webhook(request: HttpRequest) -> HttpResponse:
    """Subscribe a webhook: created unconfirmed, and sent a test at once; the answer
    shows its secret (this once), the test's result and its own page's link."""
    if request.method != "POST":
        return redirect(reverse("notifications:subscribe") + "#webhook")
    form = WebhookSubscribeForm(request.POST, auto_id=WEBHOOK_AUTO_ID)
    status = 400
    if form.is_valid():
        try:
            subscription, result = services.webhook_create_public(
                url=form.cleaned_data["url"],
                secret=form.cleaned_data["secret"],
                format=form.cleaned_data["format"],
                components=form.cleaned_data["components"],
                client_address=_client(request),
            )
        except ValidationError as error:
            form.add_error(None, error)
            if getattr(error, "code", None) == "rate_limited":
                status = 429
        else:
            context = {
                "created": True,
                "secret": subscription.secret,
                "result": result_text(result),
                "result_ok": result.ok,
            }
            chosen = ComponentsForm(initial={"components": form.cleaned_data["components"]})
            return _render_manage(request, subscription, chosen, context, 201)
    return _render_subscribe(request, webhook_form=form, status=status)


# --- A tailnet's recipients and webhooks ---------------------------------------------------------


def _shown_url(url: str, *, full: bool) -> str:
    """A webhook's URL as the page shows it: whole to its managers; to members only
    its host (a Slack webhook's URL is itself the key to post to the channel)."""
    if full:
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


def _render_tailnet(
    request: HttpRequest,
    access: TailnetAccess,
    *,
    recipient_form: RecipientForm | None = None,
    webhook_form: WebhookFields | None = None,
    created: Subscription | None = None,
    status: int = 200,
) -> HttpResponse:
    tailnet = access.tailnet
    manage = can_manage_subscriptions(access)
    failed_only = request.GET.get("deliveries") == "failed"
    subscriptions = queries.tailnet_subscriptions(tailnet=tailnet)
    shown = {s.pk: _shown_url(s.url, full=manage) for s in subscriptions if s.url}
    deliveries = queries.tailnet_deliveries(tailnet=tailnet, failed_only=failed_only)
    context = {
        "tailnet": tailnet,
        "manage": manage,
        "recipients": [s for s in subscriptions if s.channel == Channel.EMAIL],
        "webhooks": [(s, shown[s.pk]) for s in subscriptions if s.channel == Channel.WEBHOOK],
        "deliveries": [(d, shown.get(d.subscription_id, "")) for d in deliveries],
        "counts": queries.tailnet_delivery_counts(tailnet=tailnet),
        "failed_only": failed_only,
        "recipient_form": recipient_form or RecipientForm(auto_id="recipient_%s"),
        "webhook_form": webhook_form or WebhookFields(auto_id=WEBHOOK_AUTO_ID),
        "created": created,
        "nav": "tailnets",
    }
    return render(request, "notifications/tailnet.html", context, status=status)


def _own(access: TailnetAccess, raw: str | None) -> Subscription:
    """One of this tailnet's subscriptions, by the id a form sent; 404 otherwise."""
    found = None
    pk = whole_number(raw)
    if pk is not None:
        found = Subscription.objects.filter(tailnet=access.tailnet, pk=pk).first()
    if found is None:
        raise Http404
    return found


@tailnet_view(methods=("GET", "HEAD", "POST"))
def tailnet_subscriptions(request: HttpRequest, access: TailnetAccess) -> HttpResponse:
    """The tailnet's recipients and webhooks, their tests and recent deliveries."""
    if request.method != "POST":
        return _render_tailnet(request, access)
    if not can_manage_subscriptions(access):
        return HttpResponseForbidden(
            "Only the tailnet's owners and admins can change its notifications.\n",
            content_type="text/plain; charset=utf-8",
        )
    tailnet = access.tailnet
    here = reverse("notifications:tailnet", args=[tailnet.slug])
    action = request.POST.get("action")
    if action == "add_email":
        form = RecipientForm(request.POST, auto_id="recipient_%s")
        if form.is_valid():
            try:
                added = services.recipient_add(
                    tailnet=tailnet, email=form.cleaned_data["email"], by=request.user
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(
                    request,
                    f"{added.email} will hear about incidents that affect {tailnet.display_name}."
                    if added.confirmed_at
                    else f"We sent {added.email} a link to confirm: it hears nothing until "
                    "it is used.",
                )
                return redirect(here)
        return _render_tailnet(request, access, recipient_form=form, status=400)
    if action == "add_webhook":
        hook_form = WebhookFields(request.POST, auto_id=WEBHOOK_AUTO_ID)
        if hook_form.is_valid():
            try:
                created = services.webhook_create(
                    tailnet=tailnet,
                    url=hook_form.cleaned_data["url"],
                    secret=hook_form.cleaned_data["secret"],
                    format=hook_form.cleaned_data["format"],
                    by=request.user,
                )
            except ValidationError as error:
                hook_form.add_error(None, error)
            else:
                return _render_tailnet(request, access, created=created, status=201)
        return _render_tailnet(request, access, webhook_form=hook_form, status=400)
    if action not in ("remove", "test", "enable"):
        return HttpResponseBadRequest(
            "Unknown action: expected add_email, add_webhook, remove, test or enable.\n",
            content_type="text/plain; charset=utf-8",
        )
    subscription = _own(access, request.POST.get("subscription"))
    name = subscription.email or subscription.url
    try:
        if action == "remove":
            services.subscription_remove(subscription=subscription)
            messages.success(request, f"{name} removed: nothing more is sent to it.")
        elif action == "enable":
            services.webhook_enable(subscription=subscription)
            messages.success(request, f"{name} is on again.")
        else:
            result = services.subscription_test(subscription=subscription)
            level = messages.SUCCESS if result.ok else messages.ERROR
            messages.add_message(request, level, f"{name}: {result_text(result)}")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect(here)
