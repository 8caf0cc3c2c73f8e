"""The one door to a tailnet for customers.

Every customer page and endpoint under ``/t/`` and ``/api/v1/tailnets/`` gets its
tailnet here and nowhere else. Whoever is not a member (nor holds that tailnet's API
token) gets ``Http404``, the same as for a tailnet that does not exist: no page,
count or error message can tell the two apart. Staff are not let in here; they see
every tailnet through the admin.
"""

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from incidents.models import ApiToken, Tailnet

from .models import Membership


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
        if auth.scope == ApiToken.Scope.TAILNET and auth.revoked_at is None:
            tailnet = Tailnet.objects.filter(pk=auth.tailnet_id, slug=slug).first()
            if tailnet is not None:
                return TailnetAccess(tailnet=tailnet, token=auth)
        raise Http404
    if user is None or not user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("tailnet").filter(user=user, tailnet__slug=slug).first()
    )
    if membership is None:
        raise Http404
    return TailnetAccess(tailnet=membership.tailnet, membership=membership)


def member_tailnets(*, user: Any) -> QuerySet[Membership]:
    """The memberships of a signed-in person, with their tailnets, by name."""
    if user is None or not user.is_authenticated:
        return Membership.objects.none()
    return (
        Membership.objects.select_related("tailnet")
        .filter(user=user)
        .order_by("tailnet__display_name", "tailnet__slug")
    )
