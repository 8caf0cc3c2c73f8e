"""The public pages are served from a snapshot: fast, cacheable, and still there when
the database is not (public/snapshot.py, public/serving.py)."""

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from csp.middleware import CSPMiddleware
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.http import HttpResponse, HttpResponseServerError
from django.middleware.security import SecurityMiddleware
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.utils import timezone
from django.utils.http import http_date

from incidents.models import Component, ComponentGroup, Incident
from incidents.services import WindowSpec, incident_create
from public import snapshot
from public.serving import CACHE_CONTROL, SnapshotMiddleware, SnapshotWSGI
from public.snapshot import SnapshotError, snapshot_rebuild
from public.tasks import rebuild_snapshot
from tests.conftest import T0, closed_port, database_unreachable, real_broker

M = timedelta(minutes=1)
NOW = T0 + 30 * M
ROOT = Path(__file__).resolve().parents[2]
TITLE = "Coordination server unavailable in us-east"

# A page that can be made to fail, for the tests of a rebuild that meets an error
# (used as ROOT_URLCONF by the tests that need it; every real page is included).
FLAKY = {"fail": False, "body": "first"}


def _flaky(request):
    if FLAKY["fail"]:
        raise RuntimeError("this page is broken right now")
    return HttpResponse(FLAKY["body"], content_type="text/plain")


urlpatterns = [path("flaky/", _flaky), path("", include("statuspage.urls"))]


@pytest.fixture
def client(visitor):
    """Requests go through the production stack: the snapshot's WSGI layer first."""
    return visitor


@pytest.fixture(autouse=True)
def snapshot_dir(settings, tmp_path):
    settings.SNAPSHOT_DIR = tmp_path / "snapshot"  # also drops the in-memory copy
    yield settings.SNAPSHOT_DIR
    snapshot.forget()


@pytest.fixture
def fleet(fleet):
    """The fleet, as if set up in transactions committed long ago. ``committed()``
    runs only the callbacks queued inside it, while the fixture's writes queued a
    rebuild in the test's one open transaction, which would absorb the block's."""
    snapshot._pending.clear()
    return fleet


@pytest.fixture
def frozen(time_machine):
    """Pages show durations and "as of" times: freeze the clock so that two
    renderings of the same data are the same bytes."""
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def flaky_page(settings, monkeypatch):
    settings.ROOT_URLCONF = __name__
    monkeypatch.setattr(snapshot, "SNAPSHOT_PATHS", (*snapshot.SNAPSHOT_PATHS, "/flaky/"))
    monkeypatch.setitem(FLAKY, "fail", False)
    monkeypatch.setitem(FLAKY, "body", "first")
    return FLAKY


def _unreachable_database_url() -> str:
    if connection.vendor == "postgresql":
        return f"postgres://postgres@127.0.0.1:{closed_port()}/statuspage"
    return "sqlite:////nonexistent/directory/db.sqlite3"


def _incident(*, title=TITLE, published=True, at=T0):
    return incident_create(
        title=title,
        body="Logins are failing on one shard.",
        started_at=at,
        components={Component.objects.get(slug="coordination-us-east"): "partial_outage"},
        shard_impacts=[WindowSpec("use1", "outage", at, at + 24 * M)],
        published=published,
        at=at,
    )


def _generation(directory: Path) -> str:
    return os.readlink(directory / "current")


def _etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


# --- Serving ---------------------------------------------------------------------------


def test_after_a_rebuild_a_visitor_gets_the_live_page_from_the_snapshot_without_queries(
    client, fleet, frozen, django_assert_num_queries
):
    _incident()
    live = client.get("/")  # no snapshot yet: the live view answers

    snapshot_rebuild()
    with django_assert_num_queries(0):
        page = client.get("/")

    assert page.status_code == 200
    assert page.content == live.content
    assert TITLE in page.content.decode()
    assert page["Content-Type"] == "text/html; charset=utf-8"
    assert page["Content-Length"] == str(len(page.content))
    assert page["ETag"] == _etag(page.content)
    assert page["Last-Modified"] == http_date(NOW.timestamp())
    assert page["Cache-Control"] == (
        "public, max-age=30, stale-while-revalidate=60, stale-if-error=86400"
    )
    assert page["Vary"] == "Accept-Encoding"


