"""Everything that changes who may see a tailnet: invitations, memberships, accounts
deactivated, and the API tokens that follow from them.

Each service checks that ``by`` may do what it asks (the views let a person in
through ``customers.access`` first; the rules live here, next to the writes),
writes in one transaction and raises ``ValidationError`` with a message meant for
the person who asked. A refused request writes nothing.
"""

import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from incidents.models import Tailnet
from plumbing.models import ApiToken
from plumbing.site import absolute
from plumbing.tokens import api_token_revoke

from .models import Invitation, Membership, Role

logger = logging.getLogger(__name__)

# Higher ranks include the lower ones; accepting an invitation never demotes.
_RANK = {Role.MEMBER: 0, Role.ADMIN: 1, Role.OWNER: 2}


def invitation_digest(secret: str) -> str:
    """What is stored of an invitation link's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationError(
            f"“{value}” is not a role; choose owner, admin or member.", code="role"
        ) from None


def _manager(*, tailnet: Tailnet, by: Any, action: str) -> Membership:
    """``by``'s membership of ``tailnet`` if they may manage its members."""
    membership = Membership.objects.filter(tailnet=tailnet, user_id=by.pk).first()
    if membership is None or not membership.can_manage:
        raise ValidationError(f"Only owners and admins can {action}.", code="forbidden")
    return membership


def _email_matches(user: Any, email: str) -> bool:
    return bool(user.email) and user.email.strip().casefold() == email.strip().casefold()


def invitation_refusal(
    invitation: Invitation | None, *, user: Any = None, now: datetime
) -> str | None:
    """Why ``user`` may not accept ``invitation`` now, in plain words; ``None`` if
    they may. Shared by the invitation pages (to explain before asking) and
    ``invitation_accept`` (which decides, under a lock). Without a ``user``: whether
    the link can still make a new account for the invited address."""
    if invitation is None:
        return (
            "This invitation link is not valid. Check that you opened the whole link "
            "from the email, or ask the person who invited you for a new one."
        )
    if invitation.revoked_at is not None:
        return (
            "This invitation was withdrawn by an owner or admin of the tailnet. "
            "Ask them to invite you again if you still need access."
        )
    if invitation.accepted_at is not None:
        if user is not None and invitation.accepted_by_id == user.pk:
            return "You have already accepted this invitation."
        return (
            "This invitation has already been used: each link works once. "
            "Ask the person who invited you for a new one."
        )
    if invitation.expires_at <= now:
        return (
            f"This invitation expired on {invitation.expires_at:%Y-%m-%d at %H:%M} UTC. "
            "Ask the person who invited you for a new one."
        )
    if user is not None and not _email_matches(user, invitation.email):
        yours = f"your account's address is {user.email}" if user.email else "it has no address"
        return (
            f"This invitation is for {invitation.email}, but you are signed in as "
            f"{user.get_username()} and {yours}. Sign in with the account for "
            f"{invitation.email}, or ask for an invitation to your own address."
        )
    return None


def membership_invite(
    *, tailnet: Tailnet, email: str, role: str, by: Any
) -> tuple[Invitation, str]:
    """Invite ``email`` to ``tailnet`` as ``role`` and email them a single-use link.

    Only owners and admins invite; only an owner invites owners. A pending
    invitation to the same address is replaced (its link stops working). The link
    is on the site's configured address (``plumbing.site``), never the request's
    host. If the email cannot be sent, the invitation is deleted again and a
    ``ValidationError`` says so. Returns the invitation and the link's secret,
    which is stored only as its SHA-256.
    """
    inviter = _manager(tailnet=tailnet, by=by, action="invite people")
    role = _role(role)
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError(f"“{email}” is not an email address.", code="email") from None
    if role == Role.OWNER and inviter.role != Role.OWNER:
        raise ValidationError("Only an owner can invite another owner.", code="forbidden")
    if Membership.objects.filter(tailnet=tailnet, user__email__iexact=email).exists():
        raise ValidationError(
            f"{email} is already a member of {tailnet.display_name}.", code="member"
        )

    now = timezone.now()
    secret = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tailnet=tailnet,
        email=email,
        role=role,
        digest=invitation_digest(secret),
        invited_by=by,
        created_at=now,
        expires_at=now + timedelta(hours=settings.INVITATION_TTL_HOURS),
    )

    link = absolute(reverse("members:accept", args=[secret]))
    context = {"invitation": invitation, "tailnet": tailnet, "inviter": by, "link": link}
    try:
        send_mail(
            # One line, whatever the tailnet's name holds (headers can't break lines).
            subject=" ".join(
                render_to_string("customers/invite_email_subject.txt", context).split()
            ),
            message=render_to_string("customers/invite_email.txt", context),
            from_email=None,
            recipient_list=[email],
        )
    except Exception:
        logger.exception("invitation email to the invitee of tailnet %s not sent", tailnet.slug)
        # No one can use a link that never arrived; leave nothing behind.
        invitation.delete()
        raise ValidationError(
            f"The invitation email to {email} could not be sent, so no invitation was "
            "made. Please try again in a few minutes.",
            code="email_failed",
        ) from None
    # The new link replaces any earlier one still pending for this address.
    Invitation.objects.filter(
        tailnet=tailnet, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).exclude(pk=invitation.pk).update(revoked_at=now)
    return invitation, secret


