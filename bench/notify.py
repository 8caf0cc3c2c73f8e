"""Notifications on the 1M-tailnet dataset: an incident that affects 100,000 tailnets
with a webhook each, its fan-out into the outbox and the deliveries, each against a
bare baseline in the same run.

    make bench-data      # once: the dataset (bench/data.py)
    make bench-notify    # this
    make bench-notify BENCH_ARGS="--tailnets 10000"

Everything runs on a fresh copy of the dataset database (``<dataset>_notify``, made
with ``CREATE DATABASE … TEMPLATE``, migrated to this checkout, dropped at the end), so
the dataset itself is never written. On the copy: the fewest shards (most tailnets
first) that hold ``--tailnets`` tailnets now, ``--tailnets`` of those tailnets with one
confirmed JSON webhook each to a local receiver (an aiohttp server in its own process,
answering 200), and one published outage on those shards since ten minutes ago, its
affected-tailnet rows computed by the product's recompute.

notify-fanout (rows per second, higher is better; ratio = ours / baseline, target ≥ 0.5):
- *ours*: ``notifications.outbox.tailnet_deliveries_add(incident)`` in a transaction,
  committed: the product's one writer of a tailnet's notices (stretch starts, the
  tailnet's subscribers, deleted tailnets left out, the unique key), as the recompute
  runs it.
- *baseline*: ``INSERT INTO notifications_delivery … SELECT`` of the same rows, a
  join of the affected-tailnet rows with the subscriptions and nothing else, committed.
Three rounds each, alternating which goes first; the outbox is emptied (untimed)
between runs; the best run of each side counts.

notify-deliver (deliveries per second):
- *ours*: ``notifications.delivery.deliver_due()`` in this process until none is due:
  claim under a lease, the bodies built from the rows (the incident, the tailnet's
  affected windows and seconds), signed, POSTed with ``NOTIFY_WEBHOOK_CONCURRENCY``
  (20) in flight, each outcome recorded with an UPDATE of its row.
- *baseline*: the same rows read in one query, the same JSON shape built and signed
  (HMAC-SHA256), POSTed by one aiohttp session with the same concurrency, each row
  marked sent with an UPDATE (executed 200 at a time, as ours batches).
Both must leave every row sent and the receiver must count every request.
"""

import argparse
import hashlib
import hmac
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import database_url, meta_read, setup_django

