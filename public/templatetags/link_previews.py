"""``{% page_preview as link_preview %}``: the link preview of the page being rendered
(templates/base.html writes its meta tags): the one its view computed
(``public.previews``), else the neutral one, so that a page outside the public site
never says more than the site's name."""

from typing import Any

from django import template

from public import previews

register = template.Library()


@register.simple_tag(takes_context=True)
def page_preview(context: Any) -> previews.Preview:
    preview = context.get("preview")
    return preview if isinstance(preview, previews.Preview) else previews.neutral()
