"""Runs playbook plans inside the safety envelope, and verifies what they did.

A playbook only plans (``playbooks/*``), and its plan reads nothing: values it needs from
AWS are placeholders (``runtime.py``), which ``simulate`` prints as they are. ``run`` first
resolves them (the reads, in plan order; a failing read fails the plan), then hands each
concrete step to the runner registered for its type (``@runs``). This module decides what of
the plan may run:

- **Dry run**: the stage default everywhere but prod, or per playbook in
  ``playbooks.yaml``. Reads happen (the plan needs them), mutating calls do not.
- **Per-incident limit**: at most ``max_mutating_actions_per_incident`` mutating calls.
- **Rate limit and circuit breaker** per playbook and target (an ECS service, a flag):
  at most ``rate_limit.max`` runs per ``per_minutes``; and while an earlier run on the
  same target is unverified or failed, none at all. Either way the executor escalates to
  a human instead of acting (``envelope_decision`` is the pure rule).
- **Record**: every step and its result go on the incident timeline and into the
  append-only audit log.

A playbook that fails (AWS error, timeout, a bug) never loses the incident: the failure
is recorded and the incident keeps escalating as usual. ``verify`` is the sweep's half:
it checks a ``Watch`` (alarms and ``/health`` of a rolled-back service) every minute
until it passes or fails; failure escalates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from chalicelib import playbooks
from chalicelib.aws import Aws
from chalicelib.config import ResponderConfig
from chalicelib.config.playbooks import RateLimit
from chalicelib.decisions.incidents import IncidentService, raise_severity
from chalicelib.errors import ChannelError, ConflictError, PlaybookError
from chalicelib.models import Duty, Frozen, Incident, IncidentStatus, Signal, TimelineEntry, WatchState
from chalicelib.notify.channels import Transport
from chalicelib.playbooks.audit import AuditLog
from chalicelib.playbooks.context import PlaybookContext
from chalicelib.playbooks.registry import Playbook
from chalicelib.playbooks.runtime import resolve
from chalicelib.playbooks.steps import AddDuty, ApiCall, Note, RaiseSeverity, Step, Watch
from chalicelib.store import IncidentStore
from chalicelib.store.retry import retried

WATCH_INTERVAL = timedelta(minutes=1)


class Envelope(StrEnum):
    ALLOWED = "ALLOWED"
    DRY_RUN = "DRY_RUN"
    LIMIT_REACHED = "LIMIT_REACHED"    # this incident used its mutating actions
    RATE_LIMITED = "RATE_LIMITED"      # too many runs on this target in the window
    BREAKER_OPEN = "BREAKER_OPEN"      # an earlier run on this target is unverified or failed


def envelope_decision(log: list[dict[str, Any]], now: datetime, limit: RateLimit) -> Envelope:
    """May a playbook act on a target again, given the target's action log? (pure)"""
    since = now - timedelta(minutes=limit.per_minutes)
    recent = [entry for entry in log if datetime.fromisoformat(entry["at"]) >= since]
    if any(entry["outcome"] in ("pending", "failed") for entry in recent):
        return Envelope.BREAKER_OPEN
    if len(recent) >= limit.max:
        return Envelope.RATE_LIMITED
    return Envelope.ALLOWED


class StepResult(Frozen):
    step: dict[str, Any]
    result: str


class Execution(Frozen):
    playbook: str
    dry_run: bool
    results: tuple[StepResult, ...] = ()
    error: str | None = None
    escalate: bool = False  # hand it to a human now (breaker, limit, failed action)


