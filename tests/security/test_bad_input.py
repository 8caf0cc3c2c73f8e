"""Bad input is the sender's mistake: a 400 that names the field (or the page with a
clear message), never a server error with a traceback in the log.

alice owns acme; staff runs the service and its alerting tool holds a staff token.
"""

import logging
from datetime import timedelta

import pytest
from django.test import Client

from plumbing.models import ApiToken
from plumbing.params import whole_number
from plumbing.tokens import api_token_create
from tests.conftest import T0

NOW = T0 + timedelta(days=1)
NOT_NUMBERS = ["²", "\u0661\u0662", "1.5", "-1", "", " 1", "1e3", "9" * 5000, str(2**63)]


@pytest.fixture(autouse=True)
def _now(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def no_errors_logged(caplog):
    """Nothing logged at ERROR (a 500 logs its traceback there)."""
    caplog.set_level(logging.WARNING)
    yield
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def signed_in(person):
    client = Client()
    client.force_login(person)
    return client


@pytest.mark.parametrize("raw", NOT_NUMBERS)
def test_only_plain_ascii_whole_numbers_are_numbers(raw):
    assert whole_number(raw) is None


def test_a_whole_number_is_read_within_its_bounds():
    assert whole_number("0042") == 42
    assert whole_number("0", minimum=1) is None
    assert whole_number(str(2**63 - 1)) == 2**63 - 1


# --- Public pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["²", "\u0661", "abc", "0", "9" * 5000])
def test_a_history_page_that_is_not_a_number_is_a_400_naming_page(
    client, fleet, no_errors_logged, page
):
    response = client.get("/history/", {"page": page})
    assert response.status_code == 400
    assert "page must be a whole number, 1 or more" in response.content.decode()


# --- A tailnet's uptime ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"to": "0001-01-01"}, "to"),
        ({"from": "0001-01-01", "to": "0001-01-31"}, "from"),
        ({"from": "1999-12-31", "to": "2000-01-02"}, "from"),
    ],
)
def test_an_uptime_range_before_any_data_is_a_400_naming_the_field(
    people, no_errors_logged, query, field
):
    alice = signed_in(people["alice"])

    api = alice.get("/api/v1/tailnets/acme/uptime", query)
    assert api.status_code == 400
    assert field in api.json()
    assert "before 2000-01-01" in str(api.json()[field])

    csv = alice.get("/t/acme/uptime.csv", query)
    assert csv.status_code == 400
    assert f"{field}: " in csv.content.decode()


def test_the_earliest_uptime_range_is_answered(people, no_errors_logged):
    response = signed_in(people["alice"]).get(
        "/api/v1/tailnets/acme/uptime", {"from": "2000-01-01", "to": "2000-01-31"}
    )
    assert response.status_code == 200


# --- The tokens page ------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["²", "\u0661", "abc", "", str(2**64)])
def test_revoking_a_token_that_is_not_an_id_is_a_400_and_revokes_nothing(
    people, no_errors_logged, raw
):
    token, _ = api_token_create(
        name="Grafana", scope="tailnet", tailnet=people["acme"], by=people["alice"]
    )
    response = signed_in(people["alice"]).post(
        "/t/acme/tokens/", {"action": "revoke", "token": raw}
    )
    assert response.status_code == 400
    assert "Bad token" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_a_token_of_another_tailnet_is_still_a_404(people, no_errors_logged):
    token, _ = api_token_create(
        name="Globex's", scope="tailnet", tailnet=people["globex"], by=people["bob"]
    )
    response = signed_in(people["alice"]).post(
        "/t/acme/tokens/", {"action": "revoke", "token": str(token.pk)}
    )
    assert response.status_code == 404
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


# --- The operator API -----------------------------------------------------------------------


@pytest.fixture
def operator(people):
    _, secret = api_token_create(name="alerting", scope="staff", by=people["staff"])
    return Client(headers={"Authorization": f"Bearer {secret}"})


def _incident(**overrides):
    return {
        "title": "Coordination server unavailable",
        "body": "Logins are failing.",
        "impact": "major",
        "started_at": "2026-01-05T10:00:00Z",
        **overrides,
    }


@pytest.mark.parametrize(
    "when",
    [
        "2026-13-45T00:00:00Z",  # no 13th month
        "2026-02-30T10:00:00Z",  # no 30th of February
        "2026-01-05T10:00:00+24:00",  # offsets stop at ±23:59
        "2026-01-05T24:61:00Z",
        "not a time",
    ],
)
def test_an_impossible_started_at_is_a_400_naming_it(operator, no_errors_logged, when):
    response = operator.post(
        "/api/v1/incidents/", _incident(started_at=when), content_type="application/json"
    )
    assert response.status_code == 400
    assert "Not a date and time" in str(response.json()["started_at"])


def test_an_impossible_time_in_a_window_is_a_400_naming_it(operator, no_errors_logged):
    window = {"shard": "use1", "level": "outage", "starts_at": "2026-01-05T10:00:00+24:00"}
    response = operator.post(
        "/api/v1/incidents/", _incident(shard_impacts=[window]), content_type="application/json"
    )
    assert response.status_code == 400
    assert "starts_at" in str(response.json()["shard_impacts"])


BEYOND_ANY_ID = [str(2**63), "9" * 19, "9" * 20, "9" * 400]


@pytest.mark.parametrize("raw", BEYOND_ANY_ID)
def test_an_id_no_database_can_hold_is_not_found(operator, no_errors_logged, raw):
    created = operator.post("/api/v1/incidents/", _incident(), content_type="application/json")
    incident = created.json()["id"]
    for path in [
        f"/api/v1/incidents/{raw}/",
        f"/api/v1/incidents/{incident}/impacts/{raw}/close",
        f"/incidents/{raw}/",
    ]:
        response = operator.post(path, {}, content_type="application/json")
        assert response.status_code == 404, path
    assert operator.get(f"/api/v1/incidents/{incident}/").status_code == 200


def test_a_json_body_nested_too_deep_is_a_400_for_the_operator_api(operator, no_errors_logged):
    deep = "[" * 5000 + "]" * 5000
    response = operator.post("/api/v1/incidents/", deep, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


# --- The admin and the subscriptions page -----------------------------------------------------


@pytest.mark.parametrize("raw", ["²", "abc", str(2**64)])
def test_an_admin_filter_on_an_id_that_is_not_one_is_no_server_error(people, no_errors_logged, raw):
    for name in ("incident__id__exact", "tailnet__id__exact"):
        response = signed_in(people["staff"]).get("/admin/incidents/tailnetimpact/", {name: raw})
        assert response.status_code in (200, 302), (name, response.status_code)


@pytest.mark.parametrize("raw", ["²", str(2**64)])
def test_a_subscription_that_is_not_an_id_is_not_found(people, no_errors_logged, raw):
    response = signed_in(people["alice"]).post(
        "/t/acme/notifications/", {"action": "remove", "subscription": raw}
    )
    assert response.status_code == 404
