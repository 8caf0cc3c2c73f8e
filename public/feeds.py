"""RSS and Atom feeds of the public incident timeline.

One item per incident update, not per incident: feed readers notify on items they
have not seen (by guid/id) and mostly ignore edits of items they already have, so
"Resolved" posted an hour after "Investigating" must be an item of its own to be
noticed. Each item links to the update on the incident's permalink page. Only
published incidents appear; links are absolute, on the site's configured address
(``plumbing.site``), never the request's Host: the feeds are cached publicly.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.syndication.views import Feed
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed, SyndicationFeed
from django.utils.html import format_html, format_html_join

from incidents.models import ComponentStatus, Incident, IncidentStatus, IncidentUpdate
from incidents.queries import public_updates
from plumbing.site import absolute

FEED_ITEMS = 50
TITLE = "Coordination service status"
DESCRIPTION = (
    "Incidents and maintenance of the coordination service, one item per update: "
    "what is affected, for whom, and what keeps working."
)


def _status_label(value: str, choices: type[IncidentStatus] | type[ComponentStatus]) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


class IncidentUpdatesRss(Feed):
    feed_type: type[SyndicationFeed] = Rss201rev2Feed
    title = TITLE
    description = DESCRIPTION

    def link(self) -> str:
        return absolute(reverse("public:status"))

    def feed_url(self) -> str:
        return absolute(reverse("public:feed_rss"))

    def items(self) -> list[IncidentUpdate]:
        return public_updates(limit=FEED_ITEMS)

    def item_title(self, item: IncidentUpdate) -> str:
        # Many RSS readers treat a title as HTML: escape the markup characters once
        # more (the XML writer escapes again), but leave apostrophes and quotes
        # alone, so readers that treat it as text don't show "&#x27;".
        title = self._title(item)
        return title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    @staticmethod
    def _title(item: IncidentUpdate) -> str:
        incident: Incident = item.incident
        kind = "Maintenance: " if incident.kind == Incident.Kind.MAINTENANCE else ""
        return f"{kind}{incident.title} — {_status_label(item.status, IncidentStatus)}"

    def item_description(self, item: IncidentUpdate) -> str:
        changes = [
            (
                change.get("name") or change.get("code", ""),
                _status_label(str(change.get("new_status", "")), ComponentStatus),
            )
            for change in item.affected_components
            if isinstance(change, dict)
        ]
        components = (
            format_html(
                "<p>Components: {}</p>",
                format_html_join(", ", "{} ({})", changes),
            )
            if changes
            else ""
        )
        # body_html is Markdown rendered and sanitized (nh3); the feed generator
        # escapes it once more as XML text, as RSS/Atom readers expect HTML.
        return str(item.body_html) + str(components)

    def item_link(self, item: IncidentUpdate) -> str:
        url = reverse("public:incident", args=[item.incident_id])
        return absolute(f"{url}#update-{item.pk}")

    # The guid (Atom: id) is the absolute item link: unique per update, and stable.
    item_guid_is_permalink = True

    def item_pubdate(self, item: IncidentUpdate) -> datetime:
        return item.display_at

    def item_updateddate(self, item: IncidentUpdate) -> datetime:
        return item.display_at

    def item_categories(self, item: IncidentUpdate) -> list[str]:
        return [str(item.incident.get_kind_display()), _status_label(item.status, IncidentStatus)]


class IncidentUpdatesAtom(IncidentUpdatesRss):
    feed_type = Atom1Feed
    subtitle = DESCRIPTION

    def feed_url(self) -> str:
        return absolute(reverse("public:feed_atom"))

    def item_title(self, item: IncidentUpdate) -> str:
        # An Atom title is text (type="text"): escaped once, by the XML writer.
        return self._title(item)
