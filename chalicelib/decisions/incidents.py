"""Incident decisions (pure) and the service that applies them to a store.

``decide`` answers, for one signal and the incident currently open for its key, what
should happen, as a ``Reason``. ``IncidentService`` applies that decision with the
store's conditional writes, re-reading and deciding again when it loses a race.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from chalicelib.config import ResponderConfig
from chalicelib.decisions import comms, escalation, flapping
from chalicelib.errors import ConflictError, IncidentNotFound, InvalidRequest
from chalicelib.models import (
    Classification,
    Incident,
    IncidentStatus,
    Severity,
    Signal,
    TimelineEntry,
    Transition,
)
from chalicelib.store import IncidentStore
from chalicelib.store.retry import Pause, backoff, retried

# A noisy alarm re-fires for hours (or flaps through INSUFFICIENT_DATA): its repeats are only
# counted (``count``, ``last_seen``; one line on the full timeline, ``store.full_timeline``), and
# its timeline keeps the first informational signals and counts the rest.
MAX_ANNOTATION_ENTRIES = 10
# Notes people write: each at most this long, and at most this many per incident.
MAX_NOTE_CHARS = 4_000
MAX_NOTES = 200


class Reason(StrEnum):
    DUPLICATE = "DUPLICATE"                # this delivery was processed before
    OPENED = "OPENED"                      # a new incident, pages go out
    ALREADY_OPEN = "ALREADY_OPEN"          # counted on the open incident, nobody paged again
    SEVERITY_RAISED = "SEVERITY_RAISED"    # open incident got worse: the new owner is paged
    RESOLVED = "RESOLVED"                  # recovery closed it, whoever was paged is told
    NO_OPEN_INCIDENT = "NO_OPEN_INCIDENT"  # a recovery with nothing open: recorded only
    ANNOTATED = "ANNOTATED"                # informational signal added to the open incident
    RECORDED = "RECORDED"                  # informational signal, nothing open: recorded only
    STALE = "STALE"                        # its sender dates it before the incident last opened or
                                           # resolved (a replay): on the timeline, nothing changed
    FLAPPING = "FLAPPING"                  # a state change of a flapping alarm: counted, nobody paged,
                                           # a recovery held until it stays quiet (decisions/flapping.py)
    RECOVERY_HELD = "RECOVERY_HELD"        # an alarm recovered within minutes of firing: held open and
                                           # quiet, resolved once quiet for the stable period (ditto)
    GROUPED = "GROUPED"                    # its own incident, held: joined its service's open incident
    INHIBITED = "INHIBITED"                # its own incident, held: an open cause of its service explains it
    WATCHING = "WATCHING"                  # a deployment in progress: its service is watched, nobody paged


def is_stale(sent_at: datetime | None, incident: Incident | None, *, tie_is_stale: bool = False) -> bool:
    """Does the sender's own time put an event before ``incident`` last opened or resolved?

    Ties are fresh: a human re-opening an issue in Sentry sends the same ``lastSeen`` as the
    resolve before it. Except where a tie cannot be news (``tie_is_stale``): Sentry creates an
    issue once, so a ``created`` body no newer than the key's last change is a replay even after
    its digest has been forgotten. Incidents stored before ``changed_at`` existed never call
    anything stale."""
    if sent_at is None or incident is None or incident.changed_at is None:
        return False
    return sent_at <= incident.changed_at if tie_is_stale else sent_at < incident.changed_at


def decide(signal: Signal, classification: Classification, current: Incident | None,
           latest: Incident | None = None) -> Reason:
    """What one signal does to the incident open for its key (``current``, or None); ``latest`` is
    the key's most recent incident when none is open (a replay is judged against it)."""
    if is_stale(signal.signed_at, current or latest,
                tie_is_stale=signal.fact("sentry_action") == "created" and signal.transition is Transition.TRIGGER):
        return Reason.STALE
    if signal.transition is Transition.TRIGGER:
        if current is None:
            return Reason.OPENED
        if classification.severity < current.severity:
            return Reason.SEVERITY_RAISED
        return Reason.ALREADY_OPEN
    if signal.transition is Transition.RESOLVE:
        return Reason.RESOLVED if current is not None else Reason.NO_OPEN_INCIDENT
    return Reason.ANNOTATED if current is not None else Reason.RECORDED


