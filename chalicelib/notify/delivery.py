"""The moving parts of paging: escalate due steps, then send the outbox, exactly once.

``Escalator.advance(incident_id, now)`` is the one routine both the pipeline (right after
an incident opens, resolves or is acknowledged) and the scheduled sweep run:

1. **Escalate.** Queue outbox entries for every chain step now due, conditionally on the
   incident's version: of two sweeps, one queues, the other re-reads and finds nothing due.
2. **Claim.** Mark due entries ``sending`` with a lease, again conditionally: a page is
   claimed by one worker only. An acknowledgement or resolution that landed first has
   already cancelled unsent trigger and escalation pages, so they are never claimed.
3. **Send** each claimed page on its channel, outside any store write.
4. **Record** each result: sent; failed with the next attempt time (backoff, or the
   channel's ``Retry-After``); or given up. A failure that calls for it queues the
   fallback channel for the same step, which goes out in the next round.

A worker that dies between 3 and 4 leaves ``sending`` entries whose lease expires; the
next sweep sends them again, and PagerDuty's ``dedup_key`` (one per person and loop,
pd_alerts.py) makes that retry harmless there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.config import ResponderConfig
from chalicelib.decisions import comms, escalation, pd_alerts, silences
from chalicelib.decisions.escalation import RetryDecision
from chalicelib.decisions.incidents import IncidentService, raise_severity, settled
from chalicelib.errors import ChannelError, TransientError
from chalicelib.models import Incident, IncidentStatus, PageRecord, PageStatus, Severity, TimelineEntry
from chalicelib.notify import sweep_queue
from chalicelib.notify.paging import Pager
from chalicelib.store import DueIncident, IncidentStore

log = logging.getLogger("responder")

_ROUNDS = 3  # a round's failures may queue fallbacks; they go out in the next round
# The sweep runs every minute in a Lambda with a 30 s timeout: after this long it starts no
# further incident and leaves the rest due for the next minute.
SWEEP_BUDGET = timedelta(seconds=20)
SENTRY_EVERY = timedelta(hours=1)  # one Sentry event per incident and failure per hour
_REMEMBERED = 1_000  # failed incidents and Sentry reports kept in memory, at most


@dataclass
class Processed:
    """What ``Escalator.process`` did with a batch (and the in-process sweep with all of them)."""

    incidents: int = 0  # looked at
    sent: int = 0
    failed: int = 0  # pages that failed (retried later), not incidents
    error_ids: list[str] = field(default_factory=list)  # incidents that failed: tried again
    deferred_ids: list[str] = field(default_factory=list)  # not started: out of time
    not_due: dict[str, escalation.DueReason] = field(default_factory=dict)  # nothing to do, and why

    def add(self, other: Processed) -> None:
        self.incidents += other.incidents
        self.sent += other.sent
        self.failed += other.failed
        self.error_ids += other.error_ids
        self.deferred_ids += other.deferred_ids
        self.not_due |= other.not_due

    def summary(self) -> dict[str, Any]:
        return {"incidents": self.incidents, "sent": self.sent, "failed": self.failed,
                "errors": len(self.error_ids), "error_ids": list(self.error_ids),
                "deferred": len(self.deferred_ids), "not_due": len(self.not_due)}


class Escalator:
    def __init__(self, store: IncidentStore, incidents: IncidentService, pager: Pager,
                 config: ResponderConfig, ack_link: escalation.AckLinker | None = None, metrics: Any = None) -> None:
        self.store, self.incidents, self.pager, self.config = store, incidents, pager, config
        self.ack_link = ack_link
        self.metrics = metrics  # a Powertools Metrics (tests pass one); None: built per sweep
        self.pagerduty = pd_alerts.pagerduty_channels(config)
        self.budget = SWEEP_BUDGET
        # in memory only (the container's lifetime): which incidents failed their last sweep
        # (tried after the others) and when each failure was last reported to Sentry
        self._failed: dict[str, datetime] = {}
        self._reported: dict[tuple[str, str], datetime] = {}
        self.queue: sweep_queue.SweepQueue | None = None  # deployed: the sweep's fan-out (wiring sets it)
        # The pipeline's: what an incident this routine resolved (a held recovery gone quiet,
        # decisions/flapping.py) held under it pages on its own if it still fires
        self.on_resolved: Callable[[Incident, datetime], Sequence[PageRecord]] | None = None
        # The pipeline's: a held incident due here has its holder looked at (escalation.HELD_RECHECK)
        self.on_held: Callable[[Incident, datetime], Sequence[PageRecord]] | None = None

    def sweep(self, now: datetime, also: Callable[[str, datetime], object] | None = None,
              clock: Callable[[], datetime] | None = None) -> dict[str, Any]:
        """One run of the scheduled sweep over every incident with something due.

        With a queue (``self.queue``, deployed) the due ids are handed to it in batches and
        the queue's consumer runs ``process`` on each batch (what the queue refused is processed
        here, so a broken queue delays no page beyond the budget); without one the batches go to
        ``process`` here, one after the other, until ``budget`` has passed on ``clock`` (read,
        never slept on): the rest are counted as ``deferred`` and stay due for the next minute.
        Incidents whose last sweep failed here go last (``_failed``)."""
        # stable: the store's order (by due time) within each group, last failures at the end
        due = sorted(self.store.due(now), key=lambda item: item.incident_id in self._failed)
        stop = (lambda: clock() - now >= self.budget) if clock is not None else None
        if self.queue is not None:
            handed = self._hand_off(due)
            if handed["error_ids"]:  # a queue that refuses (a key policy, a deleted queue) must not
                # silence every escalation: what it did not take is advanced here, in the time there is
                handed["in_process"] = self.process(handed["error_ids"], now, also, stop).summary()
            return handed
        report = Processed()
        for batch in sweep_queue.batches([item.incident_id for item in due]):
            report.add(self.process(batch, now, also, stop))
        if report.error_ids:
            count_failures(len(report.error_ids), self.metrics)
        return report.summary()

    def process(self, incident_ids: Sequence[str], now: datetime,
                also: Callable[[str, datetime], object] | None = None,
                stop: Callable[[], bool] | None = None) -> Processed:
        """Advance each incident that is still due: a batch from the queue, or the in-process sweep's.

        ``also`` runs for each of them with a watched action too (the executor's verification).
        An incident with nothing due any more (a redelivered message, a sweep that raced
        another) is left alone, with its reason. Each incident is handled on its own: one that
        fails (a store that refuses its item, a bug) is logged by id and exception type,
        reported to Sentry (once an hour per incident and failure) and listed in
        ``error_ids``; the others go on. Its ``next_action_at`` did not move, so it is tried
        again. Once ``stop()`` says so, no further incident is started (``deferred_ids``)."""
        done = Processed()
        for incident_id in incident_ids:
            if stop is not None and stop():
                done.deferred_ids.append(incident_id)
                continue
            done.incidents += 1
            try:
                incident = self.store.get(incident_id)
                reason = escalation.due_reason(incident, now)
                if incident is None or reason is not escalation.DueReason.DUE:
                    done.not_due[incident_id] = reason
                    continue
                if incident.held_by is not None and self.on_held is not None:
                    pages: Sequence[PageRecord] = self.on_held(incident, now)
                else:
                    pages = self.advance(incident_id, now, incident)  # as read: advancing reads it no more
                for page in pages:
                    done.sent += page.status is PageStatus.SENT
                    done.failed += page.status is not PageStatus.SENT
                if also is not None and incident.watch is not None:  # advancing never starts a watch
                    also(incident_id, now)
            except Exception as exc:  # noqa: BLE001 - one incident must never stop the others' pages
                done.error_ids.append(incident_id)
                # ids and the exception's type only: a message can quote a payload
                log.error("sweep: incident failed", extra={"outcome": {
                    "incident_id": incident_id, "error": type(exc).__name__}})
                self._failed_now(incident_id, exc, now)
            else:
                self._failed.pop(incident_id, None)
        return done

    def _hand_off(self, due: list[DueIncident]) -> dict[str, Any]:
        """Every due incident to the queue, ten per call; one the queue refused stays due."""
        assert self.queue is not None
        report: dict[str, Any] = {"incidents": len(due), "enqueued": 0, "batches": 0, "errors": 0, "error_ids": []}
        for batch in sweep_queue.batches(due):
            report["batches"] += 1
            try:
                unsent = self.queue.send(batch)
            except TransientError as exc:
                log.error("sweep: hand-off failed", extra={"outcome": {"incidents": len(batch), "error": str(exc)}})
                unsent = [item.incident_id for item in batch]
            report["enqueued"] += len(batch) - len(unsent)
            report["error_ids"] += unsent
        report["errors"] = len(report["error_ids"])
        if report["errors"]:
            count_failures(report["errors"], self.metrics)
        return report

    def _failed_now(self, incident_id: str, exc: Exception, now: datetime) -> None:
        """Remember the failure (tried last next time); to Sentry unless reported within the hour."""
        self._failed[incident_id] = now
        key = (incident_id, type(exc).__name__)
        last = self._reported.get(key)
        if last is None or now - last >= SENTRY_EVERY:
            self._reported[key] = now
            _report_to_sentry(exc)
        _forget_oldest(self._failed)
        _forget_oldest(self._reported)

    def advance(self, incident_id: str, now: datetime, current: Incident | None = None) -> list[PageRecord]:
        """Queue what is due and send it; ``current``: the incident as the caller just wrote it.

        Queueing and leasing are one write (as ``opened`` does for a new incident): each write of
        the incident is billed on DynamoDB, and the lease is what keeps one page per step under
        races either way. If this worker dies after it, the leases expire and the sweep sends."""
        taken: list[PageRecord] = []
        resolved_here: list[bool] = []

        def queued_and_claimed(incident: Incident) -> Incident:
            was_open = incident.is_open
            claimed, taken[:] = self.advanced(incident, now)
            resolved_here[:] = [was_open and not claimed.is_open]
            return claimed

        incident = self.incidents.update(incident_id, queued_and_claimed, current)
        records = self.send_claimed(incident, list(taken), now)
        if any(resolved_here) and incident.related and self.on_resolved is not None:
            records += self.on_resolved(incident, now)
        return records

    def advanced(self, incident: Incident, now: datetime) -> tuple[Incident, list[PageRecord]]:
        """``incident`` as ``advance`` writes it (due steps queued, pages claimed), for a caller that
        writes it anyway (a resolve): ``send_claimed`` then sends what it claimed."""
        return self._claimed(comms.reminders_due(self._due(incident, now), self.config, now), now)

    def opened(self, incident: Incident, now: datetime) -> tuple[Incident, list[PageRecord]]:
        """A new incident as ``advance`` would leave it just before sending: due steps queued and
        claimed, so it is created with its first pages leased and they go out at once
        (``send_claimed``). If this worker dies, their leases expire and the sweep sends them."""
        incident = comms.reminders_due(escalation.escalate(incident, self.config, now, self.ack_link), self.config, now)
        return self._claimed(incident, now)

    def send_claimed(self, incident: Incident, claimed: list[PageRecord], now: datetime) -> list[PageRecord]:
        """Send the pages ``opened`` claimed on ``incident`` (as stored), then whatever else is due."""
        return self.send_and_record(incident, claimed, now)[0]

    def send_and_record(self, incident: Incident, claimed: list[PageRecord], now: datetime
                        ) -> tuple[list[PageRecord], Incident]:
        """``send_claimed``, and the incident as this worker last wrote it (no read to learn it)."""
        results = [self._send(page, incident) for page in claimed]
        recorded, current = self._record(incident.id, results, now, incident)
        more, current = self._deliver(incident.id, now, current)
        return recorded + more, current

    def claim_now(self, incident: Incident, now: datetime) -> tuple[Incident, list[PageRecord]]:
        """``incident`` with the pages it may send now leased, for a caller that writes it anyway
        (an acknowledgement): leased in that write, sent by ``send_and_record``."""
        return self._claimed(incident, now)

    def escalate(self, incident_id: str, now: datetime, current: Incident | None = None) -> Incident:
        """Queue every due step (and a new loop when nobody answered), conditionally on the version."""
        return self.incidents.update(incident_id, lambda incident: self._due(incident, now), current)

    def _due(self, incident: Incident, now: datetime) -> Incident:
        # a silenced incident whose window ended pages now; a flapping one quiet long enough resolves
        incident = silences.window_ended(settled(incident, self.config, now), self.config, now)
        return escalation.escalate(incident, self.config, now, self.ack_link)

    def escalate_now(self, incident_id: str, now: datetime, why: str) -> list[PageRecord]:
        """A human is needed now (a playbook could not act, a verification failed): page the next
        step of the chain at once; past its end, raise the severity (or restart the Sev1 chain)."""

        def bump(incident: Incident) -> Incident:
            state = incident.escalation
            if incident.status is not IncidentStatus.OPEN or state is None:
                return incident.noted(TimelineEntry(
                    at=now, what=f"escalation requested ({why}); incident is {incident.status.value}"))
            bumped = escalation.escalate_next(incident, self.config, now, why, self.ack_link)
            if bumped is not None:
                return bumped
            worse = Severity(max(incident.severity.value - 1, 1))
            return raise_severity(incident, worse, f"({why})", now, self.config)

        self.incidents.update(incident_id, bump)
        return self.advance(incident_id, now)

    def report_playbook(self, incident_id: str, done: str, now: datetime) -> Incident:
        """Queue the update page saying what the playbook did to everyone a page reached (the
        pages went out first: a playbook never delays a human); ``advance`` sends it."""
        def add(incident: Incident) -> Incident:
            pages = escalation.update_pages(incident, self.config, now, done)
            if not pages:
                return incident
            return incident.with_pages(*pages).noted(TimelineEntry(
                at=now, what=f"update page queued: {done}"[:300]))
        return self.incidents.update(incident_id, add)

    def deliver(self, incident_id: str, now: datetime, current: Incident | None = None) -> list[PageRecord]:
        return self._deliver(incident_id, now, current)[0]

    def _deliver(self, incident_id: str, now: datetime, current: Incident | None = None
                 ) -> tuple[list[PageRecord], Incident]:
        finished: list[PageRecord] = []
        for _ in range(_ROUNDS):
            latest, claimed = self._claim(incident_id, now, current)
            if not claimed:
                break
            results = [self._send(page, latest) for page in claimed]
            recorded, latest = self._record(incident_id, results, now, latest)
            current = latest
            finished += recorded
        return finished, latest

    def _claim(self, incident_id: str, now: datetime, current: Incident | None = None
               ) -> tuple[Incident, list[PageRecord]]:
        taken: list[PageRecord] = []

        def claim(incident: Incident) -> Incident:
            claimed, pages = self._claimed(incident, now)
            taken[:] = pages
            return claimed

        incident = self.incidents.update(incident_id, claim, current)
        return incident, list(taken)

    def _claimed(self, incident: Incident, now: datetime) -> tuple[Incident, list[PageRecord]]:
        """``incident`` with its claimable pages leased for sending (and fallbacks now due queued)."""
        if incident.status is IncidentStatus.OPEN:
            extra = escalation.fallbacks_due(incident, self.config, now)
            if extra:
                incident = incident.with_pages(*extra).noted(TimelineEntry(
                    at=now, what="half the response time passed undelivered: "
                                 + ", ".join(f"{p.person} on {p.channel}" for p in extra)))
        else:
            incident = escalation.cancel_unsent(incident, now, f"incident {incident.status.value}")
        taken = [p.model_copy(update={"status": PageStatus.SENDING, "attempts": p.attempts + 1,
                                      "lease_until": now + escalation.SEND_LEASE})
                 for p in incident.pages if escalation.claimable(p, incident, now)]
        if not taken:
            return incident, []
        # a PagerDuty trigger's alert may be open from now on, whatever its reply
        incident, pages = pd_alerts.claimed(incident, taken, self.pagerduty)
        return incident.with_pages(*pages), pages

    def _send(self, page: PageRecord, incident: Incident) -> tuple[PageRecord, ChannelError | None]:
        try:
            self.pager.send(page, incident)
        except ChannelError as exc:
            return page, exc
        except Exception as exc:  # noqa: BLE001 - an unexpected channel bug is a retryable failure
            return page, ChannelError(f"{type(exc).__name__}", retryable=True)
        return page, None

    def _record(self, incident_id: str, results: list[tuple[PageRecord, ChannelError | None]],
                now: datetime, current: Incident | None = None) -> tuple[list[PageRecord], Incident]:
        recorded: list[PageRecord] = []

        def record(incident: Incident) -> Incident:
            recorded.clear()
            current = {p.id: p for p in incident.pages}
            for page, error in results:
                mine = current.get(page.id)
                if mine is None or mine.status is not PageStatus.SENDING or mine.attempts != page.attempts:
                    continue  # someone else took it over after our lease ran out
                incident, done = self._apply_result(incident, page, error, now)
                recorded.append(done)
            return incident

        return recorded, self.incidents.update(incident_id, record, current)

    def _apply_result(self, incident: Incident, page: PageRecord, error: ChannelError | None,
                      now: datetime) -> tuple[Incident, PageRecord]:
        label = f"{page.kind.value} page to {page.person} ({page.role}) on {page.channel}"
        if error is None:
            sent = page.model_copy(update={"status": PageStatus.SENT, "sent_at": now, "lease_until": None,
                                           "error": None, "next_attempt_at": None})
            incident = escalation.delivered(incident.with_pages(sent), sent, now, self.pagerduty)
            return incident.noted(TimelineEntry(at=now, what=f"{label}: sent")), sent
        failed, decision = escalation.after_failure(page, error.retryable, error.retry_after, now,
                                                    self.config, incident.severity)
        failed = failed.model_copy(update={"error": str(error)[:200]})
        what = f"{label}: failed (attempt {page.attempts}: {error})"
        if failed.next_attempt_at is not None:
            what += f", retry at {failed.next_attempt_at.isoformat()}"
        incident = incident.with_pages(failed).noted(TimelineEntry(at=now, what=what))
        incident = escalation.failed_after_close(incident, failed, now, self.pagerduty)
        if decision in (RetryDecision.FALLBACK, RetryDecision.RETRY_AND_FALLBACK):
            extra = escalation.fallback_page(page, incident, self.config)
            if extra is not None:
                extra = extra.model_copy(update={"at": now})
                incident = incident.with_pages(extra).noted(
                    TimelineEntry(at=now, what=f"fallback: {page.person} on {extra.channel}"))
        return incident, failed


def _forget_oldest(memory: dict[Any, datetime]) -> None:
    """Keep at most ``_REMEMBERED`` entries, dropping the oldest (insertion order)."""
    while len(memory) > _REMEMBERED:
        del memory[next(iter(memory))]


def _report_to_sentry(exc: Exception) -> None:
    """To Sentry when error reporting is on (observability.init_error_reporting, whose scrubber
    drops the message); a no-op otherwise."""
    import sentry_sdk

    sentry_sdk.capture_exception(exc)


def count_failures(count: int, metrics: Any = None) -> None:
    """``SweepIncidentFailed`` (CloudWatch EMF through Powertools, as the canary emits its metric):
    an alarm on it says the sweep is skipping an incident. Emitted only when one failed, so the
    CLI's JSON output stays clean on a good run."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from chalicelib.canary import NAMESPACE

    metrics = metrics or Metrics(namespace=NAMESPACE, service="alarm-responder")
    metrics.add_metric(name="SweepIncidentFailed", unit=MetricUnit.Count, value=count)
    metrics.flush_metrics()