SECRET = "bench-webhook-secret"  # noqa: S105 (the receiver ignores it)
BATCH = 200
ROUNDS = 3
SINK = """
import sys
from aiohttp import web

count = 0

async def hook(request):
    global count
    await request.read()
    count += 1
    return web.Response(text="ok")

async def counted(request):
    return web.Response(text=str(count))

app = web.Application()
app.router.add_post("/hook", hook)
app.router.add_get("/count", counted)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def connect(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True, prepare_threshold=None)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def copy_dataset(url: str, name: str, wait_alone: float) -> str:
    template = urlsplit(url).path.lstrip("/")
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    deadline = time.monotonic() + wait_alone
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        while True:
            try:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
                break
            except psycopg.errors.ObjectInUse as error:
                if time.monotonic() > deadline:
                    raise SystemExit(f"cannot copy {template}: {error}") from None
                log(f"  waiting to copy {template} (others are connected)")
                time.sleep(5)
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def drop(url: str, name: str) -> None:
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def sink_start(port: int) -> subprocess.Popen[bytes]:
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)])  # noqa: S603
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink
        except OSError:
            time.sleep(0.05)
    sink.kill()
    raise SystemExit("the webhook receiver did not start")


def sink_count(port: int) -> int:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as answer:
        return int(answer.read())


def prepare(url: str, tailnets: int, hook: str) -> tuple[int, int]:
    """Subscriptions and the incident; returns (incident id, shards it hits)."""
    with connect(url) as conn:
        counts = conn.execute(
            "SELECT shard_id, count(*) FROM incidents_placement WHERE ends_at IS NULL"
            " GROUP BY shard_id ORDER BY count(*) DESC, shard_id"
        ).fetchall()
        chosen, total = [], 0
        for shard_id, count in counts:
            chosen.append(shard_id)
            total += count
            if total >= tailnets:
                break
        now = datetime.now(UTC)
        conn.execute(
            "INSERT INTO notifications_subscription (channel, tailnet_id, email, url, secret,"
            " format, confirmed_at, active, disabled_reason, created_at)"
            " SELECT 'webhook', p.tailnet_id, '', %(url)s, %(secret)s, 'json', %(now)s, true,"
            " '', %(now)s FROM incidents_placement p"
            " WHERE p.ends_at IS NULL AND p.shard_id = ANY(%(shards)s)"
            " ORDER BY p.tailnet_id LIMIT %(n)s",
            {"url": hook, "secret": SECRET, "now": now, "shards": chosen, "n": tailnets},
        )
        conn.execute("ANALYZE notifications_subscription")
    from incidents.models import Shard
    from incidents.services import WindowSpec, incident_create, tailnet_impacts_recompute

    since = datetime.now(UTC) - timedelta(minutes=10)
    incident = incident_create(
        title="Control plane unavailable on several shards",
        body="We are investigating.",
        impact="major",
        started_at=since,
        shard_impacts=[
            WindowSpec(shard, "outage", since) for shard in Shard.objects.filter(pk__in=chosen)
        ],
        published=True,
    )
    log(f"  recomputing the affected tailnets of {len(chosen)} shards …")
    tailnet_impacts_recompute(incident_id=incident.pk)  # its notices are written too
    with connect(url) as conn:
        conn.execute("ANALYZE incidents_tailnetimpact")
    return incident.pk, len(chosen)


def outbox_empty(conn: psycopg.Connection) -> None:
    conn.execute("TRUNCATE notifications_delivery")


def fanout(url: str, incident_id: int, expected: int) -> tuple[float, float]:
    from django.db import transaction

    from notifications.outbox import tailnet_deliveries_add

    bare_sql = (
        "INSERT INTO notifications_delivery (id, subscription_id, incident_id, tailnet_id,"
        " type, window_start, update_id, status, attempts, next_attempt_at, created_at,"
        " last_error) SELECT gen_random_uuid(), s.id, r.incident_id, r.tailnet_id,"
        " 'incident.affected', r.starts_at, 0, 'pending', 0, now(), now(), ''"
        " FROM incidents_tailnetimpact r"
        " JOIN notifications_subscription s ON s.tailnet_id = r.tailnet_id"
        " WHERE r.incident_id = %s"
    )
    best = {"ours": float("inf"), "baseline": float("inf")}
    with connect(url) as conn:
        for round_ in range(ROUNDS):
            sides = ["ours", "baseline"] if round_ % 2 == 0 else ["baseline", "ours"]
            for side in sides:
                outbox_empty(conn)
                conn.execute("CHECKPOINT")
                started = time.perf_counter()
                if side == "ours":
                    with transaction.atomic():
                        rows = tailnet_deliveries_add(incident_id)
                else:
                    with conn.transaction():
                        rows = conn.execute(bare_sql, [incident_id]).rowcount
                took = time.perf_counter() - started
                if rows != expected:
                    raise SystemExit(f"{side} wrote {rows:,} rows, not {expected:,}")
                best[side] = min(best[side], took)
                log(f"  round {round_ + 1} {side}: {rows:,} rows in {took:.2f} s")
    return expected / best["ours"], expected / best["baseline"]


def deliver_ours(port: int, expected: int) -> float:
    from notifications.delivery import deliver_due

    before = sink_count(port)
    started = time.perf_counter()
    sent = 0
    while True:
        tried = deliver_due(budget_seconds=3600)
        sent += tried
        if not tried:
            break
    took = time.perf_counter() - started
    if sent != expected or sink_count(port) - before != expected:
        raise SystemExit(f"ours sent {sent:,}, the receiver got {sink_count(port) - before:,}")
    return took


async def _post_all(hook: str, rows: list[tuple], concurrency: int, url: str) -> None:
    import asyncio

    import aiohttp

    limit = asyncio.Semaphore(concurrency)
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=5),
        ) as session,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
    ):

        async def one(row: tuple) -> tuple[int, str]:
            delivery_id, body = row
            t = int(time.time())
            mac = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256)
            headers = {
                "Content-Type": "application/json",
                "X-Statuspage-Delivery": delivery_id,
                "X-Statuspage-Signature": f"t={t},v1={mac.hexdigest()}",
            }
            async with limit, session.post(hook, data=body, headers=headers) as answer:
                await answer.content.read(1024)
                return answer.status, delivery_id

        for start in range(0, len(rows), BATCH):
            done = await asyncio.gather(*(one(row) for row in rows[start : start + BATCH]))
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "UPDATE notifications_delivery SET status = 'sent', sent_at = now(),"
                    " response_status = %s WHERE id = %s",
                    done,
                )


def deliver_bare(url: str, hook: str, port: int, expected: int, concurrency: int) -> float:
    import asyncio

    before = sink_count(port)
    started = time.perf_counter()
    with connect(url) as conn:
        found = conn.execute(
            "SELECT d.id::text, d.type, i.id, i.title, i.status, i.impact, t.slug,"
            " r.starts_at, r.ends_at, s.public_name, r.seconds"
            " FROM notifications_delivery d"
            " JOIN incidents_incident i ON i.id = d.incident_id"
            " JOIN incidents_tailnet t ON t.id = d.tailnet_id"
            " JOIN incidents_tailnetimpact r ON r.incident_id = d.incident_id"
            " AND r.tailnet_id = d.tailnet_id"
            " JOIN incidents_shard s ON s.id = r.shard_id"
            " WHERE d.status = 'pending' ORDER BY d.id"
        ).fetchall()
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    rows = []
    for did, kind, iid, title, status, impact, slug, start, end, shard, seconds in found:
        body = {
            "id": did,
            "type": kind,
            "sent_at": now,
            "tailnet": slug,
            "incident": {
                "id": iid,
                "name": title,
                "status": status,
                "impact": impact,
                "url": f"https://status.example.com/incidents/{iid}/",
            },
            "affected": {
                "seconds": seconds,
                "windows": [
                    {
                        "from": start.isoformat().replace("+00:00", "Z"),
                        "to": end and end.isoformat().replace("+00:00", "Z"),
                        "shard": shard,
                    }
                ],
            },
        }
        rows.append((did, json.dumps(body, separators=(",", ":")).encode()))
    asyncio.run(_post_all(hook, rows, concurrency, url))
    took = time.perf_counter() - started
    got = sink_count(port) - before
    if len(rows) != expected or got != expected:
        raise SystemExit(f"baseline sent {len(rows):,}, the receiver got {got:,}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tailnets", type=int, default=100_000)
    parser.add_argument("--wait-alone", type=float, default=600.0)
    parser.add_argument(
        "--profile", action="store_true", help="Profile ours' deliveries (top 30 to stderr)."
    )
    args = parser.parse_args()
    url = database_url()
    with connect(url) as conn, conn.cursor() as cursor:
        if meta_read(cursor) is None:
            raise SystemExit("No dataset: run `make bench-data` first.")
    name = f"{urlsplit(url).path.lstrip('/')}_notify"
    log(f"copying the dataset to {name} …")
    copy = copy_dataset(url, name, args.wait_alone)
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hook"
    sink = sink_start(port)
    work = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    os.environ.update(
        {
            "DJANGO_SECRET_KEY": hashlib.sha256(os.urandom(32)).hexdigest(),
            "STATUSPAGE_PUBLIC_URL": "https://status.example.com",
            "STATUSPAGE_VAR_DIR": str(work / "var"),
            "CELERY_BROKER_URL": "memory://",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "NOTIFY_WEBHOOK_ALLOW_LOOPBACK": "1",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        }
    )
    os.environ.pop("REDIS_URL", None)
    try:
        setup_django(copy)
        logging.getLogger("kombu.connection").setLevel(logging.ERROR)
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        log(f"preparing {args.tailnets:,} webhooks and the incident …")
        incident_id, shards = prepare(copy, args.tailnets, hook)
        log(f"  an outage on {shards} shards affects them")

        log("notify-fanout …")
        ours_rate, bare_rate = fanout(copy, incident_id, args.tailnets)
        print(f"fanout rows/s: ours={ours_rate:,.0f} baseline={bare_rate:,.0f}", flush=True)

        log("notify-deliver: ours …")
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            ours_took = profiler.runcall(deliver_ours, port, args.tailnets)
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
        else:
            ours_took = deliver_ours(port, args.tailnets)
        with connect(copy) as conn:
            conn.execute(
                "UPDATE notifications_delivery SET status = 'pending', sent_at = NULL,"
                " attempts = 0, next_attempt_at = now(), response_status = NULL"
            )
        log("notify-deliver: baseline …")
        concurrency = settings.NOTIFY_WEBHOOK_CONCURRENCY
        bare_took = deliver_bare(copy, hook, port, args.tailnets, concurrency)
        ours_deliver, bare_deliver = args.tailnets / ours_took, args.tailnets / bare_took
        print(
            f"deliveries: ours {ours_took:.1f} s, baseline {bare_took:.1f} s "
            f"({args.tailnets:,} webhooks, {concurrency} in flight)",
            flush=True,
        )
        print(
            f"notify-fanout: ours={ours_rate:.0f} baseline={bare_rate:.0f} "
            f"ratio={ours_rate / bare_rate:.2f}",
            flush=True,
        )
        print(
            f"notify-deliver: ours={ours_deliver:.0f} baseline={bare_deliver:.0f} "
            f"ratio={ours_deliver / bare_deliver:.2f}",
            flush=True,
        )
    finally:
        sink.terminate()
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        drop(url, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
