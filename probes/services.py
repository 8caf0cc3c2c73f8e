"""Everything the probes write: samples, rollups, detection's verdicts and the
incidents they open and close."""

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from incidents.audit import PROBE
from incidents.models import Incident, Shard, ShardImpact
from incidents.services import (
    WindowSpec,
    incident_create,
    incident_resolve,
    shard_impact_add,
    shard_impact_change_level,
    shard_impact_close,
    shard_impact_update,
)

from . import rollup
from .detection import Change, Detector, Sample, percentile
from .models import Granularity, ProbeRegion, ProbeRollup, ProbeSample, ShardState

logger = logging.getLogger(__name__)

# How far back detection looks for samples it has not seen (late regions).
DETECTION_GRACE = timedelta(minutes=2)
DETECTION_LOOKBACK = timedelta(minutes=10)
# One detection run at a time (PostgreSQL advisory lock; SQLite serialises writers).
DETECTION_LOCK = 0x70726F6265  # "probe"


@dataclass(frozen=True)
class SampleIn:
    """A probe result on its way into the database."""

    shard_id: int
    started_at: datetime
    ok: bool
    latency_ms: float | None = None
    connect_ms: float | None = None
    error: str = ""
    status_code: int | None = None
    detail: str = ""


# One fixed statement with 9 parameters however big the batch, instead of a model
# instance and 9 placeholders per sample: about half the time (see bench/README.md).
_INSERT_UNNEST = """
    INSERT INTO probes_probesample
        (shard_id, region_id, started_at, ok, latency_ms, connect_ms, error, status_code, detail)
    SELECT s, %s, a, o, l, c, e, sc, d
    FROM unnest(%s::bigint[], %s::timestamptz[], %s::boolean[], %s::float8[], %s::float8[],
                %s::text[], %s::int[], %s::text[]) AS t(s, a, o, l, c, e, sc, d)
    ON CONFLICT (shard_id, region_id, started_at) DO NOTHING
"""


def samples_store(*, region: ProbeRegion, samples: Sequence[SampleIn]) -> int:
    """Store a batch in one statement, idempotently: a sample already stored (same
    shard, region and start time) is skipped, so re-delivery stores nothing twice.
    Detection looks at the batch soon after it commits (``probes.detect``).
    Returns the size of the batch."""
    if not samples:
        return 0
    # Inside a caller's transaction (a round) no savepoint: one statement, all or nothing.
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            _insert_unnest(region, samples)
        else:
            ProbeSample.objects.bulk_create(
                [
                    ProbeSample(
                        shard_id=s.shard_id,
                        region=region,
                        started_at=s.started_at,
                        ok=s.ok,
                        latency_ms=s.latency_ms,
                        connect_ms=s.connect_ms,
                        error="" if s.ok else (s.error or "network"),
                        status_code=s.status_code,
                        detail=s.detail[:200],
                    )
                    for s in samples
                ],
                batch_size=2000,
                ignore_conflicts=True,
            )
        detection_request()
    return len(samples)


def _insert_unnest(region: ProbeRegion, samples: Sequence[SampleIn]) -> None:
    params: list[object] = [
        region.pk,
        [s.shard_id for s in samples],
        [s.started_at for s in samples],
        [s.ok for s in samples],
        [s.latency_ms for s in samples],
        [s.connect_ms for s in samples],
        ["" if s.ok else (s.error or "network") for s in samples],
        [s.status_code for s in samples],
        [s.detail[:200] for s in samples],
    ]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_UNNEST, params)  # type: ignore[arg-type]


