"""Thin Celery tasks of the public site."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(
    name="public.rebuild_snapshot",
    acks_late=True,
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def rebuild_snapshot(requested_at: float | None = None) -> int:
    """Re-render the public pages' snapshot (beat every minute, and after commit of a
    published change). Returns how many pages changed."""
    from .snapshot import SnapshotError, snapshot_rebuild

    try:
        result = snapshot_rebuild(requested_at=requested_at)
    except SnapshotError as error:
        # Visitors keep the last snapshot; beat tries again within a minute.
        logger.warning("snapshot not rebuilt: %s", error)
        return 0
    if result.failed:
        logger.error("snapshot: these pages failed to render: %s", ", ".join(result.failed))
    return len(result.changed)
