"""Probing shards against the simulator: every way a shard can fail becomes a sample
with the right error kind, within the timeout, and nothing raises."""

import asyncio
import errno
import threading
import time
from datetime import UTC

import aiohttp
import pytest

from probes.checks import (
    REGION_HEADER,
    Prober,
    ProbeTarget,
    _classify,
    _never_resend_dropped_requests,
    _short,
    probe_all,
    probe_round,
    probe_session,
    thread_prober,
)
from probes.models import ProbeError
from probes.simulator import Fleet
from tests.probes.conftest import Simulator

TIMEOUT = 0.3


def probe_one(simulator, shard: str, region: str = "us-east", timeout_s: float = TIMEOUT):
    [result] = probe_round(
        [ProbeTarget(shard, simulator.shard_url(shard))], region=region, timeout_s=timeout_s
    )
    return result


def test_a_healthy_shard_is_ok_with_its_latency(simulator):
    result = probe_one(simulator, "use-1")

    assert result.ok
    assert result.error == ProbeError.NONE
    assert result.status_code == 200
    assert 0 < result.latency_ms < TIMEOUT * 1000
    assert 0 < result.connect_ms <= result.latency_ms
    assert result.started_at.tzinfo is UTC
    assert result.detail == ""


def test_the_probe_names_its_region(simulator):
    probe_one(simulator, "use-1", region="eu-west")

    assert simulator.requests_from("use-1", "eu-west") == 1


@pytest.mark.parametrize(("mode", "status"), [("http_500", 500), ("http_503", 503)])
def test_a_shard_that_is_down_answers_an_http_error(simulator, mode, status):
    simulator.fleet.set_fault("use-1", "down", mode=mode)

    result = probe_one(simulator, "use-1")

    assert not result.ok
    assert (result.error, result.status_code) == (ProbeError.HTTP_STATUS, status)
    assert result.latency_ms is not None
    assert str(status) in result.detail


def test_a_dropped_connection_is_a_failure_and_is_not_retried(simulator):
    simulator.fleet.set_fault("use-1", "down", mode="refused")

    result = probe_one(simulator, "use-1")

    assert not result.ok
    assert result.error in (ProbeError.REFUSED, ProbeError.NETWORK)
    assert result.latency_ms is None
    assert simulator.requests_from("use-1", "us-east") == 1


@pytest.mark.parametrize(("resend_switched_off", "requests"), [(False, 2), (True, 1)])
def test_a_probe_session_never_resends_a_dropped_get(simulator, resend_switched_off, requests):
    """The one use of a private aiohttp name: without it aiohttp sends the GET twice."""
    simulator.fleet.set_fault("use-1", "down", mode="refused")

    async def one_get():
        async with aiohttp.ClientSession() as session:
            if resend_switched_off:
                _never_resend_dropped_requests(session)
            with pytest.raises(aiohttp.ClientError):
                await session.get(simulator.shard_url("use-1"), headers={REGION_HEADER: "us-east"})

    asyncio.run(one_get())

    assert simulator.requests_from("use-1", "us-east") == requests


def test_a_slow_shard_within_the_timeout_is_ok_and_its_latency_shows_it(simulator):
    simulator.fleet.set_fault("use-1", "slow", latency_ms=100)

    result = probe_one(simulator, "use-1", timeout_s=2)

    assert result.ok
    assert result.latency_ms >= 100


def test_a_shard_slower_than_the_timeout_times_out(simulator):
    simulator.fleet.set_fault("use-1", "slow", latency_ms=1500)

    result = probe_one(simulator, "use-1")

    assert (result.ok, result.error, result.latency_ms) == (False, ProbeError.TIMEOUT, None)
    assert "0.3 s" in result.detail


def test_a_hanging_shard_times_out_on_time(simulator):
    simulator.fleet.set_fault("use-1", "hang")

    started = time.perf_counter()
    result = probe_one(simulator, "use-1")
    elapsed = time.perf_counter() - started

    assert result.error == ProbeError.TIMEOUT
    assert elapsed < TIMEOUT + 1


@pytest.mark.parametrize(("mode", "detail"), [("bad_json", "not JSON"), ("wrong_fields", "no")])
def test_a_wrong_answer_is_a_bad_body(simulator, mode, detail):
    simulator.fleet.set_fault("use-1", "wrong", mode=mode)

    result = probe_one(simulator, "use-1")

    assert (result.ok, result.error, result.status_code) == (False, ProbeError.BAD_BODY, 200)
    assert result.latency_ms is not None
    assert detail in result.detail


