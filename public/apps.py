from django.apps import AppConfig


class PublicConfig(AppConfig):
    name = "public"
    verbose_name = "The public status site"

    def ready(self) -> None:
        from . import snapshot

        snapshot.connect_signals()