def new_incident(incident_id: str, signal: Signal, c: Classification, now: datetime,
                 config: ResponderConfig) -> Incident:
    entry = TimelineEntry(at=now, delivery_id=signal.delivery_id,
                          what=f"opened: SEV{c.severity.value} by {c.rule}, owner {c.owner}"
                               + (f", playbook {c.playbook}" if c.playbook else ""))
    incident = Incident(
        id=incident_id, key=signal.incident_key, kind=signal.kind, title=signal.title,
        resource=signal.resource, severity=c.severity, owner=c.owner, playbook=c.playbook,
        rule=c.rule, opened_at=now, last_seen=now, links=signal.links, timeline=(entry,), service=c.service,
        facts=page_facts(signal),
        escalation=escalation.start(c.severity, config, now), changed_at=signal.signed_at or now,
        flap=flapping.opened(signal.kind, now, config.routing.flapping),
    )
    incident = incident.model_copy(update={"duties": tuple(comms.opening_duties(incident, config))})
    return incident.with_pages(*comms.founder_update(incident, "opened", config, now))


def page_facts(signal: Signal) -> tuple[tuple[str, str], ...]:
    """What a page may say of the opening signal (notify/render.py): where it happened and the
    facts its converter declared, as text; never its description or details."""
    where = tuple((name, value) for name, value in (("account", signal.account), ("region", signal.region)) if value)
    return where + tuple((name, str(value)) for name, value in signal.facts if not name.startswith("joins_"))


def pagerduty_channels(config: ResponderConfig) -> frozenset[str]:
    return frozenset(name for name, ch in config.routing.channels.items() if ch.type == "pagerduty")


def close(incident: Incident, by: str, what: str, now: datetime, config: ResponderConfig,
          source: str = "responder", pagerduty_key: str | None = None,
          changed_at: datetime | None = None) -> Incident:
    """Resolved: unsent pages are cancelled and everyone who was paged gets a resolve notice
    (except the PagerDuty alert ``pagerduty_key`` the resolution came from: no echo).
    ``changed_at`` is the sender's own time of a resolving signal (ours by default)."""
    closed = escalation.cancel_unsent(incident, now, "incident resolved").noted(
        TimelineEntry(at=now, by=by, what=what), status=IncidentStatus.RESOLVED, resolved_at=now, resolved_by=by,
        changed_at=changed_at or now)
    if incident.held and not ever_paged(incident):  # it never paged (decisions/grouping.py): nobody to tell
        return closed
    if not incident.held:  # a held one's cause owes the duties
        closed = closed.model_copy(update={"duties": (*closed.duties, *comms.closing_duties(closed, config, now))})
    return closed.with_pages(*escalation.resolve_pages(closed, now, pagerduty_channels(config), by,
                                                       _heard_from(source, pagerduty_key, incident)),
                             *comms.founder_update(closed, "resolved", config, now))


def ever_paged(incident: Incident) -> bool:
    """Did a page calling for action reach anyone (an effect a late cause took over had paged)?"""
    state = incident.escalation
    return bool(state and state.reached) or any(p.kind.calls_for_action and p.delivered for p in incident.pages)


def _heard_from(source: str, pagerduty_key: str | None, incident: Incident) -> str | None:
    # From PagerDuty without a key: the incident id, the key of pages queued before per-person keys.
    return (pagerduty_key or incident.id) if source == "pagerduty" else None


