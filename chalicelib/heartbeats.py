"""Heartbeats (dead man's switches, issue 13 §4): jobs report in, the sweep notices who stopped.

A beat (``POST /heartbeats/NAME``, ``python -m chalicelib heartbeat NAME``) is kept in the store as
the document ``heartbeat:NAME`` (both stores: ``get_doc``/``put_doc``). Every sweep reads each
configured heartbeat and decides (``decisions.heartbeats.heartbeat_state``); a missed one becomes a
``heartbeat`` signal through the pipeline like any other: one incident per heartbeat (its key is
``heartbeat:NAME``; the delivery id names the beat it missed after, so later sweeps are duplicates),
classified by the configured severity, escalated and paged. The next beat sends the resolving signal.

The sweep beats ``escalation-sweep`` itself; it does not check that one (a dead sweep checks
nothing): the canary does (``canary.py``), and the canary's out-of-band alarm watches the canary.

A job that cannot hold a bearer token (a cron line) uses its signed URL: ``?sig=`` is the HMAC of
``heartbeat:NAME`` with the ack-link secret. It does not expire; rotating that secret revokes every
heartbeat URL at once (and the ack links in flight, which expire within the hour anyway).
"""

from __future__ import annotations

import hmac
import weakref
from datetime import datetime
from typing import Any

from chalicelib.config.routing import SWEEP_HEARTBEAT, Heartbeat
from chalicelib.decisions.heartbeats import PAGED, Reason, heartbeat_state, quiet_until
from chalicelib.errors import ConflictError, InvalidRequest
from chalicelib.models import Classification, Signal, SignalKind, Transition
from chalicelib.notify.links import AckLinks
from chalicelib.pipeline import Pipeline
from chalicelib.store.retry import retried


class UnknownHeartbeat(InvalidRequest):
    """A name that is not in ``heartbeats:`` (404 on the API)."""


def incident_key(name: str) -> str:
    return f"heartbeat:{name}"


def signature(links: AckLinks, name: str) -> str:
    # "heartbeat:…" is not base64url, so it can never be an ack link's signed payload.
    return links.sign_text(f"heartbeat:{name}")


def signature_ok(links: AckLinks | None, name: str, given: str | None) -> bool:
    if links is None or not given:
        return False
    return hmac.compare_digest(signature(links, name).encode(), given.encode("utf-8", "replace"))


def signed_url(links: AckLinks, name: str) -> str:
    return f"{links.base_url}/heartbeats/{name}?sig={signature(links, name)}"


# Per store: each heartbeat document this process last read or wrote, its version, and when. The
# sweep (every minute) reads a document again only once it may say something new
# (``quiet_until``), and beats on the version it wrote last (a lost race reads it again): on
# DynamoDB every read is billed.
Known = tuple[dict[str, Any] | None, int, datetime]
_known: weakref.WeakKeyDictionary[Any, dict[str, Known]] = weakref.WeakKeyDictionary()


