"""The probe agent against the real API (the live server) and the fleet simulator:
it probes every shard on its own schedule, a slow shard holds back nobody, and no
sample is lost while the status page is unreachable or when the agent restarts."""

import asyncio
import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from plumbing.tokens import api_token_create
from probes.agent import Agent, Buffer, next_tick, parse_shards
from probes.models import ProbeRegion, ProbeSample
from tests.conftest import fleet_create

RUN_SECONDS = 3.5


@pytest.fixture
def sin(transactional_db, settings, simulator):
    """The Singapore region's agent token, and three shards served by the simulator,
    probed every second (timeout 2 s)."""
    settings.PROBE_INTERVAL_SECONDS = 1
    settings.PROBE_TIMEOUT_SECONDS = 2
    shards = fleet_create(timezone.now() - timedelta(days=1))
    for slug in ("use1", "use2", "euw1"):
        shards[slug].probe_url = simulator.shard_url(slug)
        shards[slug].save()
    region = ProbeRegion.objects.create(slug="sin", name="Singapore")
    _, secret = api_token_create(name="sin agent", scope="probe", probe_region=region)
    return secret


def run_agent(*, api, token, buffer_dir, seconds=RUN_SECONDS, **options):
    buffer = Buffer(buffer_dir / "buffer.sqlite3", limit=options.pop("limit", 100_000))
    agent = Agent(region="sin", api=api, token=token, buffer=buffer, flush_s=0.2, **options)

    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        await agent.run(stop)

    try:
        asyncio.run(main())
        return agent, buffer.depth, buffer.oldest(100_000)
    finally:
        buffer.close()


def stored(shard=None):
    samples = ProbeSample.objects.filter(region__slug="sin")
    if shard:
        samples = samples.filter(shard__slug=shard)
    return samples


def test_the_agent_probes_every_shard_and_posts_its_samples(live_server, sin, tmp_path):
    agent, waiting, _ = run_agent(api=live_server.url, token=sin, buffer_dir=tmp_path)

    for slug in ("use1", "use2", "euw1"):
        assert stored(slug).count() >= 3, slug
    assert stored().filter(ok=False).count() == 0
    assert waiting == 0
    assert agent.sent == stored().count()
    region = ProbeRegion.objects.get(slug="sin")
    assert region.agent_last_batch_at is not None
    assert region.agent_buffer_depth is not None
    assert abs(region.agent_clock_skew_seconds) < 5


def test_a_hanging_shard_holds_back_no_other(live_server, sin, simulator, tmp_path):
    simulator.fleet.set_fault("use2", "hang")

    run_agent(api=live_server.url, token=sin, buffer_dir=tmp_path)

    # use2 answers nothing for 2 s each time; the others still every second.
    assert stored("use1").count() >= 3
    assert stored("euw1").count() >= 3
    hung = list(stored("use2").values_list("ok", "error"))
    assert hung
    assert all(sample == (False, "timeout") for sample in hung)
    assert len(hung) < stored("use1").count()


def test_nothing_is_lost_while_the_status_page_is_down(live_server, sin, closed_port, tmp_path):
    # Online once (it learns the shards), then the page is unreachable for a while.
    run_agent(api=live_server.url, token=sin, buffer_dir=tmp_path, seconds=1.5)
    before = stored().count()
    _, waiting, kept = run_agent(
        api=f"http://127.0.0.1:{closed_port}", token=sin, buffer_dir=tmp_path
    )
    assert waiting >= 9  # three shards, about three rounds, all on disk
    assert stored().count() == before

    # Back: the agent (restarted) sends what waited, oldest first, and goes on.
    run_agent(api=live_server.url, token=sin, buffer_dir=tmp_path, seconds=2)

    for _, sample in kept:
        assert stored(sample["shard"]).filter(started_at=sample["started_at"]).count() == 1
    assert stored().count() >= before + waiting


def test_a_full_buffer_drops_the_oldest_and_says_so(live_server, sin, closed_port, tmp_path):
    run_agent(api=live_server.url, token=sin, buffer_dir=tmp_path, seconds=1.2)
    _, waiting, kept = run_agent(
        api=f"http://127.0.0.1:{closed_port}", token=sin, buffer_dir=tmp_path, limit=4
    )
    buffer = Buffer(tmp_path / "buffer.sqlite3", limit=4)
    dropped = buffer.dropped_total
    buffer.close()

    assert waiting == 4
    assert dropped > 0
    times = [sample["started_at"] for _, sample in kept]
    assert times == sorted(times)  # the newest kept

    run_agent(api=live_server.url, token=sin, buffer_dir=tmp_path, seconds=1.2)

    assert ProbeRegion.objects.get(slug="sin").agent_dropped_total >= dropped


def test_samples_the_api_will_never_take_are_dropped_and_the_rest_sent(live_server, sin, tmp_path):
    buffer = Buffer(tmp_path / "buffer.sqlite3", limit=100)
    now = timezone.now()
    good = {"shard": "use1", "started_at": now.isoformat(), "ok": True, "latency_ms": 12.0}
    buffer.add({**good, "shard": "retired-shard"})
    buffer.add(good)
    buffer.close()

    run_agent(api=live_server.url, token=sin, buffer_dir=tmp_path, seconds=1.5)

    assert stored("use1").filter(started_at=now).count() == 1
    assert Buffer(tmp_path / "buffer.sqlite3", limit=100).depth == 0


def test_a_wrong_token_sends_nothing_and_keeps_everything(live_server, sin, tmp_path):
    run_agent(api=live_server.url, token=sin, buffer_dir=tmp_path, seconds=1.2)
    before = stored().count()

    _, waiting, _ = run_agent(api=live_server.url, token="sp_wrong", buffer_dir=tmp_path)

    assert stored().count() == before
    assert waiting >= 6  # it probed from its saved shard list, and kept the samples


def test_the_buffer_keeps_samples_across_restarts_oldest_first(tmp_path):
    buffer = Buffer(tmp_path / "b" / "buffer.sqlite3", limit=3)
    for n in range(5):
        buffer.add({"n": n})
    buffer.close()

    again = Buffer(tmp_path / "b" / "buffer.sqlite3", limit=3)
    assert again.depth == 3
    assert [sample["n"] for _, sample in again.oldest(10)] == [2, 3, 4]
    assert again.dropped_total == 2
    again.remove([row_id for row_id, _ in again.oldest(2)])
    assert [sample["n"] for _, sample in again.oldest(10)] == [4]
    again.close()


def test_ticks_line_up_on_the_clock():
    assert next_tick(100.2, 30) == 120
    assert next_tick(120.0, 30) == 150
    assert next_tick(7.5, 0.5) == 8.0


def test_a_shard_list_that_makes_no_sense_is_refused_whole():
    with pytest.raises(ValueError, match="interval"):
        parse_shards(
            json.dumps(
                {
                    "shards": [
                        {"slug": "a", "probe_url": "http://x", "interval_seconds": 0,
                         "timeout_seconds": 1}
                    ]
                }
            )
        )  # fmt: skip


def test_the_agent_imports_no_django():
    code = (
        "import sys, probes.agent; "
        "heavy = ('django', 'celery', 'statuspage'); "
        "loaded = [m for m in sys.modules if m.split('.')[0] in heavy]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_command_line_refuses_to_start_without_a_token(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "probes.agent", "--region", "sin", "--api", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "no token" in done.stderr
