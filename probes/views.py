import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from plumbing.metrics import COLLECTORS
from plumbing.tokens import bearer_secret, token_for_secret

from .metrics import ProbeCollector


def _may_read_metrics(request: HttpRequest) -> bool:
    secret = bearer_secret(request.headers.get("Authorization", ""))
    if secret is not None:
        token = token_for_secret(secret)
        return token is not None and token.scope in {"metrics", "staff"}
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in settings.METRICS_ALLOWED_NETWORKS)


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