def region_round(*, region_slug: str, scheduled_at: datetime | None = None) -> int:
    """One probe round from one region: probe its shards concurrently on the
    connections its thread reuses, store the samples. Detection runs on them right after,
    in its own task (``probes.detect``). A failed probe is stored, never retried."""
    from .checks import ProbeTarget, thread_prober

    started = timezone.now()
    region = ProbeRegion.objects.get(slug=region_slug)
    rows = list(
        Shard.objects.filter(active=True)
        .exclude(probe_url="")
        .values_list("slug", "pk", "probe_url")
    )
    shards = {slug: pk for slug, pk, _ in rows}
    targets = [ProbeTarget(shard=slug, url=url) for slug, _, url in rows]
    prober = thread_prober(keepalive_s=_keepalive_seconds())
    results = prober.probe(targets, region=region.slug, timeout_s=settings.PROBE_TIMEOUT_SECONDS)
    with transaction.atomic():  # one commit for the samples and the bookkeeping
        samples_store(
            region=region,
            samples=[
                SampleIn(
                    shard_id=shards[r.shard],
                    started_at=r.started_at,
                    ok=r.ok,
                    latency_ms=r.latency_ms,
                    connect_ms=r.connect_ms,
                    error=r.error,
                    status_code=r.status_code,
                    detail=r.detail,
                )
                for r in results
            ],
        )
        ProbeRegion.objects.filter(pk=region.pk).update(
            last_round_at=started,
            last_round_seconds=(timezone.now() - started).total_seconds(),
            last_queue_lag_seconds=(
                max(0.0, (started - scheduled_at).total_seconds()) if scheduled_at else None
            ),
        )
    return len(results)


def _keepalive_seconds() -> float:
    # Connections must outlive the pause between rounds to be reused next round.
    return 2.0 * settings.PROBE_INTERVAL_SECONDS + 5.0


# --- detection --------------------------------------------------------------------------


def detection_request() -> None:
    """Run detection soon after the current transaction commits (``probes.detect``).
    A burst of rounds and batches runs it once; see ``tasks.detect_soon``."""
    from .tasks import detect_soon

    transaction.on_commit(detect_soon)


def detection_run(
    *, shard_ids: Iterable[int] | None = None, now: datetime | None = None
) -> list[Change]:
    """Feed the shards' new samples to their detectors and act on the verdicts: open,
    extend, re-level or resolve incidents. Idempotent over the same samples.

    Without ``shard_ids`` (the ``probes.detect`` task), every shard with samples since
    detection last looked. Set-based: a handful of statements however many shards
    (a bulk insert of missing states, a bulk update of the changed ones); a shard
    without new samples is not touched, and only a verdict change costs more.
    """
    now = now or timezone.now()
    ids = None if shard_ids is None else sorted(set(shard_ids))
    applied: list[Change] = []
    with transaction.atomic():
        _detection_lock()
        since = _detection_since(ids, now)
        regions = dict(ProbeRegion.objects.values_list("pk", "slug"))
        recent = ProbeSample.objects.filter(started_at__gt=since)
        if ids is not None:
            recent = recent.filter(shard_id__in=ids)
        by_shard: dict[int, list[Sample]] = defaultdict(list)
        for shard_id, region_id, at, ok, latency in recent.values_list(
            "shard_id", "region_id", "started_at", "ok", "latency_ms"
        ).order_by("started_at"):
            by_shard[shard_id].append(Sample(regions[region_id], at, ok, latency))
        if not by_shard:
            return []
        states = _states_for(sorted(by_shard), now=now)
        default_threshold = settings.SHARD_LATENCY_THRESHOLD_MS
        changed: list[ShardState] = []
        for shard_id, state in states.items():
            samples = by_shard[shard_id]
            detector = Detector.from_json(state.regions)
            threshold: int | None = getattr(state, "threshold", None)  # annotated in _states_for
            changes = detector.feed(samples, threshold_ms=threshold or default_threshold)
            for change in changes:
                _apply(state, change, now=now)
            applied.extend(changes)
            if _update_state(state, detector, last_sample_at=samples[-1].at, now=now) or changes:
                changed.append(state)
        _states_save(changed)
    return applied


