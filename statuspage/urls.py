from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Status page operations"
admin.site.site_title = "Status page operations"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("incidents.urls")),
    # Statuspage-v2-compatible JSON (existing clients parse it unchanged).
    path("api/v2/", include("incidents.urls_v2")),
    # The operator API (staff tokens).
    path("api/v1/", include("incidents.urls_api")),
    path("", include("probes.urls")),
]
