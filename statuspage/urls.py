from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Status page operations"
admin.site.site_title = "Status page operations"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("incidents.urls")),
    path("", include("probes.urls")),
]
