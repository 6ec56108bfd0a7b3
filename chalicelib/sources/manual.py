"""A human pages on purpose (``POST /incidents``, ``python -m chalicelib page``): the request
becomes a ``manual`` signal and takes the same path as every other signal.

The title is free text from a person (a customer's e-mail, pasted): whitespace is collapsed,
identifiers are masked (``phi.mask``, as for every other title that is kept) and it is clipped,
here, before anything stores or shows it. Writers escape it for where it goes (``notify.escape``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from chalicelib import phi
from chalicelib.errors import InvalidRequest
from chalicelib.models import Signal, SignalKind, Transition, clipped

KIND = SignalKind.MANUAL
MAX_TITLE = 200  # a page is read on a phone: the gist, not the e-mail
MAX_KEY = 200


def title_of(value: object) -> str:
    """The title as kept: one line, identifiers masked, at most ``MAX_TITLE`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("title", "must be a non-empty string")
    return clipped(phi.mask(" ".join(value.split())), MAX_TITLE)


def key_of(value: object) -> str | None:
    """A deduplication key: pages with the same key share the incident open for it."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_KEY:
        raise InvalidRequest("key", f"must be a string of 1-{MAX_KEY} characters")
    return phi.mask(value.strip())


def to_signal(title: str, key: str | None, by: str, now: datetime, asked: str = "") -> Signal:
    """The ``manual`` signal for a page ``by`` asked for at ``now`` (``asked``: severity and whom).
    The delivery id is derived from the whole request, so the same request sent twice at the same
    moment is one delivery; without a key each page opens its own incident."""
    basis = "\n".join((by, title, key or "", asked, now.isoformat()))
    digest = hashlib.sha256(basis.encode()).hexdigest()[:16]
    return Signal(kind=KIND, source="manual", delivery_id=f"manual:{digest}",
                  incident_key=f"manual:{key}" if key else f"manual:{digest}",
                  transition=Transition.TRIGGER, occurred_at=now, title=title, details=(("paged_by", by),))
