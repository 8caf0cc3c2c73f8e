"""The members page of a tailnet, and the page that accepts an invitation.

Every tailnet view lets the person in through ``customers.access.tailnet_access``
before it looks at the method or the form, so whoever is not a member gets the
same 404 for every URL and method as for a tailnet that does not exist. The rules
(who may invite, remove, change roles) are in ``customers.services``.
"""

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth.views import PasswordChangeView, PasswordResetView
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from plumbing import ratelimit

from . import services
from .access import TailnetAccess, private, sign_in_first, tailnet_view
from .forms import (
    InvitedAccountForm,
    InviteForm,
    LimitedPasswordChangeForm,
    RateLimitedPasswordResetForm,
    RoleForm,
)
from .models import Invitation, Membership, Role

# Invitation emails one tailnet may send per hour (a stolen admin session must not
# turn the page into a mail cannon).
INVITES_PER_HOUR = 30


class RateLimitedPasswordResetView(PasswordResetView):
    form_class = RateLimitedPasswordResetForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


password_reset = RateLimitedPasswordResetView.as_view()


class LimitedPasswordChangeView(PasswordChangeView):
    form_class = LimitedPasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


password_change = LimitedPasswordChangeView.as_view()


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    is_you: bool
    can_remove: bool
    role_form: RoleForm | None


def _members_url(slug: str) -> str:
    return reverse("members:list", args=[slug])


def _tailnet_url(slug: str) -> str:
    return reverse("customers:tailnet", args=[slug])


