from django.apps import AppConfig


class PlumbingConfig(AppConfig):
    name = "plumbing"
    verbose_name = "API tokens"

    def ready(self) -> None:
        from django.core import checks
        from django.urls import register_converter

        from . import params, site, tokens

        # Before any URLconf is read (they are imported on first resolve).
        register_converter(params.IdConverter, "id")

        tokens.connect_signals()
        checks.register(site.check_public_url)
