"""What a page says, per channel (issue 15 §1): golden files for every kind in the fixtures, SMS in
one GSM-7 segment, and the short ack link with the long link's security on both stores.

Golden files live in tests/golden/pages/; ``UPDATE_GOLDEN=1`` rewrites them (a missing or
different file fails the test otherwise, never silently).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

import app as app_module
from chalicelib import config as config_module
from chalicelib.config import ResponderConfig
from chalicelib.config.playbooks import RateLimit
from chalicelib.decisions import escalation
from chalicelib.decisions.classify import classify
from chalicelib.decisions.incidents import new_incident
from chalicelib.handlers import on_event
from chalicelib.models import AckLinkRef, Incident, IncidentStatus, PageKind, PageRecord, Severity
from chalicelib.notify import render
from chalicelib.notify.channels import ConsoleChannel, PagerDutyChannel, SlackChannel, SnsChannel
from chalicelib.notify.links import AckLinks, LinkProblem
from chalicelib.notify.paging import request_for
from chalicelib.playbooks.executor import StepResult, could_not_act
from chalicelib.settings import Settings
from chalicelib.sources import to_signals
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.sqlite import SqliteStore
from chalicelib.web.shortlinks import ShortLinks
from chalicelib.wiring import Deps, build_deps
from tests.conftest import (
    SENTRY_SECRET,
    T0,
    FakeClock,
    RecordingChannel,
    config_with_channels,
    create_table,
    inbound_event_files,
    installed,
    load_event,
)

GOLDEN = Path(__file__).parent / "golden" / "pages"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
BASE = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/api"  # as long as a deployed stage's
SECRET = "link-secret-for-page-tests"
CHANNELS = """  pd:
    type: pagerduty
    routing_key_env: PD_ROUTING_KEY
  sms:
    type: sns
    topic_arn_env: SMS_TOPIC_ARN
  slack:
    type: slack
    webhook_url_env: SLACK_WEBHOOK_URL
"""
EVERYWHERE = "[console, pd, sms, slack]"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def page_config(folder: Path, people: dict[str, str] | None = None) -> Path:
    """The shipped config with PagerDuty, SMS and Slack channels, the runbook published, and
    ``people`` (default: everyone in the Sev1/Sev2 chains on every channel)."""
    config_with_channels(folder, CHANNELS, people or {"giles": EVERYWHERE, "christian": EVERYWHERE,
                                                      "engineer-on-call": EVERYWHERE})
    routing = folder / "routing.yaml"
    text = routing.read_text()
    unset = "  # base_url: https://wiki.example.com/runbook     # unset: pages name the section only"
    assert unset in text
    routing.write_text(text.replace(unset, "  base_url: https://wiki.example.com/runbook"))
    return folder


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> ResponderConfig:
    return config_module.load(page_config(tmp_path_factory.mktemp("config")))


# --- rendering each channel as it would send -------------------------------------------------


class Capture:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.published: list[dict[str, Any]] = []

    def post(self, url: str, body: bytes, headers: Any, timeout: float) -> Any:
        self.bodies.append(json.loads(body))
        return type("R", (), {"status": 202, "headers": {}, "body": b""})()

    def publish(self, **kwargs: Any) -> None:
        self.published.append(kwargs)


def sent_as(page: PageRecord, incident: Incident, shortlinks: ShortLinks) -> str:
    """What the page's channel sends, as text: the console line, the SMS, the PagerDuty and Slack bodies."""
    request = request_for(page, incident, shortlinks.reveal)
    capture = Capture()
    if page.channel == "console":
        stream = io.StringIO()
        ConsoleChannel(stream).send(request)
        return stream.getvalue()
    if page.channel == "sms":
        SnsChannel(lambda: "arn:aws:sns:us-east-1:123456789012:pages-sms", lambda: capture, sms=True).send(request)
        return str(capture.published[0]["Message"]) + "\n"
    if page.channel == "pd":
        PagerDutyChannel(lambda: "ROUTING-KEY", "https://events.pagerduty.com/v2/enqueue", capture).send(request)
    else:
        SlackChannel(lambda: "https://hooks.slack.com/services/T/B/X", capture).send(request)
    return json.dumps(capture.bodies[0], indent=2, ensure_ascii=False) + "\n"


