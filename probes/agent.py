"""The probe agent: one per region, far from the status page and its database.

    python -m probes.agent --region sin --api https://status.example.com \\
        --token-file /etc/statuspage/agent-sin.token --buffer /var/lib/statuspage/agent-sin

It imports no Django and needs no database or broker: only the probing core
(``probes.checks``, aiohttp) and the standard library (requirements-agent.txt).

- **What to probe**: ``GET /api/v1/probes/shards`` with the region's probe token, re-read
  every ``--refresh`` seconds with its ETag (a 304 while nothing changed). The last list
  is kept on disk, so an agent (re)started while the status page is down probes all
  the same.
- **When**: one loop per shard, at the shard's interval, on ticks aligned to the clock
  (every region probes a shard at about the same moment). Each probe has its hard
  timeout, and a failed probe is a sample, never retried (``probes.checks``). A slow
  shard holds back only its own loop.
- **Nothing lost**: each sample goes to an on-disk buffer (SQLite, one row per sample)
  the moment it is taken; a sender posts the oldest first, in batches, to
  ``POST /api/v1/probes/samples``, and deletes them once the API has stored them. While
  the API cannot be reached the buffer grows (at most ``--buffer-max`` samples; beyond,
  the oldest are dropped and counted); a restart picks up where it was. A batch sent
  twice (the answer was lost) is stored once: the API is idempotent per sample.
- **Health**: every batch carries the buffer's depth, the samples dropped and the
  agent's clock; the status page shows them in /metrics and the admin.

Stop it with SIGTERM or SIGINT: probing stops, the sender makes a last attempt,
and whatever is left waits on disk for the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from .checks import ProbeResult, ProbeTarget, probe_one, probe_session

logger = logging.getLogger("probes.agent")

USER_AGENT = "coordination-status-agent/1.0"
SHARDS_PATH = "/api/v1/probes/shards"
SAMPLES_PATH = "/api/v1/probes/samples"
TOKEN_ENV = "PROBE_AGENT_TOKEN"  # noqa: S105 - the name of the variable, not a token


# --- The on-disk buffer ---------------------------------------------------------------------


class Buffer:
    """Samples waiting to be sent, oldest first, in one SQLite file (WAL: a sample
    written is on disk however the process ends; ``synchronous=NORMAL`` trades the
    last moments before a power cut for speed, not before a crash). At most
    ``limit`` samples: beyond, the oldest are dropped and counted. Also keeps the last
    shard list, for a start while the API is unreachable."""

    def __init__(self, path: Path, *, limit: int) -> None:
        if limit < 1:
            raise ValueError("the buffer must hold at least one sample")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.limit = limit
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sample (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._depth = self._db.execute("SELECT count(*) FROM sample").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    @property
    def depth(self) -> int:
        return int(self._depth)

    @property
    def dropped_total(self) -> int:
        return int(self._meta("dropped_total") or 0)

    def add(self, sample: dict[str, Any]) -> None:
        with self._db:  # one transaction: the sample, and the oldest out if full
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO sample (body) VALUES (?)", (json.dumps(sample),))
            self._depth += 1
            over = self._depth - self.limit
            if over > 0:
                self._db.execute(
                    "DELETE FROM sample WHERE id IN (SELECT id FROM sample ORDER BY id LIMIT ?)",
                    (over,),
                )
                self._set_meta("dropped_total", str(self.dropped_total + over))
                self._depth -= over
        if over > 0:
            logger.warning("buffer full (%s samples): dropped the %s oldest", self.limit, over)

    def oldest(self, count: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self._db.execute("SELECT id, body FROM sample ORDER BY id LIMIT ?", (count,))
        return [(row_id, json.loads(body)) for row_id, body in rows]

    def remove(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self._db:
            self._db.execute("BEGIN")
            removed = 0
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                removed += self._db.execute(
                    f"DELETE FROM sample WHERE id IN ({marks})",  # noqa: S608 - only "?"s
                    chunk,
                ).rowcount
        self._depth -= removed

    def shards_save(self, etag: str, body: str) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._set_meta("shards_etag", etag)
            self._set_meta("shards", body)

    def shards_load(self) -> tuple[str, str] | None:
        etag, body = self._meta("shards_etag"), self._meta("shards")
        return None if etag is None or body is None else (etag, body)

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


# --- What to probe --------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardSpec:
    slug: str
    url: str
    interval_s: float
    timeout_s: float


@dataclass(frozen=True)
class ShardList:
    shards: tuple[ShardSpec, ...]
    max_batch: int


def parse_shards(body: str) -> ShardList:
    """The API's answer, checked: a wrong one is refused whole (ValueError)."""
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("shards"), list):
        raise ValueError("not a shard list")
    shards = []
    for item in data["shards"]:
        interval, timeout = float(item["interval_seconds"]), float(item["timeout_seconds"])
        if not (
            math.isfinite(interval) and interval > 0 and math.isfinite(timeout) and timeout > 0
        ):
            raise ValueError(f"bad interval or timeout for {item.get('slug')!r}")
        shards.append(ShardSpec(str(item["slug"]), str(item["probe_url"]), interval, timeout))
    return ShardList(shards=tuple(shards), max_batch=int(data.get("max_batch", 1000)))