def invitation_accept(*, secret: str, user: Any) -> Membership:
    """Make ``user`` a member of the invitation's tailnet (or raise their role to
    the invited one; never lower it), once.

    The signed-in person's email must be the invited address (case-insensitive).
    Accepting an invitation one has already accepted returns the membership.
    """
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("tailnet")
            .filter(digest=invitation_digest(secret))
            .first()
        )
        now = timezone.now()
        if (
            invitation is not None
            and invitation.accepted_by_id == user.pk
            and invitation.revoked_at is None
        ):
            membership = Membership.objects.filter(tailnet=invitation.tailnet, user=user).first()
            if membership is not None:
                return membership
        refusal = invitation_refusal(invitation, user=user, now=now)
        if refusal is not None:
            raise ValidationError(refusal, code="refused")
        assert invitation is not None  # for the type checker: refusal covers None
        membership, created = Membership.objects.select_for_update().get_or_create(
            tailnet=invitation.tailnet,
            user=user,
            defaults={"role": invitation.role, "created_at": now},
        )
        if not created and _RANK[Role(invitation.role)] > _RANK[Role(membership.role)]:
            membership.role = invitation.role
            membership.save(update_fields=["role"])
        invitation.accepted_at = now
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def invitation_accept_new_account(*, secret: str, username: str, password: str) -> Membership:
    """Create an account for the invited address and accept the invitation with it,
    both or neither: the link was emailed to that address, so holding it proves the
    address. Refused if an account already uses the address (sign in instead)."""
    users = get_user_model()
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update().filter(digest=invitation_digest(secret)).first()
        )
        if invitation is not None and users.objects.filter(email__iexact=invitation.email).exists():
            raise ValidationError(
                f"An account for {invitation.email} already exists: sign in with it to "
                "accept the invitation.",
                code="account_exists",
            )
        if users.objects.filter(username__iexact=username).exists():
            raise ValidationError("That username is taken; choose another.", code="username")
        email = invitation.email if invitation is not None else ""
        user = users.objects.create_user(username=username, email=email, password=password)
        # Refused (expired, withdrawn, used): the exception undoes the account too.
        return invitation_accept(secret=secret, user=user)


def invitation_revoke(*, tailnet: Tailnet, invitation: Invitation, by: Any) -> Invitation:
    """Withdraw a pending invitation: its link stops working at once."""
    with transaction.atomic():
        inviter = _manager(tailnet=tailnet, by=by, action="withdraw invitations")
        locked = (
            Invitation.objects.select_for_update().filter(pk=invitation.pk, tailnet=tailnet).first()
        )
        if locked is None:
            raise ValidationError("There is no such invitation.", code="missing")
        if locked.role == Role.OWNER and inviter.role != Role.OWNER:
            raise ValidationError(
                "Only an owner can withdraw an invitation to become an owner.", code="forbidden"
            )
        if locked.accepted_at is not None:
            raise ValidationError(
                f"{locked.email} has already accepted this invitation; remove them from "
                "the members instead.",
                code="accepted",
            )
        if locked.revoked_at is None:
            locked.revoked_at = timezone.now()
            locked.save(update_fields=["revoked_at"])
    return locked


def _check_owner_left(*, tailnet: Tailnet, membership: Membership, action: str) -> None:
    """Refuse to take away the tailnet's last owner. Locks the owners' rows, so two
    owners removing each other at the same moment cannot both succeed."""
    owners = list(
        Membership.objects.select_for_update()
        .filter(tailnet=tailnet, role=Role.OWNER)
        .values_list("pk", flat=True)
    )
    if owners == [membership.pk]:
        raise ValidationError(
            f"{tailnet.display_name} needs at least one owner, so its last owner can't be "
            f"{action}. Make someone else an owner first.",
            code="last_owner",
        )


