"""The report form: one validator for the web form and the API alike."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from customers.models import Membership
from incidents.models import Tailnet

from .models import DESCRIPTION_MAX, TAILNET_NAME_MAX, What

# A clock a little ahead of ours is not a report from the future.
FUTURE_SLACK = timedelta(minutes=10)
OLDEST = timedelta(days=7)
HONEYPOT = "website"


class TextField(forms.CharField):
    """Browsers send a newline as CRLF but count it as one character (maxlength):
    normalised before the length is checked."""

    def to_python(self, value: Any) -> str:
        return str(super().to_python(value)).replace("\r\n", "\n")


class ReportForm(forms.Form):
    """What happened, when, where; ``memberships`` are the signed-in person's: with
    one, the tailnet is locked to it; with several, it is chosen among them."""

    what = forms.ChoiceField(
        label="What were you trying to do?",
        choices=What.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose what you were trying to do."},
    )
    started_at = forms.DateTimeField(
        label="When did it start? (UTC)",
        help_text="Date and time in UTC, e.g. 2026-01-05 10:02. Leave as is for “just now”.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={
            "required": "Say when it started (UTC), or leave the time that was filled in.",
            "invalid": "Enter a date and time like 2026-01-05 10:02.",
        },
    )
    tailnet = forms.CharField(
        label="Tailnet name (optional)",
        help_text="As shown in your admin console, e.g. example.com.",
        required=False,
        max_length=TAILNET_NAME_MAX,
        widget=forms.TextInput(attrs={"autocomplete": "organization", "spellcheck": "false"}),
    )
    email = forms.EmailField(
        label="Email for follow-up (optional)",
        help_text="Only used to ask about or tell you about this problem.",
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    description = TextField(
        label="What happened? (optional)",
        help_text=f"Error messages, what you tried. Up to {DESCRIPTION_MAX:,} characters.",
        required=False,
        max_length=DESCRIPTION_MAX,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    # A field only bots fill in: hidden from sight, screen readers and the tab
    # order in the template. Never validated, so a bot is never told anything.
    website = forms.CharField(required=False, label="Leave this field empty")

    def __init__(
        self,
        *args: Any,
        memberships: Sequence[Membership] = (),
        now: datetime | None = None,
        **kwargs: Any,
    ) -> None:
        self.now = now or timezone.now()
        self.memberships = list(memberships)
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("started_at", self.now.replace(second=0, microsecond=0))
        super().__init__(*args, **kwargs)
        if len(self.memberships) == 1:
            only = self.memberships[0].tailnet
            field = self.fields["tailnet"]
            field.label = "Tailnet"
            field.help_text = "Your tailnet (you are signed in as one of its members)."
            field.widget.attrs["readonly"] = True
            self.initial["tailnet"] = only.slug
            if self.is_bound:
                # Locked: whatever was posted, it is the member's tailnet.
                data = dict(self.data.items())
                data["tailnet"] = only.slug
                self.data = data
        elif len(self.memberships) > 1:
            self.fields["tailnet"] = forms.ChoiceField(
                label="Which of your tailnets?",
                choices=[(m.tailnet.slug, m.tailnet.display_name) for m in self.memberships],
                error_messages={"invalid_choice": "Choose one of your tailnets."},
            )

    def describe_fields(self) -> None:
        """Tie each input to its hint and its error for screen readers (called just
        before rendering, once the errors are known)."""
        for name, field in self.fields.items():
            if name == HONEYPOT:
                continue
            ids = []
            if field.help_text:
                ids.append(f"id_{name}_hint")
            if name in self.errors:
                ids.append(f"id_{name}_error")
                field.widget.attrs["aria-invalid"] = "true"
            if ids and name != "what":
                field.widget.attrs["aria-describedby"] = " ".join(ids)

    @property
    def locked(self) -> bool:
        return len(self.memberships) == 1

    def clean_started_at(self) -> datetime:
        value: datetime = self.cleaned_data["started_at"]
        if value > self.now + FUTURE_SLACK:
            raise forms.ValidationError("That is in the future; give the time it started (UTC).")
        if value < self.now - OLDEST:
            raise forms.ValidationError(
                "That is more than 7 days ago; for older problems, please contact support."
            )
        return value

    def clean_tailnet(self) -> str:
        return str(self.cleaned_data.get("tailnet") or "").strip()

    @property
    def member_tailnet(self) -> Tailnet | None:
        """The tailnet a member filed for (vouched), once the form is valid."""
        slug = self.cleaned_data.get("tailnet")
        for membership in self.memberships:
            if membership.tailnet.slug == slug:
                return membership.tailnet
        return None

    @property
    def is_bot(self) -> bool:
        return bool(str(self.data.get(HONEYPOT, "") or "").strip())
