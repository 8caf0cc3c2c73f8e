"""The report benchmark keeps working: bench/report.py at a tiny size.

It runs in a subprocess against its own database, never pytest-django's test database:
``bench_report_smoke`` on the server the tests use (BENCH_REPORT_SMOKE_DATABASE_URL
overrides it), and its own Redis db, 8 on the Redis the tests use (or on 127.0.0.1:6379;
BENCH_REPORT_SMOKE_REDIS_URL overrides it). The script checks that every submission was
saved and its triage published, and fails otherwise; rates are printed, never asserted.
"""

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.bench_smoke import NEEDS_POSTGRES, smoke_database_url

ROOT = Path(__file__).resolve().parent.parent
LAST_LINE = re.compile(r"^report: ours=(?P<ours>\d+) baseline=(?P<baseline>\d+) ratio=\d+\.\d{3}$")

pytestmark = NEEDS_POSTGRES


def _smoke_database_url() -> str:
    return smoke_database_url("bench_report_smoke", override="BENCH_REPORT_SMOKE_DATABASE_URL")


def _smoke_redis_url() -> str:
    if os.environ.get("BENCH_REPORT_SMOKE_REDIS_URL"):
        return os.environ["BENCH_REPORT_SMOKE_REDIS_URL"]
    server = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return urlunsplit(server._replace(path="/8"))


def test_the_report_benchmark_runs_at_a_tiny_size_and_ends_with_its_line():
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(ROOT / "bench" / "report.py"), "--smoke"],
        cwd=ROOT,
        env={
            **os.environ,
            "BENCH_DATABASE_URL": _smoke_database_url(),
            "BENCH_REDIS_URL": _smoke_redis_url(),
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"bench/report.py failed:\n{done.stdout}\n{done.stderr}"
    output = done.stdout

    last = output.rstrip("\n").splitlines()[-1]
    match = LAST_LINE.match(last)
    assert match, f"unexpected last line {last!r}:\n{output}"
    assert int(match["ours"]) > 0, output
    assert int(match["baseline"]) > 0, output
    # The rate limits were on, every submission was saved and its triage published,
    # the profile was printed, and what was published was removed again.
    assert re.search(r"rate limit on: one client address: \d+ saved, then 429", output), output
    assert re.search(r"rate limit on: one tailnet name: \d+ saved, then 429", output), output
    assert re.search(r"checked: \d+ submissions saved as sent", output), output
    assert "where a submission goes" in output, output
    assert re.search(r"removed \d+ messages", output), output