def membership_remove(*, tailnet: Tailnet, membership: Membership, by: Any) -> None:
    """Remove ``membership`` from ``tailnet``: anyone may leave; owners remove
    anyone, admins remove admins and members; the last owner stays."""
    with transaction.atomic():
        target = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=membership.pk, tailnet=tailnet)
            .first()
        )
        if target is None:
            raise ValidationError("That person is not a member any more.", code="missing")
        if target.user_id != by.pk:
            remover = _manager(tailnet=tailnet, by=by, action="remove members")
            if target.role == Role.OWNER and remover.role != Role.OWNER:
                raise ValidationError("Only an owner can remove an owner.", code="forbidden")
        if target.role == Role.OWNER:
            _check_owner_left(tailnet=tailnet, membership=target, action="removed")
        target.delete()


def membership_set_role(
    *, tailnet: Tailnet, membership: Membership, role: str, by: Any
) -> Membership:
    """Change a member's role: owners and admins do; only an owner makes or unmakes
    owners; the last owner can't be demoted."""
    role = _role(role)
    with transaction.atomic():
        changer = _manager(tailnet=tailnet, by=by, action="change roles")
        target = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=membership.pk, tailnet=tailnet)
            .first()
        )
        if target is None:
            raise ValidationError("That person is not a member any more.", code="missing")
        if target.role == role:
            return target
        if Role.OWNER in (role, target.role) and changer.role != Role.OWNER:
            raise ValidationError("Only an owner can make or unmake owners.", code="forbidden")
        if target.role == Role.OWNER:
            _check_owner_left(tailnet=tailnet, membership=target, action="demoted")
        target.role = role
        target.save(update_fields=["role"])
    return target


# --- The API tokens a person made stand only as long as the person does ------------------
#
# A token is a key its maker can keep a copy of: it stops working when its maker could
# no longer make it. Every door that changes that (the members page, the admin, a user
# saved or deleted anywhere) reaches these two services through the signals below, and
# each token is revoked by ``api_token_revoke``, which also forgets the cached token.

# Every scope but a tailnet's is made in the admin, by staff.
OPERATOR_SCOPES = tuple(scope for scope in ApiToken.Scope if scope != ApiToken.Scope.TAILNET)


def _revoke(tokens: QuerySet[ApiToken]) -> int:
    revoked = 0
    for token in tokens.filter(revoked_at__isnull=True):
        api_token_revoke(token=token)
        revoked += 1
    return revoked


def account_tokens_revoke(*, user: Any, deleted: bool = False) -> int:
    """Revoke the tokens ``user`` made that their account no longer stands behind:
    every one once it is inactive or ``deleted``; once it is not staff, every operator
    token and every tailnet token for a tailnet they are not a member of. Returns how
    many were revoked."""
    made = ApiToken.objects.filter(created_by_id=user.pk)
    if deleted or not user.is_active:
        return _revoke(made)
    if user.is_staff:
        return 0
    theirs = Membership.objects.filter(user_id=user.pk).values("tailnet_id")
    return _revoke(made.exclude(scope=ApiToken.Scope.TAILNET, tailnet_id__in=theirs))


def member_tokens_revoke(*, user_id: Any, tailnet_id: Any) -> int:
    """Revoke the tokens someone made for a tailnet they are no longer a member of."""
    return _revoke(
        ApiToken.objects.filter(
            created_by_id=user_id, scope=ApiToken.Scope.TAILNET, tailnet_id=tailnet_id
        )
    )


def users_deactivate(*, users: QuerySet[Any]) -> int:
    """Deactivate these accounts: each is saved (so its cached row is forgotten and the
    tokens it made are revoked, see ``account_tokens_revoke``) rather than updated in
    bulk, which would do neither. Returns how many were active."""
    with transaction.atomic():
        active = list(users.filter(is_active=True))
        for user in active:
            user.is_active = False
            user.save(update_fields=["is_active"])
    return len(active)


def _user_saved(instance: Any, created: bool, update_fields: Any = None, **_: Any) -> None:
    # Signing in saves last_login alone: nothing that decides the tokens.
    if created:
        return
    if update_fields is None or {"is_active", "is_staff"} & set(update_fields):
        account_tokens_revoke(user=instance)


def _user_deleting(instance: Any, **_: Any) -> None:
    # Before the delete, while the tokens still name their maker (then it is cleared).
    account_tokens_revoke(user=instance, deleted=True)


def _membership_deleted(instance: Membership, **_: Any) -> None:
    member_tokens_revoke(user_id=instance.user_id, tailnet_id=instance.tailnet_id)


def connect_signals() -> None:
    from django.db.models.signals import post_delete, post_save, pre_delete

    user = get_user_model()
    post_save.connect(_user_saved, sender=user, dispatch_uid="services-tokens-user-save")
    pre_delete.connect(_user_deleting, sender=user, dispatch_uid="services-tokens-user-del")
    post_delete.connect(
        _membership_deleted, sender=Membership, dispatch_uid="services-tokens-membership-del"
    )
