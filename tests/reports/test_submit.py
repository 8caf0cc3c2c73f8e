"""A report is saved first, always: with Redis and the broker down, from bots too."""

import socket
import time
from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from reports.models import Report
from reports.tasks import sweep_untriaged
from statuspage.celery import app as celery_app
from tests.conftest import real_broker

from .conftest import NOW, report_data

pytestmark = pytest.mark.django_db


def submit(client, **fields):
    return client.post("/report/", report_data(**fields))


def test_the_form_is_public_and_says_what_to_fill_in(client, people):
    response = client.get("/report/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Report a problem" in html
    assert "<legend>What were you trying to do?</legend>" in html
    assert 'aria-current="page">Report a problem</a>' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'value="2026-01-05T10:30"' in html  # "when" defaults to now, in UTC
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_report_is_saved_and_the_reporter_sent_to_the_answer(client, people):
    response = submit(client, tailnet="acme", description="Login page spins forever")

    report = Report.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/report/thanks/{report.public_id}/"
    assert len(report.public_id) >= 22  # 128 random bits, not the sequential id
    assert (report.what, report.tailnet_name, report.description) == (
        "login",
        "acme",
        "Login page spins forever",
    )
    assert report.started_at == NOW - timedelta(minutes=10)
    assert report.status == "new"
    assert report.tailnet is None
    assert not report.from_member
    assert len(report.client_hash) == 32
    assert "127.0.0.1" not in report.client_hash


def test_it_is_saved_and_answered_while_redis_and_the_broker_are_down(
    client, people, cache_down, broker_down, committed, caplog
):
    with committed():
        response = submit(client, tailnet="acme")

    report = Report.objects.get()
    assert response.status_code == 303
    assert report.status == "new"  # saved; its triage could not be queued
    assert "could not queue triage of report" in caplog.text
    assert "Connection refused" in caplog.text  # a real refused connection, not a mock
    assert "not checked: the cache is unavailable" in caplog.text
    answer = client.get(response["Location"])
    assert answer.status_code == 200
    assert "your report is saved" in answer.content.decode()


def test_a_broker_that_never_answers_holds_the_reporter_up_only_for_the_publish_timeout(
    client, people, committed, settings, caplog
):
    settings.REPORT_PUBLISH_TIMEOUT_SECONDS = 0.2
    # Accepts connections (the kernel does) and never answers; no timeouts in the
    # app's own broker settings, so only the publish timeout can end the wait.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        with real_broker(url), committed():
            started = time.perf_counter()
            response = submit(client, tailnet="acme")
            waited = time.perf_counter() - started

    assert response.status_code == 303
    assert Report.objects.get().status == "new"  # saved; the sweep will triage it
    assert "could not queue triage of report" in caplog.text
    assert waited < 2  # a few publish timeouts at most, never the broker's own wait


def test_a_report_saved_while_the_broker_was_down_is_triaged_later_by_the_sweep(
    client, people, broker_down, committed
):
    with committed():
        submit(client, tailnet="acme")
    report = Report.objects.get()
    assert report.status == "new"

    celery_app.conf.task_always_eager = True  # the broker is back
    assert sweep_untriaged() == 0  # too young: its own task may still be on its way
    with time_machine.travel(NOW + timedelta(minutes=2)):
        assert sweep_untriaged() == 1
    report.refresh_from_db()
    assert report.status == "triaged"
    assert (report.tailnet, report.shard) == (people["acme"], people["use1"])
    with time_machine.travel(NOW + timedelta(minutes=3)):
        assert sweep_untriaged() == 0


def test_with_a_real_broker_up_the_triage_task_is_published_after_the_commit(
    client, people, committed, tmp_path
):
    queue = tmp_path / "queue"
    queue.mkdir()
    with (
        real_broker(
            "filesystem://",
            data_folder_in=str(queue),
            data_folder_out=str(queue),
            processed_folder=str(tmp_path),
            control_folder=str(tmp_path / "control"),
            store_processed=False,
        ),
        committed(),
    ):
        submit(client, tailnet="acme")
        assert not list(queue.iterdir())  # nothing is published before the commit
    messages = [path.read_text() for path in queue.iterdir()]
    assert len(messages) == 1
    assert '"task": "reports.triage"' in messages[0]
    assert Report.objects.get().status == "new"  # a worker will triage it


def test_with_the_broker_up_triage_runs_after_the_commit(client, people, committed):
    with committed():
        submit(client, tailnet="globex")
    report = Report.objects.get()
    assert report.status == "triaged"
    assert report.shard == people["euw1"]


def test_a_bot_filling_the_honeypot_is_accepted_silently_and_flagged(client, people, committed):
    with committed():
        bot = submit(client, website="http://spam.example", description="cheap pills")
        person = submit(client)

    bots_report, persons_report = Report.objects.order_by("pk")
    assert bot.status_code == person.status_code == 303
    assert bots_report.honeypot
    assert not persons_report.honeypot
    assert bots_report.status == "noise"  # never triaged, never counted in a spike
    assert persons_report.status == "triaged"
    page = client.get(bot["Location"]).content.decode()
    assert "your report is saved" in page


def test_the_honeypot_is_hidden_from_people_screen_readers_and_the_keyboard(client, people):
    html = client.get("/report/").content.decode()
    assert '<div class="report-hp" aria-hidden="true">' in html
    assert 'name="website" id="id_website" value="" tabindex="-1" autocomplete="off"' in html


def test_bad_input_gets_an_error_summary_and_saves_nothing(client, people):
    response = submit(client, what="hack", started_at="2026-02-30T10:00", email="not-an-email")

    assert response.status_code == 400
    html = response.content.decode()
    assert "There is a problem with your report" in html
    assert 'href="#id_what_0">Select a valid choice. hack is not one of the available' in html
    assert "Enter a date and time like 2026-01-05 10:02." in html
    assert "Enter a valid email address." in html
    assert 'aria-describedby="id_email_hint id_email_error"' in html
    assert 'aria-invalid="true"' in html
    assert not Report.objects.exists()


def test_a_start_in_the_future_or_weeks_ago_is_refused(client, people):
    future = submit(client, started_at="2026-01-05T12:00")
    old = submit(client, started_at="2025-12-01T10:00")
    assert "That is in the future" in future.content.decode()
    assert "more than 7 days ago" in old.content.decode()
    assert not Report.objects.exists()


def test_the_description_is_length_limited(client, people):
    response = submit(client, description="x" * 2001)
    assert response.status_code == 400
    assert "at most 2000 characters" in response.content.decode()
    # CRLF counts as one character, as the browser counted it.
    assert submit(client, description="ab\r\n" * 500).status_code == 303
    assert Report.objects.get().description == "ab\n" * 500


def test_the_form_needs_its_csrf_token(people):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/report/", report_data()).status_code == 403
    assert not Report.objects.exists()


def test_a_signed_in_member_files_for_their_own_tailnet_whatever_is_posted(client, people):
    client.force_login(people["alice"])
    html = client.get("/report/").content.decode()
    assert 'name="tailnet" value="acme"' in html
    assert "readonly" in html

    submit(client, tailnet="globex")

    report = Report.objects.get()
    assert (report.tailnet, report.tailnet_name, report.from_member) == (
        people["acme"],
        "acme",
        True,
    )
    assert report.reporter == people["alice"]


def test_a_signed_in_non_member_types_a_name_like_anyone(client, people):
    client.force_login(people["carol"])
    submit(client, tailnet="globex")
    report = Report.objects.get()
    assert (report.tailnet, report.tailnet_name, report.from_member) == (None, "globex", False)


# --- Rate limits -----------------------------------------------------------------------


def test_a_sixth_report_within_ten_minutes_from_one_address_is_refused(client, people, settings):
    settings.REPORT_RATE_PER_IP = "5/10min"
    for _ in range(5):
        assert submit(client).status_code == 303
    response = submit(client)
    assert response.status_code == 429
    assert "Please wait a few minutes before sending another" in response.content.decode()
    assert 0 < int(response["Retry-After"]) <= 600
    assert Report.objects.count() == 5
    other = client.post("/report/", report_data(), REMOTE_ADDR="192.0.2.7")
    assert other.status_code == 303  # someone else is not held up


def test_reports_naming_one_tailnet_are_limited_whoever_sends_them(client, people, settings):
    settings.REPORT_RATE_PER_TAILNET = "3/10min"
    for number in range(3):
        address = f"192.0.2.{number}"
        response = client.post("/report/", report_data(tailnet="acme"), REMOTE_ADDR=address)
        assert response.status_code == 303
    assert (
        client.post("/report/", report_data(tailnet="ACME"), REMOTE_ADDR="192.0.2.9").status_code
        == 429
    )
    # The same for a name that matches no tailnet: the limit can't tell tailnets apart.
    for number in range(3):
        address = f"198.51.100.{number}"
        response = client.post("/report/", report_data(tailnet="nope"), REMOTE_ADDR=address)
        assert response.status_code == 303
    assert (
        client.post("/report/", report_data(tailnet="nope"), REMOTE_ADDR="192.0.2.9").status_code
        == 429
    )


def test_when_the_cache_is_down_the_limit_fails_open(client, people, settings, cache_down):
    settings.REPORT_RATE_PER_IP = "2/10min"
    for _ in range(4):
        assert submit(client).status_code == 303
    assert Report.objects.count() == 4


def test_an_anonymous_submission_is_one_insert_and_no_reads(client, people):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert submit(client, tailnet="acme").status_code == 303
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert statements.count("INSERT") == 1
    assert "SELECT" not in statements
    assert "UPDATE" not in statements
