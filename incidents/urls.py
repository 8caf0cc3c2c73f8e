from django.urls import path

from . import views

app_name = "incidents"

urlpatterns = [
    path("", views.status_page, name="status"),
    path("incidents/<int:incident_id>/", views.incident_detail, name="incident"),
    path("healthz", views.healthz, name="healthz"),
]
