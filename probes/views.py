import ipaddress
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from plumbing.metrics import COLLECTORS
from plumbing.proxy import own_address
from plumbing.tokens import bearer_secret, token_for_secret

from .metrics import ProbeCollector


def _may_read_metrics(request: HttpRequest) -> bool:
    secret = bearer_secret(request.headers.get("Authorization", ""))
    if secret is not None:
        token = token_for_secret(secret)
        return token is not None and token.scope in {"metrics", "staff"}
    # Without a token, only the operator's networks; and only if the address is the
    # visitor's own, not a proxy's that every visitor would share (plumbing.proxy).
    try:
        address = ipaddress.ip_address(own_address(request) or "")
    except ValueError:
        return False
    return any(address in network for network in metrics_networks())


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(entry: str) -> Network | None:
    """An entry of ``METRICS_ALLOWED_NETWORKS`` as a network (host bits allowed:
    10.1.2.3/8 is 10.0.0.0/8), or None if it is not one."""
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


def metrics_networks() -> list[Network]:
    """The allowed networks. An entry that is none is skipped here and refused at start
    by the check ``probes.E001``."""
    return [n for n in map(_network, settings.METRICS_ALLOWED_NETWORKS) if n is not None]


def check_metrics_networks(**kwargs: Any) -> list[CheckMessage]:
    bad = [e for e in settings.METRICS_ALLOWED_NETWORKS if _network(e) is None]
    if not bad:
        return []
    return [
        Error(
            f"METRICS_ALLOWED_NETWORKS holds what is not a network: {', '.join(map(repr, bad))}. "
            "Write addresses or networks like 10.0.0.0/8, separated by commas.",
            id="probes.E001",
        )
    ]


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. Shard names are internal: a bearer token (scope
    metrics) or an allowed address, else 404 as if there were nothing here."""
    if not _may_read_metrics(request):
        return HttpResponseNotFound()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector())
    for factory in COLLECTORS:
        registry.register(factory())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
