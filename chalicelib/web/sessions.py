"""Console sessions: an API token exchanged once for a session cookie.

A browser cannot send a bearer token with a link or a form, and a token pasted into every
page would live in its history. So the console's login form takes the token once, checks it
like the API does (``TokenService.verify``) and answers with a session cookie:

- the cookie holds 32 random bytes; the store keeps only their sha256 (a store dump opens no
  session), the person, the role, the token's id, a CSRF secret and the expiry;
- ``HttpOnly`` (no script reads it), ``Secure``, ``SameSite=Strict`` (another site's page
  cannot make the browser send it) and ``Path`` limited to the console;
- every request re-reads the token record: revoking the token ends its sessions at once;
- every form carries the session's CSRF secret, compared in constant time.

Sessions last ``SESSION_HOURS``; logging out ends one early.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import NamedTuple

from chalicelib.store import IncidentStore
from chalicelib.store.retry import retried
from chalicelib.web.tokens import Principal, Role, TokenService

COOKIE = "rsp_console"
SESSION_HOURS = 12


class Session(NamedTuple):
    principal: Principal
    csrf: str
    key: str  # the store key of its record (``session:<sha256>``)
    expires_at: datetime


class SessionService:
    def __init__(self, store: IncidentStore, clock: Callable[[], datetime]) -> None:
        self.store, self.clock = store, clock
        self.tokens = TokenService(store, clock)

    def open(self, token: str) -> tuple[str, Session] | None:
        """A new session for a valid API token: (the cookie value, the session); None otherwise."""
        principal = self.tokens.verify(token.strip())
        if principal is None:
            return None
        cookie_value = secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + timedelta(hours=SESSION_HOURS)
        session = Session(principal, secrets.token_urlsafe(24), _key(cookie_value), expires)
        self.store.put_doc(session.key, {"user": principal.user, "role": principal.role.name.lower(),
                                         "token_id": principal.token_id, "csrf": session.csrf,
                                         "created_at": now.isoformat(), "expires_at": expires.isoformat(),
                                         "ended_at": None}, 0)
        return cookie_value, session

    def find(self, headers: Mapping[str, str]) -> Session | None:
        """The live session the request's cookie names; None when absent, ended, expired or revoked."""
        value = cookie_value(headers)
        if value is None:
            return None
        key = _key(value)
        record, _ = self.store.get_doc(key)
        if not record or record.get("ended_at"):
            return None
        expires = datetime.fromisoformat(record["expires_at"])
        if self.clock() >= expires:
            return None
        token, _ = self.store.get_doc(f"token:{record['token_id']}")
        if not token or token.get("revoked_at"):
            return None
        principal = Principal(user=token["user"], role=Role[token["role"].upper()], token_id=record["token_id"])
        return Session(principal, record["csrf"], key, expires)

    def close(self, session: Session) -> None:
        def attempt() -> None:
            record, version = self.store.get_doc(session.key)
            if record and not record.get("ended_at"):
                record["ended_at"] = self.clock().isoformat()
                self.store.put_doc(session.key, record, version)
        retried(attempt, what="console session")


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf.encode(), str(submitted).encode())


def cookie_value(headers: Mapping[str, str]) -> str | None:
    raw = next((v for k, v in headers.items() if k.lower() == "cookie"), "")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel and 20 <= len(morsel.value) <= 100 else None


def set_cookie(value: str, path: str, *, max_age: int = SESSION_HOURS * 3600) -> str:
    return f"{COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"


def clear_cookie(path: str) -> str:
    return set_cookie("", path, max_age=0)


def _key(cookie: str) -> str:
    return "session:" + hashlib.sha256(cookie.encode()).hexdigest()
