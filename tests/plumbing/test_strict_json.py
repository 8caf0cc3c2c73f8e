"""Every API reads JSON one way: NaN, Infinity and numbers that overflow to it are
refused with a 400 saying where, and so is nesting deeper than any body needs (a body
of 50,000 ``[`` is a 400, not a RecursionError's 500)."""

import pytest
from rest_framework.exceptions import ParseError

from plumbing.parsers import MAX_DEPTH, strict_loads
from plumbing.tokens import api_token_create

DEEP = "[" * 50_000


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ('{"samples": [{"latency_ms": 1e400}]}', "samples[0].latency_ms"),
        ('{"a": {"b": [1, 2, -1e999]}}', "a.b[2]"),
        ('[{"x": NaN}]', "[0].x"),
        ('{"x": Infinity}', "x"),
        ("-Infinity", "the body"),
    ],
)
def test_a_number_that_is_not_finite_is_refused_where_it_is(raw, where):
    with pytest.raises(ParseError) as refused:
        strict_loads(raw)
    assert f"{where}: numbers must be finite" in str(refused.value.detail)


def test_nesting_is_refused_past_the_limit_however_deep():
    assert strict_loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    one_too_deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    for raw in (one_too_deep, '{"a": ' * 500 + "1" + "}" * 500, DEEP):
        with pytest.raises(ParseError, match="nested deeper"):
            strict_loads(raw)


def test_ordinary_json_is_read_as_json():
    body = '{"region": "ams", "samples": [{"ok": true, "latency_ms": 1e300, "n": null}]}'
    assert strict_loads(body.encode()) == {
        "region": "ams",
        "samples": [{"ok": True, "latency_ms": 1e300, "n": None}],
    }
    with pytest.raises(ParseError, match="JSON parse error"):
        strict_loads("{not json")


@pytest.mark.django_db
def test_the_report_api_answers_a_deep_body_or_an_infinite_number_with_a_400(client):
    for body in (DEEP, '{"what": "login", "description": -Infinity}'):
        response = client.post("/api/v1/reports", body, content_type="application/json")
        assert response.status_code == 400
    assert "description" in response.json()["detail"]


@pytest.mark.django_db
def test_the_fleet_feed_reads_its_body_as_every_api_does(client):
    """It reads its body itself (its size limit is its own), with the same parser."""
    secret = api_token_create(name="control plane", scope="fleet")[1]
    headers = {"Authorization": f"Bearer {secret}"}
    for body, said in ((DEEP, "nested deeper"), ('{"events": [{"id": 1e400}]}', "events[0].id")):
        response = client.post(
            "/api/v1/fleet/events", body, content_type="application/json", headers=headers
        )
        assert response.status_code == 400
        assert said in response.json()["detail"]


@pytest.mark.django_db
def test_a_charset_that_is_not_text_is_refused(client):
    """A charset such as bz2_codec would decompress a small body into a huge one."""
    response = client.generic(
        "POST", "/api/v1/reports", b"BZh9", content_type="application/json; charset=bz2_codec"
    )
    assert response.status_code == 400
