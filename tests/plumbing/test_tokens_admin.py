"""Operators create tokens (the secret shown once) and read probe health."""

import pytest

from plumbing.models import ApiToken
from plumbing.tokens import digest
from probes.models import ProbeRegion


def test_creating_a_token_shows_its_secret_once_and_stores_only_a_digest(admin_client, db):
    response = admin_client.post(
        "/admin/plumbing/apitoken/add/", {"name": "pagerduty", "scope": "staff"}, follow=True
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(name="pagerduty")
    (message,) = [str(m) for m in response.context["messages"] if "secret" in str(m)]
    secret = message.rsplit(" ", 1)[-1]
    assert secret.startswith("sp_")
    assert token.digest == digest(secret)
    assert secret not in str(ApiToken.objects.values().get())
    page = admin_client.get(f"/admin/plumbing/apitoken/{token.pk}/change/").content.decode()
    assert secret not in page


def test_a_tailnet_token_needs_its_tailnet(admin_client, db):
    response = admin_client.post(
        "/admin/plumbing/apitoken/add/", {"name": "acme ci", "scope": "tailnet"}
    )
    assert "A tailnet token needs its tailnet." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_from_the_list(admin_client, db):
    from plumbing.tokens import api_token_create

    token, _ = api_token_create(name="old", scope="probe")
    admin_client.post(
        "/admin/plumbing/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.parametrize(
    "url",
    [
        "/admin/probes/proberegion/",
        "/admin/probes/shardstate/",
        "/admin/probes/probesample/",
        "/admin/probes/proberollup/",
        "/admin/plumbing/apitoken/",
    ],
)
def test_probe_health_pages_open(admin_client, fleet, url):
    ProbeRegion.objects.create(slug="ams", name="Amsterdam")
    assert admin_client.get(url).status_code == 200


def test_old_bookmarks_of_the_token_admin_still_work(admin_client):
    response = admin_client.get("/admin/incidents/apitoken/?scope__exact=staff")
    assert response.status_code == 302
    assert response["Location"] == "/admin/plumbing/apitoken/?scope__exact=staff"
