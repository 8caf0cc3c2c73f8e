"""The recompute runs after commit, and nothing is lost when the broker is down."""

from datetime import timedelta

import pytest

from fleet.services import tailnet_create
from incidents.models import Incident, TailnetImpact
from incidents.services import WindowSpec, incident_create
from incidents.tasks import refresh_ongoing_impacts
from statuspage.celery import app as celery_app
from tests.conftest import T0, real_broker


@pytest.fixture
def broker_down():
    """A real refused connection: the broker URL points at a closed local port."""
    with real_broker("redis://127.0.0.1:9/0", socket_connect_timeout=0.2, socket_timeout=0.2):
        yield


def _open_incident(at):
    return incident_create(
        title="Logins failing in us-east",
        body="Investigating.",
        started_at=at,
        shard_impacts=[WindowSpec("use1", "outage", at, at + timedelta(minutes=24))],
        published=True,
        at=at,
    )


def test_a_change_made_while_the_broker_is_down_is_kept_and_caught_up_by_the_sweep(
    fleet, committed, broker_down, caplog
):
    tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - timedelta(hours=1))
    with committed():
        incident = _open_incident(T0)

    incident.refresh_from_db()
    assert incident.impacts_computed_at is None
    assert not TailnetImpact.objects.exists()
    assert "the sweep will" in caplog.text

    celery_app.conf.task_always_eager = True  # the broker is back
    assert refresh_ongoing_impacts() == 1
    incident.refresh_from_db()
    assert incident.impacts_computed_at is not None
    assert list(TailnetImpact.objects.values_list("tailnet__slug", "seconds")) == [("acme", 1440)]
    assert refresh_ongoing_impacts() == 0  # nothing stale any more


def test_the_sweep_keeps_refreshing_an_open_window(fleet, committed):
    tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - timedelta(hours=1))
    with committed():
        incident = incident_create(
            title="Slow logins",
            body="Investigating.",
            started_at=T0,
            shard_impacts=[WindowSpec("use1", "degraded", T0)],
            published=True,
            at=T0,
        )
    assert refresh_ongoing_impacts() == 1
    assert Incident.objects.get(pk=incident.pk).impacts_computed_at is not None
    assert refresh_ongoing_impacts() == 1  # still open: its rows keep growing
