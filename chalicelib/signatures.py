"""Webhook signature checks: one HMAC comparison for every sender that signs its raw body.

Senders sign the exact bytes they send, so the check runs on the raw body, never on
re-serialised JSON. A header may carry several signatures (PagerDuty sends one per active
secret during a rotation, each as ``v1=<hex>``); any one matching is enough. Comparison is
constant-time and on bytes: ``hmac.compare_digest`` refuses non-ASCII strings, and a header
can hold anything. Hex digests are compared case-insensitively, as senders differ.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Literal

Encoding = Literal["hex", "base64", "base64url"]


def verify_hmac(secret: str, body: bytes, given: str | Iterable[str], *, algorithm: str = "sha256",
                encoding: Encoding = "hex", prefix: str = "") -> bool:
    """True if any of ``given`` (each ``prefix`` + the encoded HMAC of ``body``) matches.

    A candidate without ``prefix`` never matches; whitespace around a candidate is ignored.
    """
    digest = hmac.new(secret.encode("utf-8"), body, getattr(hashlib, algorithm)).digest()
    expected = _encode(digest, encoding).encode()
    candidates = [given] if isinstance(given, str) else list(given)
    matched = False
    for candidate in candidates:
        text = candidate.strip()
        if not text.startswith(prefix):
            continue
        text = text[len(prefix):]
        if encoding == "hex":
            text = text.lower()
        # every candidate is compared, so timing says nothing about which one matched
        matched |= hmac.compare_digest(expected, text.encode("utf-8", "replace"))
    return matched


def _encode(digest: bytes, encoding: Encoding) -> str:
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
