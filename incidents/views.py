"""Public pages. Thin: a query, then a template."""

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from .impact import describe_duration, span_seconds
from .models import Incident
from .queries import incident_blast_radius, status_overview


@require_safe
def status_page(request: HttpRequest) -> HttpResponse:
    return render(request, "status/index.html", {"overview": status_overview()})


@require_safe
def incident_detail(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = get_object_or_404(
        Incident.objects.filter(published=True).prefetch_related(
            "updates", "affected_components__component", "shard_impacts__shard"
        ),
        pk=incident_id,
    )
    now = timezone.now()
    context = {
        "incident": incident,
        "blast_radius": incident_blast_radius(incident=incident, as_of=now),
        "duration": describe_duration(
            span_seconds(incident.started_at, incident.resolved_at, as_of=now)
        ),
        "time_to_detect": (
            describe_duration(span_seconds(incident.started_at, incident.detected_at, as_of=now))
            if incident.detected_at
            else None
        ),
    }
    return render(request, "status/incident.html", context)


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the process answers and the database does."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # any database error means "not ready"
        return JsonResponse({"status": "error", "database": str(error)[:200]}, status=503)
    return JsonResponse({"status": "ok"})
