"""Output escaped for where it goes: one hostile alarm name through every writer.

The name pings a Slack channel, forges a link, runs a script, shows an image, splits a
table cell, starts a Markdown heading on a new line and colours a terminal. Every output
(Slack, SMS, console, PagerDuty, post-mortem, monthly report, ack page) must show it as
text and nothing else.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.handlers import on_event
from chalicelib.models import Duty, Incident, Severity
from chalicelib.notify import escape
from chalicelib.notify.channels import ConsoleChannel, PagerDutyChannel, SlackChannel, SnsChannel
from chalicelib.notify.paging import PageRequest
from chalicelib.reports.postmortem import draft, section
from chalicelib.reports.report import monthly_stats, render_markdown
from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import Deps
from tests.conftest import T0, FakeClock, RecordingChannel, installed, make_deps, sns_event

HOSTILE = ("<!channel> <https://evil.example|Acknowledge here> <script>alert(1)</script> "
           "![x](https://evil.example/p.png) a|b\n# injected \x1b[31mred\u202e")
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# --- the functions -----------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("<!channel>", "&lt;!channel&gt;"),
    ("<https://evil.example|Acknowledge here>", "&lt;https://evil.example|Acknowledge here&gt;"),
    ("a & b", "a &amp; b"),
    ("two\nlines", "two lines"),
])
def test_slack_mrkdwn_cannot_mention_or_link(text: str, expected: str) -> None:
    assert escape.slack(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("![x](https://evil.example/p.png)", "\\!\\[x\\](https://evil.example/p.png)"),
    ("[Acknowledge](https://evil.example)", "\\[Acknowledge\\](https://evil.example)"),
    ("a|b", "a\\|b"),
    ("title\n# heading", "title # heading"),
    ("*bold* _it_ `code` ~~gone~~ back\\slash", "\\*bold\\* \\_it\\_ \\`code\\` \\~\\~gone\\~\\~ back\\\\slash"),
    ("checkout-api-alb-5xx-high (us-east-1)", "checkout-api-alb-5xx-high (us-east-1)"),
])
def test_markdown_shows_text_as_written(text: str, expected: str) -> None:
    assert escape.markdown(text) == expected


def test_markdown_code_span_outgrows_the_backticks_inside() -> None:
    assert escape.markdown_code("alarm:arn") == "`alarm:arn`"
    assert escape.markdown_code("a``b") == "```a``b```"
    assert escape.markdown_code("`x") == "`` `x ``"
    assert "|" not in escape.markdown_code("a|b") and "\n" not in escape.markdown_code("a\nb")


def test_plain_text_has_no_control_or_reordering_characters() -> None:
    assert escape.plain("a\r\nb\x1b[31mc\u202ed\x00") == "a b [31mc d "
    assert escape.plain("déjà vu — ok") == "déjà vu — ok"


def test_html_escapes_text_and_attributes() -> None:
    assert escape.html("<img src=x onerror=\"alert('1')\">") == \
        "&lt;img src=x onerror=&quot;alert(&#x27;1&#x27;)&quot;&gt;"


# --- the hostile name through every writer -----------------------------------------------


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    built = make_deps(SqliteStore(tmp_path / "s.db"), clock, console, env={
        "RESPONDER_PUBLIC_URL": "https://responder.example.com", "RESPONDER_LINK_SECRET": "link-secret-for-tests"})
    yield from installed(built)


def hostile_incident(deps: Deps) -> Incident:
    outcome = on_event(sns_event("sns-cloudwatch-alarm-metric.json", message_id="m-hostile", AlarmName=HOSTILE),
                       "sns", deps)
    incident = deps.store.get(str(outcome["outcomes"][0]["incident_id"]))
    assert incident is not None and incident.title == HOSTILE  # the record keeps what was said
    return incident


def hostile_page(deps: Deps, console: RecordingChannel) -> PageRequest:
    hostile_incident(deps)
    [page] = console.sent
    assert "<!channel>" in page.text  # raw in the record; each channel escapes for itself
    return page


class Transport:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Any:
        self.bodies.append(json.loads(body))
        return type("R", (), {"status": 202, "headers": {}, "body": b"{}"})()


def test_slack_page_cannot_ping_the_channel_or_forge_a_link(deps: Deps, console: RecordingChannel) -> None:
    transport = Transport()
    SlackChannel(lambda: "https://hooks.slack.com/services/T/B/X", transport).send(hostile_page(deps, console))
    text = transport.bodies[0]["text"]
    assert "<" not in text and ">" not in text and "\n" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example|Acknowledge here&gt;" in text
    assert "ack: https://responder.example.com/ack/" in text  # our own link still works


def test_sms_page_is_one_line_of_plain_text(deps: Deps, console: RecordingChannel) -> None:
    published: list[dict[str, Any]] = []
    client = type("Sns", (), {"publish": lambda self, **kwargs: published.append(kwargs)})()
    SnsChannel(lambda: "arn:aws:sns:us-east-1:123456789012:founders-sms", lambda: client).send(
        hostile_page(deps, console))
    message = published[0]["Message"]
    assert not CONTROL.search(message) and "# injected" in message


def test_console_page_is_one_line_without_terminal_escapes(deps: Deps, console: RecordingChannel) -> None:
    stream = io.StringIO()
    ConsoleChannel(stream).send(hostile_page(deps, console))
    printed = stream.getvalue()
    assert printed.endswith("\n") and not CONTROL.search(printed[:-1])


def test_pagerduty_summary_is_plain_text(deps: Deps, console: RecordingChannel) -> None:
    transport = Transport()
    PagerDutyChannel(lambda: "R" * 32, "https://events.pagerduty.com/v2/enqueue", transport).send(
        hostile_page(deps, console))
    assert not CONTROL.search(transport.bodies[0]["payload"]["summary"])


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_postmortem_shows_hostile_names_and_notes_as_text(deps: Deps) -> None:
    incident = hostile_incident(deps)
    deps.pipeline.add_note(incident.id, "ops|lead", "cause: a|b\n## Lessons\n<img src=x onerror=alert(1)>")
    deps.pipeline.acknowledge(incident.id, "<b>jane</b>|x")
    markdown = draft(deps.store.get(incident.id), deps.config, deps.clock())
    assert "<script>" not in markdown and "<img" not in markdown and "<b>" not in markdown
    assert "![" not in markdown and "](https://evil" not in markdown.replace("\\](https://evil", "")
    assert [line for line in markdown.splitlines() if line.startswith("# ")] == [markdown.splitlines()[0]]
    assert [line for line in markdown.splitlines() if line.startswith("## Lessons")] == ["## Lessons"]
    rows = [line for line in section(markdown, "Response").splitlines() if line.startswith("| ")]
    assert rows and all(unescaped_pipes(row) == 3 for row in rows), rows
    assert "&lt;script&gt;" in markdown.splitlines()[0]


def test_monthly_report_shows_hostile_titles_as_text(deps: Deps) -> None:
    incident = hostile_incident(deps).model_copy(update={
        "severity": Severity.SEV1, "playbook": "roll|back", "playbook_outcome": "failed: <script>x</script>",
        "duties": (Duty(kind="customer_notification", due_at=T0 + timedelta(hours=1), reason="notify"),)})
    markdown = render_markdown(monthly_stats([incident], "2025-03", deps.config), [], T0)
    assert "<script>" not in markdown and "![x]" not in markdown
    [deadline] = [line for line in markdown.splitlines() if "customer notification" in line]
    assert unescaped_pipes(deadline) == 5  # state, due, duty, incident
    [playbook] = [line for line in markdown.splitlines() if "roll" in line]
    assert unescaped_pipes(playbook) == 3
    assert not [line for line in markdown.splitlines() if line.startswith("# ") and "injected" in line]


def test_ack_page_shows_the_hostile_title_as_text(deps: Deps, console: RecordingChannel) -> None:
    page = hostile_page(deps, console)  # the link as the paged person's own channel received it
    assert page.ack_url
    with Client(app_module.app, stage_name="dev") as client:
        body = client.http.get(page.ack_url.replace("https://responder.example.com", "")).body.decode()
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
