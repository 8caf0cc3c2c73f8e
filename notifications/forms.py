"""The subscription forms. They check the shape of what is typed; the rules (a
webhook's URL, the caps, the rate limits) are the services'."""

from typing import Any

from django import forms

from incidents.models import Component

from .models import WebhookFormat

URL_HELP = (
    "An http:// or https:// address on the internet: we POST JSON (or Slack's "
    "format) to it, signed with the secret."
)
SIGNING_HELP = (
    "Signs every delivery (X-Statuspage-Signature). Leave it empty and we make one; "
    "it is shown only once."
)


class ComponentsField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", Component.objects.select_related("group"))
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Components")
        kwargs.setdefault("help_text", "Choose none to hear about the whole page.")
        super().__init__(**kwargs)

    def _check_values(self, value: Any) -> Any:
        # An id no database column can hold is no choice (not an OverflowError, a 500).
        for item in value:
            text = str(item)
            if not (text.isascii() and text.isdigit()) or int(text) >= 2**63:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": text[:40]},
                )
        return super()._check_values(value)  # type: ignore[misc]  # not in the stubs


class EmailSubscribeForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    components = ComponentsField()


class WebhookFields(forms.Form):
    url = forms.CharField(
        label="Webhook URL",
        max_length=2000,
        help_text=URL_HELP,
        widget=forms.URLInput(attrs={"autocomplete": "off", "size": 60}),
    )
    secret = forms.CharField(
        label="Secret",
        required=False,
        max_length=200,
        help_text=SIGNING_HELP,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    format = forms.ChoiceField(
        label="Format", choices=WebhookFormat.choices, initial=WebhookFormat.JSON, required=False
    )

    def clean_format(self) -> str:
        return str(self.cleaned_data.get("format") or WebhookFormat.JSON)


class WebhookSubscribeForm(WebhookFields):
    components = ComponentsField()


class ComponentsForm(forms.Form):
    components = ComponentsField()


class RecipientForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        help_text="A member's address hears at once; any other address confirms first, "
        "by the link we email it.",
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
