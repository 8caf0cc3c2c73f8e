"""Every web process follows published changes itself: with no Celery worker (or the
broker down) a change still reaches the public page within seconds, and with the
database down the page keeps serving the copy it has (public/snapshot.py)."""

import contextlib
import logging
import time

import pytest
from django.db import connections
from django.test import Client

from incidents.models import Component
from public import snapshot
from public.snapshot import published_version, snapshot_follow, snapshot_rebuild
from tests.conftest import closed_port, real_broker


@pytest.fixture
def snapshot_dir(settings, tmp_path):
    settings.SNAPSHOT_DIR = tmp_path / "snapshot"
    yield settings.SNAPSHOT_DIR
    snapshot.forget()


@pytest.fixture
def no_worker():
    """Nothing consumes the queue, and publishing to it is refused."""
    with real_broker(f"redis://127.0.0.1:{closed_port()}/0"):
        yield


@contextlib.contextmanager
def database_unreachable_for_every_thread(monkeypatch):
    """New connections, in any thread, go to a closed port (PostgreSQL) or a file that
    cannot be opened (SQLite); this thread's open connection stays as it is."""
    with monkeypatch.context() as patch:
        default = connections.settings["default"]
        if default["ENGINE"].endswith("postgresql"):
            patch.setitem(default, "PORT", str(closed_port()))
        else:
            patch.setitem(default, "NAME", "/nonexistent/directory/db.sqlite3")
        yield


def served(path="/"):
    entry = snapshot.lookup(path)
    return entry.body.decode() if entry is not None else ""


def eventually(check, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_change_published_with_no_worker_reaches_the_page_within_seconds(
    settings, snapshot_dir, no_worker
):
    Component.objects.create(slug="coordination", name="Coordination server")
    snapshot_rebuild()
    settings.SNAPSHOT_FOLLOW_SECONDS = 0.05
    assert "Coordination server" in served()
    before = published_version()

    Component.objects.create(slug="derp", name="DERP relays")  # committed: no worker runs

    assert published_version() == before + 1  # every web host can see it
    assert eventually(lambda: "DERP relays" in served())


@pytest.mark.django_db(transaction=True)
def test_with_the_database_down_the_page_keeps_serving_its_copy(
    settings, snapshot_dir, caplog, monkeypatch
):
    Component.objects.create(slug="coordination", name="Coordination server")
    snapshot_rebuild()
    first = served()
    settings.SNAPSHOT_FOLLOW_SECONDS = 0.05

    with caplog.at_level(logging.WARNING, logger="public.snapshot"):
        store = snapshot.store()
        store.version = -1  # as if a change were waiting
        with database_unreachable_for_every_thread(monkeypatch):
            for _ in range(10):
                assert served() == first
                time.sleep(0.06)
            assert eventually(lambda: store._following.acquire(blocking=False))
            store._following.release()

    assert caplog.text.count("cannot follow published changes") == 1  # once, not each look


def test_nothing_is_rebuilt_when_nothing_was_published(db, snapshot_dir):
    first = snapshot_rebuild()
    version = published_version()

    assert snapshot_follow(known=version) is None
    assert snapshot_rebuild(if_behind=True).generation is None
    snapshot.published_version_bump()
    again = snapshot_follow(known=version)
    assert again is not None
    assert again.generation != first.generation


def test_one_rebuild_at_a_time_per_host(db, snapshot_dir):
    snapshot_rebuild()
    snapshot.published_version_bump()

    with snapshot._build_lock(snapshot_dir):
        assert snapshot_follow() is None  # busy: the next look tries again

    assert snapshot_follow() is not None


def test_the_snapshots_age_is_on_metrics(db, snapshot_dir):
    snapshot_rebuild()
    snapshot.published_version_bump()

    text = Client().get("/metrics").content.decode()

    assert "statuspage_snapshot_age_seconds " in text
    assert "statuspage_snapshot_changes_behind 1.0" in text


@pytest.mark.django_db(transaction=True)
def test_a_web_host_keeps_its_snapshot_current_without_visitors_or_workers(
    settings, snapshot_dir, no_worker
):
    """nginx serves the pages from disk, so no request may ever reach this process:
    its own thread rebuilds a snapshot that has grown old (time passes on the page)."""
    Component.objects.create(slug="coordination", name="Coordination server")
    first = snapshot_rebuild().generation
    settings.SNAPSHOT_MAX_AGE_SECONDS = 0.3
    settings.SNAPSHOT_FOLLOW_SECONDS = 0.05
    keeper = snapshot.SnapshotStore(snapshot_dir)
    try:
        keeper.keep_current()
        assert eventually(lambda: keeper.generation not in (None, first))
    finally:
        settings.SNAPSHOT_FOLLOW_SECONDS = 0  # the keeper's loop ends
    assert keeper.built_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_web_host_that_starts_without_a_snapshot_builds_one(settings, snapshot_dir, no_worker):
    Component.objects.create(slug="coordination", name="Coordination server")
    settings.SNAPSHOT_FOLLOW_SECONDS = 0.05
    keeper = snapshot.SnapshotStore(snapshot_dir)
    try:
        assert keeper.generation is None
        keeper.keep_current()
        assert eventually(lambda: keeper.generation is not None)
        assert "/" in keeper.entries
    finally:
        settings.SNAPSHOT_FOLLOW_SECONDS = 0


def test_an_old_snapshot_is_rebuilt_once_however_many_processes_look(db, snapshot_dir, settings):
    settings.SNAPSHOT_MAX_AGE_SECONDS = 60
    built = snapshot_rebuild()
    fresh = time.time()

    assert snapshot_follow(known=published_version(), built_at=fresh) is None
    # Another process that read the manifest long ago: the lock-held check sees it is new.
    assert snapshot_follow(known=published_version(), built_at=fresh - 120) is None
    settings.SNAPSHOT_MAX_AGE_SECONDS = 0
    again = snapshot_follow(known=published_version(), built_at=fresh - 120)
    assert again is not None
    assert again.generation != built.generation
