"""The responder's pipeline: one delivery in, one ``Outcome`` out.

    source payload ──► Signal ──► Classification ──► Reason ──► Incident ──► pages
     (sources/*)       (frozen)    (classify.py)    (decide)   (store)     (paging.py)

1. **Convert.** ``sources.to_signals`` turns whatever Lambda or a webhook handed us into
   frozen ``Signal`` values. Input nobody recognises becomes an ``unknown`` signal with a
   reason, so it is classified, tracked and seen like everything else.
2. **Claim the delivery.** ``store.claim_delivery`` leases the delivery id (SNS MessageId,
   EventBridge id, a signed webhook body's digest). A redelivery of a completed delivery stops with
   ``Reason.DUPLICATE``; one that meets another worker's live lease raises
   ``DeliveryInProgress``, so the trigger retries it later (if that worker died, its lease
   has expired by then and the retry does the work). If anything below raises, the lease
   is released so a retry can run the delivery again: nothing is half-lost.
3. **Classify.** ``classify`` applies the severity matrix and rules (pure).
4. **Decide and apply.** ``incidents.decide`` returns a ``Reason`` (``OPENED``,
   ``ALREADY_OPEN``, ``SEVERITY_RAISED``, ``RESOLVED``, ``NO_OPEN_INCIDENT``, ``ANNOTATED``,
   ``RECORDED``, ``STALE``; ``RECOVERY_HELD`` for an alarm that recovers within minutes
   of firing and ``FLAPPING`` for a flapping alarm's state change, see
   ``decisions/flapping.py``); ``IncidentService`` applies it with conditional writes, so two
   concurrent workers never open two incidents for one key. A new incident that a silence or
   maintenance window matches opens ``silenced`` and pages nobody (``_silenced``,
   ``decisions/silences.py``).
5. **Page.** A new incident starts its severity's escalation chain; ``delivery.Escalator``
   queues the pages of every step now due in the incident's outbox and sends them, each
   result recorded on the incident. Later steps, retries and fallbacks are the scheduled
   sweep's (``Escalator.sweep``); an acknowledgement cancels whatever is still unsent.
7. **Complete.** The delivery record keeps the outcome (and, for unknown input, the raw
   payload: PHI-bearing keys dropped, clipped to fit a DynamoDB item, with the original's
   size and sha256; see ``payloads.kept``) for the dedupe window.

6. **Act.** A new incident with a playbook gets it run by the ``Executor`` inside the safety
   envelope (dry run, limits, rate limit and breaker, audit); whatever it does or fails to
   do lands on the timeline, and a failure never stops the escalation.

**The hot path.** A storm is one alarm re-firing: an open incident only counts repeats
(``bounds.repeat_floor``: open, no playbook to re-run; the full timeline shows one line for them,
each delivery keeps its record), so the full path that opened it remembers the alarm
(``respond(..., alarm=...)``, keyed by ``sns.repeat_glance``) and ``repeat`` handles its next
deliveries with one store call, ``record_repeat``: the delivery completed and the repeat counted,
nothing converted, classified, read or rewritten. The
store re-checks what the memory assumed (a resolved or raised incident, a redelivery, a live
lease) and anything it refuses goes the full path. Classifications are remembered per signal
(less its per-delivery fields) and severity config.

``simulate`` runs steps 1, 3, 4 and 5 as pure functions against an empty state, and asks
the playbook for its plan, and sends, reads and changes nothing: values the playbook would
read from AWS show as ``<label, read at run time>``, and ``playbook_reads`` lists those reads.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, NamedTuple

from chalicelib.aws import Aws
from chalicelib.config import ResponderConfig
from chalicelib.decisions import comms, context, escalation, grouping, silences
from chalicelib.decisions.classify import classify
from chalicelib.decisions.escalation import AckLinker
from chalicelib.decisions.incidents import IncidentService, NewId, Reason, decide, mark_phi_exposure, new_incident
from chalicelib.errors import DeliveryInProgress
from chalicelib.models import (
    Classification,
    Frozen,
    Incident,
    IncidentStatus,
    PageRecord,
    PageStatus,
    Severity,
    Signal,
    SignalKind,
    TimelineEntry,
)
from chalicelib.notify import render
from chalicelib.notify.channels import Transport
from chalicelib.notify.delivery import Escalator
from chalicelib.notify.paging import Pager
from chalicelib.playbooks.audit import AuditLog, JsonlAuditLog
from chalicelib.playbooks.executor import Executor
from chalicelib.playbooks.runtime import reads_of, shown
from chalicelib.sources import payloads
from chalicelib.store import Claim, IncidentStore, Repeat, bounds

UNKNOWN_KEEP_DAYS = 90  # unrecognised input waits for a human (and a new converter) longer
MEMORY_ENTRIES = 4_096  # remembered alarms and classifications per process: forgotten all at once beyond
# What differs between deliveries of one alarm and never decides its classification.
_PER_DELIVERY = frozenset({"delivery_id", "occurred_at", "signed_at", "transition", "state", "details", "links"})
_CLASSIFIED_BY = tuple(name for name in Signal.model_fields if name not in _PER_DELIVERY)


class Counted(NamedTuple):
    """An alarm whose open incident only counts repeats, and the outcome summary of one."""

    incident_id: str
    severity: int
    summary: dict[str, Any]


class Outcome(Frozen):
    delivery_id: str
    reason: Reason
    kind: str
    transition: str
    incident_key: str
    severity: int
    owner: str
    playbook: str | None
    rule: str
    incident_id: str | None = None
    pages: tuple[PageRecord, ...] = ()
    unknown_reason: str | None = None
    playbook_result: str | None = None

    def summary(self) -> dict[str, Any]:
        return {"delivery_id": self.delivery_id, "reason": self.reason.value, "kind": str(self.kind),
                "transition": self.transition, "incident_key": self.incident_key, "severity": self.severity,
                "owner": self.owner, "playbook": self.playbook, "rule": self.rule, "incident_id": self.incident_id,
                "unknown_reason": self.unknown_reason, "playbook_result": self.playbook_result,
                "pages": len(self.pages)}


class Pipeline:
    def __init__(self, store: IncidentStore, config: ResponderConfig, pager: Pager,
                 clock: Callable[[], datetime], *, lease_seconds: int = 60, keep_days: int = 14,
                 new_id: NewId | None = None, aws: Aws | None = None,
                 http: Transport | None = None, audit: AuditLog | None = None, stage: str = "local",
                 ack_link: AckLinker | None = None) -> None:
        self.store, self.config, self.pager, self.clock = store, config, pager, clock
        self.base_config = config  # routing.yaml as loaded; refresh_schedule adds the stored overrides
        self.lease_seconds, self.keep_days = lease_seconds, keep_days
        self.incidents = IncidentService(store, config, new_id)
        self.escalator = Escalator(store, self.incidents, pager, config, ack_link)
        self.escalator.on_resolved = self._release_held  # a cause the sweep resolved releases what it held
        self.escalator.on_held = self._recheck_held  # a holder that resolved without releasing it
        self.executor = Executor(store, self.incidents, config, aws or Aws(), http,
                                 audit or JsonlAuditLog(".responder/audit.jsonl"), stage,
                                 escalate_now=self.escalator.escalate_now)
        self.groups = grouping.ServiceGroups(store, self.incidents, lambda: self.config)
        self._counted: dict[Hashable, Counted] = {}
        self._classified: dict[tuple[Any, ...], Classification] = {}
        self._classified_by: object = None
        self.silences: list[silences.Silence] = []  # read with the overrides (refresh_schedule)
        self._serviced_by: object = None
        self._schedule_from: tuple[object, ...] = ()

    def classify(self, signal: Signal) -> Classification:
        """``classify``, remembered per signal (less its per-delivery fields) and severity config."""
        if (self._classified_by is not self.config.severity or self._serviced_by is not self.config.services
                or len(self._classified) >= MEMORY_ENTRIES):
            self._classified, self._classified_by = {}, self.config.severity
            self._serviced_by = self.config.services
        key = tuple(getattr(signal, name) for name in _CLASSIFIED_BY)
        found = self._classified.get(key)
        if found is None:
            found = self._classified[key] = with_service(classify(signal, self.config.severity), signal, self.config)
        return found

    def repeat(self, alarm: Hashable, delivery_id: str) -> dict[str, Any] | None:
        """The hot path: the outcome summary of a repeat of ``alarm`` counted by one store call, or
        None when the full path must run (an alarm not remembered, or the store refused to count)."""
        counted = self._counted.get(alarm)
        if counted is None:
            return None
        summary = counted.summary | {"delivery_id": delivery_id}
        answer = self.store.record_repeat(delivery_id, counted.incident_id, counted.severity, summary,
                                          self.clock(), self.keep_days)
        if answer is Repeat.COUNTED:
            return summary
        if answer is Repeat.DUPLICATE:
            return summary | {"reason": Reason.DUPLICATE.value, "incident_id": None}
        if answer is Repeat.IN_PROGRESS:
            raise DeliveryInProgress(f"delivery {delivery_id} is being processed by another worker")
        del self._counted[alarm]
        return None

    def _remember(self, alarm: Hashable, outcome: Outcome, incident: Incident | None) -> None:
        # Unknown input is never counted blind: each delivery keeps its own raw payload (``payloads.kept``).
        # Remembered from the trigger that opened the incident on: its first repeat is counted already.
        if (outcome.reason in (Reason.OPENED, Reason.ALREADY_OPEN) and incident is not None
                and outcome.playbook_result is None and outcome.kind != SignalKind.UNKNOWN
                and bounds.repeat_floor(incident) is not None):
            if len(self._counted) >= MEMORY_ENTRIES:
                self._counted = {}
            summary = outcome.summary() | {"reason": Reason.ALREADY_OPEN.value, "pages": 0}  # a repeat's outcome
            del summary["delivery_id"]
            self._counted[alarm] = Counted(incident.id, outcome.severity, summary)
        else:
            self._counted.pop(alarm, None)

    def _forget(self, incident_id: str) -> None:
        self._counted = {alarm: c for alarm, c in self._counted.items() if c.incident_id != incident_id}

    def respond(self, signal: Signal, raw: Any = None, classification: Classification | None = None,
                opened: Callable[[Incident], Incident] | None = None, alarm: Hashable | None = None) -> Outcome:
        """``classification`` when the sender decided it (a person paging on purpose); ``opened``
        changes a newly opened incident before anyone is paged (the owner they named); ``alarm``
        (``sns.repeat_glance``) is remembered when its incident only counts repeats, for ``repeat``."""
        now = self.clock()
        self.refresh_schedule()
        classification = classification or self.classify(signal)
        base = {
            "delivery_id": signal.delivery_id, "kind": signal.kind, "transition": signal.transition.value,
            "incident_key": signal.incident_key, "severity": classification.severity.value,
            "owner": classification.owner, "playbook": classification.playbook,
            "rule": classification.rule, "unknown_reason": signal.unknown_reason,
        }
        claim = self.store.claim_delivery(signal.delivery_id, now, self.lease_seconds)
        if claim is Claim.DONE:
            return Outcome(reason=Reason.DUPLICATE, **base)
        if claim is Claim.IN_PROGRESS:
            raise DeliveryInProgress(f"delivery {signal.delivery_id} is being processed by another worker")
        try:
            claimed: list[PageRecord] = []

            def opening(fresh: Incident) -> Incident:  # created with its first pages claimed
                fresh = self._silenced(signal, classification, opened(fresh) if opened else fresh, now)
                fresh = self.groups.taking_over(fresh, now)  # a late cause: its first page names its effects
                prepared, claimed[:] = self.escalator.opened(fresh, now)
                return prepared

            def resolving(closed: Incident) -> Incident:  # resolved with its notices claimed
                prepared, claimed[:] = self.escalator.advanced(closed, now)
                return prepared

            joined = (self._join_as_context(signal, classification, now)
                      or self.groups.attach(signal, classification, now))
            reason, incident = joined or self.incidents.handle(signal, classification, now, opening, resolving)
            if reason is Reason.SEVERITY_RAISED and incident is not None:
                incident = self._still_silenced(signal, classification, incident, now)
            records: tuple[PageRecord, ...] = ()
            playbook_result = None
            # page first: people before robots
            if incident is not None and reason is Reason.OPENED:
                records = tuple(self.escalator.send_claimed(incident, claimed, now))
                if incident.flap is not None:  # an alarm that recovered and fires again (decisions/flapping.py)
                    incident = self.incidents.carry_flaps(incident, now)
            elif incident is not None and reason is Reason.RESOLVED and not joined:
                records = tuple(self.escalator.send_claimed(incident, claimed, now))
            elif incident is not None and reason in (Reason.SEVERITY_RAISED, Reason.RESOLVED):
                records = tuple(self.escalator.advance(incident.id, now, incident))
            records += self._grouped(signal, classification, reason, incident, now)
            # A playbook runs for a new incident, and again when a trigger repeats after it acted
            # (the envelope then decides: a second rollback within the hour trips the breaker).
            if incident is not None and incident.playbook and (
                    reason is Reason.OPENED or (reason is Reason.ALREADY_OPEN and incident.actions_taken > 0)):
                execution = self.executor.run(incident.id, signal, now)
                playbook_result = execution.error or (
                    f"{'dry run' if execution.dry_run else 'live'}: {len(execution.results)} steps"
                    + (", escalated" if execution.escalate else ""))
                # page first, then say what was done: an update page when the playbook changed something
                done = render.playbook_summary(execution.playbook or incident.playbook, execution.dry_run,
                                               [(r.step, r.result) for r in execution.results], execution.error)
                if done:
                    self.escalator.report_playbook(incident.id, done, now)
                records += tuple(self.escalator.advance(incident.id, now))  # a raised severity pages now
            outcome = Outcome(reason=reason, incident_id=incident.id if incident else None,
                              pages=records, playbook_result=playbook_result, **base)
            kept, keep_days = outcome.summary(), self.keep_days
            if signal.kind is SignalKind.UNKNOWN and raw is not None:
                kept |= payloads.kept(raw)
                keep_days = max(keep_days, UNKNOWN_KEEP_DAYS)
            self.store.complete_delivery(signal.delivery_id, kept, now, keep_days)
            if alarm is not None:
                self._remember(alarm, outcome, incident)
            if reason is Reason.RESOLVED and incident is not None and self._counted:
                self._forget(incident.id)  # its next trigger opens a new incident
            return outcome
        except BaseException:
            self.store.release_delivery(signal.delivery_id)
            raise

    def _join_as_context(self, signal: Signal, classification: Classification,
                         now: datetime) -> tuple[Reason, Incident] | None:
        """Another open incident this signal belongs to gets it on its timeline (decisions/context.py)."""
        key, playbook = context.wanted_key(signal), context.wanted_playbook(signal)
        if not key and not playbook:
            return None
        by_key = self.store.get_open(key) if key else None
        candidates = self.store.list() if playbook and by_key is None else ()
        how, target = context.join(signal, classification.severity, by_key, candidates)
        if target is None:
            return None
        entry = TimelineEntry(at=now, delivery_id=signal.delivery_id,
                              what=f"context ({how.value}, SEV{classification.severity.value} on its own): "
                                   f"{signal.title}; not paged again")
        joined = self.incidents.update(target.id, lambda i: i.noted(
            entry, annotation_count=i.annotation_count + 1, last_seen=now))
        return Reason.ANNOTATED, joined

    def _silenced(self, signal: Signal, classification: Classification, fresh: Incident, now: datetime) -> Incident:
        """Noise control (issue 14 §1): a new incident a silence or maintenance window matches is
        recorded in the ``silenced`` state and pages nobody until the window ends."""
        verdict = silences.silenced_by(signal, classification, self.silences, self.config.routing.maintenance_windows,
                                       now, self.config.routing.zone, self.config.services)
        if verdict.reason in (silences.SilenceReason.SILENCED, silences.SilenceReason.IN_WINDOW):
            return silences.silenced(fresh, verdict, now)
        if verdict.reason is silences.SilenceReason.SEV1_NOT_SILENCED:
            return fresh.noted(TimelineEntry(at=now, what="a silence or window matches, but it does not silence "
                                                          "Sev1 (include_sev1): paged"))
        return fresh

    def _still_silenced(self, signal: Signal, classification: Classification, incident: Incident,
                        now: datetime) -> Incident:
        """A silenced incident raised to a severity its window does not silence (Sev1) pages now."""
        if incident.status is not IncidentStatus.SILENCED:
            return incident
        verdict = silences.silenced_by(signal, classification, self.silences, self.config.routing.maintenance_windows,
                                       now, self.config.routing.zone, self.config.services)
        if verdict.reason in (silences.SilenceReason.SILENCED, silences.SilenceReason.IN_WINDOW):
            return incident
        return self.incidents.update(incident.id, lambda i: silences.lifted(
            i, f"raised to SEV{i.severity.value}, which {i.silenced_by or 'the silence'} does not silence", now,
            self.config) if i.status is IncidentStatus.SILENCED else i, incident)
    def _grouped(self, signal: Signal, c: Classification, reason: Reason, incident: Incident | None,
                 now: datetime) -> tuple[PageRecord, ...]:
        """Grouping's follow-ups (decisions/grouping.py): a service's new incident is remembered
        for its next signals, and holds the effects it took over (a cause after its effects); a
        watched deployment pages (and plans its rollback) at the first alarm of its service or its
        own failure; a held incident made worse pages on its own;
        a resolved one releases what it held and still fires."""
        if incident is None or (incident.service is None and not incident.related):
            return ()
        if reason in (Reason.OPENED, Reason.WATCHING):
            self.groups.register(incident)
            if incident.took_over:
                self.groups.hold_taken(incident, now)
        elif reason in (Reason.GROUPED, Reason.INHIBITED) and incident.held_by:
            target = self.store.get(incident.held_by)
            if target is not None and target.held and grouping.watching(target, now):
                return self._release(target.id, now, f"{signal.title} during the deployment watch", signal, c.severity)
        elif reason in (Reason.ALREADY_OPEN, Reason.SEVERITY_RAISED) and incident.held and (
                incident.watch_until is not None or reason is Reason.SEVERITY_RAISED):
            return self._release(incident.id, now, signal.title, signal if incident.watch_until else None, c.severity)
        elif reason is Reason.RESOLVED and incident.related:
            return self._release_held(incident, now)
        return ()

    def _release(self, incident_id: str, now: datetime, why: str, evidence: Signal | None,
                 severity: Severity | None) -> tuple[PageRecord, ...]:
        """A held incident pages on its own; a watched deployment's playbook plans the rollback."""
        changed = self.incidents.update(incident_id,
                                        lambda i: grouping.released(i, why, now, self.config, severity))
        self.groups.register(changed)  # paging on its own: a later cause of its service may take it over
        records = tuple(self.escalator.advance(incident_id, now, changed))
        if evidence is not None and changed.playbook:
            self.executor.run(incident_id, evidence, now)
            records += tuple(self.escalator.advance(incident_id, now))
        return records

    def _release_held(self, cause: Incident, now: datetime) -> tuple[PageRecord, ...]:
        """What ``cause`` held and is still open pages on its own now (Alertmanager: the inhibition ends)."""
        records: tuple[PageRecord, ...] = ()
        for member_id, _ in cause.related:
            member = self.store.get(member_id)
            if member is None or not member.is_open or member.held_by != cause.id:
                continue
            records += self._release_from(member, cause.id, now)
        return records

    def _release_from(self, member: Incident, cause_id: str, now: datetime) -> tuple[PageRecord, ...]:
        if member.kind in grouping.ONE_SHOT_KINDS:  # nothing will say it stopped: it ends with its cause
            self.incidents.resolve(member.id, "responder", now, note=f"resolved with its cause {cause_id}")
            return ()
        return self._release(member.id, now, f"{cause_id} resolved and this still fires", None, None)

    def _recheck_held(self, member: Incident, now: datetime) -> tuple[PageRecord, ...]:
        """The sweep's look at a held incident's holder: gone or resolved (its release lost), this
        pages on its own; still open, it is looked at again later (and whatever else is due goes out)."""
        assert member.held_by is not None
        holder = self.store.get(member.held_by)
        if holder is None or not holder.is_open:
            return self._release_from(member, member.held_by, now)
        checked = self.incidents.update(member.id, lambda i: i.model_copy(update={"held_checked_at": now}), member)
        return tuple(self.escalator.advance(member.id, now, checked))

    def refresh_schedule(self) -> None:
        """Overrides made through the API or CLI (``chalicelib.overrides``) join routing.yaml's, and the
        silences (``chalicelib.silences``, kept in the same document) are known: read by every entry
        point that may page (one small document, at most once a minute per process:
        ``overrides.cached_doc``), so a change made on one Lambda holds on every other within a minute."""
        from chalicelib import overrides
        from chalicelib import silences as stored_silences

        doc = overrides.cached_doc(self.store, self.clock())  # one document: the overrides and the silences
        self.silences = stored_silences.parsed(doc)
        found = overrides.parsed(doc)
        if self._schedule_from == (found, self.base_config):
            return  # the same overrides on the same routing: the config is built already
        self._schedule_from = (found, self.base_config)
        config = overrides.with_stored(self.base_config, found)
        self.config = self.incidents.config = self.escalator.config = self.executor.config = config

    def acknowledge(self, incident_id: str, by: str, source: str = "responder",
                    pagerduty_key: str | None = None) -> Incident:
        """Acknowledge (idempotent; 409 on a resolved incident); whoever was paged is told, on each
        channel (PagerDuty: every alert we opened, less ``pagerduty_key`` when it told us)."""
        now = self.clock()
        claimed: list[PageRecord] = []

        def claiming(acked: Incident) -> Incident:  # the notices leased in the acknowledging write
            prepared, claimed[:] = self.escalator.claim_now(acked, now)
            return prepared

        incident = self.incidents.acknowledge(incident_id, by, now, source, pagerduty_key, then=claiming)
        if claimed:
            return self.escalator.send_and_record(incident, claimed, now)[1]
        if any(p.status is PageStatus.PENDING for p in incident.pages):
            self.escalator.deliver(incident_id, now)
            incident = self.store.get(incident_id) or incident
        return incident

    def resolve(self, incident_id: str, by: str, source: str = "responder", note: str | None = None,
                pagerduty_key: str | None = None) -> Incident:
        """Resolve by hand; whoever was paged hears it once, however often this is called."""
        now = self.clock()
        incident, changed = self.incidents.resolve(incident_id, by, now, source, note, pagerduty_key)
        if changed:
            self._forget(incident_id)
            self.escalator.deliver(incident_id, now)
            self._release_held(incident, now)
            incident = self.store.get(incident_id) or incident
        return incident

    def mark_phi_exposure(self, incident_id: str, by: str) -> Incident:
        now = self.clock()
        self.incidents.update(incident_id, lambda i: mark_phi_exposure(i, by, now, self.config))
        self.escalator.advance(incident_id, now)  # a raise to Sev1 pages the founders now
        return self.store.get(incident_id) or self.incidents.update(incident_id, lambda i: i)

    def complete_duty(self, incident_id: str, kind: str, by: str) -> Incident:
        now = self.clock()
        return self.incidents.update(incident_id, lambda i: comms.complete(i, kind, by, now))

    def add_note(self, incident_id: str, by: str, text: str) -> Incident:
        now = self.clock()
        return self.incidents.add_note(incident_id, by, text, now)

    def sweep(self) -> dict[str, Any]:
        """The scheduled sweep: escalation steps, page retries and fallbacks, watched actions."""
        self.refresh_schedule()
        return self.escalator.sweep(self.clock(), also=self.executor.verify, clock=self.clock)


