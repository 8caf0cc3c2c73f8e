"""POST /api/v1/reports: the form's validation, the form's service, the form's answer."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from incidents.services import WindowSpec, incident_create
from plumbing.tokens import api_token_create
from reports.models import Report

from .conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def outage_on_use1(people):
    start = NOW - timedelta(minutes=28)
    return incident_create(
        title="Logins failing in us-east",
        body="Investigating.",
        started_at=start,
        shard_impacts=[WindowSpec("use1", "outage", start)],
        published=True,
        at=start,
    )


def post(api, body, **headers):
    return api.post("/api/v1/reports", body, format="json", **headers)


def test_a_script_files_a_report_and_gets_the_public_answer(api, people, outage_on_use1, settings):
    settings.STATUSPAGE_PUBLIC_URL = "https://status.example.com"
    response = post(
        api,
        {"what": "change_acl", "started_at": "2026-01-05T10:25:00Z", "tailnet": "acme"},
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    report = Report.objects.get()
    assert body["id"] == report.public_id
    assert body["url"] == f"https://status.example.com/report/thanks/{report.public_id}/"
    assert response["Location"] == body["url"]
    assert (report.via, report.tailnet_name, report.from_member) == ("api", "acme", False)
    assert body["answer"]["your_shard"] is None  # a typed name is not a membership
    assert [i["title"] for i in body["answer"]["public_status"]["incidents"]] == [
        "Logins failing in us-east"
    ]


def test_without_a_start_time_it_started_just_now(api, people):
    response = post(api, {"what": "derp"})
    assert response.status_code == 201, response.json()
    assert abs(Report.objects.get().started_at - NOW) < timedelta(minutes=1)


def test_a_tailnet_token_gets_its_shards_answer(api, people, outage_on_use1):
    _, secret = api_token_create(name="ci", scope="tailnet", tailnet=people["acme"])
    response = post(
        api,
        {"what": "login", "started_at": "2026-01-05T10:25:00Z"},
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )

    assert response.status_code == 201, response.json()
    shard = response.json()["answer"]["your_shard"]
    assert shard["name"] == "US East 1"
    assert shard["known_incident"]["title"] == "Logins failing in us-east"
    assert shard["known_incident"]["what_still_works"].startswith(
        "Existing connections keep working"
    )
    report = Report.objects.get()
    assert (report.tailnet, report.from_member) == (people["acme"], True)


def test_a_tailnet_token_cannot_file_for_another_tailnet(api, people):
    _, secret = api_token_create(name="ci", scope="tailnet", tailnet=people["acme"])
    response = post(
        api,
        {"what": "login", "started_at": "2026-01-05T10:25:00Z", "tailnet": "globex"},
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 400
    assert "tailnet" in response.json()
    assert not Report.objects.exists()


def test_bad_input_gets_400_with_field_errors_and_saves_nothing(api, people):
    response = post(
        api,
        {"what": "nap", "started_at": "yesterday-ish", "email": "nope", "description": "x" * 2001},
    )
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"what", "started_at", "email", "description"}
    assert errors["started_at"] == ["Enter a date and time like 2026-01-05 10:02."]
    assert not Report.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"what": "login", "started_at": "2026-01-05T10:25:00Z", "colour": "red"}, "colour"),
        ({"what": ["login"], "started_at": "2026-01-05T10:25:00Z"}, "what"),
        ({"what": "login", "started_at": 1767608700}, "started_at"),
    ],
)
def test_unknown_fields_and_non_strings_are_refused_by_name(api, people, body, field):
    response = post(api, body)
    assert response.status_code == 400
    assert field in response.json()


def test_a_body_that_is_not_an_object_is_refused(api, people):
    assert post(api, ["what", "login"]).status_code == 400
    assert api.post("/api/v1/reports", "{", content_type="application/json").status_code == 400


def test_the_api_shares_the_forms_rate_limit(api, people, settings):
    settings.REPORT_RATE_PER_IP = "2/10min"
    body = {"what": "login", "started_at": "2026-01-05T10:25:00Z"}
    assert [post(api, body).status_code for _ in range(3)] == [201, 201, 429]
    assert Report.objects.count() == 2


def test_the_api_is_throttled(api, people, settings):
    settings.REPORT_RATE_PER_IP = "100/min"
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"report_api": "3/min"},
    }
    body = {"what": "login", "started_at": "2026-01-05T10:25:00Z"}
    assert [post(api, body).status_code for _ in range(4)] == [201, 201, 201, 429]


def test_the_api_is_throttled_and_the_throttle_fails_open_without_a_cache(
    api, people, settings, cache_down
):
    settings.REPORT_RATE_PER_IP = "100/min"
    body = {"what": "login", "started_at": "2026-01-05T10:25:00Z"}
    assert {post(api, body).status_code for _ in range(12)} == {201}
    assert Report.objects.count() == 12
