"""/t/<tailnet>/reliability/, its sla.csv and /api/v1/tailnets/<tailnet>/reliability and
/sla as alice (acme's owner), her script (acme's token) and bob (globex's member) see
them."""

import csv
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from customers.models import Membership
from plumbing.tokens import api_token_create
from reliability.models import SlaCreditTier, SlaPolicy, TailnetSla

from .test_pages import text


@pytest.fixture(autouse=True)
def _own_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def members(tailnets):
    users = get_user_model()
    alice = users.objects.create_user("alice", "alice@acme.com", "a long passphrase 1")
    bob = users.objects.create_user("bob", "bob@globex.com", "a long passphrase 2")
    Membership.objects.create(user=alice, tailnet=tailnets["acme"], role="owner")
    Membership.objects.create(user=bob, tailnet=tailnets["globex"], role="member")
    return {"alice": alice, "bob": bob}


@pytest.fixture
def alice(client, members):
    client.force_login(members["alice"])
    return client


@pytest.fixture
def script(tailnets):
    _, secret = api_token_create(name="Billing", scope="tailnet", tailnet=tailnets["acme"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def standard(db):
    policy = SlaPolicy.objects.create(
        name="Standard", target_percent=Decimal("99.99"), is_default=True
    )
    SlaCreditTier.objects.create(policy=policy, below_percent=Decimal("99.99"), credit_percent=10)
    SlaCreditTier.objects.create(policy=policy, below_percent=Decimal("99.9"), credit_percent=25)
    return policy


def page(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.content.decode()


def test_alice_reads_acmes_statement_and_figures_without_javascript(alice, story, standard):
    html = page(alice, "/t/acme/reliability/")
    words = text(html)

    assert "Reliability of acme.com" in words
    assert "under the Standard policy: a monthly uptime of 99.99 %" in words
    assert "below 99.99 %, 10 %; below 99.9 %, 25 %" in words
    rows = re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</th>(.*?)</tr>", html, re.S)
    sla = {label: text(cells) for label, cells in rows[:12]}
    assert sla["January 2026"] == "99.97% 10.0 Missed below 99.99 % 10 % 0"
    assert sla["March 2026"] == "100.00% 0.0 Met \N{EN DASH} none 0"
    assert html.count('<svg class="reliability-chart"') == 6
    assert "This tailnet&#x27;s downtime per month" in html
    assert response_is_private(alice.get("/t/acme/reliability/"))
    # Reached from acme's page.
    assert 'href="/t/acme/reliability/"' in page(alice, "/t/acme/")


def response_is_private(response):
    return "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]


@pytest.mark.parametrize(
    "path", ["/t/globex/reliability/", "/t/globex/sla.csv", "/t/nobody/reliability/"]
)
def test_another_customers_tailnet_is_a_404(alice, story, path):
    assert alice.get(path).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client, story):
    response = client.get("/t/acme/reliability/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_page_takes_the_same_queries_for_a_quiet_tailnet_and_a_busy_one(
    client, members, tailnets, story, standard
):
    Membership.objects.create(user=members["alice"], tailnet=tailnets["globex"], role="member")
    client.force_login(members["alice"])
    cache.clear()
    with CaptureQueriesContext(connection) as quiet:
        page(client, "/t/acme/reliability/")
    cache.clear()
    with CaptureQueriesContext(connection) as busy:
        page(client, "/t/globex/reliability/")

    assert len(quiet) == len(busy)


def test_the_sla_csv_has_a_row_per_month(alice, story, standard):
    response = alice.get("/t/acme/sla.csv?from=2026-01&to=2026-03")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="acme-sla-2026-01-to-2026-03.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["month"] for row in rows] == ["2026-01", "2026-02", "2026-03"]
    assert rows[0]["policy"] == "Standard"
    assert rows[0]["outage_seconds"] == "600"
    assert rows[0]["tier_below_pct"] == "99.99"
    assert rows[0]["credit_pct"] == "10.0"
    assert rows[0]["target_met"] == "false"
    assert rows[2]["credit_pct"] == "0.0"
    assert rows[2]["tier_below_pct"] == ""


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-13", "from"),
        ("to=soon", "to"),
        ("from=2024-01&to=2026-03", "from"),  # 27 months: at most 24
        ("to=2027-01", "to"),
    ],
)
def test_a_bad_sla_range_is_a_400_naming_the_field(alice, script, story, query, field):
    csv_answer = alice.get(f"/t/acme/sla.csv?{query}")
    api_answer = script.get(f"/api/v1/tailnets/acme/sla?{query}")

    assert csv_answer.status_code == 400
    assert csv_answer.content.decode().startswith(f"Bad SLA range: {field}: ")
    assert api_answer.status_code == 400
    assert list(api_answer.json()) == [field]


