"""Context, not a second page: a signal that belongs to another open incident joins it.

Some sources report what another incident is already about: AWS Health's "Bedrock is
impaired" while the AI provider outage incident is open (runbook §5.3), an ECS task stopped
for failed health checks while its service's deployment incident is open (the rollback
watch, §1-2). Such a signal names where it belongs with one of two facts:

- ``joins_key``: the incident key it belongs to (the ECS service's deployment key);
- ``joins_playbook``: any open incident running that playbook (provider incidents are keyed
  by the alarm that opened them, which the Health event cannot know).

When one is open, the signal is added to its timeline as context and nobody is paged again;
otherwise the signal opens (or joins) its own incident as usual. Only an incident at least as
severe as the signal takes it as context: joining a Sev4 would silence a Sev2 (nobody paged for
it, the incident not raised), so a more severe signal pages on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from chalicelib.models import Incident, IncidentStatus, Severity, Signal, Transition


class Join(StrEnum):
    BY_KEY = "by_key"                # the incident named by joins_key is open
    BY_PLAYBOOK = "by_playbook"      # an open incident runs the playbook named by joins_playbook
    OWN_INCIDENT = "own_incident"    # nothing to join: the signal's own key decides


def wanted_key(signal: Signal) -> str:
    value = signal.fact("joins_key")
    return value if isinstance(value, str) and signal.transition is Transition.TRIGGER else ""


def wanted_playbook(signal: Signal) -> str:
    value = signal.fact("joins_playbook")
    return value if isinstance(value, str) and signal.transition is Transition.TRIGGER else ""


def join(signal: Signal, severity: Severity, by_key: Incident | None,
         candidates: Iterable[Incident]) -> tuple[Join, Incident | None]:
    """Which open incident ``signal`` (classified ``severity``) joins as context: ``by_key`` is the
    open incident of its ``joins_key`` (if any), ``candidates`` the incidents that may run its
    ``joins_playbook``. Of several, the most recently opened: it is the one people are looking at."""
    def takes(incident: Incident) -> bool:
        return (incident.status is not IncidentStatus.RESOLVED and incident.key != signal.incident_key
                and incident.severity.value <= severity.value)

    if by_key is not None and takes(by_key):
        return Join.BY_KEY, by_key
    playbook = wanted_playbook(signal)
    if playbook:
        running = [i for i in candidates if i.playbook == playbook and takes(i)]
        if running:
            return Join.BY_PLAYBOOK, max(running, key=lambda i: (i.opened_at, i.id))
    return Join.OWN_INCIDENT, None
