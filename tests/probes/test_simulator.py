"""The fleet simulator: faults decided by ``Fleet`` (fake clock), served over HTTP,
and set from the command line with ``manage.py fault``."""

import json
import random
import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given
from hypothesis import strategies as st

from probes.checks import ProbeTarget, probe_round
from probes.management.commands.fault import parse_duration, parse_latency
from probes.simulator import FaultError, Fleet, key_body


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fleet(clock) -> Fleet:
    """A Fleet on a fake clock (shadows the database fleet of tests/conftest.py)."""
    return Fleet(clock=clock)


# Fleet: which answer each request gets ------------------------------------------------


def test_a_healthy_shard_answers_at_once(fleet):
    answer = fleet.answer("use-1", "us-east")

    assert (answer.action, answer.delay_s) == ("ok", 0)


def test_the_key_looks_like_a_coordination_servers_and_is_the_same_every_time():
    body = json.loads(key_body("use-1"))

    assert set(body) == {"legacyPublicKey", "publicKey"}
    assert body["publicKey"].startswith("mkey:")
    assert len(body["publicKey"]) == len("mkey:") + 64
    assert key_body("use-1") == key_body("use-1") != key_body("use-2")


def test_down_answers_500_by_default_and_drops_connections_in_refused_mode(fleet):
    fleet.set_fault("use-1", "down")
    fleet.set_fault("use-2", "down", mode="refused")
    fleet.set_fault("use-3", "down", mode="http_503")

    assert fleet.answer("use-1", None).status == 500
    assert fleet.answer("use-2", None).action == "drop"
    assert fleet.answer("use-3", None).status == 503
    assert fleet.answer("use-4", None).action == "ok"


def test_slow_adds_its_latency_to_the_fleets_base_latency(clock):
    fleet = Fleet(clock=clock, latency_ms=200)
    fleet.set_fault("use-1", "slow", latency_ms=1500)

    assert fleet.answer("use-1", None).delay_s == pytest.approx(1.7)
    assert fleet.answer("use-2", None).delay_s == pytest.approx(0.2)


def test_jitter_stays_between_the_base_latency_and_base_plus_jitter(clock):
    fleet = Fleet(clock=clock, latency_ms=200, jitter_ms=50, rng=random.Random(7))

    delays = [fleet.answer(f"shard-{i}", None).delay_s for i in range(200)]

    assert all(0.2 <= delay <= 0.25 for delay in delays)
    assert len(set(delays)) > 1


def test_hang_holds_the_answer_until_the_cap(fleet):
    fleet.set_fault("use-1", "hang")

    answer = fleet.answer("use-1", None)

    assert (answer.action, answer.delay_s) == ("hang", 300)


def test_wrong_answers_bad_json_or_json_without_a_key(fleet):
    fleet.set_fault("use-1", "wrong")
    fleet.set_fault("use-2", "wrong", mode="wrong_fields")

    assert fleet.answer("use-1", None).action == "bad_json"
    assert fleet.answer("use-2", None).action == "wrong_fields"


def test_flapping_fails_every_other_request_starting_with_a_failure(fleet):
    fleet.set_fault("use-1", "flapping")

    actions = [fleet.answer("use-1", None).action for _ in range(4)]

    assert actions == ["status", "ok", "status", "ok"]


def test_flapping_alternates_for_each_region_on_its_own(fleet):
    fleet.set_fault("use-1", "flapping")

    rounds = [[fleet.answer("use-1", r).action for r in ("us-east", "eu-west")] for _ in range(3)]

    assert rounds == [["status", "status"], ["ok", "ok"], ["status", "status"]]


def test_flapping_with_a_period_fails_then_recovers_for_a_period_each(fleet, clock):
    fleet.set_fault("use-1", "flapping", period_s=30, mode="refused")
    seen = []
    for _ in range(4):
        seen.append(fleet.answer("use-1", None).action)
        seen.append(fleet.answer("use-1", None).action)
        clock.advance(30)

    assert seen == ["drop", "drop", "ok", "ok", "drop", "drop", "ok", "ok"]


