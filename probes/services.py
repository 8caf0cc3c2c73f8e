"""Everything the probes write: samples, rollups, detection's verdicts and the
incidents they open and close."""

import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Q
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from incidents import levels
from incidents.audit import PROBE
from incidents.models import (
    AuditEntry,
    Component,
    ComponentStatus,
    Incident,
    IncidentComponent,
    MonitoringGap,
    Shard,
    ShardImpact,
)
from incidents.services import (
    WindowSpec,
    incident_create,
    incident_edit,
    incident_post_update,
    incident_resolve,
    shard_impact_add,
    shard_impact_change_level,
    shard_impact_close,
    shard_impact_update,
)
from incidents.uptime import component_status_from_shards

from . import rollup
from .detection import Change, Detector, Sample, percentile, recovery_window
from .models import Granularity, ProbeRegion, ProbeRollup, ProbeSample, ShardState

logger = logging.getLogger(__name__)

# How far back detection looks for samples it has not seen (late regions).
DETECTION_GRACE = timedelta(minutes=2)
DETECTION_LOOKBACK = timedelta(minutes=10)
# Samples older than the look-back when they are stored are marked on their region
# and read once (``_late_samples_mark``), at most this far back: detection holds a
# run's samples in memory, and an hour of a whole region is its bound.
DETECTION_LATE_HORIZON = timedelta(hours=1)
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


def samples_store(
    *, region: ProbeRegion, samples: Sequence[SampleIn], now: datetime | None = None
) -> int:
    """Store a batch in one statement, idempotently: a sample already stored (same
    shard, region and start time) is skipped, so re-delivery stores nothing twice.
    Detection looks at the batch soon after it commits (``probes.detect``), from its
    first sample even when that is older than its usual look-back. Returns the size
    of the batch."""
    if not samples:
        return 0
    # Inside a caller's transaction (a round) no savepoint: one statement, all or nothing.
    with transaction.atomic(savepoint=False):
        _late_samples_mark(region, min(s.started_at for s in samples), now or timezone.now())
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


def _late_samples_mark(region: ProbeRegion, first: datetime, now: datetime) -> None:
    """A batch whose first sample is older than detection's look-back (less its grace,
    so a batch at the edge is not missed between two runs) is marked on its region:
    the next run reads from there. In the batch's transaction, so the mark and the
    samples commit together."""
    if first > now - DETECTION_LOOKBACK + DETECTION_GRACE:
        return
    ProbeRegion.objects.filter(pk=region.pk).update(
        late_samples_from=Least(Coalesce("late_samples_from", first), first),
        late_batches_total=F("late_batches_total") + 1,
    )


def _late_samples_since(now: datetime) -> tuple[datetime | None, dict[int, int]]:
    """The earliest late mark (bounded by DETECTION_LATE_HORIZON), and each marked
    region's count, to clear the marks this run has read (``_late_samples_clear``)."""
    marked = list(
        ProbeRegion.objects.filter(late_samples_from__isnull=False).values_list(
            "pk", "late_samples_from", "late_batches_total"
        )
    )
    if not marked:
        return None, {}
    earliest = min(at for _, at, _ in marked if at is not None)  # all are: the filter
    # A little before it (detection reads after ``since``): the other regions' view then.
    since = max(earliest - DETECTION_GRACE, now - DETECTION_LATE_HORIZON)
    return since, {pk: n for pk, _, n in marked}


def _late_samples_clear(seen: dict[int, int]) -> None:
    """Clear the marks this run read, unless another late batch came meanwhile (its
    count moved): then the next run reads from the mark again."""
    for pk, count in seen.items():
        ProbeRegion.objects.filter(pk=pk, late_batches_total=count).update(late_samples_from=None)


@dataclass(frozen=True)
class AgentHealth:
    """What a region's probe agent says of itself with a batch."""

    buffer_depth: int  # samples still on its disk, waiting to be sent
    dropped_total: int  # samples it dropped since its buffer began (it was full)
    sent_at: datetime  # its clock when it sent the batch


