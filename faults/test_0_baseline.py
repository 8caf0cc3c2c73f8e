"""Before any fault: every surface the scenarios look at works, and every region's
probe agent stores one sample per shard per tick."""

from datetime import datetime, timedelta

import requests

from faults.conftest import (
    ALICE,
    ALICE_TAILNET,
    PROBE_INTERVAL_SECONDS,
    Stack,
    is_html,
    report_form,
    report_id,
)


def test_baseline(alive: Stack) -> None:
    stack = alive
    visitor = stack.browser()
    page = visitor.get("/")
    assert page.status_code == 200
    assert is_html(page)
    summary = visitor.get("/api/v2/summary.json")
    assert summary.status_code == 200
    assert "components" in summary.json()
    alice = stack.browser()
    alice.login(ALICE.username, ALICE.password)
    tailnet = alice.get(f"/t/{ALICE_TAILNET}/")
    assert tailnet.status_code == 200, tailnet.status_code
    saved = report_id(alice.post_form("/report/", report_form(description="baseline")))
    assert saved is not None
    assert stack.one("SELECT count(*) FROM reports_report WHERE public_id = %s", [saved]) == 1


def test_seeded_shards_probe_the_simulator(stack: Stack) -> None:
    """The demo seed points every shard's probe at PROBE_SIMULATOR_URL (the suite's
    simulator runs on a port of its own)."""
    urls = [url for (url,) in stack.sql("SELECT probe_url FROM incidents_shard WHERE active")]
    wrong = [url for url in urls if not url.startswith(stack.sim_url + "/")]
    assert urls
    assert not wrong, f"shards not probed at {stack.sim_url}: {wrong[:3]}"


def test_agents_probe_every_shard_on_every_tick(alive: Stack) -> None:
    """Each active region's agent reads the suite's interval from the web and stores
    one sample per shard per tick."""
    stack = alive
    shards = stack.probed_shards()
    for region in stack.regions:
        token = stack.token_file(region).read_text().strip()
        answer = requests.get(
            stack.web_url + "/api/v1/probes/shards",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 200, f"{region}: HTTP {answer.status_code}"
        listed = answer.json()["shards"]
        assert sorted(item["slug"] for item in listed) == sorted(shards.values()), region
        intervals = {item["interval_seconds"] for item in listed}
        assert intervals == {PROBE_INTERVAL_SECONDS}, f"{region}: intervals {intervals}"
    # The next ticks (the agents have just started: earlier ones may predate them).
    start: datetime = stack.one("SELECT now()")
    end = start + timedelta(seconds=4 * PROBE_INTERVAL_SECONDS)
    coverage = stack.wait_coverage(
        "the next ticks' samples", start, end, timeout=10 * PROBE_INTERVAL_SECONDS
    )
    assert coverage.ticks >= 4
    assert coverage.complete, f"samples of the next {coverage.ticks} ticks: {coverage}"
