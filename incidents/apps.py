from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents and the fleet"

    def ready(self) -> None:
        from . import signals

        signals.connect()
