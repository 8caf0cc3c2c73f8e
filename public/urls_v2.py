"""/api/v2/: Statuspage's public API paths (see api_v2.py)."""

from django.urls import path

from . import api_v2

app_name = "v2"

urlpatterns = [
    path("summary.json", api_v2.summary_view, name="summary"),
    path("status.json", api_v2.status_view, name="status"),
    path("components.json", api_v2.components_view, name="components"),
    path("incidents.json", api_v2.incidents_view, name="incidents"),
    path(
        "incidents/unresolved.json",
        api_v2.incidents_unresolved_view,
        name="incidents-unresolved",
    ),
    path(
        "scheduled-maintenances.json",
        api_v2.scheduled_maintenances_view,
        name="scheduled-maintenances",
    ),
    path(
        "scheduled-maintenances/upcoming.json",
        api_v2.scheduled_maintenances_upcoming_view,
        name="scheduled-maintenances-upcoming",
    ),
    path(
        "scheduled-maintenances/active.json",
        api_v2.scheduled_maintenances_active_view,
        name="scheduled-maintenances-active",
    ),
]
