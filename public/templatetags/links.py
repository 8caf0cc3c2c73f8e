"""``{% link "status" %}``: the links of every page's frame, reversed once.

The head, header and footer of every page (templates/base.html) link to the same
few views; ``{% url %}`` reverses its view on every render (~25 µs each, a tenth of a
cached customer page's time). These depend only on the URLconf and the script
prefix, so each is reversed once per URLconf, prefix and process. Works with or without a
request (the public pages render without one).
"""

import functools

from django import template
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

register = template.Library()

LINKS = {
    "status": "public:status",
    "history": "public:history",
    "feed_rss": "public:feed_rss",
    "feed_atom": "public:feed_atom",
    "badge": "public:badge",
    "logout": "logout",
}


@functools.cache
def _reversed(prefix: str, urlconf: str) -> dict[str, str]:
    return {name: reverse(view, urlconf=urlconf) for name, view in LINKS.items()}


@register.simple_tag
def link(name: str) -> str:
    """The path of one of LINKS; an unknown name is a template error, not a blank."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    return _reversed(get_script_prefix(), urlconf)[name]
