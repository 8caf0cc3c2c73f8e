"""Publishing tasks from a web request or after a commit: the one door.

A status page is used most when things break, the broker included. So a publish
here never waits long and never waits twice:

- **Short timeouts, no retries**, on a broker connection each thread reuses (the
  app's own connections would wait as long as the workers are prepared to).
- **A breaker**: after a publish fails, the broker is left alone for
  ``BROKER_BREAKER_SECONDS``; publishes meanwhile give up at once. What they would
  have queued is caught up by the periodic sweeps (snapshot rebuild, report triage,
  recompute refresh, notification delivery, detection on the next round), so a
  hung broker costs one request one timeout per period, not every request.

Callers get True (queued) or False (left to the sweeps); they never see an error.
"""

import logging
import os
import threading
import time
from typing import Any

from celery import Task
from django.conf import settings
from kombu import Producer

logger = logging.getLogger(__name__)

# make bench-report, submissions/s: 465-493 with it, 184-198 with a connection per report.
_per_thread = threading.local()


_down_until = 0.0  # time.monotonic() before which this process does not try the broker


def publish(
    task: Task[Any, Any],
    args: tuple[Any, ...] = (),
    *,
    what: str,
    countdown: float | None = None,
    timeout: float | None = None,
) -> bool:
    """Queue ``task(*args)`` (``what`` names it in the log), giving up after about
    ``timeout`` seconds (default ``BROKER_PUBLISH_TIMEOUT_SECONDS``). False if it was
    not queued: the broker failed now, or less than ``BROKER_BREAKER_SECONDS`` ago.
    Eager (tests, one-off tools): run inline, as Celery does."""
    global _down_until
    options: dict[str, Any] = {} if countdown is None else {"countdown": countdown}
    if task.app.conf.task_always_eager:
        task.apply_async(args, **options)
        return True
    if time.monotonic() < _down_until:
        logger.info("not queueing %s: the broker failed moments ago; the sweep will", what)
        return False
    wait = settings.BROKER_PUBLISH_TIMEOUT_SECONDS if timeout is None else timeout
    try:
        producer = thread_producer(task, timeout=wait)
        task.apply_async(args, producer=producer, retry=False, **options)
    except Exception as error:  # whatever the broker did, the change is committed
        forget_thread_producer()
        _down_until = time.monotonic() + settings.BROKER_BREAKER_SECONDS
        logger.warning(
            "could not queue %s (%s: %s); the broker is left alone for %d s, the sweep will",
            what,
            error.__class__.__name__,
            error,
            settings.BROKER_BREAKER_SECONDS,
        )
        return False
    return True


def reset() -> None:
    """Forget a failure: the next publish tries the broker (tests)."""
    global _down_until
    _down_until = 0.0


def thread_producer(task: Task[Any, Any], *, timeout: float) -> Producer:
    conf = task.app.conf
    key = (os.getpid(), conf.broker_write_url, repr(conf.broker_transport_options), timeout)
    if getattr(_per_thread, "key", None) != key:
        forget_thread_producer()
        connection = task.app.connection_for_write(
            connect_timeout=timeout,
            transport_options={
                "socket_connect_timeout": timeout,
                "socket_timeout": timeout,
                "max_retries": 0,
            },
        )
        _per_thread.connection, _per_thread.key = connection, key
        _per_thread.producer = connection.Producer()
    producer: Producer = _per_thread.producer
    return producer


def forget_thread_producer() -> None:
    connection, key = getattr(_per_thread, "connection", None), getattr(_per_thread, "key", None)
    _per_thread.connection = _per_thread.producer = _per_thread.key = None
    # A forked child only drops its copy: closing it would shut the parent's socket.
    if connection is not None and key is not None and key[0] == os.getpid():
        try:
            connection.release()
        except Exception:  # already broken: nothing to close cleanly
            logger.debug("closing the publisher's connection failed", exc_info=True)
