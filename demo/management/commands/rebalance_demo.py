"""``manage.py rebalance_demo --api http://127.0.0.1:8000``: the demo's auto-rebalancer.

Every ``--every`` seconds it live-migrates ``--moves`` random tailnets to another
shard of their region, the way the coordination service's control plane does, by
sending ``tailnet.migrated`` events to the fleet feed API (``POST
/api/v1/fleet/events``) like any producer. A newcomer watching a tailnet's page sees
it move and "were we affected" follow it.

It makes its own token (scope ``fleet``) when it starts, keeps the secret in memory
only, and revokes it when it stops; a token left by an earlier run is revoked first.
"""

from __future__ import annotations

import json
import random
import signal
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from incidents.models import Placement, Shard
from plumbing.models import ApiToken
from plumbing.tokens import api_token_create, api_token_revoke

TOKEN_NAME = "demo rebalancer"  # noqa: S105 - a label, not a secret


class Command(BaseCommand):
    help = "Live-migrate a few demo tailnets every minute through the fleet feed API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--api", default="http://127.0.0.1:8000", help="the status page")
        parser.add_argument("--every", type=float, default=60.0, help="seconds between moves")
        parser.add_argument("--moves", type=int, default=3, help="tailnets moved each time")
        parser.add_argument("--once", action="store_true", help="move once and stop")
        parser.add_argument("--seed", type=int, default=None, help="random seed (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["api"].startswith(("http://", "https://")):
            raise CommandError("--api must be an http:// or https:// address.")
        self.url = options["api"].rstrip("/") + "/api/v1/fleet/events"
        self.rng = random.Random(options["seed"])  # noqa: S311 - a demo's dice, not a secret
        for old in ApiToken.objects.filter(name=TOKEN_NAME, revoked_at__isnull=True):
            api_token_revoke(token=old)
        token, self.secret = api_token_create(name=TOKEN_NAME, scope="fleet")
        # honcho stops its processes with SIGTERM: stop between moves, token revoked.
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        try:
            while True:
                self.move(options["moves"])
                if options["once"]:
                    return
                time.sleep(options["every"])
        except KeyboardInterrupt:
            pass
        finally:
            api_token_revoke(token=token)

    def move(self, moves: int) -> None:
        shards_by_region: dict[str, list[str]] = {}
        for slug, region in Shard.objects.filter(active=True).values_list("slug", "region"):
            shards_by_region.setdefault(region, []).append(slug)
        placed = list(
            Placement.objects.filter(ends_at__isnull=True, shard__active=True)
            .filter(Q(tailnet__deleted_at__isnull=True))
            .values_list("tailnet__slug", "shard__slug", "shard__region")
            .order_by("tailnet__slug")
        )
        movable = [p for p in placed if len(shards_by_region.get(p[2], [])) > 1]
        if not movable:
            self.stdout.write("nothing to move: no region has two active shards")
            return
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        events, said = [], []
        for tailnet, shard, region in self.rng.sample(movable, min(moves, len(movable))):
            target = self.rng.choice([s for s in shards_by_region[region] if s != shard])
            events.append(
                {
                    "id": f"rebalance:{uuid.uuid4()}",
                    "type": "tailnet.migrated",
                    "at": at,
                    "tailnet": tailnet,
                    "shard": target,
                }
            )
            said.append(f"{tailnet} {shard} -> {target}")
        try:
            answer = self.post({"events": events})
        except CommandError as error:
            # Under honcho, a process that exits stops the whole demo: say it, go on.
            self.stderr.write(str(error))
            return
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            # The web server may still be starting, or restarting: try again next time.
            self.stderr.write(f"feed not reachable ({getattr(error, 'reason', error)}); later")
            return
        self.stdout.write(f"moved {answer.get('accepted', 0)}: " + ", ".join(said))

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in handle()
            self.url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.secret}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as error:
            detail = error.read()[:500].decode(errors="replace")
            raise CommandError(f"the feed answered HTTP {error.code}: {detail}") from None
