from django.urls import path

from . import api

app_name = "reports_api"

urlpatterns = [
    path("reports", api.ReportCreateApi.as_view(), name="create"),
]
