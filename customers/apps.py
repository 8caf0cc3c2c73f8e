from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers: members of tailnets"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from . import access, backends, pagecache, services

        pagecache.connect_signals()
        access.connect_signals()
        services.connect_signals()
        user = get_user_model()
        post_save.connect(backends.user_changed, sender=user, dispatch_uid="backends-user-save")
        post_delete.connect(backends.user_changed, sender=user, dispatch_uid="backends-user-del")
