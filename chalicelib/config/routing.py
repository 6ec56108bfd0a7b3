"""``routing.yaml``: channels, people, on-call roles (weekly shifts and overrides), escalation.

A role is either a plain list of people (all of them, all the time) or a schedule:

    engineering-oncall:
      coverage: always            # always | business-hours | none
      shifts:
        - {person: alice, days: [mon, tue, wed], start: "09:00", end: "09:00"}  # end ≤ start: next day
        - {person: bob, days: [thu, fri, sat, sun], start: "09:00", end: "09:00"}
      overrides:
        - {person: bob, start: 2026-12-01T09:00:00-05:00, end: 2026-12-02T09:00:00-05:00}

Shift times are wall-clock times in the routing ``timezone`` (daylight-saving handovers:
see ``chalicelib.decisions.oncall``). Validation refuses a role whose schedule leaves an hour
uncovered (for ``business-hours`` roles: an hour of business hours), naming the gap, and a
Sev1/Sev2 escalation step whose role can be empty at some hour unless the step is marked
``when: business-hours``.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from chalicelib.config.severity import Strict, severity_keys, severity_value
from chalicelib.models import Severity

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock_time(value: Any) -> Any:
    if isinstance(value, str) and value.strip() == "24:00":
        return time(0, 0)
    if isinstance(value, int):  # YAML reads 09:00 unquoted as minutes (sexagesimal)
        return time(value // 60 % 24, value % 60)
    return value


class ChannelConfig(Strict):
    type: Literal["console", "pagerduty", "sns", "slack"]
    routing_key_env: str | None = None
    endpoint: str = "https://events.pagerduty.com/v2/enqueue"
    topic_arn_env: str | None = None
    webhook_url_env: str | None = None
    # what the channel's pages look like (notify/render.py): "sms" fits one 160-character
    # GSM-7 segment with a short ack link; default: sms for SNS, full for the others
    format: Literal["sms", "full"] | None = None

    @property
    def page_format(self) -> str:
        return self.format or ("sms" if self.type == "sns" else "full")

    @model_validator(mode="after")
    def _has_secret_ref(self) -> ChannelConfig:
        needed = {"pagerduty": "routing_key_env", "sns": "topic_arn_env", "slack": "webhook_url_env"}
        field = needed.get(self.type)
        if field and not getattr(self, field):
            raise ValueError(f"a {self.type} channel needs {field}")
        if not self.endpoint.startswith("https://"):
            raise ValueError("endpoint must be https")
        return self


SLACK_USER_ID = r"^[UW][A-Z0-9]{2,31}$"  # a Slack member id (U…, or W… on Enterprise Grid)


class Person(Strict):
    channels: tuple[str, ...] = Field(min_length=1)
    fallback: str | None = None
    # Slack (chalicelib/web/slack.py): the member id whose buttons and slash commands act as this
    # person, and the role they act with there (as an API token's: viewer < responder < admin).
    slack_user: str | None = Field(None, pattern=SLACK_USER_ID)
    slack_role: Literal["viewer", "responder", "admin"] = "responder"


class Shift(Strict):
    person: str
    days: tuple[Weekday, ...] = WEEKDAYS
    start: time = time(0, 0)
    end: time = time(0, 0)  # equal to start: the whole day

    _times = field_validator("start", "end", mode="before")(_clock_time)


class Override(Strict):
    person: str
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("override times need a UTC offset")
        if self.end <= self.start:
            raise ValueError("override ends before it starts")
        return self


class Role(Strict):
    coverage: Literal["always", "business-hours", "none"] = "always"
    shifts: tuple[Shift, ...] = ()
    overrides: tuple[Override, ...] = ()
    fallback_channel: str | None = None

    def people(self) -> set[str]:
        return {s.person for s in self.shifts} | {o.person for o in self.overrides}


class BusinessHours(Strict):
    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: time = time(9, 0)
    end: time = time(18, 0)
    # Local dates with no business hours (a Sev3 then pages on the next business day); routing.yaml
    # gives them as the top-level `holidays:` list.
    holidays: frozenset[date] = frozenset()

    _times = field_validator("start", "end", mode="before")(_clock_time)


class EscalationStep(Strict):
    role: str
    after_minutes: int = Field(ge=0)
    # "business-hours": the role is meant to be empty outside business hours (a daytime team),
    # which a Sev1/Sev2 step may only be when it says so; it must still be held all business hours.
    when: Literal["always", "business-hours"] = "always"


UNTIL_ACKNOWLEDGED = "until-acknowledged"
DEFAULT_REPEAT_MINUTES = 15


class EscalationChain(Strict):
    """Steps paged at ``after_minutes`` from the start; then, unless someone acknowledged, the
    chain repeats (PagerDuty's ``num_loops``, Grafana OnCall's repeat escalation):

    - ``repeat``: how many more loops (0: none), or ``until-acknowledged``;
    - ``repeat_after_minutes``: a loop starts this long after the previous one started (longer
      than the last step). Given alone, the chain repeats until acknowledged; left out, it is
      15 minutes, or the last step + 5 if the chain is longer.

    Every repeat loop pages everyone in the chain at once: the walk already failed once.
    A Sev1 or Sev2 chain that says nothing about repeating gets its severity's default
    (``RoutingConfig._chains``)."""

    steps: tuple[EscalationStep, ...] = ()
    business_hours_only: bool = False
    repeat: Annotated[int, Field(ge=0)] | Literal["until-acknowledged"] = 0
    repeat_after_minutes: int | None = Field(None, ge=1)

    @field_validator("steps")
    @classmethod
    def _ordered(cls, steps: tuple[EscalationStep, ...]) -> tuple[EscalationStep, ...]:
        offsets = [s.after_minutes for s in steps]
        if offsets != sorted(offsets):
            raise ValueError("steps must be in order of after_minutes")
        return steps

    @field_validator("repeat", mode="before")
    @classmethod
    def _loops(cls, value: Any) -> Any:
        if value == UNTIL_ACKNOWLEDGED or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        raise ValueError(f"repeat must be a number of extra loops (0 or more) or {UNTIL_ACKNOWLEDGED!r}")

    @model_validator(mode="before")
    @classmethod
    def _period_alone_means_forever(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("repeat_after_minutes") is not None and "repeat" not in value:
            return {**value, "repeat": UNTIL_ACKNOWLEDGED}
        return value

    @model_validator(mode="after")
    def _repeat_fits(self) -> EscalationChain:
        if self.repeat and not self.steps:
            raise ValueError("repeat: a chain without steps has nothing to repeat")
        last = self.steps[-1].after_minutes if self.steps else 0
        if self.repeat_after_minutes is not None and self.repeat_after_minutes <= last:
            raise ValueError(f"repeat_after_minutes ({self.repeat_after_minutes}) must be longer than the "
                             f"last step's after_minutes ({last}): a loop finishes before the next starts")
        return self

    @property
    def loops(self) -> int | None:
        """How many loops in all (None: until acknowledged)."""
        return None if self.repeat == UNTIL_ACKNOWLEDGED else 1 + int(self.repeat)

    @property
    def period_minutes(self) -> int:
        last = self.steps[-1].after_minutes if self.steps else 0
        return self.repeat_after_minutes or max(DEFAULT_REPEAT_MINUTES, last + 5)


# What a Sev1 / Sev2 chain does after its last step when routing.yaml does not say (issue 10).
_DEFAULT_REPEAT: dict[Severity, dict[str, Any]] = {
    Severity.SEV1: {"repeat": UNTIL_ACKNOWLEDGED},
    Severity.SEV2: {"repeat": 1},
}


def _default_chains() -> dict[Severity, EscalationChain]:
    return {
        Severity.SEV1: EscalationChain(steps=(EscalationStep(role="founder-primary", after_minutes=0),
                                              EscalationStep(role="founder-backup", after_minutes=5),
                                              EscalationStep(role="engineering-oncall", after_minutes=10)),
                                       **_DEFAULT_REPEAT[Severity.SEV1]),
        Severity.SEV2: EscalationChain(steps=(EscalationStep(role="engineering-oncall", after_minutes=0),
                                              EscalationStep(role="founder-primary", after_minutes=60)),
                                       **_DEFAULT_REPEAT[Severity.SEV2]),
        Severity.SEV3: EscalationChain(steps=(EscalationStep(role="engineering-daytime", after_minutes=0),),
                                       business_hours_only=True),
        Severity.SEV4: EscalationChain(),
    }


HEARTBEAT_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"  # it goes in a URL path and an incident key
SWEEP_HEARTBEAT = "escalation-sweep"  # the sweep's own: beaten by the sweep, watched by the canary


class Heartbeat(Strict):
    """A job that must report in (``POST /heartbeats/NAME``) at least every ``every_minutes``;
    ``grace_minutes`` later without a beat it is missed: an incident of ``severity``, paged."""

    every_minutes: int = Field(ge=1, le=60 * 24 * 31)
    grace_minutes: int = Field(ge=0, le=60 * 24 * 7)
    severity: Severity

    _severity = field_validator("severity", mode="before")(severity_value)


class Communications(Strict):
    """Runbook §9-10: who hears of Sev1/Sev2 incidents, and the deadlines people owe."""

    founder_channel: str | None = None            # a channel name: posts on open, ack and resolve
    update_severities: tuple[Severity, ...] = (Severity.SEV1, Severity.SEV2)
    postmortem_due_hours: int = Field(24, ge=1)   # after resolution, Sev1/Sev2
    postmortem_severities: tuple[Severity, ...] = (Severity.SEV1, Severity.SEV2)
    breach_notice_days: int = Field(60, ge=1)     # BAA: PHI exposure suspected
    customer_notice_minutes: dict[Severity, int] = Field(
        default_factory=lambda: {Severity.SEV1: 240, Severity.SEV2: 1440})  # per the customers' SLA
    reminder_role: str = "engineering-daytime"
    canary_channel: str = "console"               # the channel the canary proves, every few minutes

    _severities = field_validator("customer_notice_minutes", mode="before")(severity_keys)


class Runbook(Strict):
    """Where a page points for what to do: ``base_url`` (the published runbook) plus ``#`` and
    the section named for the incident's playbook, else its rule (without ``rule:``), else
    ``default``. Without a ``base_url`` pages name the section only."""

    base_url: str = ""
    default: str = "4-incident-severity-matrix"
    sections: dict[str, str] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if value and not value.startswith("https://"):
            raise ValueError("runbook base_url must be https")
        return value.rstrip("#")


# What a silence or maintenance window may match on (decisions/silences.py says how each matches).
MATCH_FIELDS = ("kind", "resource", "service", "words", "severity")


def check_matchers(matchers: Any) -> dict[str, str]:
    """``matchers`` as a silence keeps them, or a ValueError naming the field at fault."""
    if not isinstance(matchers, dict) or not matchers:
        raise ValueError(f"matchers: give at least one of {', '.join(MATCH_FIELDS)}")
    for name, value in matchers.items():
        if name not in MATCH_FIELDS:
            raise ValueError(f"matchers.{name}: unknown field (one of {', '.join(MATCH_FIELDS)})")
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise ValueError(f"matchers.{name}: must be a non-empty string of at most 200 characters")
        if name == "severity" and value.strip().upper().removeprefix("SEV") not in ("1", "2", "3", "4"):
            raise ValueError(f"matchers.severity: {value!r} is not SEV1-SEV4")
    return {name: value.strip() for name, value in matchers.items()}


class MaintenanceWindow(Strict):
    """A recurring window (``maintenance_windows:``): on ``days`` from ``start`` to ``end`` local time
    (``end`` ≤ ``start``: the next day), matching signals are recorded and page nobody. Sev1 only
    with ``include_sev1: true``."""

    days: tuple[Weekday, ...] = WEEKDAYS
    start: time
    end: time
    timezone: str | None = None  # the routing timezone unless given
    matchers: dict[str, str]
    include_sev1: bool = False
    reason: str = Field(min_length=1, max_length=500)

    _times = field_validator("start", "end", mode="before")(_clock_time)

    @field_validator("matchers", mode="before")
    @classmethod
    def _matchers(cls, value: Any) -> Any:
        return check_matchers(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone {value!r} is unknown") from None
        return value


class Flapping(Strict):
    """An alarm that changes state ``transitions`` times within ``minutes`` is flapping: one incident,
    its recoveries held until it has been quiet for ``stable_minutes`` (decisions/flapping.py)."""

    transitions: int = Field(ge=2, le=100)
    minutes: int = Field(ge=1, le=24 * 60)
    stable_minutes: int = Field(ge=1, le=24 * 60)


class RoutingConfig(Strict):
    timezone: str = "America/New_York"
    business_hours: BusinessHours = BusinessHours()
    fallback_channel: str | None = None
    max_failures_before_fallback: int = Field(3, ge=1, le=20)
    channels: dict[str, ChannelConfig]
    people: dict[str, Person]
    roles: dict[str, Role]
    escalation: dict[Severity, EscalationChain] = Field(default_factory=_default_chains)
    communications: Communications = Communications()
    runbook: Runbook = Runbook()
    heartbeats: dict[Annotated[str, Field(pattern=HEARTBEAT_NAME)], Heartbeat] = Field(default_factory=dict)
    maintenance_windows: dict[Annotated[str, Field(pattern=HEARTBEAT_NAME)], MaintenanceWindow] = Field(
        default_factory=dict)
    flapping: Flapping | None = None

    @model_validator(mode="before")
    @classmethod
    def _holidays_into_business_hours(cls, value: Any) -> Any:
        # `holidays:` sits at the top of routing.yaml; the business-hours functions read it with the hours.
        if not isinstance(value, dict) or "holidays" not in value:
            return value
        rest = {k: v for k, v in value.items() if k != "holidays"}
        hours = rest.get("business_hours", {})
        if isinstance(hours, BusinessHours):
            hours = hours.model_dump()
        if not isinstance(hours, dict) or "holidays" in hours:
            raise ValueError("holidays: give them once, as the top-level holidays list")
        return {**rest, "business_hours": {**hours, "holidays": value["holidays"] or []}}

    @field_validator("roles", mode="before")
    @classmethod
    def _people_list_shorthand(cls, roles: Any) -> Any:
        # `role: [giles, christian]` means: these people, all the time.
        if not isinstance(roles, dict):
            return roles
        return {name: ({"coverage": "always" if spec else "none",
                        "shifts": [{"person": p} for p in spec]} if isinstance(spec, list) else spec)
                for name, spec in roles.items()}

    @field_validator("escalation", mode="before")
    @classmethod
    def _chains(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        merged: dict[Any, Any] = dict(_default_chains())
        for key, chain in severity_keys(value).items():
            if isinstance(chain, dict) and not {"repeat", "repeat_after_minutes"} & chain.keys():
                chain = {**chain, **_DEFAULT_REPEAT.get(key, {})}
            merged[key] = chain
        return merged

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @model_validator(mode="after")
    def _references(self) -> RoutingConfig:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {self.timezone!r} is unknown") from None
        channels = set(self.channels)
        if self.communications.founder_channel and self.communications.founder_channel not in channels:
            raise ValueError(f"communications.founder_channel {self.communications.founder_channel!r} "
                             "is not in channels")
        if self.communications.canary_channel not in channels:
            raise ValueError(f"communications.canary_channel {self.communications.canary_channel!r} is not in channels")
        if self.communications.reminder_role not in self.roles:
            raise ValueError(f"communications.reminder_role {self.communications.reminder_role!r} is not a role")
        for name in [self.fallback_channel] + [r.fallback_channel for r in self.roles.values()]:
            if name and name not in channels:
                raise ValueError(f"fallback channel {name!r} is not in channels")
        for name, person in self.people.items():
            for channel in (*person.channels, *([person.fallback] if person.fallback else [])):
                if channel not in channels:
                    raise ValueError(f"people.{name} uses unknown channel {channel!r}")
        slack_users: dict[str, str] = {}
        for name, person in self.people.items():
            if person.slack_user is not None and slack_users.setdefault(person.slack_user, name) != name:
                raise ValueError(f"people.{name}.slack_user {person.slack_user} is also "
                                 f"people.{slack_users[person.slack_user]}'s: one Slack member acts as one person")
        for role_name, role in self.roles.items():
            for person_name in sorted(role.people()):
                if person_name not in self.people:
                    raise ValueError(f"roles.{role_name} names unknown person {person_name!r}")
        for severity, chain in self.escalation.items():
            for step in chain.steps:
                if step.role not in self.roles:
                    raise ValueError(f"escalation.SEV{severity.value} names unknown role {step.role!r}")
        from chalicelib.decisions.oncall import coverage_gaps, empty_hours

        for role_name, role in self.roles.items():
            gaps = coverage_gaps(role, self.business_hours)
            if gaps:
                raise ValueError(f"roles.{role_name} has nobody on call {_gap_text(gaps)} ({self.timezone})")
        for severity in PAGE_AROUND_THE_CLOCK:
            for index, step in enumerate(self.escalation[severity].steps):
                gaps = empty_hours(self.roles[step.role], self.business_hours, within=step.when)
                if gaps:
                    hint = ("" if step.when == "business-hours"
                            else "; mark the step `when: business-hours` if it is meant to page only then")
                    raise ValueError(f"escalation.SEV{severity.value}.steps[{index}]: role {step.role!r} has nobody "
                                     f"on call {_gap_text(gaps, shown=3)} ({self.timezone}){hint}")
        return self


# A Sev1 or Sev2 step that finds its role empty pages nobody, silently: refused at load.
PAGE_AROUND_THE_CLOCK = (Severity.SEV1, Severity.SEV2)


def _gap_text(gaps: list[str], shown: int = 1) -> str:
    return ", ".join(gaps[:shown]) + (f" (and {len(gaps) - shown} more gaps)" if len(gaps) > shown else "")
