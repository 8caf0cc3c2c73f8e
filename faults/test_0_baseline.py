"""Before any fault: every surface the scenarios look at works."""

from faults.conftest import ALICE, ALICE_TAILNET, Stack, is_html, report_form, report_id


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
