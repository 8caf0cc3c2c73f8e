"""A probe token posts samples for one region, chosen when it is created. Probe
tokens made before tokens had a region are refused until an operator binds them here,
once; a bound token never moves (revoke it and create another)."""

import pytest
from django.core.exceptions import ValidationError

from plumbing.models import ApiToken
from plumbing.tokens import api_token_bind_region, api_token_create
from probes.models import ProbeRegion

ADD = "/admin/plumbing/apitoken/add/"


@pytest.fixture
def ams(db):
    return ProbeRegion.objects.create(slug="ams", name="Amsterdam")


@pytest.fixture
def nyc(db):
    return ProbeRegion.objects.create(slug="nyc", name="New York")


def test_a_probe_token_is_created_for_the_region_the_operator_chooses(admin_client, ams):
    response = admin_client.post(
        ADD, {"name": "ams probe", "scope": "probe", "probe_region": ams.pk}, follow=True
    )

    assert response.status_code == 200
    assert ApiToken.objects.get(name="ams probe").probe_region == ams


def test_a_probe_token_needs_its_region_and_only_probe_tokens_have_one(admin_client, ams):
    without = admin_client.post(ADD, {"name": "ams probe", "scope": "probe"})
    staff = admin_client.post(ADD, {"name": "ops", "scope": "staff", "probe_region": ams.pk})

    assert "A probe token posts for one region: choose it." in without.content.decode()
    assert "Only probe tokens have a region." in staff.content.decode()
    assert not ApiToken.objects.exists()
    with pytest.raises(ValidationError):
        api_token_create(name="ops", scope="staff", probe_region=ams)


def test_an_operator_binds_an_old_probe_token_to_its_region_once(admin_client, ams, nyc):
    old, _ = api_token_create(name="old ams probe", scope="probe")
    change = f"/admin/plumbing/apitoken/{old.pk}/change/"

    admin_client.post(change, {"probe_region": ams.pk})
    old.refresh_from_db()
    assert old.probe_region == ams

    admin_client.post(change, {"probe_region": nyc.pk})  # read-only now
    old.refresh_from_db()
    assert old.probe_region == ams
    with pytest.raises(ValidationError, match="another region"):
        api_token_bind_region(token=old, region=nyc)
