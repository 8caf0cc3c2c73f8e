"""The probes benchmark keeps working: bench/probes.py at a tiny size.

It runs in a subprocess against its own database, never pytest-django's test database:
``bench_probes_smoke`` on the server the tests use (BENCH_PROBES_SMOKE_DATABASE_URL
overrides it), with the same tiny dataset as tests/test_bench_smoke.py, built here when
it is missing. Not ``bench_smoke`` itself: that test drops and rebuilds it (``--force``),
which under ``pytest -n 2`` could happen while this one is connected to it. Wall times
are printed by the script, never asserted here.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.bench_smoke import NEEDS_POSTGRES, smoke_database_url

ROOT = Path(__file__).resolve().parent.parent
# The size tests/test_bench_smoke.py builds.
SMOKE_DATASET = ("--tailnets", "2000", "--shards", "20")
MEASUREMENT = re.compile(
    r"^(?P<name>probe-round|ingest|ingest-http):"
    r" ours=(?P<ours>\d+(?:\.\d+)?)(?P<unit>s|/s)"
    r" baseline=(?P<baseline>\d+(?:\.\d+)?)(?P=unit) ratio=(?P<ratio>\d+\.\d+)$",
    re.MULTILINE,
)

pytestmark = NEEDS_POSTGRES


def _smoke_url() -> str:
    return smoke_database_url(
        "bench_probes_smoke",
        override="BENCH_PROBES_SMOKE_DATABASE_URL",
        server=os.environ.get("BENCH_SMOKE_DATABASE_URL"),
    )


def _run(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
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
    if check:
        assert done.returncode == 0, f"bench/{script} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _smoke_dataset() -> None:
    """The tiny dataset: a no-op when it is there (bench/data.py only migrates), built
    when it is missing, rebuilt when another size is there (data.py exits 2 then)."""
    if _run("data.py", *SMOKE_DATASET, check=False).returncode != 0:
        _run("data.py", *SMOKE_DATASET, "--force")


def test_the_probes_benchmark_runs_at_a_tiny_size_and_prints_three_ratios():
    _smoke_dataset()
    output = _run("probes.py", "--smoke").stdout

    found = {m["name"]: m for m in MEASUREMENT.finditer(output)}
    assert set(found) == {"probe-round", "ingest", "ingest-http"}, output
    assert found["probe-round"]["unit"] == "s"
    assert found["ingest"]["unit"] == found["ingest-http"]["unit"] == "/s"
    for measurement in found.values():
        assert float(measurement["ours"]) > 0, output
        assert float(measurement["baseline"]) > 0, output
        assert float(measurement["ratio"]) > 0, output
    # The three measurements are the last lines, in this order, after the verdicts.
    assert [line.split(":")[0] for line in output.splitlines()[-3:]] == [
        "probe-round",
        "ingest",
        "ingest-http",
    ]
    assert output.count("target ") >= 6, output
    # Everything the benchmark added to the database is gone again.
    assert "cleaned up:" in output, output
