"""A real browser against the public pages: Debian's Chromium driven by Playwright.

How the pieces fit, and why:

- The app is served by pytest-django's ``live_server`` (a thread, against the test
  database, static files included), overridden here only to listen on 127.0.0.1 (not
  "localhost"). It brings ``transactional_db``: each test builds its data with the
  services and commits it (``story``, or the seeded ``demo`` fleet), and the database
  is flushed after it, as for any transactional test.
- Each test gets a snapshot directory of its own, so the snapshot middleware never
  answers with a stale snapshot: the one it serves is rebuilt from the test's data
  when that data commits (tasks run inline in tests).
- ``browser`` is this module's one Chromium. Module scope, not session: while
  Playwright's sync API is alive it leaves its event loop marked as running in the
  main thread, which makes ``asyncio.run`` fail for every later test that uses
  asyncio (the probes do). For the same reason Django's ORM would refuse to run in
  the main thread (SynchronousOnlyOperation) while it is alive; the ORM is used
  synchronously here, so ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set for this module only.
- ``open_page`` gives each test a fresh context (no cookies, no cache), records
  console errors, page errors, failed requests and HTTP errors, and aborts any
  request that is not for 127.0.0.1 (and fails the test if there was one). A
  failing test leaves a screenshot in var/test-artifacts/browser/failures/.

No browser is ever downloaded: Debian's ``chromium`` package (.ci/run installs it).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, sync_playwright

from fleet.services import tailnet_create
from incidents.models import Component, Incident, Shard
from incidents.services import (
    WindowSpec,
    incident_create,
    incident_post_update,
    tailnet_impacts_recompute,
)
from tests.conftest import fleet_create

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOST = "127.0.0.1"
# Bounds, in milliseconds: every page here renders locally in well under a second.
ACTION_TIMEOUT_MS = 5_000
NAVIGATION_TIMEOUT_MS = 10_000
DESKTOP = {"width": 1280, "height": 900}


def artifacts_dir() -> Path:
    """var/test-artifacts/browser/ under the project (gitignored)."""
    path = Path(settings.VAR_DIR) / "test-artifacts" / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- The server and its settings ----------------------------------------------------------


@pytest.fixture(autouse=True)
def _own_snapshot(settings, tmp_path):
    """No stale snapshot: the one served is built from this test's data."""
    settings.SNAPSHOT_DIR = tmp_path / "snapshot"


