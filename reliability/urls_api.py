"""The reliability API, mounted at /api/v1/ (and described in the public schema)."""

from django.urls import path

from . import api

app_name = "reliability_api"

urlpatterns = [
    path("reliability", api.ReliabilityReportApi.as_view(), name="report"),
    path(
        "tailnets/<slug:slug>/reliability",
        api.TailnetReliabilityApi.as_view(),
        name="tailnet_reliability",
    ),
    path("tailnets/<slug:slug>/sla", api.TailnetSlaApi.as_view(), name="tailnet_sla"),
]