def golden(name: str, pages: list[PageRecord], incident: Incident, shortlinks: ShortLinks) -> str:
    sections = []
    for page in sorted(pages, key=lambda p: ("console", "sms", "pd", "slack").index(p.channel)):
        sections.append(f"=== {page.kind.value} to {page.person} on {page.channel} ===\n"
                        f"{sent_as(page, incident, shortlinks)}")
    return "".join(sections)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1 and review the diff"
    assert path.read_text() == text, f"{path.name} differs: run with UPDATE_GOLDEN=1 and review the diff"


def fixed_link(incident: Incident, person: str, now: Any) -> AckLinkRef:
    return AckLinkRef(id="0123456789abcdef", expires_at=now + timedelta(minutes=30))


def opened(signal: Any, config: ResponderConfig) -> Incident:
    return new_incident("inc-golden", signal, classify(signal, config.severity), T0, config)


def every_signal() -> list[tuple[str, Any]]:
    found = []
    for name in inbound_event_files():
        hint = "sentry" if name.startswith("sentry") else "pagerduty" if name.startswith("pagerduty") else "unknown"
        for n, signal in enumerate(to_signals(load_event(name), T0, hint)):
            found.append((f"{name.removesuffix('.json')}{'' if n == 0 else f'-{n}'}", signal))
    return found


SIGNALS = every_signal()


@pytest.mark.parametrize(("name", "signal"), SIGNALS, ids=[name for name, _ in SIGNALS])
def test_trigger_page_of_every_fixture_per_channel(name: str, signal: Any, config: ResponderConfig,
                                                   tmp_path: Path) -> None:
    incident = opened(signal, config)
    pages = escalation.people_pages(incident, "SEV#0/0", "founder-primary", ["giles"], PageKind.TRIGGER, config,
                                    T0, fixed_link, index=0)
    shortlinks = ShortLinks(AckLinks(BASE, lambda: SECRET), SqliteStore(tmp_path / "s.db"))
    text = golden(name, pages, incident, shortlinks)
    check_golden(name, text)
    sms = text.split("on sms ===\n", 1)[1].split("\n", 1)[0]
    assert render.septets(sms) <= render.SMS_LIMIT and render.gsm7(sms) == sms, sms
    assert f"{BASE}/a/" in sms and "/ack/" not in sms  # the short link, last
    assert sms.endswith(sms.rsplit(" ", 1)[1]) and sms.rsplit(" ", 1)[1].startswith(BASE)


def test_every_kind_in_the_fixtures_has_its_words_and_a_console_link(config: ResponderConfig) -> None:
    kinds: dict[str, Incident] = {}
    for _, signal in sorted(SIGNALS, key=lambda item: item[1].transition.value != "trigger"):  # triggers first
        kinds.setdefault(str(signal.kind), opened(signal, config))
    no_console = {"pagerduty", "sentry_installation", "unknown"}  # nothing of theirs to open in a console
    for kind, incident in kinds.items():
        words = render.what_failed(incident)
        assert not words.startswith(f"{kind}:") and "RDS-EVENT" not in words and "SERVICE_DEPLOYMENT" not in words, (kind, words)
        assert "_" not in kind or kind not in words, (kind, words)
        assert (render.console_link(incident) is None) == (kind in no_console), kind
    rds = next(s for n, s in SIGNALS if n == "rds-db-instance-event-failover")
    assert render.what_failed(opened(rds, config)) == "my-db-instance Multi-AZ failover completed"