def test_a_flapping_shard_gives_both_outcomes_across_rounds(simulator):
    simulator.fleet.set_fault("use-1", "flapping")

    outcomes = [probe_one(simulator, "use-1").ok for _ in range(4)]

    assert outcomes == [False, True, False, True]


def test_a_flapping_shard_that_drops_connections_is_seen_failing(simulator):
    """aiohttp would re-send the dropped GET once and see the next answer succeed."""
    simulator.fleet.set_fault("use-1", "flapping", mode="refused")

    outcomes = [probe_one(simulator, "use-1").ok for _ in range(4)]

    assert outcomes == [False, True, False, True]


def test_a_partition_fails_only_the_cut_off_regions_probes(simulator):
    simulator.fleet.set_fault("use-1", "hang", region="eu-west")

    from_europe = probe_one(simulator, "use-1", region="eu-west")
    from_us = probe_one(simulator, "use-1", region="us-east")

    assert from_europe.error == ProbeError.TIMEOUT
    assert from_us.ok
    assert simulator.requests_from("use-1", "eu-west") == 1
    assert simulator.requests_from("use-1", "us-east") == 1


def test_a_closed_port_is_refused(closed_port):
    [result] = probe_round(
        [ProbeTarget("use-1", f"http://127.0.0.1:{closed_port}/key?v=88")],
        region="us-east",
        timeout_s=TIMEOUT,
    )

    assert (result.ok, result.error, result.latency_ms) == (False, ProbeError.REFUSED, None)


@pytest.mark.parametrize("url", ["", "not a url", "ftp://127.0.0.1/key", "http://[::1"])
def test_a_broken_probe_url_is_a_failed_sample_not_an_exception(url):
    [result] = probe_round([ProbeTarget("use-1", url)], region="us-east", timeout_s=TIMEOUT)

    assert not result.ok
    assert result.error == ProbeError.NETWORK
    assert 0 < len(result.detail) <= 200


def test_two_hundred_shards_with_some_hanging_take_one_timeout_and_keep_their_order(simulator):
    shards = [f"shard-{i:04d}" for i in range(200)]
    hanging = set(shards[::10])
    for shard in hanging:
        simulator.fleet.set_fault(shard, "hang")
    targets = [ProbeTarget(shard, simulator.shard_url(shard)) for shard in shards]
    # Longer than the other tests' timeout: 200 fresh connections to a server in this
    # same process take ~0.1 s of CPU, and ten times that on a busy CI machine.
    timeout_s = 1.5

    started = time.perf_counter()
    results = probe_round(targets, region="us-east", timeout_s=timeout_s)
    elapsed = time.perf_counter() - started

    assert elapsed < timeout_s + 2  # one timeout for the whole round, not one per shard
    assert [r.shard for r in results] == shards
    assert {r.shard for r in results if r.error == ProbeError.TIMEOUT} == hanging
    assert all(r.ok for r in results if r.shard not in hanging)
    assert len({r.started_at for r in results}) == 200


def test_a_shard_listed_twice_gets_two_distinct_start_times(simulator):
    target = ProbeTarget("use-1", simulator.shard_url("use-1"))

    first, second = probe_round([target, target], region="us-east", timeout_s=TIMEOUT)

    assert first.started_at != second.started_at


def test_more_shards_than_the_concurrency_limit_still_all_get_their_full_timeout(simulator):
    simulator.fleet.set_fault("slowish", "slow", latency_ms=150)
    targets = [ProbeTarget("slowish", simulator.shard_url("slowish"))] * 4

    results = asyncio.run(probe_all(targets, region="us-east", timeout_s=0.5, concurrency=1))

    assert all(r.ok for r in results)  # 4 x 150 ms in sequence would exceed one timeout


def test_a_session_kept_across_rounds_reuses_its_connection(simulator):
    target = ProbeTarget("use-1", simulator.shard_url("use-1"))

    async def two_rounds():
        async with probe_session() as session:
            first = await probe_all([target], region="us-east", timeout_s=1, session=session)
            second = await probe_all([target], region="us-east", timeout_s=1, session=session)
            return first + second

    first, second = asyncio.run(two_rounds())

    assert first.ok
    assert second.ok
    assert first.connect_ms is not None
    assert second.connect_ms is None  # kept alive: no new connection


