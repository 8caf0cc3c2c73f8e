"""The fault suite's own TCP proxy: PostgreSQL and Redis as each process sees them.

Stdlib only, threads, all in the pytest process. One *backend* per server we put
faults on (``pg``, ``redis`` the cache, ``broker`` the Celery broker: the same Redis
server, a fault of its own), one *listener* per (process, backend) on a port of its
own, so connection attempts are counted per process:

    proxy = Proxy()
    proxy.backend("pg", "127.0.0.1", 5432)
    port = proxy.listen("web", "pg")          # web's DATABASE_URL points here
    proxy.set_mode("pg", "hang")              # or "refuse", "pass"
    proxy.counts()[("web", "pg")]             # connections accepted from web so far

Modes, per backend:

- ``pass``: every accepted connection is relayed to the server.
- ``refuse``: connections are accepted (to be counted) and reset at once; the
  connections open when the mode is set are reset too.
- ``hang``: connections are accepted and whatever the client sends is read and
  discarded; nothing is ever answered. Connections open when the mode is set stop
  relaying in both directions (a black hole, not a close).

Leaving ``hang`` resets every connection it held: the bytes it swallowed left them
in the middle of a request, so the clients must connect again, as after a real
outage. Nothing here ever talks to anything but the backends it was given.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

MODES = ("pass", "refuse", "hang")
POLL_SECONDS = 0.2
CONNECT_TIMEOUT_SECONDS = 5.0
SEND_TIMEOUT_SECONDS = 10.0
CHUNK = 65536


def _reset(sock: socket.socket | None) -> None:
    """Close with a TCP reset (SO_LINGER 0): the peer sees its connection refused or
    reset, not a polite end of stream."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class Connection:
    """One accepted client connection, with its server side when relayed. One thread
    polls both sockets; ``hung`` makes it swallow what either side sends."""

    def __init__(
        self, backend: Backend, client: socket.socket, upstream: socket.socket | None
    ) -> None:
        self.backend = backend
        self.client = client
        self.upstream = upstream
        self.hung = upstream is None
        self._stop = threading.Event()
        self._reset = False
        self.thread = threading.Thread(target=self._run, name="faults-proxy-conn", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def hang(self) -> None:
        self.hung = True

    def reset(self) -> None:
        self._reset = True
        self._stop.set()

    def _run(self) -> None:
        poller = select.poll()
        sockets = {self.client.fileno(): self.client}
        if self.upstream is not None:
            sockets[self.upstream.fileno()] = self.upstream
        for fd in sockets:
            poller.register(fd, select.POLLIN | select.POLLPRI)
        graceful = False
        try:
            while not self._stop.is_set():
                try:
                    events = poller.poll(POLL_SECONDS * 1000)
                except InterruptedError:
                    continue
                for fd, _ in events:
                    sock = sockets.get(fd)
                    if sock is None:
                        continue
                    try:
                        data = sock.recv(CHUNK)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    from_client = sock is self.client
                    if not data:
                        if not from_client and self.hung:
                            # The server went away behind the black hole: the client
                            # must not learn of it. Stop polling that side.
                            poller.unregister(fd)
                            del sockets[fd]
                            continue
                        graceful = not self.hung
                        return
                    if self.hung:
                        continue
                    other = self.upstream if from_client else self.client
                    assert other is not None
                    try:
                        other.sendall(data)
                    except OSError:
                        return
        finally:
            if self._reset or not graceful:
                _reset(self.client)
                _reset(self.upstream)
            else:
                _close(self.client)
                _close(self.upstream)
            self.backend.forget(self)


@dataclass
class Backend:
    name: str
    host: str
    port: int
    mode: str = "pass"
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: set[Connection] = field(default_factory=set)

    def forget(self, connection: Connection) -> None:
        with self.lock:
            self.connections.discard(connection)


class Listener:
    """The port one process uses for one backend; counts what it accepts."""

    def __init__(self, proxy: Proxy, process: str, backend: Backend) -> None:
        self.proxy = proxy
        self.process = process
        self.backend = backend
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.sock.settimeout(POLL_SECONDS)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"faults-proxy-{process}-{backend.name}", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            self.proxy.count(self.process, self.backend.name)
            try:
                self._handle(client)
            except Exception:  # never let one connection stop the listener
                logger.exception("faults proxy: %s/%s", self.process, self.backend.name)
                _reset(client)

    def _handle(self, client: socket.socket) -> None:
        backend = self.backend
        client.settimeout(SEND_TIMEOUT_SECONDS)
        mode = backend.mode
        if mode == "refuse":
            _reset(client)
            return
        upstream = None
        if mode == "pass":
            try:
                upstream = socket.create_connection(
                    (backend.host, backend.port), timeout=CONNECT_TIMEOUT_SECONDS
                )
            except OSError:
                _reset(client)
                return
            upstream.settimeout(SEND_TIMEOUT_SECONDS)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with backend.lock:
            if backend.mode != mode:  # changed while we connected: start over
                _reset(client)
                _reset(upstream)
                return
            connection = Connection(backend, client, upstream)
            backend.connections.add(connection)
        connection.start()


class Proxy:
    def __init__(self) -> None:
        self.backends: dict[str, Backend] = {}
        self.listeners: dict[tuple[str, str], Listener] = {}
        self._counts: Counter[tuple[str, str]] = Counter()
        self._count_lock = threading.Lock()

    def backend(self, name: str, host: str, port: int) -> Backend:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the fault proxy only relays to this machine, not {host!r}")
        backend = self.backends[name] = Backend(name, host, port)
        return backend

    def listen(self, process: str, backend: str) -> int:
        """A port for ``process`` to reach ``backend`` through; the same one if asked twice."""
        key = (process, backend)
        if key not in self.listeners:
            self.listeners[key] = Listener(self, process, self.backends[backend])
        return self.listeners[key].port

    def count(self, process: str, backend: str) -> None:
        with self._count_lock:
            self._counts[(process, backend)] += 1

    def counts(self) -> Counter[tuple[str, str]]:
        """Connections accepted so far, per (process, backend)."""
        with self._count_lock:
            return Counter(self._counts)

    def mode(self, backend: str) -> str:
        return self.backends[backend].mode

    def set_mode(self, backend: str, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        target = self.backends[backend]
        with target.lock:
            before, target.mode = target.mode, mode
            connections = list(target.connections)
        if mode == "refuse":
            for connection in connections:
                connection.reset()
        elif mode == "hang":
            for connection in connections:
                connection.hang()
        elif before == "hang":
            for connection in connections:
                if connection.hung:
                    connection.reset()

    def open_connections(self, backend: str) -> int:
        target = self.backends[backend]
        with target.lock:
            return len(target.connections)

    def close(self) -> None:
        for listener in self.listeners.values():
            listener.close()
        for target in self.backends.values():
            with target.lock:
                connections = list(target.connections)
            for connection in connections:
                connection.reset()
