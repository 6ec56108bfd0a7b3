"""One-click acknowledgement links: signed, bound to an incident and the paged person,
expiring, single-use, and carried only by that person's own channel.

A link is ``<RESPONDER_PUBLIC_URL>/ack/<payload>.<signature>``; the payload (base64url JSON)
holds the incident id, the person, the expiry and a nonce; the signature is
HMAC-SHA256 with the link secret. ``GET`` on a link changes nothing (mail scanners prefetch
links); its form ``POST`` acknowledges once: the nonce is recorded with a conditional
write, so a second use finds it taken.

Whoever holds the link can acknowledge as the paged person, so the link is never stored:
a queued page keeps an ``AckLinkRef`` (the nonce and the expiry) and shows the link
redacted in its text; ``reveal`` rebuilds the same signed link when the page is handed to
the person's channel. Anything the API or the store shows is useless without the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from chalicelib.errors import ConflictError
from chalicelib.models import AckLinkRef, Frozen, Incident, PageRecord
from chalicelib.notify.paging import SUMMARY_LIMIT
from chalicelib.store import IncidentStore

DEFAULT_TTL = timedelta(minutes=30)


class LinkProblem(StrEnum):
    MALFORMED = "MALFORMED"
    FORGED = "FORGED"
    EXPIRED = "EXPIRED"
    USED = "USED"


class AckClaim(Frozen):
    incident_id: str
    person: str
    expires_at: datetime
    nonce: str


class AckLinks:
    def __init__(self, base_url: str, secret: Callable[[], str], ttl: timedelta = DEFAULT_TTL) -> None:
        self.base_url, self._secret, self.ttl = base_url.rstrip("/"), secret, ttl

    def issue(self, incident: Incident, person: str, now: datetime) -> AckLinkRef:
        """A new link for ``person``'s page: what is stored of it (the link itself is built on sending)."""
        expires = datetime.fromtimestamp(int((now + self.ttl).timestamp()), tz=UTC)  # whole seconds, as signed
        return AckLinkRef(id=secrets.token_hex(8), expires_at=expires)

    def make(self, incident: Incident, person: str, now: datetime) -> str:
        """A new link, whole: for a caller that hands it to the person at once (never to be stored)."""
        return self.url(incident.id, person, self.issue(incident, person, now))

    def url(self, incident_id: str, person: str, ref: AckLinkRef) -> str:
        """The signed link for ``ref``: the same string every time, so a retried page carries the same link."""
        claim = {"i": incident_id, "p": person, "e": int(ref.expires_at.timestamp()), "n": ref.id}
        payload = _b64(json.dumps(claim, separators=(",", ":")).encode())
        return f"{self.base_url}/ack/{payload}.{self._sign(payload)}"

    def reveal(self, page: PageRecord, incident: Incident) -> tuple[str, str | None]:
        """The text and link to hand to the page's channel: the stored, redacted text with the link in."""
        if page.ack_link is None or not self.base_url:  # without an address, the page goes without its link
            return page.text, None
        url = self.url(incident.id, page.person, page.ack_link)
        head, found, tail = page.text.partition(page.ack_link.redacted)
        if not found:
            return page.text[:SUMMARY_LIMIT], url
        # the text before the link gives way, so a long text never cuts the link itself
        return head[:max(SUMMARY_LIMIT - len(url) - len(tail), 0)] + url + tail[:SUMMARY_LIMIT - len(url)], url

    def check(self, token: str, now: datetime) -> AckClaim | LinkProblem:
        """The claim of a genuine, unexpired link, or what is wrong with it (changes nothing)."""
        payload, _, signature = token.partition(".")
        if not payload or not signature:
            return LinkProblem.MALFORMED
        if not hmac.compare_digest(self._sign(payload).encode(), signature.encode("utf-8", "replace")):
            return LinkProblem.FORGED
        try:
            raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            claim = AckClaim(incident_id=raw["i"], person=raw["p"], nonce=raw["n"],
                             expires_at=datetime.fromtimestamp(int(raw["e"]), tz=now.tzinfo))
        except (ValueError, KeyError, TypeError, OverflowError):
            return LinkProblem.MALFORMED
        return LinkProblem.EXPIRED if now >= claim.expires_at else claim

    @staticmethod
    def use(store: IncidentStore, claim: AckClaim, now: datetime) -> bool:
        """Spend the link; False if it was spent before (a conditional write decides)."""
        try:
            store.put_doc(f"acklink:{claim.nonce}", {"used_at": now.isoformat(), "incident": claim.incident_id}, 0)
        except ConflictError:
            return False
        return True

    def secret(self) -> str:
        """The link secret, for links derived from it (web/shortlinks.py)."""
        return self._secret()

    def sign_text(self, text: str) -> str:
        """The HMAC of ``text`` with the link secret, for other long-lived signed URLs (heartbeats):
        the caller keeps ``text`` apart from ack payloads (base64url JSON)."""
        return self._sign(text)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret().encode(), payload.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
