"""Forms of the account and member pages."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from plumbing import ratelimit

from .models import Role

# Failed sign-ins allowed per username and client address in a window.
LOGIN_RATE_DEFAULT = "5/15min"
# Password reset requests per client address, and reset emails per address.
RESET_RATE_PER_IP = "10/hour"
RESET_RATE_PER_EMAIL = "3/hour"


def client_address(request: HttpRequest | None) -> str:
    """The address the request came from, as the web server saw it. Behind a proxy
    this is the proxy unless TRUSTED_PROXY_HOPS says how many (plumbing/proxy.py)."""
    if request is None:
        return "-"
    return request.META.get("REMOTE_ADDR") or "-"


class RateLimitedAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing a username after too many failed attempts
    from one address (``LOGIN_RATE``, default 5 per 15 minutes).

    Only failures count, and a success clears the count. While refused, even the
    right password is not checked, so guessing gets no signal. When the cache is
    down, nothing is limited (see ``plumbing.ratelimit``).
    """

    error_messages = {
        **AuthenticationForm.error_messages,
        "rate_limited": (
            "Too many failed sign-in attempts for this username. For your security, "
            "please wait %(minutes)s minutes and try again, or reset your password."
        ),
    }

    def _limit_key(self) -> tuple[str, int, int]:
        limit, period = ratelimit.parse_rate(getattr(settings, "LOGIN_RATE", LOGIN_RATE_DEFAULT))
        username = (self.data.get("username") or "").strip().casefold()
        return f"login:{username}:{client_address(self.request)}", limit, period

    def clean(self) -> dict[str, Any]:
        key, limit, period = self._limit_key()
        if ratelimit.is_limited(key, limit, period):
            minutes = max(1, round(ratelimit.retry_after(period) / 60))
            raise ValidationError(
                self.error_messages["rate_limited"],
                code="rate_limited",
                params={"minutes": minutes},
            )
        try:
            cleaned = super().clean()
        except ValidationError as error:
            if error.code == "invalid_login":
                ratelimit.hit(key, limit, period)
            raise
        ratelimit.reset(key, period)
        return cleaned


class RateLimitedPasswordResetForm(PasswordResetForm):
    """Django's reset form, so that it can't be used to flood an inbox: a client
    address may ask ``RESET_RATE_PER_IP`` times (then it is told to wait), and an
    address gets at most ``RESET_RATE_PER_EMAIL`` emails (more requests get the
    same "check your email" answer, so nobody learns whether an account exists)."""

    def __init__(self, *args: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        limit, period = ratelimit.parse_rate(RESET_RATE_PER_IP)
        if not ratelimit.hit(f"reset:ip:{client_address(self.request)}", limit, period):
            minutes = max(1, round(ratelimit.retry_after(period) / 60))
            raise ValidationError(
                "Too many password reset requests from your network. Please wait "
                "%(minutes)s minutes and try again.",
                code="rate_limited",
                params={"minutes": minutes},
            )
        return cleaned

    def get_users(self, email: str) -> Any:
        limit, period = ratelimit.parse_rate(RESET_RATE_PER_EMAIL)
        if not ratelimit.hit(f"reset:email:{email.strip().casefold()}", limit, period):
            return iter(())
        return super().get_users(email)


class InvitedAccountForm(UserCreationForm):
    """A new account for the address an invitation was sent to (the address is the
    invitation's; the person chooses a username and a password)."""

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The password validators compare the password with the email address too.
        self.instance.email = email


class InviteForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    role = forms.ChoiceField(label="Role", initial=Role.MEMBER)

    def __init__(self, *args: Any, can_invite_owner: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].help_text = (
            f"They get a link that works once, for {settings.INVITATION_TTL_HOURS} hours, "
            "and only for an account with this address."
        )
        role = self.fields["role"]
        assert isinstance(role, forms.ChoiceField)
        role.choices = role_choices(include_owner=can_invite_owner)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args: Any, include_owner: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        role = self.fields["role"]
        assert isinstance(role, forms.ChoiceField)
        role.choices = role_choices(include_owner=include_owner)


def role_choices(*, include_owner: bool) -> list[tuple[str, str]]:
    return [(value, label) for value, label in Role.choices if include_owner or value != Role.OWNER]
