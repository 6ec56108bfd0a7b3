"""API tokens: bearer tokens bound to a person and a role, stored only as salted hashes.

A token reads ``rsp_<id>_<secret>``: the id finds the stored record, the secret is checked
against ``sha256(salt + secret)`` in constant time. The secret is 32 random bytes, so a
fast hash is enough (nothing to brute-force); it is shown once, at creation. Roles nest:
``viewer`` reads, ``responder`` also acknowledges, resolves and writes notes, ``admin``
also manages tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from enum import IntEnum
from typing import Any

from chalicelib.errors import InvalidRequest
from chalicelib.models import Frozen
from chalicelib.store import IncidentStore
from chalicelib.store.retry import retried


class Role(IntEnum):
    VIEWER = 1
    RESPONDER = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            raise InvalidRequest("role", "must be viewer, responder or admin") from None


class Principal(Frozen):
    user: str
    role: Role
    token_id: str


class TokenService:
    def __init__(self, store: IncidentStore, clock: Callable[[], datetime]) -> None:
        self.store, self.clock = store, clock

    def create(self, user: str, role: Role, created_by: str = "cli") -> tuple[str, str]:
        """A new token for ``user``; returns (token id, the token itself, shown once)."""
        if not user.strip() or len(user) > 100:
            raise InvalidRequest("user", "must be 1-100 characters")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        record = {"user": user, "role": role.name.lower(), "salt": salt, "hash": _hash(salt, secret),
                  "created_at": self.clock().isoformat(), "created_by": created_by, "revoked_at": None,
                  "revoked_by": None}
        self.store.put_doc(f"token:{token_id}", record, 0)
        return token_id, f"rsp_{token_id}_{secret}"

    def verify(self, token: str | None) -> Principal | None:
        """The principal for a valid, unrevoked token; None for anything else."""
        parsed = _parse(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        record, _ = self.store.get_doc(f"token:{token_id}")
        if not record or record.get("revoked_at"):
            return None
        if not hmac.compare_digest(record["hash"], _hash(record["salt"], secret)):
            return None
        return Principal(user=record["user"], role=Role[record["role"].upper()], token_id=token_id)

    def revoke(self, token_or_id: str, by: str = "cli") -> str:
        token_id = token_id_of(token_or_id)

        def attempt() -> str:
            record, version = self.store.get_doc(f"token:{token_id}")
            if record is None:
                raise InvalidRequest("token", f"no token {token_id}")
            if not record.get("revoked_at"):
                record["revoked_at"], record["revoked_by"] = self.clock().isoformat(), by
            self.store.put_doc(f"token:{token_id}", record, version)
            return token_id
        return retried(attempt, what=f"token {token_id}")

    def describe(self, token_id: str) -> dict[str, Any] | None:
        record, _ = self.store.get_doc(f"token:{token_id}")
        if record is None:
            return None
        return {k: v for k, v in record.items() if k not in ("salt", "hash")} | {"id": token_id}


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def token_id_of(token_or_id: str) -> str:
    """The id of a token given as itself (``rsp_<id>_<secret>``) or by its id."""
    parsed = _parse(token_or_id)
    return parsed[0] if parsed else token_or_id


def _parse(token: str | None) -> tuple[str, str] | None:
    if not token or not token.startswith("rsp_"):
        return None
    token_id, sep, secret = token[4:].partition("_")
    if not sep or len(token_id) != 12 or not secret:
        return None
    return token_id, secret


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()
