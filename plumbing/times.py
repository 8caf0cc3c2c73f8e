"""Times as every page shows them: UTC in the markup, with the viewer's local time
added beside it by static/js/status.js."""

from datetime import UTC, datetime

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe


def utc(value: datetime | None, style: str = "datetime") -> SafeString:
    """``<time datetime="2026-01-05T10:00:00Z">Jan 5, 2026, 10:00 UTC</time>``.

    ``style`` is "datetime" or "time" (just "10:00 UTC"). The script adds the
    viewer's local time beside it; without the script, the UTC text reads alone.
    """
    if value is None:
        return mark_safe("")
    value = value.astimezone(UTC)
    clock = f"{value:%H:%M} UTC"
    text = clock if style == "time" else f"{value:%b} {value.day}, {value.year}, {clock}"
    return format_html(
        '<time class="utc" datetime="{}" data-style="{}">{}</time>',
        value.strftime("%Y-%m-%dT%H:%M:%SZ"),
        style,
        text,
    )


def same_utc_day(start: datetime | None, end: datetime | None) -> bool:
    return (
        start is not None
        and end is not None
        and start.astimezone(UTC).date() == end.astimezone(UTC).date()
    )