class Executor:
    def __init__(self, store: IncidentStore, incidents: IncidentService, config: ResponderConfig, aws: Aws,
                 http: Transport | None, audit: AuditLog, stage: str,
                 escalate_now: Callable[[str, datetime, str], object]) -> None:
        self.store, self.incidents, self.config = store, incidents, config
        self.aws, self.http, self.audit, self.stage = aws, http, audit, stage
        self.escalate_now = escalate_now

    # --- planning (also what `simulate` shows) ------------------------------------------

    def plan(self, incident: Incident, signal: Signal | None, now: datetime) -> tuple[Playbook, list[Step]]:
        """The playbook's plan, with values it reads at run time as placeholders: it reads nothing."""
        playbook, steps, _ = self._plan(incident, signal, now)
        return playbook, steps

    def _plan(self, incident: Incident, signal: Signal | None,
              now: datetime) -> tuple[Playbook, list[Step], PlaybookContext]:
        playbook = playbooks.get(incident.playbook or "")
        if playbook is None:
            raise PlaybookError(f"no playbook {incident.playbook!r}")
        ctx = PlaybookContext(incident=incident, signal=signal, aws=self.aws, http=self.http, now=now,
                              options=self.config.playbooks.options_for(playbook.id))
        return playbook, playbook.plan(ctx), ctx

    # --- running --------------------------------------------------------------------------

    def run(self, incident_id: str, signal: Signal | None, now: datetime) -> Execution:
        incident = self.store.get(incident_id)
        if incident is None or not incident.playbook:
            return Execution(playbook="", dry_run=True)
        dry_run = self.config.playbooks.dry_run_for(incident.playbook, self.stage)
        ctx: PlaybookContext | None = None
        try:
            playbook, planned, ctx = self._plan(incident, signal, now)
            steps = resolve(planned)  # the reads happen here, in plan order
        except Exception as exc:  # noqa: BLE001 - a failing playbook must never lose the incident
            reason = str(exc) if isinstance(exc, PlaybookError) else f"{type(exc).__name__} in the playbook"
            self._record(incident_id, incident.playbook, now, dry_run,
                         [TimelineEntry(at=now, what=f"playbook {incident.playbook} failed: {reason}; "
                                                     "escalating as usual")],
                         [*_reads_record(ctx), {"kind": "plan", "result": f"failed: {reason}"}],
                         outcome=f"failed: {reason}")
            return Execution(playbook=incident.playbook, dry_run=dry_run, error=reason)
        for record in _reads_record(ctx):
            self._audit(incident_id, playbook.id, now, dry_run, record)
        return self._execute(incident, playbook, steps, dry_run, now)

    def _execute(self, incident: Incident, playbook: Playbook, steps: list[Step], dry_run: bool,
                 now: datetime) -> Execution:
        run = _Run(self, incident, playbook, steps, dry_run, now, self.config.playbooks.settings_for(playbook.id))
        run.entries.append(TimelineEntry(at=now, what=f"playbook {playbook.id} ({run.mode}): "
                                                      f"{len(steps)} steps planned"))
        results = [StepResult(step=step.model_dump(mode="json"), result=RUNNERS[type(step)](run, step))
                   for step in steps]
        outcome = f"{run.mode}: {len(steps)} steps" + (", escalated" if run.escalate else "")
        raise_to = run.raise_to

        def apply(current: Incident) -> Incident:
            updated = current.model_copy(update={
                "timeline": (*current.timeline, *run.entries), "duties": (*current.duties, *run.duties),
                "actions_taken": run.taken, "watch": run.watch or current.watch, "playbook_outcome": outcome})
            if raise_to is not None and raise_to.severity < updated.severity and updated.is_open:
                updated = raise_severity(updated, raise_to.severity, raise_to.reason, now, self.config)
            return updated

        self.incidents.update(incident.id, apply)
        for item in results:
            self._audit(incident.id, playbook.id, now, dry_run, {"kind": "step", **item.model_dump()})
        if run.escalate:
            self.escalate_now(incident.id, now, could_not_act(playbook.id, results, run.settings.rate_limit))
        return Execution(playbook=playbook.id, dry_run=dry_run, results=tuple(results), escalate=run.escalate)

    def _api_call(self, step: ApiCall, run: _Run) -> tuple[str, int, bool]:
        """(result, mutating actions executed, escalate?) for one API call."""
        if not step.mutating:
            try:
                self.aws.call(step.service, step.operation, step.params)
                return "read", 0, False
            except PlaybookError as exc:
                return f"failed: {exc}", 0, False
        if run.dry_run:
            return f"{Envelope.DRY_RUN}: not called", 0, False
        if run.taken >= self.config.playbooks.max_mutating_actions_per_incident:
            return f"{Envelope.LIMIT_REACHED}: not called", 0, True
        scope = f"actions:{run.playbook.id}:{step.target or step.iam_action}"
        decision = self._reserve(scope, run.incident.id, run.now, run.settings.rate_limit,
                                 "pending" if run.watched else "done")
        if decision is not Envelope.ALLOWED:
            return f"{decision}: not called", 0, True
        try:
            self.aws.call(step.service, step.operation, step.params)
        except PlaybookError as exc:
            self.set_outcome(scope, run.incident.id, "failed")
            return f"failed: {exc}", 1, True
        return "done", 1, False

    def _reserve(self, scope: str, incident_id: str, now: datetime, limit: RateLimit, outcome: str) -> Envelope:
        """Check the envelope and, if allowed, log the action: one conditional write, so racing
        workers cannot both pass the same limit."""
        def attempt() -> Envelope:
            doc, version = self.store.get_doc(scope)
            log = (doc or {}).get("actions", [])
            decision = envelope_decision(log, now, limit)
            if decision is not Envelope.ALLOWED:
                return decision
            since = now - timedelta(days=1)
            kept = [e for e in log if datetime.fromisoformat(e["at"]) >= since]
            entry = {"at": now.isoformat(), "incident": incident_id, "outcome": outcome}
            self.store.put_doc(scope, {"actions": [*kept, entry]}, version)
            return Envelope.ALLOWED
        return retried(attempt, what=scope)

    def set_outcome(self, scope: str, incident_id: str, outcome: str) -> None:
        def attempt() -> None:
            doc, version = self.store.get_doc(scope)
            log = [dict(e, outcome=outcome) if e.get("incident") == incident_id and e["outcome"] == "pending"
                   else e for e in (doc or {}).get("actions", [])]
            self.store.put_doc(scope, {"actions": log}, version)
        with contextlib.suppress(ConflictError):  # the log keeps "pending"; the timeline has the outcome
            retried(attempt, what=scope)

    # --- verifying (the sweep) --------------------------------------------------------------

    def verify(self, incident_id: str, now: datetime) -> str | None:
        """Check a watched action; returns "verified", "failed", "watching" or None (nothing to do)."""
        incident = self.store.get(incident_id)
        watch = incident.watch if incident else None
        if incident is None or watch is None or now < watch.next_check_at:
            return None
        problems = self._check(watch)
        if problems:
            verdict, what = "failed", f"{watch.playbook} verification failed: {'; '.join(problems)}"
        elif now >= watch.until:
            verdict, what = "verified", (f"{watch.playbook} verified: {watch.cluster}/{watch.service} healthy for "
                                         f"{int((watch.until - watch.started_at).total_seconds() // 60)} min")
        else:
            verdict, what = "watching", ""

        def record(current: Incident) -> Incident:
            if current.watch is None:
                return current
            if verdict == "watching":
                return current.model_copy(update={"watch": current.watch.model_copy(
                    update={"next_check_at": now + WATCH_INTERVAL})})
            return current.noted(TimelineEntry(at=now, what=what), watch=None)

        updated = self.incidents.update(incident_id, record)
        if verdict != "watching":
            self.set_outcome(watch.scope, incident_id, verdict)
            self.incidents.update(incident_id, lambda i: i.model_copy(update={
                "playbook_outcome": f"{i.playbook_outcome or watch.playbook}, {verdict}"}))
            self._audit(incident_id, watch.playbook, now, False, {"kind": "verify", "result": what})
        if verdict == "failed" and updated.status is not IncidentStatus.RESOLVED:
            self.escalate_now(incident_id, now, what)
        return verdict

    def _check(self, watch: WatchState) -> list[str]:
        problems = []
        if watch.alarm_names:
            try:
                alarms = self.aws.call("cloudwatch", "describe_alarms", {"AlarmNames": list(watch.alarm_names)})
                problems += [f"alarm {a['AlarmName']} in ALARM" for a in alarms.get("MetricAlarms", [])
                             if a.get("StateValue") == "ALARM"]
            except PlaybookError as exc:
                problems.append(f"alarms unreadable ({exc})")
        if watch.health_url and self.http is not None:
            try:
                status = self.http.get(watch.health_url, 3.0).status
                if status != 200:
                    problems.append(f"/health answered {status}")
            except ChannelError as exc:
                problems.append(f"/health unreachable ({exc})")
        return problems

    # --- records ----------------------------------------------------------------------------

    def _record(self, incident_id: str, playbook_id: str, now: datetime, dry_run: bool,
                entries: list[TimelineEntry], audit: list[dict[str, Any]], outcome: str | None = None) -> None:
        self.incidents.update(incident_id, lambda i: i.model_copy(update={
            "timeline": (*i.timeline, *entries), "playbook_outcome": outcome or i.playbook_outcome}))
        for record in audit:
            self._audit(incident_id, playbook_id, now, dry_run, record)

    def _audit(self, incident_id: str, playbook_id: str, now: datetime, dry_run: bool,
               record: dict[str, Any]) -> None:
        self.audit.append({"at": now.isoformat(), "incident": incident_id, "playbook": playbook_id,
                           "stage": self.stage, "dry_run": dry_run, "actor": "responder", **record})


