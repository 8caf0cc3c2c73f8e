from django.urls import include, path

from . import views

app_name = "reliability"

urlpatterns = [
    path("reliability/", views.report, name="report"),
    path("api/v1/", include("reliability.urls_api")),
]
