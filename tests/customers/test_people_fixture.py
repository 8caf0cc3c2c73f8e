import pytest
from django.http import Http404

from customers.access import tailnet_access


def test_alice_gets_acme_through_the_door_and_carol_does_not(people):
    access = tailnet_access(user=people["alice"], slug="acme")
    assert access.tailnet == people["acme"]
    assert access.can_manage
    for person, slug in [("carol", "acme"), ("bob", "acme"), ("alice", "nope"), ("staff", "acme")]:
        with pytest.raises(Http404):
            tailnet_access(user=people[person], slug=slug)