def test_incident_pages_v2_json_and_badges_are_served_without_queries_too(
    client, fleet, frozen, django_assert_num_queries
):
    incident = _incident()
    snapshot_rebuild()
    with django_assert_num_queries(0):
        page = client.get(f"/incidents/{incident.pk}/")
        summary = client.get("/api/v2/summary.json")
        badge = client.get("/badge/coordination-us-east.svg")
    assert TITLE in page.content.decode()
    assert badge["Content-Type"].startswith("image/svg+xml")
    assert summary["Content-Type"].startswith("application/json")
    assert [item["name"] for item in summary.json()["incidents"]] == [TITLE]


def test_a_visitor_with_a_current_copy_gets_304_without_a_body(client, fleet, frozen):
    _incident()
    snapshot_rebuild()
    first = client.get("/")
    etag, modified = first["ETag"], first["Last-Modified"]

    for headers in (
        {"HTTP_IF_NONE_MATCH": etag},
        {"HTTP_IF_NONE_MATCH": f'"something-else", W/{etag}'},  # weak comparison
        {"HTTP_IF_NONE_MATCH": "*"},
        {"HTTP_IF_MODIFIED_SINCE": modified},
    ):
        again = client.get("/", **headers)
        assert again.status_code == 304, headers
        assert again.content == b""
        assert again["ETag"] == etag
        assert again["Cache-Control"] == CACHE_CONTROL

    # An older copy, or a different one (If-None-Match wins over the date): the page.
    older = http_date((NOW - timedelta(hours=1)).timestamp())
    assert client.get("/", HTTP_IF_MODIFIED_SINCE=older).status_code == 200
    stale = client.get("/", HTTP_IF_NONE_MATCH='"old"', HTTP_IF_MODIFIED_SINCE=modified)
    assert stale.status_code == 200
    assert stale.content == first.content


def test_head_gets_the_headers_of_the_page_without_its_body(client, fleet):
    snapshot_rebuild()
    page = client.get("/")
    head = client.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert head["Content-Length"] == str(len(page.content))
    assert head["ETag"] == page["ETag"]


def test_the_snapshot_carries_the_security_headers_every_page_gets(client, fleet):
    snapshot_rebuild()
    page = client.get("/", secure=True)
    live = client.get("/healthz", secure=True)  # a page that is never snapshotted
    for header in (
        "X-Frame-Options",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Strict-Transport-Security",
        "Cross-Origin-Opener-Policy",
    ):
        assert page[header] == live[header], header
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"


def test_a_logged_in_operator_gets_the_same_public_page(
    client, fleet, admin_user, django_assert_num_queries
):
    snapshot_rebuild()
    anonymous = client.get("/").content
    client.force_login(admin_user)
    with django_assert_num_queries(0):
        assert client.get("/").content == anonymous


def test_a_query_string_goes_to_the_live_view_but_tracking_parameters_do_not(
    client, fleet, django_assert_num_queries
):
    snapshot_rebuild()
    with django_assert_num_queries(0):
        assert client.get("/?utm_source=news&fbclid=abc").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/history/?component=coordination-us-east")
    assert page.status_code == 200
    assert len(queries) > 0  # rendered live: it filters
    assert page["Cache-Control"] == CACHE_CONTROL
    assert page["ETag"] == _etag(page.content)


