"""``manage.py seed_demo``: a realistic demo fleet, deterministic and idempotent.

The fleet is planned in ``demo.fleet`` from seeded generators, the story's words are in
``demo.story``, and ``demo.seed`` writes both. Everything runs in one transaction: a
failed seed leaves nothing behind, and a second run finds the demo fleet and changes
nothing (``make run`` calls it on every start).
"""

import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from customers.queries import LATENCY_DAYS
from demo import story
from demo.fleet import PROBE_REGIONS, REGIONS, Clock
from demo.seed import Seeder, demo_fleet_present, demo_probe_urls_align, operator_ensure
from incidents.models import (
    Component,
    Incident,
    Placement,
    Shard,
    ShardImpact,
    Tailnet,
    TailnetImpact,
)

ADMIN_URL = "http://127.0.0.1:8000/admin/"
MIN_TAILNETS = 20
MIN_DAYS = 60
MAX_DAYS = 3650


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return timezone.now().replace(second=0, microsecond=0)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--now must be an ISO 8601 datetime, not {value!r}.") from None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(second=0, microsecond=0)


class Command(BaseCommand):
    help = (
        "Seed a realistic demo fleet (components, shards, tailnets with placement history, "
        "incidents, a week of probe latency) deterministically; does nothing if the demo "
        "fleet already exists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tailnets", type=int, default=5000, help="How many tailnets (default 5000)."
        )
        parser.add_argument(
            "--days", type=int, default=90, help="Days of placement history (default 90)."
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="Random seed: same seed, same fleet."
        )
        parser.add_argument(
            "--now",
            help="Pretend it is this time (ISO 8601; UTC if no offset). Default: this minute.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        tailnets, days, seed = options["tailnets"], options["days"], options["seed"]
        if tailnets < MIN_TAILNETS:
            raise CommandError(f"--tailnets must be at least {MIN_TAILNETS}, not {tailnets}.")
        if not MIN_DAYS <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between {MIN_DAYS} and {MAX_DAYS}, not {days}.")
        now = _parse_now(options["now"])
        verbose = options["verbosity"] >= 2

        def log(message: str) -> None:
            if verbose:
                self.stdout.write(message)

        found = demo_fleet_present()
        if found is not None:
            with transaction.atomic():
                created_user = operator_ensure() is not None
                moved = demo_probe_urls_align()
            self.stdout.write(
                f"Demo fleet already present ({found} exists); nothing to seed."
                + (" Created the operator login." if created_user else "")
                + (f" {moved} shards probed at {settings.PROBE_SIMULATOR_URL}." if moved else "")
            )
            self._print_login()
            return

        self.stdout.write(
            f"Seeding the demo fleet: {tailnets:,} tailnets, {days} days up to "
            f"{now:%Y-%m-%d %H:%M} UTC, seed {seed}..."
        )
        seeder = Seeder(seed=seed, clock=Clock(now=now, days=days), tailnets=tailnets, log=log)
        with transaction.atomic():
            user = operator_ensure() or get_user_model().objects.get(
                username=story.OPERATOR_USERNAME
            )
            seeder.build(user)
        self._print_summary(seeder, time.monotonic() - started)
        self._print_login()

    def _print_login(self) -> None:
        self.stdout.write(
            f"Operator console: {ADMIN_URL}  user {story.OPERATOR_USERNAME!r}, "
            f"password {story.OPERATOR_PASSWORD!r}"
        )

    def _print_summary(self, seeder: Seeder, elapsed: float) -> None:
        placements = Placement.objects.count()
        migrations = Placement.objects.filter(ends_at__isnull=False).count()
        incidents = Incident.objects.filter(published=True)
        lines = [
            f"Seeded in {elapsed:.1f}s:",
            f"  {Shard.objects.count():,} shards in {len(REGIONS)} regions, "
            f"{Component.objects.count():,} components",
            f"  {Tailnet.objects.count():,} tailnets, {placements:,} placements, "
            f"{migrations:,} live migrations ({seeder.summary.service_migrations} of them "
            "mid-incident)",
            f"  {Incident.objects.count():,} incidents ({incidents.filter(kind='incident').count()}"
            f" incidents, {incidents.filter(kind='maintenance').count()} maintenances), "
            f"{ShardImpact.objects.count():,} shard impact windows, "
            f"{TailnetImpact.objects.count():,} tailnet impact rows",
            f"  {seeder.summary.rollups:,} probe rollups: {LATENCY_DAYS} days of hourly "
            f"latency from {len(PROBE_REGIONS)} probe regions",
            "  Tailnets with a story: "
            + ", ".join(f"{slug} ({note})" for slug, note in seeder.summary.pinned),
        ]
        self.stdout.write("\n".join(lines))
