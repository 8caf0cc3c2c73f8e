from django.urls import include, path

from . import views

app_name = "reliability"

urlpatterns = [
    path("reliability/", views.report, name="report"),
    path("t/<slug:slug>/reliability/", views.tailnet_report, name="tailnet"),
    path("t/<slug:slug>/sla.csv", views.sla_csv, name="sla_csv"),
    path("api/v1/", include("reliability.urls_api")),
]
