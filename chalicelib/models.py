"""Domain models shared by every stage of the pipeline.

Everything here is a frozen pydantic model or an enum: stages hand values to the
next stage and never mutate them. Wire formats (SNS, EventBridge, Sentry …) live
next to their converters in ``chalicelib.sources``; nothing raw passes beyond them.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from chalicelib.sources import registry

# Hard cap on one timeline entry's text (a 4,000-character note with its prefix fits whole).
TIMELINE_TEXT_MAX = 4_200
TRUNCATED = " … [truncated]"


def clipped(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, with a marker saying so."""
    return text if len(text) <= limit else text[:limit - len(TRUNCATED)] + TRUNCATED


class Frozen(BaseModel):
    # Not defer_build: the first event of a cold start uses most of these classes anyway, and a
    # deferred class nested in another is built twice (inline in its parent's schema, then on its own
    # first use). Deferring them all measured 10-16 ms CPU worse for import + first event (one
    # interleaved run of bench/coldstart.py's steps; within this machine's noise, not better).
    model_config = ConfigDict(frozen=True, extra="forbid")


class SignalKind(StrEnum):
    """The kinds older code names; ``Signal.kind`` is a ``str`` checked against the source
    registry (chalicelib/sources/catalog.py), so a new source needs no member here."""

    ALARM = "alarm"
    CLOUDTRAIL = "cloudtrail"
    ECS_DEPLOYMENT = "ecs_deployment"
    ECS_TASK = "ecs_task"
    RDS_EVENT = "rds_event"
    S3_OBJECT = "s3_object"
    SENTRY_ISSUE = "sentry_issue"
    SENTRY_EVENT_ALERT = "sentry_event_alert"
    SENTRY_METRIC_ALERT = "sentry_metric_alert"
    SENTRY_ERROR = "sentry_error"
    SENTRY_INSTALLATION = "sentry_installation"
    PAGERDUTY = "pagerduty"
    CANARY = "canary"  # the responder's own heartbeat (canary.py)
    MANUAL = "manual"  # a human paged on purpose (sources/manual.py)
    HEARTBEAT = "heartbeat"  # a job stopped reporting in (heartbeats.py)
    UNKNOWN = "unknown"


class Transition(StrEnum):
    """What a signal asks of its incident."""

    TRIGGER = "trigger"
    RESOLVE = "resolve"
    NONE = "none"


class Severity(IntEnum):
    SEV1 = 1
    SEV2 = 2
    SEV3 = 3
    SEV4 = 4