def test_no_targets_no_results():
    assert probe_round([], region="us-east", timeout_s=TIMEOUT) == []


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TimeoutError(), ProbeError.TIMEOUT),
        (aiohttp.ConnectionTimeoutError(), ProbeError.TIMEOUT),
        (aiohttp.SocketTimeoutError(), ProbeError.TIMEOUT),
        (aiohttp.ServerDisconnectedError(), ProbeError.NETWORK),
        (aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"), ProbeError.NETWORK),
        (aiohttp.ClientPayloadError("Response payload is not completed"), ProbeError.NETWORK),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), ProbeError.REFUSED),
        # "localhost" is ::1 and 127.0.0.1, and both refused:
        (
            OSError(
                "Multiple exceptions: [Errno 111] Connect call failed ('::1', 80), "
                "[Errno 111] Connect call failed ('127.0.0.1', 80)"
            ),
            ProbeError.REFUSED,
        ),
        (OSError("Multiple exceptions: [Errno 111] a, [Errno 101] b"), ProbeError.NETWORK),
        (RuntimeError("something odd"), ProbeError.NETWORK),
    ],
)
def test_each_exception_becomes_an_error_kind(error, kind):
    assert _classify(error, TIMEOUT)[0] == kind


def test_details_are_short_and_on_one_line():
    detail = _short(_classify(RuntimeError("very\nlong " * 100), TIMEOUT)[1])

    assert len(detail) <= 200
    assert "\n" not in detail


def test_a_prober_reuses_its_connections_from_one_round_to_the_next(simulator):
    target = ProbeTarget("use-1", simulator.shard_url("use-1"))
    prober = Prober(keepalive_s=60)
    try:
        [first] = prober.probe([target], region="us-east", timeout_s=1)
        [second] = prober.probe([target], region="us-east", timeout_s=1)
    finally:
        prober.close()

    assert first.ok
    assert second.ok
    assert first.connect_ms is not None
    assert second.connect_ms is None  # the same connection, a round later
    assert simulator.requests_from("use-1", "us-east") == 2


def test_a_shard_that_restarted_between_rounds_is_probed_on_a_new_connection(simulator):
    """Its old connection is gone; the prober must not fail the probe on it."""
    target = ProbeTarget("use-1", simulator.shard_url("use-1"))
    port = int(simulator.url.rsplit(":", 1)[1])
    prober = Prober(keepalive_s=60)
    try:
        [before] = prober.probe([target], region="us-east", timeout_s=1)
        simulator.stop()
        again = Simulator(Fleet(), port=port)
        again.start()
        try:
            [after] = prober.probe([target], region="us-east", timeout_s=1)
        finally:
            again.stop()
    finally:
        prober.close()

    assert before.ok
    assert (after.ok, after.error) == (True, ProbeError.NONE)
    assert after.connect_ms is not None


def test_waiting_for_a_free_connection_does_not_count_as_the_shards_latency(simulator):
    simulator.fleet.set_fault("slow", "slow", latency_ms=300)
    target = ProbeTarget("slow", simulator.shard_url("slow"))

    async def two_probes_one_connection():
        async with probe_session(concurrency=1) as session:
            return await probe_all(
                [target, target], region="us-east", timeout_s=3, session=session, concurrency=2
            )

    first, second = asyncio.run(two_probes_one_connection())

    assert first.ok
    assert second.ok
    # The second waited ~300 ms for the first's connection, then took ~300 ms itself.
    assert 300 <= second.latency_ms < 600


def test_each_thread_reuses_one_prober_per_process():
    first = thread_prober(keepalive_s=65)
    assert thread_prober(keepalive_s=65) is first
    replaced = thread_prober(keepalive_s=125)  # a new interval: a new prober
    assert replaced is not first
    assert first.closed


def test_another_thread_gets_a_prober_of_its_own():
    mine = thread_prober(keepalive_s=65)
    theirs = []
    other = threading.Thread(target=lambda: theirs.append(thread_prober(keepalive_s=65)))
    other.start()
    other.join()
    try:
        assert theirs[0] is not mine
        assert thread_prober(keepalive_s=65) is mine
    finally:
        theirs[0].close()
