"""One shard down for every region (the simulator answers 500 to all of them).

Three failed rounds make each region see it down, and as soon as two agree detection
opens one incident: within three rounds of the first failing probe, its window (and
the incident) starting at that probe. When the shard answers again the incident
resolves itself; no second one opens.
"""

import time
from datetime import datetime

from regions.conftest import (
    INTERVAL,
    REGIONS,
    Figures,
    Stack,
    log,
    tick_of,
    wait_for,
)

SHARD = "rg-a1"
ROUNDS_TO_DETECT = 3


def _windows(stack: Stack, incident_id: int) -> list[tuple[str, str, datetime, datetime | None]]:
    rows = stack.sql(
        "SELECT sh.slug, w.level, w.starts_at, w.ends_at FROM incidents_shardimpact w "
        "JOIN incidents_shard sh ON sh.id = w.shard_id WHERE w.incident_id = %s ORDER BY w.id",
        [incident_id],
    )
    return [(str(a), str(b), c, d) for a, b, c, d in rows]


def test_a_shard_down_everywhere_opens_one_incident_from_its_first_failure(
    alive: Stack, figures: Figures
) -> None:
    stack = alive
    began = time.time()
    still_open = [i for i in stack.incidents_since(0) if i[3] is None]
    assert still_open == [], f"incidents still open before the scenario: {still_open}"
    stack.simulator(
        "POST", "/_control/faults", {"shard": SHARD, "kind": "down", "for_seconds": 120}
    )
    log(f"{SHARD} down (HTTP 500) for every region")
    try:
        opened = wait_for(
            "detection to open an incident",
            lambda: stack.incidents_since(began),
            timeout=ROUNDS_TO_DETECT * INTERVAL + 20,
        )
        seen_at = time.time()
        # A round more: a second incident would have opened by now.
        time.sleep(INTERVAL + 2)
        incidents = stack.incidents_since(began)
    finally:
        stack.simulator("DELETE", f"/_control/faults/{SHARD}")
    cleared_at = time.time()
    log(f"{SHARD} answers again; incidents: {incidents}")
    assert len(incidents) == 1, f"expected exactly one incident, got {incidents}"
    incident_id, started_at, detected_at, _, published = incidents[0]
    assert opened[0][0] == incident_id
    failing = [s for s in stack.samples(shard=SHARD, since=began) if not s[3]]
    assert failing, "no failing sample stored"
    first = min(at for _, _, at, _ in failing)
    firsts = {
        region: min((at for _, r, at, _ in failing if r == region), default=None)
        for region in REGIONS
    }
    windows = _windows(stack, incident_id)
    assert [(shard, level) for shard, level, _, _ in windows] == [(SHARD, "outage")], windows
    starts_at = windows[0][2]
    # The window starts at a region's first failing probe (the region whose third
    # failure completed the quorum), and that probe is of the first failing round.
    assert starts_at in firsts.values(), (
        f"the window starts at {starts_at}, no region's first failing probe ({firsts})"
    )
    assert tick_of(starts_at) == tick_of(first), (
        f"the window starts at {starts_at}, a later round than the first failing probe {first}"
    )
    assert started_at == starts_at, f"incident started_at {started_at} != window {starts_at}"
    detect_s = (detected_at - first).total_seconds()
    assert detect_s <= ROUNDS_TO_DETECT * INTERVAL, (
        f"detected {detect_s:.1f} s after the first failing probe: more than "
        f"{ROUNDS_TO_DETECT} rounds of {INTERVAL} s"
    )
    assert published, "PROBE_AUTO_PUBLISH is on: the incident should be published"
    # No other shard is touched.
    others = [s for s in stack.samples(since=began) if s[0] != SHARD and not s[3]]
    assert others == [], f"other shards failed meanwhile: {others[:4]}"

    resolved = wait_for(
        "the incident to resolve itself",
        lambda: stack.one(
            "SELECT resolved_at FROM incidents_incident WHERE id = %s", [incident_id]
        ),
        timeout=6 * INTERVAL + 20,
    )
    resolved_after = time.time() - cleared_at
    after = stack.incidents_since(began)
    assert len(after) == 1, f"another incident opened around the recovery: {after}"
    ended = _windows(stack, incident_id)[0][3]
    assert ended is not None, "the window is still open after the incident resolved"
    recovered = [s for s in stack.samples(shard=SHARD, since=cleared_at - INTERVAL) if s[3]]
    assert recovered, "no successful probe of the shard after the fault cleared"
    assert ended >= min(at for _, _, at, _ in recovered), (
        f"the window ends at {ended}, before the shard answered again"
    )
    assert stack.down_shards() == []
    figures.add(
        f"2 shard down: {SHARD} down for every region: 1 incident (#{incident_id}, "
        f"published) detected {detect_s:.1f} s after the first failing probe (limit "
        f"{ROUNDS_TO_DETECT * INTERVAL} s = {ROUNDS_TO_DETECT} rounds; seen by the suite "
        f"{seen_at - began:.1f} s after the fault); window and incident start at "
        f"{starts_at:%H:%M:%S.%f} UTC = the first failing probe of the first failing round "
        f"(earliest of all regions {(starts_at - first).total_seconds():.3f} s before); "
        f"resolved {resolved:%H:%M:%S} UTC, {resolved_after:.1f} s after the shard answered "
        f"again; window ends {ended:%H:%M:%S.%f}"
    )
