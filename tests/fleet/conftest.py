"""The fleet feed's stories: the coordination service's control plane (a producer with
a fleet-scoped token) tells us about acme (alice's tailnet) and globex (bob's), on
the fleet of tests/conftest.py: use1 and use2 in us-east, euw1 in eu-west."""

from datetime import datetime, timedelta
from typing import Any

import pytest

from plumbing.tokens import api_token_create
from tests.conftest import T0

M = timedelta(minutes=1)
# Feed tests run at this instant: events up to five minutes later are accepted.
NOW = T0 + 24 * 60 * M


@pytest.fixture
def frozen(time_machine):
    """The clock stands at NOW."""
    time_machine.move_to(NOW, tick=False)


def event(event_id: str, kind: str, at: Any, **fields: Any) -> dict[str, Any]:
    """One event as the producer sends it (``at`` a datetime, or sent as given)."""
    return {
        "id": event_id,
        "type": kind,
        "at": at.isoformat() if isinstance(at, datetime) else at,
        **fields,
    }


def created(event_id, at, tailnet, shard, display_name=None):
    return event(
        event_id,
        "tailnet.created",
        at,
        tailnet=tailnet,
        shard=shard,
        display_name=display_name or f"{tailnet}.com",
    )


def migrated(event_id, at, tailnet, shard):
    return event(event_id, "tailnet.migrated", at, tailnet=tailnet, shard=shard)


def renamed(event_id, at, tailnet, display_name):
    return event(event_id, "tailnet.renamed", at, tailnet=tailnet, display_name=display_name)


def deleted(event_id, at, tailnet):
    return event(event_id, "tailnet.deleted", at, tailnet=tailnet)


@pytest.fixture
def oscar(client, db):
    """Oscar the operator, signed in to the admin."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(
        "oscar", "oscar@example.com", "pw", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return client


@pytest.fixture
def control_plane(db):
    """The secret of the control plane's fleet-scoped token."""
    return api_token_create(name="control plane", scope="fleet")[1]
