"""``manage.py fleet_reconcile map.ndjson --as-of 2026-12-07T10:00:00Z``: make what we
believe at ``--as-of`` equal to the coordination service's whole current map (a file,
or ``-`` for stdin; one ``{"tailnet", "shard", "display_name"}`` a line), through
fleet events (``fleet/reconcile.py``). Streams: millions of lines in constant memory.

Safe to run again, even with a corrected map: only the missing events are stored. A
map with bad lines is refused whole (the first lines at fault are listed) and nothing
is written.
"""

import json
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from fleet.events import parse_at
from fleet.reconcile import MapInvalid, fleet_reconcile


class Command(BaseCommand):
    help = "Reconcile the believed fleet map at --as-of with the control plane's NDJSON map."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("map", help="NDJSON file of the whole current map, or - for stdin.")
        parser.add_argument(
            "--as-of",
            required=True,
            help="When the map was true (RFC 3339 with a zone, e.g. 2026-12-07T10:00:00Z).",
        )
        parser.add_argument("--json", action="store_true", help="Print the counts as JSON.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        as_of, problem = parse_at(options["as_of"])
        if as_of is None:
            raise CommandError(f"--as-of: {problem}")
        quiet = options["no_progress"] or options["json"]
        bar = tqdm(
            unit=" lines", desc="staged", disable=quiet or None, file=sys.stderr, leave=False
        )

        def progress(count: int) -> None:
            bar.update(count - bar.n)

        try:
            if options["map"] == "-":
                counts = fleet_reconcile(lines=sys.stdin.buffer, as_of=as_of, progress=progress)
            else:
                try:
                    source = open(options["map"], "rb")  # noqa: SIM115 (closed below)
                except OSError as error:
                    raise CommandError(f"{options['map']}: {error.strerror}") from None
                with source:
                    counts = fleet_reconcile(lines=source, as_of=as_of, progress=progress)
        except MapInvalid as error:
            listed = "\n".join(f"  line {line}: {message}" for line, message in error.errors)
            more = error.count - len(error.errors)
            raise CommandError(
                f"{error.count} bad line(s); nothing was reconciled.\n{listed}"
                + (f"\n  … and {more} more" if more > 0 else "")
            ) from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        finally:
            bar.close()
        if options["json"]:
            self.stdout.write(json.dumps(counts))
            return
        self.stdout.write(
            f"{counts['lines']:,} tailnets in the map: {counts['unchanged']:,} unchanged, "
            f"{counts['created']:,} created, {counts['migrated']:,} migrated, "
            f"{counts['renamed']:,} renamed, {counts['deleted']:,} deleted. "
            f"Events: {counts['accepted']:,} stored, {counts['duplicates']:,} already stored."
        )
        if counts["elsewhere"]:
            self.stderr.write(
                f"{counts['elsewhere']:,} tailnet(s) stay where an earlier reconcile at this "
                f"same --as-of put them ({', '.join(counts['elsewhere_tailnets'])}"
                f"{', …' if counts['elsewhere'] > len(counts['elsewhere_tailnets']) else ''}): "
                "events at one instant apply in id order. Reconcile the map with a later --as-of."
            )
