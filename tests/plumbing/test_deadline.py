"""A web request's database work has a deadline, and a database that cannot be
reached is a clear 503 page: never a worker held for good, never Django's bare text.

alice owns acme; her browser and her scripts meet the database outage.
"""

import threading
import time

import pytest
from django.db import OperationalError, connection, connections
from django.http import HttpResponse
from django.test import Client
from django.urls import path

from plumbing import deadline
from tests.conftest import database_unreachable


@pytest.fixture
def visitor():
    """A browser that sees the server's answer, as a real one does (the test client
    re-raises a view's exception by default)."""
    return Client(raise_request_exception=False)


def test_alice_sees_a_clear_503_page_while_the_database_is_unreachable(people, visitor, settings):
    settings.DEBUG = False
    visitor.force_login(people["alice"])
    with database_unreachable():
        response = visitor.get("/report/")

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert "<h1>This page is temporarily unavailable</h1>" in page
    assert "Nothing you saved is lost" in page
    assert '<a href="/">current status of the coordination service</a>' in page


def test_alices_script_gets_a_503_in_json(people, visitor):
    visitor.force_login(people["alice"])
    with database_unreachable():
        response = visitor.get("/api/v1/tailnets/acme/status")

    assert response.status_code == 503
    assert response.json() == {"detail": "The database is unreachable; try again shortly."}
    assert response["Retry-After"] == "30"


def test_a_bug_is_a_500_page_not_a_503(visitor, settings):
    settings.ROOT_URLCONF = __name__
    response = visitor.get("/broken/")

    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
    assert not response.has_header("Retry-After")


def _broken(request):
    raise ZeroDivisionError("a bug")


def _sleeps(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(5)")
    return HttpResponse("answered")


urlpatterns = [path("broken/", _broken)]


def _in_a_thread_of_its_own(call):
    """Run ``call`` as a web thread does: with its own database connection."""
    outcome = {}

    def run():
        started = time.monotonic()
        try:
            outcome["value"] = call()
        except Exception as error:
            outcome["error"] = error
        finally:
            outcome["seconds"] = time.monotonic() - started
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    return outcome


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_database_call_past_the_deadline_is_cut_off(settings, rf):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the deadline cuts a PostgreSQL connection's socket")
    settings.WEB_DATABASE_TIMEOUT_SECONDS = 0.5
    middleware = deadline.DeadlineMiddleware(_sleeps)

    outcome = _in_a_thread_of_its_own(lambda: middleware(rf.get("/t/acme/")))

    assert isinstance(outcome.get("error"), OperationalError)
    assert outcome["seconds"] < 3  # the query asked for 5 s; the deadline ended it


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_next_request_after_a_cut_connects_afresh(settings, rf):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the deadline cuts a PostgreSQL connection's socket")
    settings.WEB_DATABASE_TIMEOUT_SECONDS = 0.5

    def twice():
        with pytest.raises(OperationalError):
            deadline.DeadlineMiddleware(_sleeps)(rf.get("/"))
        connection.close_if_unusable_or_obsolete()  # what Django does as a request ends
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0]

    assert _in_a_thread_of_its_own(twice).get("value") == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_web_connections_get_a_statement_timeout(settings):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: statement_timeout")
    settings.WEB_DATABASE_TIMEOUT_SECONDS = 7
    deadline.bound_web_connections()

    def shown():
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            return cursor.fetchone()[0]

    try:
        assert _in_a_thread_of_its_own(shown).get("value") == "7s"
    finally:
        deadline.unbound_web_connections()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_view_that_works_on_the_whole_fleet_gets_its_own_deadline(settings, rf):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: statement_timeout")
    settings.WEB_DATABASE_TIMEOUT_SECONDS = 0.5
    deadline.bound_web_connections()

    def long_view(request):
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            shown = cursor.fetchone()[0]
            cursor.execute("SELECT pg_sleep(1)")  # past the page deadline, within its own
        return HttpResponse(shown)

    long_view.database_deadline_seconds = 30  # type: ignore[attr-defined]

    def request_then_show():
        def as_django_does(request):
            middleware.process_view(request, long_view, (), {})
            return long_view(request)

        middleware = deadline.DeadlineMiddleware(as_django_does)
        answered = middleware(rf.post("/api/v1/fleet/events"))
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            return answered.getvalue(), cursor.fetchone()[0]

    try:
        outcome = _in_a_thread_of_its_own(request_then_show)
    finally:
        deadline.unbound_web_connections()
    assert outcome.get("value") == (b"30s", "500ms"), outcome  # then back to the web's


def test_a_request_within_its_deadline_is_untouched(rf, db):
    answered = deadline.DeadlineMiddleware(lambda request: HttpResponse("ok"))(rf.get("/"))
    assert answered.status_code == 200
    assert deadline.watchdog._armed == {}