def test_page_says_its_parts_in_order(config: ResponderConfig) -> None:
    signal = next(s for n, s in SIGNALS if n == "ecs-deployment-failed")
    incident = opened(signal, config)
    [page] = [p for p in escalation.people_pages(incident, "SEV2#0/0", "engineering-oncall", ["giles"],
                                                 PageKind.TRIGGER, config, T0, fixed_link, index=0)
              if p.channel == "console"]
    text = page.text
    order = ["[SEV2] OPEN: checkout-api deploy failed (prod-cluster)", "started 10:42 EDT",
             "responder: playbook deploy-rollback starting", "runbook: https://wiki.example.com/runbook#2-rollback",
             "console: https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod-cluster/services/checkout-api",
             "next: giles (founder-primary) at 11:42 EDT", "ack: [link 0123456789abcdef"]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions), text


def test_escalation_page_says_why_and_update_page_says_what_was_done(config: ResponderConfig, tmp_path: Path) -> None:
    signal = next(s for n, s in SIGNALS if n == "ecs-deployment-failed")
    incident = escalation.escalate(opened(signal, config), config, T0, fixed_link)
    later = T0 + timedelta(minutes=60)
    incident = escalation.escalate(incident, config, later, fixed_link)
    shortlinks = ShortLinks(AckLinks(BASE, lambda: SECRET), SqliteStore(tmp_path / "s.db"))
    escalated = [p for p in incident.pages if p.kind is PageKind.ESCALATION]
    assert {p.person for p in escalated} == {"giles"}
    assert all("(unacknowledged for 60 min)" in p.text or "unacked 60m" in p.text for p in escalated)
    check_golden("escalation-ecs-deployment-failed", golden("escalation", escalated, incident, shortlinks))
    state = incident.escalation
    assert state is not None
    reached = incident.model_copy(update={"escalation": state.model_copy(update={
        "reached": tuple((p.person, p.channel, p.role) for p in incident.pages if p.kind.calls_for_action)})})
    done = render.playbook_summary("deploy-rollback", False, [
        ({"type": "note", "text": "x"}, "noted"),
        ({"type": "api_call", "service": "ecs", "operation": "update_service", "mutating": True,
          "why": "roll back checkout-api:3 → checkout-api:2"}, "done"),
        ({"type": "watch"}, "watching prod-cluster/checkout-api until 2025-03-14T15:52:40+00:00")])
    assert done == ("deploy-rollback (live): roll back checkout-api:3 → checkout-api:2: done; "
                    "watching prod-cluster/checkout-api")
    assert render.playbook_summary("deploy-rollback", True, [({"type": "api_call"}, "DRY_RUN: not called")]) is None
    assert render.playbook_summary("x", False, [({"type": "api_call", "mutating": False}, "read")]) is None
    assert done is not None
    updates = escalation.update_pages(reached, config, later, done)
    assert {p.channel for p in updates} == {"console", "sms", "slack"}  # PagerDuty's alert is open already
    check_golden("update-ecs-deployment-failed", golden("update", updates, reached, shortlinks))


def test_breaker_escalation_says_why() -> None:
    step = {"type": "api_call", "service": "ecs", "operation": "update_service", "mutating": True}
    results = [StepResult(step={"type": "note"}, result="noted"),
               StepResult(step=step, result="BREAKER_OPEN: not called")]
    assert could_not_act("deploy-rollback", results, RateLimit()).startswith(
        "breaker open: second deploy-rollback within 60 min")
    failed = [StepResult(step=step, result="failed: AccessDenied")]
    assert "ecs:update_service failed" in could_not_act("deploy-rollback", failed, RateLimit())


