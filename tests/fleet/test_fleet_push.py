"""``manage.py fleet_push``: Olivia, who runs the control plane, sends a file of events
to the feed; against the real API (a live server) and against a feed that misbehaves
(a small local server answering what the test tells it to)."""

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command

from incidents.models import Placement, Tailnet
from plumbing.tokens import api_token_create

EVENTS = [
    {"id": "cp:1", "type": "shard.added", "at": "2026-12-07T09:00:00Z", "shard": "use9",
     "region": "us-east", "public_name": "US East 9", "probe_url": "https://use9.example.net/"},
    {"id": "cp:2", "type": "tailnet.created", "at": "2026-12-07T09:01:00Z", "tailnet": "acme",
     "display_name": "acme.com", "shard": "use9"},
    {"id": "cp:3", "type": "tailnet.migrated", "at": "2026-12-07T09:30:00Z", "tailnet": "acme",
     "shard": "use1"},
]  # fmt: skip


def _file(tmp_path, lines):
    path = tmp_path / "events.ndjson"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def push(*args, **options):
    out = io.StringIO()
    call_command("fleet_push", *args, no_progress=True, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue().strip()


@pytest.mark.django_db(transaction=True)
def test_olivia_pushes_a_file_then_pushes_it_again_and_nothing_changes(
    live_server, tmp_path, settings
):
    from tests.conftest import T0, fleet_create

    fleet_create(T0)
    _, secret = api_token_create(name="control plane", scope="fleet")
    path = _file(tmp_path, [json.dumps(e) for e in EVENTS])

    assert push(path, api=live_server.url, token=secret, batch=2) == (
        "sent 3 events: 3 new, 0 duplicates"
    )
    assert push(path, api=live_server.url, token=secret) == "sent 3 events: 0 new, 3 duplicates"
    acme = Tailnet.objects.get(slug="acme")
    assert list(
        Placement.objects.filter(tailnet=acme)
        .order_by("starts_at")
        .values_list("shard__slug", flat=True)
    ) == ["use9", "use1"]


@pytest.mark.django_db(transaction=True)
def test_a_refused_batch_names_its_lines_and_stores_nothing(live_server, tmp_path):
    from tests.conftest import T0, fleet_create

    fleet_create(T0)
    _, secret = api_token_create(name="control plane", scope="fleet")
    bad = dict(EVENTS[2], shard="nowhere")
    path = _file(tmp_path, ["", json.dumps(EVENTS[1] | {"shard": "use1"}), json.dumps(bad)])

    with pytest.raises(CommandError) as refused:
        push(path, api=live_server.url, token=secret)

    assert "line 3:" in str(refused.value)
    assert "nowhere" in str(refused.value)
    assert "line 2:" not in str(refused.value)
    assert "0 events before it were sent" in str(refused.value)
    assert not Tailnet.objects.filter(slug="acme").exists()


@pytest.mark.django_db(transaction=True)
def test_a_token_without_the_fleet_scope_is_told_so(live_server, tmp_path):
    _, secret = api_token_create(name="metrics", scope="metrics")

    with pytest.raises(CommandError, match="needs scope fleet"):
        push(_file(tmp_path, [json.dumps(EVENTS[0])]), api=live_server.url, token=secret)


def test_bad_input_is_refused_before_anything_is_sent(tmp_path):
    with pytest.raises(CommandError, match="line 2: not JSON"):
        push(_file(tmp_path, [json.dumps(EVENTS[0]), "{oops"]), api="http://127.0.0.1:9", token="x")
    with pytest.raises(CommandError, match="line 1: an event is a JSON object"):
        push(_file(tmp_path, ["[1, 2]"]), api="http://127.0.0.1:9", token="x")
    with pytest.raises(CommandError, match="No token"):
        push(_file(tmp_path, ["{}"]), api="http://127.0.0.1:9", token="")
    with pytest.raises(CommandError, match="http:// or https://"):
        push(_file(tmp_path, ["{}"]), api="file:///etc/passwd", token="x")


class _Feed(BaseHTTPRequestHandler):
    """Answers each POST with the next scripted status; 200s count the events."""

    script: list[int] = []
    seen: list[int] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        n = len(body["events"])
        self.seen.append(n)
        status = self.script.pop(0) if self.script else 200
        if status == 413 and n == 1:
            status = 200
        payload = json.dumps({"accepted": n, "duplicates": 0} if status == 200 else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def feed():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Feed.script, _Feed.seen = [], []
    yield server
    server.shutdown()


def test_a_busy_feed_is_retried_and_a_too_large_batch_is_split(feed, tmp_path):
    url = f"http://127.0.0.1:{feed.server_address[1]}"
    path = _file(tmp_path, [json.dumps(dict(EVENTS[0], id=f"cp:{n}")) for n in range(4)])
    _Feed.script = [503, 429, 413]

    assert push(path, api=url, token="x", retries=4) == "sent 4 events: 4 new, 0 duplicates"
    # 503 and 429 retried whole, the 413 split it in two halves.
    assert _Feed.seen == [4, 4, 4, 2, 2]


def test_a_feed_down_for_good_gives_up_and_says_what_was_sent(feed, tmp_path):
    url = f"http://127.0.0.1:{feed.server_address[1]}"
    path = _file(tmp_path, [json.dumps(dict(EVENTS[0], id=f"cp:{n}")) for n in range(3)])
    _Feed.script = [200, 503, 503]

    with pytest.raises(CommandError, match="gave up after 2 tries: HTTP 503") as gave_up:
        push(path, api=url, token="x", batch=1, retries=2)
    assert "1 events before it were sent and stored" in str(gave_up.value)
