"""The source registry: every source is wired, dead-lettered, exemplified and classified, and a
signal's facts are exactly what its source declares (issue 16 §1)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib import config
from chalicelib.decisions import comms
from chalicelib.decisions.classify import classify, matches
from chalicelib.errors import ConfigError
from chalicelib.models import MAX_PAIRS, MAX_SIGNAL_TEXT, Signal, SignalKind, Transition
from chalicelib.sources import registry, to_signals
from chalicelib.sources.registry import EventBridgeRule, Fact, Source
from tests.conftest import CONFIG, EVENTS_DIR, ROOT, T0, copy_config, load_event, load_script

merge_template_rules = load_script("merge_template_rules")
SOURCES = registry.sources()
BY_NAME = {s.name: s for s in SOURCES}


def _app_probe() -> dict[str, Any]:
    """What ``import app`` declares, from a fresh interpreter (its routes and EventBridge rules)."""
    code = ("import app, json; print(json.dumps({'handlers': sorted(app.app.handler_map), "
            "'routes': sorted(app.app.routes), 'rules': {e.name: e.event_pattern for e in app.app.event_sources "
            "if hasattr(e, 'event_pattern')}, 'sns': [e.name for e in app.app.event_sources if hasattr(e, 'topic')]}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    probe: dict[str, Any] = json.loads(result.stdout)
    return probe


# --- the meta-test: one row per source ---------------------------------------------------


@pytest.fixture(scope="module")
def app_probe() -> dict[str, Any]:
    return _app_probe()


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_every_source_has_a_rule_or_route_in_app(source: Source, app_probe: dict[str, Any]) -> None:
    assert source.triggers, f"{source.name} has no trigger"
    for trigger in source.triggers:
        if isinstance(trigger, EventBridgeRule):
            assert app_probe["rules"].get(trigger.name) == trigger.pattern, trigger.name
        elif trigger.startswith("route:"):
            assert trigger.removeprefix("route:") in app_probe["routes"], trigger
        elif trigger.startswith("schedule:"):  # a scheduled check that produces the source's signals
            assert trigger.removeprefix("schedule:") in app_probe["handlers"], trigger
        else:
            assert trigger == "sns" and app_probe["sns"], trigger


def test_app_declares_exactly_the_registry_rules(app_probe: dict[str, Any]) -> None:
    assert set(app_probe["rules"]) == {rule.name for rule in registry.eventbridge_rules()}
    # The Lambda names of the rules that existed before the registry stay as they were.
    assert {"on_alarm_state_change", "on_cloudtrail_s3", "on_ecs_deployment"} <= set(app_probe["handlers"])


@pytest.mark.parametrize("rule", registry.eventbridge_rules(), ids=lambda r: r.name)
def test_every_rule_function_has_an_on_failure_destination_in_the_packaged_template(
        rule: EventBridgeRule, packaged: dict[str, Any]) -> None:
    for stage in packaged:
        resources = packaged[stage]["sam"]["Resources"]
        function = merge_template_rules.resource_name(rule.name)
        [event] = resources[function]["Properties"]["Events"].values()
        assert event["Properties"]["Pattern"] == rule.pattern
        assert event["Properties"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
        invoke = resources[f"{function}InvokeConfig"]["Properties"]
        assert invoke["FunctionName"] == {"Ref": function}
        assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_merge_template_is_in_step_with_the_registry() -> None:
    assert merge_template_rules.main(["--check"]) == 0


def test_the_template_check_notices_a_rule_without_its_blocks() -> None:
    template = json.loads((ROOT / ".chalice" / "merge-template.json").read_text())
    del template["Resources"]["OnRdsEventInvokeConfig"]
    functions = merge_template_rules.rule_functions()
    assert merge_template_rules.synced(template, functions) != template
    assert "OnRdsEventInvokeConfig" in merge_template_rules.synced(template, functions)["Resources"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_every_source_has_fixtures_that_convert_to_its_kind(source: Source) -> None:
    assert source.fixtures, f"{source.name} has no fixture"
    for name in source.fixtures:
        assert (EVENTS_DIR / name).is_file(), name
        signals = to_signals(load_event(name), T0)
        assert signals and {s.kind for s in signals} == {source.kind}, (name, [s.unknown_reason for s in signals])


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_every_source_has_a_classification_row(source: Source) -> None:
    signals = [s for name in source.fixtures for s in to_signals(load_event(name), T0)]
    rows = {rule.name for rule in CONFIG.severity.rules for s in signals if matches(rule.match, s)}
    assert rows, f"no rule in severity.yaml classifies a fixture of {source.name}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_every_source_is_declared_whole(source: Source) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", source.name) and source.doc and source.kind in registry.kinds()
    names = [f.name for f in source.facts]
    assert len(names) == len(set(names))
    for fact in source.facts:
        assert re.fullmatch(r"[a-z][a-z0-9_]{0,63}", fact.name) and fact.doc, fact
        assert fact.type in (str, int, float, bool)
    assert len({s.name for s in SOURCES}) == len(SOURCES)


def test_one_fact_name_has_one_type_across_sources() -> None:
    declared = registry.facts()  # raises TypeError on a conflict
    assert declared["event_name"].type is str and declared["version_targeted"].type is bool


def test_a_fact_declared_twice_with_two_types_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    clash = Source(name="clash", kind="alarm", doc="d", triggers=("sns",), facts=(Fact("event_name", int, "d"),),
                   fixtures=(), convert="x:y")
    monkeypatch.setattr(registry, "sources", lambda: (*SOURCES, clash))
    registry.facts.cache_clear()
    try:
        with pytest.raises(TypeError, match="'event_name' is declared as str and as int"):
            registry.facts()
    finally:
        registry.facts.cache_clear()


def test_customer_facing_kinds_come_from_the_registry() -> None:
    assert comms.SERVICE_KINDS == {s.kind for s in SOURCES if s.customer_facing}
    assert {"alarm", "rds_event", "sentry_issue"} <= comms.SERVICE_KINDS
    assert not {"cloudtrail", "s3_object", "pagerduty"} & comms.SERVICE_KINDS


# --- dispatch through the registry ----------------------------------------------------------


def _signal(**changes: Any) -> Signal:
    base: dict[str, Any] = dict(kind="rds_event", source="test", delivery_id="d", incident_key="k",
                                transition=Transition.TRIGGER, occurred_at=T0, title="t")
    return Signal(**{**base, **changes})


def _new_source_convert(payload: Any, received: datetime) -> list[Signal]:
    return [_signal(kind="rds_event", delivery_id=f"new:{payload['id']}", facts=(("event_name", "X"),))]


def _broken_convert(payload: Any, received: datetime) -> list[Signal]:
    raise ValueError("SourceArn is missing\nsecond line")


def test_a_new_source_is_reached_by_its_catalog_entry_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    rule = EventBridgeRule("on_new_thing", {"source": ["aws.new"], "detail-type": ["New Thing"]})
    new = Source(name="new_thing", kind="rds_event", doc="d", triggers=(rule,), facts=(), fixtures=(),
                 convert=_new_source_convert)
    monkeypatch.setattr(registry, "sources", lambda: (*SOURCES, new))
    event = {"id": "e1", "source": "aws.new", "detail-type": "New Thing", "detail": {}}
    [signal] = to_signals(event, T0)
    assert signal.delivery_id == "new:e1" and signal.fact("event_name") == "X"
    # Same detail-type from another sender: not this source's.
    [other] = to_signals({**event, "source": "aws.other"}, T0)
    assert other.kind is SignalKind.UNKNOWN and "'New Thing' from 'aws.other'" in (other.unknown_reason or "")


def test_a_converter_error_becomes_unknown_with_a_one_line_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    rule = EventBridgeRule("on_new_thing", {"source": ["aws.new"], "detail-type": ["New Thing"]})
    broken = Source(name="broken", kind="rds_event", doc="d", triggers=(rule,), facts=(), fixtures=(),
                    convert=_broken_convert)
    monkeypatch.setattr(registry, "sources", lambda: (broken, *SOURCES))
    [signal] = to_signals({"id": "e1", "source": "aws.new", "detail-type": "New Thing", "detail": {}}, T0)
    assert signal.kind is SignalKind.UNKNOWN
    assert signal.unknown_reason == "ValueError while converting: SourceArn is missing"


def test_too_deep_input_is_unknown_before_any_source_is_asked() -> None:
    deep: dict[str, Any] = {}
    for _ in range(200):
        deep = {"x": deep}
    event = {"id": "e9", "source": "aws.rds", "detail-type": "RDS DB Instance Event", "detail": deep}
    [signal] = to_signals(event, T0)
    assert signal.kind is SignalKind.UNKNOWN and "nested deeper" in (signal.unknown_reason or "")
    assert signal.delivery_id == "eventbridge:e9"


# --- the sources this change wires: each reaches its Lambda and is recorded ------------------


@pytest.mark.parametrize("handler, fixture, kind, fact", [
    ("on_rds_event", "rds-db-cluster-event-patched.json", "rds_event", ("source_type", "CLUSTER")),
    ("on_rds_event", "rds-db-instance-event-failover.json", "rds_event", ("event_name", "RDS-EVENT-0049")),
    ("on_ecs_task_stopped", "ecs-task-state-change-stopped.json", "ecs_task", ("event_name", "STOPPED")),
    ("on_s3_object_deleted", "eventbridge-s3-object-deleted-direct.json", "s3_object", ("version_targeted", False)),
    ("on_alarm_configuration_change", "eventbridge-cloudwatch-alarm-configuration-change-update.json", "alarm",
     ("operation", "update")),
])
def test_newly_wired_rules_reach_their_converter(client: Any, deps: Any, handler: str, fixture: str, kind: str,
                                                 fact: tuple[str, Any]) -> None:
    response = client.lambda_.invoke(handler, load_event(fixture))
    [outcome] = response.payload["outcomes"]
    assert outcome["kind"] == kind and outcome["unknown_reason"] is None
    [signal] = to_signals(load_event(fixture), T0)
    assert fact in signal.facts


def test_s3_rule_delivers_deletions_yet_a_creation_still_converts() -> None:
    [rule] = BY_NAME["s3_object"].rules
    assert rule.pattern["detail-type"] == ["Object Deleted"]
    created = {**load_event("eventbridge-s3-object-deleted-direct.json"), "detail-type": "Object Created"}
    [signal] = to_signals(created, T0)
    assert signal.kind is SignalKind.S3_OBJECT and signal.fact("event_name") == "Object Created"


def test_ecs_task_rule_delivers_stopped_tasks_only() -> None:
    [rule] = BY_NAME["ecs_task"].rules
    assert rule.pattern["detail"] == {"lastStatus": ["STOPPED"]}


def test_rds_cluster_failover_and_instance_failover_classify_alike() -> None:
    [instance] = to_signals(load_event("rds-db-instance-event-failover.json"), T0)
    assert classify(instance, CONFIG.severity).rule == "rule:rds-failover"
    [patched] = to_signals(load_event("rds-db-cluster-event-patched.json"), T0)
    assert classify(patched, CONFIG.severity).rule == "default"


# --- Signal.facts: declared, typed, bounded ---------------------------------------------------


def test_signal_refuses_a_fact_its_kind_does_not_declare() -> None:
    with pytest.raises(ValidationError, match="fact 'sentry_level' is not declared by a source of kind 'rds_event'"):
        _signal(facts=(("sentry_level", "fatal"),))


def test_signal_refuses_a_fact_value_of_the_wrong_type() -> None:
    with pytest.raises(ValidationError, match="fact 'event_name' must be a str, not int"):
        _signal(facts=(("event_name", 49),))
    with pytest.raises(ValidationError, match="'version_targeted' must be a bool"):
        _signal(kind="cloudtrail", facts=(("version_targeted", "yes"),))


def test_signal_refuses_a_kind_no_source_produces() -> None:
    with pytest.raises(ValidationError, match="kind 'aws_healthh' is produced by no registered source"):
        _signal(kind="aws_healthh")


def test_old_kinds_stay_enum_members_and_compare_as_text() -> None:
    signal = _signal(kind="alarm")
    assert signal.kind is SignalKind.ALARM and signal.kind == "alarm"


def test_signal_facts_are_bounded() -> None:
    many = tuple(("event_category", f"c{i}") for i in range(MAX_PAIRS + 20))
    signal = _signal(facts=(("event_name", "x" * 10_000), *many))
    assert len(signal.facts) == MAX_PAIRS
    assert len(str(signal.fact("event_name"))) == MAX_SIGNAL_TEXT


def test_signal_refuses_a_number_that_is_not_finite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "facts_of_kind", lambda kind: {"ratio": float})
    assert _signal(facts=(("ratio", 3),)).fact("ratio") == 3
    with pytest.raises(ValidationError, match="'ratio' is not a finite number"):
        _signal(facts=(("ratio", float("nan")),))


# --- severity.yaml: rules name declared facts -------------------------------------------------


def _load_with_rule(folder: Path, rule: str) -> config.ResponderConfig:
    copy_config(folder)
    path = folder / "severity.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\n" + rule)
    return config.load(folder)


def test_a_rule_on_a_new_fact_needs_no_code_change(tmp_path: Path) -> None:
    loaded = _load_with_rule(tmp_path, "  - name: rds-cluster\n    match:\n      facts: {source_type: cluster}\n"
                                       "    severity: SEV1\n")
    [patched] = to_signals(load_event("rds-db-cluster-event-patched.json"), T0)
    assert classify(patched, loaded.severity).rule == "rule:rds-cluster"  # text compares without case


@pytest.mark.parametrize("rule, reason", [
    ("      facts: {event_type_kode: [AWS_RDS_X]}\n", "rule 'extra': fact 'event_type_kode' is declared by no source"),
    ("      facts: {version_targeted: [\"yes\"]}\n", "rule 'extra': fact 'version_targeted' takes bool values, not 'yes'"),
    ("      facts: {event_name: [49]}\n", "rule 'extra': fact 'event_name' takes str values, not 49"),
    ("      facts: {caller: inside}\n", "rule 'extra': fact 'caller' is one of internal, external, never 'inside'"),
    ("      facts: {event_name: []}\n", "rule 'extra': fact 'event_name' lists no value"),
    ("      event_name: [X]\n", "'event_name' is a fact: write it under facts:"),
    ("      kind: [aws_healthh]\n", "kind 'aws_healthh' is produced by no registered source"),
])
def test_a_rule_naming_an_undeclared_fact_is_refused_at_load(tmp_path: Path, rule: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load_with_rule(tmp_path, f"  - name: extra\n    match:\n{rule}    severity: SEV1\n")
    assert reason in str(info.value) and info.value.key.startswith("rules[")


def test_kinds_no_payload_source_produces_are_still_known() -> None:
    from chalicelib.sources import manual

    assert manual.to_signal("checkout is down", None, "giles", T0).kind is SignalKind.MANUAL
    assert {"unknown", "canary", "manual"} <= registry.kinds()
