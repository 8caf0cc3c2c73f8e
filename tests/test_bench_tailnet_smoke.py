"""The tailnet benchmark keeps working: bench/data.py and bench/tailnet.py at a tiny size.

Both run in subprocesses against their own database, ``bench_tailnet_smoke`` on the
server the tests use (BENCH_TAILNET_SMOKE_DATABASE_URL overrides it), never
pytest-django's test database nor another smoke test's. bench/tailnet.py installs wrk
with apt-get when it is missing and fails, never skips, when it cannot. Wall times
and rates are printed by the script, never asserted here.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.bench_smoke import NEEDS_POSTGRES, smoke_database_url

ROOT = Path(__file__).resolve().parent.parent
LAST_LINE = re.compile(
    r"^tailnet: ours=(?P<ours>\d+\.\d{3})ms baseline=(?P<baseline>\d+\.\d{3})ms"
    r" ratio=(?P<ratio>\d+\.\d\d)$"
)

pytestmark = NEEDS_POSTGRES


def _smoke_env() -> dict[str, str]:
    env = dict(os.environ)
    env["BENCH_DATABASE_URL"] = smoke_database_url(
        "bench_tailnet_smoke", override="BENCH_TAILNET_SMOKE_DATABASE_URL"
    )
    if os.environ.get("REDIS_URL") and not os.environ.get("BENCH_TAILNET_REDIS_URL"):
        # The tests' Redis server; the benchmark's keys carry their own prefix.
        env["BENCH_TAILNET_REDIS_URL"] = os.environ["REDIS_URL"]
    return env


def _run(script: str, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own scripts, fixed arguments
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env=_smoke_env(),
        capture_output=True,
        text=True,
        timeout=300,  # an apt-get install of wrk included
        check=False,
    )
    assert done.returncode == 0, f"bench/{script} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_tailnet_benchmark_runs_at_a_tiny_size_and_ends_with_its_line():
    _run("data.py", "--tailnets", "2000", "--shards", "20", "--force")
    output = _run("tailnet.py", "--smoke")

    last = output.rstrip("\n").splitlines()[-1]
    match = LAST_LINE.match(last)
    assert match, f"unexpected last line {last!r}:\n{output}"
    assert float(match["ours"]) > 0, output
    assert float(match["baseline"]) > 0, output
    assert float(match["ratio"]) > 0, output
    # (a) compared the same rows, read by read, for a tailnet with 20 migrations.
    assert "20 migrations in 90 days" in output, output
    assert output.count("on both sides") == 6, output
    # (b) loaded the page and /uptime, and every answer was a 200.
    for endpoint in ("page", "uptime"):
        assert re.search(rf"^  {endpoint}: .* non-200: 0, socket errors: 0$", output, re.M), output
    # Nothing the benchmark started is left running.
    assert not _processes_mentioning("bench.tailnet:production_app")


def _processes_mentioning(needle: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended meanwhile
            continue
        if needle in args:
            found.append(args)
    return found
