"""The snapshot's figures on /metrics: how old the copy this process serves is, and
how far behind published data it is."""

import time
from collections.abc import Iterator

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import snapshot


class SnapshotCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        served = snapshot.store()
        served.refresh()
        if served.built_at is None:
            return
        yield GaugeMetricFamily(
            "statuspage_snapshot_age_seconds",
            "Seconds since the public snapshot this process serves was built.",
            value=max(0.0, time.time() - served.built_at),
        )
        try:
            behind = max(0, snapshot.published_version() - served.version)
        except DatabaseError:
            return
        yield GaugeMetricFamily(
            "statuspage_snapshot_changes_behind",
            "Changes to published data not yet in the snapshot this process serves.",
            value=behind,
        )