def test_a_region_scoped_fault_hits_only_that_regions_probes(fleet):
    fleet.set_fault("use-1", "down", region="eu-west")

    assert fleet.answer("use-1", "eu-west").action == "status"
    assert fleet.answer("use-1", "us-east").action == "ok"
    assert fleet.answer("use-1", None).action == "ok"


def test_a_regions_own_fault_wins_over_the_all_regions_one(fleet):
    fleet.set_fault("use-1", "slow", latency_ms=800)
    fleet.set_fault("use-1", "hang", region="eu-west")

    assert fleet.answer("use-1", "eu-west").action == "hang"
    assert fleet.answer("use-1", "us-east").delay_s == pytest.approx(0.8)


def test_a_fault_with_a_duration_clears_itself(fleet, clock):
    fleet.set_fault("use-1", "down", for_seconds=120)

    clock.advance(119)
    assert fleet.answer("use-1", None).action == "status"
    assert fleet.faults()[0].as_json(clock())["expires_in_s"] == 1
    clock.advance(1)
    assert fleet.answer("use-1", None).action == "ok"
    assert fleet.faults() == []


def test_setting_a_fault_again_replaces_it_and_restarts_its_clock(fleet, clock):
    fleet.set_fault("use-1", "down", for_seconds=10)
    clock.advance(8)
    fleet.set_fault("use-1", "slow", for_seconds=10)
    clock.advance(8)

    [fault] = fleet.faults()
    assert fault.kind == "slow"


def test_clear_takes_one_region_one_shard_or_everything(fleet):
    fleet.set_fault("use-1", "down")
    fleet.set_fault("use-1", "down", region="eu-west")
    fleet.set_fault("use-2", "hang")
    fleet.set_fault("use-3", "hang")

    assert fleet.clear("use-1", region="eu-west") == 1
    assert [f.key for f in fleet.faults()] == [("use-1", None), ("use-2", None), ("use-3", None)]
    assert fleet.clear("use-1") == 1
    assert fleet.clear("use-1") == 0
    assert fleet.clear() == 2
    assert fleet.faults() == []


