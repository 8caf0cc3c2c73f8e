"""Fixtures that run the fleet simulator in-process, on loopback, on a free port."""

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from probes.models import ProbeRegion
from probes.services import SampleIn, detection_run, samples_store
from probes.simulator import BackgroundSimulator, Fleet
from tests.conftest import T0

ROUND = timedelta(seconds=30)
SLOW_MS = 2500.0  # over the default threshold (SHARD_LATENCY_THRESHOLD_MS, 1000 ms)


class Simulator(BackgroundSimulator):
    """A running simulator plus the few HTTP calls tests make to it."""

    def request(
        self, method: str, path: str, body: bytes | None = None, region: str | None = None
    ) -> tuple[int, bytes]:
        """``method path`` on the simulator: (status, body), errors included."""
        headers = {"X-Probe-Region": region} if region else {}
        request = urllib.request.Request(  # noqa: S310 - always the loopback simulator
            self.url + path, data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()

    def control(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        body = None if payload is None else json.dumps(payload).encode()
        status, answer = self.request(method, path, body)
        return status, json.loads(answer)

    def key(self, shard: str, region: str | None = None) -> tuple[int, bytes]:
        return self.request("GET", f"/s/{shard}/key?v=88", region=region)

    def requests_from(self, shard: str, region: str) -> int:
        shards = self.fleet.stats()["shards"]
        return shards.get(shard, {}).get("regions", {}).get(region, 0)


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """The fleet simulator serving any shard at ``simulator.shard_url(slug)``.

    Set faults on ``simulator.fleet`` directly, or through ``simulator.control``.
    """
    sim = Simulator(Fleet())
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (it was bound a moment ago, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def probe_regions(db) -> dict[str, ProbeRegion]:
    return {
        slug: ProbeRegion.objects.create(slug=slug, name=slug) for slug in ("ams", "nyc", "sfo")
    }


RunRounds = Callable[..., None]


@pytest.fixture
def run_rounds(fleet, probe_regions, committed, settings) -> RunRounds:
    """run_rounds("use1", {"ams": "..xxx", ...}, start=T0) stores one round per
    character, each region 1 ms after the one before it, and runs detection 10 s after
    each round, as the workers do. x = failed, s = slow, . = ok, space = no sample."""
    settings.PROBE_AUTO_PUBLISH = True

    def run(shard: str, pattern: dict[str, str], start: datetime = T0) -> None:
        for i in range(max(len(marks) for marks in pattern.values())):
            at = start + i * ROUND
            for n, (region, marks) in enumerate(pattern.items()):
                if i >= len(marks) or marks[i] == " ":
                    continue
                ok = marks[i] != "x"
                samples_store(
                    region=probe_regions[region],
                    samples=[
                        SampleIn(
                            shard_id=fleet[shard].pk,
                            started_at=at + timedelta(milliseconds=n),
                            ok=ok,
                            latency_ms=(SLOW_MS if marks[i] == "s" else 40.0) if ok else None,
                            error="" if ok else "refused",
                        )
                    ],
                )
            with committed():
                detection_run(shard_ids=[fleet[shard].pk], now=at + ROUND / 3)

    return run
