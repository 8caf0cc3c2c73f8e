"""Every HTML form and query string, fuzzed by hypothesis: whatever a browser (or
anyone) sends, no answer is a server error and nothing is logged at ERROR.

Each page is fetched as the person who uses it; its forms are read off the HTML
(action, method, fields and the values the page offers), and each example sends one
of them back with some fields left as offered, some replaced by junk and some left
out, or requests the page with a fuzzed query string (the names its forms and links
use, and the ones the views read).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from .conftest import FUZZ, Harness, World

# Query parameters the views read, beyond those their pages' forms and links name.
QUERY_NAMES = ("page", "component", "from", "to", "deliveries", "token", "next", "format")


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, list[str]] = field(default_factory=dict)


class FormsAndLinks(HTMLParser):
    """A page's forms (with the values it offers for each field) and the query
    parameter names of its links to itself."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.forms: list[Form] = []
        self.link_names: set[str] = set()
        self._form: Form | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form":
            action = urljoin(self.url, a.get("action") or self.url)
            self._form = Form(action, (a.get("method") or "get").lower())
            self.forms.append(self._form)
        elif tag == "a" and a.get("href"):
            href = urlsplit(urljoin(self.url, a["href"]))
            if href.path == urlsplit(self.url).path:
                self.link_names |= {name for name, _ in parse_qsl(href.query)}
        elif self._form is not None and a.get("name"):
            values = self._form.fields.setdefault(a["name"], [])
            if tag in ("option", "button") or (
                tag == "input" and a.get("type") not in ("submit", "button")
            ):
                values.append(a.get("value", ""))
            elif tag == "textarea":
                self._textarea = a["name"]
        elif tag == "option" and self._form is not None and self._form.fields:
            select = list(self._form.fields)[-1]
            self._form.fields[select].append(a.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea is not None:
            self._form.fields[self._textarea].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None


@dataclass(frozen=True)
class Page:
    name: str
    who: str | None  # the person signed in, or None
    url: Callable[[World], str]


PAGES = [
    Page("status", None, lambda w: "/"),
    Page("history", None, lambda w: "/history/"),
    Page("incident", None, lambda w: f"/incidents/{w.incidents['open']}/"),
    Page("feed-rss", None, lambda w: "/feed.rss"),
    Page("feed-atom", None, lambda w: "/feed.atom"),
    Page("badge", None, lambda w: "/badge.svg"),
    Page("component-badge", None, lambda w: "/badge/coordination-us-east.svg"),
    Page("report", None, lambda w: "/report/"),
    Page("report-member", "alice", lambda w: "/report/"),
    Page("report-thanks", None, lambda w: f"/report/thanks/{w.report}/"),
    Page("subscribe", None, lambda w: "/subscribe/"),
    Page("subscribe-sent", None, lambda w: "/subscribe/sent/"),
    Page("confirm", None, lambda w: f"/subscribe/confirm/{w.links['confirm']}/"),
    Page("manage", None, lambda w: f"/subscribe/manage/{w.links['manage']}/"),
    Page("unsubscribe", None, lambda w: f"/subscribe/unsubscribe/{w.links['unsubscribe']}/"),
    Page("login", None, lambda w: "/accounts/login/"),
    Page("admin-login", None, lambda w: "/admin/login/"),
    Page("password-reset", None, lambda w: "/accounts/password_reset/"),
    Page("password-change", "alice", lambda w: "/accounts/password_change/"),
    Page("tailnets", "alice", lambda w: "/t/"),
    Page("tailnet", "alice", lambda w: "/t/acme/"),
    Page("tailnet-member", "bob", lambda w: "/t/globex/"),
    Page("uptime-csv", "alice", lambda w: "/t/acme/uptime.csv"),
    Page("tokens", "alice", lambda w: "/t/acme/tokens/"),
    Page("members", "alice", lambda w: "/t/acme/members/"),
    Page("notifications", "alice", lambda w: "/t/acme/notifications/"),
    Page("notifications-member", "bob", lambda w: "/t/globex/notifications/"),
    Page("invitation", None, lambda w: f"/invite/{w.invitation}/"),
    Page("invitation-account", None, lambda w: f"/invite/{w.invitation}/new-account/"),
]

# Text a browser can send (no lone surrogates: they cannot be encoded).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
junk = st.one_of(
    text,
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "0",
            "-1",
            "1e3",
            "99999999999999999999",
            "²",
            "١٢",
            "0001-01-01",
            "9999-12-31",
            "2026-02-30",
            "2026-01-05T10:25",
            "https://example.com/",
            "http://127.0.0.1/",
            "a@b",
            "x" * 5000,
        ]
    ),
    st.integers().map(str),
)


def _value(offered: list[str]) -> st.SearchStrategy[Any]:
    """A field's value: what the page offers, junk, several values, or none at all."""
    choices = [junk, st.lists(junk, min_size=2, max_size=3), st.none()]
    if offered:
        choices.insert(0, st.sampled_from(offered))
    return st.one_of(*choices)


@st.composite
def _requests(draw: st.DrawFn, forms: list[Form], url: str, names: set[str]) -> Form:
    """One request back to the page: a form of it filled in, or its query string."""
    query = Form(url, "get", {name: [] for name in sorted(names)})
    form = draw(st.sampled_from([*forms, query]))
    data = {}
    for name, offered in form.fields.items():
        value = draw(_value(offered))
        if value is not None:
            data[name] = value
    return Form(form.action, form.method, data)


def _cookies_of(who: str | None, people: dict[str, Any]) -> SimpleCookie:
    client = Client()
    if who is not None:
        client.force_login(people[who])
    return client.cookies


def _send(cookies: SimpleCookie, request: Form) -> Any:
    client = Client(raise_request_exception=False)
    client.cookies = SimpleCookie({name: morsel.value for name, morsel in cookies.items()})
    if request.method == "post":
        return client.post(request.action, request.fields)
    query = urlencode(request.fields, doseq=True)
    return client.get(f"{request.action}?{query}" if query else request.action)


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_no_form_or_query_string_is_a_server_error(page, harness: Harness, world, people):
    url = page.url(world)
    cookies = _cookies_of(page.who, people)
    with harness.request():
        shown = _send(cookies, Form(url, "get"))
    assert harness.problem(shown.status_code, f"GET {url}") is None
    html = FormsAndLinks(url)
    if "html" in shown.get("Content-Type", ""):
        html.feed(shown.content.decode())
    names = set(QUERY_NAMES) | html.link_names
    forms = [form for form in html.forms if urlsplit(form.action).path != "/accounts/logout/"]
    for form in forms:
        if form.method == "get" and urlsplit(form.action).path == url:
            names |= set(form.fields)

    @FUZZ
    @given(request=_requests(forms, url, names))
    def fuzz(request: Form) -> None:
        with harness.request():
            response = _send(cookies, request)
        what = f"{request.method.upper()} {request.action} {request.fields!r}"
        problem = harness.problem(response.status_code, what)
        assert problem is None, problem

    fuzz()
