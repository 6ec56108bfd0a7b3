"""Slack messages with Acknowledge / Resolve / Take buttons (Block Kit), as pure functions.

A button carries the incident id and nothing else (its ``action_id`` is ``VERB:INCIDENT_ID``,
its ``value`` the id): never a title, a person or an ack link, so nothing a button sends back
can hold PHI or a credential. Whoever presses it acts as themselves
(``chalicelib/web/slack.py`` maps the Slack member to a person of ``routing.yaml``), which is
why a message to a whole channel may carry buttons while the ack link stays the paged
person's alone.

Which buttons: a page asking for action (trigger, escalation) and the founders' channel post
of an opening or a raise carry all three; the post of an acknowledgement carries Resolve and
Take; anything else (a resolution, a stand-down, a reminder) none. Once a button is pressed
the message is replaced by the incident as it now stands, with the buttons its state allows.

The message is plain JSON (Slack's documented shapes); ``slack_sdk.models.blocks`` is not
used on the page path: importing it costs ~45 ms of CPU and 86 modules (README, Slack).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from chalicelib.models import Incident, IncidentStatus, PageKind
from chalicelib.notify import escape
from chalicelib.notify.paging import PageRequest, render

SECTION_LIMIT = 3000  # Slack: a section's text
ACTION_ID_LIMIT = 255  # Slack: an action_id, a block_id, a button's value
BLOCK_ID = "incident-actions"


class Verb(StrEnum):
    ACK = "ack"
    RESOLVE = "resolve"
    TAKE = "take"


LABELS = {Verb.ACK: "Acknowledge", Verb.RESOLVE: "Resolve", Verb.TAKE: "Take"}
ALL = (Verb.ACK, Verb.RESOLVE, Verb.TAKE)
AFTER_ACK = (Verb.RESOLVE, Verb.TAKE)


def page_verbs(page: PageRequest) -> tuple[Verb, ...]:
    """The buttons a page carries (see the module's docstring)."""
    if page.kind in (PageKind.TRIGGER, PageKind.ESCALATION):
        return ALL
    if page.kind is PageKind.UPDATE:  # the founders' channel: update:{event}:{channel}
        event = page.page_id.split(":")[1] if page.page_id.count(":") >= 2 else ""
        if event == "opened" or event.startswith("raised"):
            return ALL
        if event == "acknowledged":
            return AFTER_ACK
    return ()


def status_verbs(incident: Incident) -> tuple[Verb, ...]:
    """The buttons a message about ``incident`` keeps once someone has pressed one."""
    return {IncidentStatus.OPEN: ALL, IncidentStatus.ACKNOWLEDGED: AFTER_ACK}.get(incident.status, ())


def message(text: str, incident_id: str, verbs: tuple[Verb, ...]) -> dict[str, Any]:
    """A message: ``text`` (escaped for Slack) as its fallback and a section, then the buttons."""
    shown = escape.slack(text)[:SECTION_LIMIT]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": shown}}]
    buttons = [button(verb, incident_id) for verb in verbs]
    if buttons and all(buttons):
        blocks.append({"type": "actions", "block_id": BLOCK_ID, "elements": buttons})
    return {"text": shown, "blocks": blocks}


def page_message(page: PageRequest) -> dict[str, Any]:
    return message(page.text, page.incident_id, page_verbs(page))


def updated_message(incident: Incident, what: str) -> dict[str, Any]:
    """The message in place of the one whose button was pressed: the incident as it stands now,
    what was done and by whom, the buttons its state allows (Slack's ``replace_original``)."""
    verb = {IncidentStatus.OPEN: "OPEN", IncidentStatus.ACKNOWLEDGED: "ACKNOWLEDGED"}.get(incident.status, "RESOLVED")
    return {"replace_original": True,
            **message(render(incident, PageKind.UPDATE, verb=verb, note=what), incident.id, status_verbs(incident))}


def button(verb: Verb, incident_id: str) -> dict[str, Any]:
    """One button, or an empty dict when the id would not fit Slack's limits (no buttons then)."""
    action_id = f"{verb.value}:{incident_id}"
    if len(action_id) > ACTION_ID_LIMIT:
        return {}
    element: dict[str, Any] = {"type": "button", "action_id": action_id, "value": incident_id,
                               "text": {"type": "plain_text", "text": LABELS[verb]}}
    if verb is Verb.ACK:
        element["style"] = "primary"
    return element


def parse_action(action_id: object) -> tuple[Verb, str] | None:
    """``(verb, incident id)`` from a pressed button's ``action_id``; None for anything else."""
    if not isinstance(action_id, str) or len(action_id) > ACTION_ID_LIMIT or ":" not in action_id:
        return None
    verb, _, incident_id = action_id.partition(":")
    if verb not in Verb.__members__.values() or not incident_id:
        return None
    return Verb(verb), incident_id


def ephemeral(*lines: str) -> dict[str, Any]:
    """An answer only the person who asked sees; the original message stays."""
    return {"response_type": "ephemeral", "replace_original": False, "text": _lines(lines)}


def in_channel(*lines: str) -> dict[str, Any]:
    """An answer everyone in the channel sees (who paged, who acknowledged)."""
    return {"response_type": "in_channel", "text": _lines(lines)}


def _lines(lines: tuple[str, ...]) -> str:
    return "\n".join(escape.slack(line) for line in lines)[:SECTION_LIMIT]