# Django's bulk_update builds a CASE WHEN per row and column: over a second of Python
# for 1,000 states. This is one fixed statement with one array per column.
_UPDATE_STATES_UNNEST = """
    UPDATE probes_shardstate AS st
    SET state = v.state, since = v.since, regions = v.regions::jsonb, p95_ms = v.p95_ms,
        last_sample_at = v.last_sample_at, incident_id = v.incident_id, updated_at = v.updated_at
    FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[], %s::float8[],
                %s::timestamptz[], %s::bigint[], %s::timestamptz[])
        AS v(id, state, since, regions, p95_ms, last_sample_at, incident_id, updated_at)
    WHERE st.id = v.id
"""


def _states_save(states: list[ShardState]) -> None:
    if not states:
        return
    if connection.vendor != "postgresql":
        ShardState.objects.bulk_update(
            states,
            ["state", "since", "regions", "p95_ms", "last_sample_at", "incident", "updated_at"],
        )
        return
    params: list[object] = [
        [s.pk for s in states],
        [s.state for s in states],
        [s.since for s in states],
        [json.dumps(s.regions) for s in states],
        [s.p95_ms for s in states],
        [s.last_sample_at for s in states],
        [s.incident_id for s in states],
        [s.updated_at for s in states],
    ]
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE_STATES_UNNEST, params)  # type: ignore[arg-type]


def _detection_lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DETECTION_LOCK])


def _detection_since(ids: list[int] | None, now: datetime) -> datetime:
    """Samples after this may be new to some shard's detector: from a little before
    the oldest last sample of the shards being probed (late regions), at most
    DETECTION_LOOKBACK ago. A shard silent for longer (paused, removed) does not drag
    every run back; one never seen starts DETECTION_LOOKBACK ago."""
    oldest = now - DETECTION_LOOKBACK
    states = ShardState.objects.filter(last_sample_at__gte=oldest)
    if ids is not None:
        states = states.filter(shard_id__in=ids)
    seen = states.aggregate(earliest=Min("last_sample_at"), count=Count("pk"))
    if seen["earliest"] is None or (ids is not None and seen["count"] < len(ids)):
        return oldest
    return max(oldest, seen["earliest"] - DETECTION_GRACE)


def _states_for(shard_ids: list[int], *, now: datetime) -> dict[int, ShardState]:
    """The shards' detection states, made for shards seen for the first time."""

    def load() -> dict[int, ShardState]:
        return {
            state.shard_id: state
            for state in ShardState.objects.filter(shard_id__in=shard_ids)
            .annotate(threshold=F("shard__latency_threshold_ms"))
            .order_by("shard_id")
        }

    states = load()
    missing = [pk for pk in shard_ids if pk not in states]
    if missing:
        ShardState.objects.bulk_create(
            [ShardState(shard_id=pk, updated_at=now) for pk in missing], ignore_conflicts=True
        )
        states = load()
    return states


def _update_state(
    state: ShardState, detector: Detector, *, last_sample_at: datetime, now: datetime
) -> bool:
    """Write the detector's verdict into ``state`` (not saved); False if nothing changed."""
    regions = detector.to_json()
    last = max(filter(None, [state.last_sample_at, last_sample_at]))
    level = detector.level
    new_state = {"outage": "down", "degraded": "degraded", None: "up"}[level]
    if regions == state.regions and new_state == state.state and last == state.last_sample_at:
        return False
    if new_state != state.state:
        state.state = new_state
        state.since = detector.down_since if level == "outage" else now
    recent = [ms for _, ms in detector.latencies]
    state.p95_ms = percentile(recent, 95) if recent else None
    state.regions = regions
    state.last_sample_at = last
    state.updated_at = now
    return True


