"""What counts as PHI-bearing, for everything the responder keeps or reports (stdlib only).

Two tests, shared by the stored raw payloads (``payloads``) and the error-report scrubber
(``observability``):

- ``is_phi_key``: a key whose value is dropped whole. Sentry's containers of user data
  (``user``, ``request``, ``contexts``, ``breadcrumbs``, ``extra``, frame ``vars``) and any
  key naming a personal identifier as one of its words (``email``, ``client_ip``,
  ``patient_name``, ``dateOfBirth``, ``sourceIPAddress``…). Words, not substrings: ``ip``
  must catch ``ip_address`` but not ``description``.
- ``mask``: identifiers spotted in free text (e-mail, phone, SSN, MRN, IPv4) replaced.
"""

from __future__ import annotations

import re

MASK = "[scrubbed]"

PHI_CONTAINERS = frozenset({"user", "request", "contexts", "breadcrumbs", "extra", "vars", "cookies",
                            "headers"})
PHI_WORDS = frozenset({"email", "mail", "ip", "name", "username", "firstname", "lastname", "fullname",
                       "surname", "phone", "mobile", "dob", "birth", "birthdate", "address", "addr", "mrn",
                       "patient", "ssn", "birthday", "tel", "telephone", "cell", "msisdn", "fax", "medical",
                       "diagnosis", "diagnoses", "social", "zip", "zipcode", "postcode", "postal", "insurance",
                       "medicaid", "medicare", "given", "family"})

# camelCase, PascalCase, ACRONYMWords, snake_case, kebab-case and dotted keys, split into words.
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

IDENTIFIERS = re.compile(
    # e-mail addresses; tried only where a word starts, without backtracking (possessive),
    # so a 300,000-character word costs one pass, not 300,000
    r"(?<![\w.+-])[\w.+-]++@[\w-]++\.[\w.-]++"
    r"|\b\d{3}-\d{2}-\d{4}\b"                                            # SSNs
    r"|(?<![\w+])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}\b"    # North American phone numbers
    r"|(?<![\w+])\d{3}[\s.-]\d{7}\b"                                      # 555 1234567
    r"|(?<![\w+.])[2-9]\d{9}\b"  # 5551234567 (area codes start 2-9; epoch seconds start with 1)
    r"|\+\d{10,15}\b"                                                    # E.164 phone numbers
    r"|(?i:\b(?:mrn|medical[\s_-]*record(?:[\s_-]*(?:number|no))?|patient[\s_-]*id)\b[\s:#=-]*\w[\w-]{3,})"
    r"|\bMRN\d{4,}\b"
    r"|\b(?:\d{1,3}\.){3}\d{1,3}\b")                                     # IPv4 addresses


def words(key: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(key)]


def is_phi_key(key: object) -> bool:
    text = str(key)
    return text.lower() in PHI_CONTAINERS or any(w in PHI_WORDS for w in words(text))


def mask(text: str) -> str:
    return IDENTIFIERS.sub(MASK, text)
