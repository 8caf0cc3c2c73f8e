"""The operator API, mounted at /api/v1/ (see incidents/api.py). The probes' own
endpoint, /api/v1/probes/samples, is routed by probes/urls.py."""

from django.urls import path

from . import api

app_name = "urls_api"

urlpatterns = [
    path("incidents/", api.IncidentListCreateApi.as_view(), name="incidents"),
    path("incidents/<id:incident_id>/", api.IncidentDetailApi.as_view(), name="incident"),
    path(
        "incidents/<id:incident_id>/updates",
        api.IncidentUpdateCreateApi.as_view(),
        name="incident-updates",
    ),
    path(
        "incidents/<id:incident_id>/publish",
        api.IncidentPublishApi.as_view(),
        name="incident-publish",
    ),
    path(
        "incidents/<id:incident_id>/resolve",
        api.IncidentResolveApi.as_view(),
        name="incident-resolve",
    ),
    path("incidents/<id:incident_id>/impacts", api.ShardImpactAddApi.as_view(), name="impacts"),
    path(
        "incidents/<id:incident_id>/impacts/<id:impact_id>/close",
        api.ShardImpactCloseApi.as_view(),
        name="impact-close",
    ),
    path(
        "incidents/<id:incident_id>/follow-ups",
        api.FollowUpListCreateApi.as_view(),
        name="follow-ups",
    ),
    path(
        "incidents/<id:incident_id>/follow-ups/<id:follow_up_id>",
        api.FollowUpDetailApi.as_view(),
        name="follow-up",
    ),
]
