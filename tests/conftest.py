import contextlib
import os
import socket
import uuid

import kombu.pools
import pytest

from statuspage.celery import app as celery_app


@pytest.fixture(autouse=True)
def _plain_http(settings):
    """Tests speak plain HTTP to the test client and do not run collectstatic;
    the production values of both are checked by `check --deploy` in CI."""
    settings.SECURE_SSL_REDIRECT = False
    # Deliberately slow password hashing has nothing to prove in tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="session")
def live_server(django_db_setup):
    """pytest-django's live server, on 127.0.0.1 and a free port. Plain HTTP: its
    SecurityMiddleware reads SECURE_SSL_REDIRECT once, when the server starts, before
    any test's settings (``_plain_http`` above) apply."""
    from django.test.utils import override_settings
    from pytest_django.live_server_helper import LiveServer

    with override_settings(SECURE_SSL_REDIRECT=False):
        server = LiveServer("127.0.0.1")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _own_snapshot_dir(settings, tmp_path):
    """Each test has its own (empty) snapshot: none left on disk answers for the
    live views, and rebuilds queued by a test never write into var/."""
    settings.SNAPSHOT_DIR = tmp_path / "snapshot"
    # Web processes follow published changes in a thread of their own; tests that
    # mean it turn it on (a thread would not see a test's uncommitted rows).
    settings.SNAPSHOT_FOLLOW_SECONDS = 0


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """Each test has a cache of its own: every test's rows are rolled back, so ids
    repeat from one test to the next (and between the parallel workers' databases),
    and a user or membership kept by one test must never answer for another's.
    Redis (CI's second pass) gets a key prefix of the test's own; the embedded
    default's file cache, shared by every test and culled at random once it holds 300
    entries, is replaced by an in-memory one."""
    own = uuid.uuid4().hex[:16]
    caches = {}
    for alias, config in settings.CACHES.items():
        if config["BACKEND"].endswith("FileBasedCache"):
            config = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": own}
        caches[alias] = {**config, "KEY_PREFIX": f"{config.get('KEY_PREFIX', '')}t{own}"}
    settings.CACHES = caches


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run inline in tests; tests of broker failure point at a closed port."""
    from plumbing import broker

    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    broker.reset()  # a broker one test broke is not left alone in the next
    yield
    celery_app.conf.task_always_eager = False


from datetime import UTC, datetime, timedelta  # noqa: E402

from incidents.models import Component, ComponentGroup, Shard  # noqa: E402

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def fleet_create(since):
    """Two coordination shards in us-east and one in eu-west, there since ``since``:
    ``{"us": …, "eu": …, "use1": …, "use2": …, "euw1": …}`` (components, then shards)."""
    group = ComponentGroup.objects.create(name="Coordination service", position=1)
    us = Component.objects.create(
        slug="coordination-us-east",
        name="Coordination (us-east)",
        group=group,
        kind="coordination",
        region="us-east",
        created_at=since,
    )
    eu = Component.objects.create(
        slug="coordination-eu-west",
        name="Coordination (eu-west)",
        group=group,
        kind="coordination",
        region="eu-west",
        created_at=since,
    )
    shards = {
        "use1": Shard.objects.create(
            slug="use1", region="us-east", public_name="US East 1", component=us, created_at=since
        ),
        "use2": Shard.objects.create(
            slug="use2", region="us-east", public_name="US East 2", component=us, created_at=since
        ),
        "euw1": Shard.objects.create(
            slug="euw1", region="eu-west", public_name="EU West 1", component=eu, created_at=since
        ),
    }
    return {"us": us, "eu": eu, **shards}


@pytest.fixture
def fleet(db):
    """Two coordination shards in us-east and one in eu-west."""
    return fleet_create(T0 - timedelta(days=365))


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed(): ...`` runs the block's after-commit callbacks (such as the
    affected-tailnet recompute) when it ends, as a real commit would; tests run
    inside a transaction that never commits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _drop_broker_connections():
    # Celery caches its connection and producer pools on the app (and kombu keeps
    # global ones); drop them so the next publish connects to the broker now set.
    kombu.pools.reset()
    celery_app._pool = None  # type: ignore[attr-defined]
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]


@contextlib.contextmanager
def real_broker(url, **transport_options):
    """Publish tasks to a real broker at ``url`` (not eager) inside the block.

    Celery reads ``CELERY_BROKER_URL`` from the environment before its own settings
    (CI's RabbitMQ pass sets it), so the variable is set aside inside the block."""
    conf = celery_app.conf
    keys = ("broker_url", "task_always_eager", "broker_transport_options")
    saved = {key: conf[key] for key in keys}
    environment = os.environ.pop("CELERY_BROKER_URL", None)
    conf.update(broker_url=url, task_always_eager=False, broker_transport_options=transport_options)
    _drop_broker_connections()
    try:
        yield
    finally:
        if environment is not None:
            os.environ["CELERY_BROKER_URL"] = environment
        conf.update(saved)
        _drop_broker_connections()


# --- The named people of the customer tests -------------------------------------------
# alice owns acme (on use1, the whole time); bob is a member of globex (on euw1);
# carol signs in but belongs to no tailnet; staff runs the service (admin only).
PASSWORD = "correct horse battery staple"


@pytest.fixture
def people(fleet):
    from django.contrib.auth import get_user_model

    from customers.models import Membership
    from fleet.services import tailnet_create

    users = get_user_model()
    since = T0 - timedelta(days=200)
    acme = tailnet_create(slug="acme", display_name="acme.com", shard=fleet["use1"], at=since)
    globex = tailnet_create(slug="globex", display_name="globex.com", shard=fleet["euw1"], at=since)
    alice = users.objects.create_user("alice", "alice@acme.com", PASSWORD)
    bob = users.objects.create_user("bob", "bob@globex.com", PASSWORD)
    carol = users.objects.create_user("carol", "carol@example.net", PASSWORD)
    staff = users.objects.create_user(
        "staff", "oncall@example.com", PASSWORD, is_staff=True, is_superuser=True
    )
    Membership.objects.create(user=alice, tailnet=acme, role="owner")
    Membership.objects.create(user=bob, tailnet=globex, role="member")
    return {
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "staff": staff,
        "acme": acme,
        "globex": globex,
        **fleet,
    }


# --- Outages ----------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends


@contextlib.contextmanager
def database_unreachable():
    """Every new database connection really fails: on PostgreSQL the server's address
    is a closed local port (connection refused), on SQLite the file cannot be opened.
    The test's own connection (holding its transaction) is put back afterwards."""
    from django.db import connections

    original = connections["default"]
    broken_settings = dict(original.settings_dict)
    if original.vendor == "postgresql":
        broken_settings.update(HOST="127.0.0.1", PORT=str(closed_port()))
    else:
        broken_settings["NAME"] = "/nonexistent/directory/db.sqlite3"
    connections["default"] = original.__class__(broken_settings, alias="default")
    try:
        yield
    finally:
        connections["default"].close()
        connections["default"] = original
