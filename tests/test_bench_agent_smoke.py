"""bench/agent.py keeps working: the probe agent at a tiny size, in subprocesses,
against its own database (``bench_smoke_agent`` on the server the tests use). Its
figures are printed, never asserted beyond their shape."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.bench_smoke import NEEDS_POSTGRES, smoke_database_url

ROOT = Path(__file__).resolve().parent.parent

pytestmark = NEEDS_POSTGRES


def test_the_agent_benchmark_runs_at_a_tiny_size_and_prints_its_figures():
    url = smoke_database_url("bench_smoke", override="BENCH_SMOKE_DATABASE_URL")
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(ROOT / "bench" / "agent.py"), "--smoke"],
        cwd=ROOT,
        env={**os.environ, "BENCH_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, f"bench/agent.py failed:\n{done.stdout}\n{done.stderr}"
    assert re.search(
        r"^agent-ingest: ours=[\d,]+/s baseline=[\d,]+/s ratio=\d+\.\d\d$", done.stdout, re.M
    ), done.stdout
    assert re.search(r"^agent-rss: \d+\.\d MB peak at 20 shards", done.stdout, re.M), done.stdout
