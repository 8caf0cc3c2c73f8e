"""The staff APIs' OpenAPI schema and reference page, /api/staff/schema/ and
/api/staff/docs/: the operator API, probe ingestion and the fleet feed. Staff only, as
the admin is (anyone else is sent to its sign-in page). The public APIs have theirs
at /api/schema/ and /api/docs/ (``customers.views.api_patterns``).
"""

import functools
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import include, path
from django.views.decorators.http import require_safe
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAdminUser

from customers.views import api_docs_context

from . import api_schema  # noqa: F401 - registers the operator and probe APIs' shapes

TOKENS = (
    "A bearer token (sp_…) created in the admin (API tokens), of the API's own scope: "
    "staff for the operator API, probe (bound to its probe region) for probe ingestion, "
    "fleet for the fleet feed."
)


def staff_api_patterns() -> list[Any]:
    """The staff API routes that the staff schema and its page describe."""
    return [
        path("api/v1/", include("incidents.urls_api")),
        path("", include("probes.urls")),
        path("api/v1/", include("fleet.urls_api")),
    ]


def describe_tokens(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """The bearer scheme's words are the customer API's; these APIs take other tokens."""
    scheme = result.get("components", {}).get("securitySchemes", {}).get("bearerToken")
    if scheme is not None:
        scheme["description"] = TOKENS
    return result


SETTINGS = {
    "TITLE": "Coordination service status: staff APIs",
    "DESCRIPTION": "The operator API (incidents and maintenance), probe ingestion and the "
    "fleet feed. " + TOKENS,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",  # the default
        "statuspage.api_docs.describe_tokens",
    ],
}


@functools.lru_cache(maxsize=1)
def staff_schema() -> dict[str, Any]:
    with patched_settings(SETTINGS):
        generator = SchemaGenerator(patterns=staff_api_patterns())
        return generator.get_schema(request=None, public=True)


staff_schema_view = admin.site.admin_view(
    SpectacularAPIView.as_view(
        patterns=staff_api_patterns(), custom_settings=SETTINGS, permission_classes=[IsAdminUser]
    )
)

# The public reference's template is the customer site's; this one is the admin's.
PAGE = """{% extends "admin/base_site.html" %}
{% block content %}<div id="content-main">
<p>{{ info.description }}</p>
<p>Version {{ info.version }} · The machine-readable schema:
<a href="{% url 'staff_api_schema' %}">OpenAPI 3 (YAML)</a>,
<a href="{% url 'staff_api_schema' %}?format=json">JSON</a>.</p>
<h2>Endpoints</h2>
{% for op in operations %}<div class="module" id="{{ op.id }}">
<h3><code>{{ op.method }} {{ op.path }}</code></h3>
{% if op.summary %}<p><strong>{{ op.summary }}</strong></p>{% endif %}
{% if op.description %}<p>{{ op.description }}</p>{% endif %}
{% if op.parameters %}<table>
<thead><tr><th scope="col">Parameter</th><th scope="col">In</th><th scope="col">Type</th>
<th scope="col">Description</th></tr></thead>
<tbody>{% for p in op.parameters %}<tr><th scope="row"><code>{{ p.name }}</code>
{% if p.required %} (required){% endif %}</th><td>{{ p.in }}</td><td>{{ p.schema.type }}
{% if p.schema.format %} ({{ p.schema.format }}){% endif %}</td><td>{{ p.description }}</td>
</tr>{% endfor %}</tbody></table>{% endif %}
{% for body in op.request %}<p>Body ({{ body.media_type }}):
{% if body.schema in shape_names %}<a href="#schema-{{ body.schema }}">{{ body.schema }}</a>
{% else %}{{ body.schema }}{% endif %}</p>{% endfor %}
<ul>{% for r in op.responses %}<li><code>{{ r.code }}</code> {{ r.description|default:"OK" }}
{% if r.schema %} — <a href="#schema-{{ r.schema }}">{{ r.schema }}</a>{% endif %}</li>
{% endfor %}</ul>
</div>{% endfor %}
<h2>Shapes</h2>
{% for shape in shapes %}<div class="module">
<h3 id="schema-{{ shape.name }}">{{ shape.name }}</h3>
{% if shape.values %}<p>One of: {{ shape.values|join:", " }}</p>{% endif %}
{% if shape.fields %}<table>
<thead><tr><th scope="col">Field</th><th scope="col">Type</th>
<th scope="col">Description</th></tr></thead>
<tbody>{% for f in shape.fields %}<tr><th scope="row"><code>{{ f.name }}</code></th>
<td>{% if f.type in shape_names %}<a href="#schema-{{ f.type }}">{{ f.type }}</a>
{% else %}{{ f.type }}{% endif %}</td><td>{{ f.description }}</td></tr>{% endfor %}
</tbody></table>{% endif %}
</div>{% endfor %}
</div>{% endblock %}
"""


@functools.cache
def _page() -> Any:
    return engines["django"].from_string(PAGE)


@require_safe
def _staff_docs(request: HttpRequest) -> HttpResponse:
    context = {**admin.site.each_context(request), **api_docs_context(staff_schema())}
    context["title"] = context["info"].get("title", "")
    return HttpResponse(_page().render(context, request))


staff_docs = admin.site.admin_view(_staff_docs)
