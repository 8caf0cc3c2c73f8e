"""DRF throttles that never make an API fail because the cache did: alerting tools
must be able to open an incident, and people to report an outage, while Redis is
the incident."""

import logging
from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from .models import ApiToken

logger = logging.getLogger(__name__)


class FailOpenScopedThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, with a default rate when the settings name none for
    the scope, that lets requests through when the cache is unreachable."""

    default_rate = "60/min"

    def get_rate(self) -> str | None:
        # Read at request time (DRF reads it at import) so the setting can change.
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return str(rate) if rate else self.default_rate

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception as error:
            logger.warning("%s throttle skipped, cache unavailable: %s", self.scope, error)
            return True


class PerTokenThrottle(FailOpenScopedThrottle):
    """Counted per API token (each of a person's tokens on its own), else per
    signed-in person, else per address."""

    def get_cache_key(self, request: Request, view: Any) -> str:
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