def test_before_the_first_snapshot_the_live_page_is_cacheable_and_revalidates(
    client, fleet, time_machine
):
    # The clock stands still: the page says "as of" to the minute, and two requests
    # that straddle a minute are two different pages.
    time_machine.move_to(timezone.now(), tick=False)
    live = client.get("/")
    assert live["Cache-Control"] == CACHE_CONTROL
    assert live["ETag"] == _etag(live.content)
    assert client.get("/", HTTP_IF_NONE_MATCH=live["ETag"]).status_code == 304


def _call_wsgi(app, path, *, method="GET", query="", secure=False, **headers):
    answer: dict[str, Any] = {}
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "443" if secure else "80",
        "wsgi.url_scheme": "https" if secure else "http",
        **headers,
    }
    body = b"".join(app(environ, lambda status, items: answer.update(s=status, h=items)))
    return int(answer["s"][:3]), dict(answer["h"]), body


def fallback(rf, method, path, *, secure=False, **headers):
    """The snapshot answering for a snapshotted page whose live view failed, as
    Django's stack returns it (SecurityMiddleware and CSPMiddleware outside, as in
    settings)."""
    stack = SecurityMiddleware(
        CSPMiddleware(SnapshotMiddleware(lambda request: HttpResponseServerError()))
    )
    response = stack(rf.generic(method, path, secure=secure, **headers))
    return response.status_code, dict(response.items()), response.content


def test_the_wsgi_fast_path_and_the_fallback_answer_alike(rf, fleet):
    snapshot_rebuild()
    fast = SnapshotWSGI(lambda environ, start_response: pytest.fail("reached Django"))
    _, first, _ = _call_wsgi(fast, "/")

    for method, secure, headers in (
        ("GET", False, {}),
        ("GET", True, {}),
        ("HEAD", True, {}),
        ("GET", True, {"HTTP_IF_NONE_MATCH": first["ETag"]}),
        ("GET", False, {"HTTP_IF_NONE_MATCH": '"other"'}),
    ):
        answer = _call_wsgi(fast, "/", method=method, secure=secure, **headers)
        assert answer == fallback(rf, method, "/", secure=secure, **headers)

    assert _call_wsgi(fast, "/", query="utm_source=news")[0] == 200  # tracking only


def test_the_wsgi_fast_path_hands_everything_else_to_django(fleet, settings):
    snapshot_rebuild()
    settings.SECURE_SSL_REDIRECT = True
    handed = []

    def django(environ, start_response):
        handed.append(environ["PATH_INFO"])
        start_response("204 No Content", [])
        return []

    fast = SnapshotWSGI(django)

    _call_wsgi(fast, "/", method="POST")
    _call_wsgi(fast, "/", query="component=api")
    _call_wsgi(fast, "/admin/", secure=True)
    _call_wsgi(fast, "/")  # plain http: Django redirects it to https
    assert len(handed) == 4
    # X-Forwarded-Proto from anyone but a trusted proxy is not believed...
    _call_wsgi(fast, "/", HTTP_X_FORWARDED_PROTO="https")
    assert len(handed) == 5
    # ...behind one that terminated TLS (TRUSTED_PROXY_HOPS sets
    # SECURE_PROXY_SSL_HEADER), it answers.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    fast = SnapshotWSGI(django)
    status, headers, _ = _call_wsgi(fast, "/", HTTP_X_FORWARDED_PROTO="https")
    assert status == 200
    assert "Strict-Transport-Security" in headers


# --- Rebuilding --------------------------------------------------------------------------


def test_publishing_an_incident_rebuilds_the_snapshot_after_commit(
    client, fleet, committed, django_assert_num_queries
):
    snapshot_rebuild()
    assert TITLE not in client.get("/").content.decode()

    with committed():
        incident = _incident()

    with django_assert_num_queries(0):
        page = client.get("/")
        incident_page = client.get(f"/incidents/{incident.pk}/")
    assert TITLE in page.content.decode()
    assert incident_page.status_code == 200


