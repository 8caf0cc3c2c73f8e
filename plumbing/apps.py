from django.apps import AppConfig


class PlumbingConfig(AppConfig):
    name = "plumbing"
    verbose_name = "API tokens"

    def ready(self) -> None:
        from . import tokens

        tokens.connect_signals()
