"""Benchmarks: one script per benchmark, each prints `name: ours=… baseline=… ratio=…`.

What the scripts share: where the benchmark database is, how Django is pointed at it
(never at the app's own database), and the small meta table that says which dataset
``bench/data.py`` built there.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"
META_TABLE = "bench_meta"


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


def setup_django(url: str) -> None:
    """Set Django up against ``url``. DEBUG stays off: it records every query, which
    production does not, and would tax the ORM side of every measurement."""
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["DJANGO_SETTINGS_MODULE"] = "statuspage.settings"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit(f"The benchmarks need PostgreSQL; BENCH_DATABASE_URL is {url!r}.")


def meta_read(cursor: Any) -> dict[str, Any] | None:
    """The dataset description written last by bench/data.py, or None if there is none
    (never built, or a build that did not finish)."""
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [META_TABLE])
    if not cursor.fetchone()[0]:
        return None
    cursor.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'dataset'")
    row = cursor.fetchone()
    if row is None:
        return None
    value = row[0]
    return json.loads(value) if isinstance(value, str) else value
