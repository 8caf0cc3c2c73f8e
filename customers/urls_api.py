"""One tailnet's API, mounted at /api/v1/ (see customers/api.py)."""

from django.urls import path

from . import api

app_name = "customers_api"

urlpatterns = [
    path("tailnets/<slug:slug>/status", api.TailnetStatusApi.as_view(), name="status"),
    path("tailnets/<slug:slug>/incidents", api.TailnetIncidentsApi.as_view(), name="incidents"),
    path("tailnets/<slug:slug>/uptime", api.TailnetUptimeApi.as_view(), name="uptime"),
    path("tailnets/<slug:slug>/latency", api.TailnetLatencyApi.as_view(), name="latency"),
]
