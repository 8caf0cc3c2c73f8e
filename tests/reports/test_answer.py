"""The instant answer: shard-specific for a member only; the public status for
everyone else, the same whether the tailnet they typed exists or not."""

import re
from datetime import timedelta

import pytest

from incidents.services import WindowSpec, incident_create, incident_post_update
from reports.models import Report

from .conftest import NOW, report_data

pytestmark = pytest.mark.django_db

OUTAGE_START = NOW.replace(minute=2)  # 10:02 UTC


@pytest.fixture
def outage_on_use1(people):
    incident = incident_create(
        title="Logins failing in us-east",
        body="Investigating.",
        impact="major",
        started_at=OUTAGE_START,
        components={people["us"]: "partial_outage"},
        shard_impacts=[WindowSpec("use1", "outage", OUTAGE_START)],
        published=True,
        at=OUTAGE_START + timedelta(minutes=3),
    )
    incident_post_update(
        incident=incident,
        status="identified",
        body="A stuck leader election.",
        at=OUTAGE_START + timedelta(minutes=20),
    )
    return incident


def answer_of(client, **fields):
    response = client.post("/report/", report_data(**fields))
    assert response.status_code == 303, response.content.decode()
    page = client.get(response["Location"])
    assert page.status_code == 200
    return page.content.decode()


def answer_section(html):
    return re.search(r'<section class="report-answer".*?</section>', html, re.S).group(0)


def test_alice_is_told_her_shard_has_a_known_incident_and_what_still_works(
    client, people, outage_on_use1
):
    client.force_login(people["alice"])
    html = answer_of(client)

    text = re.sub(r"<[^>]+>", "", answer_section(html))
    text = " ".join(text.split())
    assert "Yes, we know about this" in text
    assert (
        "Yes, this is a known incident since 10:02 UTC affecting Coordination (us-east), "
        "your coordination server (US East 1)." in text
    )
    assert "Outage. Existing connections keep working; logging in, approving devices and " in text
    assert "changing ACLs are blocked." in text
    assert "Logins failing in us-east: latest update 10:22 UTC (Identified)." in text
    assert f'href="/incidents/{outage_on_use1.pk}/"' in html


def test_bob_on_another_shard_hears_of_no_problem_with_his_server_and_the_public_status(
    client, people, outage_on_use1
):
    client.force_login(people["bob"])
    html = answer_section(answer_of(client))

    assert "No known problem with your coordination server (EU West 1) right now" in html
    assert "your report has been passed to the on-call team" in html
    assert "Yes, this is a known incident" not in html
    # The public status, as anyone sees it: the other region's incident is public.
    assert "Partial outage" in html
    assert "Coordination (us-east)" in html
    assert "Logins failing in us-east" in html


def test_a_typed_name_gets_the_same_answer_whether_that_tailnet_exists_or_not(
    client, people, outage_on_use1
):
    real = answer_section(answer_of(client, tailnet="acme"))
    made_up = answer_section(answer_of(client, tailnet="no-such-tailnet"))
    anonymous = answer_section(answer_of(client))

    assert real == made_up == anonymous
    assert "US East 1" not in real
    assert "your coordination server" not in real
    assert "Your report has been passed to the on-call team." in real
    assert "Logins failing in us-east" in real  # the public status, nothing more


def test_carol_signed_in_without_a_membership_is_answered_like_anyone(
    client, people, outage_on_use1
):
    anonymous = answer_section(answer_of(client, tailnet="acme"))
    client.force_login(people["carol"])
    carol = answer_section(answer_of(client, tailnet="acme"))
    # Only the sign-in hint differs: she is signed in already.
    assert carol == anonymous.replace(
        anonymous[anonymous.index(" If you are a member") : anonymous.index("</p>")], ""
    )
    assert "US East 1" not in carol


def test_a_typed_name_resolved_by_triage_still_gets_only_the_public_answer(
    client, people, outage_on_use1, committed
):
    with committed():
        response = client.post("/report/", report_data(tailnet="acme"))
    report = Report.objects.get()
    assert report.tailnet == people["acme"]  # triage knows, for the operators
    html = answer_section(client.get(response["Location"]).content.decode())
    assert "US East 1" not in html
    assert "your coordination server" not in html


def test_someone_else_opening_alices_confirmation_learns_nothing_about_acme(
    client, people, outage_on_use1
):
    client.force_login(people["alice"])
    response = client.post("/report/", report_data(description="our ACL push hangs"))
    client.logout()
    client.force_login(people["bob"])
    html = client.get(response["Location"]).content.decode()

    assert "US East 1" not in answer_section(html)
    assert "your coordination server" not in html


def test_an_unknown_confirmation_link_is_not_found(client, people):
    assert client.get("/report/thanks/nope/").status_code == 404
    assert client.get("/report/thanks/1/").status_code == 404


def test_a_draft_incident_is_not_a_known_incident(client, people):
    incident_create(
        title="Opened by probes, not yet checked",
        body="Draft.",
        started_at=OUTAGE_START,
        shard_impacts=[WindowSpec("use1", "outage", OUTAGE_START)],
        published=False,
        at=OUTAGE_START,
    )
    client.force_login(people["alice"])
    html = answer_section(answer_of(client))
    assert "No known problem with your coordination server (US East 1)" in html
    assert "Opened by probes" not in html
    assert "All systems operational" in html


def test_a_resolved_incident_that_covered_the_start_is_named_as_resolved(client, people):
    incident = incident_create(
        title="Slow logins on US East 1",
        body="Slow.",
        started_at=OUTAGE_START,
        shard_impacts=[
            WindowSpec("use1", "degraded", OUTAGE_START, OUTAGE_START + timedelta(minutes=15))
        ],
        published=True,
        at=OUTAGE_START,
    )
    incident_post_update(
        incident=incident, status="resolved", body="Fine.", at=OUTAGE_START + timedelta(minutes=15)
    )
    client.force_login(people["alice"])
    html = answer_section(answer_of(client, started_at="2026-01-05T10:10"))
    text = " ".join(re.sub(r"<[^>]+>", "", html).split())
    assert "This was a known incident from Jan 5, 2026, 10:02 UTC to Jan 5, 2026, 10:17 UTC" in text
    assert "it is resolved" in text
    assert "Slow, not down." in text
