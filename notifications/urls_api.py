"""A tailnet's webhooks, mounted at /api/v1/ (see notifications/api.py)."""

from django.urls import path

from . import api

app_name = "notifications_api"

urlpatterns = [
    path("tailnets/<slug:slug>/webhooks", api.TailnetWebhooksApi.as_view(), name="webhooks"),
    path("tailnets/<slug:slug>/webhooks/<id:pk>", api.TailnetWebhookApi.as_view(), name="webhook"),
]
