"""Thin Celery tasks of the shared plumbing."""

import logging

from celery import shared_task
from django.db import DatabaseError

logger = logging.getLogger(__name__)


@shared_task(
    name="plumbing.replay_lost_forgets",
    acks_late=True,
    time_limit=60,
    soft_time_limit=50,
    ignore_result=True,
)
def replay_lost_forgets() -> int:
    """Forget the cached copies whose forget was lost while the cache was down (beat,
    every minute): for the web processes that did not see the outage themselves.
    Returns how many keys were forgotten."""
    from .cache import cache_failed
    from .cache import replay_lost_forgets as replay

    try:
        return replay()
    except DatabaseError:
        raise
    except Exception as error:
        # The cache is still down: the rows stay, the next run replays them.
        cache_failed(logger, "lost forgets kept for the next run: the cache failed", error)
        return 0