def raise_severity(incident: Incident, severity: Severity, why: str, now: datetime,
                   config: ResponderConfig) -> Incident:
    """A worse severity: the matrix's owner for it, and its chain started afresh from now.

    Raising to the same severity restarts its chain (a human is needed again). A raise to Sev1
    of an acknowledged incident re-opens it: the acknowledgement was for a lesser problem, so
    the Sev1 chain pages (and repeats) until someone acknowledges again; the first
    acknowledgement stays on the timeline."""
    restarts = escalation.restart_of(incident.escalation) + 1 if incident.escalation else 1
    owner = config.severity.matrix[severity].owner
    reopen = severity is Severity.SEV1 and incident.status is IncidentStatus.ACKNOWLEDGED
    raised = incident.noted(
        TimelineEntry(at=now, what=f"severity raised SEV{incident.severity.value} → SEV{severity.value} "
                                   f"{why}, owner {owner}"
                                   + (f"; re-opened (was acknowledged by {incident.acknowledged_by})"
                                      if reopen else "")),
        severity=severity, owner=owner,
        escalation=escalation.start(severity, config, now, restart=restarts, previous=incident.escalation),
        # a re-open is a state change: an acknowledgement dated before it is a replay (is_stale)
        **({"status": IncidentStatus.OPEN, "changed_at": now} if reopen else {}))
    return raised.with_pages(*comms.founder_update(raised, f"raised to sev{severity.value}", config, now))


def apply(reason: Reason, current: Incident, signal: Signal, c: Classification, now: datetime,
          config: ResponderConfig) -> Incident:
    """The open incident after ``reason`` (all reasons except OPENED and the no-op ones)."""
    seen = {"last_seen": now, "count": current.count + 1}
    if reason is Reason.ALREADY_OPEN:  # counted, as ``record_repeat`` counts it: no timeline entry
        return current.model_copy(update=seen)
    if reason is Reason.SEVERITY_RAISED:
        raised = raise_severity(current, c.severity, f"by {c.rule}", now, config)
        return raised.model_copy(update={"playbook": current.playbook or c.playbook, **seen})
    if reason is Reason.RESOLVED:
        return close(current, "signal", f"resolved by signal: {signal.title}", now, config,
                     changed_at=signal.signed_at)
    if reason is Reason.STALE:
        return noted_stale(current, signal.title, signal.signed_at, signal.delivery_id, now)
    if reason is Reason.ANNOTATED:
        counted = {"annotation_count": current.annotation_count + 1}
        if current.annotation_count >= MAX_ANNOTATION_ENTRIES:
            return current.model_copy(update=counted)
        return current.noted(TimelineEntry(at=now, delivery_id=signal.delivery_id,
                                           what=f"noted: {signal.title}"), **counted)
    raise ValueError(f"apply() does not handle {reason}")


MAX_FLAP_ENTRIES = 20  # a flapping alarm's first state changes are on the timeline; the rest are counted


