"""The playbooks: one module each, registered by importing it (the list is explicit, no scanning).

``get(id)`` and ``REGISTRY`` give the registered ``Playbook`` records; ``executor.py`` runs them.
The modules are imported on the first use of ``get``, ``REGISTRY`` or ``MODULES``, not with this
package: a cold start whose first event runs no playbook does not pay for them (bench/coldstart.py).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from chalicelib.playbooks.registry import Playbook

if TYPE_CHECKING:
    from chalicelib.playbooks.registry import REGISTRY

    MODULES: tuple[ModuleType, ...]

NAMES = ("ai_provider_outage", "auth_outage", "db_connection_saturation", "deploy_rollback", "object_lock_alarm",
         "observability_outage", "source_authority_down")

__all__ = ["MODULES", "NAMES", "REGISTRY", "Playbook", "get"]


def get(playbook_id: str) -> Playbook | None:
    registered: dict[str, Playbook] = __getattr__("REGISTRY")
    return registered.get(playbook_id)


def __getattr__(name: str) -> Any:
    """``REGISTRY`` and ``MODULES``, once every playbook module is imported (each registers itself)."""
    if name not in ("REGISTRY", "MODULES"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from chalicelib.playbooks import registry

    modules = tuple(importlib.import_module(f"{__name__}.{module}") for module in NAMES)
    globals().update(MODULES=modules, REGISTRY=registry.REGISTRY)
    return globals()[name]