class _Run:
    """One execution's state: what the runners add to the incident, and what they decided."""

    def __init__(self, executor: Executor, incident: Incident, playbook: Playbook, steps: list[Step],
                 dry_run: bool, now: datetime, settings: Any) -> None:
        self.executor, self.incident, self.playbook, self.steps = executor, incident, playbook, steps
        self.dry_run, self.now, self.settings = dry_run, now, settings
        self.mode = "dry run" if dry_run else "live"
        self.watched = any(isinstance(s, Watch) for s in steps)
        self.entries: list[TimelineEntry] = []
        self.duties: list[Duty] = []
        self.watch: WatchState | None = None
        self.raise_to: RaiseSeverity | None = None
        self.taken, self.escalate = incident.actions_taken, False


Runner = Callable[[_Run, Any], str]
RUNNERS: dict[type, Runner] = {}  # step type → what carrying it out means; a test checks every type has one


def runs(step_type: type) -> Callable[[Runner], Runner]:
    def register(runner: Runner) -> Runner:
        if step_type in RUNNERS:
            raise ValueError(f"{step_type.__name__} has two runners")
        RUNNERS[step_type] = runner
        return runner
    return register


@runs(ApiCall)
def _run_api_call(run: _Run, step: ApiCall) -> str:
    result, acted, failed = run.executor._api_call(step, run)
    run.taken += acted
    run.escalate = run.escalate or failed
    run.entries.append(TimelineEntry(at=run.now, what=f"{step.iam_action} {_brief(step.params)}: {result}"))
    return result