def test_sms_fits_one_segment_however_long_the_link_and_words() -> None:
    said = render.PageContent(severity=Severity.SEV1, verb="ESCALATED", what="x" * 300, started="03:12 EST",
                              fired=14, done="deploy-rollback (live): roll back a → b: done", why="unacknowledged for 5 min",
                              runbook=None, console=None, next_up="christian (founder-backup) at 03:17 EST",
                              incident_id="inc-1")
    text = render.sms_text(said, "[link]")
    long_url = "https://" + "r" * 90 + ".example.com/a/AbCdEfGhIj"
    sent = render.fit_sms(text, "[link]", long_url)
    assert render.septets(sent) <= 160 and sent.endswith(long_url)
    assert render.gsm7("café — “quoted” → ok ✓") == 'café - "quoted" -> ok ?'  # é is GSM-7; ✓ is not


def test_sms_channel_sends_notices_in_one_segment_too(config: ResponderConfig) -> None:
    signal = next(s for n, s in SIGNALS if n == "ecs-deployment-failed")
    incident = opened(signal, config).model_copy(update={"status": IncidentStatus.ACKNOWLEDGED,
                                                         "acknowledged_by": "giles"})
    [notice] = [p for p in escalation.acknowledge_pages(incident.model_copy(update={
        "escalation": incident.escalation.model_copy(update={"reached": (("giles", "sms", "founder-primary"),)})
        if incident.escalation else None}), T0, by="giles")]
    assert len(notice.text) > 160 or render.gsm7(notice.text) != notice.text  # laid out for every channel
    capture = Capture()
    SnsChannel(lambda: "arn:aws:sns:us-east-1:123456789012:pages-sms", lambda: capture, sms=True).send(
        request_for(notice, incident))
    message = capture.published[0]["Message"]
    assert render.septets(message) <= 160 and render.gsm7(message) == message
    assert message.startswith("[SEV2] ACKNOWLEDGED checkout-api deploy failed (prod-cluster) | "
                              "acknowledged by giles - you can stand down")


# --- the pipeline: pages, the update page, and the short link on both stores ------------------


def sms_deps(kind: str, tmp_path: Path, clock: FakeClock, console: RecordingChannel,
             sms: RecordingChannel) -> Iterator[Deps]:
    folder = tmp_path / "config"
    folder.mkdir()
    page_config(folder, {"giles": "[console, sms]"})
    settings = Settings.from_env({"SENTRY_CLIENT_SECRET": SENTRY_SECRET, "RESPONDER_CONFIG_DIR": str(folder),
                                  "RESPONDER_AUDIT": f"file://{tmp_path / 'audit.jsonl'}",
                                  "RESPONDER_PUBLIC_URL": BASE, "RESPONDER_LINK_SECRET": SECRET})
    channels = {"console": lambda: console, "sms": lambda: sms}
    if kind == "sqlite":
        yield from installed(build_deps(settings, clock=clock, store=SqliteStore(tmp_path / "s.db"), channels=channels))
        return
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        yield from installed(build_deps(settings, clock=clock, channels=channels,
                                        store=DynamoStore(create_table(dynamodb), client=dynamodb)))


@pytest.fixture(params=["sqlite", "dynamodb"])
def on_store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock,
             console: RecordingChannel) -> Iterator[tuple[Deps, RecordingChannel]]:
    sms = RecordingChannel()
    for deps in sms_deps(request.param, tmp_path, clock, console, sms):
        yield deps, sms


def paged_by_sms(deps: Deps, sms: RecordingChannel) -> tuple[str, str, str]:
    """A Sev1 paged to giles by SMS and console: (incident id, short id, long token)."""
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectretention.json"), "eventbridge", deps)
    incident_id = str(outcome["outcomes"][0]["incident_id"])
    [text] = [p.text for p in sms.sent if p.kind is PageKind.TRIGGER]
    assert render.septets(text) <= 160 and render.gsm7(text) == text, text
    short = text.rsplit(f"{BASE}/a/", 1)[1]
    console = deps.pager._channel("console")
    assert isinstance(console, RecordingChannel)
    [long_url] = [p.ack_url for p in console.sent if p.kind is PageKind.TRIGGER]
    assert long_url
    return incident_id, short, long_url.rsplit("/ack/", 1)[1]


