"""Serve the public pages from the snapshot (public/snapshot.py).

``SnapshotWSGI`` is the one fast path, around Django's WSGI application
(``statuspage.wsgi``, which gunicorn and ``runserver`` both load): a GET or HEAD of a
snapshotted path is answered from memory before Django builds a request, with
validators, caching headers, 304s and the security headers of every page
(``security_headers``). Nothing on that path touches the database, Redis or Celery.
Everything else goes to Django.

``SnapshotMiddleware`` does only what that layer cannot, with the same functions: a
snapshotted page whose live view fails with a server error (say, with a query
string while the database is down) is answered from the snapshot, and a public page
rendered live gets the snapshot's caching headers. It sits right after
SecurityMiddleware, which adds its own headers to what it returns.

Both answer with the page's gzipped copy (``Content-Encoding: gzip``, a weak ETag of
the same value) when the request accepts gzip, as every browser's does.
"""

import functools
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.http.response import HttpResponseBase
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
    """A snapshotted path whose live view failed with a server error: the snapshot
    answers. A public page rendered live (no snapshot yet, or a query string): the
    snapshot's caching headers, unless it turned out personal."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.frame = {"X-Frame-Options": settings.X_FRAME_OPTIONS.upper()}

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        meta = request.META
        if snapshot.CAPTURE_ENVIRON_KEY in meta:  # the rebuild rendering a page
            return self.get_response(request)
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
    """The fast path: no Django request, signals or middleware chain for a snapshot
    hit. Answers only GET/HEAD hits that need no redirect to HTTPS; everything else
    goes to ``application``."""

    def __init__(self, application: WSGIApp) -> None:
        self.application = application
        self.redirect = bool(settings.SECURE_SSL_REDIRECT)
        self.proxy_ssl_header = settings.SECURE_PROXY_SSL_HEADER
        self.extra = {secure: security_headers(secure=secure) for secure in (False, True)}

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


def security_headers(*, secure: bool) -> list[tuple[str, str]]:
    """The headers Django's SecurityMiddleware, XFrameOptionsMiddleware and
    django-csp's CSPMiddleware add to every page, from the same settings: the one
    place the fast path takes them from (tests/public/test_snapshot.py holds them
    against a live page's)."""
    headers = [("X-Frame-Options", settings.X_FRAME_OPTIONS.upper())]
    policy = build_policy()
    if policy:
        headers.append(("Content-Security-Policy", policy))
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append(("Strict-Transport-Security", hsts))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        parts = policy.split(",") if isinstance(policy, str) else policy
        headers.append(("Referrer-Policy", ",".join(part.strip() for part in parts)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    return headers
