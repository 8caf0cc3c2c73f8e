"""Mallory, anonymous, cannot lock acme's members out of reporting, and cannot open a
draft incident on her own. alice (a member of acme) and acme's CI token always get
their report saved; over their tailnet's budget it is flagged. Whoever is refused
is told the truth: that report was not saved."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from fleet.services import tailnet_create
from incidents.models import Incident
from plumbing.tokens import api_token_create
from reports.models import Report
from reports.services import client_hash, report_triage

from .conftest import NOW, report_data

pytestmark = pytest.mark.django_db

MALLORY = "203.0.113.66"
NOT_SAVED = "This one was not saved"


@pytest.fixture
def tailnets_on_use1(people):
    """acme and four more tailnets on use1."""
    since = NOW - timedelta(days=30)
    others = [
        tailnet_create(slug=f"t{n}", display_name=f"t{n}.example", shard="use1", at=since).slug
        for n in range(4)
    ]
    return ["acme", *others]


def anonymous(client, address, **fields):
    return client.post("/report/", report_data(**fields), REMOTE_ADDR=address)


def triage_all():
    for report_id in Report.objects.order_by("pk").values_list("pk", flat=True):
        report_triage(report_id=report_id)


# --- A tailnet's members have a budget of their own -----------------------------------------


def test_mallory_naming_acme_does_not_use_up_its_members_reports(client, people, settings):
    settings.REPORT_RATE_PER_TAILNET = "3/10min"
    for n in range(3):
        assert anonymous(client, f"198.51.100.{n}", tailnet="acme").status_code == 303
    refused = anonymous(client, "198.51.100.9", tailnet="acme")
    assert refused.status_code == 429
    assert NOT_SAVED in refused.content.decode()

    client.force_login(people["alice"])
    alices = client.post("/report/", report_data(), REMOTE_ADDR="192.0.2.10")
    token = api_token_create(name="ci", scope="tailnet", tailnet=people["acme"])[1]
    ci = APIClient().post(
        "/api/v1/reports",
        {"what": "login"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        REMOTE_ADDR="192.0.2.11",
    )

    assert alices.status_code == 303
    assert ci.status_code == 201
    vouched = Report.objects.filter(from_member=True)
    assert list(vouched.values_list("tailnet__slug", "over_limit")) == [
        ("acme", False),
        ("acme", False),
    ]


def test_alice_behind_an_address_mallory_flooded_is_still_heard(client, people, settings):
    settings.REPORT_RATE_PER_IP = "2/10min"
    for _ in range(3):
        anonymous(client, MALLORY)

    client.force_login(people["alice"])
    response = client.post("/report/", report_data(), REMOTE_ADDR=MALLORY)

    assert response.status_code == 303
    assert Report.objects.filter(from_member=True, over_limit=False).count() == 1


def test_over_acmes_budget_alice_and_its_token_are_saved_and_flagged(client, people, settings):
    settings.REPORT_RATE_PER_MEMBER_TAILNET = "2/10min"
    token = api_token_create(name="ci", scope="tailnet", tailnet=people["acme"])[1]
    api = APIClient()
    client.force_login(people["alice"])

    answers = [client.post("/report/", report_data()).status_code for _ in range(2)]
    answers.append(
        api.post(
            "/api/v1/reports",
            {"what": "login"},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        ).status_code
    )
    answers.append(client.post("/report/", report_data()).status_code)

    assert answers == [303, 303, 201, 303]
    assert list(Report.objects.order_by("pk").values_list("over_limit", flat=True)) == [
        False,
        False,
        True,
        True,
    ]


@pytest.mark.parametrize("limit", ["REPORT_RATE_PER_IP", "REPORT_RATE_PER_TAILNET"])
def test_mallory_over_a_limit_is_told_her_report_was_not_saved(client, people, settings, limit):
    setattr(settings, limit, "1/10min")
    assert anonymous(client, MALLORY, tailnet="acme").status_code == 303

    page = anonymous(client, MALLORY, tailnet="acme")
    api = APIClient().post(
        "/api/v1/reports",
        {"what": "login", "tailnet": "acme"},
        format="json",
        REMOTE_ADDR=MALLORY,
    )

    assert (page.status_code, api.status_code) == (429, 429)
    for said in (page.content.decode(), api.json()["detail"]):
        assert NOT_SAVED in said
        assert "we have them all" not in said
    assert Report.objects.count() == 1


# --- A spike needs distinct reporters, not just distinct tailnets ---------------------------


def test_mallory_naming_five_tailnets_from_one_address_opens_no_draft(
    client, people, tailnets_on_use1
):
    for name in tailnets_on_use1:  # five reports: within the address's limit
        assert anonymous(client, MALLORY, tailnet=name).status_code == 303
    triage_all()

    assert Report.objects.filter(shard=people["use1"]).count() == 5
    assert not Incident.objects.exists()


def test_mallory_rotating_addresses_within_her_ipv6_64_opens_no_draft(
    client, people, tailnets_on_use1
):
    """A host picks any address in its /64 at will: it counts as one address."""
    answers = [
        anonymous(client, f"2001:db8:66:1::{n + 1:x}", tailnet=name).status_code
        for n, name in enumerate([*tailnets_on_use1, "acme"])
    ]
    triage_all()

    assert answers == [303, 303, 303, 303, 303, 429]  # one /64, one address's limit
    assert not Incident.objects.exists()


def test_five_people_at_five_addresses_naming_five_tailnets_open_a_draft(
    client, people, tailnets_on_use1
):
    addresses = ["192.0.2.1", "192.0.2.2", "2001:db8:1:1::1", "2001:db8:1:2::1", "::ffff:192.0.2.5"]
    for address, name in zip(addresses, tailnets_on_use1, strict=True):
        assert anonymous(client, address, tailnet=name).status_code == 303
    triage_all()

    incident = Incident.objects.get()
    assert not incident.published
    assert "from 5 addresses" in incident.updates.get().body


def test_reports_keep_a_keyed_hash_of_the_address_or_its_64_never_the_address():
    one_host = {client_hash(f"2001:db8:1:2::{n}") for n in range(1, 50)}
    assert len(one_host) == 1
    assert client_hash("2001:db8:1:3::1") not in one_host
    assert client_hash("::ffff:192.0.2.5") == client_hash("192.0.2.5")
    assert client_hash("192.0.2.5") != client_hash("192.0.2.6")
    for address in ("192.0.2.5", "2001:db8:1:2::1"):
        assert address not in client_hash(address)
        assert len(client_hash(address)) == 32