def test_the_script_reads_the_sla_with_acmes_token(script, story, standard):
    answer = script.get("/api/v1/tailnets/acme/sla?from=2026-01&to=2026-03")

    assert answer.status_code == 200
    body = answer.json()
    assert body["tailnet"] == {"slug": "acme", "name": "acme.com"}
    assert (body["from"], body["to"]) == ("2026-01", "2026-03")
    assert body["policy"] == {
        "name": "Standard",
        "target_pct": 99.99,
        "maintenance_notice_hours": None,
        "tiers": [
            {"below_pct": 99.99, "credit_pct": 10.0},
            {"below_pct": 99.9, "credit_pct": 25.0},
        ],
    }
    january = body["months"][0]
    assert january["outage_seconds"] == 600
    assert january["seconds_with_data"] == 31 * 86400
    assert january["uptime_pct"] == 99.9775
    assert january["target_met"] is False
    assert january["tier"] == {"below_pct": 99.99, "credit_pct": 10.0}
    assert january["credit_pct"] == 10.0
    assert response_is_private(answer)


def test_the_script_reads_acmes_figures(script, story):
    body = script.get("/api/v1/tailnets/acme/reliability?from=2026-01&to=2026-03").json()

    january = body["months"][0]
    assert january["incidents"] == 1
    assert january["tailnet_seconds"]["outage_seconds"] == 600
    assert january["tailnet_minutes_lost"] == 10
    assert body["months"][1]["by_impact"]["maintenance"] == 1


@pytest.mark.parametrize(
    "path", ["/api/v1/tailnets/globex/sla", "/api/v1/tailnets/globex/reliability"]
)
def test_acmes_token_gets_a_404_for_globex(script, story, path):
    assert script.get(path).status_code == 404


def test_thirty_six_months_of_figures_but_twenty_four_of_sla(script, story):
    assert (
        script.get("/api/v1/tailnets/acme/reliability?from=2023-04&to=2026-03").status_code == 200
    )
    assert script.get("/api/v1/tailnets/acme/sla?from=2024-04&to=2026-03").status_code == 200
    assert script.get("/api/v1/tailnets/acme/sla?from=2024-03&to=2026-03").status_code == 400


def test_a_new_policy_is_in_the_statement_at_once(script, story, tailnets, standard):
    before = script.get("/api/v1/tailnets/acme/sla").json()
    own = SlaPolicy.objects.create(name="Enterprise", target_percent=Decimal("99.999"))
    TailnetSla.objects.create(tailnet=tailnets["acme"], policy=own)

    after = script.get("/api/v1/tailnets/acme/sla").json()

    assert before["policy"]["name"] == "Standard"
    assert after["policy"]["name"] == "Enterprise"
    SlaCreditTier.objects.create(policy=own, below_percent=Decimal("99.999"), credit_percent=5)
    assert script.get("/api/v1/tailnets/acme/sla").json()["policy"]["tiers"] == [
        {"below_pct": 99.999, "credit_pct": 5.0}
    ]


def test_both_endpoints_are_in_the_public_schema(client, db):
    schema = client.get("/api/schema/?format=json").json()

    for path in ("/api/v1/tailnets/{slug}/sla", "/api/v1/tailnets/{slug}/reliability"):
        parameters = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
        assert {"from", "to"} <= parameters
