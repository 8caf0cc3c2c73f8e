"""The sign-in limit: one budget of wrong passwords per account name and client
address, shared by every door that checks a password.

The doors: signing in at /accounts/login/ and at /admin/login/ (both through
``authenticate()``, so through ``backends.CachedModelBackend``) and changing one's
password (``forms.LimitedPasswordChangeForm``; the admin's own page redirects there).
After ``LOGIN_RATE`` wrong passwords (default 5 per 15 minutes) for a name from one
address, every door refuses that name from that address without checking the
password, so guessing gets no signal, and says so in the same words; a right
password clears the count.

The name is counted as Django signs it in: NFKC-normalised, so a fullwidth ``c`` in
``carol`` counts as ``carol``, and case-folded. When the cache is down nothing is limited
(``plumbing.ratelimit`` fails open).
"""

import unicodedata
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from plumbing import ratelimit

T = TypeVar("T")

LOGIN_RATE_DEFAULT = "5/15min"
REFUSAL = (
    "Too many failed sign-in attempts for this username. For your security, "
    "please wait %(minutes)s minutes and try again, or reset your password."
)


class SignInLimited(ValidationError):
    """The budget is spent. A ``ValidationError``, so that the form of whichever door
    asked (Django's sign-in forms call ``authenticate()`` in ``clean()``) shows it."""


def client_address(request: HttpRequest | None) -> str:
    """The address the request came from, as the web server saw it. Behind a proxy
    this is the proxy unless TRUSTED_PROXY_HOPS says how many (plumbing/proxy.py)."""
    if request is None:
        return "-"
    return request.META.get("REMOTE_ADDR") or "-"


def account_name(username: str) -> str:
    """The name the limit counts: the one Django signs in (NFKC), case-folded."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def password_checked(request: HttpRequest | None, username: str, check: Callable[[], T]) -> T:
    """``check()``, which checks ``username``'s password and answers something false
    when it is wrong, within the limit: refused with ``SignInLimited`` (``check`` not
    run) while the budget is spent; a wrong password counted, a right one clearing
    the count."""
    limit, period = ratelimit.parse_rate(getattr(settings, "LOGIN_RATE", LOGIN_RATE_DEFAULT))
    key = f"login:{account_name(username)}:{client_address(request)}"
    if ratelimit.is_limited(key, limit, period):
        minutes = max(1, round(ratelimit.retry_after(period) / 60))
        raise SignInLimited(REFUSAL, code="rate_limited", params={"minutes": minutes})
    answer = check()
    if answer:
        ratelimit.reset(key, period)
    else:
        ratelimit.hit(key, limit, period)
    return answer
