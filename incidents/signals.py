"""Signals of the incidents app for other apps' caches.

``impacts_rebuilt`` is sent after the commit of a bulk rebuild of TailnetImpact rows
(``services.tailnet_impacts_recompute``): a raw INSERT sends no model signals.
"""

from django.dispatch import Signal

impacts_rebuilt = Signal()  # kwargs: incident_id