def test_short_link_acknowledges_once_as_the_paged_person(on_store: tuple[Deps, RecordingChannel],
                                                         clock: FakeClock) -> None:
    deps, sms = on_store
    incident_id, short, token = paged_by_sms(deps, sms)
    with Client(app_module.app, stage_name="dev") as http:
        shown = http.http.get(f"/a/{short}")
        assert shown.status_code == 200 and b"giles, you were paged" in shown.body
        assert shown.headers["Cache-Control"] == "no-store"
        assert deps.store.get(incident_id).status is IncidentStatus.OPEN  # GET changes nothing
        clock.advance(minutes=2)
        acked = http.http.post(f"/a/{short}", headers=FORM, body=b"")
        assert acked.status_code == 200 and b"Acknowledged by giles" in acked.body
        incident = deps.store.get(incident_id)
        assert incident.status is IncidentStatus.ACKNOWLEDGED and incident.acknowledged_by == "giles"
        version = incident.version
        assert http.http.post(f"/a/{short}", headers=FORM, body=b"").status_code == 409  # single use
        assert http.http.post(f"/ack/{token}", headers=FORM, body=b"").status_code == 409  # one use for both
        assert deps.store.get(incident_id).version == version


def test_short_link_expires_and_forged_or_mangled_ones_are_refused(on_store: tuple[Deps, RecordingChannel],
                                                                  clock: FakeClock) -> None:
    deps, sms = on_store
    incident_id, short, _ = paged_by_sms(deps, sms)
    forged = ("A" if short[0] != "A" else "B") + short[1:]
    with Client(app_module.app, stage_name="dev") as http:
        assert http.http.get(f"/a/{forged}").status_code == 403
        assert http.http.post(f"/a/{forged}", headers=FORM, body=b"").status_code == 403
        assert http.http.get(f"/a/{short[:-1]}").status_code == 400
        assert http.http.get("/a/%3Cscript%3E12").status_code == 400
        clock.advance(minutes=31)
        assert http.http.post(f"/a/{short}", headers=FORM, body=b"").status_code == 410
    assert deps.store.get(incident_id).status is IncidentStatus.OPEN


def test_short_link_is_bound_to_its_person_and_stored_only_hashed(on_store: tuple[Deps, RecordingChannel]) -> None:
    deps, sms = on_store
    incident_id, short, _ = paged_by_sms(deps, sms)
    assert deps.links is not None
    claim = ShortLinks(deps.links, deps.store).check(short, deps.clock())
    assert not isinstance(claim, LinkProblem)
    assert (claim.person, claim.incident_id) == ("giles", incident_id)
    assert deps.store.get_doc(f"shortlink:{short}")[0] is None  # the id itself is no key
    incident = deps.store.get(incident_id)
    assert short not in incident.model_dump_json()  # nor in the incident's stored pages
    # another secret derives other ids: a record cannot be reached without the key
    other = ShortLinks(AckLinks(BASE, lambda: "another-secret"), deps.store)
    assert other.check(short, deps.clock()) is LinkProblem.FORGED


def test_update_page_follows_the_playbook(tmp_path: Path) -> None:
    from tests.test_playbooks import Harness, ecs_with_three_revisions, failed_deployment, open_incident

    with mock_aws():
        h = Harness(tmp_path)
        ecs_with_three_revisions(h)
        deps = h.deps("prod")
        open_incident(deps, failed_deployment())
    kinds = [(p.kind, p.person) for p in h.console.sent]
    assert kinds == [(PageKind.TRIGGER, "engineer-on-call"), (PageKind.UPDATE, "engineer-on-call")]
    update = h.console.sent[1].text
    assert "[SEV2] UPDATE: checkout-api deploy failed" in update
    assert "responder: deploy-rollback (live): roll back checkout-api:3 → checkout-api:2: done; watching" in update
    assert "next: giles (founder-primary) at" in update