def test_requests_are_counted_per_shard_and_region(fleet):
    fleet.answer("use-1", "us-east")
    fleet.answer("use-1", "eu-west")
    fleet.answer("use-1", "eu-west")
    fleet.answer("use-2", None)

    stats = fleet.stats()

    assert stats["requests"] == 4
    assert stats["shards"]["use-1"] == {"requests": 3, "regions": {"eu-west": 2, "us-east": 1}}
    assert stats["shards"]["use-2"]["regions"] == {"(none)": 1}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "expected a JSON object"),
        ({"kind": "down"}, "shard is required"),
        ({"shard": "use-1"}, "kind is required"),
        ({"shard": "use-1", "kind": "exploded"}, "unknown kind 'exploded'"),
        ({"shard": "use 1", "kind": "down"}, "not a valid name"),
        ({"shard": "use-1\n", "kind": "down"}, "not a valid name"),
        ({"shard": "use-1", "kind": "down", "region": "eu west"}, "not a valid name"),
        ({"shard": "use-1", "kind": "down", "mode": "bad_json"}, "does not apply to down"),
        ({"shard": "use-1", "kind": "hang", "mode": "refused"}, "expected no mode"),
        ({"shard": "use-1", "kind": "down", "for_seconds": -1}, "for_seconds must be"),
        ({"shard": "use-1", "kind": "down", "for_seconds": "2m"}, "must be a number"),
        ({"shard": "use-1", "kind": "down", "for_seconds": True}, "must be a number"),
        ({"shard": "use-1", "kind": "slow", "latency_ms": 0}, "latency_ms must be"),
        ({"shard": "use-1", "kind": "down", "latency_ms": 100}, "only applies to kind slow"),
        ({"shard": "use-1", "kind": "down", "period_s": 5}, "only applies to kind flapping"),
        ({"shard": "use-1", "kind": "down", "latncy_ms": 5}, "unknown field(s): latncy_ms"),
    ],
)
def test_nonsense_faults_are_refused_with_a_reason(fleet, payload, message):
    with pytest.raises(FaultError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fleet.set_fault_from_json(payload)
    assert fleet.faults() == []


# HTTP -------------------------------------------------------------------------------


def test_any_shard_name_gets_its_key_over_http(simulator):
    status, body = simulator.key("use-1")

    assert status == 200
    assert body == key_body("use-1")


def test_faults_are_set_listed_and_cleared_through_the_control_endpoint(simulator):
    status, fault = simulator.control(
        "POST",
        "/_control/faults",
        {"shard": "use-1", "kind": "down", "region": None, "for_seconds": 120, "mode": "http_500"},
    )
    assert status == 201
    assert fault["shard"] == "use-1"
    assert fault["for_seconds"] == 120
    assert simulator.key("use-1")[0] == 500

    status, listing = simulator.control("GET", "/_control/faults")
    assert status == 200
    assert [f["shard"] for f in listing["faults"]] == ["use-1"]

    assert simulator.control("DELETE", "/_control/faults/use-1") == (200, {"cleared": 1})
    assert simulator.key("use-1")[0] == 200


def test_clearing_by_region_leaves_the_other_regions_faults(simulator):
    simulator.fleet.set_fault("use-1", "down", region="eu-west")
    simulator.fleet.set_fault("use-1", "down", region="ap-south")

    assert simulator.control("DELETE", "/_control/faults/use-1?region=eu-west")[1] == {"cleared": 1}
    assert simulator.key("use-1", region="eu-west")[0] == 200
    assert simulator.key("use-1", region="ap-south")[0] == 500
    assert simulator.control("DELETE", "/_control/faults")[1] == {"cleared": 1}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the body must be a JSON object"),
        (b'{"shard": "use-1", "kind": "exploded"}', "unknown kind"),
        (b'{"shard": "use-1", "kind": "slow", "latency_ms": "1.5s"}', "must be a number"),
    ],
)
def test_the_control_endpoint_answers_400_with_the_reason(simulator, body, message):
    status, answer = simulator.request("POST", "/_control/faults", body)

    assert status == 400
    assert message in json.loads(answer)["error"]
    assert simulator.fleet.faults() == []


def test_health_and_stats(simulator):
    simulator.key("use-1", region="us-east")

    assert simulator.control("GET", "/_control/health")[1]["status"] == "ok"
    stats = simulator.control("GET", "/_control/stats")[1]
    assert stats["shards"]["use-1"]["regions"] == {"us-east": 1}
    assert stats["hanging"] == 0
    simulator.control("DELETE", "/_control/stats")
    assert simulator.control("GET", "/_control/stats")[1]["requests"] == 0


def test_a_hanging_answer_is_released_when_the_probe_gives_up(simulator):
    simulator.fleet.set_fault("use-1", "hang")

    probe_round([ProbeTarget("use-1", simulator.shard_url("use-1"))], region="r", timeout_s=0.2)

    deadline = time.monotonic() + 5
    while simulator.control("GET", "/_control/stats")[1]["hanging"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert simulator.control("GET", "/_control/stats")[1]["hanging"] == 0


def test_shutdown_does_not_wait_for_hanging_answers(simulator):
    simulator.fleet.set_fault("use-1", "hang")
    outcome: list[object] = []

    def hang() -> None:
        try:
            outcome.append(simulator.key("use-1"))
        except OSError as error:  # the connection is dropped at shutdown
            outcome.append(error)

    client = threading.Thread(target=hang)
    client.start()
    deadline = time.monotonic() + 5
    while not simulator.fleet.stats()["requests"] and time.monotonic() < deadline:
        time.sleep(0.01)

    started = time.monotonic()
    simulator.stop()
    client.join(5)

    assert time.monotonic() - started < 3  # not the 300 s cap, nor the 5 s grace
    assert not client.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], OSError)


