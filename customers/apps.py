from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers: members of tailnets"

    def ready(self) -> None:
        from . import pagecache

        pagecache.connect_signals()