def flap_decision(reason: Reason, current: Incident | None, signal: Signal, now: datetime,
                  config: ResponderConfig) -> tuple[Reason, Incident | None]:
    """A state change of an alarm incident, counted (decisions/flapping.py). A quick recovery is
    ``RECOVERY_HELD``: the incident stays open and quiet until the sweep resolves it. Once the alarm is
    flapping a change is ``FLAPPING``: on the timeline with its count, nobody paged, a recovery held.
    A trigger ends a quiet period (nobody paged again); a worse severity still raises the incident."""
    settings = config.routing.flapping
    if (settings is None and current is not None and current.flap is not None and current.flap.quiet_since is not None
            and reason in (Reason.ALREADY_OPEN, Reason.SEVERITY_RAISED)):
        # held under a config that had ``flapping:``: a trigger still ends the hold, so the chain goes on
        return reason, current.model_copy(update={"flap": current.flap.model_copy(
            update={"quiet_since": None, "last": Transition.TRIGGER})})
    if (current is None or current.flap is None or settings is None
            or reason not in (Reason.ALREADY_OPEN, Reason.RESOLVED, Reason.SEVERITY_RAISED)):
        return reason, current
    if current.flap.last is signal.transition:  # the same state again: not a change
        if reason is Reason.RESOLVED and current.flap.quiet_since is not None:  # still held
            return (Reason.FLAPPING if current.flap.since else Reason.RECOVERY_HELD,
                    current.model_copy(update={"last_seen": now}))
        return reason, current
    flap = flapping.changed(current.flap, now, settings).model_copy(update={"last": signal.transition})
    verdict = flapping.on_change(flap, now, settings, current.kind)
    recovered = signal.transition is Transition.RESOLVE
    if reason is Reason.SEVERITY_RAISED or verdict is flapping.FlapReason.NOT_FLAPPING:
        unheld = current.model_copy(update={"flap": flap.model_copy(update={"quiet_since": None})})
        if current.flap.quiet_since is None or recovered:
            return reason, unheld
        quiet = _minutes(now - current.flap.quiet_since)
        return reason, unheld.noted(TimelineEntry(
            at=now, delivery_id=signal.delivery_id,
            what=f"fired again {quiet} after recovering (state change #{flap.count}): the held recovery "
                 f"is void, nobody paged again: {signal.title}"))
    if verdict is flapping.FlapReason.HELD and (current.held or current.status is IncidentStatus.SILENCED):
        # nobody is being paged for it (held under a cause, or silenced): a quick recovery resolves at
        # once, so a recovered effect never pages on its own after its cause resolves, nor a recovered
        # silenced alarm when its window ends (an effect taken over after paging still gets its notice)
        return reason, current.model_copy(update={"flap": flap})
    flap = flap.model_copy(update={"quiet_since": now if recovered else None})
    if verdict is flapping.FlapReason.HELD:
        fired = _minutes(now - current.flap.changes[-1]) if current.flap.changes else "minutes"
        return Reason.RECOVERY_HELD, current.noted(TimelineEntry(
            at=now, delivery_id=signal.delivery_id,
            what=f"recovered {fired} after firing (state change #{flap.count}): held, resolves after "
                 f"{settings.stable_minutes} quiet minutes unless it fires again: {signal.title}"),
            flap=flap, last_seen=now)
    flap = flap.model_copy(update={"since": flap.since or now})
    seen = {"flap": flap, "last_seen": now, "count": current.count + (signal.transition is Transition.TRIGGER)}
    if flap.count > MAX_FLAP_ENTRIES and verdict is flapping.FlapReason.FLAPPING:
        return Reason.FLAPPING, current.model_copy(update=seen)
    started = "flapping from now, " if verdict is flapping.FlapReason.STARTED else "flapping, "
    then = (f"resolves after {settings.stable_minutes} quiet minutes unless it fires again" if recovered
            else "nobody paged again")
    what = (f"{started}state change #{flap.count} ({len(flap.changes)} in {settings.minutes} min): "
            f"{flapping.quiet_label(signal.transition)}: {signal.title}; {then}")
    return Reason.FLAPPING, current.noted(TimelineEntry(at=now, delivery_id=signal.delivery_id, what=what), **seen)


def _minutes(span: timedelta) -> str:
    seconds = max(0, int(span.total_seconds()))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


def settled(incident: Incident, config: ResponderConfig, now: datetime) -> Incident:
    """The sweep's part of flapping: a held recovery resolved once quiet for the stable period (the
    same object otherwise)."""
    settings = config.routing.flapping
    if settings is None and incident.recovery_held:
        # held under a config that had ``flapping:``; nothing holds it now: it recovered, resolve it
        return close(incident, "responder", "resolved: it had recovered (its recovery was held for flapping, "
                                            "which the config no longer sets)", now, config)
    if settings is None or flapping.stable(incident, now, settings) is not flapping.StableReason.STABLE:
        return incident
    assert incident.flap is not None
    after = "flapping" if incident.flap.since is not None else "recovering"
    return close(incident, "responder", f"resolved: quiet for {settings.stable_minutes} minutes after {after} "
                                        f"({incident.flap.count} state changes)", now, config)


