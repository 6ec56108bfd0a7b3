"""Short ack links for SMS: ``<public URL>/a/<id>``, with the long link's security properties.

A signed ack link (notify/links.py) is ~190 characters: an SMS of 160 cannot carry it. The
short link is a random-looking 10-character id (60 bits) that names a server-side record:

- **bound to the person and the incident**: the record holds them, as the long link's claim;
- **expiring**: the record holds the same expiry;
- **single use**: it spends the same nonce (``acklink:<nonce>``), so the short and the long
  link of one page work once between them;
- **forged → refused**: an id not derived from a nonce with the link secret names no record,
  and a record whose id does not match its nonce's derivation is refused too.

The id is ``HMAC(link secret, "short:" + nonce)``, so a retried page carries the same link.
Like the long link it is the person's credential: the store keeps the record under the id's
sha256, never the id, and the page text keeps the link redacted.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from chalicelib.errors import ConflictError
from chalicelib.models import Incident, PageRecord
from chalicelib.notify import render
from chalicelib.notify.links import AckClaim, AckLinks, LinkProblem
from chalicelib.store import IncidentStore

ID_LENGTH = 10
PATH = "/a/"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class ShortLinks:
    def __init__(self, links: AckLinks, store: IncidentStore) -> None:
        self.links, self.store = links, store

    def short_id(self, nonce: str) -> str:
        digest = int.from_bytes(hmac.new(self.links.secret().encode(), f"short:{nonce}".encode(),
                                         hashlib.sha256).digest()[:8], "big")
        chars = []
        for _ in range(ID_LENGTH):
            digest, index = divmod(digest, len(_ALPHABET))
            chars.append(_ALPHABET[index])
        return "".join(chars)

    def issue(self, incident_id: str, person: str, nonce: str, expires_at: datetime) -> str:
        """The short link for a page's ack link, its record stored (again, harmlessly, on a retry)."""
        short = self.short_id(nonce)
        record = {"incident": incident_id, "person": person, "nonce": nonce, "expires": int(expires_at.timestamp())}
        try:
            self.store.put_doc(_key(short), record, 0)
        except ConflictError:
            pass  # a retried page: the record is there already (same id, same content)
        return f"{self.links.base_url}{PATH}{short}"

    def reveal(self, page: PageRecord, incident: Incident) -> tuple[str, str | None]:
        """As ``AckLinks.reveal``; a page whose link goes short (SMS) gets the short link, fitted
        into one segment."""
        ref = page.ack_link
        if ref is None or not ref.short or not self.links.base_url:
            return self.links.reveal(page, incident)
        url = self.issue(incident.id, page.person, ref.id, ref.expires_at)
        return render.fit_sms(page.text, ref.redacted, url), url

    def check(self, short: str, now: datetime) -> AckClaim | LinkProblem:
        """The claim a genuine, unexpired short link stands for, or what is wrong (changes nothing)."""
        if len(short) != ID_LENGTH or any(char not in _ALPHABET for char in short):
            return LinkProblem.MALFORMED
        record, _ = self.store.get_doc(_key(short))
        if record is None or not hmac.compare_digest(self.short_id(str(record.get("nonce", ""))), short):
            return LinkProblem.FORGED
        try:
            claim = AckClaim(incident_id=record["incident"], person=record["person"], nonce=record["nonce"],
                             expires_at=datetime.fromtimestamp(int(record["expires"]), tz=UTC))
        except (KeyError, TypeError, ValueError):
            return LinkProblem.MALFORMED
        return LinkProblem.EXPIRED if now >= claim.expires_at else claim


def _key(short: str) -> str:
    return f"shortlink:{hashlib.sha256(short.encode()).hexdigest()}"
