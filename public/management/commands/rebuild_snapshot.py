"""``manage.py rebuild_snapshot``: render the public pages into the snapshot now.

``make run`` calls it at start, so the first visitor is served from the snapshot; the
``public.rebuild_snapshot`` task does the same every minute and after changes.
"""

from django.core.management.base import BaseCommand, CommandError

from public.snapshot import SnapshotError, snapshot_rebuild


class Command(BaseCommand):
    help = "Rebuild the snapshot the public pages are served from (settings.SNAPSHOT_DIR)."

    def handle(self, *args: object, **options: object) -> None:
        try:
            result = snapshot_rebuild()
        except SnapshotError as error:
            raise CommandError(f"Not rebuilt, the last snapshot stays: {error}") from error
        for path in result.changed:
            self.stdout.write(f"changed   {path}")
        for path in result.removed:
            self.stdout.write(f"removed   {path}")
        for path, reason in result.failed.items():
            kept = "its last good copy stays" if path in result.carried_over else "not served"
            self.stderr.write(f"failed    {path}: {reason} ({kept})")
        for path, reason in result.skipped.items():
            if path not in result.failed:
                self.stdout.write(f"skipped   {path}: {reason}")
        summary = (
            f"Snapshot {result.generation}: {len(result.changed)} changed, "
            f"{len(result.unchanged)} unchanged, {len(result.removed)} removed, "
            f"{len(result.failed)} failed."
        )
        if result.failed:
            # A page that does not render is broken for every visitor: say so loudly.
            raise CommandError(f"{summary} The log has each failure's traceback.")
        self.stdout.write(summary)
