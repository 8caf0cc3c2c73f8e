"""Forms of the account and member pages."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from plumbing import ratelimit
from plumbing.site import site_parts

from . import signin
from .models import Role

# Password reset requests per client address, and reset emails per address.
RESET_RATE_PER_IP = "10/hour"
RESET_RATE_PER_EMAIL = "3/hour"


class LimitedPasswordChangeForm(PasswordChangeForm):
    """Django's form, its check of the old password counted against the sign-in limit
    (``customers.signin``): it is a password guess like any other."""

    def __init__(self, user: Any, *args: Any, request: HttpRequest | None = None, **kwargs: Any):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        old_password: str = self.cleaned_data["old_password"]
        if not signin.password_checked(
            self.request, self.user.get_username(), lambda: self.user.check_password(old_password)
        ):
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


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
        if not ratelimit.hit(f"reset:ip:{signin.client_address(self.request)}", limit, period):
            minutes = max(1, round(ratelimit.retry_after(period) / 60))
            raise ValidationError(
                "Too many password reset requests from your network. Please wait "
                "%(minutes)s minutes and try again.",
                code="rate_limited",
                params={"minutes": minutes},
            )
        return cleaned

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The link is on the site's configured address: the request's Host is chosen
        # by whoever asks for the mail, and the mail goes to someone else.
        site = site_parts()
        kwargs.update(domain_override=site.netloc + site.path, use_https=site.scheme == "https")
        super().save(*args, **kwargs)

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
