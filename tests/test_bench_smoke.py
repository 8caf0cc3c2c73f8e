"""The benchmarks keep working: bench/data.py and bench/impact.py at a tiny size.

They run in subprocesses against their own database, ``bench_smoke`` on the server the
tests use (BENCH_SMOKE_DATABASE_URL overrides it), never pytest-django's test database.
Wall times are printed by the scripts, never asserted here.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.bench_smoke import NEEDS_POSTGRES, smoke_database_url

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENT = re.compile(
    r"^(?P<name>impact|history): ours=(?P<ours>\d+\.\d+)(?P<unit>m?s)"
    r" baseline=(?P<baseline>\d+\.\d+)(?P=unit) ratio=(?P<ratio>\d+\.\d+)$",
    re.MULTILINE,
)

pytestmark = NEEDS_POSTGRES


def _smoke_url() -> str:
    return smoke_database_url("bench_smoke", override="BENCH_SMOKE_DATABASE_URL")


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "BENCH_DATABASE_URL": _smoke_url()}
    done = subprocess.run(  # noqa: S603 - our own scripts, fixed arguments
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"bench/{script} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_impact_benchmark_runs_at_a_tiny_size_and_prints_both_ratios():
    _run("data.py", "--tailnets", "2000", "--shards", "20", "--force")
    output = _run("impact.py", "--smoke")

    found = {m["name"]: m for m in MEASUREMENT.finditer(output)}
    assert set(found) == {"impact", "history"}, output
    assert found["impact"]["unit"] == "s"
    assert found["history"]["unit"] == "ms"
    for measurement in found.values():
        assert float(measurement["ratio"]) > 0, output
    # The two measurements are the last lines, in this order.
    assert [line.split(":")[0] for line in output.splitlines()[-2:]] == ["impact", "history"]
    assert "uses placement_shard_during" in output or "is usable by" in output, output


RELIABILITY_LINES = re.compile(
    r"^reliability: ours=\d+\.\d{3}s baseline=\d+\.\d{3}s ratio=(?P<report>\d+\.\d\d)\n"
    r"tailnet-sla: ours=\d+\.\d{3}ms baseline=\d+\.\d{3}ms ratio=(?P<sla>\d+\.\d\d)\n\Z",
    re.MULTILINE,
)


def test_the_reliability_benchmark_runs_at_a_tiny_size_and_ends_with_both_lines():
    # Its own dataset database (the script copies it, so nobody may be connected to
    # it): bench_reliability_smoke, BENCH_RELIABILITY_SMOKE_DATABASE_URL overrides it.
    url = smoke_database_url(
        "bench_reliability_smoke", override="BENCH_RELIABILITY_SMOKE_DATABASE_URL"
    )
    env = {**os.environ, "BENCH_DATABASE_URL": url}
    outputs = []
    for script, args in (
        ("data.py", ["--tailnets", "2000", "--shards", "20", "--force"]),
        ("reliability.py", ["--smoke", "--drop"]),
    ):
        done = subprocess.run(  # noqa: S603 - our own scripts, fixed arguments
            [sys.executable, str(ROOT / "bench" / script), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"bench/{script} failed:\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    output = outputs[-1]

    match = RELIABILITY_LINES.search(output)
    assert match, output
    assert float(match["report"]) > 0, output
    assert float(match["sla"]) > 0, output
    # The copy was extended, the bare load checked against the product's recompute, and
    # both sides agreed on every figure (the script exits 1 otherwise).
    assert "identical to tailnet_impacts_recompute's" in output, output
    assert "80 published incidents in the 12 months" in output, output
    assert output.count("ours equals the baseline, month by month") == 2, output
