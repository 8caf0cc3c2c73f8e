from django import template

from incidents.models import ComponentStatus

register = template.Library()


@register.filter
def component_status_label(status: str) -> str:
    """'partial_outage' -> 'Partial outage' (Statuspage's wording)."""
    try:
        return str(ComponentStatus(status).label)
    except ValueError:
        return status
