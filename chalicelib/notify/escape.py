"""Text from outside (alarm names, Sentry titles, people's notes) escaped for where it goes.

One function per output format, used by every writer of that format:

- ``slack``: Slack mrkdwn reads ``<…>`` as a link or a mention (``<!channel>`` pings
  everyone, ``<https://evil.example|Acknowledge here>`` shows a fake button text), so
  ``&``, ``<`` and ``>`` become entities, as Slack's docs ask.
- ``markdown`` (and ``markdown_code`` for a code span): post-mortems and reports. Raw HTML
  (``<script>``), images, links, emphasis, ``|`` that would split a table cell, and line
  breaks that would start a new heading or list are all neutralised; the text reads the same.
- ``html``: the ack page (attribute-safe).
- ``plain``: SMS, the console, PagerDuty summaries: control characters (ANSI escapes,
  carriage returns, bidi overrides that reorder what a phone shows) become spaces.

Escaping happens at the writer, never on stored data: the store keeps what was said.
"""

from __future__ import annotations

import html as _html
import re

# C0/C1 controls (newlines, ESC of ANSI sequences, DEL) and the Unicode bidi and
# zero-width format characters that can make a page read differently than it is.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]+")
# The punctuation CommonMark/GFM may read as syntax inside a line (emphasis, code, links and
# images, table cells, strikethrough); a backslash makes each literal. Line-start syntax
# (``#``, ``-``, ``1.``) cannot arise: ``plain`` has removed every line break.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]!|~])")


def plain(text: str) -> str:
    """One line of plain text: every run of control or format characters becomes one space."""
    return _CONTROLS.sub(" ", text)


def slack(text: str) -> str:
    """Slack mrkdwn: no links, mentions or broadcasts can be spelled by ``text``."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown(text: str) -> str:
    """Inline Markdown (a heading, a list item or a table cell): ``text`` shows as written."""
    escaped = _html.escape(plain(text), quote=False)  # <script>, <img>, entities: shown, not parsed
    return _MARKDOWN_SYNTAX.sub(r"\\\1", escaped)


def markdown_code(text: str) -> str:
    """A Markdown code span holding ``text``: fenced with more backticks than it contains."""
    body = plain(text).replace("|", "\u2502")  # GitHub splits table cells on | even inside code
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def html(text: str) -> str:
    """HTML text or attribute value."""
    return _html.escape(text, quote=True)
