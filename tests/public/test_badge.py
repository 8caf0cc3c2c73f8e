"""Status badges: /badge.svg and /badge/<component>.svg, shields-style SVG."""

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from incidents.models import Component
from incidents.services import WindowSpec, incident_create
from public.badge import STATUS_COLOURS, STATUS_TEXT, badge_for_status, text_width
from tests.conftest import T0

SVG = "{http://www.w3.org/2000/svg}"
M = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _live_views(settings, tmp_path, time_machine):
    """These tests are about the views: no snapshot in front of them; time stands still."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("SnapshotMiddleware")]
    settings.SNAPSHOT_DIR = tmp_path / "snapshot"
    time_machine.move_to(T0 + 30 * M, tick=False)


def parse(body):
    root = ET.fromstring(body)  # noqa: S314 - our own output, the thing under test
    assert root.tag == f"{SVG}svg"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    fills = [r.get("fill") for r in root.iter(f"{SVG}rect")]
    return root, texts, fills


def badge(client, path="/badge.svg"):
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    return parse(response.content)


def test_all_is_well(client, fleet):
    root, texts, fills = badge(client)
    assert texts == ["status", "operational"]
    assert root.find(f"{SVG}title").text == "status: operational"
    assert root.get("aria-label") == "status: operational"
    assert root.get("role") == "img"
    assert STATUS_COLOURS["operational"].fill in fills


def test_a_shard_down_is_a_partial_outage(client, fleet):
    incident_create(
        title="use1 down",
        body="x",
        started_at=T0,
        shard_impacts=[WindowSpec("use1", "outage", T0)],
        published=True,
        at=T0,
    )
    _, texts, fills = badge(client)
    assert texts == ["status", "partial outage"]
    assert STATUS_COLOURS["partial_outage"].fill in fills

    _, texts, fills = badge(client, "/badge/coordination-us-east.svg")
    assert texts == ["Coordination (us-east)", "partial outage"]
    _, texts, _ = badge(client, "/badge/coordination-eu-west.svg")
    assert texts == ["Coordination (eu-west)", "operational"]


def test_a_draft_does_not_change_the_badge(client, fleet):
    incident_create(
        title="draft",
        body="x",
        started_at=T0,
        shard_impacts=[WindowSpec("use1", "outage", T0), WindowSpec("use2", "outage", T0)],
        at=T0,
    )
    assert badge(client)[1] == ["status", "operational"]


@pytest.mark.parametrize(
    ("status", "text"),
    [
        ("major_outage", "major outage"),
        ("degraded_performance", "degraded performance"),
        ("under_maintenance", "under maintenance"),
    ],
)
def test_an_operator_set_status_shows_on_the_component_badge(client, fleet, status, text):
    incident_create(
        title="t",
        body="x",
        started_at=T0,
        components={fleet["eu"]: status},
        published=True,
        at=T0,
    )
    _, texts, fills = badge(client, "/badge/coordination-eu-west.svg")
    assert texts == ["Coordination (eu-west)", text]
    assert STATUS_COLOURS[status].fill in fills


def test_an_unknown_component_is_404(client, fleet):
    assert client.get("/badge/nope.svg").status_code == 404


def test_names_are_escaped(client, fleet):
    Component.objects.create(slug="evil", name='<script>alert("x")</script> & co')
    response = client.get("/badge/evil.svg")
    assert b"<script>" not in response.content
    root, texts, _ = parse(response.content)
    assert texts[0] == '<script>alert("x")</script> & co'
    assert root.find(f"{SVG}title").text == '<script>alert("x")</script> & co: operational'


def test_a_badge_is_the_same_for_everyone(client, admin_client, fleet):
    anonymous = client.get("/badge.svg")
    assert anonymous.content == admin_client.get("/badge.svg").content
    assert not anonymous.cookies


def test_the_badge_is_a_constant_number_of_queries(client, fleet, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        client.get("/badge.svg")
    with django_assert_max_num_queries(5):
        client.get("/badge/coordination-us-east.svg")


# --- The pure renderer ------------------------------------------------------------------


def _luminance(hex_colour):
    def channel(value):
        c = int(value, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(hex_colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b):
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("status", list(STATUS_COLOURS))
def test_every_status_has_its_words_and_readable_text(status):
    colour = STATUS_COLOURS[status]
    _, texts, fills = parse(badge_for_status(label="status", status=status))
    assert texts == ["status", STATUS_TEXT[status]]
    assert colour.fill in fills
    assert contrast(colour.fill, colour.text) >= 4.5


def test_the_badge_grows_with_its_text():
    short, _, _ = parse(badge_for_status(label="api", status="operational"))
    long, _, _ = parse(badge_for_status(label="Coordination (us-east)", status="operational"))
    assert int(long.get("width")) > int(short.get("width"))
    assert text_width("operational") > text_width("ok")


def test_an_overlong_name_is_shortened():
    root, texts, _ = parse(badge_for_status(label="x" * 500, status="operational"))
    assert len(texts[0]) == 60
    assert texts[0].endswith("…")
    assert int(root.get("width")) < 1000
