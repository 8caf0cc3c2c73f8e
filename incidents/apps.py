from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents and the fleet"

    def ready(self) -> None:
        from . import snapshot, tokens

        snapshot.connect_signals()
        tokens.connect_signals()
