"""Operators set SLA policies in the admin: a policy with its credit tiers, and a
tailnet's own policy."""

from decimal import Decimal

import pytest

from reliability.models import SlaPolicy, TailnetSla


def tiers_form(*tiers, name="Standard", target="99.9", notice="48", default="on"):
    data = {
        "name": name,
        "target_percent": target,
        "maintenance_notice_hours": notice,
        "tiers-TOTAL_FORMS": str(len(tiers)),
        "tiers-INITIAL_FORMS": "0",
        "tiers-MIN_NUM_FORMS": "0",
        "tiers-MAX_NUM_FORMS": "1000",
    }
    if default:
        data["is_default"] = default
    for n, (below, credit) in enumerate(tiers):
        data[f"tiers-{n}-below_percent"] = below
        data[f"tiers-{n}-credit_percent"] = credit
    return data


def test_an_operator_sets_the_default_policy_with_its_tiers(admin_client):
    response = admin_client.post(
        "/admin/reliability/slapolicy/add/", tiers_form(("99.9", "10"), ("99", "25"))
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    policy = SlaPolicy.objects.get()
    assert policy.is_default
    assert policy.maintenance_notice_hours == 48
    assert [(t.below_percent, t.credit_percent) for t in policy.tiers.all()] == [
        (Decimal("99.900"), Decimal("10.00")),
        (Decimal("99.000"), Decimal("25.00")),
    ]
    listing = admin_client.get("/admin/reliability/slapolicy/").content.decode()
    assert "below 99.900 %: 10.00 % credit" in listing


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ((("99.9", "25"), ("99", "10")), "a worse month cannot owe less credit"),
        ((("99.9", "10"), ("99.9", "25")), "duplicate data for below_percent"),
        ((("100.5", "10"),), "less than or equal to 100"),
        ((("99.9", "0"),), "greater than or equal to 0.001"),
    ],
)
def test_tiers_that_make_no_sense_are_refused_and_nothing_is_saved(admin_client, tiers, message):
    response = admin_client.post("/admin/reliability/slapolicy/add/", tiers_form(*tiers))

    assert response.status_code == 200
    page = response.content.decode()
    assert any(part in page for part in message.split("|")), page[:3000]
    assert not SlaPolicy.objects.exists()


def test_a_second_default_is_refused(admin_client):
    admin_client.post("/admin/reliability/slapolicy/add/", tiers_form(("99.9", "10")))
    response = admin_client.post(
        "/admin/reliability/slapolicy/add/", tiers_form(("99", "10"), name="Other")
    )

    assert response.status_code == 200
    assert SlaPolicy.objects.count() == 1


def test_an_operator_gives_one_tailnet_its_own_policy(admin_client, tailnets):
    enterprise = SlaPolicy.objects.create(name="Enterprise", target_percent=Decimal("99.99"))

    response = admin_client.post(
        "/admin/reliability/tailnetsla/add/",
        {"tailnet": tailnets["acme"].pk, "policy": enterprise.pk},
    )

    assert response.status_code == 302
    assert TailnetSla.objects.get().tailnet == tailnets["acme"]
    assert "acme" in admin_client.get("/admin/reliability/tailnetsla/").content.decode()
