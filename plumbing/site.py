"""The page's own address, for absolute links in messages sent from outside a
request (emails, webhooks): ``STATUSPAGE_PUBLIC_URL`` when set, else the first
allowed host (https unless in debug)."""

from django.conf import settings


def site_url() -> str:
    if settings.STATUSPAGE_PUBLIC_URL:
        return settings.STATUSPAGE_PUBLIC_URL.rstrip("/")
    scheme = "https" if settings.SECURE_SSL_REDIRECT or not settings.DEBUG else "http"
    host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h != "*"), "localhost")
    return f"{scheme}://{host}"


def absolute(path: str) -> str:
    return site_url() + path
