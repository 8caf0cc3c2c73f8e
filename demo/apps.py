from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "The demo fleet and its story"
