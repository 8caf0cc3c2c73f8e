"""Operators triage reports in the admin; members see their tailnet's reports. HTML
typed into a report is shown as text everywhere, never run."""

from datetime import timedelta

import pytest
from django.template.loader import render_to_string

from fleet.services import tailnet_create
from incidents.services import WindowSpec, incident_create
from reports.models import Report
from reports.queries import tailnet_reports
from reports.services import report_submit, report_triage

from .conftest import NOW, report_data

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)
EVIL = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"


def file_report(**fields):
    fields = {"what": "login", "started_at": NOW - 5 * MINUTE, **fields}
    return report_submit(**fields)


@pytest.fixture
def staff_client(client, people):
    client.force_login(people["staff"])
    return client


# --- XSS --------------------------------------------------------------------------------


def test_html_in_a_report_is_escaped_on_the_confirmation_page(client, people):
    response = client.post(
        "/report/", report_data(tailnet=EVIL[:150], description=EVIL, email="a@example.com")
    )
    html = client.get(response["Location"]).content.decode()
    assert ESCAPED in html
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "a@example.com" not in html  # the email is never shown back


def test_html_in_a_report_is_escaped_in_the_admin(staff_client, people):
    report = file_report(tailnet_name=EVIL[:150], description=EVIL, email="x@example.com")
    listing = staff_client.get("/admin/reports/report/").content.decode()
    detail = staff_client.get(f"/admin/reports/report/{report.pk}/change/").content.decode()
    for html in (listing, detail):
        assert "<script>alert" not in html
        assert "<img src=x" not in html
    assert "&lt;script&gt;" in listing
    assert "&lt;script&gt;" in detail


def test_html_in_a_report_is_escaped_in_the_customer_view(people):
    file_report(tailnet=people["acme"], description=EVIL)
    html = render_to_string(
        "reports/_tailnet_reports.html", {"reports": tailnet_reports(people["acme"])}
    )
    assert ESCAPED in html
    assert "<script>alert" not in html


# --- The customer view --------------------------------------------------------------------


def test_members_see_their_tailnets_reports_and_status_but_not_bots_or_drafts(people):
    mine = report_triage(report_id=file_report(tailnet=people["acme"], description="mine").pk)
    typed_by_someone = file_report(tailnet_name="acme", description="visit evil.example")
    report_triage(report_id=typed_by_someone.pk)
    file_report(tailnet=people["acme"], honeypot=True, description="spam")
    file_report(tailnet=people["globex"], description="theirs")
    draft = incident_create(
        title="Draft title for operators",
        body="Draft.",
        started_at=NOW - 10 * MINUTE,
        shard_impacts=[WindowSpec("use1", "partial", NOW - 10 * MINUTE)],
        at=NOW - 10 * MINUTE,
    )
    Report.objects.filter(pk=mine.pk).update(incident=draft)

    reports = tailnet_reports(people["acme"])
    html = render_to_string("reports/_tailnet_reports.html", {"reports": reports})

    assert len(reports) == 2
    assert "mine" in html
    assert "Triaged" in html
    assert "Filed without signing in" in html
    assert "visit evil.example" not in html  # an outsider's words never reach the page
    assert "spam" not in html
    assert "theirs" not in html
    assert "Draft title for operators" not in html


def test_a_tailnet_without_reports_is_told_so(people):
    html = render_to_string("reports/_tailnet_reports.html", {"reports": []})
    assert "No reports from your tailnet." in html


# --- The admin ------------------------------------------------------------------------


def test_the_triage_list_filters_by_shard_region_status_and_time(staff_client, people):
    report_triage(report_id=file_report(tailnet_name="acme", description="on use1").pk)
    report_triage(report_id=file_report(tailnet_name="globex", description="on euw1").pk)
    file_report(tailnet_name="nobody", description="still new")

    def listed(query):
        response = staff_client.get(f"/admin/reports/report/{query}")
        assert response.status_code == 200
        return [r.description for r in response.context["cl"].result_list]

    assert sorted(listed("")) == ["on euw1", "on use1", "still new"]
    assert listed(f"?shard__id__exact={people['use1'].pk}") == ["on use1"]
    assert listed("?region=eu-west") == ["on euw1"]
    assert listed("?status__exact=new") == ["still new"]
    assert (
        len(
            listed(
                "?created_at__gte=2026-01-05T00:00:00%2B00:00&created_at__lt=2026-01-06T00:00:00%2B00:00"
            )
        )
        == 3
    )
    assert listed("?created_at__gte=2026-01-06T00:00:00%2B00:00") == []


def test_bulk_actions_mark_reports_duplicate_noise_or_resolved(staff_client, people):
    reports = [file_report(tailnet_name="acme") for _ in range(3)]
    for action, report in zip(
        ["mark_duplicate", "mark_noise", "mark_resolved"], reports, strict=True
    ):
        response = staff_client.post(
            "/admin/reports/report/",
            {"action": action, "_selected_action": [report.pk]},
            follow=True,
        )
        assert response.status_code == 200
        assert "1 report marked" in response.content.decode()
    assert [r.status for r in Report.objects.order_by("pk")] == [
        "duplicate",
        "noise",
        "resolved",
    ]


def test_a_spike_draft_is_shown_prominently_with_a_link_to_it(staff_client, people, settings):
    settings.REPORT_SPIKE_THRESHOLD = 2
    tailnet_create(slug="t0", display_name="t0", shard="use1", at=NOW - timedelta(days=3))
    for name, address in (("acme", "192.0.2.1"), ("t0", "192.0.2.2")):
        report_triage(report_id=file_report(tailnet_name=name, client_address=address).pk)

    html = staff_client.get("/admin/reports/report/").content.decode()
    incident = Report.objects.first().incident
    assert incident is not None
    assert not incident.published
    assert "Spikes of reports: 1 draft incident waiting for you" in html
    assert f'href="/admin/incidents/incident/{incident.pk}/change/"' in html
    assert "2 reports" in html
    only_its = staff_client.get(f"/admin/reports/report/?incident__id__exact={incident.pk}")
    assert len(only_its.context["cl"].result_list) == 2


def test_only_staff_see_the_triage_list(client, people):
    client.force_login(people["alice"])
    assert client.get("/admin/reports/report/").status_code == 302
