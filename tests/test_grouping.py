"""Services, grouping and inhibition (issue 14 §2): the service map, ``related_to``, the stage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from chalicelib import config
from chalicelib.config.services import InhibitMatch, ServicesConfig
from chalicelib.decisions import grouping
from chalicelib.decisions.grouping import Relation, related_to, service_of
from chalicelib.errors import ConfigError
from chalicelib.handlers import on_event
from chalicelib.models import FlapState, Incident, IncidentStatus, PageKind, Severity, Signal, Transition
from chalicelib.sources import to_signals
from chalicelib.store import full_timeline
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import Deps
from tests.conftest import CONFIG, EVENTS_DIR, FakeClock, RecordingChannel, copy_config, create_table, make_deps

NIGHT = EVENTS_DIR / "night"
SERVICES = CONFIG.services
AT = datetime(2025, 3, 15, 6, 0, 5, tzinfo=UTC)


def night(name: str) -> Any:
    return json.loads((NIGHT / name).read_text())


def signal_of(name: str) -> Signal:
    payload = night(name)
    if "httpMethod" in payload:  # a signed Sentry webhook: the body is what converts
        payload = json.loads(payload["body"])
    return to_signals(payload, AT, "test")[0]


def incident(key: str, *, service: str | None = "credentialing-api", rule: str = "rule:rds-failover",
             kind: str = "rds_event", severity: Severity = Severity.SEV2, opened: datetime = AT, **extra: Any) -> Incident:
    return Incident(id=f"inc-{key}", key=key, kind=kind, title=key, severity=severity, owner="engineering-oncall",
                    playbook=None, rule=rule, opened_at=opened, last_seen=opened, service=service, **extra)


# --- the service map ------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "01-rds-failover-started.json",            # RDS event: the DB instance ARN
    "02-sentry-error-operationalerror.json",   # Sentry error: the project id
    "04-sentry-issue-created-pool-timeout.json",  # Sentry issue: the project slug
    "06-alarm-5xx.json",                       # alarm: LoadBalancer dimension
    "07-alarm-db-connections.json",            # alarm: DBInstanceIdentifier dimension
    "08-alarm-latency.json",                   # EventBridge alarm: LoadBalancer dimension
    "09-sentry-metric-critical.json",          # Sentry metric alert: its projects
    "15-deploy-in-progress.json",              # ECS deployment: the service ARN
    "16-task-stopped-health-check.json",       # ECS task: its cluster and service group
    "18-alarm-unhealthy-hosts.json",           # alarm: TargetGroup dimension
])
def test_service_of_finds_the_service_of_every_source(name: str) -> None:
    assert service_of(signal_of(name), SERVICES) == "credentialing-api"


def test_service_of_uses_alarm_words_only_when_no_resource_says() -> None:
    event = night("06-alarm-5xx.json")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["Trigger"]["Dimensions"] = [{"name": "LoadBalancer", "value": "app/other-alb/1"}]
    message["AlarmName"] = "Credentialing queue depth"
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    assert service_of(to_signals(event, AT, "test")[0], SERVICES) == "credentialing-api"
    message["AlarmName"] = "billing queue depth"
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    assert service_of(to_signals(event, AT, "test")[0], SERVICES) is None


def test_service_of_is_none_without_a_service_map() -> None:
    assert service_of(signal_of("06-alarm-5xx.json"), ServicesConfig()) is None


def test_the_shipped_config_holds_an_example_service() -> None:
    assert "credentialing-api" in config.load().services.services


# The cause and effect sets as they were written in decisions/grouping.py before they became config.
CAUSE_RULES = {"no-healthy-targets", "rds-failover", "rds-cluster-failover", "rds-instance-unavailable",
               "ecs-deployment"}
CAUSE_KINDS = {"ecs_deployment"}
EFFECT_RULES = {"load-balancer-5xx", "api-gateway-5xx", "cloudfront-5xx", "managed-frontend-5xx", "lambda-api-errors",
                "rds-database-connections", "ecs-task-stopped", "sentry-metric-alert-critical",
                "sentry-metric-alert-warning", "sentry-fatal", "sentry-error"}
EFFECT_KINDS = {"sentry_issue", "sentry_event_alert", "sentry_error", "sentry_metric_alert"}
EFFECT_METRICS = {"targetresponsetime", "latency", "integrationlatency", "readlatency", "writelatency",
                  "databaseconnections", "targetconnectionerrorcount", "httpcode_target_5xx_count",
                  "httpcode_elb_5xx_count", "5xxerror", "5xxerrorrate"}


def side(match: InhibitMatch) -> tuple[str, frozenset[str]]:
    """One matcher side as (field, values): the shipped rules each match on one field."""
    given = [(name, frozenset(str(v).lower() for v in values))
             for name, values in (("rule", match.rule), ("kind", match.kind), *match.facts.items()) if values]
    assert len(given) == 1, match
    return given[0]


def test_the_shipped_inhibit_rules_are_the_cause_and_effect_sets_that_were_in_code() -> None:
    rules = SERVICES.inhibit_rules
    causes = {side(r.source_matchers) for r in rules}
    effects = {side(r.target_matchers) for r in rules}
    assert causes == {("rule", frozenset(CAUSE_RULES)), ("kind", frozenset(CAUSE_KINDS))}
    assert effects == {("rule", frozenset(EFFECT_RULES)), ("kind", frozenset(EFFECT_KINDS)),
                       ("metric", frozenset(EFFECT_METRICS))}
    # any cause explains any effect, as before: every pair has its rule, and each once
    assert sorted((side(r.source_matchers), side(r.target_matchers)) for r in rules) == sorted(
        (c, e) for c in causes for e in effects)
    assert all(r.equal == ("service",) for r in rules)


def write_inhibit_rules(tmp_path: Path, rules: list[dict[str, Any]]) -> Path:
    shipped = yaml.safe_load((config.DEFAULT_DIR / "services.yaml").read_text())
    return write_services(tmp_path, yaml.safe_dump({**shipped, "inhibit_rules": rules}))


GOOD = {"name": "failover-explains-5xx", "source_matchers": {"rule": "rds-failover"},
        "target_matchers": {"kind": ["alarm"], "facts": {"metric": ["HTTPCode_Target_5XX_Count"]}}}


@pytest.mark.parametrize("change, named", [
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"source_matchers": {"rule": "rds-failover", "alarm_name": "x"}}, "source_matchers.alarm_name is not a matcher"),
    ({"target_matchers": {"metric": "Latency"}}, "target_matchers.metric is not a matcher field"),
    ({"source_matchers": {"kind": "rds_evnt"}}, "source_matchers: kind 'rds_evnt' is produced by no registered"),
    ({"target_matchers": {"facts": {"metrik": ["Latency"]}}}, "target_matchers: facts: fact 'metrik' is declared"),
    ({"target_matchers": {"facts": {"version_targeted": ["yes"]}}}, "takes bool values"),
    ({"target_matchers": {}}, "target_matchers: give at least one of rule, kind, facts"),
    ({"source_matchers": "rds-failover"}, "source_matchers must be a mapping"),
    ({"equal": ["service", "region"]}, "equal must be [service]"),
])
def test_a_bad_inhibit_rule_is_refused_at_load_naming_the_rule(tmp_path: Path, change: dict[str, Any],
                                                               named: str) -> None:
    folder = write_inhibit_rules(tmp_path, [{**GOOD, **change}])
    with pytest.raises(ConfigError) as error:
        config.load(folder)
    assert "inhibit rule 'failover-explains-5xx'" in str(error.value) and named in str(error.value)
    assert "services.yaml" in str(error.value)


def test_an_inhibit_rule_naming_a_rule_severity_yaml_lacks_is_refused(tmp_path: Path) -> None:
    folder = write_inhibit_rules(tmp_path, [{**GOOD, "source_matchers": {"rule": ["rds-failover", "rds-failovr"]}}])
    with pytest.raises(ConfigError) as error:
        config.load(folder)
    assert "inhibit_rules[0].source_matchers.rule" in str(error.value)
    assert "inhibit rule 'failover-explains-5xx': no rule 'rds-failovr' in severity.yaml" in str(error.value)


def test_inhibit_rule_names_are_unique(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="names repeat: failover-explains-5xx"):
        config.load(write_inhibit_rules(tmp_path, [GOOD, GOOD]))


def write_services(tmp_path: Path, text: str) -> Path:
    copy_config(tmp_path)
    (tmp_path / "services.yaml").write_text(text)
    return tmp_path


def test_services_config_refuses_an_unknown_field_naming_the_entry(tmp_path: Path) -> None:
    folder = write_services(tmp_path, "services:\n  billing:\n    ecs_clustr: prod\n")
    with pytest.raises(ConfigError) as error:
        config.load(folder)
    assert "services.billing.ecs_clustr" in str(error.value)


def test_services_config_refuses_a_resource_of_two_services(tmp_path: Path) -> None:
    folder = write_services(tmp_path, "services:\n  billing:\n    rds: [shared-db]\n"
                                      "  ledger:\n    rds: [Shared-DB]\n")
    with pytest.raises(ConfigError) as error:
        config.load(folder)
    assert "services.ledger.rds" in str(error.value) and "billing" in str(error.value)


def test_without_services_yaml_no_signal_has_a_service(tmp_path: Path) -> None:
    assert config.load(copy_config(tmp_path)).services.services == {}


# --- related_to (pure) ----------------------------------------------------------------------


def test_an_effect_is_inhibited_by_an_open_cause_of_its_service_whatever_its_age() -> None:
    cause = incident("rds:failover", opened=AT - timedelta(hours=3))
    found = related_to(signal_of("06-alarm-5xx.json"), [cause], SERVICES, AT, rule="rule:load-balancer-5xx",
                       severity=Severity.SEV1)
    assert (found.reason, found.incident) == (Relation.INHIBITED_BY, cause)


def test_a_cause_whose_recovery_is_held_explains_no_new_signal() -> None:
    """An unhealthy-hosts alarm that recovered a minute ago (held for the stable period) says the
    service is fine again: a new 5xx alarm is news and pages, rather than wait for the hold to end."""
    cause = incident("alarm:hosts", rule="rule:no-healthy-targets", kind="alarm")
    five_xx = signal_of("06-alarm-5xx.json")
    assert related_to(five_xx, [cause], SERVICES, AT, rule="rule:load-balancer-5xx").reason is Relation.INHIBITED_BY
    recovered = cause.model_copy(update={"flap": FlapState(changes=(AT, AT), count=2, last=Transition.RESOLVE,
                                                           quiet_since=AT)})
    assert related_to(five_xx, [recovered], SERVICES, AT, rule="rule:load-balancer-5xx").reason is Relation.NEW


def test_a_sentry_spike_is_an_effect() -> None:
    cause = incident("rds:failover")
    assert related_to(signal_of("09-sentry-metric-critical.json"), [cause], SERVICES, AT).reason is \
        Relation.INHIBITED_BY


def test_a_signal_of_another_service_or_of_none_is_new() -> None:
    other = incident("rds:failover", service="billing")
    assert related_to(signal_of("06-alarm-5xx.json"), [other], SERVICES, AT).reason is Relation.NEW
    assert related_to(signal_of("06-alarm-5xx.json"), [incident("x")], ServicesConfig(), AT).reason is Relation.NEW


def test_within_the_window_a_signal_groups_unless_it_is_more_severe() -> None:
    open_ = incident("alarm:5xx", rule="rule:load-balancer-5xx", kind="alarm")  # an effect: it inhibits nothing
    latency = signal_of("08-alarm-latency.json")
    assert related_to(latency, [open_], SERVICES, AT, severity=Severity.SEV3).reason is Relation.GROUPED
    assert related_to(latency, [open_], SERVICES, AT, severity=Severity.SEV1).reason is Relation.NEW
    later = AT + timedelta(minutes=SERVICES.grouping.window_minutes + 1)
    assert related_to(latency, [open_], SERVICES, later, severity=Severity.SEV3).reason is Relation.NEW


def test_a_watched_deployment_takes_any_alarm_of_its_service() -> None:
    deploy = incident("ecs-service:x", kind="ecs_deployment", rule="rule:ecs-deployment", held="watching",
                      watch_until=AT + timedelta(minutes=10))
    unhealthy = signal_of("18-alarm-unhealthy-hosts.json")
    found = related_to(unhealthy, [deploy], SERVICES, AT, severity=Severity.SEV1)
    assert (found.reason, found.incident) == (Relation.INHIBITED_BY, deploy)
    # after the watch, a quiet deployment explains nothing
    assert related_to(unhealthy, [deploy], SERVICES, AT + timedelta(minutes=11)).reason is Relation.NEW


def test_held_incidents_and_recoveries_lead_nothing() -> None:
    held = incident("rds:failover", held="inhibited by inc-y", held_by="inc-y")
    assert related_to(signal_of("06-alarm-5xx.json"), [held], SERVICES, AT).reason is Relation.NEW
    assert related_to(signal_of("11-alarm-5xx-ok.json"), [incident("rds:f")], SERVICES, AT).reason is Relation.NEW


def test_a_change_of_the_inhibit_rules_changes_the_decision(tmp_path: Path) -> None:
    failover = incident("rds:failover", opened=AT - timedelta(hours=3))  # outside the grouping window
    latency, rule = signal_of("08-alarm-latency.json"), "default"  # no rule of its own: its metric says
    assert related_to(latency, [failover], SERVICES, AT, rule=rule).reason is Relation.INHIBITED_BY
    shipped = SERVICES.inhibit_rules
    without = [r.model_dump() for r in shipped if r.name != "outage-explains-slow-metrics"]
    services = config.load(write_inhibit_rules(tmp_path, without)).services
    assert related_to(latency, [failover], services, AT, rule=rule).reason is Relation.NEW
    # and a new rule: an open connections alarm now explains the 5xx (shipped, both are effects)
    connections = incident("alarm:db-connections", kind="alarm", rule="rule:rds-database-connections",
                           opened=AT - timedelta(hours=3))
    five_xx = signal_of("06-alarm-5xx.json")
    assert related_to(five_xx, [connections], SERVICES, AT, rule="rule:load-balancer-5xx").reason is Relation.NEW
    added = {"name": "connections-explain-5xx", "source_matchers": {"rule": ["rds-database-connections"]},
             "target_matchers": {"rule": ["load-balancer-5xx"]}, "equal": ["service"]}
    services = config.load(write_inhibit_rules(tmp_path, [*without, added])).services
    found = related_to(five_xx, [connections], services, AT, rule="rule:load-balancer-5xx")
    assert (found.reason, found.incident) == (Relation.INHIBITED_BY, connections)
    assert found.why.endswith("inhibit rule connections-explain-5xx")


def test_a_resolved_cause_inhibits_nothing() -> None:
    cause = incident("rds:failover", status=IncidentStatus.RESOLVED)
    assert related_to(signal_of("06-alarm-5xx.json"), [cause], SERVICES, AT).reason is Relation.NEW


# --- the stage, on both stores ----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "dynamodb"])
def night_deps(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Deps, RecordingChannel, FakeClock]]:
    clock, channel = FakeClock(AT), RecordingChannel()
    if request.param == "sqlite":
        yield make_deps(SqliteStore(tmp_path / "g.db"), clock, channel), channel, clock
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        yield make_deps(DynamoStore(create_table(client), client=client), clock, channel), channel, clock


def feed(deps: Deps, name: str) -> dict[str, Any]:
    outcome: dict[str, Any] = on_event(night(name), "test", deps)["outcomes"][0]
    return outcome


def actionable(channel: RecordingChannel) -> list[str]:
    return [p.text for p in channel.sent if p.kind in (PageKind.TRIGGER, PageKind.ESCALATION)]


def test_an_inhibited_effect_pages_nobody_and_pages_when_its_cause_resolves_while_it_fires(
        night_deps: tuple[Deps, RecordingChannel, FakeClock]) -> None:
    deps, channel, clock = night_deps
    cause = feed(deps, "01-rds-failover-started.json")
    assert cause["reason"] == "OPENED" and len(actionable(channel)) == 1
    assert "service credentialing-api" in actionable(channel)[0]
    clock.advance(seconds=60)
    effect = feed(deps, "06-alarm-5xx.json")
    assert effect["reason"] == "INHIBITED" and len(actionable(channel)) == 1
    held = deps.store.get(effect["incident_id"])
    assert held is not None and held.held_by == cause["incident_id"] and held.pages == ()
    assert deps.store.get(cause["incident_id"]).related_count == 1  # type: ignore[union-attr]

    clock.advance(minutes=5)
    deps.pipeline.resolve(cause["incident_id"], by="alice")
    notice = [p.text for p in channel.sent if p.kind is PageKind.RESOLVE]
    assert notice and "related (1): credentialing-api-alb-5xx-high" in notice[0]
    pages = actionable(channel)
    assert len(pages) == 2 and "credentialing-api-alb-5xx-high" in pages[1]  # still firing: it pages now
    released = deps.store.get(effect["incident_id"])
    assert released is not None and released.held is None and released.escalation is not None


def test_an_effect_that_recovers_under_its_cause_is_resolved_quietly(
        night_deps: tuple[Deps, RecordingChannel, FakeClock]) -> None:
    deps, channel, clock = night_deps
    cause = feed(deps, "01-rds-failover-started.json")
    effect = feed(deps, "06-alarm-5xx.json")
    clock.advance(minutes=3)
    assert feed(deps, "11-alarm-5xx-ok.json")["reason"] == "RESOLVED"
    deps.pipeline.resolve(cause["incident_id"], by="alice")
    assert len(actionable(channel)) == 1
    assert [p for p in channel.sent if p.incident_id == effect["incident_id"]] == []  # not even a notice


def test_a_deployment_in_progress_is_watched_and_its_first_alarm_pages_once_with_the_rollback(
        night_deps: tuple[Deps, RecordingChannel, FakeClock]) -> None:
    deps, channel, clock = night_deps
    watch = feed(deps, "15-deploy-in-progress.json")
    assert watch["reason"] == "WATCHING" and actionable(channel) == []
    clock.advance(minutes=3)
    alarm = feed(deps, "18-alarm-unhealthy-hosts.json")
    assert alarm["reason"] == "INHIBITED"
    deploy = deps.store.get(watch["incident_id"])
    assert deploy is not None and deploy.held is None and deploy.severity is Severity.SEV1
    # the deployment's page, in words (notify/render.py)
    assert len(actionable(channel)) == 1 and "credentialing-api deploying" in actionable(channel)[0]
    assert deploy.playbook_outcome is not None  # the rollback was planned on the alarm's evidence
    clock.advance(seconds=30)
    assert feed(deps, "19-alarm-5xx-deploy.json")["reason"] == "INHIBITED"
    assert feed(deps, "22-deploy-failed.json")["reason"] == "ALREADY_OPEN"
    assert len(actionable(channel)) == 1


def test_a_watched_deployment_that_fails_on_its_own_pages(
        night_deps: tuple[Deps, RecordingChannel, FakeClock]) -> None:
    deps, channel, clock = night_deps
    watch = feed(deps, "15-deploy-in-progress.json")
    clock.advance(minutes=4)
    assert feed(deps, "22-deploy-failed.json")["reason"] == "ALREADY_OPEN"
    assert len(actionable(channel)) == 1
    assert deps.store.get(watch["incident_id"]).held is None  # type: ignore[union-attr]


def test_a_quiet_deployment_that_completes_resolves_without_a_word(
        night_deps: tuple[Deps, RecordingChannel, FakeClock]) -> None:
    deps, channel, clock = night_deps
    watch = feed(deps, "15-deploy-in-progress.json")
    clock.advance(minutes=12)
    assert feed(deps, "29-deploy-completed.json")["reason"] == "RESOLVED"
    assert channel.sent == []
    assert deps.store.get(watch["incident_id"]).status is IncidentStatus.RESOLVED  # type: ignore[union-attr]


# --- a cause after its effects: it takes them over (issue 14 §2) --------------------------------


def paged_effect(key: str = "alarm:5xx", opened: datetime = AT - timedelta(minutes=1), **extra: Any) -> Incident:
    return incident(key, kind="alarm", rule="rule:load-balancer-5xx", opened=opened,
                    facts=(("metric", "HTTPCode_Target_5XX_Count"),), **extra)


def test_a_cause_after_its_paging_effect_takes_it_over_instead_of_grouping_into_it() -> None:
    effect = paged_effect()
    found = related_to(signal_of("01-rds-failover-started.json"), [effect], SERVICES, AT, rule="rule:rds-failover",
                       severity=Severity.SEV2)
    assert (found.reason, found.incident) == (Relation.TAKES_OVER, effect)
    # what is not one of its effects is grouped as before
    other = incident("alarm:cpu", kind="alarm", rule="rule:ecs-cpu", opened=AT - timedelta(minutes=1))
    assert related_to(signal_of("01-rds-failover-started.json"), [other], SERVICES, AT, rule="rule:rds-failover",
                      severity=Severity.SEV2).reason is Relation.GROUPED


def test_effects_of_takes_only_the_services_paging_effects_opened_before_the_cause() -> None:
    cause = incident("rds:failover")
    effect = paged_effect()
    latency = incident("alarm:latency", kind="alarm", rule="default", facts=(("metric", "TargetResponseTime"),),
                       opened=AT - timedelta(minutes=2))
    skipped = [paged_effect("alarm:held", held="inhibited by inc-x", held_by="inc-x"),
               paged_effect("alarm:silenced", status=IncidentStatus.SILENCED),
               paged_effect("alarm:other", service="billing"),
               paged_effect("alarm:later", opened=AT + timedelta(seconds=1)),
               incident("alarm:cpu", kind="alarm", rule="rule:ecs-cpu")]  # no inhibit rule makes it an effect
    found = grouping.effects_of(cause, [effect, latency, *skipped], SERVICES)
    assert [(i.id, by.name) for i, by in found] == [("inc-alarm:latency", "outage-explains-slow-metrics"),
                                                    ("inc-alarm:5xx", "outage-explains-error-alarms")]
    acknowledged = paged_effect(status=IncidentStatus.ACKNOWLEDGED)
    assert [i.id for i, _ in grouping.effects_of(cause, [acknowledged], SERVICES)] == ["inc-alarm:5xx"]


def test_took_over_and_held_under_say_so_on_both_timelines() -> None:
    cause, effect = incident("rds:failover"), paged_effect()
    [(_, by)] = grouping.effects_of(cause, [effect], SERVICES)
    taking = grouping.took_over(cause, [(effect, by)], AT)
    assert taking.took_over == ("inc-alarm:5xx",) and taking.related == (("inc-alarm:5xx", "alarm:5xx"),)
    assert taking.timeline[-1].what.startswith("took over: alarm:5xx (inc-alarm:5xx, SEV2), paged before this opened")
    held = grouping.held_under(effect, taking, AT)
    assert (held.held_by, held.held) == ("inc-rds:failover", "held under inc-rds:failover, which opened after it")
    assert held.timeline[-1].what.startswith("held under inc-rds:failover (rds:failover), which opened after it")
    resolved = paged_effect(status=IncidentStatus.RESOLVED)
    assert grouping.held_under(resolved, taking, AT) is resolved


def test_a_late_cause_takes_over_the_effect_that_paged_and_its_page_names_it(
        night_deps: tuple[Deps, RecordingChannel, FakeClock]) -> None:
    deps, channel, clock = night_deps
    effect = feed(deps, "06-alarm-5xx.json")
    assert effect["reason"] == "OPENED" and len(actionable(channel)) == 1
    clock.advance(seconds=60)
    cause = feed(deps, "01-rds-failover-started.json")
    assert cause["reason"] == "OPENED"  # not grouped into its own effect
    pages = actionable(channel)
    assert len(pages) == 2
    assert f"holds 1 paged before it: credentialing-api-alb-5xx-high ({effect['incident_id']})" in pages[1]
    held = deps.store.get(effect["incident_id"])
    assert held is not None and held.held_by == cause["incident_id"]
    assert any(e.what.startswith(f"held under {cause['incident_id']}") and "which opened after it" in e.what
               for e in full_timeline(deps.store, held))
    taking = deps.store.get(cause["incident_id"])
    assert taking is not None and taking.took_over == (effect["incident_id"],) and taking.related_count == 1
    assert any(e.what.startswith("took over: credentialing-api-alb-5xx-high") for e in full_timeline(deps.store, taking))

    # the effect's chain stops: 70 minutes on (SEV2: founder-primary at +60, a repeat at +65), only the cause escalates
    before = len(channel.sent)
    clock.advance(minutes=70)
    deps.pipeline.sweep()
    escalated = {p.incident_id for p in channel.sent[before:] if p.kind in (PageKind.TRIGGER, PageKind.ESCALATION)}
    assert escalated == {cause["incident_id"]}

    # the cause resolves with the effect still firing: its notice lists it, and the effect pages afresh
    before = len(channel.sent)
    deps.pipeline.resolve(cause["incident_id"], by="alice")
    notice = [p.text for p in channel.sent if p.kind is PageKind.RESOLVE and p.incident_id == cause["incident_id"]]
    assert notice and "related (1): credentialing-api-alb-5xx-high" in notice[0]
    released = deps.store.get(effect["incident_id"])
    assert released is not None and released.held is None
    assert released.duties == held.duties  # owed once, when it first opened
    again = [p for p in channel.sent[before:] if p.kind in (PageKind.TRIGGER, PageKind.ESCALATION)]
    assert [p.incident_id for p in again] == [effect["incident_id"]]  # a fresh chain: its first step again


def test_a_taken_over_effect_that_recovers_tells_whoever_it_paged(
        night_deps: tuple[Deps, RecordingChannel, FakeClock]) -> None:
    deps, channel, clock = night_deps
    effect = feed(deps, "06-alarm-5xx.json")
    clock.advance(seconds=60)
    cause = feed(deps, "01-rds-failover-started.json")
    clock.advance(minutes=2)
    assert feed(deps, "11-alarm-5xx-ok.json")["reason"] == "RESOLVED"
    notices = [p for p in channel.sent if p.incident_id == effect["incident_id"] and p.kind is PageKind.RESOLVE]
    assert len(notices) == 1  # it paged: its resolve notice goes to the same person
    deps.pipeline.resolve(cause["incident_id"], by="alice")
    assert len([p for p in channel.sent if p.incident_id == effect["incident_id"] and p.kind is PageKind.TRIGGER]) == 1


def test_every_form_of_a_late_causes_pages_says_what_it_holds_and_its_resolve_notice_does_not_repeat_it() -> None:
    from chalicelib.notify import render

    cause = grouping.took_over(incident("rds:failover"), grouping.effects_of(incident("rds:failover"),
                                                                             [paged_effect()], SERVICES), AT)
    for kind in (PageKind.TRIGGER, PageKind.ESCALATION):
        page = render.content(cause, kind, CONFIG)
        assert page.holds == "holds 1 paged before it: alarm:5xx (inc-alarm:5xx)"
        assert page.holds in render.full_text(page)
        assert ("holds", page.holds) in render.details(page)
        assert "holds 1 paged before" in render.sms_text(page)
    assert render.content(cause, PageKind.RESOLVE, CONFIG).holds is None  # the notice lists it as related
    assert render.content(incident("rds:failover"), PageKind.TRIGGER, CONFIG).holds is None


def test_only_a_cause_looks_for_effects_to_take_over() -> None:
    assert grouping.is_a_cause(incident("rds:failover"), SERVICES)
    assert grouping.is_a_cause(incident("ecs:x", kind="ecs_deployment", rule="default"), SERVICES)
    assert not grouping.is_a_cause(paged_effect(), SERVICES)
    assert not grouping.is_a_cause(incident("rds:failover"), ServicesConfig())


def test_an_effect_whose_cause_resolved_without_releasing_it_still_pages_on_the_sweep(
        night_deps: tuple[Deps, RecordingChannel, FakeClock], monkeypatch: pytest.MonkeyPatch) -> None:
    """The cause's resolving write is stored, then the worker dies before it releases what it held
    (a Lambda timeout; the release's write failing). The effect's alarm still fires and CloudWatch
    will not say so again: the sweep must page it, not leave it held for ever."""
    deps, channel, clock = night_deps
    cause = feed(deps, "01-rds-failover-started.json")
    clock.advance(seconds=60)
    effect = feed(deps, "06-alarm-5xx.json")
    assert effect["reason"] == "INHIBITED"
    clock.advance(minutes=5)

    def dies(*_: Any) -> Any:
        raise RuntimeError("the worker died after the cause's resolving write")
    monkeypatch.setattr(deps.pipeline, "_release_held", dies)
    with pytest.raises(RuntimeError):
        deps.pipeline.resolve(cause["incident_id"], by="alice")
    monkeypatch.undo()
    deps.pipeline.resolve(cause["incident_id"], by="alice")  # the caller's retry: already resolved
    for _ in range(10):
        clock.advance(minutes=1)
        deps.pipeline.sweep()
    assert any("credentialing-api-alb-5xx-high" in text for text in actionable(channel)[1:])


def test_the_sweep_leaves_an_effect_held_while_its_cause_is_open_and_looks_again_later(
        night_deps: tuple[Deps, RecordingChannel, FakeClock]) -> None:
    from chalicelib.decisions.escalation import HELD_RECHECK

    deps, channel, clock = night_deps
    cause = feed(deps, "01-rds-failover-started.json")
    effect = feed(deps, "06-alarm-5xx.json")
    opened = deps.store.get(effect["incident_id"])
    assert opened is not None and opened.next_action_at == opened.opened_at + HELD_RECHECK
    clock.advance(minutes=HELD_RECHECK.total_seconds() / 60 + 1)
    deps.pipeline.sweep()
    still = deps.store.get(effect["incident_id"])
    assert still is not None and still.held_by == cause["incident_id"] and still.pages == ()
    assert still.next_action_at == clock() + HELD_RECHECK  # not due again at the next minute's sweep
    assert len(actionable(channel)) == 1
