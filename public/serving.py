"""Serve the public pages from the snapshot (public/snapshot.py).

``SnapshotMiddleware`` sits first after SecurityMiddleware: its SSL redirect runs
before this, and its response headers (HSTS, nosniff, Referrer-Policy,
Cross-Origin-Opener-Policy) are added to what this returns. The clickjacking
middleware comes later, so X-Frame-Options is set here. Nothing on this path
touches the database, Redis or Celery.

``SnapshotWSGI`` is the same fast path one layer out, around Django's WSGI
application (``application = SnapshotWSGI(get_wsgi_application())``): it answers
exactly what the middleware would, without building a Django request, and hands
every other request to Django unchanged.

Both answer with the page's gzipped copy (``Content-Encoding: gzip``, a weak ETag of
the same value) when the request accepts gzip, as every browser's does.
"""

import functools
import hashlib
import io
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.http.response import HttpResponseBase
from django.middleware.security import SecurityMiddleware
from django.utils.cache import get_conditional_response, has_vary_header
from django.utils.http import parse_etags, parse_http_date_safe

from public import snapshot
from public.snapshot import CACHE_CONTROL

__all__ = ["CACHE_CONTROL", "SnapshotMiddleware", "SnapshotWSGI"]

# Query parameters that only say where a visitor came from: the page is the same.
TRACKING_PARAMETERS = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ref"})


def _only_tracking(query: str) -> bool:
    for pair in query.split("&"):
        name = pair.split("=", 1)[0]
        if name and not name.startswith("utm_") and name not in TRACKING_PARAMETERS:
            return False
    return True


