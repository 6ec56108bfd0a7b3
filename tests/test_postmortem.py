"""Post-mortem drafts (issue 15 §3): the team's clock, actions not receipts, names once, the
service named, and what went wrong pre-filled as action items."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from moto import mock_aws

from chalicelib.models import Duty, DutyKind, Incident, IncidentStatus, TimelineEntry
from chalicelib.reports.describe import headline, service
from chalicelib.reports.postmortem import action_items, draft, section
from chalicelib.reports.timeline import EntryKind, credited, entry_kind
from tests.conftest import CONFIG, T0, load_event
from tests.test_playbooks import Harness, ecs_with_three_revisions, failed_deployment, open_incident


def _incident(**changes: object) -> Incident:
    base = Incident(id="inc-1", key="k", kind="ecs_deployment", title="checkout-api SERVICE_DEPLOYMENT_FAILED",
                    resource="arn:aws:ecs:us-east-1:123456789012:service/prod-cluster/checkout-api",
                    severity=2, owner="engineering-oncall", playbook=None, rule="rule:ecs", opened_at=T0,
                    last_seen=T0)
    return base.model_copy(update=changes)


def test_times_are_in_the_team_zone_with_its_abbreviation() -> None:
    berlin = CONFIG.model_copy(update={"routing": CONFIG.routing.model_copy(update={"timezone": "Europe/Berlin"})})
    incident = _incident().noted(TimelineEntry(at=T0 + timedelta(minutes=3), by="alice", what="note: looking"))
    markdown = draft(incident, berlin, T0 + timedelta(hours=1))
    assert "- Started: 2025-03-14 15:42 CET" in section(markdown, "Incident date")  # 14:42 UTC
    assert "| Time (Europe/Berlin) | What |" in markdown and "| 2025-03-14 15:45 CET | note: looking (alice) |" in markdown
    assert "UTC" not in markdown
    assert "2025-03-14 10:42 EDT" in draft(incident, CONFIG, T0)


@pytest.mark.parametrize(("what", "by", "kind"), [
    ("opened: SEV1 by rule:x, owner founder-primary", "responder", EntryKind.SIGNAL),
    ("repeat #2: checkout-api SERVICE_DEPLOYMENT_FAILED", "responder", EntryKind.SIGNAL),
    ("update page to founders-channel (founders) on slack-founders: sent", "responder", EntryKind.DELIVERY),
    ("acknowledge page to giles (founder-primary) on pagerduty: sent", "responder", EntryKind.DELIVERY),
    ("resolve page to giles (founder-primary) on console: failed (attempt 1: 503)", "responder", EntryKind.DELIVERY),
    ("reminder page to engineer-daytime (engineering-daytime) on console: sent", "responder", EntryKind.DELIVERY),
    ("trigger page to giles (founder-primary) on sms: sent", "responder", EntryKind.PAGE),
    ("escalation page to christian (founder-backup) on console: sent", "responder", EntryKind.PAGE),
    ("playbook deploy-rollback failed: ecs.describe_services: AccessDenied; escalating as usual", "responder",
     EntryKind.FAILED_STEP),
    ("deploy-rollback verification failed: /health 503", "responder", EntryKind.FAILED_STEP),
    ("ecs:UpdateService cluster=prod-cluster, service=checkout-api: failed: AccessDenied", "responder",
     EntryKind.FAILED_STEP),
    ("ecs:UpdateService cluster=prod-cluster, service=checkout-api: BREAKER_OPEN: not called", "responder",
     EntryKind.FAILED_STEP),
    ("ecs:UpdateService cluster=prod-cluster: DRY_RUN: not called", "responder", EntryKind.ACTION),
    ("note: the rollback failed: we retried by hand", "alice", EntryKind.ACTION),  # a person's words
    ("acknowledged by alice", "alice", EntryKind.ACTION),
    ("escalation step 2: founder-backup (christian)", "responder", EntryKind.ACTION),
])
def test_entry_kinds(what: str, by: str, kind: EntryKind) -> None:
    assert entry_kind(TimelineEntry(at=T0, by=by, what=what)) is kind


def test_who_did_it_is_named_once() -> None:
    assert credited(TimelineEntry(at=T0, by="alice", what="acknowledged by alice")) is None
    assert credited(TimelineEntry(at=T0, by="alice", what="note: deploy looks bad")) == "alice"
    assert credited(TimelineEntry(at=T0, what="escalation step 1: founder-primary (giles)")) is None


@pytest.mark.parametrize(("changes", "named", "said"), [
    ({}, "ECS service checkout-api", "Deployment of ECS service checkout-api failed"),
    ({"kind": "rds_event", "title": "credentialing-prod RDS-EVENT-0049",
      "resource": "arn:aws:rds:us-east-1:123456789012:db:credentialing-prod"},
     "RDS database credentialing-prod", "RDS database credentialing-prod failed over"),
    ({"kind": "cloudtrail", "title": "PutObjectRetention on backup-vault-prod denied",
      "resource": "arn:aws:s3:::backup-vault-prod"},
     "S3 bucket backup-vault-prod", "Attempt to change object retention on S3 bucket backup-vault-prod (denied)"),
    ({"kind": "alarm", "title": "checkout-api-alb-5xx-high",
      "resource": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-api-alb-5xx-high"},
     "CloudWatch alarm checkout-api-alb-5xx-high", "CloudWatch alarm checkout-api-alb-5xx-high fired"),
    ({"kind": "ecs_task", "title": "task service:checkout-api STOPPED (EssentialContainerExited)",
      "resource": "arn:aws:ecs:us-east-1:123456789012:task/prod-cluster/0b69d5c0"},
     "ECS service checkout-api", "Task service:checkout-api stopped (EssentialContainerExited)"),
    ({"kind": "codebuild", "title": "rollback build of credentialing-deploy FAILED in POST_BUILD",
      "resource": "arn:aws:codebuild:us-east-1:123456789012:build/credentialing-deploy:98"},
     "CodeBuild project credentialing-deploy", "Rollback build of credentialing-deploy failed in post build"),
    ({"kind": "sentry_issue", "title": "Sentry issue CHECKOUT-API-2 in checkout-api created",
      "resource": "checkout-api"},
     "Sentry project checkout-api", "Sentry issue CHECKOUT-API-2 in checkout-api created"),
    ({"kind": "manual", "title": "Acme: dashboards show yesterday's data", "resource": ""},
     "Acme: dashboards show yesterday's data", "Acme: dashboards show yesterday's data"),
])
def test_service_and_headline_in_words(changes: dict[str, object], named: str, said: str) -> None:
    incident = _incident(**changes)
    assert (service(incident), headline(incident)) == (named, said)


def test_missed_deadlines_become_action_items() -> None:
    due = T0 + timedelta(hours=1)
    incident = _incident(
        acknowledged_at=T0 + timedelta(minutes=150), acknowledged_by="alice", status=IncidentStatus.ACKNOWLEDGED,
        duties=(Duty(kind=DutyKind.CUSTOMER_NOTIFICATION, due_at=due, reason="SLA", done_at=due + timedelta(hours=2)),
                Duty(kind=DutyKind.POSTMORTEM, due_at=due, reason="runbook §5.1"),
                Duty(kind=DutyKind.BREACH_NOTIFICATION, due_at=T0 + timedelta(days=60), reason="BAA")))
    items = action_items(incident, CONFIG, T0 + timedelta(hours=5))
    assert items == [
        "Response target missed (acknowledged after 2 h 30 min, target 120 min): find out why the page did not "
        "reach someone who could act sooner",
        "Deadline missed: customer notification was done 2 h 0 min late (due 2025-03-14 11:42 EDT): find out why",
        "Deadline missed: postmortem overdue since 2025-03-14 11:42 EDT: do it, then find out why it was missed"]
    rows = section(draft(incident, CONFIG, T0 + timedelta(hours=5)), "Action items").splitlines()
    assert "| Deadline missed: postmortem overdue since 2025-03-14 11:42 EDT: do it, then find out why it was " \
           "missed | engineering-oncall (to confirm) |  |" in rows
    assert rows[-1] == "|  |  |  |"  # and a blank row for the team's own


def test_nothing_missed_means_no_prefilled_items() -> None:
    on_time = _incident(acknowledged_at=T0 + timedelta(minutes=10), resolved_at=T0 + timedelta(minutes=30),
                        status=IncidentStatus.RESOLVED)
    assert action_items(on_time, CONFIG, T0 + timedelta(days=1)) == []
    unacked = _incident()  # still open, nobody acknowledged, past the Sev2 target
    assert action_items(unacked, CONFIG, T0 + timedelta(hours=1)) == []
    assert action_items(unacked, CONFIG, T0 + timedelta(hours=3))[0].startswith(
        "Response target missed (not acknowledged after 3 h 0 min, target 120 min)")


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with mock_aws():
        yield Harness(tmp_path)


def test_failed_rollback_verification_becomes_an_action_item_through_the_pipeline(h: Harness) -> None:
    ecs_with_three_revisions(h)
    deps = h.deps("prod")
    first = open_incident(deps, failed_deployment())
    h.clock.advance(minutes=4)  # the rollback deployment fails too: the breaker refuses a second rollback
    open_incident(deps, failed_deployment())
    incident = deps.store.get(first["incident_id"])
    markdown = draft(incident, deps.config, h.clock())
    assert "- Service: ECS service checkout-api" in section(markdown, "Impact")
    items = section(markdown, "Action items")
    assert "| Find out why this step failed and fix it: ecs:UpdateService cluster=prod-cluster, " \
           "service=checkout-api" in items and "BREAKER\\_OPEN: not called | engineering-oncall (to confirm) |" in items
    response = section(markdown, "Response")
    assert "| 2025-03-14 10:00 EDT | ecs:UpdateService cluster=prod-cluster, service=checkout-api" in response


def test_draft_of_a_real_event_names_no_one_twice() -> None:
    from chalicelib import sources
    from chalicelib.decisions.classify import classify
    from chalicelib.decisions.incidents import new_incident

    [signal] = sources.to_signals(load_event("rds-db-instance-event-failover.json"), T0, "test")
    incident = new_incident("inc-2", signal, classify(signal, CONFIG.severity), T0, CONFIG)
    incident = incident.noted(TimelineEntry(at=T0, by="giles", what="acknowledged by giles"))
    markdown = draft(incident, CONFIG, T0)
    assert "giles (giles)" not in markdown and "acknowledged by giles |" in markdown
    assert "- Service: RDS database my-db-instance" in section(markdown, "Impact")