def noted_stale(incident: Incident, what: str, sent_at: datetime | None, delivery_id: str | None,
                now: datetime) -> Incident:
    """A stale event on the timeline, and nothing else changed."""
    when = f"dated {sent_at:%Y-%m-%d %H:%M:%S}" if sent_at else "undated"
    before = f", before the last change at {incident.changed_at:%Y-%m-%d %H:%M:%S}" if incident.changed_at else ""
    return incident.noted(TimelineEntry(at=now, delivery_id=delivery_id,
                                        what=f"stale, changed nothing: {what} ({when}{before})"))


NewId = Callable[[Signal, datetime], str]


def random_incident_id(signal: Signal, now: datetime) -> str:
    """Production ids: random, so no two incidents can share one whatever their timing."""
    return f"inc-{uuid.uuid4().hex[:12]}"


def derived_incident_id(signal: Signal, now: datetime) -> str:
    """Ids for a replay with a fixed clock: the same input gives the same ids, run after run.

    Derived from what opened the incident: its key, the opening time and the delivery. A key
    holds one open incident at a time and each delivery is processed once, so two incidents
    cannot share all three.
    """
    basis = "\n".join((signal.incident_key, now.isoformat(), signal.delivery_id))
    return f"inc-{hashlib.sha256(basis.encode()).hexdigest()[:12]}"