def _apply(state: ShardState, change: Change, *, now: datetime) -> None:
    shard = state.shard
    incident = state.incident if state.incident and state.incident.resolved_at is None else None
    window = (
        ShardImpact.objects.filter(incident=incident, shard=shard, ends_at__isnull=True).first()
        if incident
        else None
    )
    if change.level is None:
        if window is not None:
            _close(window, change.at)
            _resolve_if_done(incident, now=now)
        state.incident = None
        return
    if window is not None:
        if window.level != change.level:
            if change.at <= window.starts_at:
                shard_impact_update(impact=window, level=change.level, by=PROBE)
            else:
                shard_impact_change_level(impact=window, level=change.level, at=change.at, by=PROBE)
        return
    target = incident or _covering_maintenance(shard, change.at) or _open_probe_incident(shard)
    if target is not None:
        shard_impact_add(
            incident=target, shard=shard, level=change.level, starts_at=change.at, by=PROBE
        )
        state.incident = target
        return
    state.incident = incident_create(
        title=_title(shard, change.level),
        body=_opening_body(shard, change),
        started_at=change.at,
        detected_at=now,
        impact="major" if change.level == "outage" else "minor",
        components={
            shard.component: "partial_outage"
            if change.level == "outage"
            else "degraded_performance"
        },
        shard_impacts=[WindowSpec(shard, change.level, change.at)],
        published=settings.PROBE_AUTO_PUBLISH,
        source=Incident.Source.PROBE,
        by=PROBE,
        at=now,
    )
    logger.warning("probe detection opened incident %s on %s", state.incident.pk, shard.slug)


def _close(window: ShardImpact, at: datetime) -> None:
    if at <= window.starts_at:
        at = window.starts_at + timedelta(seconds=1)
    shard_impact_close(impact=window, at=at, by=PROBE)


def _covering_maintenance(shard: Shard, at: datetime) -> Incident | None:
    """A scheduled maintenance on this shard's component (or with a window on this
    shard) running at ``at``: the impact belongs to it, and still counts as downtime."""
    return (
        Incident.objects.filter(
            kind=Incident.Kind.MAINTENANCE,
            resolved_at__isnull=True,
            scheduled_for__lte=at,
            scheduled_until__gt=at,
        )
        .filter(Q(affected_components__component=shard.component) | Q(shard_impacts__shard=shard))
        .order_by("scheduled_for")
        .first()
    )


def _open_probe_incident(shard: Shard) -> Incident | None:
    """Shards of one component failing together are one incident, not many."""
    return (
        Incident.objects.filter(
            source=Incident.Source.PROBE,
            kind=Incident.Kind.INCIDENT,
            resolved_at__isnull=True,
            affected_components__component=shard.component,
        )
        .order_by("-started_at")
        .first()
    )


def _resolve_if_done(incident: Incident | None, *, now: datetime) -> None:
    if incident is None or incident.kind != Incident.Kind.INCIDENT:
        return  # a maintenance ends on the operator's word, not the probes'
    if incident.source != Incident.Source.PROBE:
        return
    if incident.shard_impacts.filter(ends_at__isnull=True).exists():
        return
    try:
        incident_resolve(
            incident=incident,
            body=(
                "Our probes from every region have answered normally again since "
                f"{now:%H:%M} UTC. Control-plane actions (logging in, approving devices, "
                "changing ACLs) work again."
            ),
            by=PROBE,
            at=now,
        )
    except ValidationError as error:
        logger.error("could not resolve incident %s: %s", incident.pk, error)


def _title(shard: Shard, level: str) -> str:
    where = shard.component.name
    if level == "outage":
        return f"{where}: control plane unavailable for some tailnets"
    return f"{where}: slow control plane for some tailnets"


def _opening_body(shard: Shard, change: Change) -> str:
    since = f"{change.at:%H:%M} UTC"
    if change.level == "outage":
        return (
            f"Our probes cannot reach one coordination server ({shard.public_name}) since "
            f"{since}. For tailnets on it, logging in, approving devices, changing ACLs and "
            "adding or removing nodes may fail. **Existing connections keep working.** "
            "We are investigating."
        )
    return (
        f"One coordination server ({shard.public_name}) answers slowly since {since}. "
        "Control-plane actions may be slow for tailnets on it; existing connections are "
        "not affected. We are investigating."
    )


