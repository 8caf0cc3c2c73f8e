from django.urls import path
from django.views.decorators.http import require_safe

from . import feeds, views

app_name = "public"

urlpatterns = [
    path("", views.status_page, name="status"),
    path("history/", views.history, name="history"),
    path("incidents/<id:incident_id>/", views.incident_detail, name="incident"),
    path("feed.rss", require_safe(feeds.IncidentUpdatesRss()), name="feed_rss"),
    path("feed.atom", require_safe(feeds.IncidentUpdatesAtom()), name="feed_atom"),
    path("badge.svg", views.badge, name="badge"),
    path("badge/<slug:slug>.svg", views.component_badge, name="component_badge"),
    path("healthz", views.healthz, name="healthz"),
]
