"""Is a shard down or slow? Pure rules over probe samples: no ORM, no clock.

Per region, a shard is *down* after 3 consecutive failed probes and *up* again
after 2 consecutive successes (hysteresis: a flapping shard does not open and
close incidents in a loop). Across regions, the shard is down when at least two
regions, and at least half of the regions reporting, see it down (quorum): one
partitioned region can never open an incident on its own. The outage starts when
agreement first held: at the **first failing sample of the region whose failure
completed the quorum** (a region partitioned for hours before a real outage does not
pull its start back by hours), never before the previous recovery; it ends at the
first successful sample of the recovery that broke the quorum.

The shard is *degraded* when the p95 latency of its successful probes of the last
five minutes exceeds its threshold and at least 3 of them were slow (a slow answer
or two is noise, not slowness). It is fast again when the answers of the last 2
rounds (``recovery_window``) have a p95 under the threshold: the slow answers still
in the five minutes do not hold it degraded, and they are forgotten then, so they
cannot open it again either; the slowness ends at the first fast answer after the
last slow one.

When no region has reported on a shard for a while, detection knows nothing about
it: ``Detector.lost_contact`` forgets every run in progress, so an outage after
contact comes back must be established again, from its own first failure.

``Detector.feed`` is idempotent: a sample at or before the last one already seen
from its region is ignored, so running detection again over the same samples
changes nothing.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from math import ceil
from typing import Any

FAILS_TO_DOWN = 3
OKS_TO_UP = 2
MIN_AGREEING_REGIONS = 2
SLOWS_TO_DEGRADED = 3


def recovery_window(interval: timedelta) -> timedelta:
    """The answers of the last OKS_TO_UP rounds of ``interval``, with half a round of
    slack for probes that start a little early or late."""
    return (OKS_TO_UP - 1) * interval + interval / 2


# The probes' default interval is 30 seconds (PROBE_INTERVAL_SECONDS).
FAST_WINDOW = recovery_window(timedelta(seconds=30))


@dataclass(frozen=True)
class Sample:
    region: str
    at: datetime
    ok: bool
    latency_ms: float | None = None


@dataclass(frozen=True)
class RegionView:
    """What one region has seen of one shard."""

    down: bool = False
    fails: int = 0
    oks: int = 0
    first_failure_at: datetime | None = None  # first sample of the current failing run
    first_ok_at: datetime | None = None  # first sample of the current succeeding run
    last_at: datetime | None = None

    def step(self, sample: Sample) -> "RegionView":
        if self.last_at is not None and sample.at <= self.last_at:
            return self  # already seen: re-delivery changes nothing
        if sample.ok:
            oks = self.oks + 1
            first_ok = sample.at if self.oks == 0 else self.first_ok_at
            down = self.down and oks < OKS_TO_UP
            return RegionView(
                down=down,
                fails=0,
                oks=oks,
                first_failure_at=self.first_failure_at if down else None,
                first_ok_at=first_ok,
                last_at=sample.at,
            )
        fails = self.fails + 1
        first_failure = sample.at if self.fails == 0 and not self.down else self.first_failure_at
        return RegionView(
            down=self.down or fails >= FAILS_TO_DOWN,
            fails=fails,
            oks=0,
            first_failure_at=first_failure,
            first_ok_at=None,
            last_at=sample.at,
        )


def quorum_down(down: int, reporting: int) -> bool:
    return down >= MIN_AGREEING_REGIONS and 2 * down >= reporting


@dataclass(frozen=True)
class Change:
    """A transition of the shard's verdict: ``level`` None means healthy again."""

    level: str | None  # "outage", "degraded" or None
    at: datetime


