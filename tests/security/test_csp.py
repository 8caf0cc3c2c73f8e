"""A Content-Security-Policy on every page, snapshot included: scripts and styles
from this site only. So no page may hold an inline script, an inline style (an
attribute or an element, SVG included) or an event-handler attribute: the browser
would refuse to run or apply it.

alice owns acme; staff runs the service.
"""

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from fleet.services import tailnet_delete
from incidents.services import WindowSpec, incident_create, incident_post_update
from plumbing.tokens import api_token_create
from public.serving import SnapshotWSGI
from public.snapshot import snapshot_rebuild
from tests.conftest import T0

ROOT = Path(__file__).resolve().parents[2]
NOW = T0 + timedelta(days=1)
M = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _now(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def story(people):
    """A resolved outage on acme's shard, an open one elsewhere, a deleted tailnet."""
    past = incident_create(
        title="Logins failing in US East 1",
        body="We are **investigating**.",
        started_at=T0,
        components={people["us"]: "partial_outage"},
        shard_impacts=[WindowSpec("use1", "outage", T0, T0 + 30 * M)],
        published=True,
        at=T0,
    )
    incident_post_update(incident=past, status="resolved", body="Fixed.", at=T0 + 30 * M)
    incident_create(
        title="Slow ACL changes in EU West",
        body="Slower, not down.",
        started_at=NOW - 10 * M,
        shard_impacts=[WindowSpec("euw1", "degraded", NOW - 10 * M)],
        published=True,
        at=NOW - 10 * M,
    )
    tailnet_delete(tailnet=people["globex"], at=T0 + 2 * 60 * M)
    return past


def as_person(person=None):
    client = Client()
    if person is not None:
        client.force_login(person)
    return client


def policy_directives(header: str) -> dict[str, list[str]]:
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


def pages(people, story):
    """(who, path) for one page of every kind a visitor, member or operator opens."""
    api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"], by=people["alice"])
    anonymous, alice, staff = None, people["alice"], people["staff"]
    return [
        (anonymous, "/"),
        (anonymous, "/history/"),
        (anonymous, f"/incidents/{story.pk}/"),
        (anonymous, "/badge.svg"),
        (anonymous, "/report/"),
        (anonymous, "/subscribe/"),
        (anonymous, "/accounts/login/"),
        (anonymous, "/accounts/password_reset/"),
        (anonymous, "/api/docs/"),
        (alice, "/t/"),
        (alice, "/t/acme/"),
        (alice, "/t/acme/tokens/"),
        (alice, "/t/acme/members/"),
        (alice, "/t/acme/notifications/"),
        (alice, "/accounts/password_change/"),
        (staff, "/admin/"),
        (staff, "/admin/incidents/tailnet/"),
        (staff, f"/admin/incidents/incident/{story.pk}/change/"),
        (staff, "/admin/incidents/tailnetimpact/"),
        (staff, "/admin/reports/report/"),
    ]


def test_every_page_allows_scripts_and_styles_from_this_site_only(people, story):
    for person, path in pages(people, story):
        response = as_person(person).get(path)
        assert response.status_code == 200, path
        policy = policy_directives(response["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'"], path
        assert policy["style-src"] == ["'self'"], path
        assert policy["default-src"] == ["'self'"], path
        assert policy["object-src"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        assert "unsafe" not in response["Content-Security-Policy"], path


class InlineFinder(HTMLParser):
    """What a strict policy would block: <script> without src, <style>, style=,
    on*= handlers and javascript: links."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append(f"<script> without src: {attrs}")
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attrs:
            if name == "style":
                self.found.append(f'<{tag} style="{value}">')
            elif name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            elif name in {"href", "src", "action"} and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}={value}>")

    handle_startendtag = handle_starttag


def inline_code(html: str) -> list[str]:
    finder = InlineFinder()
    finder.feed(html)
    return finder.found


def test_no_page_holds_an_inline_script_or_style(people, story):
    found = {}
    for person, path in pages(people, story):
        response = as_person(person).get(path)
        problems = inline_code(response.content.decode())
        if problems:
            found[path] = problems
    assert found == {}


def test_the_inline_finder_finds_what_a_policy_would_block():
    assert inline_code('<p style="color:red">') == ['<p style="color:red">']
    assert inline_code("<svg><rect style='fill:red'/></svg>") == ['<rect style="fill:red">']
    assert len(inline_code("<script>alert(1)</script><style>p{}</style>")) == 2
    assert inline_code('<a href="javascript:go()">x</a><b onclick="x()">') != []
    assert inline_code('<script src="/static/js/status.js" defer></script>') == []


def _templates() -> list[Path]:
    found = list((ROOT / "templates").rglob("*.html"))
    for app in ROOT.iterdir():
        if (app / "templates").is_dir() and app.name not in {"templates", "tests"}:
            found += (app / "templates").rglob("*.html")
    # Emails are not pages: mail clients need their inline styles.
    return sorted(path for path in found if "email" not in path.name)


INLINE_IN_TEMPLATE = re.compile(
    r"""<style\b|\sstyle\s*=|<script(?![^>]*\ssrc=)[^>]*>|\son[a-z]+\s*=["']""", re.I
)


def test_no_template_holds_an_inline_script_or_style():
    assert len(_templates()) > 20
    found = {
        str(path.relative_to(ROOT)): INLINE_IN_TEMPLATE.findall(path.read_text())
        for path in _templates()
    }
    assert {path: hits for path, hits in found.items() if hits} == {}


def _call_wsgi(app, path):
    answer: dict[str, Any] = {}
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    body = b"".join(app(environ, lambda status, items: answer.update(s=status, h=items)))
    return answer["s"], dict(answer["h"]), body


def test_the_status_page_served_from_the_snapshot_carries_the_same_policy(client, story):
    live = client.get("/", {"live": "1"})
    snapshot_rebuild()
    fast = SnapshotWSGI(lambda environ, start_response: pytest.fail("reached Django"))

    status, headers, body = _call_wsgi(fast, "/")

    assert status == "200 OK"
    assert headers["Content-Security-Policy"] == live["Content-Security-Policy"]
    assert inline_code(body.decode()) == []


def test_the_snapshot_answering_for_a_failed_page_carries_the_policy(
    client, story, monkeypatch, settings
):
    live = client.get("/", {"live": "1"})
    snapshot_rebuild()

    def broken(*args, **kwargs):
        raise RuntimeError("the database is down")

    monkeypatch.setattr("public.views.component_statuses_now", broken)
    served = Client(raise_request_exception=False).get("/", {"live": "1"})
    assert served.status_code == 200  # the view failed: the snapshot answered
    assert served.content == (Path(settings.SNAPSHOT_DIR) / "current" / "index.html").read_bytes()
    assert served["Content-Security-Policy"] == live["Content-Security-Policy"]


def test_the_admins_own_styles_are_classes_in_a_stylesheet(people, story):
    page = as_person(people["staff"]).get("/admin/incidents/tailnet/").content.decode()
    assert "/static/css/admin.css" in page
    assert '<strong class="tailnet-deleted">Deleted' in page
    stylesheet = (ROOT / "static" / "css" / "admin.css").read_text()
    assert ".tailnet-deleted" in stylesheet
    assert ".report-spikes" in stylesheet