class IncidentService:
    """Applies decisions to the store; the only writer of incidents."""

    def __init__(self, store: IncidentStore, config: ResponderConfig, new_id: NewId | None = None,
                 pause: Pause = backoff) -> None:
        self.store, self.config = store, config
        self.new_id = new_id or random_incident_id
        self.pause = pause

    def _stamped(self, incident: Incident) -> Incident:
        """Every write records when the sweep must next look at the incident."""
        return incident.model_copy(update={"next_action_at": escalation.next_action_at(incident, self.config)})

    def handle(self, signal: Signal, c: Classification, now: datetime,
               opened: Callable[[Incident], Incident] | None = None,
               resolved: Callable[[Incident], Incident] | None = None) -> tuple[Reason, Incident | None]:
        """``opened`` changes a new incident before it is stored (the owner a person named is paged
        first; its first pages queued and claimed): in the same write, so no sweep can page the
        chain's first step meanwhile, and its first pages go out without another write.
        ``resolved`` does the same for a resolving write (its notices claimed in it)."""
        def attempt() -> tuple[Reason, Incident | None]:
            current = self.store.get_open(signal.incident_key)
            # Only a signal dated by its sender can be stale: only then is the key's last incident read.
            latest = self._latest(signal.incident_key) if current is None and signal.signed_at else None
            reason, current = flap_decision(decide(signal, c, current, latest), current, signal, now, self.config)
            if reason in (Reason.FLAPPING, Reason.RECOVERY_HELD) and current is not None:
                return reason, self.store.save(self._stamped(current))
            if reason is Reason.OPENED:
                fresh = new_incident(self.new_id(signal, now), signal, c, now, self.config)
                created = self.store.create(self._stamped(opened(fresh) if opened else fresh))
                if created is None:  # another worker opened it first: decide again against theirs
                    raise ConflictError(f"incident key {signal.incident_key} was opened meanwhile")
                if signal.signed_at is not None:
                    self._remember_latest(created)
                return reason, created
            target = current or (latest if reason is Reason.STALE else None)
            if target is None:
                return reason, None
            changed = apply(reason, target, signal, c, now, self.config)
            if reason is Reason.RESOLVED and resolved is not None:
                changed = resolved(changed)
            saved = self.store.save(self._stamped(changed))
            if reason is Reason.RESOLVED:
                self._hand_on_flaps(saved, now)
            return reason, saved
        return retried(attempt, what=f"incident key {signal.incident_key}", pause=self.pause)

    def _hand_on_flaps(self, resolved: Incident, now: datetime) -> None:
        """An alarm that fired and recovered within the flapping window leaves its changes for the
        key's next incident (``carry_flaps``): one small document, written only then."""
        changes = flapping.worth_carrying(resolved.flap, now, self.config.routing.flapping)
        if not changes:
            return
        key = f"flaps:{resolved.key}"
        try:
            retried(lambda: self.store.put_doc(key, {"incident_id": resolved.id, "changes": [
                t.isoformat() for t in changes]}, self.store.get_doc(key)[1]), what=key, pause=self.pause)
        except ConflictError:
            pass  # another worker handed on the same key's changes meanwhile: theirs are as recent

    def carry_flaps(self, incident: Incident, now: datetime) -> Incident:
        """A new alarm incident joins the changes its key's previous incident handed on: an alarm
        that recovered and fires again within M minutes is flapping from now (read after its
        first page went out: the flapping decision holds its next recovery, never this page)."""
        settings = self.config.routing.flapping
        if settings is None or incident.flap is None:
            return incident
        doc, _ = self.store.get_doc(f"flaps:{incident.key}")
        earlier = tuple(datetime.fromisoformat(t) for t in (doc or {}).get("changes", ()))
        joined = flapping.carried(incident.flap, earlier, now, settings)
        if joined == incident.flap:
            return incident
        started = flapping.on_change(joined, now, settings, incident.kind) is flapping.FlapReason.STARTED
        previous = str((doc or {}).get("incident_id", "?"))

        def join(current: Incident) -> Incident:
            if current.flap is None or not current.is_open:
                return current
            if not started:
                return current.model_copy(update={"flap": joined})
            return current.noted(TimelineEntry(
                at=now, what=f"flapping from now: {len(joined.changes)} state changes in {settings.minutes} min "
                             f"with the previous incident {previous}; its recoveries wait "
                             f"{settings.stable_minutes} quiet minutes"),
                flap=joined.model_copy(update={"since": now}))
        return self.update(incident.id, join)

    def _latest(self, key: str) -> Incident | None:
        """The most recent incident of ``key``, open or resolved (for keys of dated signals)."""
        doc, _ = self.store.get_doc(f"latest-incident:{key}")
        return self.store.get(str(doc["incident_id"])) if doc and doc.get("incident_id") else None

    def _remember_latest(self, incident: Incident) -> None:
        key = f"latest-incident:{incident.key}"

        def attempt() -> None:
            doc, version = self.store.get_doc(key)
            if doc and doc.get("opened_at", "") > incident.opened_at.isoformat():
                return  # a newer incident of this key is remembered already
            self.store.put_doc(key, {"incident_id": incident.id, "opened_at": incident.opened_at.isoformat()}, version)
        try:
            retried(attempt, what=key, pause=self.pause)
        except ConflictError:
            pass  # the incident is open either way; only a later replay's staleness check loses its anchor

    def update(self, incident_id: str, change: Callable[[Incident], Incident],
               current: Incident | None = None) -> Incident:
        """Re-read, apply ``change`` and save, until no one else wrote in between. A caller holding the
        incident as it last wrote it passes it as ``current``: the first attempt skips the read (the
        write is conditional on its version either way)."""
        held = [current]

        def attempt() -> Incident:
            current = held.pop() if held and held[0] is not None else self.store.get(incident_id)
            held.clear()
            if current is None:
                raise IncidentNotFound(incident_id)
            try:
                changed = change(current)
            except ConflictError as refused:  # the change itself refused (acknowledging a resolved one)
                raise _Refused(refused) from refused
            if changed is current:
                return current  # nothing to write
            return self.store.save(self._stamped(changed))
        try:
            return retried(attempt, what=f"incident {incident_id}", pause=self.pause)
        except _Refused as refused:
            raise refused.error from None

    def add_note(self, incident_id: str, by: str, text: str, now: datetime) -> Incident:
        """A person's note on the timeline: at most ``MAX_NOTE_CHARS`` characters, ``MAX_NOTES`` per incident."""
        text = note_text(text)

        def note(incident: Incident) -> Incident:
            if incident.note_count >= MAX_NOTES:
                raise InvalidRequest("text", f"incident {incident.id} already has {MAX_NOTES} notes, "
                                             "the most it keeps")
            return incident.noted(TimelineEntry(at=now, by=by, what=f"note: {text}"),
                                  note_count=incident.note_count + 1)
        return self.update(incident_id, note)

    def acknowledge(self, incident_id: str, by: str, now: datetime, source: str = "responder",
                    pagerduty_key: str | None = None, then: Callable[[Incident], Incident] | None = None) -> Incident:
        """Acknowledge (idempotent). Unsent pages are cancelled; everyone who was paged hears of
        it on each channel they were paged on, except the PagerDuty alert it came from. ``then``
        changes the acknowledged incident in the same write (the escalator claims those pages)."""
        def ack(incident: Incident) -> Incident:
            if incident.status is IncidentStatus.RESOLVED:
                raise ConflictError(f"incident {incident.id} is resolved; nothing to acknowledge")
            if incident.status is IncidentStatus.ACKNOWLEDGED:
                return incident
            via = f" via {source}" if source != "responder" else ""
            acked = incident.noted(TimelineEntry(at=now, by=by, what=f"acknowledged by {by}{via}"),
                                   status=IncidentStatus.ACKNOWLEDGED, acknowledged_at=now,
                                   acknowledged_by=by)
            acked = escalation.cancel_unsent(acked, now, f"acknowledged by {by}")
            acked = acked.with_pages(*comms.founder_update(acked, "acknowledged", self.config, now))
            return acked.with_pages(*escalation.acknowledge_pages(
                acked, now, pagerduty_channels(self.config), by, _heard_from(source, pagerduty_key, incident)))
        def ack_then(incident: Incident) -> Incident:
            acked = ack(incident)
            return then(acked) if then is not None and acked is not incident else acked

        current = self.store.get(incident_id)
        if current is not None and current.status is IncidentStatus.ACKNOWLEDGED:
            return current  # idempotent: a second ack changes nothing
        return self.update(incident_id, ack_then, current)  # the read above is the first attempt's

    def resolve(self, incident_id: str, by: str, now: datetime, source: str = "responder",
                note: str | None = None, pagerduty_key: str | None = None) -> tuple[Incident, bool]:
        """Resolve by hand; the bool says whether this call changed anything."""
        current = self.store.get(incident_id)
        if current is None:
            raise IncidentNotFound(incident_id)
        if current.status is IncidentStatus.RESOLVED:
            return current, False

        def resolve_by_hand(incident: Incident) -> Incident:
            if incident.status is IncidentStatus.RESOLVED:
                return incident
            via = f" via {source}" if source != "responder" else ""
            return close(incident, by, f"resolved by {by}{via}" + (f": {note}" if note else ""), now, self.config,
                         source, pagerduty_key)
        return self.update(incident_id, resolve_by_hand), True


