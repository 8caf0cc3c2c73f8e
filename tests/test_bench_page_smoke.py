"""The page benchmark keeps working: bench/page.py at a tiny size.

It runs in a subprocess against its own database, never pytest-django's test database:
``bench_page_smoke`` on the server the tests use (BENCH_PAGE_SMOKE_DATABASE_URL
overrides it), which the script empties and refills. It installs wrk and nginx with
apt-get when they are missing (as .ci/run installs chromium) and fails, never skips,
when it cannot. Wall times and rates are printed by the script, never asserted here.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.bench_smoke import NEEDS_POSTGRES, smoke_database_url

ROOT = Path(__file__).resolve().parent.parent
LAST_LINE = re.compile(r"^page: ours=(?P<ours>\d+) baseline=(?P<baseline>\d+) ratio=\d+\.\d\d$")
# The shipped nginx site against nginx serving the export, while the snapshot is
# rebuilt: with gunicorn behind it, then without.
SITE_PHASES = ("page-nginx", "page-nginx-no-gunicorn")
SITE_LINE = r"^{name}: ours=(?P<ours>\d+) baseline=(?P<baseline>\d+) ratio=\d+\.\d\d$"
SITE_P99_LINE = (
    r"^{name}-p99: ours=\d+\.\d\dms baseline=\d+\.\d\dms ratio=\d+\.\d\d"
    r" non2xx=(?P<non2xx>\d+) baseline_non2xx=(?P<baseline_non2xx>\d+)"
    r" errors=(?P<errors>\d+) swaps=(?P<swaps>\d+)$"
)

pytestmark = NEEDS_POSTGRES


def _smoke_url() -> str:
    return smoke_database_url("bench_page_smoke", override="BENCH_PAGE_SMOKE_DATABASE_URL")


def test_the_page_benchmark_runs_at_a_tiny_size_and_ends_with_its_line(tmp_path):
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(ROOT / "bench" / "page.py"), "--smoke"],
        cwd=ROOT,
        # Its servers' temporary directories go under tmp_path, so the check below
        # finds this run's processes, not another benchmark's running meanwhile.
        env={**os.environ, "BENCH_DATABASE_URL": _smoke_url(), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,  # an apt-get install of wrk and nginx included
        check=False,
    )
    assert done.returncode == 0, f"bench/page.py failed:\n{done.stdout}\n{done.stderr}"
    output = done.stdout

    last = output.rstrip("\n").splitlines()[-1]
    match = LAST_LINE.match(last)
    assert match, f"unexpected last line {last!r}:\n{output}"
    assert int(match["ours"]) > 0, output
    assert int(match["baseline"]) > 0, output
    # The three servers were loaded, and all of them served the page.
    for server in ("nginx, the static export", "bare WSGI app", "ours: statuspage.wsgi"):
        assert server in output, output
    assert "render (cold snapshot" in output, output
    assert "target ours >= 0.8 x bare" in output, output
    # The nginx site's lines, in this order, just before page-identity and page.
    lines = output.rstrip("\n").splitlines()
    site_lines = lines[-2 - 2 * len(SITE_PHASES) : -2]
    assert lines[-2].startswith("page-identity: "), output
    for n, name in enumerate(SITE_PHASES):
        rate = re.match(SITE_LINE.format(name=name), site_lines[2 * n])
        assert rate, f"unexpected {name} line {site_lines[2 * n]!r}:\n{output}"
        assert int(rate["ours"]) > 0, output
        assert int(rate["baseline"]) > 0, output
        p99 = re.match(SITE_P99_LINE.format(name=name), site_lines[2 * n + 1])
        assert p99, f"unexpected {name}-p99 line {site_lines[2 * n + 1]!r}:\n{output}"
        # No answer but a 2xx from either side (the script exits 1 otherwise too).
        assert (p99["non2xx"], p99["baseline_non2xx"], p99["errors"]) == ("0", "0", "0"), output
        # Every run of ours saw a new generation swapped in half-way through.
        assert int(p99["swaps"]) >= 2, output
    for label in ("nginx, the static export (https)", "nginx, deploy/nginx/statuspage.conf"):
        assert label in output, output
    assert "gunicorn stopped (the app's paths answer 502)" in output, output
    assert re.search(r"^rebuilds while the site was loaded: [1-9]", output, re.MULTILINE), output
    # Nothing the benchmark started is left running: its gunicorns and nginx are
    # started with a temporary directory of theirs (under tmp_path) on the command line.
    assert not _processes_mentioning(f"{tmp_path}/bench-gunicorn-", f"{tmp_path}/bench-nginx-")


def _processes_mentioning(*needles: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended meanwhile
            continue
        if any(needle in args for needle in needles):
            found.append(args)
    return found