@runs(Note)
def _run_note(run: _Run, step: Note) -> str:
    run.entries.append(TimelineEntry(at=run.now, what=str(step.text)))
    return "noted"


@runs(AddDuty)
def _run_add_duty(run: _Run, step: AddDuty) -> str:
    run.duties.append(Duty(kind=step.kind, due_at=step.due_at, reason=step.reason))
    run.entries.append(TimelineEntry(at=run.now, what=f"{step.kind} due by {step.due_at.isoformat()}: "
                                                      f"{step.reason}"))
    return f"due {step.due_at.isoformat()}"


@runs(RaiseSeverity)
def _run_raise_severity(run: _Run, step: RaiseSeverity) -> str:
    run.raise_to = step
    return f"raise to SEV{step.severity.value}"


@runs(Watch)
def _run_watch(run: _Run, step: Watch) -> str:
    if run.dry_run or run.taken == run.incident.actions_taken:
        result = "not watching: nothing was changed"
    else:
        run.watch = WatchState(playbook=run.playbook.id, scope=_scope(run.playbook, run.steps), started_at=run.now,
                               until=step.until, next_check_at=run.now + WATCH_INTERVAL, cluster=step.cluster,
                               service=step.service, alarm_names=step.alarm_names, health_url=step.health_url)
        result = f"watching {step.cluster}/{step.service} until {step.until.isoformat()}"
    run.entries.append(TimelineEntry(at=run.now, what=result))
    return result


def could_not_act(playbook: str, results: list[StepResult], limit: RateLimit) -> str:
    """Why a run hands the incident to a human, in the words an escalation page shows (pure)."""
    for item in results:
        verdict = item.result.split(":", 1)[0]
        if verdict == Envelope.BREAKER_OPEN:
            return (f"breaker open: second {playbook} within {limit.per_minutes} min, "
                    "the last one unverified or failed; a human decides")
        if verdict == Envelope.RATE_LIMITED:
            return f"rate limit: {playbook} ran {limit.max}x within {limit.per_minutes} min; a human decides"
        if verdict == Envelope.LIMIT_REACHED:
            return f"action limit reached: {playbook} may not change more for this incident; a human decides"
        if verdict == "failed" and item.step.get("mutating", True) and item.step.get("type") == "api_call":
            return f"playbook {playbook} could not act: {item.step.get('service')}:{item.step.get('operation')} " \
                   "failed; a human decides"
    return f"playbook {playbook} could not act; a human decides"


def _reads_record(ctx: PlaybookContext | None) -> list[dict[str, Any]]:
    """The AWS reads a run made to resolve its plan, for the audit trail (names only, no answers)."""
    return [{"kind": "reads", "reads": list(ctx.reads)}] if ctx is not None and ctx.reads else []


def _scope(playbook: Playbook, steps: list[Step]) -> str:
    target = next((s.target or s.iam_action for s in steps if isinstance(s, ApiCall) and s.mutating), "")
    return f"actions:{playbook.id}:{target}"


def _brief(params: dict[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if k != "MessageBody"}
    return ", ".join(f"{k}={v}" for k, v in shown.items())[:200]
