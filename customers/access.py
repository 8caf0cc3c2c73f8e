"""The one door to a tailnet for customers.

Every customer page and endpoint under ``/t/`` and ``/api/v1/tailnets/`` gets its
tailnet here and nowhere else. Whoever is not a member (nor holds that tailnet's API
token) gets ``Http404``, the same as for a tailnet that does not exist: no page,
count or error message can tell the two apart. Staff are not let in here; they see
every tailnet through the admin.
"""

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.handlers.exception import response_for_exception
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils.cache import add_never_cache_headers

from incidents.models import Tailnet
from plumbing.cache import Columns, cached, forget
from plumbing.models import ApiToken

from .models import Membership

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TailnetAccess:
    tailnet: Tailnet
    # Exactly one of the two: a signed-in member, or the tailnet's API token.
    membership: Membership | None = None
    token: ApiToken | None = None

    @property
    def can_manage(self) -> bool:
        """Owners and admins manage members and tokens; a token only reads."""
        return self.membership is not None and self.membership.can_manage


def tailnet_access(*, user: Any, slug: str, auth: Any = None) -> TailnetAccess:
    """The tailnet ``slug`` as ``user`` (or the bearer token ``auth``) may see it.

    Raises ``Http404`` for an unknown slug and for a tailnet this person or token
    may not see, alike. DRF turns ``Http404`` into its own 404 response.
    """
    if isinstance(auth, ApiToken):
        if auth.scope == ApiToken.Scope.TAILNET and auth.revoked_at is None and auth.tailnet_id:
            tailnet = auth.tailnet  # loaded with the token (plumbing.tokens)
            if tailnet is not None and tailnet.slug == slug:
                return TailnetAccess(tailnet=tailnet, token=auth)
        raise Http404
    if user is None or not user.is_authenticated:
        raise Http404
    membership = _membership(user=user, slug=slug)
    if membership is None:
        raise Http404
    return TailnetAccess(tailnet=membership.tailnet, membership=membership)


# --- A person's memberships, cached ---------------------------------------------
#
# Every page a member loads asks the door; during an incident every member of every
# affected tailnet reloads at once. So a person's memberships (with their tailnets) are
# cached for at most ACCOUNT_CACHE_SECONDS and forgotten right away, and
# again after the commit, when any of them is saved or deleted (joining, a new role,
# removal) or one of their tailnets is announced as changed (``incidents.signals``): a
# removed member is out at their next request.
# Someone in very many tailnets is looked up in the database each time instead.

MEMBERSHIPS_KEPT_MAX = 100
_MEMBERSHIP = Columns(Membership)
_TAILNET = Columns(Tailnet)


def _memberships_key(user_id: Any) -> str:
    return f"customers:memberships:{_MEMBERSHIP.tag}{_TAILNET.tag}:{user_id}"


def _membership(*, user: Any, slug: str) -> Membership | None:
    def load() -> dict[str, Any] | bool:
        found = list(
            Membership.objects.select_related("tailnet")
            .filter(user=user)
            .order_by()[: MEMBERSHIPS_KEPT_MAX + 1]
        )
        if len(found) > MEMBERSHIPS_KEPT_MAX:
            return False  # too many to keep: ask the database each time
        return {m.tailnet.slug: (_MEMBERSHIP.row(m), _TAILNET.row(m.tailnet)) for m in found}

    rows = cached(_memberships_key(user.pk), load, timeout=settings.ACCOUNT_CACHE_SECONDS)
    if rows is False:
        return (
            Membership.objects.select_related("tailnet")
            .filter(user=user, tailnet__slug=slug)
            .first()
        )
    row = rows.get(slug) if isinstance(rows, dict) else None
    if row is None:
        return None
    membership: Membership = _MEMBERSHIP.instance(row[0])
    membership.tailnet = _TAILNET.instance(row[1])
    return membership


def memberships_changed(user_ids: Iterable[Any]) -> None:
    """Forget these people's cached memberships, now and once the transaction commits."""
    forget([_memberships_key(pk) for pk in set(user_ids)])


def _membership_row_changed(instance: Membership, **_: Any) -> None:
    memberships_changed([instance.user_id])


def _tailnets_changed(tailnet_ids: Iterable[Any], **_: Any) -> None:
    members = Membership.objects.filter(tailnet_id__in=list(tailnet_ids)).values_list(
        "user_id", flat=True
    )
    memberships_changed(members)


def connect_signals() -> None:
    from incidents import signals

    post_save.connect(_membership_row_changed, sender=Membership, dispatch_uid="access-save")
    post_delete.connect(_membership_row_changed, sender=Membership, dispatch_uid="access-delete")
    # A tailnet saved or deleted, or written in bulk by the fleet feed, is announced.
    signals.tailnet_data_changed.connect(_tailnets_changed, dispatch_uid="access-tailnets")


def member_tailnets(*, user: Any) -> QuerySet[Membership]:
    """The memberships of a signed-in person, with their tailnets, by name."""
    if user is None or not user.is_authenticated:
        return Membership.objects.none()
    return (
        Membership.objects.select_related("tailnet")
        .filter(user=user)
        .order_by("tailnet__display_name", "tailnet__slug")
    )


# --- The door for views -------------------------------------------------------------------

SAFE_METHODS = ("GET", "HEAD")
TailnetView = Callable[..., HttpResponse]


def private(response: HttpResponse) -> HttpResponse:
    """A customer response: never stored by a browser's or a shared cache."""
    add_never_cache_headers(response)  # max-age=0, no-cache, no-store, must-revalidate, private
    return response


# Longer than this, the way back after signing in is the page without its query string:
# Django refuses a redirect over 16,384 characters, and browsers cut URLs sooner.
SIGN_IN_NEXT_MAX = 2000


def sign_in_first(request: HttpRequest) -> HttpResponse:
    """To the sign-in page, and back to this page after it (private). A query string
    too long to carry is left behind rather than answering an error."""
    target = request.get_full_path()
    if len(target) > SIGN_IN_NEXT_MAX:
        target = request.path if len(request.path) <= SIGN_IN_NEXT_MAX else "/"
    return private(redirect_to_login(target))


def tailnet_view(methods: Sequence[str] = SAFE_METHODS) -> Callable[[TailnetView], TailnetView]:
    """Every page under ``/t/<slug>/`` is wrapped in this. In this order, the same
    for every slug, existing or not:

    1. anonymous: the login redirect;
    2. not a member (staff included: they use the admin): Django's own 404, the
       bytes of any unknown URL;
    3. a method the view does not take: 405.

    The view is called as ``view(request, access, *args)``; every response is private.
    """

    def decorate(view: TailnetView) -> TailnetView:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return sign_in_first(request)
            try:
                access = tailnet_access(user=request.user, slug=slug)
                if request.method not in methods:
                    response: HttpResponse = HttpResponseNotAllowed(methods)
                else:
                    response = view(request, access, *args, **kwargs)
            except Http404 as error:
                # Django's own 404 (handler404), so the bytes are those of any unknown URL.
                response = response_for_exception(request, error)
            return private(response)

        return wrapped

    return decorate
