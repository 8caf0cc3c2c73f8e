"""The tailnet page's "Your reports" section, contributed by this app: the tailnet's
page (customers) includes it by name and so needs no import of reports."""

from typing import Any

from django import template

from reports.queries import tailnet_reports

register = template.Library()


@register.inclusion_tag("reports/_tailnet_reports.html")
def reports_of(tailnet: Any) -> dict[str, Any]:
    """A tailnet's outage reports for its members, newest first. One query."""
    return {"reports": tailnet_reports(tailnet)}
