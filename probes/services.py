"""Everything the probes write: samples, rollups, detection's verdicts and the
incidents they open and close."""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from incidents.models import Incident, Shard, ShardImpact
from incidents.services import (
    WindowSpec,
    incident_create,
    incident_post_update,
    shard_impact_add,
    shard_impact_change_level,
    shard_impact_close,
)

from . import rollup
from .detection import Change, Detector, Sample, percentile
from .models import Granularity, ProbeRegion, ProbeRollup, ProbeSample, ShardState

logger = logging.getLogger(__name__)

# How far back detection looks for samples it has not seen (late regions).
DETECTION_GRACE = timedelta(minutes=2)
DETECTION_LOOKBACK = timedelta(minutes=10)


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


def samples_store(*, region: ProbeRegion, samples: Sequence[SampleIn]) -> int:
    """Store a batch in bulk, idempotently: a sample already stored (same shard,
    region and start time) is skipped, so re-delivery stores nothing twice.
    Returns the size of the batch."""
    rows = [
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
    ]
    with transaction.atomic():
        ProbeSample.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return len(rows)


def region_round(*, region_slug: str, scheduled_at: datetime | None = None) -> int:
    """One probe round from one region: probe its shards concurrently, store the
    samples, run detection on them. A failed probe is stored, never retried."""
    from .checks import ProbeTarget, probe_round

    started = timezone.now()
    region = ProbeRegion.objects.get(slug=region_slug)
    rows = list(
        Shard.objects.filter(active=True)
        .exclude(probe_url="")
        .values_list("slug", "pk", "probe_url")
    )
    shards = {slug: pk for slug, pk, _ in rows}
    targets = [ProbeTarget(shard=slug, url=url) for slug, _, url in rows]
    results = probe_round(targets, region=region.slug, timeout_s=settings.PROBE_TIMEOUT_SECONDS)
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
    detection_run(shard_ids=shards.values())
    finished = timezone.now()
    region.last_round_at = started
    region.last_round_seconds = (finished - started).total_seconds()
    region.last_queue_lag_seconds = (
        max(0.0, (started - scheduled_at).total_seconds()) if scheduled_at else None
    )
    region.save(update_fields=["last_round_at", "last_round_seconds", "last_queue_lag_seconds"])
    return len(results)


# --- detection --------------------------------------------------------------------------


def detection_run(*, shard_ids: Iterable[int], now: datetime | None = None) -> list[Change]:
    """Feed each shard's new samples to its detector and act on the verdicts:
    open, extend, re-level or resolve incidents. Idempotent over the same samples."""
    now = now or timezone.now()
    ids = sorted(set(shard_ids))
    applied: list[Change] = []
    with transaction.atomic():
        for shard_id in ids:
            ShardState.objects.get_or_create(shard_id=shard_id)
        states = {
            state.shard_id: state
            for state in ShardState.objects.select_for_update(of=("self",))
            .filter(shard_id__in=ids)
            .select_related("shard__component", "incident")
            .order_by("shard_id")
        }
        since = (
            min(
                (
                    s.last_sample_at - DETECTION_GRACE
                    if s.last_sample_at
                    else now - DETECTION_LOOKBACK
                )
                for s in states.values()
            )
            if states
            else now
        )
        by_shard: dict[int, list[Sample]] = defaultdict(list)
        for shard_id, region, at, ok, latency in (
            ProbeSample.objects.filter(shard_id__in=ids, started_at__gt=since)
            .values_list("shard_id", "region__slug", "started_at", "ok", "latency_ms")
            .order_by("started_at")
        ):
            by_shard[shard_id].append(Sample(region, at, ok, latency))
        for shard_id, state in states.items():
            samples = by_shard.get(shard_id, [])
            if not samples:
                continue
            detector = Detector.from_json(state.regions)
            changes = detector.feed(
                samples, threshold_ms=state.shard.effective_latency_threshold_ms
            )
            for change in changes:
                _apply(state, change, now=now)
            applied.extend(changes)
            _save_state(state, detector, last_sample_at=samples[-1].at, now=now)
    return applied


def _save_state(
    state: ShardState, detector: Detector, *, last_sample_at: datetime, now: datetime
) -> None:
    level = detector.level
    new_state = {"outage": "down", "degraded": "degraded", None: "up"}[level]
    if new_state != state.state:
        state.state = new_state
        state.since = detector.down_since if level == "outage" else now
    recent = [ms for _, ms in detector.latencies]
    state.p95_ms = percentile(recent, 95) if recent else None
    state.regions = detector.to_json()
    state.last_sample_at = max(filter(None, [state.last_sample_at, last_sample_at]))
    state.updated_at = now
    state.save()


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
                window.level = change.level
                window.save(update_fields=["level"])
            else:
                shard_impact_change_level(impact=window, level=change.level, at=change.at)
        return
    target = incident or _covering_maintenance(shard, change.at) or _open_probe_incident(shard)
    if target is not None:
        shard_impact_add(incident=target, shard=shard, level=change.level, starts_at=change.at)
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
        at=now,
    )
    logger.warning("probe detection opened incident %s on %s", state.incident.pk, shard.slug)


def _close(window: ShardImpact, at: datetime) -> None:
    if at <= window.starts_at:
        at = window.starts_at + timedelta(seconds=1)
    shard_impact_close(impact=window, at=at)


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
        incident_post_update(
            incident=incident,
            status="resolved",
            body=(
                "Our probes from every region have answered normally again since "
                f"{now:%H:%M} UTC. Control-plane actions (logging in, approving devices, "
                "changing ACLs) work again."
            ),
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