# Browsers send a handful of distinct values: parse each once (on the hot path).
@functools.lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (RFC 9110 12.5.3): listed, or covered
    by ``*``, with a q-value above 0."""
    if not accept_encoding:
        return False
    star = False
    for item in accept_encoding.split(","):
        coding, _, parameters = item.partition(";")
        coding = coding.strip().lower()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding != "*":
            return quality > 0
        star = quality > 0
    return star


def _variant(entry: snapshot.Entry, accept_encoding: str | None) -> snapshot.Variant:
    if entry.gzip is not None and accepts_gzip(accept_encoding):
        return entry.gzip
    return entry.identity


def _entry_for(method: str | None, path: str, query: str | None) -> snapshot.Entry | None:
    """The snapshot entry that answers this request, if any. A query string other
    than tracking parameters goes to the live view: it may paginate or filter."""
    if method != "GET" and method != "HEAD":
        return None
    if query and not _only_tracking(query):
        return None
    return snapshot.lookup(path)


def _fresh(entry: snapshot.Entry, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """Whether the visitor's copy is this one (RFC 9110: If-None-Match, compared
    weakly, wins over If-Modified-Since)."""
    if if_none_match is not None:
        if if_none_match == entry.etag:
            return True
        tags = parse_etags(if_none_match)
        return "*" in tags or entry.etag in tags or f"W/{entry.etag}" in tags
    if if_modified_since is not None:
        since = parse_http_date_safe(if_modified_since)
        return since is not None and entry.last_modified <= since
    return False


class SnapshotMiddleware:
    """GET/HEAD of a snapshotted path: the snapshot's bytes, with validators and
    caching headers, 304 when the visitor's copy is current. If the live view of a
    snapshotted path fails with a server error (say, with a query string while the
    database is down), the snapshot answers instead."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.frame = {"X-Frame-Options": settings.X_FRAME_OPTIONS.upper()}

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        meta = request.META
        if snapshot.CAPTURE_ENVIRON_KEY in meta:  # the rebuild rendering a page
            return self.get_response(request)
        entry = _entry_for(request.method, request.path_info, meta.get("QUERY_STRING"))
        if entry is not None:
            return self.serve(request, entry)
        if request.method not in ("GET", "HEAD") or not snapshot.is_public_path(request.path_info):
            return self.get_response(request)
        response = self.get_response(request)
        if response.status_code >= 500:
            entry = snapshot.lookup(request.path_info)
            if entry is not None:
                return self.serve(request, entry)
        return self.cacheable(request, response)

    def serve(self, request: HttpRequest, entry: snapshot.Entry) -> HttpResponseBase:
        meta = request.META
        variant = _variant(entry, meta.get("HTTP_ACCEPT_ENCODING"))
        if _fresh(entry, meta.get("HTTP_IF_NONE_MATCH"), meta.get("HTTP_IF_MODIFIED_SINCE")):
            return HttpResponseNotModified(
                headers={**dict(variant.not_modified_items), **self.frame}
            )
        # HEAD: no body, but the Content-Length of the body a GET would get.
        body = variant.body if request.method == "GET" else b""
        return HttpResponse(body, headers={**variant.headers, **self.frame})

    def cacheable(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """A public page rendered live (no snapshot yet, or a query string): the
        same caching headers, unless it turned out personal (cookies)."""
        if (
            response.status_code != 200
            or not isinstance(response, HttpResponse)  # streaming
            or response.cookies
            or response.has_header("Cache-Control")
            or has_vary_header(response, "Cookie")
        ):
            return response
        if not response.has_header("ETag"):
            # The snapshot's ETag for the same bytes: a copy fetched live before the
            # first snapshot revalidates against the snapshot with a 304.
            response["ETag"] = snapshot.etag_for(hashlib.sha256(response.content).hexdigest())
        response.headers.setdefault("Cache-Control", CACHE_CONTROL)
        response.headers.setdefault("Vary", "Accept-Encoding")
        response.headers.setdefault("X-Frame-Options", self.frame["X-Frame-Options"])
        conditional = get_conditional_response(
            request, etag=response.get("ETag"), response=response
        )
        return response if conditional is None else conditional


StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SnapshotWSGI:
    """The middleware's fast path as a WSGI wrapper: no Django request, signals or
    middleware chain for a snapshot hit. Answers only GET/HEAD hits that need no
    redirect to HTTPS; everything else goes to ``application``."""

    def __init__(self, application: WSGIApp) -> None:
        self.application = application
        self.redirect = bool(settings.SECURE_SSL_REDIRECT)
        self.proxy_ssl_header = settings.SECURE_PROXY_SSL_HEADER
        frame = ("X-Frame-Options", settings.X_FRAME_OPTIONS.upper())
        # What SecurityMiddleware adds to any response, for http and for https.
        self.extra = {secure: (frame, *_security_headers(secure)) for secure in (False, True)}

    def secure(self, environ: dict[str, Any]) -> bool:
        # HttpRequest.scheme's rule: the proxy's header if configured and present.
        if self.proxy_ssl_header:
            name, value = self.proxy_ssl_header
            sent = environ.get(name)
            if sent is not None:
                return bool(sent.split(",", 1)[0].strip() == value)
        return bool(environ.get("wsgi.url_scheme") == "https")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        entry = _entry_for(method, environ.get("PATH_INFO") or "/", environ.get("QUERY_STRING"))
        if entry is None:
            return self.application(environ, start_response)
        secure = self.secure(environ)
        if self.redirect and not secure:
            return self.application(environ, start_response)  # Django redirects it
        extra = self.extra[secure]
        variant = _variant(entry, environ.get("HTTP_ACCEPT_ENCODING"))
        if _fresh(entry, environ.get("HTTP_IF_NONE_MATCH"), environ.get("HTTP_IF_MODIFIED_SINCE")):
            start_response("304 Not Modified", [*variant.not_modified_items, *extra])
            return []
        start_response("200 OK", [*variant.items, *extra])
        return [variant.body] if method == "GET" else []


def _security_headers(secure: bool) -> list[tuple[str, str]]:
    """The headers SecurityMiddleware adds to a response, asked of it, not copied."""
    request = WSGIRequest(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "443" if secure else "80",
            "wsgi.url_scheme": "https" if secure else "http",
            "wsgi.input": io.BytesIO(),
        }
    )
    blank = HttpResponse()
    before = set(blank.headers)
    response = SecurityMiddleware(lambda request: blank).process_response(request, blank)
    return [(name, value) for name, value in response.items() if name not in before]
