"""The visitor's address behind a reverse proxy.

Rate limits (sign-in, outage reports), the audit trail and ``/metrics``' network
allow-list read ``REMOTE_ADDR``. Behind a load balancer that is the balancer's
address, so every visitor would share one rate limit. With ``TRUSTED_PROXY_HOPS``
set to the number of proxies in front of the app that append to
``X-Forwarded-For``, this middleware puts the address the outermost trusted proxy
saw into ``REMOTE_ADDR``. Only the rightmost entries are trusted: anything left of
them was written by the client and can be forged. With 0 (the default, for a
server that faces the internet itself) the header is ignored.

Telling visitors apart (rate limits) can live with a proxy's address; trusting an
address as the operator's own network (``/metrics``) cannot: ``own_address`` says
when the address is known to be the visitor's.
"""

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

# Headers that only a proxy adds. Without a trusted proxy configured, a request that
# carries one came through a proxy nobody told us of: its REMOTE_ADDR is the proxy's.
FORWARDING_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_FORWARDED",
    "HTTP_X_REAL_IP",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
)
# The client address the trusted proxies named, or None if they named none (a WSGI
# environ key, not an HTTP header: no client can send it).
NAMED_CLIENT_KEY = "statuspage.proxy.named_client"


def named_client(forwarded_for: str, hops: int) -> str | None:
    """The address the outermost of ``hops`` trusted proxies saw, or None when the
    header is missing, too short or not an address there."""
    if hops <= 0 or not forwarded_for:
        return None
    entries = [part.strip() for part in forwarded_for.split(",")]
    if len(entries) < hops:
        return None
    try:
        return str(ipaddress.ip_address(entries[-hops]))
    except ValueError:
        return None


def forwarded_client(remote_addr: str, forwarded_for: str, hops: int) -> str:
    """The client address given ``hops`` trusted proxies; ``remote_addr`` when the
    header is missing, too short or not an address."""
    return named_client(forwarded_for, hops) or remote_addr


def own_address(request: HttpRequest) -> str | None:
    """The visitor's own address, or None when it is not known: behind trusted
    proxies, the one they named; without any, ``REMOTE_ADDR`` unless the request
    carries a proxy's headers (a proxy on this host would otherwise make every
    visitor look like 127.0.0.1)."""
    meta = request.META
    if settings.TRUSTED_PROXY_HOPS > 0:
        return meta.get(NAMED_CLIENT_KEY)
    if any(meta.get(header) for header in FORWARDING_HEADERS):
        return None
    return meta.get("REMOTE_ADDR") or None


class TrustedProxyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.hops = settings.TRUSTED_PROXY_HOPS

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.hops:
            client = named_client(request.META.get("HTTP_X_FORWARDED_FOR", ""), self.hops)
            request.META[NAMED_CLIENT_KEY] = client
            if client is not None:
                request.META["REMOTE_ADDR"] = client
        return self.get_response(request)
