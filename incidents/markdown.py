"""Markdown for incident updates and postmortems, rendered then sanitized.

Operators write Markdown; the public sees HTML. Markdown passes raw HTML through,
so the rendered HTML is cleaned with nh3 (an allow-list sanitizer) before it is
ever marked safe.
"""

import threading

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "em", "h3", "h4", "h5", "hr", "i",
    "li", "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}


_local = threading.local()


def _converter() -> md.Markdown:
    # Building a Markdown instance (loading its extensions) costs more than most
    # conversions; one per thread, reset between uses (it is not thread-safe).
    converter = getattr(_local, "converter", None)
    if converter is None:
        converter = _local.converter = md.Markdown(
            extensions=["extra", "sane_lists"], output_format="html"
        )
    return converter


def render_markdown(text: str) -> SafeString:
    html = _converter().reset().convert(text)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
    )
    return mark_safe(clean)  # noqa: S308 - sanitized by nh3 just above
