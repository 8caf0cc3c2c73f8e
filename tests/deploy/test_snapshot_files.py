"""The snapshot's files as a web server in front reads them (nginx derives ETag and
Last-Modified from a file's size and modification time): each file's time is when
its bytes first appeared, across rebuilds. No nginx needed here."""

import os
from datetime import timedelta
from pathlib import Path

import pytest

from public import snapshot
from public.snapshot import file_for, snapshot_rebuild
from tests.conftest import T0
from tests.public.test_snapshot import _incident

NOW = T0 + timedelta(minutes=30)


@pytest.fixture
def fleet(fleet):
    snapshot._pending.clear()
    return fleet


def _mtimes(directory: Path, path: str) -> tuple[int, int | None]:
    current = directory / "current"
    packed = current / f"{file_for(path)}.gz"
    return (
        int(os.stat(current / file_for(path)).st_mtime),
        int(os.stat(packed).st_mtime) if packed.exists() else None,
    )


def test_each_file_is_dated_when_its_bytes_first_appeared(fleet, settings, time_machine):
    directory = Path(settings.SNAPSHOT_DIR)
    time_machine.move_to(NOW, tick=False)
    _incident()
    snapshot_rebuild()
    assert _mtimes(directory, "/feed.rss") == (int(NOW.timestamp()), int(NOW.timestamp()))

    time_machine.move_to(NOW + timedelta(minutes=5), tick=False)
    result = snapshot_rebuild()
    assert "/feed.rss" in result.unchanged
    assert _mtimes(directory, "/feed.rss") == (int(NOW.timestamp()), int(NOW.timestamp()))
    # The open incident's page says it has lasted longer: new bytes, a new date.
    assert "/" in result.changed
    later = int((NOW + timedelta(minutes=5)).timestamp())
    assert _mtimes(directory, "/") == (later, later)


def test_a_page_carried_over_after_an_error_keeps_its_date(fleet, settings, time_machine):
    directory = Path(settings.SNAPSHOT_DIR)
    time_machine.move_to(NOW, tick=False)
    snapshot_rebuild()
    before = _mtimes(directory, "/history/")

    time_machine.move_to(NOW + timedelta(minutes=5), tick=False)
    with pytest.MonkeyPatch.context() as patch:
        real = snapshot._Capturer.get

        def failing(self, path):
            if path == "/history/":
                return snapshot.Miss("answered 500", failed=True)
            return real(self, path)

        patch.setattr(snapshot._Capturer, "get", failing)
        result = snapshot_rebuild()
    assert "/history/" in result.carried_over
    assert _mtimes(directory, "/history/") == before == (int(NOW.timestamp()),) * 2