def test_it_listens_on_loopback_only_unless_told_otherwise():
    with pytest.raises(CommandError, match=r"refusing to listen on 0\.0\.0\.0"):
        call_command("simulate_fleet", "--host", "0.0.0.0", "--port", "0")  # noqa: S104


# manage.py fault ----------------------------------------------------------------------


def fault(*args: str) -> str:
    out = StringIO()
    call_command("fault", *args, stdout=out)
    return out.getvalue().strip()


def test_fault_breaks_a_shard_and_says_so_in_plain_words(simulator):
    said = fault("use-1", "down", "--for", "120s", "--url", simulator.url)

    assert said == "use-1 is now down (answering 500) for 120 s (all regions)"
    [set_fault] = simulator.fleet.faults()
    assert (set_fault.kind, set_fault.mode, set_fault.region) == ("down", "http_500", None)


def test_fault_takes_region_latency_and_mode(simulator):
    said = fault(
        "use-1", "slow", "--latency", "1.5s", "--region", "eu-west", "--url", simulator.url
    )
    assert said == "use-1 is now slow (+1500 ms) until cleared (only from region eu-west)"

    said = fault("use-2", "down", "--mode", "refused", "--for", "2m", "--url", simulator.url)
    assert said == "use-2 is now down (dropping connections) for 120 s (all regions)"

    listing = fault("--list", "--url", simulator.url)
    assert listing.splitlines() == [
        "use-1 is slow (+1500 ms) (only from region eu-west), until cleared",
        "use-2 is down (dropping connections) (all regions), 120 s left",
    ]


def test_fault_clear(simulator):
    simulator.fleet.set_fault("use-1", "hang")

    assert fault("use-1", "clear", "--url", simulator.url) == "use-1: cleared 1 fault."
    assert fault("use-1", "clear", "--url", simulator.url) == "use-1 had no faults to clear."
    assert fault("--list", "--url", simulator.url) == "No faults: every shard answers normally."


def test_fault_uses_the_simulator_url_setting(simulator, settings):
    settings.PROBE_SIMULATOR_URL = simulator.url

    fault("use-1", "wrong")

    assert simulator.fleet.fault_for("use-1", None) is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("use-1", "exploded"), "unknown kind 'exploded'"),
        (("use-1", "down", "--for", "12x"), "'12x' is not a duration"),
        (("use-1", "slow", "--latency", "fast"), "'fast' is not a latency"),
        (("use-1", "down", "--mode", "bad_json"), "the simulator refused: mode 'bad_json'"),
        (("use-1",), "usage: fault <shard> <kind|clear>"),
    ],
)
def test_fault_explains_bad_input(simulator, args, message):
    with pytest.raises(CommandError, match=message):
        fault(*args, "--url", simulator.url)
    assert simulator.fleet.faults() == []


def test_fault_says_when_the_simulator_is_not_running(closed_port):
    with pytest.raises(CommandError, match="the fleet simulator is not answering"):
        fault("use-1", "down", "--url", f"http://127.0.0.1:{closed_port}")


@pytest.mark.parametrize(
    ("text", "seconds"), [("120", 120), ("120s", 120), ("2m", 120), ("1h", 3600), ("1.5m", 90)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "ms"), [("1500", 1500), ("1500ms", 1500), ("1.5s", 1500)])
def test_latencies(text, ms):
    assert parse_latency(text) == ms


def duration_or_error(text: str) -> float | str:
    try:
        return parse_duration(text)
    except ValueError as error:
        return str(error)


@given(st.text(max_size=8))
def test_a_duration_is_either_understood_or_refused_with_a_reason(text):
    outcome = duration_or_error(text)

    if isinstance(outcome, float):
        assert outcome > 0
    else:
        assert "is not a duration" in outcome
