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
        for path in result.carried_over:
            self.stderr.write(f"failed    {path} (its last good copy stays)")
        for path, reason in result.skipped.items():
            self.stdout.write(f"skipped   {path}: {reason}")
        self.stdout.write(
            f"Snapshot {result.generation}: {len(result.changed)} changed, "
            f"{len(result.unchanged)} unchanged, {len(result.removed)} removed, "
            f"{len(result.carried_over)} failed."
        )