def agent_batch_record(
    *, region: ProbeRegion, agent: AgentHealth | None, refused_future: int, at: datetime
) -> None:
    """Note a batch from the region's agent for /metrics and the admin: when it came,
    the agent's buffer and clock skew, and the samples refused for being in the future."""
    changes: dict[str, Any] = {
        "agent_last_batch_at": at,
        "future_refused_total": F("future_refused_total") + refused_future,
    }
    if agent is not None:
        changes["agent_buffer_depth"] = agent.buffer_depth
        changes["agent_dropped_total"] = agent.dropped_total
        changes["agent_clock_skew_seconds"] = (agent.sent_at - at).total_seconds()
    ProbeRegion.objects.filter(pk=region.pk).update(**changes)


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
        late_since, late_seen = _late_samples_since(now) if ids is None else (None, {})
        if late_since is not None:
            since = min(since, late_since)
        regions = dict(ProbeRegion.objects.values_list("pk", "slug"))
        recent = ProbeSample.objects.filter(started_at__gt=since)
        if ids is not None:
            recent = recent.filter(shard_id__in=ids)
        by_shard: dict[int, list[Sample]] = defaultdict(list)
        for shard_id, region_id, at, ok, latency in recent.values_list(
            "shard_id", "region_id", "started_at", "ok", "latency_ms"
        ).order_by("started_at"):
            by_shard[shard_id].append(Sample(regions[region_id], at, ok, latency))
        _late_samples_clear(late_seen)
        if not by_shard:
            return []
        _end_gaps(by_shard)
        states = _states_for(sorted(by_shard), now=now)
        default_threshold = settings.SHARD_LATENCY_THRESHOLD_MS
        fast_window = recovery_window(timedelta(seconds=settings.PROBE_INTERVAL_SECONDS))
        changed: list[ShardState] = []
        changed_json: list[str] = []
        for shard_id, state in states.items():
            samples = by_shard[shard_id]
            threshold: int | None = getattr(state, "threshold", None)  # annotated in _states_for
            try:
                changes, regions_json = _detect_shard(
                    state,
                    samples,
                    threshold_ms=threshold or default_threshold,
                    fast_window=fast_window,
                    now=now,
                )
            except Exception:
                # One shard's bad data (a row no check let through) must not stop
                # detection for every other shard, run after run.
                logger.exception(
                    "detection skipped shard %s: its samples could not be judged", shard_id
                )
                continue
            applied.extend(changes)
            if regions_json is not None:
                changed.append(state)
                changed_json.append(regions_json)
        _states_save(changed, regions_json=changed_json)
    return applied


def _detect_shard(
    state: ShardState,
    samples: Sequence[Sample],
    *,
    threshold_ms: float,
    fast_window: timedelta,
    now: datetime,
) -> tuple[list[Change], str | None]:
    """Feed one shard's new samples to its detector and act on the verdicts; returns
    them, and ``state.regions`` as JSON if ``state`` changed (None if not), to be saved
    with the others. Its writes are in a savepoint, and the JSON is made inside it: a
    failure undoes this shard's incidents, never another's."""
    detector = Detector.from_json(state.regions)
    changes = detector.feed(samples, threshold_ms=threshold_ms, fast_window=fast_window)
    with transaction.atomic() if changes else contextlib.nullcontext():
        for change in changes:
            _apply(state, change, now=now)
        dirty = _update_state(state, detector, last_sample_at=samples[-1].at, now=now)
        # Raises here, not in the one statement that saves every shard's state.
        return changes, _regions_json(state) if dirty or changes else None


def _regions_json(state: ShardState) -> str:
    """``state.regions`` as JSON, which has no NaN or Infinity (PostgreSQL's jsonb
    refuses them, SQLite's JSON check too)."""
    return json.dumps(state.regions, allow_nan=False)


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


