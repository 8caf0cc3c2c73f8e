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

A view that works on the whole fleet on purpose (the fleet feed's batches and map)
declares its own bound, ``database_deadline_seconds`` on the view (or its class): the
middleware then gives the request that long, statement timeout included.

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
        connection = connections["default"]
        request._database_deadline = watchdog.arm(connection, seconds)  # type: ignore[attr-defined]
        try:
            return self.get_response(request)
        finally:
            watchdog.disarm(request._database_deadline)  # type: ignore[attr-defined]
            if getattr(request, "_database_deadline_extended", False):
                _set_statement_timeout(connection, seconds, only_if_connected=True)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> None:
        seconds = getattr(view, "database_deadline_seconds", None) or getattr(
            getattr(view, "cls", None), "database_deadline_seconds", None
        )
        if not seconds or not hasattr(request, "_database_deadline"):
            return
        connection = connections["default"]
        watchdog.disarm(request._database_deadline)
        request._database_deadline = watchdog.arm(connection, seconds)
        request._database_deadline_extended = True  # type: ignore[attr-defined]
        _set_statement_timeout(connection, seconds)


def _set_statement_timeout(
    connection: BaseDatabaseWrapper, seconds: float, *, only_if_connected: bool = False
) -> None:
    """This web connection's statement timeout, if web connections have one."""
    if connection.vendor != "postgresql" or not _bounded:
        return
    if only_if_connected and (connection.connection is None or not connection.is_usable()):
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {int(seconds * 1000)}")


_bounded = False  # whether this process's connections get the web's statement timeout


def _statement_timeout(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if settings.WEB_DATABASE_TIMEOUT_SECONDS:
        _set_statement_timeout(connection, settings.WEB_DATABASE_TIMEOUT_SECONDS)


def bound_web_connections() -> None:
    """Give this process's new database connections the web's statement timeout."""
    global _bounded
    _bounded = True
    connection_created.connect(_statement_timeout, dispatch_uid="plumbing.deadline")


def unbound_web_connections() -> None:
    global _bounded
    _bounded = False
    connection_created.disconnect(dispatch_uid="plumbing.deadline")
