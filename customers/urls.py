"""Customer pages under /t/ (members only, see customers/views.py) and the customer
API's schema and documentation."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import views

app_name = "customers"

urlpatterns = [
    path("t/", views.home, name="home"),
    path("t/<slug:slug>/", views.tailnet_detail, name="tailnet"),
    path("t/<slug:slug>/uptime.csv", views.uptime_csv, name="uptime_csv"),
    path("t/<slug:slug>/tokens/", views.tokens, name="tokens"),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(patterns=views.api_patterns()),
        name="api_schema",
    ),
    path("api/docs/", views.api_docs, name="api_docs"),
]
