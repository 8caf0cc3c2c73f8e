"""What the benchmark smoke tests (tests/test_bench_*_smoke.py) share.

Each runs its script in a subprocess at a tiny size against a database of its own on
the server the tests use, never pytest-django's test database; an environment
variable of its own overrides where.
"""

import os
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

NEEDS_POSTGRES = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the benchmarks need PostgreSQL (set DATABASE_URL to a postgres:// URL)",
    ),
]


def smoke_database_url(name: str, *, override: str, server: str | None = None) -> str:
    """``$override`` if set, else database ``name`` on ``server`` (default: the
    tests' own PostgreSQL server, from DATABASE_URL)."""
    if os.environ.get(override):
        return os.environ[override]
    base = server or os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/")
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
