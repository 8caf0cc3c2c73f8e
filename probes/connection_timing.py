"""How long a probe waited for a connection and how long a new one took to open.

The one module that touches aiohttp's private ``TCPConnector._create_connection``:
``TimingConnector`` overrides the public ``connect`` (the wait for a slot plus a
connect) and that private step (the connect alone), and writes what it sees into
the ``Scratch`` of the probe that asked. Each probe runs in its own task, and the
connector is awaited inside it, so a context variable reaches the right probe.
tests/probes/test_connection_timing.py holds it to aiohttp's behaviour.
"""

from contextvars import ContextVar
from time import perf_counter

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace


class Scratch:
    """What the connector learns about one probe's connection."""

    __slots__ = ("connect_ms", "waited_s")

    def __init__(self) -> None:
        self.connect_ms: float | None = None  # set only when a new connection was made
        self.waited_s = 0.0  # time spent getting a connection, less the connect itself


_SCRATCH: ContextVar[Scratch | None] = ContextVar("probe_scratch", default=None)


def timed(scratch: Scratch) -> None:
    """Connections fetched from now on in this task report to ``scratch``."""
    _SCRATCH.set(scratch)  # the probe's own task context: no reset needed


# make bench-probes, probe-round ratio: 1.02-1.15 with it, 1.13-1.35 with aiohttp's TraceConfig.
class TimingConnector(aiohttp.TCPConnector):
    """A TCPConnector that times new connections, and the wait for a free slot in the
    pool, for the probe that asked (nothing when a kept-alive connection is reused)."""

    async def connect(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        scratch = _SCRATCH.get()
        if scratch is None:
            return await super().connect(req, traces, timeout)
        started = perf_counter()
        try:
            return await super().connect(req, traces, timeout)
        finally:
            connecting = (scratch.connect_ms or 0.0) / 1000
            scratch.waited_s = max(0.0, perf_counter() - started - connecting)

    async def _create_connection(
        self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> ResponseHandler:
        scratch = _SCRATCH.get()
        started = perf_counter()
        protocol = await super()._create_connection(req, traces, timeout)
        if scratch is not None:
            scratch.connect_ms = (perf_counter() - started) * 1000
        return protocol
