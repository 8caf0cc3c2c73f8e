"""The page's own address, for every absolute link: in pages, feeds, JSON, snapshots,
emails and webhooks. ``STATUSPAGE_PUBLIC_URL`` when set, else the first allowed host
(https unless in debug). Never the request's Host or X-Forwarded-* headers: whoever
sends the request chooses those, and a link built on them would mail a password reset
to their host or put it in a page that caches share with everyone."""

from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error


def site_url() -> str:
    if settings.STATUSPAGE_PUBLIC_URL:
        return settings.STATUSPAGE_PUBLIC_URL.rstrip("/")
    scheme = "https" if settings.SECURE_SSL_REDIRECT or not settings.DEBUG else "http"
    host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h != "*"), "localhost")
    return f"{scheme}://{host}"


def absolute(path: str) -> str:
    return site_url() + path


def site_parts() -> SplitResult:
    """``site_url()`` split: its scheme, netloc (host and port as written) and path."""
    return urlsplit(site_url())


def check_public_url(**kwargs: Any) -> list[CheckMessage]:
    """``STATUSPAGE_PUBLIC_URL``, when set, is an http(s) address with a host."""
    value = settings.STATUSPAGE_PUBLIC_URL
    if not value:
        return []
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        return [
            Error(
                f"STATUSPAGE_PUBLIC_URL must be the page's address, like "
                f"https://status.example.com, not {value!r}.",
                id="plumbing.E001",
            )
        ]
    return []
