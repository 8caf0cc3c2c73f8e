"""Serve fake coordination shards on loopback: ``manage.py simulate_fleet``.

Faults are set while it runs with ``manage.py fault`` (see probes/simulator.py).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from probes import simulator


class Command(BaseCommand):
    help = (
        "Serve fake coordination shards (GET /s/<shard>/key?v=88, any shard name) with "
        "faults injectable at run time through /_control/faults (see `manage.py fault`)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8787)
        parser.add_argument("--host", default="127.0.0.1", help="A loopback address.")
        parser.add_argument(
            "--allow-remote",
            action="store_true",
            help="Listen on a non-loopback --host. The control endpoints have no "
            "authentication: anyone who can reach them can inject faults.",
        )
        parser.add_argument(
            "--shards",
            type=int,
            default=0,
            help="Announce N shards (shard-0001...); every shard name is served anyway.",
        )
        parser.add_argument("--latency-ms", type=float, default=0.0, help="Base answer delay.")
        parser.add_argument(
            "--jitter-ms", type=float, default=0.0, help="Extra random delay, 0 to this."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host = str(options["host"])
        port = int(options["port"])
        shards = int(options["shards"])
        latency_ms = float(options["latency_ms"])
        jitter_ms = float(options["jitter_ms"])
        if not 0 <= port <= 65535:
            raise CommandError(f"--port {port} is not a TCP port")
        if shards < 0:
            raise CommandError("--shards must be 0 or more")
        try:
            simulator.check_host(host, allow_remote=bool(options["allow_remote"]))
            simulator.Fleet(latency_ms=latency_ms, jitter_ms=jitter_ms)
        except ValueError as error:
            raise CommandError(str(error)) from error

        def ready(url: str) -> None:
            if shards:
                names = simulator.shard_names(shards)
                announced = f"{shards} shards ({names[0]}...{names[-1]}), and any other name"
            else:
                announced = "any shard name"
            delay = f", answers after {latency_ms:g} ms" if latency_ms else ""
            delay += f" + up to {jitter_ms:g} ms jitter" if jitter_ms else ""
            self.stdout.write(
                f"Fleet simulator on {url}: GET {url}/s/<shard>/key?v=88 for {announced}"
                f"{delay}.\nFaults: {url}/_control/faults (manage.py fault --help). "
                "Ctrl-C stops.",
            )
            self.stdout.flush()

        try:
            simulator.run(
                host,
                port,
                shards=shards,
                latency_ms=latency_ms,
                jitter_ms=jitter_ms,
                allow_remote=bool(options["allow_remote"]),
                ready=ready,
            )
        except OSError as error:
            raise CommandError(f"cannot listen on {host}:{port}: {error}") from error
        self.stdout.write("Fleet simulator stopped.")