def test_a_draft_does_not_change_what_visitors_get(client, fleet, frozen, committed, snapshot_dir):
    snapshot_rebuild()
    before = client.get("/")
    generation = _generation(snapshot_dir)

    with committed():
        _incident(published=False)

    assert _generation(snapshot_dir) != generation  # it did rebuild...
    after = client.get("/")
    assert after.content == before.content  # ...to the same bytes
    assert after["ETag"] == before["ETag"]
    assert after["Last-Modified"] == before["Last-Modified"]


def test_an_unpublished_incident_leaves_the_snapshot(client, fleet, committed):
    with committed():
        incident = _incident()
    assert client.get(f"/incidents/{incident.pk}/").status_code == 200

    with committed():
        incident.published = False
        incident.save()

    assert client.get(f"/incidents/{incident.pk}/").status_code == 404
    assert TITLE not in client.get("/").content.decode()


def test_a_transaction_queues_one_rebuild_however_much_it_changes(fleet, committed, monkeypatch):
    queued = []
    monkeypatch.setattr(snapshot, "queue_rebuild", lambda: queued.append(1))

    with committed():
        incident = _incident()
        incident.title = "Logins failing in us-east"
        incident.save()
        Component.objects.create(slug="api", name="API")
    # One for the operator's transaction, one for the affected-tailnet rebuild that
    # ran after it (its bulk INSERT changes the blast radius on the public pages).
    assert len(queued) == 2

    with committed():
        Component.objects.create(slug="login", name="Login")
    assert len(queued) == 3


def test_a_rolled_back_change_queues_nothing_and_does_not_swallow_the_next(
    fleet, committed, monkeypatch
):
    queued = []
    monkeypatch.setattr(snapshot, "queue_rebuild", lambda: queued.append(1))

    with committed(), contextlib.suppress(RuntimeError), transaction.atomic():
        Component.objects.create(slug="api", name="API")
        raise RuntimeError("rolled back")
    assert queued == []

    with committed():
        with contextlib.suppress(RuntimeError), transaction.atomic():
            Component.objects.create(slug="api", name="API")
            raise RuntimeError("rolled back")
        ComponentGroup.objects.create(name="Everything else")
    assert len(queued) == 1


def test_building_costs_the_same_queries_for_1_or_10_incidents_besides_their_own_pages(
    fleet, frozen
):
    first = _incident()
    cache.clear()  # the reliability report's cached months: both builds compute them
    with CaptureQueriesContext(connection) as one:
        snapshot_rebuild()
    with CaptureQueriesContext(connection) as per_page:
        list(snapshot.capture([f"/incidents/{first.pk}/"]))

    for n in range(9):
        _incident(title=f"Incident {n}", at=T0 - (n + 1) * timedelta(hours=1))
    cache.clear()
    with CaptureQueriesContext(connection) as ten:
        result = snapshot_rebuild()

    assert len([p for p in result.unchanged + result.changed if p.startswith("/incidents/")]) == 10
    assert len(per_page) > 0
    assert len(ten) - len(one) == 9 * len(per_page)


def test_a_page_that_fails_keeps_its_last_good_copy(client, fleet, flaky_page):
    snapshot_rebuild()
    flaky_page["fail"] = True

    result = snapshot_rebuild()

    assert result.carried_over == ["/flaky/"]
    page = client.get("/flaky/")
    assert page.status_code == 200
    assert page.content == b"first"


def test_the_command_fails_loudly_when_a_page_does_not_render(fleet, flaky_page):
    call_command("rebuild_snapshot", stdout=StringIO())
    flaky_page["fail"] = True
    err = StringIO()

    with pytest.raises(CommandError, match="1 failed"):
        call_command("rebuild_snapshot", stdout=StringIO(), stderr=err)

    assert "failed    /flaky/: answered 500 (its last good copy stays)" in err.getvalue()


def test_the_task_logs_a_page_that_does_not_render_as_an_error(fleet, flaky_page, caplog):
    flaky_page["fail"] = True
    with caplog.at_level(logging.ERROR, logger="public.tasks"):
        rebuild_snapshot()
    assert "these pages failed to render: /flaky/" in caplog.text