class Signal(Frozen):
    """One normalised fact from any source: the only thing later stages see.

    ``title``, ``resource`` and ``links`` are the PHI-free fields a page may show.
    ``description`` and ``details`` are for classification and the responder's
    timeline; they never reach a page.
    """

    kind: str  # a kind the source registry knows; SignalKind's members for the older kinds
    source: str
    delivery_id: str
    incident_key: str
    transition: Transition
    occurred_at: datetime
    title: str
    resource: str = ""
    account: str | None = None
    region: str | None = None
    state: str | None = None
    links: tuple[str, ...] = ()
    # what the classification rules match on: (name, value) pairs, each name declared by a source
    # of this kind; a name may repeat (an alarm's namespaces)
    facts: tuple[tuple[str, registry.FactValue], ...] = ()
    description: str | None = None
    dimensions: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    # safe facts for the timeline, and the reason an input was not recognised
    details: tuple[tuple[str, str], ...] = ()
    unknown_reason: str | None = None
    # the sender's own time for this event, from the signed body (None when it signs none): a
    # replayed old body is recognised by it (see ``incidents.is_stale``)
    signed_at: datetime | None = None

    # Whoever can publish to a topic or sign a webhook chooses these strings. Bounded here, once,
    # so no source can make a store key longer than DynamoDB's 2 KB partition key or an incident
    # item larger than its 400 KB limit: ids and keys too long keep a readable prefix and a
    # digest of the whole (the same input still maps to the same key), text is clipped.
    @field_validator("delivery_id", "incident_key")
    @classmethod
    def _bounded_id(cls, value: str) -> str:
        return bounded_id(value)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        return known_kind(value)

    @field_validator("title", "resource", "unknown_reason", "state")
    @classmethod
    def _clipped_text(cls, value: str | None) -> str | None:
        return None if value is None else clipped(value, MAX_SIGNAL_TEXT)

    @field_validator("description")
    @classmethod
    def _clipped_description(cls, value: str | None) -> str | None:
        return None if value is None else clipped(value, MAX_SIGNAL_DESCRIPTION)

    @field_validator("links")
    @classmethod
    def _bounded_links(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(link for link in value if len(link) <= MAX_LINK)[:MAX_LINKS]

    @field_validator("details", "tags", "dimensions")
    @classmethod
    def _bounded_pairs(cls, value: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        return tuple((clipped(k, MAX_SIGNAL_TEXT), clipped(v, MAX_SIGNAL_TEXT)) for k, v in value[:MAX_PAIRS])

    @field_validator("facts", mode="before")
    @classmethod
    def _bounded_facts(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        # Text is clipped like every other field; more than MAX_PAIRS facts are never read.
        return tuple((p[0], clipped(p[1], MAX_SIGNAL_TEXT))
                     if isinstance(p, list | tuple) and len(p) == 2 and isinstance(p[1], str) else p
                     for p in value[:MAX_PAIRS])

    @model_validator(mode="after")
    def _declared_facts(self) -> Signal:
        # A converter may only say what its source declares, so every rule's fact is one it can meet.
        declared = registry.facts_of_kind(self.kind)
        for name, value in self.facts:
            fact_type = declared.get(name)
            if fact_type is None:
                raise ValueError(f"fact {name!r} is not declared by a source of kind {str(self.kind)!r}")
            if not registry.value_has_type(value, fact_type):
                raise ValueError(f"fact {name!r} must be a {fact_type.__name__}, not {type(value).__name__}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"fact {name!r} is not a finite number")
        return self

    def fact(self, name: str) -> registry.FactValue | None:
        """The first value of fact ``name``, or None when the signal does not give it."""
        return next((value for key, value in self.facts if key == name), None)

    def fact_values(self, name: str) -> tuple[registry.FactValue, ...]:
        """Every value of fact ``name``, in order."""
        return tuple(value for key, value in self.facts if key == name)


MAX_ID = 512               # characters of a delivery id or incident key kept as they are
MAX_SIGNAL_TEXT = 500      # a title, a resource, a name: more is never read at 3 a.m.
MAX_SIGNAL_DESCRIPTION = 4_000
MAX_LINK, MAX_LINKS, MAX_PAIRS = 2_048, 10, 50
_KIND_MEMBERS = {member.value: member for member in SignalKind}


def known_kind(value: str) -> str:
    """``value`` if the source registry knows it (as the ``SignalKind`` member, when it has one),
    so ``signal.kind is SignalKind.ALARM`` still reads true; else a ValueError naming it."""
    if value not in registry.kinds():
        raise ValueError(f"kind {value!r} is produced by no registered source")
    return _KIND_MEMBERS.get(value, value)


def bounded_id(value: str) -> str:
    """``value`` if short; else its first 200 characters and the sha256 of the whole (stable)."""
    if len(value) <= MAX_ID:
        return value
    import hashlib

    return f"{value[:200]}…sha256:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()}"



class Classification(Frozen):
    severity: Severity
    owner: str
    response_minutes: int | None
    playbook: str | None
    rule: str = Field(description="the rule, override or default that decided")
    service: str | None = None  # the service its resources belong to (config/services.yaml)


class IncidentStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    SILENCED = "silenced"  # recorded in a maintenance window or silence: pages nobody until it ends


class PageKind(StrEnum):
    TRIGGER = "trigger"
    ESCALATION = "escalation"
    ACKNOWLEDGE = "acknowledge"  # to PagerDuty only: keeps its incident in step with ours
    RESOLVE = "resolve"
    UPDATE = "update"            # to the founders' channel: opened, acknowledged, resolved (Sev1/Sev2)
    REMINDER = "reminder"        # a duty is overdue (the post-mortem draft)

    @property
    def calls_for_action(self) -> bool:
        """Trigger and escalation pages ask a human to act; the others only inform."""
        return self in (PageKind.TRIGGER, PageKind.ESCALATION)


class PageStatus(StrEnum):
    PENDING = "pending"      # in the outbox, not yet tried
    SENDING = "sending"      # a worker holds it until lease_until
    SENT = "sent"
    FAILED = "failed"        # will be retried at next_attempt_at
    GAVE_UP = "gave_up"      # the channel refused for good; the fallback channel carries it
    CANCELLED = "cancelled"  # acknowledged or resolved before it went out


class AckLinkRef(Frozen):
    """What verifying a page's one-click ack link needs, never the link: the link is the paged
    person's credential, so only their own channel ever carries it (``links.AckLinks.reveal``)."""

    id: str  # the link's nonce; spending it is recorded as ``acklink:<id>`` with the time of use
    expires_at: datetime
    short: bool = False  # sent as a short server-side link (``/a/<id>``, web/shortlinks.py): SMS

    @property
    def redacted(self) -> str:
        """How the stored page text shows the link."""
        return f"[link {self.id} sent to the paged person only]"


class PageRecord(Frozen):
    """One message to one person on one channel for one escalation step: the outbox entry.

    ``id`` (step, person, channel) is unique within the incident, so a step never pages a
    channel twice; the text is fixed when the page is queued and is exactly what is sent.
    """

    id: str
    step: str
    role: str
    person: str
    channel: str
    kind: PageKind
    at: datetime  # queued
    text: str
    status: PageStatus = PageStatus.PENDING
    error: str | None = None
    attempts: int = 0
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    fallback_for: str | None = None
    ack_link: AckLinkRef | None = None  # the one-click acknowledgement link in this page, if any
    # the page's fields and links for channels that show them apart (PagerDuty ``custom_details``
    # and ``links``, Slack blocks, the console): PHI-free, rendered when queued (notify/render.py)
    details: tuple[tuple[str, str], ...] = ()
    page_links: tuple[tuple[str, str], ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _forget_stored_links(cls, data: Any) -> Any:
        # Records written before links were redacted held the full link: never read it back.
        if isinstance(data, dict) and "ack_url" in data:
            data = {k: v for k, v in data.items() if k != "ack_url"}
            data["text"] = re.sub(r"ack: https?://\S+", "ack: [link redacted]", str(data.get("text", "")))
        return data
    # PagerDuty dedup keys this page triggers (one) or acknowledges / resolves (every one opened
    # for the person); empty on pages queued before per-person keys: the incident id is used.
    dedup_keys: tuple[str, ...] = ()

    @property
    def delivered(self) -> bool:
        return self.status is PageStatus.SENT


class PagerDutyAlerts(Frozen):
    """One person's PagerDuty alerts for an incident (pd_alerts.py): at most two can be open.

    Keys are ``<incident id>/<person>/<n>``; ``current`` is the *n* the person's next trigger
    uses, a fresh one only once PagerDuty confirmed the last (``confirmed``). ``maybe_open``
    holds every *n* claimed for sending and not yet resolved by a confirmed send; -1 stands
    for the bare incident id (pages queued before per-person keys)."""

    person: str
    role: str = ""
    channels: tuple[str, ...] = ()  # the PagerDuty channels its triggers went out on
    current: int = 0
    confirmed: bool = False
    maybe_open: tuple[int, ...] = ()


class EscalationState(Frozen):
    """Where an incident is in its chain: ``chain`` names it (severity and how often it was
    restarted), step offsets count from ``started_at``, ``next_step`` is the next to page in
    loop ``loop`` (0 = the first pass; the chain repeats until acknowledged, escalation.py).

    The rest is bounded by the number of people and channels, never by time, so escalation
    needs no old page records: ``paged`` (people paged in this loop: a step never pages them
    twice), ``reached`` (person, channel, role that received a page: they hear the
    acknowledgement and the resolution), ``alerts`` (person, how many PagerDuty alerts were
    opened for them, older format) and ``pagerduty`` (each person's alerts that may be open)."""

    chain: str
    severity: Severity
    started_at: datetime
    next_step: int = 0
    loop: int = 0
    paged: tuple[str, ...] = ()
    reached: tuple[tuple[str, str, str], ...] = ()
    alerts: tuple[tuple[str, int], ...] = ()  # before ``pagerduty``: read once, then folded into it
    pagerduty: tuple[PagerDutyAlerts, ...] = ()


class DutyKind(StrEnum):
    """What a duty is: the one list playbook steps, ``decisions/comms`` and the API accept."""

    POSTMORTEM = "postmortem"
    CUSTOMER_NOTIFICATION = "customer_notification"
    DESIGN_PARTNER_NOTIFICATION = "design_partner_notification"
    BREACH_NOTIFICATION = "breach_notification"
    PHI_EXPOSURE_DECISION = "phi_exposure_decision"  # a security finding asks: was PHI exposed? (comms.py)


class Duty(Frozen):
    """Something a human owes by a deadline: a customer notice, a post-mortem, a breach notice."""

    kind: DutyKind
    due_at: datetime
    reason: str
    done_at: datetime | None = None
    done_by: str | None = None
    reminded_at: datetime | None = None


class WatchState(Frozen):
    """An action being verified by the sweep (a rollback's service watched for some minutes)."""

    playbook: str
    scope: str
    started_at: datetime
    until: datetime
    next_check_at: datetime
    cluster: str
    service: str
    alarm_names: tuple[str, ...] = ()
    health_url: str | None = None


class FlapState(Frozen):
    """An alarm's recent state changes (decisions/flapping.py): triggers after a recovery and recoveries."""

    changes: tuple[datetime, ...] = ()  # the latest few, enough for the N-in-M test
    last: Transition = Transition.TRIGGER  # the state it was last seen in
    count: int = 0                      # state changes counted on this incident
    since: datetime | None = None       # flapping since (None: not flapping)
    quiet_since: datetime | None = None  # flapping and recovered: resolves once quiet for the stable period


class TimelineEntry(Frozen):
    at: datetime
    what: str
    by: str = "responder"
    delivery_id: str | None = None

    @field_validator("what")
    @classmethod
    def _capped(cls, what: str) -> str:
        return clipped(what, TIMELINE_TEXT_MAX)


class Incident(Frozen):
    id: str
    key: str
    kind: str  # the kind of the signal that opened it (as a SignalKind member when it has one)
    title: str
    resource: str = ""
    severity: Severity
    owner: str
    playbook: str | None
    rule: str
    status: IncidentStatus = IncidentStatus.OPEN
    opened_at: datetime
    last_seen: datetime
    count: int = 1
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    links: tuple[str, ...] = ()
    # what a page says in words and links to (notify/render.py): the opening signal's account,
    # region and facts (names and ids the converters made PHI-free), as text
    facts: tuple[tuple[str, str], ...] = ()
    pages: tuple[PageRecord, ...] = ()
    # The stored incident holds a bounded window of its timeline (the first entries and the
    # latest ones, see chalicelib.store.bounds); every entry is also stored whole once on its own
    # (on DynamoDB once it leaves the window) and ``store.full_timeline`` reads them all.
    timeline: tuple[TimelineEntry, ...] = ()
    timeline_omitted: int = 0  # entries between the window's head and tail (on the full timeline only)
    timeline_stored: int = 0   # entries the store has written (in the window or on their own; set by the store)
    pages_rolled_up: int = 0   # old finished pages dropped from ``pages`` (their facts are on the timeline)
    annotation_count: int = 0  # informational signals received while open (the first few are on the timeline)
    note_count: int = 0        # notes written by people
    key_released: bool = False  # resolved, and the store has released its key (set by the store)
    escalation: EscalationState | None = None
    duties: tuple[Duty, ...] = ()
    watch: WatchState | None = None
    actions_taken: int = 0  # mutating playbook actions executed for this incident
    phi_exposure_suspected: bool = False
    playbook_outcome: str | None = None  # "live: 3 steps", "dry run: 3 steps", "failed: …", "… escalated"
    next_action_at: datetime | None = None  # when the sweep must look at it again
    # when it last opened or resolved, by the clock of whoever did it (the sender's signed time for
    # a webhook, ours otherwise); an event its sender dates earlier is stale
    changed_at: datetime | None = None
    # a human paused escalation until this time; it holds for the chain it was set on only
    # (a restart: a severity change, a reassignment, ends it). See decisions/actions.py.
    snoozed_until: datetime | None = None
    snoozed_chain: str | None = None
    # recorded during a maintenance window or silence (decisions/silences.py): which one, and until
    # when it pages nobody; the sweep pages it as a normal incident then, if it is still open
    silenced_by: str | None = None
    silenced_until: datetime | None = None
    flap: FlapState | None = None
    # Grouping and inhibition (decisions/grouping.py): the service the incident's resources belong
    # to; ``held`` says why it pages nobody (grouped into, or inhibited by, ``held_by``, or held under
    # it after paging, when it is a cause that opened later; or a deployment watched until
    # ``watch_until``); ``related`` the (id, title) of the incidents held
    # by this one (the first MAX_RELATED), ``related_count`` all of them.
    service: str | None = None
    held: str | None = None
    held_by: str | None = None
    # when the sweep last found ``held_by`` open (escalation.HELD_RECHECK: a holder that resolved
    # without releasing this, its worker gone, is found within that and this pages on its own)
    held_checked_at: datetime | None = None
    watch_until: datetime | None = None
    related: tuple[tuple[str, str], ...] = ()
    related_count: int = 0
    # A cause that opened after its effects had paged holds them (decisions/grouping.took_over):
    # their ids (also in ``related``); its pages say so, since those effects page no further.
    took_over: tuple[str, ...] = ()
    version: int = 0
    # What a store keeps beside the record and read with it (DynamoDB's repeat counter item): the
    # repeats counted there, which ``count`` includes and the stored record does not, and its guard
    # (``bounds.repeat_floor``) as read. None when nothing was read beside it. Never serialised.
    _beside: tuple[int, int | None] | None = PrivateAttr(default=None)
    # The due time (epoch seconds) the store's index held for it as read, if the store keeps one
    # (DynamoDB's ``due`` index: see store.dynamodb.DUE_SLACK). Never serialised.
    _due_read: int | None = PrivateAttr(default=None)
    # Read with no guard beside it: the guard its own version asks for (``bounds.repeat_floor``),
    # whose writer may still be arming it (store.dynamodb ``save``). Never serialised.
    _floor_read: int | None = PrivateAttr(default=None)

    @field_validator("kind")
    @classmethod
    def _kind_member(cls, value: str) -> str:
        # Not refused when unknown: a stored incident stays readable after its source is retired.
        return _KIND_MEMBERS.get(value, value)

    @property
    def is_open(self) -> bool:
        return self.status is not IncidentStatus.RESOLVED

    @property
    def recovery_held(self) -> bool:
        """Its alarm recovered and the recovery is held (decisions/flapping.py): open, its chain
        waiting, until the sweep resolves it, unless it fires again."""
        return self.flap is not None and self.flap.quiet_since is not None and self.is_open

    @property
    def timeline_count(self) -> int:
        """Entries on the full timeline (the window plus those omitted from it)."""
        return len(self.timeline) + self.timeline_omitted

    @property
    def time_to_acknowledge(self) -> float | None:
        """Seconds from opening to the first acknowledgement, if any."""
        if self.acknowledged_at is None:
            return None
        return (self.acknowledged_at - self.opened_at).total_seconds()

    def with_pages(self, *pages: PageRecord) -> Incident:
        """A copy where ``pages`` replace the pages with their ids, or are appended."""
        updates = {p.id: p for p in pages}
        kept = tuple(updates.pop(p.id, p) for p in self.pages)
        return self.model_copy(update={"pages": kept + tuple(updates.values())})

    def noted(self, entry: TimelineEntry, **changes: object) -> Incident:
        """A copy with ``entry`` appended to the timeline and ``changes`` applied."""
        return self.model_copy(update={**changes, "timeline": (*self.timeline, entry)})
