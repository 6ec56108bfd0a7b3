"""``POST /webhooks/slack``: the buttons of our Slack messages and the slash commands.

Every request is signed by Slack (its app's signing secret, ``v0`` HMAC-SHA256 over
``v0:{X-Slack-Request-Timestamp}:{raw body}``); one older than five minutes, or more than five
minutes ahead of our clock, is refused like a bad signature (401), so a captured request cannot
be replayed later. The Slack member who pressed or typed is mapped to a person of
``routing.yaml`` (``slack_user``) and acts as that person with their ``slack_role`` (viewer <
responder < admin, as an API token's): an unknown member, or one whose role is too low, gets a
one-line reason only they see and nothing changes.

- A button (``block_actions``, form field ``payload`` holding JSON): Acknowledge, Resolve or
  Take (reassign to the presser) through the same functions the API uses, so the timeline says
  who; then the message is replaced in place through its ``response_url`` (only
  ``https://hooks.slack.com/`` ones are ever called) with the incident as it now stands.
- A slash command (form fields ``command``, ``text``, ``user_id`` …): ``/oncall``,
  ``/incident ack|resolve|snooze ID [UNTIL]``, ``/page ROLE [sevN] TEXT``; the answer is the
  HTTP response itself (Slack shows it), ephemeral for refusals and ``/oncall``.

Slack shows anything but a 200 as a failure of the app, so after the signature check every
answer is a 200 with a reason; only an unverified request gets 401 (and a missing secret 503).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs

from chalicelib.errors import ChannelError, ConflictError, IncidentNotFound, InvalidRequest
from chalicelib.models import Incident, Severity
from chalicelib.notify import slack_blocks
from chalicelib.notify.slack_blocks import Verb
from chalicelib.signatures import verify_hmac
from chalicelib.sources import safejson
from chalicelib.web.api import MAX_BODY, ApiResponse, error
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps

log = logging.getLogger("responder")

MAX_AGE = timedelta(minutes=5)  # Slack's own advice, and its SDK's check: either direction
RESPONSE_URL_PREFIX = "https://hooks.slack.com/"
MAX_FORM_FIELDS = 30  # a slash command sends 14; an interaction 1
DEFAULT_SNOOZE = timedelta(hours=1)
MAX_INCIDENT_ID = 200
DEFAULT_PAGE_SEVERITY = Severity.SEV2  # a person paged by hand: around the clock, within the hour
_DURATION = re.compile(r"^(\d{1,4})([mhd])$")


class Verdict(StrEnum):
    VALID = "VALID"
    MISSING = "MISSING"              # no signature or no timestamp header
    BAD_TIMESTAMP = "BAD_TIMESTAMP"  # not whole seconds since the epoch
    TOO_OLD = "TOO_OLD"              # more than MAX_AGE before now: a replay
    FROM_THE_FUTURE = "FROM_THE_FUTURE"
    MISMATCH = "MISMATCH"


def check_signature(headers: Mapping[str, str], raw_body: bytes, secret: str, now: datetime) -> Verdict:
    """Whether Slack signed ``raw_body`` at a time within ``MAX_AGE`` of ``now`` (headers lower-cased)."""
    signature, timestamp = headers.get("x-slack-signature"), headers.get("x-slack-request-timestamp")
    if not signature or not timestamp:
        return Verdict.MISSING
    if not re.fullmatch(r"\d{1,12}", timestamp.strip()):
        return Verdict.BAD_TIMESTAMP
    signed_at = datetime.fromtimestamp(int(timestamp), UTC)
    if signed_at < now - MAX_AGE:
        return Verdict.TOO_OLD
    if signed_at > now + MAX_AGE:
        return Verdict.FROM_THE_FUTURE
    base = b"v0:" + timestamp.strip().encode() + b":" + raw_body
    return Verdict.VALID if verify_hmac(secret, base, signature, prefix="v0=") else Verdict.MISMATCH


@dataclass(frozen=True)
class Caller:
    person: str
    role: Role


def caller_of(deps: Deps, slack_user: object) -> Caller | None:
    """The person of ``routing.yaml`` whose ``slack_user`` this member id is, with their role."""
    if not isinstance(slack_user, str):
        return None
    for name, person in deps.config.routing.people.items():
        if person.slack_user is not None and person.slack_user == slack_user:
            return Caller(name, Role[person.slack_role.upper()])
    return None


def handle(deps: Deps, headers: Mapping[str, str], raw_body: bytes) -> ApiResponse:
    if len(raw_body) > MAX_BODY:
        return error(413, f"body is larger than {MAX_BODY} bytes", "body")
    if deps.slack_secret is None:
        return ApiResponse(503, {"message": "SLACK_SIGNING_SECRET: not configured", "error": "unavailable"})
    lowered = {k.lower(): v for k, v in headers.items()}
    verdict = check_signature(lowered, raw_body, deps.slack_secret(), deps.clock())
    if verdict is not Verdict.VALID:
        log.info("slack request refused", extra={"outcome": {"reason": verdict.value}})
        field = "X-Slack-Request-Timestamp" if verdict in (Verdict.TOO_OLD, Verdict.FROM_THE_FUTURE,
                                                           Verdict.BAD_TIMESTAMP) else "X-Slack-Signature"
        return error(401, f"{field}: not a request Slack signed in the last 5 minutes ({verdict.value})", field)
    try:
        form = _form(raw_body)
    except InvalidRequest as exc:
        return error(400, str(exc), exc.field)
    if "payload" in form:
        return _interaction(deps, form["payload"])
    if "command" in form:
        return _command(deps, form)
    return error(400, "body: neither an interaction (payload) nor a slash command (command)", "body")


# --- buttons ---------------------------------------------------------------------------------


def _interaction(deps: Deps, payload_text: str) -> ApiResponse:
    try:
        payload = safejson.loads(payload_text)
    except ValueError:
        return error(400, "payload: not valid JSON", "payload")
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return error(400, "payload.type: only block_actions (a button) is handled", "payload.type")
    actions = payload.get("actions")
    first = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    parsed = slack_blocks.parse_action(first.get("action_id"))
    user = payload.get("user")
    response_url = payload.get("response_url")
    reply = _replier(deps, response_url if isinstance(response_url, str) else None)
    if parsed is None:
        reply(slack_blocks.ephemeral("That button is not one of the responder's; nothing was done."))
        return _done("UNKNOWN_ACTION")
    verb, incident_id = parsed
    caller = caller_of(deps, user.get("id") if isinstance(user, dict) else None)
    refusal = _refusal(caller, Role.RESPONDER)
    if refusal is not None:
        reply(slack_blocks.ephemeral(refusal))
        return _done("REFUSED")
    assert caller is not None
    try:
        incident, what = _press(deps, verb, incident_id, caller.person)
    except (IncidentNotFound, ConflictError, InvalidRequest) as exc:
        reply(slack_blocks.ephemeral(_reason(exc, incident_id)))
        return _done("REFUSED")
    reply(slack_blocks.updated_message(incident, what))
    log.info("slack button handled", extra={"outcome": {"verb": verb.value, "incident_id": incident.id,
                                                        "by": caller.person}})
    return _done(verb.value.upper())


def _press(deps: Deps, verb: Verb, incident_id: str, person: str) -> tuple[Incident, str]:
    """Apply a button as ``person``, through the functions the API uses; the incident and what happened."""
    from chalicelib.operations import Operations

    if verb is Verb.ACK:
        incident = deps.pipeline.acknowledge(incident_id, person, source="slack")
        return incident, f"acknowledged by {incident.acknowledged_by}"
    if verb is Verb.RESOLVE:
        incident = deps.pipeline.resolve(incident_id, person, source="slack")
        return incident, f"resolved by {incident.resolved_by}"
    reason, incident = Operations(deps.pipeline).reassign(incident_id, person, person)
    return incident, (f"{person} already owns it" if str(reason) == "ALREADY_OWNER" else f"taken by {person}")


def _replier(deps: Deps, response_url: str | None) -> Callable[[dict[str, Any]], None]:
    """Posts to the interaction's ``response_url``: Slack's own hosts only, failures logged (the
    action itself is done and on the timeline either way)."""
    def reply(body: dict[str, Any]) -> None:
        if not response_url or not response_url.startswith(RESPONSE_URL_PREFIX) or deps.http is None:
            log.warning("slack response_url refused", extra={"outcome": {"reason": "not hooks.slack.com"}})
            return
        try:
            answer = deps.http.post(response_url, json.dumps(body).encode(), {"Content-Type": "application/json"},
                                    3.0)
        except ChannelError as exc:
            log.warning("slack response_url failed", extra={"outcome": {"reason": str(exc)}})
            return
        if not 200 <= answer.status < 300:
            log.warning("slack response_url failed", extra={"outcome": {"status": answer.status}})
    return reply


# --- slash commands --------------------------------------------------------------------------


def _command(deps: Deps, form: Mapping[str, str]) -> ApiResponse:
    command, text = form.get("command", "").strip(), " ".join(_unescaped(form.get("text", "")).split())
    handlers: dict[str, tuple[Role, Callable[[Deps, Caller, str], dict[str, Any]]]] = {
        "/oncall": (Role.VIEWER, _oncall), "/incident": (Role.RESPONDER, _incident),
        "/page": (Role.RESPONDER, _page)}
    if command not in handlers:
        return _answer(slack_blocks.ephemeral(f"Unknown command {command[:40]}: the responder knows "
                                              f"{', '.join(handlers)}."), "UNKNOWN_COMMAND")
    needs, run = handlers[command]
    caller = caller_of(deps, form.get("user_id"))
    refusal = _refusal(caller, needs)
    if refusal is not None:
        return _answer(slack_blocks.ephemeral(refusal), "REFUSED")
    assert caller is not None
    try:
        return _answer(run(deps, caller, text), command.lstrip("/").upper())
    except (IncidentNotFound, ConflictError, InvalidRequest) as exc:
        return _answer(slack_blocks.ephemeral(_reason(exc, None)), "REFUSED")


def _oncall(deps: Deps, caller: Caller, text: str) -> dict[str, Any]:
    from chalicelib import overrides
    from chalicelib.decisions.oncall import holders

    now = deps.clock()
    routing = overrides.with_stored(deps.config, overrides.stored(deps.store)).routing
    lines = [f"On call at {now.astimezone(routing.zone):%a %Y-%m-%d %H:%M} {routing.timezone}:"]
    lines += [f"{name}: {', '.join(holders(role, now, routing.zone)) or 'nobody'}"
              for name, role in routing.roles.items()]
    return slack_blocks.ephemeral(*lines)


INCIDENT_USAGE = "Usage: /incident ack|resolve|snooze ID [UNTIL] (UNTIL: an ISO time with offset, or 30m, 2h, 1d)"


def _incident(deps: Deps, caller: Caller, text: str) -> dict[str, Any]:
    from chalicelib.operations import Operations

    words = text.split(" ") if text else []
    if len(words) < 2 or words[0] not in ("ack", "resolve", "snooze") or len(words) > (3 if words[0] == "snooze"
                                                                                         else 2):
        raise InvalidRequest("text", INCIDENT_USAGE)
    verb, incident_id = words[0], words[1]
    if len(incident_id) > MAX_INCIDENT_ID:
        raise InvalidRequest("text", f"ID: at most {MAX_INCIDENT_ID} characters")
    if verb == "ack":
        incident = deps.pipeline.acknowledge(incident_id, caller.person, source="slack")
        return slack_blocks.in_channel(f"{incident.id} acknowledged by {incident.acknowledged_by}")
    if verb == "resolve":
        incident = deps.pipeline.resolve(incident_id, caller.person, source="slack")
        return slack_blocks.in_channel(f"{incident.id} resolved by {incident.resolved_by}")
    until = _until(words[2] if len(words) == 3 else None, deps.clock())
    reason, incident = Operations(deps.pipeline).snooze(incident_id, until, caller.person)
    zone = deps.config.routing.zone
    return slack_blocks.in_channel(f"{incident.id} snoozed by {caller.person} until "
                                   f"{until.astimezone(zone):%a %H:%M} ({reason})")


def _until(given: str | None, now: datetime) -> datetime:
    """A snooze's end: ``30m`` / ``2h`` / ``1d`` from now, or an ISO time (``actions.until_of`` checks it)."""
    from chalicelib.decisions import actions

    if given is None:
        return now + DEFAULT_SNOOZE
    if match := _DURATION.match(given):
        amount, unit = int(match.group(1)), match.group(2)
        return actions.until_of(now + timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount}), now)
    return actions.until_of(given, now)


