"""The fleet feed's API, mounted at /api/v1/ (see fleet/api.py)."""

from django.urls import path

from . import api

app_name = "fleet_api"

urlpatterns = [
    path("fleet/events", api.FleetEventsIngestApi.as_view(), name="events"),
    path("fleet/placements", api.FleetPlacementsApi.as_view(), name="placements"),
]
