from django.urls import path

from . import api, views

app_name = "probes"

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    path("api/v1/probes/samples", api.ProbeSamplesIngestApi.as_view(), name="ingest"),
    path("api/v1/probes/shards", api.ProbeShardsApi.as_view(), name="shards"),
]