@dataclass
class Detector:
    """The running state of detection for one shard (serialisable to JSON)."""

    regions: dict[str, RegionView] = field(default_factory=dict)
    down: bool = False
    down_since: datetime | None = None
    # An outage never starts before the previous one ended, even if a region
    # that went silent while down still remembers an older first failure.
    recovered_at: datetime | None = None
    degraded: bool = False
    latencies: list[tuple[datetime, float]] = field(default_factory=list)

    def feed(
        self,
        samples: Iterable[Sample],
        *,
        threshold_ms: float,
        latency_window: timedelta = timedelta(minutes=5),
        stale_after: timedelta = timedelta(minutes=5),
        fast_window: timedelta = FAST_WINDOW,
    ) -> list[Change]:
        """Take new samples in time order; return the verdict changes they cause."""
        changes: list[Change] = []
        for sample in sorted(samples, key=lambda s: (s.at, s.region)):
            view = self.regions.get(sample.region, RegionView())
            stepped = view.step(sample)
            if stepped is view:
                continue
            self.regions[sample.region] = stepped
            if sample.ok and sample.latency_ms is not None:
                self.latencies.append((sample.at, sample.latency_ms))
            went_down = stepped.down and not view.down
            judged = [
                *self._judge(sample, stale_after, went_down=went_down),
                *self._judge_latency(sample.at, threshold_ms, latency_window, fast_window),
            ]
            if len(judged) > 1:
                # One sample, one transition: an outage ending on a slow answer that
                # completes the slowness is "degraded" from the recovery on.
                judged = [Change(self.level, judged[0].at)]
            changes.extend(judged)
        return changes

    def _judge(self, sample: Sample, stale_after: timedelta, *, went_down: bool) -> list[Change]:
        reporting = [
            view
            for view in self.regions.values()
            if view.last_at is not None and view.last_at > sample.at - stale_after
        ]
        down_views = [view for view in reporting if view.down]
        if not self.down and quorum_down(len(down_views), len(reporting)):
            self.down = True
            since = self._outage_start(sample, down_views, went_down=went_down)
            self.down_since = since
            return [Change("outage", since)]
        if self.down and not quorum_down(len(down_views), len(reporting)):
            self.down = False
            # Recovered at the first success of the region whose recovery broke
            # the quorum; a region that merely went stale recovers "now".
            recovered = self.regions[sample.region]
            at = recovered.first_ok_at if sample.ok and recovered.first_ok_at else sample.at
            if self.down_since is not None and at < self.down_since:
                # Its first success predates this outage (it reopened on another
                # region's failures meanwhile): the outage ends now, not before it began.
                at = sample.at
            self.recovered_at = at
            self.down_since = None
            return [Change("degraded" if self.degraded else None, at)]
        return []

    def _outage_start(
        self, sample: Sample, down_views: Sequence[RegionView], *, went_down: bool
    ) -> datetime:
        """When agreement first held: the first failure of the region whose failure
        completed the quorum. If a region going silent completed it instead, the
        latest first failure among the agreeing regions. Never before the previous
        recovery (a region silent since then may remember an older failure)."""

        def after_recovery(at: datetime | None) -> bool:
            return at is not None and (self.recovered_at is None or at >= self.recovered_at)

        completing = self.regions[sample.region].first_failure_at
        if went_down and completing is not None and after_recovery(completing):
            return completing
        starts = [v.first_failure_at for v in down_views if after_recovery(v.first_failure_at)]
        return max(filter(None, starts)) if starts else sample.at

    def _judge_latency(
        self, now: datetime, threshold_ms: float, window: timedelta, fast_window: timedelta
    ) -> list[Change]:
        self.latencies = [(at, ms) for at, ms in self.latencies if at > now - window]
        slow_at = [at for at, ms in self.latencies if ms > threshold_ms]
        if not self.degraded:
            if len(slow_at) < SLOWS_TO_DEGRADED:
                return []
            if percentile([ms for _, ms in self.latencies], 95) <= threshold_ms:
                return []
            self.degraded = True
            if self.down:
                return []  # an outage outranks slowness; the level follows on recovery
            # Slow since the first over-threshold probe still in the window, never
            # before the previous outage ended (its window holds that time).
            return [Change("degraded", self._not_before_recovery(min(slow_at)))]
        recent = [(at, ms) for at, ms in self.latencies if at > now - fast_window]
        fast = len(recent) >= OKS_TO_UP and percentile([ms for _, ms in recent], 95) <= threshold_ms
        if slow_at and not fast:
            return []
        # Fast again (or no slow answer left at all, as after an outage without
        # answers): the older slow answers are history, never the start of the next
        # slowness (no flapping back on the same answers).
        last_slow = max(slow_at, default=None)
        back = min(
            (
                at
                for at, ms in recent
                if ms <= threshold_ms and (last_slow is None or at > last_slow)
            ),
            default=now,
        )
        self.latencies = recent
        self.degraded = False
        if self.down:
            return []
        return [Change(None, self._not_before_recovery(back))]

    def _not_before_recovery(self, at: datetime) -> datetime:
        return at if self.recovered_at is None else max(at, self.recovered_at)

    def lost_contact(self, last_seen: datetime) -> None:
        """No region has reported since ``last_seen`` (the last sample), for too long:
        forget every run in progress (failures, successes, slow answers). When reports
        come back, an outage must be established again and starts at that new run's
        first failure; a late sample from before ``last_seen`` counts for nothing."""
        self.regions = {
            name: RegionView(last_at=max(filter(None, [view.last_at, last_seen])))
            for name, view in self.regions.items()
        }
        self.down = False
        self.down_since = None
        self.recovered_at = max(filter(None, [self.recovered_at, last_seen]))
        self.degraded = False
        self.latencies = []

    @property
    def level(self) -> str | None:
        if self.down:
            return "outage"
        return "degraded" if self.degraded else None

    # --- persistence (ShardState.regions is JSON) ---------------------------------------

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "down": self.down,
            "down_since": iso(self.down_since),
            "recovered_at": iso(self.recovered_at),
            "degraded": self.degraded,
            "latencies": [[at.isoformat(), ms] for at, ms in self.latencies],
            "regions": {
                name: {
                    "down": v.down,
                    "fails": v.fails,
                    "oks": v.oks,
                    "first_failure_at": iso(v.first_failure_at),
                    "first_ok_at": iso(v.first_ok_at),
                    "last_at": iso(v.last_at),
                }
                for name, v in self.regions.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Detector":
        def dt(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        regions = {
            name: replace(
                RegionView(),
                down=bool(v.get("down")),
                fails=int(v.get("fails", 0)),
                oks=int(v.get("oks", 0)),
                first_failure_at=dt(v.get("first_failure_at")),
                first_ok_at=dt(v.get("first_ok_at")),
                last_at=dt(v.get("last_at")),
            )
            for name, v in (data.get("regions") or {}).items()
        }
        return cls(
            regions=regions,
            down=bool(data.get("down")),
            down_since=dt(data.get("down_since")),
            recovered_at=dt(data.get("recovered_at")),
            degraded=bool(data.get("degraded")),
            latencies=[
                (datetime.fromisoformat(at), float(ms)) for at, ms in data.get("latencies", [])
            ],
        )


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: a value that was really seen)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