def test_last_modified_moves_only_when_the_bytes_change(client, fleet, flaky_page, time_machine):
    time_machine.move_to(NOW, tick=False)
    snapshot_rebuild()
    first = client.get("/flaky/")

    time_machine.move_to(NOW + 5 * M, tick=False)
    snapshot_rebuild()
    assert client.get("/flaky/")["Last-Modified"] == first["Last-Modified"]

    flaky_page["body"] = "second"
    time_machine.move_to(NOW + 10 * M, tick=False)
    result = snapshot_rebuild()
    changed = client.get("/flaky/")
    assert "/flaky/" in result.changed
    assert changed.content == b"second"
    assert changed["Last-Modified"] == http_date((NOW + 10 * M).timestamp())
    assert changed["ETag"] != first["ETag"]


def test_paths_no_view_serves_are_skipped(fleet, monkeypatch):
    monkeypatch.setattr(snapshot, "SNAPSHOT_PATHS", (*snapshot.SNAPSHOT_PATHS, "/not-built/"))
    result = snapshot_rebuild()
    assert result.skipped["/not-built/"] == "no view serves it (yet)"
    assert "/" in result.changed


def test_a_rebuild_queued_before_the_last_one_started_is_skipped(fleet, snapshot_dir):
    import time

    requested_at = time.time()
    snapshot_rebuild()
    generation = _generation(snapshot_dir)
    assert snapshot_rebuild(requested_at=requested_at).generation is None
    assert _generation(snapshot_dir) == generation
    assert snapshot_rebuild(requested_at=time.time()).generation != generation


def test_old_generations_are_pruned(fleet, snapshot_dir):
    for _ in range(7):
        snapshot_rebuild()
    generations = sorted(child.name for child in snapshot_dir.glob("g*"))
    assert len(generations) == snapshot.KEEP_GENERATIONS + 1
    assert _generation(snapshot_dir) == generations[-1]
    assert not list(snapshot_dir.glob(".tmp-*"))


def test_a_damaged_generation_is_never_served(client, fleet, committed, snapshot_dir):
    snapshot_rebuild()
    good = client.get("/").content
    with committed():  # one more generation (no windows, so no second rebuild)
        incident_create(title=TITLE, body="Investigating.", started_at=T0, published=True)
    (snapshot_dir / _generation(snapshot_dir) / "index.html").write_bytes(b"<html>torn")
    snapshot.forget()  # a process starting now

    page = client.get("/")
    assert page.status_code == 200
    assert page.content == good  # the previous generation, intact


def test_the_rebuild_command_builds_it_now(client, fleet, django_assert_num_queries):
    out = StringIO()
    call_command("rebuild_snapshot", stdout=out)
    assert "changed   /\n" in out.getvalue()
    with django_assert_num_queries(0):
        assert client.get("/").status_code == 200


# --- Failure: database, broker, restart ----------------------------------------------------


def test_the_pages_are_served_while_the_database_is_unreachable(fleet, frozen):
    client = Client(raise_request_exception=False)
    _incident()
    snapshot_rebuild()
    page = client.get("/").content

    with database_unreachable():
        assert client.get("/healthz").status_code == 503  # really down
        assert client.get("/").content == page
        summary = client.get("/api/v2/summary.json")
        assert summary.status_code == 200
        assert [item["name"] for item in summary.json()["incidents"]] == [TITLE]
        # A query string goes to the live view, which fails: the snapshot answers.
        fallback = client.get("/?component=coordination-us-east")
        assert fallback.status_code == 200
        assert fallback.content == page


