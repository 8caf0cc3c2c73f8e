"""The collectors behind /metrics. The probes' view serves them; an app that has
figures of its own adds a collector here from its ``AppConfig.ready`` (the feed's
health, say), so the view never imports the apps above it."""

from collections.abc import Callable

from prometheus_client.registry import Collector

COLLECTORS: list[Callable[[], Collector]] = []


def collector_add(factory: Callable[[], Collector]) -> None:
    """Serve ``factory()``'s metrics on /metrics too (once, however often called)."""
    if factory not in COLLECTORS:
        COLLECTORS.append(factory)