@pytest.fixture(autouse=True, scope="module")
def _orm_beside_playwright() -> Iterator[None]:
    """The ORM runs synchronously in the main thread beside Playwright (see above)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


# --- Data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    """What the pages show: ids and words the tests look for."""

    open_incident_id: int
    open_incident_title: str
    latest_update_text: str


OPEN_TITLE = "Logins failing for some tailnets in US East"
FIRST_BODY = "We are investigating failed logins on **one** coordination shard."
LATEST_BODY = "A stuck leader election on US East 2; we are failing it over."
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def _recompute(*incidents: Incident) -> None:
    """The affected tailnets, now, inside the caller's transaction: the recompute
    queued for after the commit then finds them current and does nothing (each of
    those would otherwise rebuild the snapshot once more)."""
    for incident in incidents:
        tailnet_impacts_recompute(incident_id=incident.pk)


def _open_incident(shard: Shard) -> Incident:
    """An incident happening now on ``shard``, with two updates."""
    started = timezone.now() - 40 * MINUTE
    incident = incident_create(
        title=OPEN_TITLE,
        body=FIRST_BODY,
        impact="major",
        started_at=started,
        detected_at=started + 2 * MINUTE,
        components={shard.component: "partial_outage"},
        shard_impacts=[WindowSpec(shard, "outage", started)],
        published=True,
        at=started + 2 * MINUTE,
    )
    incident_post_update(
        incident=incident, status="identified", body=LATEST_BODY, at=started + 35 * MINUTE
    )
    return incident


@pytest.fixture
def story(transactional_db) -> Story:
    """A small fleet with a past outage, a slow day, an open incident and an upcoming
    maintenance; committed in one transaction (one recompute, one snapshot)."""
    now = timezone.now()
    since = now - 365 * DAY
    with transaction.atomic():
        fleet = fleet_create(since)
        us = fleet["us"]
        Component.objects.create(slug="api", name="API", kind="api", created_at=since)
        shards = {slug: fleet[slug] for slug in ("use1", "use2", "euw1")}
        for number, shard in enumerate(["use1", "use1", "use2", "use2", "use2", "euw1"]):
            tailnet_create(
                slug=f"tailnet-{number}", display_name=f"t{number}.example", shard=shard, at=since
            )
        down = (now - 3 * DAY).replace(hour=9, minute=0, second=0, microsecond=0)
        past = incident_create(
            title="Coordination server unavailable on US East 1",
            body="Logins are failing.",
            impact="major",
            started_at=down,
            components={us: "partial_outage"},
            shard_impacts=[WindowSpec("use1", "outage", down, down + 30 * MINUTE)],
            published=True,
            at=down + 2 * MINUTE,
        )
        incident_post_update(
            incident=past,
            status="resolved",
            body="Fixed.",
            components={us: "operational"},
            at=down + 30 * MINUTE,
        )
        slow = down - 5 * DAY
        slowed = incident_create(
            title="Slow logins and ACL changes in EU West",
            body="Slower, not down.",
            started_at=slow,
            status="resolved",
            shard_impacts=[WindowSpec("euw1", "degraded", slow, slow + 20 * MINUTE)],
            published=True,
            at=slow + 20 * MINUTE,
        )
        incident_create(
            title="Hardware upgrade of EU West 1",
            body="We don't expect any downtime.",
            kind="maintenance",
            impact="maintenance",
            scheduled_for=now + 2 * DAY,
            scheduled_until=now + 2 * DAY + 120 * MINUTE,
            published=True,
            at=now - DAY,
        )
        incident = _open_incident(shards["use2"])
        _recompute(past, slowed, incident)
    return Story(incident.pk, incident.title, LATEST_BODY)


@pytest.fixture
def demo(transactional_db) -> Story:
    """The demo fleet of ``manage.py seed_demo`` (300 tailnets) plus an open incident:
    the page as a visitor would see it, for screenshots."""
    call_command("seed_demo", tailnets=300, seed=1, stdout=io.StringIO())
    with transaction.atomic():
        incident = _open_incident(Shard.objects.select_related("component").get(slug="use2"))
        _recompute(incident)
    return Story(incident.pk, incident.title, LATEST_BODY)


# --- The browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless. Playwright gives it a fresh temporary profile
    (user-data dir) on every launch and removes it on close."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install --no-install-recommends chromium"
        if os.environ.get("CI"):
            pytest.fail(reason)  # .ci/run installs it: missing there is a broken CI
        pytest.skip(reason)
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # workers would race each other
        shutil.rmtree(artifacts_dir() / "failures", ignore_errors=True)  # an old run's
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Visit:
    """One page in its own context, and what went wrong while it was open."""

    page: Page
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path

    def goto(self, path: str) -> Response:
        response = self.page.goto(self.url(path))
        assert response is not None, path
        assert response.status == 200, (path, response.status)
        return response

    def problems(self) -> list[str]:
        return [
            *(f"console error: {text}" for text in self.console_errors),
            *(f"page error: {text}" for text in self.page_errors),
            *(f"request failed: {text}" for text in self.failed_requests),
            *(f"HTTP error: {text}" for text in self.http_errors),
        ]


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def open_page(browser: Browser, live_server, request) -> Iterator[Callable[..., Visit]]:
    """``open_page(path="/", **context_options) -> Visit``: a new context and page
    (desktop size, en-US, a non-UTC time zone so local times are shown), navigated to
    ``path`` unless it is None."""
    contexts = []
    visits: list[Visit] = []
    blocked: list[str] = []

    def guard(route: Any) -> None:
        # Loopback only: anything else is aborted here and fails the test below.
        if urlsplit(route.request.url).hostname == HOST:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("blockedbyclient")

    def open_(path: str | None = "/", **options: Any) -> Visit:
        options = {
            "viewport": DESKTOP,
            "locale": "en-US",
            "timezone_id": "Europe/Amsterdam",
            **options,
        }
        context = browser.new_context(**options)
        contexts.append(context)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        context.route("**/*", guard)
        page = context.new_page()
        visit = Visit(page=page, base_url=live_server.url)
        visits.append(visit)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                visit.console_errors.append(f"{message.text} ({message.location.get('url')})")

        def on_failed(req: Request) -> None:
            visit.failed_requests.append(f"{req.method} {req.url}: {req.failure}")

        def on_response(response: Response) -> None:
            visit.responses.append(response)
            if response.status >= 400:
                visit.http_errors.append(f"{response.status} {response.url}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: visit.page_errors.append(str(error)))
        page.on("requestfailed", on_failed)
        page.on("response", on_response)
        if path is not None:
            visit.goto(path)
        return visit

    yield open_

    call = request.node.stash.get(_REPORTS, {}).get("call")
    if call is not None and call.failed:
        failures = artifacts_dir() / "failures"
        failures.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        for number, visit in enumerate(visits):
            with contextlib.suppress(Exception):  # the page may be what broke
                visit.page.screenshot(path=failures / f"{name}-{number}.png", full_page=True)
    for context in contexts:
        context.close()
    if blocked:
        pytest.fail(f"the browser tried to reach beyond {HOST}: {blocked}")
