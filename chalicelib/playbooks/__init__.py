"""The playbooks: one module each, registered by importing it (the list is explicit, no scanning).

``get(id)`` and ``REGISTRY`` give the registered ``Playbook`` records; ``executor.py`` runs them.
"""

from chalicelib.playbooks import (
    ai_provider_outage,
    auth_outage,
    db_connection_saturation,
    deploy_rollback,
    object_lock_alarm,
    observability_outage,
    source_authority_down,
)
from chalicelib.playbooks.registry import REGISTRY, Playbook

MODULES = (ai_provider_outage, auth_outage, db_connection_saturation, deploy_rollback, object_lock_alarm,
           observability_outage, source_authority_down)

__all__ = ["MODULES", "REGISTRY", "Playbook", "get"]


def get(playbook_id: str) -> Playbook | None:
    return REGISTRY.get(playbook_id)
