from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "fleet"
    verbose_name = "Fleet feed"

    def ready(self) -> None:
        from plumbing.metrics import collector_add

        from .health import FleetCollector

        collector_add(FleetCollector)
