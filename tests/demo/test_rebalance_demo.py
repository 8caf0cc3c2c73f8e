"""The demo's rebalancer moves tailnets the way the control plane would: through the
fleet feed API, within their region, with a token of its own that ends with it."""

import io

import pytest
from django.core.management import call_command

from fleet.services import tailnet_create
from incidents.models import Placement
from plumbing.models import ApiToken
from tests.conftest import T0, fleet_create


@pytest.mark.django_db(transaction=True)
def test_a_round_moves_tailnets_to_another_shard_of_their_region(live_server):
    fleet_create(T0)
    for n in range(3):
        tailnet_create(slug=f"us{n}", display_name=f"us{n}", shard="use1", at=T0)
    tailnet_create(slug="lonely", display_name="lonely", shard="euw1", at=T0)  # one EU shard
    out = io.StringIO()

    call_command("rebalance_demo", api=live_server.url, once=True, moves=2, seed=7, stdout=out)

    now_on = dict(
        Placement.objects.filter(ends_at__isnull=True).values_list("tailnet__slug", "shard__slug")
    )
    assert sorted(now_on.values()) == ["euw1", "use1", "use2", "use2"]
    assert now_on["lonely"] == "euw1"
    assert out.getvalue().startswith("moved 2: ")
    # Its token lives as long as it runs.
    (token,) = ApiToken.objects.filter(name="demo rebalancer")
    assert (token.scope, token.revoked_at is not None) == ("fleet", True)


@pytest.mark.django_db(transaction=True)
def test_a_feed_not_answering_yet_is_tried_again_later_not_a_crash():
    fleet_create(T0)
    tailnet_create(slug="us0", display_name="us0", shard="use1", at=T0)
    err = io.StringIO()

    call_command("rebalance_demo", api="http://127.0.0.1:9", once=True, stderr=err)

    assert "feed not reachable" in err.getvalue()
    assert Placement.objects.get().shard.slug == "use1"
