"""On-call operations a person runs: page on purpose, escalate now, reassign, snooze, change severity.

The small service between the API / CLI and the pipeline. It checks the request
(``InvalidRequest`` naming the field), applies a pure decision of ``decisions.actions`` through
the store's conditional update (``IncidentService.update``: a lost race re-reads and decides
again, so no change is lost) and sends what that queued at once (``Escalator.advance``). A page
on purpose is a ``manual`` signal through ``Pipeline.respond``, like any other: classified by
the severity given (the owner named, if any, instead of the matrix's), deduplicated by its key,
escalated, and counted in the monthly report.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chalicelib.decisions import actions
from chalicelib.decisions.actions import Reason
from chalicelib.errors import ConflictError, InvalidRequest
from chalicelib.models import Classification, Incident
from chalicelib.pipeline import Pipeline
from chalicelib.sources import manual


class Refused(ConflictError):
    """An action that makes no sense for the incident as it is (409), and the field to blame."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class Operations:
    def __init__(self, pipeline: Pipeline) -> None:
        pipeline.refresh_schedule()  # a reassignment to a role pages whoever holds it now, overrides included
        self.pipeline, self.config = pipeline, pipeline.config

    def page(self, *, severity: object, title: object, by: str, role: object = None, person: object = None,
             key: object = None) -> tuple[str, Incident | None]:
        """Page on purpose; the pipeline's reason (``OPENED``, ``ALREADY_OPEN`` for a key with an
        open incident, ``SEVERITY_RAISED``, ``DUPLICATE``) and the incident."""
        chosen = actions.severity_of(severity)
        if role is not None and person is not None:
            raise InvalidRequest("person", "give a role or a person, not both")
        target = (actions.target_of(role, self.config, "role", people=False) if role is not None
                  else actions.target_of(person, self.config, "person", roles=False) if person is not None else None)
        signal = manual.to_signal(manual.title_of(title), manual.key_of(key), by, now := self.pipeline.clock(),
                                  asked=f"SEV{chosen.value} {target.name if target else ''}")
        row = self.config.severity.matrix[chosen]
        classification = Classification(severity=chosen, owner=target.name if target else row.owner,
                                         response_minutes=row.response_minutes, playbook=None,
                                         rule=f"manual page by {by}")
        opened = None
        if target is not None:
            def opened(incident: Incident) -> Incident:
                return actions.reassigned(incident, target, by, now, self.config, self.pipeline.escalator.ack_link,
                                          opening=True)
        outcome = self.pipeline.respond(signal, classification=classification, opened=opened)
        store = self.pipeline.store
        incident = store.get(outcome.incident_id) if outcome.incident_id else store.get_open(signal.incident_key)
        return outcome.reason.value, incident

    def escalate(self, incident_id: str, by: str) -> tuple[Reason, Incident]:
        now = self.pipeline.clock()
        return self._act(incident_id, "escalate", now, lambda i: actions.decide_escalate(i, self.config),
                         lambda i: actions.escalated(i, by, now, self.config, self.pipeline.escalator.ack_link))

    def reassign(self, incident_id: str, to: object, by: str) -> tuple[Reason, Incident]:
        now, target = self.pipeline.clock(), actions.target_of(to, self.config)
        return self._act(incident_id, "reassign", now, lambda i: actions.decide_reassign(i, target),
                         lambda i: actions.reassigned(i, target, by, now, self.config,
                                                      self.pipeline.escalator.ack_link))

    def snooze(self, incident_id: str, until: object, by: str) -> tuple[Reason, Incident]:
        now = self.pipeline.clock()
        end = actions.until_of(until, now)
        return self._act(incident_id, "snooze", now, lambda i: actions.decide_snooze(i, end, now),
                         lambda i: actions.snoozed(i, end, by, now))

    def set_severity(self, incident_id: str, severity: object, by: str) -> tuple[Reason, Incident]:
        now, chosen = self.pipeline.clock(), actions.severity_of(severity)
        return self._act(incident_id, "change", now, lambda i: actions.decide_severity(i, chosen),
                         lambda i: actions.severity_changed(i, chosen, by, now, self.config))

    def _act(self, incident_id: str, action: str, now: datetime, decide: Callable[[Incident], Reason],
             apply: Callable[[Incident], Incident]) -> tuple[Reason, Incident]:
        decided: list[Reason] = []

        def change(incident: Incident) -> Incident:
            decided[:] = [reason := decide(incident)]
            if reason in actions.REFUSED:
                raise Refused(actions.refusal(reason, incident, action),
                              "until" if reason is Reason.IN_THE_PAST else "status")
            return incident if reason in actions.UNCHANGED else apply(incident)

        incident = self.pipeline.incidents.update(incident_id, change)
        if decided[0] in actions.UNCHANGED:
            return decided[0], incident
        self.pipeline.escalator.advance(incident_id, now)  # what it queued goes out now
        return decided[0], self.pipeline.store.get(incident_id) or incident