class _Refused(Exception):
    """A ``ConflictError`` raised by a change itself, not by a lost write: never retried."""

    def __init__(self, error: ConflictError) -> None:
        super().__init__(str(error))
        self.error = error


def note_text(text: str) -> str:
    """A note as stored, or ``InvalidRequest`` naming ``text``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("text", "must be a non-empty string")
    if len(text) > MAX_NOTE_CHARS:
        raise InvalidRequest("text", f"must be at most {MAX_NOTE_CHARS} characters")
    return text.strip()


def mark_phi_exposure(incident: Incident, by: str, now: datetime, config: ResponderConfig) -> Incident:
    """PHI exposure suspected: Sev1 by definition, and the BAA's breach-notification clock starts."""
    if incident.phi_exposure_suspected:
        return incident
    # marking it answers the question a security finding asked (comms.PHI_DECISION)
    answered = comms.complete(incident, comms.PHI_DECISION, by, now)
    marked = answered.noted(TimelineEntry(at=now, by=by, what=f"PHI exposure suspected, marked by {by}"),
                            phi_exposure_suspected=True,
                            duties=(*answered.duties, comms.breach_duty(config, now)))
    if marked.severity is not Severity.SEV1 and marked.is_open:
        marked = raise_severity(marked, Severity.SEV1, "(PHI exposure suspected)", now, config)
    return marked
