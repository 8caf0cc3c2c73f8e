"""Everything that writes incidents, their updates, impact windows and follow-ups —
from every door: the admin, the operator API, probe detection, report triage and
management commands. Tailnets and their placements are written by the fleet feed alone
(``fleet.services``): they are derived from its event log.

Each service validates before writing (a ``ValidationError`` naming the problem, by
field where there is one), runs in one transaction, leaves an ``AuditEntry`` saying
who did it (``by``: a user, an ``audit.Actor``, or None for the system), and queues
the affected-tailnet recompute after commit when windows changed.

One module per entity; callers use the names below (``services.incident_create``).
"""

from .common import impacts_changed
from .follow_ups import FOLLOW_UP_FIELDS, follow_up_add, follow_up_change, follow_up_remove
from .incidents import (
    EDITABLE_FIELDS,
    RESOLVED_BODY,
    incident_components_save,
    incident_create,
    incident_edit,
    incident_post_update,
    incident_publish,
    incident_resolve,
    incident_unpublish,
    incident_update_delete,
    incident_update_edit,
)
from .recompute import incidents_needing_recompute, tailnet_impacts_queue, tailnet_impacts_recompute
from .windows import (
    WindowSpec,
    shard_impact_add,
    shard_impact_change_level,
    shard_impact_close,
    shard_impact_delete,
    shard_impact_update,
    shard_impacts_save,
    window_problem,
)

__all__ = [
    "EDITABLE_FIELDS",
    "FOLLOW_UP_FIELDS",
    "RESOLVED_BODY",
    "WindowSpec",
    "follow_up_add",
    "follow_up_change",
    "follow_up_remove",
    "impacts_changed",
    "incident_components_save",
    "incident_create",
    "incident_edit",
    "incident_post_update",
    "incident_publish",
    "incident_resolve",
    "incident_unpublish",
    "incident_update_delete",
    "incident_update_edit",
    "incidents_needing_recompute",
    "shard_impact_add",
    "shard_impact_change_level",
    "shard_impact_close",
    "shard_impact_delete",
    "shard_impact_update",
    "shard_impacts_save",
    "tailnet_impacts_queue",
    "tailnet_impacts_recompute",
    "window_problem",
]