def _states_save(states: list[ShardState], *, regions_json: list[str] | None = None) -> None:
    """Save detection's states in one statement; ``regions_json``, if given, is
    ``_regions_json`` of each, already made."""
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
        regions_json if regions_json is not None else [_regions_json(s) for s in states],
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
            worse = levels.rank(change.level) > levels.rank(window.level)
            if change.at <= window.starts_at:
                shard_impact_update(impact=window, level=change.level, by=PROBE)
            else:
                shard_impact_change_level(impact=window, level=change.level, at=change.at, by=PROBE)
            if worse and incident is not None:
                _escalate(incident, shard, change, now=now)
        return
    target = incident or _covering_maintenance(shard, change.at) or _open_probe_incident(shard)
    if target is not None:
        shard_impact_add(
            incident=target, shard=shard, level=change.level, starts_at=change.at, by=PROBE
        )
        state.incident = target
        _escalate(target, shard, change, now=now)
        return
    state.incident = incident_create(
        title=_title(shard, change.level),
        body=_opening_body(shard, change),
        started_at=change.at,
        detected_at=now,
        impact=_impact(change.level),
        components={shard.component: _component_status(shard.component, {shard.pk: change.level})},
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


def _resolve_if_done(incident: Incident | None, *, now: datetime, body: str = "") -> bool:
    """Resolve an incident detection opened once none of its windows is open; True
    if it did."""
    if incident is None or incident.kind != Incident.Kind.INCIDENT:
        return False  # a maintenance ends on the operator's word, not the probes'
    if incident.source != Incident.Source.PROBE:
        return False
    if incident.shard_impacts.filter(ends_at__isnull=True).exists():
        return False
    try:
        incident_resolve(
            incident=incident,
            body=body
            or (
                "Our probes from every region have answered normally again since "
                f"{now:%H:%M} UTC. Control-plane actions (logging in, approving devices, "
                "changing ACLs) work again."
            ),
            by=PROBE,
            at=now,
        )
    except ValidationError as error:
        logger.error("could not resolve incident %s: %s", incident.pk, error)
        return False
    return True


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


def _impact(level: str) -> str:
    """An incident's impact for a level of detection: Statuspage's major for an outage."""
    return "major" if level == "outage" else "minor"


def _component_status(component: Component, shard_levels: dict[int, str]) -> str:
    """The status a component shows with these of its shards hit at these levels and
    its other active shards fine: the page's rule (``component_status_from_shards``)."""
    active = Shard.objects.filter(component=component, active=True).exclude(
        pk__in=list(shard_levels)
    )
    fine: list[str | None] = [None] * active.count()
    return component_status_from_shards([*shard_levels.values(), *fine])


def _operator_edits(incident: Incident) -> set[str]:
    """What a person (directly or with a token; not the probes, triage or the system)
    has set on ``incident``, by its audit trail: "title", "impact", and
    "component:<slug>" for a component's status. Detection leaves those alone."""
    edited: set[str] = set()
    entries = AuditEntry.objects.filter(incident=incident, system="").values_list(
        "action", "changes"
    )
    for action, changes in entries:
        if not isinstance(changes, dict):
            continue
        if action in ("incident.create", "incident.edit"):
            edited.update(name for name in ("title", "impact") if name in changes)
        if action == "components.edit":
            edited.update(f"component:{slug}" for slug in changes)
        elif isinstance(changes.get("components"), dict):
            edited.update(f"component:{slug}" for slug in changes["components"])
    return edited


def _escalate(incident: Incident, shard: Shard, change: Change, *, now: datetime) -> None:
    """A worse window joined an incident detection opened (or one of its windows got
    worse): its impact, the shard's component status and its title follow, with a
    public update saying what changed. Never the other way while it is open (an
    outage that turns into slowness stays a major incident), and never a field a
    person has set on it."""
    if incident.source != Incident.Source.PROBE or incident.kind != Incident.Kind.INCIDENT:
        return
    if change.level is None:
        return
    incident.refresh_from_db()
    if incident.resolved_at is not None:
        return
    edited = _operator_edits(incident)
    worst = levels.worst(incident.shard_impacts.values_list("level", flat=True)) or change.level
    edit: dict[str, str] = {}
    said: list[str] = []
    impact = _impact(worst)
    if "impact" not in edited and levels.impact_rank(impact) > levels.impact_rank(incident.impact):
        edit["impact"] = impact
        said.append(f"impact raised from {incident.impact} to {impact}")
    # Only detection's own title for a lesser level is replaced.
    titles = {_title(shard, level): level for level in ("degraded", "outage")}
    titled = titles.get(incident.title)
    if "title" not in edited and titled and levels.rank(titled) < levels.rank(worst):
        edit["title"] = _title(shard, worst)
    component = shard.component
    statuses: dict[Component, str] = {}
    if f"component:{component.slug}" not in edited:
        hit: dict[int, str] = {}
        for shard_id, level in incident.shard_impacts.filter(
            ends_at__isnull=True, shard__component=component
        ).values_list("shard_id", "level"):
            hit[shard_id] = levels.worst([level, hit.get(shard_id)]) or level
        status = _component_status(component, hit)
        link = IncidentComponent.objects.filter(incident=incident, component=component).first()
        was = link.status if link else ComponentStatus.OPERATIONAL
        if levels.status_rank(status) > levels.status_rank(was):
            statuses[component] = status
            said.append(
                f"{component.name} from {ComponentStatus(was).label.lower()} "
                f"to {ComponentStatus(status).label.lower()}"
            )
    if not edit and not statuses:
        return
    if edit:
        incident_edit(incident=incident, changes=edit, by=PROBE, at=now)
    incident_post_update(
        incident=incident,
        status=incident.status,
        body=_escalation_body(shard, change, said),
        components=statuses,
        by=PROBE,
        at=now,
    )
    logger.warning("probe detection escalated incident %s on %s", incident.pk, shard.slug)


def _escalation_body(shard: Shard, change: Change, said: list[str]) -> str:
    since = f"{change.at:%H:%M} UTC"
    raised = f"; {', '.join(said)}" if said else ""
    if change.level == "outage":
        return (
            f"Escalated: {shard.public_name} now fails to answer our probes since {since}"
            f"{raised}. For tailnets on it, logging in, approving devices, changing ACLs and "
            "adding or removing nodes may fail. **Existing connections keep working.**"
        )
    return (
        f"Escalated: {shard.public_name} now answers slowly since {since}{raised}. "
        "Control-plane actions may be slow for tailnets on it; existing connections are "
        "not affected."
    )


# --- silence: no region reports on a shard ------------------------------------------------


def silence_limit() -> timedelta:
    return timedelta(seconds=settings.PROBE_SILENCE_ROUNDS * settings.PROBE_INTERVAL_SECONDS)


def silence_check(*, now: datetime | None = None) -> list[int]:
    """Shards no region has reported on for PROBE_SILENCE_ROUNDS rounds: detection
    knows nothing about them any more, so it forgets its runs in progress (an outage
    after reports come back is established again, from its own first failure). If it
    held a window open, the window ends at the last failing (or slow) sample, not
    "now": the monitoring's gap is not the customers' downtime. The incident says so,
    and resolves if nothing else of it is open. Windows people opened are theirs.

    Run periodically (``probes.check_silence``): detection itself only runs when
    samples arrive. Returns the shards it found silent."""
    now = now or timezone.now()
    limit = now - silence_limit()
    with transaction.atomic():
        _detection_lock()
        candidates = list(
            ShardState.objects.filter(last_sample_at__lt=limit)
            .filter(~Q(state=ShardState.State.UNKNOWN) | Q(incident__isnull=False))
            .select_related("shard__component", "incident")
            .order_by("shard_id")
        )
        if not candidates:
            return []
        # Samples stored but not yet seen by detection are reports all the same.
        reported = set(
            ProbeSample.objects.filter(
                shard_id__in=[state.shard_id for state in candidates], started_at__gte=limit
            )
            .values_list("shard_id", flat=True)
            .distinct()
        )
        silent = [state for state in candidates if state.shard_id not in reported]
        for state in silent:
            _lose_contact(state, now=now)
        _states_save(silent)
    return [state.shard_id for state in silent]


def _lose_contact(state: ShardState, *, now: datetime) -> None:
    last_seen = state.last_sample_at
    assert last_seen is not None  # for the type checker: the query above
    window = _detection_window(state)
    if window is not None:
        end = _last_bad_sample(window, state) or last_seen
        _close(window, end)
        incident = window.incident
        if incident.kind == Incident.Kind.INCIDENT and incident.source == Incident.Source.PROBE:
            _report_lost_contact(incident, window, last_seen=last_seen, end=end, now=now)
        logger.warning(
            "probes stopped reporting on %s; its %s window ends at the last bad sample",
            state.shard.slug,
            window.level,
        )
    # From the last report on, nobody measured the shard: no data, not "up".
    MonitoringGap.objects.get_or_create(
        shard_id=state.shard_id, ends_at=None, defaults={"starts_at": last_seen}
    )
    detector = Detector.from_json(state.regions)
    detector.lost_contact(last_seen)
    state.regions = detector.to_json()
    state.state = ShardState.State.UNKNOWN
    state.since = now
    state.p95_ms = None
    state.incident = None
    state.updated_at = now


def _end_gaps(by_shard: Mapping[int, Sequence[Sample]]) -> None:
    """Reports are back: a silent shard's monitoring gap ends at its first new sample."""
    for gap in MonitoringGap.objects.filter(shard_id__in=list(by_shard), ends_at__isnull=True):
        first = next((s.at for s in by_shard[gap.shard_id] if s.at > gap.starts_at), None)
        if first is not None:
            gap.ends_at = first
            gap.save(update_fields=["ends_at"])


def _detection_window(state: ShardState) -> ShardImpact | None:
    """The window detection holds open on the shard (the one it would extend, re-level
    or close), unless a person added it."""
    if state.incident is None or state.incident.resolved_at is not None:
        return None
    window = (
        ShardImpact.objects.filter(incident=state.incident, shard=state.shard, ends_at__isnull=True)
        .select_related("incident")
        .first()
    )
    if window is None:
        return None
    added_by_person = AuditEntry.objects.filter(
        incident=state.incident, action="impact.add", system="", changes__impact_id=window.pk
    ).exists()
    return None if added_by_person else window


def _last_bad_sample(window: ShardImpact, state: ShardState) -> datetime | None:
    """The last sample that held the window open: a failed probe for an outage, a slow
    answer for slowness."""
    samples = ProbeSample.objects.filter(shard_id=state.shard_id, started_at__gte=window.starts_at)
    if window.level == "degraded":
        threshold = state.shard.effective_latency_threshold_ms
        samples = samples.filter(ok=True, latency_ms__gt=threshold)
    else:
        samples = samples.filter(ok=False)
    last: datetime | None = samples.aggregate(last=Max("started_at"))["last"]
    return last


def _report_lost_contact(
    incident: Incident, window: ShardImpact, *, last_seen: datetime, end: datetime, now: datetime
) -> None:
    shard = window.shard
    bad = "slow answer" if window.level == "degraded" else "failed probe"
    lost = (
        f"Our probes stopped reporting on {shard.public_name} at {last_seen:%H:%M} UTC, so we "
        f"cannot tell how it is doing now. We count no downtime after its last {bad}, at "
        f"{end:%H:%M} UTC."
    )
    if _resolve_if_done(
        incident,
        now=now,
        body=f"{lost} We are closing this incident; if our probes find the problem again "
        "once they report, we will open a new one.",
    ):
        return
    incident.refresh_from_db()
    if incident.resolved_at is None:
        incident_post_update(incident=incident, status=incident.status, body=lost, by=PROBE, at=now)


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