# --- rollups and retention --------------------------------------------------------------


def rollups_build(*, since: datetime, until: datetime) -> int:
    """(Re)build minute rollups from raw samples, then hour and day rollups from
    minutes, for buckets touching [since, until). Idempotent: a rebuilt bucket
    replaces the old one. Returns the number of rollup rows written."""
    written = 0
    start = rollup.bucket_start(since, "minute")
    grouped: dict[tuple[int, int, datetime], list[tuple[bool, float | None]]] = defaultdict(list)
    for shard_id, region_id, at, ok, latency in ProbeSample.objects.filter(
        started_at__gte=start, started_at__lt=until
    ).values_list("shard_id", "region_id", "started_at", "ok", "latency_ms"):
        grouped[(shard_id, region_id, rollup.bucket_start(at, "minute"))].append((ok, latency))
    rows = [_rollup_row(key, Granularity.MINUTE, values) for key, values in grouped.items()]
    written += _upsert(rows)
    for child, parent in rollup.PARENT.items():
        parent_start = rollup.bucket_start(since, parent)
        merged: dict[tuple[int, int, datetime], list[ProbeRollup]] = defaultdict(list)
        for row in ProbeRollup.objects.filter(
            granularity=child, bucket_start__gte=parent_start, bucket_start__lt=until
        ):
            merged[
                (row.shard_id, row.region_id, rollup.bucket_start(row.bucket_start, parent))
            ].append(row)
        written += _upsert(
            [
                ProbeRollup(
                    shard_id=key[0],
                    region_id=key[1],
                    granularity=parent,
                    bucket_start=key[2],
                    count=sum(r.count for r in children),
                    failures=sum(r.failures for r in children),
                    latency_sum_ms=sum(r.latency_sum_ms for r in children),
                    latency_max_ms=max(
                        (r.latency_max_ms for r in children if r.latency_max_ms is not None),
                        default=None,
                    ),
                    histogram=rollup.merge(r.histogram for r in children),
                )
                for key, children in merged.items()
            ]
        )
    return written


def _rollup_row(
    key: tuple[int, int, datetime], granularity: str, values: list[tuple[bool, float | None]]
) -> ProbeRollup:
    latencies = [ms for ok, ms in values if ok and ms is not None]
    return ProbeRollup(
        shard_id=key[0],
        region_id=key[1],
        granularity=granularity,
        bucket_start=key[2],
        count=len(values),
        failures=sum(1 for ok, _ in values if not ok),
        latency_sum_ms=sum(latencies),
        latency_max_ms=max(latencies, default=None),
        histogram=rollup.histogram(latencies),
    )


def _upsert(rows: list[ProbeRollup]) -> int:
    if rows:
        ProbeRollup.objects.bulk_create(
            rows,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["shard", "region", "granularity", "bucket_start"],
            update_fields=["count", "failures", "latency_sum_ms", "latency_max_ms", "histogram"],
        )
    return len(rows)


def retention_prune(*, now: datetime | None = None) -> tuple[int, int]:
    """Delete raw samples older than PROBE_RAW_RETENTION_DAYS and rollups older
    than PROBE_ROLLUP_RETENTION_DAYS. Returns (samples, rollups) deleted."""
    now = now or timezone.now()
    samples, _ = ProbeSample.objects.filter(
        started_at__lt=now - timedelta(days=settings.PROBE_RAW_RETENTION_DAYS)
    ).delete()
    rollups, _ = ProbeRollup.objects.filter(
        bucket_start__lt=now - timedelta(days=settings.PROBE_ROLLUP_RETENTION_DAYS)
    ).delete()
    return samples, rollups
