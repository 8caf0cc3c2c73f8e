"""Publishing a task from a web request: on a broker connection this thread reuses,
with short timeouts and no retries (the app's own connections would wait as long as
the workers are prepared to)."""

import logging
import os
import threading
from typing import Any

from celery import Task
from kombu import Producer

logger = logging.getLogger(__name__)

# make bench-report, submissions/s: 465-493 with it, 184-198 with a connection per report.
_per_thread = threading.local()


def publish(task: Task[Any, Any], args: tuple[Any, ...], *, timeout: float) -> None:
    """Publish ``task(*args)``, giving up after about ``timeout`` seconds (raising
    what the broker raised). After any error the connection is dropped and the next
    publish connects afresh; also in a forked child and when the broker settings change."""
    try:
        task.apply_async(args, producer=thread_producer(task, timeout=timeout), retry=False)
    except Exception:
        forget_thread_producer()
        raise


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
