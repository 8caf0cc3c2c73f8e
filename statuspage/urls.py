from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from . import api_docs, views

admin.site.site_header = "Status page operations"
admin.site.site_title = "Status page operations"

urlpatterns = [
    # API tokens moved from the incidents app to the plumbing app: old bookmarks work.
    re_path(
        r"^admin/incidents/apitoken/(?P<rest>.*)$",
        RedirectView.as_view(url="/admin/plumbing/apitoken/%(rest)s", query_string=True),
    ),
    # The admin's password change is the accounts one, which the sign-in limit guards.
    path("admin/password_change/", RedirectView.as_view(pattern_name="password_change")),
    path("admin/", admin.site.urls),
    path("favicon.ico", views.favicon),
    path("", include("public.urls")),
    # Statuspage-v2-compatible JSON (existing clients parse it unchanged).
    path("api/v2/", include("public.urls_v2")),
    # The operator API (staff tokens).
    path("api/v1/", include("incidents.urls_api")),
    # The fleet feed (fleet-scoped tokens): the control plane's events.
    path("api/v1/", include("fleet.urls_api")),
    # The staff APIs' schema and reference, for staff only (the public ones are under
    # customers.urls).
    path("api/staff/schema/", api_docs.staff_schema_view, name="staff_api_schema"),
    path("api/staff/docs/", api_docs.staff_docs, name="staff_api_docs"),
    path("", include("probes.urls")),
    # Accounts: sign in/out, password reset (Django's views, our templates).
    # customers.urls_members comes first: its limited password change and reset take
    # accounts/password_change/ and accounts/password_reset/ before Django's own views.
    path("", include("customers.urls_members")),
    path("accounts/", include("django.contrib.auth.urls")),
    # Customers: each tailnet's own view and API, members only.
    path("", include("customers.urls")),
    path("api/v1/", include("customers.urls_api")),
    # Outage reports: the public form and its API.
    path("", include("reports.urls")),
    path("api/v1/", include("reports.urls_api")),
    # Notifications: subscribing, confirming and unsubscribing; a tailnet's
    # subscriptions page and its webhooks API.
    path("", include("notifications.urls")),
    path("api/v1/", include("notifications.urls_api")),
    path("", include("reliability.urls")),
]

# Database unreachable: a 503 page; anything else: a 500 page (statuspage.views).
handler500 = "statuspage.views.server_error"