def with_service(c: Classification, signal: Signal, config: ResponderConfig) -> Classification:
    """``c`` naming the service ``signal``'s resources belong to (config/services.yaml), if any."""
    service = grouping.service_of(signal, config.services)
    return c.model_copy(update={"service": service}) if service else c


class Plan(Frozen):
    """What ``simulate`` prints: the decisions for one signal, nothing executed."""

    signal: Signal
    severity: int
    owner: str
    response_minutes: int | None
    playbook: str | None
    rule: str
    transition: str
    incident_key: str
    reason: Reason
    pages: tuple[PageRecord, ...]
    escalation: tuple[dict[str, Any], ...] = ()
    playbook_steps: tuple[dict[str, Any], ...] = ()
    playbook_reads: tuple[str, ...] = ()  # what the plan would read at run time (nothing is read now)
    service: str | None = None  # config/services.yaml: grouping and inhibition are not simulated


def simulate(signal: Signal, config: ResponderConfig, now: datetime, current: Incident | None = None,
             executor: Executor | None = None) -> Plan:
    """Steps 3-5 as pure functions: the plan for ``signal`` given the open incident (if any)."""
    c = with_service(classify(signal, config.severity), signal, config)
    reason = decide(signal, c, current)
    pages: list[PageRecord] = []
    chain: list[dict[str, Any]] = []
    if reason is Reason.OPENED:
        incident = new_incident("inc-simulated", signal, c, now, config)
        assert incident.escalation is not None
        for index, step in enumerate(escalation.chain_for(c.severity, config).steps):
            due = escalation.step_due_at(incident.escalation, index, config)
            chain.append({"step": index + 1, "role": step.role, "at": due.isoformat(),
                          "unless": "acknowledged first" if index else None})
            if due <= now:
                pages += escalation.step_pages(incident, index, config, now)
    planned: list[dict[str, Any]] = []
    reads: list[str] = []
    if reason is Reason.OPENED and c.playbook and executor is not None:
        try:
            _, plan = executor.plan(new_incident("inc-simulated", signal, c, now, config), signal, now)
            dry = config.playbooks.dry_run_for(c.playbook, executor.stage)
            planned, reads = [shown(s, dry) for s in plan], reads_of(plan)
        except Exception as exc:  # noqa: BLE001 - a simulation reports the failure, like the executor would
            planned = [{"type": "error", "text": f"the playbook could not plan: {exc}"}]
    return Plan(signal=signal, severity=c.severity.value, owner=c.owner,
                response_minutes=c.response_minutes, playbook=c.playbook, rule=c.rule,
                transition=signal.transition.value, incident_key=signal.incident_key,
                reason=reason, pages=tuple(pages), escalation=tuple(chain), playbook_steps=tuple(planned),
                playbook_reads=tuple(reads), service=c.service)

