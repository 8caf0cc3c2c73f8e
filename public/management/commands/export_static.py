"""``manage.py export_static <dir>``: the whole public site as files, for any static
host or CDN (a last-resort mirror that needs neither this app nor its database).

Every public page (all published incidents, not only the snapshot's 90 days) is
written where a static host serves it under the same URL (``index.html``,
``history/index.html``, ``incidents/<id>/index.html``, ``api/v2/summary.json``,
``feed.rss``, ``badge.svg``, ...), and the static assets under ``static/``. Serve the
directory at the site's root: pages link assets and each other by absolute path.
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from public.snapshot import SnapshotError, snapshot_export


class Command(BaseCommand):
    help = "Write every public page and the static assets into a directory."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path, help="Where to write the site.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Write into a non-empty directory (files are overwritten, none removed).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        target: Path = options["directory"]
        if target.exists() and not target.is_dir():
            raise CommandError(f"{target} is not a directory.")
        if target.exists() and any(target.iterdir()) and not options["force"]:
            raise CommandError(f"{target} is not empty; use --force to write into it anyway.")
        try:
            written, skipped = snapshot_export(target=target)
        except SnapshotError as error:
            raise CommandError(f"Export failed: {error}") from error
        for path, reason in skipped.items():
            self.stdout.write(f"skipped {path}: {reason}")
        for relative in written:
            self.stdout.write(f"wrote   {relative}")
        self.stdout.write(f"Exported {len(written)} files to {target}.")