class Heartbeats:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline, self.store = pipeline, pipeline.store
        self.configured: dict[str, Heartbeat] = pipeline.config.routing.heartbeats
        self.known = _known.setdefault(self.store, {})

    def config_of(self, name: str) -> Heartbeat:
        if name not in self.configured:
            raise UnknownHeartbeat("name", f"no heartbeat {name!r} in routing.yaml heartbeats")
        return self.configured[name]

    def beat(self, name: str, by: str, now: datetime) -> dict[str, Any]:
        """Record a beat (a later one is never overwritten by an earlier one); resolve the
        heartbeat's open incident, if any."""
        self.config_of(name)
        written = self.known.pop(name, None)  # the first attempt trusts the version this process wrote

        def attempt() -> dict[str, Any]:
            nonlocal written
            doc, version = written[:2] if written else self.store.get_doc(incident_key(name))
            written = None
            doc = dict(doc or {"watching_since": now.isoformat()})
            previous = _time(doc.get("last_beat"))
            if previous is None or now > previous:
                doc |= {"last_beat": now.isoformat(), "by": by}
            self.store.put_doc(incident_key(name), doc, version)
            self.known[name] = (doc, version + 1, now)
            return doc
        doc = retried(attempt, what=f"heartbeat {name}")
        resolved = None
        if self.store.get_open(incident_key(name)) is not None:
            outcome = self.pipeline.respond(self._signal(name, Transition.RESOLVE, f"beat:{now.isoformat()}",
                                                         f"heartbeat {name} beat again", now),
                                            classification=self._classification(name))
            resolved = outcome.incident_id
        return self.status(name, now, doc) | {"resolved_incident": resolved}

    def status(self, name: str, now: datetime, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """``doc``: the heartbeat's document as just written (else it is read)."""
        config = self.config_of(name)
        if doc is None:
            doc, _ = self.store.get_doc(incident_key(name))
        last, since = _time((doc or {}).get("last_beat")), _time((doc or {}).get("watching_since"))
        return {"name": name, "every_minutes": config.every_minutes, "grace_minutes": config.grace_minutes,
                "severity": config.severity.value, "last_beat": last.isoformat() if last else None,
                "state": heartbeat_state(config, last, now, since).value}

    def list(self, now: datetime) -> list[dict[str, Any]]:
        return [self.status(name, now) for name in sorted(self.configured)]

    def sweep(self, now: datetime) -> dict[str, str]:
        """Beat the sweep's own heartbeat, then check the others: {name: state} of those late or missed."""
        if SWEEP_HEARTBEAT in self.configured:
            self.beat(SWEEP_HEARTBEAT, "escalation-sweep", now)
        found: dict[str, str] = {}
        for name, config in sorted(self.configured.items()):
            if name == SWEEP_HEARTBEAT:
                continue
            last, since = self._watched(name, now)
            state = heartbeat_state(config, last, now, since)
            if state not in (Reason.OK, Reason.NEVER_SEEN):
                found[name] = state.value
            if state in PAGED and self.store.get_open(incident_key(name)) is None:
                after = (last or since or now).isoformat()
                text = (f"heartbeat {name} missed: no beat since {after}" if last else
                        f"heartbeat {name} never arrived: watched since {after}")
                self.pipeline.respond(self._signal(name, Transition.TRIGGER, f"missed:{after}", text, now),
                                      classification=self._classification(name))
        return found

    def own_state(self, now: datetime) -> Reason | None:
        """The sweep's own heartbeat, for the canary (None when it is not configured)."""
        if SWEEP_HEARTBEAT not in self.configured:
            return None
        last, since = self._watched(SWEEP_HEARTBEAT, now)
        return heartbeat_state(self.configured[SWEEP_HEARTBEAT], last, now, since)

    def _watched(self, name: str, now: datetime) -> tuple[datetime | None, datetime | None]:
        """(last beat, watching since); a heartbeat first seen configured is watched from ``now``."""
        known = self.known.get(name)
        if known is not None and known[0] is not None and known[2] <= now < quiet_until(
                self.configured[name], _time(known[0].get("last_beat")), _time(known[0].get("watching_since")),
                known[2]):
            return _time(known[0].get("last_beat")), _time(known[0].get("watching_since"))
        doc, version = self.store.get_doc(incident_key(name))
        if doc is None:
            doc, version = {"watching_since": now.isoformat()}, 1
            try:
                self.store.put_doc(incident_key(name), doc, 0)
            except ConflictError:  # another worker started watching it first: its start holds
                doc, version = self.store.get_doc(incident_key(name))
                doc = doc or {"watching_since": now.isoformat()}
        self.known[name] = (doc, version, now)
        return _time(doc.get("last_beat")), _time(doc.get("watching_since"))

    def _signal(self, name: str, transition: Transition, what: str, title: str, now: datetime) -> Signal:
        return Signal(kind=SignalKind.HEARTBEAT, source="heartbeat", delivery_id=f"heartbeat:{name}:{what}",
                      incident_key=incident_key(name), transition=transition, occurred_at=now, title=title,
                      resource=name)

    def _classification(self, name: str) -> Classification:
        severity = self.configured[name].severity
        row = self.pipeline.config.severity.matrix[severity]
        return Classification(severity=severity, owner=row.owner, response_minutes=row.response_minutes,
                              playbook=None, rule=f"heartbeat {name}")


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
