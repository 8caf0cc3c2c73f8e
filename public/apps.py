from django.apps import AppConfig


class PublicConfig(AppConfig):
    name = "public"
    verbose_name = "The public status site"

    def ready(self) -> None:
        from plumbing.metrics import collector_add

        from . import snapshot
        from .metrics import SnapshotCollector

        snapshot.connect_signals()
        collector_add(SnapshotCollector)
