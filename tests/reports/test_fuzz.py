"""Whatever is posted to the form or the API, the answer is never a server error, and
a report is saved exactly when the answer says so."""

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from reports.models import Report

# Text a browser or a script can send (no lone surrogates: they can't be encoded).
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
junk = st.one_of(text, st.sampled_from(["", " ", "\x00", "login", "2026-01-05T10:25"]))
times = st.one_of(
    junk,
    st.sampled_from(
        [
            "2026-01-05T10:25",
            "2026-01-05T10:25:00Z",
            "2026-01-05 10:25:00+14:00",
            "9999-12-31T23:59",
            "0001-01-01T00:00",
            "2026-13-45T99:99",
            "2026-01-05T10:25:00-25:00",
        ]
    ),
)
whats = st.one_of(st.sampled_from(["login", "derp", "other", "LOGIN"]), text)
form_fields = st.fixed_dictionaries(
    {},
    optional={
        "what": whats,
        "started_at": times,
        "tailnet": text,
        "email": st.one_of(text, st.emails()),
        "description": st.text(max_size=2100),
        "website": text,
    },
)
json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
api_bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "what": st.one_of(whats, json_value),
            "started_at": st.one_of(times, json_value),
            "tailnet": st.one_of(text, json_value),
            "email": st.one_of(text, st.emails()),
            "description": st.text(max_size=2100),
        },
    ),
    json_value,
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def no_limits(settings):
    settings.REPORT_RATE_PER_IP = "1000000/min"
    settings.REPORT_RATE_PER_TAILNET = "1000000/min"
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"report_api": "1000000/min"},
    }


@pytest.mark.django_db
@FUZZ
@given(data=form_fields)
def test_the_form_never_answers_with_a_server_error(people, no_limits, data):
    before = Report.objects.count()
    response = Client().post("/report/", data)
    assert response.status_code in (303, 400), response.status_code
    assert Report.objects.count() == before + (response.status_code == 303)
    if response.status_code == 303:
        assert Client().get(response["Location"]).status_code == 200


@pytest.mark.django_db
@FUZZ
@given(body=api_bodies)
def test_the_api_never_answers_with_a_server_error(people, no_limits, body):
    before = Report.objects.count()
    response = APIClient().post("/api/v1/reports", body, format="json")
    assert response.status_code in (201, 400), (response.status_code, response.content)
    assert Report.objects.count() == before + (response.status_code == 201)


@pytest.mark.django_db
@FUZZ
@given(raw=st.binary(max_size=200))
def test_the_api_never_answers_raw_bytes_with_a_server_error(people, no_limits, raw):
    response = APIClient().post("/api/v1/reports", raw, content_type="application/json")
    assert response.status_code in (201, 400)
