"""The visitor's address behind a reverse proxy.

Rate limits (sign-in, outage reports), the audit trail and ``/metrics``' network
allow-list read ``REMOTE_ADDR``. Behind a load balancer that is the balancer's
address, so every visitor would share one rate limit. With ``TRUSTED_PROXY_HOPS``
set to the number of proxies in front of the app that append to
``X-Forwarded-For``, this middleware puts the address the outermost trusted proxy
saw into ``REMOTE_ADDR``. Only the rightmost entries are trusted: anything left of
them was written by the client and can be forged. With 0 (the default, for a
server that faces the internet itself) the header is ignored.
"""

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def forwarded_client(remote_addr: str, forwarded_for: str, hops: int) -> str:
    """The client address given ``hops`` trusted proxies; ``remote_addr`` when the
    header is missing, too short or not an address."""
    if hops <= 0 or not forwarded_for:
        return remote_addr
    entries = [part.strip() for part in forwarded_for.split(",")]
    if len(entries) < hops:
        return remote_addr
    candidate = entries[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_addr


class TrustedProxyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.hops = settings.TRUSTED_PROXY_HOPS

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.hops:
            request.META["REMOTE_ADDR"] = forwarded_client(
                request.META.get("REMOTE_ADDR", ""),
                request.META.get("HTTP_X_FORWARDED_FOR", ""),
                self.hops,
            )
        return self.get_response(request)
