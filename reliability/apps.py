from typing import Any

from django.apps import AppConfig


def _policy_changed(**_: Any) -> None:
    # A policy or its tiers: every tailnet's statement may change (policies are
    # rarely edited), so the customers' pages and API are rebuilt.
    from customers import pagecache

    pagecache.data_changed()


def _assignment_changed(instance: Any, **_: Any) -> None:
    from customers import pagecache

    pagecache.tailnets_changed([instance.tailnet_id])


class ReliabilityConfig(AppConfig):
    name = "reliability"
    verbose_name = "Reliability: report and SLAs"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from .models import SlaCreditTier, SlaPolicy, TailnetSla

        for name, signal in (("save", post_save), ("delete", post_delete)):
            for model in (SlaPolicy, SlaCreditTier):
                signal.connect(_policy_changed, sender=model, dispatch_uid=f"sla-{model}-{name}")
            signal.connect(_assignment_changed, sender=TailnetSla, dispatch_uid=f"sla-own-{name}")
