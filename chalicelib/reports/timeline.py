"""What a timeline entry is, for the views that retell an incident (post-mortem, terminal).

The timeline is one list of everything: signals, decisions, people's actions, playbook steps
and the outbox's delivery receipts. A post-mortem's Response section wants the actions, not
the receipts ("update page to founders-channel … sent"), and wants failed steps picked out as
action items. The entries are written by a handful of places (``notify/delivery.py``,
``playbooks/executor.py``, ``decisions/*``); the patterns below follow their wording, and the
tests in tests/test_postmortem.py drive real incidents through the pipeline so a change of
wording there shows up here.
"""

from __future__ import annotations

import re
from enum import StrEnum

from chalicelib.models import PageKind, TimelineEntry

_INFORMING = "|".join(k.value for k in PageKind if not k.calls_for_action)
_CALLING = "|".join(k.value for k in PageKind if k.calls_for_action)
_DELIVERY = re.compile(rf"^(?:{_INFORMING}) page to ")
_PAGE = re.compile(rf"^(?:{_CALLING}) page to ")
_FAILED_STEP = re.compile(
    r"^playbook \S+ failed: "                       # the plan itself failed (executor.run)
    r"|^\S+ verification failed: "                  # a watched action did not hold (executor.verify)
    r"|: failed: "                                  # an API call step raised (executor._api_call)
    r"|: (?:LIMIT_REACHED|RATE_LIMITED|BREAKER_OPEN): not called")  # the safety envelope refused


class EntryKind(StrEnum):
    SIGNAL = "signal"            # opened / repeat: the Detection section tells these
    DELIVERY = "delivery"        # an informing page's receipt (update, acknowledge, resolve, reminder)
    PAGE = "page"                # a page asking someone to act: who was paged, when, on what
    FAILED_STEP = "failed_step"  # a playbook step, plan or verification that failed or was refused
    ACTION = "action"            # everything else a person or the responder did or decided


def entry_kind(entry: TimelineEntry) -> EntryKind:
    what = entry.what
    if what.startswith(("opened:", "repeat #")):
        return EntryKind.SIGNAL
    if _DELIVERY.match(what):
        return EntryKind.DELIVERY
    if _PAGE.match(what):
        return EntryKind.PAGE
    if entry.by == "responder" and _FAILED_STEP.search(what):
        return EntryKind.FAILED_STEP
    return EntryKind.ACTION


def credited(entry: TimelineEntry) -> str | None:
    """Who to name after the entry: nobody when it was the responder or the text already says
    (``acknowledged by alice`` is not followed by ``(alice)``)."""
    return None if entry.by == "responder" or entry.by in entry.what else entry.by
