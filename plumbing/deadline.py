"""A web request's database work has a deadline; past it the request gets a 503.

A status page is visited most when things break. If PostgreSQL hangs (a partition,
a stuck proxy, a server out of memory), a query waits for an answer that never
comes, and every web thread that touches the database ends up waiting with it.
Three bounds, from the outside in:

- **Connecting**: ``connect_timeout`` in the database settings (every process).
- **A statement the server runs too long**: ``statement_timeout``, set on the web
  processes' connections (``bound_web_connections``, called by ``statuspage.wsgi``;
  Celery workers and management commands run long statements on purpose).
- **A server or network that does not answer at all**: no server-side timeout can
  help, and psycopg has no client-side one. ``DeadlineMiddleware`` registers each
  request's connection with a watchdog thread; when the request's
  ``WEB_DATABASE_TIMEOUT_SECONDS`` are over and it is still using the database, the
  watchdog shuts the connection's socket down. The waiting call then fails at once
  with an OperationalError, Django drops the connection at the end of the request,
  and the next request connects afresh.

The 503 itself is ``statuspage.views.server_error``'s: a database that cannot be
reached is "temporarily unavailable", not a bug.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponseBase

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.1


class Watchdog:
    """One thread per process that cuts off database connections past their deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, BaseDatabaseWrapper]] = {}
        self._next_id = 0
        self._pid = 0

    def arm(self, connection: BaseDatabaseWrapper, seconds: float) -> int:
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (or after a fork)
                self._pid = os.getpid()
                self._armed.clear()
                threading.Thread(target=self._watch, name="db-deadline", daemon=True).start()
            self._next_id += 1
            self._armed[self._next_id] = (time.monotonic() + seconds, connection)
            return self._next_id

    def disarm(self, token: int) -> None:
        with self._lock:
            self._armed.pop(token, None)

    def _watch(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            time.sleep(TICK_SECONDS)
            now = time.monotonic()
            with self._lock:
                late = [token for token, (due, _) in self._armed.items() if due <= now]
                expired = [self._armed.pop(token)[1] for token in late]
            for connection in expired:
                cut_off(connection)


def cut_off(connection: BaseDatabaseWrapper) -> None:
    """Shut down the socket under ``connection`` (PostgreSQL), so that a call waiting
    on it fails now. The socket is shared, so shutting down a duplicate of its file
    descriptor reaches the one psycopg waits on."""
    raw = connection.connection
    if raw is None or connection.vendor != "postgresql":
        return
    try:
        fd = raw.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except Exception as error:  # closed meanwhile: nothing is waiting on it
        logger.debug("deadline: nothing to cut off (%s)", error)
        return
    logger.warning(
        "database call of a web request cut off after %s s (no answer)",
        settings.WEB_DATABASE_TIMEOUT_SECONDS,
    )


watchdog = Watchdog()


class DeadlineMiddleware:
    """Arms the watchdog for the request's database work (see the module's text)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        seconds = settings.WEB_DATABASE_TIMEOUT_SECONDS
        if not seconds:
            return self.get_response(request)
        token = watchdog.arm(connections["default"], seconds)
        try:
            return self.get_response(request)
        finally:
            watchdog.disarm(token)


def _statement_timeout(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if connection.vendor == "postgresql" and settings.WEB_DATABASE_TIMEOUT_SECONDS:
        milliseconds = int(settings.WEB_DATABASE_TIMEOUT_SECONDS * 1000)
        with connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {milliseconds}")


def bound_web_connections() -> None:
    """Give this process's new database connections the web's statement timeout."""
    connection_created.connect(_statement_timeout, dispatch_uid="plumbing.deadline")