def test_a_rebuild_while_the_database_is_unreachable_keeps_the_last_snapshot(
    client, fleet, snapshot_dir, caplog
):
    snapshot_rebuild()
    generation = _generation(snapshot_dir)

    with database_unreachable():
        with pytest.raises(SnapshotError, match="unreachable"):
            snapshot_rebuild()
        assert rebuild_snapshot() == 0  # the task: logged, not raised
        with pytest.raises(CommandError, match="the last snapshot stays"):
            call_command("rebuild_snapshot", stdout=StringIO())
        assert client.get("/").status_code == 200

    assert "snapshot not rebuilt" in caplog.text
    assert _generation(snapshot_dir) == generation


def test_a_restarted_web_process_serves_the_snapshot_from_disk_without_a_database(fleet):
    _incident()
    snapshot_rebuild()
    body = (snapshot.store().directory / "current" / "index.html").read_bytes()
    snapshot.forget()  # fresh process memory

    fast = SnapshotWSGI(lambda environ, start_response: pytest.fail("reached the live view"))
    with database_unreachable():
        status, _, served = _call_wsgi(fast, "/")

    assert status == 200
    assert served == body


RESTARTED = """
import hashlib, io, json, sys
from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
for path in ("/", "/api/v2/summary.json", "/healthz"):
    answer = {}
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "443", "HTTP_HOST": "127.0.0.1",
        "HTTP_X_FORWARDED_PROTO": "https", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
    }
    result = application(environ, lambda status, headers: answer.update(s=status, h=headers))
    body = b"".join(result)
    result.close()
    answer["sha256"] = hashlib.sha256(body).hexdigest()
    print(json.dumps({"path": path, **answer}))
"""


def test_a_new_web_process_with_the_database_down_serves_the_snapshot(fleet, snapshot_dir):
    """A real restart: a new Python process, production settings, a database that
    refuses connections, and the snapshot on disk."""
    _incident()
    snapshot_rebuild()
    manifest = json.loads((snapshot_dir / "current" / "manifest.json").read_text())

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "statuspage.settings",
        "DATABASE_URL": _unreachable_database_url(),
        "SNAPSHOT_DIR": str(snapshot_dir),
        "STATUSPAGE_VAR_DIR": str(snapshot_dir.parent / "var"),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_DEBUG": "0",
        "TRUSTED_PROXY_HOPS": "1",  # a proxy terminates TLS (X-Forwarded-Proto)
        "PYTHONWARNINGS": "ignore",
    }
    run = subprocess.run(  # noqa: S603 - our own interpreter, fixed script
        [sys.executable, "-c", "import django; django.setup()\n" + RESTARTED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answers = {answer["path"]: answer for answer in map(json.loads, run.stdout.splitlines())}

    assert answers["/healthz"]["s"].startswith("503")  # the database is down
    for page in ("/", "/api/v2/summary.json"):
        assert answers[page]["s"] == "200 OK"
        assert answers[page]["sha256"] == manifest["entries"][page]["sha256"]
        headers = dict(answers[page]["h"])
        assert headers["Cache-Control"] == CACHE_CONTROL
        assert "Strict-Transport-Security" in headers
        assert headers["X-Frame-Options"] == "DENY"
        assert "script-src 'self'" in headers["Content-Security-Policy"]


def broker_down():
    """A real refused connection: the broker URL points at a closed local port."""
    return real_broker("redis://127.0.0.1:9/0", socket_connect_timeout=0.2, socket_timeout=0.2)


def test_publishing_while_the_broker_is_down_saves_and_the_periodic_rebuild_shows_it(
    client, fleet, committed, caplog
):
    snapshot_rebuild()
    with broker_down(), committed():
        incident = _incident()  # no exception: the operator's write stands

    assert Incident.objects.get(pk=incident.pk).published
    assert "could not queue a snapshot rebuild" in caplog.text
    assert TITLE not in client.get("/").content.decode()  # the last snapshot, still up

    rebuild_snapshot.delay()  # what beat sends every minute (eager again: the broker is back)

    assert TITLE in client.get("/").content.decode()