PAGE_USAGE = "Usage: /page ROLE [sev1-4] TEXT (TEXT: what is wrong, no patient data)"


def _page(deps: Deps, caller: Caller, text: str) -> dict[str, Any]:
    from chalicelib.operations import Operations

    words = text.split(" ") if text else []
    if not words:
        raise InvalidRequest("text", PAGE_USAGE)
    role, rest = words[0], words[1:]
    severity = DEFAULT_PAGE_SEVERITY.value
    if rest and re.fullmatch(r"sev[1-4]", rest[0], re.IGNORECASE):
        severity, rest = int(rest[0][3:]), rest[1:]
    if not rest:
        raise InvalidRequest("text", PAGE_USAGE)
    reason, incident = Operations(deps.pipeline).page(severity=severity, title=" ".join(rest), role=role,
                                                      by=caller.person)
    if incident is None:
        return slack_blocks.ephemeral(f"Nothing was paged ({reason}).")
    return slack_blocks.in_channel(f"{caller.person} paged {role}: SEV{incident.severity.value} incident "
                                   f"{incident.id} ({reason})")


# --- helpers -----------------------------------------------------------------------------------


def _form(raw_body: bytes) -> dict[str, str]:
    """The form body's fields (the first of each); refused if it is not UTF-8 form encoding."""
    try:
        text = raw_body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("body", f"not a form body of at most {MAX_FORM_FIELDS} fields") from None
    return {name: values[0] for name, values in fields.items()}


def _unescaped(text: str) -> str:
    """A command's text as typed: Slack sends ``&``, ``<`` and ``>`` as ``&amp;``, ``&lt;``, ``&gt;``."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _refusal(caller: Caller | None, needs: Role) -> str | None:
    if caller is None:
        return "Your Slack account is not a person in routing.yaml (slack_user); nothing was done."
    if caller.role < needs:
        return f"{caller.person} acts as {caller.role.name.lower()} in Slack; this needs {needs.name.lower()}."
    return None


def _reason(exc: Exception, incident_id: str | None) -> str:
    if isinstance(exc, IncidentNotFound):
        return f"No incident {incident_id or exc}; nothing was done."
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def _answer(body: dict[str, Any], outcome: str) -> ApiResponse:
    log.info("slack command handled", extra={"outcome": {"reason": outcome}})
    return ApiResponse(200, body)


def _done(outcome: str) -> ApiResponse:
    """Slack ignores the body of an answer to a button; the message changes through response_url."""
    return ApiResponse(200, {"outcome": outcome})