def _memberships(access: TailnetAccess) -> QuerySet[Membership]:
    rank = Case(
        When(role=Role.OWNER, then=Value(0)),
        When(role=Role.ADMIN, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return (
        Membership.objects.filter(tailnet=access.tailnet)
        .select_related("user")
        .order_by(rank, "user__username")
    )


def _rows(you: Membership, memberships: QuerySet[Membership]) -> list[MemberRow]:
    """What ``you`` may do to each member (the services decide again on POST)."""
    rows = []
    for membership in memberships:
        is_you = membership.pk == you.pk
        may_manage = you.can_manage and (you.role == Role.OWNER or membership.role != Role.OWNER)
        role_form = None
        if may_manage:
            role_form = RoleForm(
                initial={"role": membership.role},
                include_owner=you.role == Role.OWNER,
                prefix=f"m{membership.pk}",
            )
        rows.append(
            MemberRow(
                membership=membership,
                is_you=is_you,
                can_remove=is_you or may_manage,
                role_form=role_form,
            )
        )
    return rows


def _you(access: TailnetAccess) -> Membership:
    if access.membership is None:  # a token: pages are for people
        raise Http404
    return access.membership


def _render_members(
    request: HttpRequest, access: TailnetAccess, *, invite_form: InviteForm | None = None
) -> HttpResponse:
    you = _you(access)
    pending: QuerySet[Invitation] | None = None
    if you.can_manage:
        invite_form = invite_form or InviteForm(can_invite_owner=you.role == Role.OWNER)
        pending = (
            Invitation.objects.filter(
                tailnet=access.tailnet,
                accepted_at__isnull=True,
                revoked_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
            .select_related("invited_by")
            .order_by("-created_at")
        )
    else:
        invite_form = None
    context = {
        "tailnet": access.tailnet,
        "you": you,
        "rows": _rows(you, _memberships(access)),
        "invite_form": invite_form,
        "pending": pending,
        "tailnet_url": _tailnet_url(access.tailnet.slug),
        "nav": "tailnets",
    }
    status = 400 if invite_form is not None and invite_form.errors else 200
    return render(request, "customers/members.html", context, status=status)


@tailnet_view(("GET", "HEAD"))
def members(request: HttpRequest, access: TailnetAccess) -> HttpResponse:
    """Who is in this tailnet; owners and admins also invite and remove here."""
    return _render_members(request, access)


@tailnet_view(("POST",))
def invite(request: HttpRequest, access: TailnetAccess) -> HttpResponse:
    you = _you(access)
    if not you.can_manage:
        messages.error(request, "Only owners and admins can invite people.")
        return redirect(_members_url(access.tailnet.slug))
    form = InviteForm(request.POST, can_invite_owner=you.role == Role.OWNER)
    if form.is_valid():
        if not ratelimit.hit(f"invite:{access.tailnet.pk}", INVITES_PER_HOUR, 3600):
            form.add_error(
                None,
                f"This tailnet has sent {INVITES_PER_HOUR} invitations in the last hour. "
                "Please try again later.",
            )
        else:
            try:
                invitation, _secret = services.membership_invite(
                    tailnet=access.tailnet,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    by=request.user,
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(
                    request,
                    f"Invitation sent to {invitation.email} as "
                    f"{invitation.get_role_display().lower()}. The link works once, until "
                    f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC.",
                )
                return redirect(_members_url(access.tailnet.slug))
    return _render_members(request, access, invite_form=form)


@tailnet_view(("POST",))
def remove(request: HttpRequest, access: TailnetAccess, pk: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=pk, tailnet=access.tailnet
    )
    leaving = membership.user_id == request.user.pk
    try:
        services.membership_remove(tailnet=access.tailnet, membership=membership, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(_members_url(access.tailnet.slug))
    if leaving:
        messages.success(request, f"You have left {access.tailnet.display_name}.")
        return redirect(resolve_url(settings.LOGIN_REDIRECT_URL))
    messages.success(
        request,
        f"{membership.user.get_username()} is no longer a member of {access.tailnet.display_name}.",
    )
    return redirect(_members_url(access.tailnet.slug))


@tailnet_view(("POST",))
def change_role(request: HttpRequest, access: TailnetAccess, pk: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=pk, tailnet=access.tailnet
    )
    form = RoleForm(request.POST, include_owner=True, prefix=f"m{membership.pk}")
    if not form.is_valid():
        messages.error(request, "Choose a role: owner, admin or member.")
        return redirect(_members_url(access.tailnet.slug))
    try:
        changed = services.membership_set_role(
            tailnet=access.tailnet,
            membership=membership,
            role=form.cleaned_data["role"],
            by=request.user,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            f"{changed.user.get_username()} is now {_article(changed.get_role_display())}.",
        )
    return redirect(_members_url(access.tailnet.slug))


@tailnet_view(("POST",))
def revoke(request: HttpRequest, access: TailnetAccess, pk: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation, pk=pk, tailnet=access.tailnet)
    try:
        services.invitation_revoke(tailnet=access.tailnet, invitation=invitation, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            f"The invitation to {invitation.email} was withdrawn; its link no longer works.",
        )
    return redirect(_members_url(access.tailnet.slug))


def accept(request: HttpRequest, secret: str) -> HttpResponse:
    """An invitation link: says what it is for (or why it can't be used); joining
    takes a POST, so a link preview or a prefetch never joins anyone."""
    if not request.user.is_authenticated:
        return sign_in_first(request)
    if request.method == "POST":
        try:
            membership = services.invitation_accept(secret=secret, user=request.user)
        except ValidationError:
            # The page says why, as it did before the click.
            return private(redirect(request.path))
        messages.success(
            request,
            f"Welcome to {membership.tailnet.display_name}: you are "
            f"{_article(membership.get_role_display())}.",
        )
        return private(redirect(_tailnet_url(membership.tailnet.slug)))
    if request.method not in ("GET", "HEAD"):
        return private(HttpResponseNotAllowed(["GET", "HEAD", "POST"]))
    invitation = (
        Invitation.objects.select_related("tailnet", "invited_by")
        .filter(digest=services.invitation_digest(secret))
        .first()
    )
    context: dict[str, Any] = {
        "invitation": invitation,
        "refusal": services.invitation_refusal(invitation, user=request.user, now=timezone.now()),
        "joined": invitation is not None and invitation.accepted_by_id == request.user.pk,
        "tailnet_url": _tailnet_url(invitation.tailnet.slug) if invitation else None,
    }
    status = 404 if invitation is None else 200
    return private(render(request, "customers/invite.html", context, status=status))


def accept_new_account(request: HttpRequest, secret: str) -> HttpResponse:
    """No account yet: the invitation link makes one for the invited address (the
    link went to that address) and joins the tailnet with it, in one step."""
    if request.user.is_authenticated:
        return private(redirect("members:accept", secret=secret))
    if request.method not in ("GET", "HEAD", "POST"):
        return private(HttpResponseNotAllowed(["GET", "HEAD", "POST"]))
    invitation = (
        Invitation.objects.select_related("tailnet", "invited_by")
        .filter(digest=services.invitation_digest(secret))
        .first()
    )
    refusal = services.invitation_refusal(invitation, now=timezone.now())
    if invitation is None or refusal is not None:
        refused = {"invitation": invitation, "refusal": refusal, "joined": False}
        status = 404 if invitation is None else 200
        return private(render(request, "customers/invite.html", refused, status=status))
    has_account = get_user_model().objects.filter(email__iexact=invitation.email).exists()
    form = InvitedAccountForm(
        request.POST if request.method == "POST" else None, email=invitation.email
    )
    if request.method == "POST" and not has_account and form.is_valid():
        try:
            membership = services.invitation_accept_new_account(
                secret=secret,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            auth_login(request, membership.user, backend=settings.AUTHENTICATION_BACKENDS[0])
            messages.success(
                request,
                f"Welcome to {membership.tailnet.display_name}: your account is ready and you "
                f"are {_article(membership.get_role_display())}.",
            )
            return private(redirect(_tailnet_url(membership.tailnet.slug)))
    context: dict[str, Any] = {
        "invitation": invitation,
        "form": form,
        "has_account": has_account,
        "login_url": resolve_url(settings.LOGIN_URL)
        + "?"
        + urlencode({"next": reverse("members:accept", args=[secret])}),
    }
    status = 400 if form.errors else 200
    return private(render(request, "customers/invite_account.html", context, status=status))


def _article(role: str) -> str:
    word = role.lower()
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"
