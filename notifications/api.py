"""A tailnet's webhooks through its API: ``/api/v1/tailnets/<slug>/webhooks``.

The tailnet API's doors and order (``customers.api.TailnetApi``): authentication
(401, the same for every slug), the one door (404 for a tailnet that is unknown or
not yours, for every method), then who manages subscriptions (403 for a plain
member's session; the tailnet's own token may), then the method. A webhook made
here is confirmed at once; its secret is generated when not given and is in the
201 answer only.
"""

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from customers.api import NOT_FOUND, UNAUTHENTICATED, TailnetApi
from incidents.api import StrictSerializer
from plumbing.parsers import StrictJSONParser

from . import services
from .access import can_manage_subscriptions
from .models import Channel, Subscription, WebhookFormat

FORBIDDEN = OpenApiResponse(
    description="A plain member: only owners and admins (or the tailnet's token) manage webhooks."
)


class WebhookIn(StrictSerializer):
    # Blank and bad URLs alike are the service's to explain (services.webhook_url_problem).
    url = serializers.CharField(
        allow_blank=True, help_text="http(s), on the internet, at most 500 characters."
    )
    secret = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Signs every delivery; generated when not given (and shown only once).",
    )
    format = serializers.ChoiceField(
        choices=WebhookFormat.values, default=WebhookFormat.JSON, help_text="json or slack."
    )


class WebhookCreatedOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    format = serializers.ChoiceField(choices=WebhookFormat.values)
    secret = serializers.CharField(help_text="Shown only in this answer.")


class WebhookOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    format = serializers.ChoiceField(choices=WebhookFormat.values)
    active = serializers.BooleanField(help_text="False once turned off for failing.")
    disabled_reason = serializers.CharField()
    failing_since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


def _problem(error: DjangoValidationError) -> dict[str, Any]:
    """A service's refusal as DRF's error shape: by field, else ``detail``."""
    if hasattr(error, "error_dict"):
        problem: dict[str, Any] = {}
        for field, messages in error.message_dict.items():
            if field == NON_FIELD_ERRORS:
                problem["detail"] = " ".join(messages)
            else:
                problem[field] = messages
        return problem
    return {"detail": " ".join(error.messages)}


class WebhooksApi(TailnetApi):
    parser_classes = [StrictJSONParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not can_manage_subscriptions(self.access):
            raise PermissionDenied(
                "Only the tailnet's owners and admins (or its API token) manage its webhooks."
            )

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DjangoValidationError):
            return Response(_problem(exc), status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)

    def webhooks(self) -> Any:
        return Subscription.objects.filter(tailnet=self.access.tailnet, channel=Channel.WEBHOOK)


class TailnetWebhooksApi(WebhooksApi):
    @extend_schema(
        summary="This tailnet's webhooks",
        description="Every webhook of the tailnet, oldest first, without secrets.",
        responses={
            200: WebhookOut(many=True),
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    def get(self, request: Request, slug: str) -> Response:
        rows = self.webhooks().order_by("created_at", "id")
        return Response(WebhookOut(rows, many=True).data)

    @extend_schema(
        summary="Add a webhook",
        description="It hears about the incidents that affect this tailnet, signed with "
        "its secret (X-Statuspage-Signature). Unknown fields are refused.",
        request=WebhookIn,
        responses={
            201: WebhookCreatedOut,
            400: OpenApiResponse(description="Field errors, by field; or the tailnet's cap."),
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        body = WebhookIn(data=request.data)
        body.is_valid(raise_exception=True)
        created = services.webhook_create(
            tailnet=self.access.tailnet,
            url=body.validated_data["url"],
            secret=body.validated_data.get("secret", ""),
            format=body.validated_data["format"],
            by=request.user,
        )
        return Response(WebhookCreatedOut(created).data, status=status.HTTP_201_CREATED)


class TailnetWebhookApi(WebhooksApi):
    @extend_schema(
        summary="Remove a webhook",
        description="Nothing more is sent to it, including what it was still owed.",
        responses={
            204: OpenApiResponse(description="Removed."),
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            404: OpenApiResponse(description="No such tailnet, or no such webhook of it."),
        },
    )
    def delete(self, request: Request, slug: str, pk: int) -> Response:
        webhook = self.webhooks().filter(pk=pk).first()
        if webhook is None:
            raise Http404
        services.subscription_remove(subscription=webhook)
        return Response(status=status.HTTP_204_NO_CONTENT)
