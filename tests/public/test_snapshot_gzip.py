"""Visitors whose browser accepts gzip get the snapshot's gzipped copy: the same
page in ~1/15 of the bytes."""

import gzip

import pytest

from public import snapshot
from public.serving import SnapshotWSGI, accepts_gzip
from public.snapshot import snapshot_rebuild
from tests.public.test_snapshot import _call_wsgi, _etag, _incident, fallback

BROWSER = "gzip, deflate, br, zstd"


@pytest.fixture
def client(visitor):
    """Requests go through the production stack: the snapshot's WSGI layer first."""
    return visitor


@pytest.fixture(autouse=True)
def snapshot_dir(settings, tmp_path):
    settings.SNAPSHOT_DIR = tmp_path / "snapshot"
    yield settings.SNAPSHOT_DIR
    snapshot.forget()


def test_a_browser_gets_the_page_gzipped_with_the_same_content(client, fleet):
    _incident()
    snapshot_rebuild()
    plain = client.get("/")
    packed = client.get("/", HTTP_ACCEPT_ENCODING=BROWSER)

    assert packed.status_code == 200
    assert packed["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.content) == plain.content
    assert len(packed.content) < len(plain.content) / 3
    assert packed["Content-Length"] == str(len(packed.content))
    assert packed["Content-Type"] == plain["Content-Type"]
    assert packed["Vary"] == "Accept-Encoding"
    assert packed["ETag"] == "W/" + plain["ETag"] == "W/" + _etag(plain.content)
    assert packed["X-Frame-Options"] == plain["X-Frame-Options"] == "DENY"
    assert "Content-Encoding" not in plain


def test_either_copy_revalidates_with_a_304(client, fleet):
    snapshot_rebuild()
    packed = client.get("/", HTTP_ACCEPT_ENCODING=BROWSER)
    plain = client.get("/")
    again = client.get("/", HTTP_ACCEPT_ENCODING=BROWSER, HTTP_IF_NONE_MATCH=packed["ETag"])
    assert again.status_code == 304
    assert again["ETag"] == packed["ETag"]
    assert client.get("/", HTTP_IF_NONE_MATCH=plain["ETag"]).status_code == 304


def test_pages_below_the_threshold_are_not_gzipped(client, fleet, monkeypatch):
    monkeypatch.setattr(snapshot, "GZIP_MIN_BYTES", 10**9)
    snapshot_rebuild()
    page = client.get("/", HTTP_ACCEPT_ENCODING=BROWSER)
    assert page.status_code == 200
    assert "Content-Encoding" not in page
    assert page["ETag"] == _etag(page.content)


def test_the_wsgi_fast_path_and_the_fallback_answer_gzip_alike(rf, fleet):
    snapshot_rebuild()
    fast = SnapshotWSGI(lambda environ, start_response: pytest.fail("reached Django"))
    for method in ("GET", "HEAD"):
        answer = _call_wsgi(fast, "/", method=method, secure=True, HTTP_ACCEPT_ENCODING=BROWSER)
        assert answer == fallback(rf, method, "/", secure=True, HTTP_ACCEPT_ENCODING=BROWSER)
        assert answer[1]["Content-Encoding"] == "gzip"


def test_a_restarted_process_loads_the_gzipped_copies_from_disk(client, fleet):
    snapshot_rebuild()
    before = client.get("/", HTTP_ACCEPT_ENCODING=BROWSER).content
    snapshot.forget()  # as a fresh process
    assert client.get("/", HTTP_ACCEPT_ENCODING=BROWSER).content == before


def test_a_torn_gzipped_copy_fails_the_generation_instead_of_being_served(
    client, fleet, snapshot_dir
):
    snapshot_rebuild()
    first = client.get("/", HTTP_ACCEPT_ENCODING=BROWSER).content
    snapshot.forget()
    snapshot_rebuild()
    current = snapshot_dir / "current"
    (current / "index.html.gz").write_bytes(b"torn")
    snapshot.forget()
    served = client.get("/", HTTP_ACCEPT_ENCODING=BROWSER)
    assert served.status_code == 200
    assert served.content != b"torn"
    assert gzip.decompress(served.content) == gzip.decompress(first)


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (None, False),
        ("", False),
        ("identity", False),
        ("gzip", True),
        ("GZIP;q=0.5", True),
        ("br, gzip;q=0", False),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("deflate, x-gzip", True),
        ("gzip;q=abc", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header, accepted):
    assert accepts_gzip(header) is accepted


def test_a_rebuild_reuses_good_gzipped_copies_and_redoes_a_torn_one(
    client, fleet, snapshot_dir, time_machine
):
    from tests.public.test_snapshot import NOW

    time_machine.move_to(NOW, tick=False)  # the same bytes on every rebuild
    snapshot_rebuild()
    first = snapshot_dir / "current"
    first_name = first.resolve().name
    (first / "index.html.gz").write_bytes(b"torn")
    snapshot_rebuild()
    second = snapshot_dir / "current"
    assert second.resolve().name != first_name
    assert gzip.decompress((second / "index.html.gz").read_bytes()) == (
        (second / "index.html").read_bytes()
    )
    assert (second / "history/index.html.gz").read_bytes() == (
        snapshot_dir / first_name / "history/index.html.gz"
    ).read_bytes()
