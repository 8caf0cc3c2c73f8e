from django.apps import AppConfig


class ProbesConfig(AppConfig):
    name = "probes"
    verbose_name = "Probes"

    def ready(self) -> None:
        from django.core import checks

        from .views import check_metrics_networks

        checks.register(check_metrics_networks)
