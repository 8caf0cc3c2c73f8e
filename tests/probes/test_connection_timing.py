"""probes/connection_timing.py overrides one private step of aiohttp: these pin it to
the aiohttp we install (tests/probes/test_checks.py checks what probes report)."""

import asyncio
import inspect

import aiohttp
from aiohttp import web

from probes.connection_timing import Scratch, TimingConnector, timed


def test_the_private_step_it_overrides_is_still_there_with_the_same_arguments():
    step = inspect.signature(aiohttp.TCPConnector._create_connection)
    assert list(step.parameters) == ["self", "req", "traces", "timeout"]
    assert list(inspect.signature(aiohttp.TCPConnector.connect).parameters) == [
        "self",
        "req",
        "traces",
        "timeout",
    ]


def test_a_new_connection_is_timed_and_a_reused_one_is_not():
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def scenario():
        app = web.Application()
        app.router.add_get("/", ok)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/"
        seen = []
        try:
            async with aiohttp.ClientSession(connector=TimingConnector()) as session:
                for _ in range(2):
                    scratch = Scratch()

                    async def fetch(scratch=scratch):
                        timed(scratch)
                        async with session.get(url) as response:
                            await response.read()

                    await asyncio.create_task(fetch())
                    seen.append(scratch)
                async with session.get(url) as response:  # untimed: no scratch, still works
                    assert response.status == 200
        finally:
            await runner.cleanup()
        return seen

    first, second = asyncio.run(scenario())
    assert first.connect_ms is not None
    assert first.connect_ms > 0
    assert second.connect_ms is None  # kept alive: the same connection
    assert first.waited_s >= 0
    assert second.waited_s >= 0