def sample_json(result: ProbeResult) -> dict[str, Any]:
    return {
        "shard": result.shard,
        "started_at": result.started_at.astimezone(UTC).isoformat(),
        "ok": result.ok,
        "latency_ms": result.latency_ms,
        "connect_ms": result.connect_ms,
        "error": result.error,
        "status_code": result.status_code,
        "detail": result.detail,
    }


def next_tick(now: float, interval: float) -> float:
    """The next multiple of ``interval`` (Unix seconds) after ``now``."""
    return (math.floor(now / interval) + 1) * interval


# --- The agent -------------------------------------------------------------------------------


class Agent:
    def __init__(
        self,
        *,
        region: str,
        api: str,
        token: str,
        buffer: Buffer,
        batch_max: int = 1000,
        flush_s: float = 1.0,
        refresh_s: float = 60.0,
        api_timeout_s: float = 30.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.region = region
        self.api = api.rstrip("/")
        self.token = token
        self.buffer = buffer
        self.batch_max = batch_max
        self.flush_s = flush_s
        self.refresh_s = refresh_s
        self.api_timeout_s = api_timeout_s
        self.max_backoff_s = max_backoff_s
        self.shard_list: ShardList | None = None
        self.etag = ""
        self.sent = 0  # samples the API has taken, this run
        self._loops: dict[str, tuple[ShardSpec, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "User-Agent": USER_AGENT}
        timeout = aiohttp.ClientTimeout(total=self.api_timeout_s)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as api:
            probes = probe_session(keepalive_s=self._keepalive_s())
            try:
                saved = self.buffer.shards_load()
                if saved is not None:
                    self._use(*saved, probes=probes)
                sender = asyncio.create_task(self._send_loop(api, stop))
                while not stop.is_set():
                    await self._refresh(api, probes)
                    # Nothing to probe yet (the page is still starting): ask again soon.
                    wait = self.refresh_s if self.shard_list else min(2.0, self.refresh_s)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
                await self._stop_loops()
                self._wake.set()
                await sender
            finally:
                await self._stop_loops()
                await probes.close()

    def _keepalive_s(self) -> float:
        # Connections must outlive the pause between two probes of a shard.
        longest = (
            max((s.interval_s for s in self.shard_list.shards), default=60.0)
            if self.shard_list
            else 60.0
        )
        return 2 * longest + 5

    # -- the shard list -----------------------------------------------------------------------

    async def _refresh(self, api: aiohttp.ClientSession, probes: aiohttp.ClientSession) -> None:
        headers = {"If-None-Match": self.etag} if self.etag else {}
        try:
            async with api.get(self.api + SHARDS_PATH, headers=headers) as response:
                body = await response.text()
                if response.status == 304:
                    return
                if response.status != 200:
                    logger.error(
                        "shard list: HTTP %s from the API: %s", response.status, body[:300]
                    )
                    return
                etag = response.headers.get("ETag", "")
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("shard list: the API is unreachable (%s); keeping the last one", error)
            return
        try:
            self._use(etag, body, probes=probes)
        except (ValueError, KeyError, TypeError) as error:
            logger.error("shard list: not understood (%s); keeping the last one", error)
            return
        self.buffer.shards_save(etag, body)

    def _use(self, etag: str, body: str, *, probes: aiohttp.ClientSession) -> None:
        shard_list = parse_shards(body)
        self.shard_list, self.etag = shard_list, etag
        wanted = {spec.slug: spec for spec in shard_list.shards}
        for slug, (spec, task) in list(self._loops.items()):
            if wanted.get(slug) != spec:
                task.cancel()
                del self._loops[slug]
        for slug, spec in wanted.items():
            if slug not in self._loops:
                task = asyncio.create_task(self._probe_loop(spec, probes), name=f"probe {slug}")
                self._loops[slug] = (spec, task)
        logger.info("probing %s shards from %s", len(wanted), self.region)

    async def _stop_loops(self) -> None:
        tasks = [task for _, task in self._loops.values()]
        self._loops.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- probing ------------------------------------------------------------------------------

    async def _probe_loop(self, spec: ShardSpec, probes: aiohttp.ClientSession) -> None:
        target = ProbeTarget(shard=spec.slug, url=spec.url)
        while True:
            await asyncio.sleep(max(0.0, next_tick(time.time(), spec.interval_s) - time.time()))
            result = await probe_one(probes, target, region=self.region, timeout_s=spec.timeout_s)
            self.buffer.add(sample_json(result))
            self._wake.set()

    # -- sending ------------------------------------------------------------------------------

    async def _send_loop(self, api: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        backoff = 0.0
        while True:
            if stop.is_set():
                # A last attempt, briefly: what is left waits on disk for the next start.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.send_once(api), 5.0)
                return
            if backoff:
                await self._pause(stop, backoff)
            elif self.buffer.depth == 0:
                self._wake.clear()
                await self._pause(stop, self.flush_s, wake=self._wake)
                continue
            ok = await self.send_once(api)
            backoff = 0.0 if ok else min(self.max_backoff_s, max(1.0, backoff * 2))

    async def _pause(
        self, stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None
    ) -> None:
        waiters = [asyncio.create_task(stop.wait())]
        if wake is not None:
            waiters.append(asyncio.create_task(wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if wake is not None and not stop.is_set():
            # Let a moment's samples gather into one batch.
            await asyncio.sleep(min(self.flush_s, 0.2))

    async def send_once(self, api: aiohttp.ClientSession) -> bool:
        """Post the oldest samples; True when the API took them (or there were none)."""
        limit = min(
            self.batch_max, self.shard_list.max_batch if self.shard_list else self.batch_max
        )
        rows = self.buffer.oldest(limit)
        if not rows:
            return True
        body = {
            "region": self.region,
            "samples": [sample for _, sample in rows],
            "agent": {
                "buffer_depth": self.buffer.depth,
                "dropped_total": self.buffer.dropped_total,
                "sent_at": datetime.now(UTC).isoformat(),
            },
        }
        try:
            async with api.post(self.api + SAMPLES_PATH, json=body) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning(
                "samples: the API is unreachable (%s); %s waiting on disk", error, self.buffer.depth
            )
            return False
        if status == 200:
            self.buffer.remove([row_id for row_id, _ in rows])
            self.sent += len(rows)
            refused = _json(text).get("refused_future", 0)
            if refused:
                logger.error(
                    "samples: %s refused as being in the future: check this clock", refused
                )
            return True
        if status == 400 and isinstance(_json(text).get("samples"), list):
            return self._drop_refused(rows, _json(text)["samples"])
        logger.error("samples: HTTP %s from the API: %s", status, text[:300])
        return False

    def _drop_refused(self, rows: list[tuple[int, dict[str, Any]]], errors: list[Any]) -> bool:
        """The API named samples it will never take (a shard removed, too old): drop
        those, keep the rest for the next batch."""
        bad = [row_id for (row_id, _), error in zip(rows, errors, strict=False) if error]
        for (_, sample), error in zip(rows, errors, strict=False):
            if error:
                logger.error("samples: refused %s: %s", sample.get("shard"), error)
        self.buffer.remove(bad)
        return bool(bad)


def _json(text: str) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        value = json.loads(text)
        if isinstance(value, dict):
            return value
    return {}


# --- The command line -------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        return Path(args.token_file).read_text().strip()
    return args.token or os.environ.get(TOKEN_ENV, "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m probes.agent",
        description="Probe the coordination shards from one region and post the samples "
        "to the status page.",
    )
    parser.add_argument("--region", required=True, help="This region's slug.")
    parser.add_argument(
        "--api", required=True, help="The status page, e.g. https://status.example.com"
    )
    token = parser.add_mutually_exclusive_group()
    token.add_argument(
        "--token",
        help=f"The region's probe token (visible in ps: prefer --token-file or ${TOKEN_ENV}).",
    )
    token.add_argument("--token-file", help="A file holding the region's probe token.")
    parser.add_argument(
        "--buffer", help="Directory of the on-disk buffer (default: ./agent-<region>)."
    )
    parser.add_argument(
        "--buffer-max",
        type=int,
        default=1_000_000,
        help="Samples kept at most while the API is unreachable.",
    )
    parser.add_argument("--batch", type=int, default=1000, help="Samples per batch, at most.")
    parser.add_argument(
        "--refresh", type=float, default=60.0, help="Seconds between reads of the shard list."
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s agent[" + args.region + "] %(message)s",
        stream=sys.stderr,
    )
    secret = _token(args)
    if not secret:
        parser.error(f"no token: --token-file, --token or ${TOKEN_ENV}")
    buffer = Buffer(
        Path(args.buffer or f"agent-{args.region}") / "buffer.sqlite3", limit=args.buffer_max
    )
    agent = Agent(
        region=args.region,
        api=args.api,
        token=secret,
        buffer=buffer,
        batch_max=args.batch,
        refresh_s=args.refresh,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await agent.run(stop)

    try:
        asyncio.run(run())
    finally:
        logger.info("stopped: %s samples sent, %s waiting on disk", agent.sent, buffer.depth)
        buffer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
