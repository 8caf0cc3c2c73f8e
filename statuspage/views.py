"""Site-wide odds and ends that belong to no app."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template import loader
from django.templatetags.static import static
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``, which browsers, feed readers and bookmarks ask for whatever
    the page links: the icon's current (hashed) static address. Not permanent: a
    new icon gets a new address."""
    response = HttpResponseRedirect(static("favicon.svg"))
    patch_cache_control(response, public=True, max_age=86400)
    return response


# How long a client should wait before asking again when the database is unreachable.
RETRY_AFTER_SECONDS = 30


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: called while the uncaught exception is being handled. A database
    that cannot be reached (refused, hung and cut off by ``plumbing.deadline``, gone
    mid-request) is a 503 with Retry-After, "temporarily unavailable"; anything else
    is a 500. Pages are rendered without the request (no context processors, no
    database); the API gets JSON."""
    error = sys.exc_info()[1]
    unavailable = isinstance(error, OperationalError | InterfaceError)
    status = 503 if unavailable else 500
    if request.path.startswith("/api/"):
        detail = (
            "The database is unreachable; try again shortly."
            if unavailable
            else "Server error; it is logged."
        )
        response: HttpResponse = JsonResponse({"detail": detail}, status=status)
    else:
        template = loader.get_template("503.html" if unavailable else "500.html")
        page = template.render({"stylesheet": _stylesheet()})
        response = HttpResponse(page, status=status)
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _stylesheet() -> str | None:
    """The stylesheet's address, if it can be had: an error page must render even when
    the static files' manifest is missing (the error may be that)."""
    try:
        return static("css/status.css")
    except Exception:
        return None
