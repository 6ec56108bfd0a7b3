"""Maintenance windows and silences (issue 14 §1): ``decisions/silences.py`` (pure), the config's
``maintenance_windows:``, ``POST/GET /silences``, ``DELETE /silences/{id}``, the CLI, and the
acceptance on both stores: matching alarms inside a window page nobody and are recorded; the same
alarm still open at the window's end pages then."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
import yaml
from chalice.test import Client
from moto import mock_aws
from pydantic import ValidationError

from chalicelib import config
from chalicelib.config.routing import MaintenanceWindow
from chalicelib.decisions.silences import Silence, SilenceReason, occurrence, silenced_by
from chalicelib.handlers import on_event
from chalicelib.models import Classification, IncidentStatus, PageKind, Severity, Signal, Transition
from chalicelib.reports.report import monthly_stats, render_markdown
from chalicelib.store import full_timeline
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.sqlite import SqliteStore
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps
from tests.conftest import (
    CONFIG,
    T0,
    FakeClock,
    RecordingChannel,
    copy_config,
    create_table,
    installed,
    make_deps,
    new_id,
    sns_event,
)
from tests.test_operations import cli, cli_store, paged, post  # noqa: F401 (cli_store: a fixture)

ALARM = "sns-cloudwatch-alarm-metric.json"  # checkout-api-alb-5xx-high: Sev2, engineering-oncall at once
NEW_YORK = ZoneInfo("America/New_York")


# --- the pure decision -------------------------------------------------------------------------


def signal(**changes: Any) -> Signal:
    base: dict[str, Any] = {
        "kind": "alarm", "source": "cloudwatch", "delivery_id": "d-1", "incident_key": "alarm:db-cpu",
        "transition": Transition.TRIGGER, "occurred_at": T0, "title": "orders-db-prod-cpu-high",
        "resource": "orders-db-prod", "facts": (("alarm_name", "orders-db-prod-cpu-high"),),
        "dimensions": (("ServiceName", "checkout-api"),)}
    return Signal(**(base | changes))


def classified(severity: int = 2) -> Classification:
    return Classification(severity=Severity(severity), owner="engineering-oncall", response_minutes=15,
                          playbook=None, rule="test")


def silence(matchers: dict[str, str], **changes: Any) -> Silence:
    base: dict[str, Any] = {"id": "sil-1", "matchers": matchers, "starts_at": T0 - timedelta(hours=1),
                            "ends_at": T0 + timedelta(hours=1), "reason": "db upgrade", "by": "giles",
                            "created_at": T0 - timedelta(hours=2)}
    return Silence(**(base | changes))


@pytest.mark.parametrize("matchers, matched", [
    ({"kind": "alarm"}, True), ({"kind": "rds_event"}, False),
    ({"resource": "orders-db-prod"}, True), ({"resource": "orders-db-*"}, True), ({"resource": "search-*"}, False),
    ({"service": "checkout-api"}, True), ({"service": "search-api"}, False),
    ({"words": "cpu high"}, True), ({"words": "db"}, True), ({"words": "cp"}, False),
    ({"severity": "SEV2"}, True), ({"severity": "3"}, False),
    ({"kind": "alarm", "words": "cpu", "severity": "sev2"}, True), ({"kind": "alarm", "words": "memory"}, False),
])
def test_every_matcher_must_match(matchers: dict[str, str], matched: bool) -> None:
    verdict = silenced_by(signal(), classified(2), [silence(matchers)], {}, T0)
    expected = SilenceReason.SILENCED if matched else SilenceReason.NOT_SILENCED
    assert verdict.reason is expected
    assert (verdict.by, verdict.until) == (("silence sil-1 (db upgrade)", T0 + timedelta(hours=1)) if matched
                                           else (None, None))


def test_a_silence_holds_only_from_its_start_until_its_end_or_until_ended() -> None:
    made = silence({"kind": "alarm"})
    assert silenced_by(signal(), classified(), [made], {}, T0 - timedelta(hours=1, seconds=1)).reason \
        is SilenceReason.NOT_SILENCED
    assert silenced_by(signal(), classified(), [made], {}, T0 + timedelta(hours=1)).reason \
        is SilenceReason.NOT_SILENCED
    ended = made.model_copy(update={"ended_at": T0 - timedelta(minutes=1), "ended_by": "giles"})
    assert silenced_by(signal(), classified(), [ended], {}, T0).reason is SilenceReason.NOT_SILENCED


def test_sev1_is_silenced_only_when_the_silence_or_window_says_so() -> None:
    window = MaintenanceWindow(days=("fri",), start="10:00", end="11:00", matchers={"kind": "alarm"},
                               reason="patching")
    assert silenced_by(signal(), classified(1), [silence({"kind": "alarm"})], {"w": window}, T0, NEW_YORK).reason \
        is SilenceReason.SEV1_NOT_SILENCED
    allowed = window.model_copy(update={"include_sev1": True})
    verdict = silenced_by(signal(), classified(1), [], {"w": allowed}, T0, NEW_YORK)
    assert verdict.reason is SilenceReason.IN_WINDOW and verdict.by == "maintenance window w (patching)"
    assert silenced_by(signal(), classified(1), [silence({"kind": "alarm"}, include_sev1=True)], {}, T0).reason \
        is SilenceReason.SILENCED


def test_of_several_matches_the_one_silencing_longest_wins() -> None:
    short, long = silence({"kind": "alarm"}), silence({"kind": "alarm"}, id="sil-2", ends_at=T0 + timedelta(hours=5))
    verdict = silenced_by(signal(), classified(), [short, long], {}, T0)
    assert verdict.by is not None and verdict.by.startswith("silence sil-2") and verdict.until == T0 + timedelta(hours=5)


def test_the_shipped_rds_window_is_sunday_four_to_five_new_york_time_across_daylight_saving() -> None:
    window = CONFIG.routing.maintenance_windows["rds-maintenance"]
    summer = datetime(2026, 7, 5, 8, 30, tzinfo=UTC)  # Sunday 04:30 EDT
    assert occurrence(window, summer, NEW_YORK) == (datetime(2026, 7, 5, 8, tzinfo=UTC),
                                                    datetime(2026, 7, 5, 9, tzinfo=UTC))
    winter = datetime(2026, 12, 6, 9, 59, tzinfo=UTC)  # Sunday 04:59 EST
    assert occurrence(window, winter, NEW_YORK) == (datetime(2026, 12, 6, 9, tzinfo=UTC),
                                                    datetime(2026, 12, 6, 10, tzinfo=UTC))
    assert occurrence(window, datetime(2026, 12, 6, 10, tzinfo=UTC), NEW_YORK) is None  # 05:00: over
    assert occurrence(window, datetime(2026, 12, 7, 9, 30, tzinfo=UTC), NEW_YORK) is None  # a Monday
    rds = signal(kind="rds_event", facts=(), dimensions=())
    assert silenced_by(rds, classified(2), [], CONFIG.routing.maintenance_windows, summer,
                       CONFIG.routing.zone).reason is SilenceReason.IN_WINDOW
    assert silenced_by(rds, classified(1), [], CONFIG.routing.maintenance_windows, summer,
                       CONFIG.routing.zone).reason is SilenceReason.SEV1_NOT_SILENCED


def test_a_window_past_midnight_ends_the_next_day() -> None:
    window = MaintenanceWindow(days=("sat",), start="23:00", end="01:00", matchers={"kind": "alarm"}, reason="r")
    sunday_0030 = datetime(2026, 7, 5, 0, 30, tzinfo=NEW_YORK)
    assert occurrence(window, sunday_0030, NEW_YORK) == (datetime(2026, 7, 4, 23, tzinfo=NEW_YORK).astimezone(UTC),
                                                         datetime(2026, 7, 5, 1, tzinfo=NEW_YORK).astimezone(UTC))


@pytest.mark.parametrize("window, named", [
    ({"start": "04:00", "end": "05:00", "matchers": {"colour": "red"}, "reason": "r"}, "matchers.colour"),
    ({"start": "04:00", "end": "05:00", "matchers": {}, "reason": "r"}, "matchers"),
    ({"start": "04:00", "end": "05:00", "matchers": {"severity": "SEV9"}, "reason": "r"}, "matchers.severity"),
    ({"start": "04:00", "end": "05:00", "matchers": {"kind": "alarm"}, "reason": "r", "timezone": "Mars/Base"},
     "Mars/Base"),
    ({"start": "04:00", "end": "05:00", "matchers": {"kind": "alarm"}}, "reason"),
    ({"start": "04:00", "end": "05:00", "matchers": {"kind": "alarm"}, "reason": "r", "include_sev2": True},
     "include_sev2"),
])
def test_a_bad_maintenance_window_is_refused_at_load_naming_what(tmp_path: Path, window: dict[str, Any],
                                                                 named: str) -> None:
    copy_config(tmp_path)
    routing = yaml.safe_load((tmp_path / "routing.yaml").read_text())
    routing["maintenance_windows"] = {"bad": window}
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(routing))
    with pytest.raises((config.ConfigError, ValidationError)) as refused:
        config.load(tmp_path)
    assert named in str(refused.value)


# --- through the app, on both stores ------------------------------------------------------------


class World:
    def __init__(self, http: Client, deps: Deps, clock: FakeClock, console: RecordingChannel) -> None:
        self.http, self.deps, self.clock, self.console = http, deps, clock, console
        self.token = deps.tokens.create("giles", Role.RESPONDER)[1]

    def alarm(self, state: str = "ALARM", name: str = "checkout-api-alb-5xx-high") -> dict[str, Any]:
        event = sns_event(ALARM, message_id=new_id(), NewStateValue=state, AlarmName=name,
                          AlarmArn=f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")
        [outcome] = on_event(event, "sns", self.deps)["outcomes"]
        return dict(outcome)

    def silence(self, body: dict[str, Any]) -> Any:
        return post(self.http, self.token, "/silences", body)

    def get(self, path: str) -> Any:
        return self.http.http.get(path, headers={"Authorization": f"Bearer {self.token}"})

    def delete(self, path: str) -> Any:
        return self.http.http.delete(path, headers={"Authorization": f"Bearer {self.token}"})


def worlds(kind: str, tmp_path: Path, clock: FakeClock, console: RecordingChannel,
           env: dict[str, str] | None = None) -> Iterator[World]:
    import app as app_module

    if kind == "sqlite":
        for built in installed(make_deps(SqliteStore(tmp_path / "s.db"), clock, console, env)):
            with Client(app_module.app, stage_name="dev") as http:
                yield World(http, built, clock, console)
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for built in installed(make_deps(DynamoStore(create_table(client), client=client), clock, console, env)):
            with Client(app_module.app, stage_name="dev") as http:
                yield World(http, built, clock, console)


@pytest.fixture(params=["sqlite", "dynamodb"])
def world(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[World]:
    yield from worlds(request.param, tmp_path, clock, console)


WINDOW = {"matchers": {"words": "checkout 5xx"}, "starts_at": (T0 - timedelta(minutes=5)).isoformat(),
          "ends_at": (T0 + timedelta(hours=1)).isoformat(), "reason": "checkout load test"}


def test_a_silenced_alarm_is_recorded_pages_nobody_and_pages_when_the_silence_ends(world: World) -> None:
    made = world.silence(WINDOW)
    assert made.status_code == 201, made.json_body
    silence_id = made.json_body["id"]
    assert made.json_body["by"] == "giles" and silence_id.startswith("sil-")
    assert world.get("/silences").json_body["silences"] == [made.json_body]

    opened = world.alarm()
    assert opened["reason"] == "OPENED" and opened["pages"] == 0
    assert paged(world.console) == [] and world.console.sent == []
    incident = world.deps.store.get(opened["incident_id"])
    assert incident is not None and incident.status is IncidentStatus.SILENCED
    assert incident.silenced_by == f"silence {silence_id} (checkout load test)"
    assert any(f"silenced by silence {silence_id}" in e.what for e in full_timeline(world.deps.store, incident))

    world.clock.advance(minutes=30)
    assert world.alarm()["reason"] == "ALREADY_OPEN"  # still recorded, counted, nobody paged
    world.deps.pipeline.sweep()
    assert paged(world.console) == []

    world.clock.now = T0 + timedelta(hours=1)  # the silence ends with the alarm still firing
    world.deps.pipeline.sweep()
    assert paged(world.console) == [("engineer-on-call", PageKind.TRIGGER)]
    after = world.deps.store.get(opened["incident_id"])
    assert after is not None and after.status is IncidentStatus.OPEN
    assert any("ended; still open: paged as a normal incident" in e.what for e in full_timeline(world.deps.store, after))
    world.deps.pipeline.sweep()
    assert paged(world.console) == []  # paged once


def test_an_alarm_that_recovers_inside_the_silence_never_pages(world: World) -> None:
    assert world.silence(WINDOW).status_code == 201
    opened = world.alarm()
    world.clock.advance(minutes=10)
    assert world.alarm("OK")["reason"] == "RESOLVED"
    world.clock.now = T0 + timedelta(hours=2)
    world.deps.pipeline.sweep()
    assert world.console.sent == []
    incident = world.deps.store.get(opened["incident_id"])
    assert incident is not None and incident.status is IncidentStatus.RESOLVED


def test_an_alarm_the_silence_does_not_match_pages_as_usual(world: World) -> None:
    assert world.silence(WINDOW).status_code == 201
    assert world.alarm(name="search-api-latency-high")["pages"] == 1
    assert paged(world.console) == [("engineer-on-call", PageKind.TRIGGER)]


def test_ending_a_silence_early_pages_what_it_held_back_at_the_next_sweep(world: World) -> None:
    silence_id = world.silence(WINDOW).json_body["id"]
    opened = world.alarm()
    world.clock.advance(minutes=5)
    ended = world.delete(f"/silences/{silence_id}")
    assert ended.status_code == 200, ended.json_body
    assert ended.json_body["ended_by"] == "giles" and ended.json_body["released_incidents"] == [opened["incident_id"]]
    assert world.get("/silences").json_body["silences"] == []
    world.deps.pipeline.sweep()
    assert paged(world.console) == [("engineer-on-call", PageKind.TRIGGER)]
    world.clock.advance(minutes=1)
    assert world.alarm(name="checkout-api-5xx-other")["pages"] == 1  # no longer silenced
    assert world.delete("/silences/sil-nope").status_code == 404


def test_a_sev1_signal_is_not_silenced_unless_the_silence_says_so(world: World) -> None:
    body = {**WINDOW, "matchers": {"severity": "SEV1"}}
    assert world.silence(body).status_code == 201
    made = post(world.http, world.token, "/incidents", {"severity": 1, "title": "checkout down"})
    assert made.status_code == 201
    assert paged(world.console) == [("giles", PageKind.TRIGGER)]
    assert world.silence({**body, "include_sev1": True}).status_code == 201
    world.clock.advance(minutes=1)
    made = post(world.http, world.token, "/incidents", {"severity": 1, "title": "search down", "key": "search"})
    assert made.status_code == 201, made.json_body
    assert paged(world.console) == []
    assert made.json_body["incident"]["status"] == "silenced"


def test_a_silenced_incident_raised_to_sev1_pages_at_once(world: World) -> None:
    assert world.silence(WINDOW).status_code == 201
    opened = world.alarm()
    assert paged(world.console) == []
    world.clock.advance(minutes=1)
    description = "Checkout API returns 5xx.\nseverity: SEV1"
    event = sns_event(ALARM, message_id=new_id(), AlarmDescription=description)
    [raised] = on_event(event, "sns", world.deps)["outcomes"]
    assert raised["reason"] == "SEVERITY_RAISED" and raised["incident_id"] == opened["incident_id"]
    assert [person for person, _ in paged(world.console)] == ["giles"]  # the Sev1 chain, as any raise pages it
    incident = world.deps.store.get(opened["incident_id"])
    assert incident is not None and incident.status is IncidentStatus.OPEN


@pytest.mark.parametrize("change, field", [
    ({"matchers": {"colour": "red"}}, "matchers.colour"), ({"matchers": {}}, "matchers"),
    ({"matchers": "kind=alarm"}, "matchers"), ({"matchers": {"severity": "high"}}, "matchers.severity"),
    ({"matchers": {"kind": 3}}, "matchers.kind"),
    ({"starts_at": "yesterday"}, "starts_at"), ({"ends_at": "2025-03-14T18:00:00"}, "ends_at"),
    ({"ends_at": WINDOW["starts_at"]}, "ends_at"), ({"ends_at": (T0 - timedelta(minutes=1)).isoformat()}, "ends_at"),
    ({"reason": ""}, "reason"), ({"reason": None}, "reason"), ({"include_sev1": "yes"}, "include_sev1"),
    ({"colour": "red"}, "colour")])
def test_a_bad_silence_is_refused_naming_the_field(world: World, change: dict[str, Any], field: str) -> None:
    refused = world.silence({**WINDOW, **change})
    assert refused.status_code == 400, refused.json_body
    assert refused.json_body["field"] == field and refused.json_body["message"]
    assert world.get("/silences").json_body["silences"] == []


def test_silences_need_the_responder_role_to_change_and_a_token_to_read(world: World) -> None:
    viewer = world.deps.tokens.create("viewer", Role.VIEWER)[1]
    assert post(world.http, viewer, "/silences", WINDOW).status_code == 403
    assert world.http.http.get("/silences").status_code == 401
    silence_id = world.silence(WINDOW).json_body["id"]
    assert world.http.http.delete(f"/silences/{silence_id}",
                                  headers={"Authorization": f"Bearer {viewer}"}).status_code == 403


def test_silences_and_overrides_share_one_document_without_losing_each_other(world: World) -> None:
    override = {"role": "founder-primary", "person": "christian", "from": (T0 - timedelta(hours=1)).isoformat(),
                "to": (T0 + timedelta(hours=2)).isoformat()}
    assert post(world.http, world.token, "/oncall/overrides", override).status_code == 201
    assert world.silence(WINDOW).status_code == 201
    assert post(world.http, world.token, "/oncall/overrides", {**override, "person": "giles"}).status_code == 201
    assert len(world.get("/silences").json_body["silences"]) == 1
    assert len(world.get("/oncall/overrides").json_body["overrides"]) == 2


# --- the acceptance: a maintenance window in routing.yaml ------------------------------------------


@pytest.fixture(params=["sqlite", "dynamodb"])
def windowed(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[World]:
    """The shipped config plus a window over T0 (Friday 10:42 New York): 10:00-11:00 for checkout alarms."""
    folder = tmp_path / "config"
    folder.mkdir()
    copy_config(folder)
    routing = yaml.safe_load((folder / "routing.yaml").read_text())
    routing["maintenance_windows"]["checkout-deploy"] = {
        "days": ["fri"], "start": "10:00", "end": "11:00", "matchers": {"kind": "alarm", "words": "checkout"},
        "reason": "weekly checkout deploy"}
    (folder / "routing.yaml").write_text(yaml.safe_dump(routing))
    yield from worlds(request.param, tmp_path, clock, console, {"RESPONDER_CONFIG_DIR": str(folder)})


def test_acceptance_a_maintenance_window_records_pages_nobody_and_pages_what_is_still_open_at_its_end(
        windowed: World) -> None:
    world = windowed
    firing = world.alarm(name="checkout-api-alb-5xx-high")
    recovered = world.alarm(name="checkout-api-latency-high")
    world.clock.advance(minutes=5)
    assert world.alarm("OK", name="checkout-api-latency-high")["reason"] == "RESOLVED"
    assert world.console.sent == []  # nobody paged, not even a resolve notice
    for outcome in (firing, recovered):
        incident = world.deps.store.get(outcome["incident_id"])
        assert incident is not None and incident.silenced_by == "maintenance window checkout-deploy (weekly checkout deploy)"
    assert world.alarm(name="search-api-5xx-high")["pages"] == 1  # outside the matchers: paged at once
    paged(world.console)

    world.clock.now = datetime(2025, 3, 14, 11, 0, tzinfo=NEW_YORK)  # the window's end
    world.deps.pipeline.sweep()
    assert paged(world.console) == [("engineer-on-call", PageKind.TRIGGER)]  # only the one still open
    still = world.deps.store.get(firing["incident_id"])
    assert still is not None and still.status is IncidentStatus.OPEN
    texts = [e.what for e in full_timeline(world.deps.store, still)]
    assert any(t.startswith("silenced by maintenance window checkout-deploy") for t in texts)
    assert any(t.startswith("maintenance window checkout-deploy (weekly checkout deploy) ended") for t in texts)
    gone = world.deps.store.get(recovered["incident_id"])
    assert gone is not None and gone.status is IncidentStatus.RESOLVED


def test_the_monthly_report_lists_every_silenced_sev1(world: World) -> None:
    assert world.silence({**WINDOW, "matchers": {"severity": "SEV1"}, "include_sev1": True}).status_code == 201
    assert post(world.http, world.token, "/incidents", {"severity": 1, "title": "checkout down"}).status_code == 201
    assert post(world.http, world.token, "/incidents", {"severity": 2, "title": "search slow"}).status_code == 201
    stats = monthly_stats(world.deps.store.list(), "2025-03", world.deps.config)
    assert [i.title for i in stats.silenced_sev1] == ["checkout down"]
    text = render_markdown(stats, [], T0)
    assert "## Silenced Sev1 incidents" in text and "checkout down: silenced by silence sil-" in text


# --- the CLI -----------------------------------------------------------------------------------------


def test_the_cli_adds_lists_and_ends_silences(cli_store: None, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    at = "--now", T0.isoformat()
    code, added, _ = cli(capsys, "silence", "add", "--match", "kind=alarm", "--match", "words=checkout 5xx",
                         "--from", WINDOW["starts_at"], "--to", WINDOW["ends_at"], "--reason", "load test",
                         "--by", "giles", *at)
    assert code == 0 and added["matchers"] == {"kind": "alarm", "words": "checkout 5xx"} and added["by"] == "giles"
    code, listed, _ = cli(capsys, "silence", "list", *at)
    assert code == 0 and [s["id"] for s in listed["silences"]] == [added["id"]]
    assert "rds-maintenance" in listed["maintenance_windows"]
    code, ended, _ = cli(capsys, "silence", "end", added["id"], "--by", "christian", *at)
    assert code == 0 and ended["ended_by"] == "christian" and ended["released_incidents"] == []
    code, listed, _ = cli(capsys, "silence", "list", *at)
    assert listed["silences"] == []
    code, _, err = cli(capsys, "silence", "add", "--match", "colour=red", "--from", WINDOW["starts_at"],
                       "--to", WINDOW["ends_at"], "--reason", "r", "--by", "giles", *at)
    assert code != 0 and "matchers.colour" in err
    code, _, err = cli(capsys, "silence", "end", "sil-nope", "--by", "giles", *at)
    assert code != 0 and "sil-nope" in err
    json.dumps(added)


# --- the service matcher reads the service map (services.yaml) --------------------------------------


MAPPED = ["01-rds-failover-started.json", "02-sentry-error-operationalerror.json",
          "04-sentry-issue-created-pool-timeout.json", "06-alarm-5xx.json", "07-alarm-db-connections.json",
          "08-alarm-latency.json", "09-sentry-metric-critical.json", "15-deploy-in-progress.json",
          "16-task-stopped-health-check.json", "18-alarm-unhealthy-hosts.json"]


@pytest.mark.parametrize("name", MAPPED)
def test_a_service_silence_matches_every_signal_the_service_map_assigns_it(name: str) -> None:
    """ECS service, task, target group, load balancer, RDS instance, Sentry project (slug and id): as grouping finds them."""
    from tests.test_grouping import signal_of

    night_signal = signal_of(name)
    mapped = silence({"service": "credentialing-api"})
    assert silenced_by(night_signal, classified(2), [mapped], {}, T0, services=CONFIG.services).reason \
        is SilenceReason.SILENCED
    # the pipeline's classification carries the map's service already
    with_service = classified(2).model_copy(update={"service": "credentialing-api"})
    assert silenced_by(night_signal, with_service, [mapped], {}, T0).reason is SilenceReason.SILENCED
    assert silenced_by(night_signal, classified(2), [silence({"service": "billing-api"})], {}, T0,
                       services=CONFIG.services).reason is SilenceReason.NOT_SILENCED


def test_the_signals_own_service_names_are_the_fallback_when_the_map_assigns_none() -> None:
    # orders-db-prod is in no service of the map: its ServiceName dimension (or a service tag) still matches
    assert silenced_by(signal(), classified(), [silence({"service": "checkout-api"})], {}, T0,
                       services=CONFIG.services).reason is SilenceReason.SILENCED
    tagged = signal(dimensions=(), tags=(("Service", "search-api"),))
    assert silenced_by(tagged, classified(), [silence({"service": "search-api"})], {}, T0,
                       services=CONFIG.services).reason is SilenceReason.SILENCED
    # a signal the map assigns a service is that service's, whatever its dimensions say
    mapped = signal(dimensions=(("LoadBalancer", "app/credentialing-alb/3f6b2a1c9d8e7f60"),
                                ("ServiceName", "checkout-api")))
    assert silenced_by(mapped, classified(), [silence({"service": "checkout-api"})], {}, T0,
                       services=CONFIG.services).reason is SilenceReason.NOT_SILENCED


def test_a_service_silence_holds_a_mapped_alarm_that_names_no_ecs_service(world: World) -> None:
    from tests.test_grouping import night

    made = world.silence({**WINDOW, "matchers": {"service": "credentialing-api"}})
    assert made.status_code == 201 and "warnings" not in made.json_body
    [opened] = on_event(night("06-alarm-5xx.json"), "sns", world.deps)["outcomes"]  # LoadBalancer dimension only
    assert opened["reason"] == "OPENED" and opened["pages"] == 0 and world.console.sent == []
    incident = world.deps.store.get(opened["incident_id"])
    assert incident is not None and incident.status is IncidentStatus.SILENCED
    assert incident.service == "credentialing-api"


def test_a_service_the_map_does_not_know_is_accepted_with_a_warning(world: World) -> None:
    made = world.silence({**WINDOW, "matchers": {"service": "checkout-api"}})
    assert made.status_code == 201, made.json_body
    [warning] = made.json_body["warnings"]
    assert warning.startswith("matchers.service: 'checkout-api' is not a service of services.yaml")
    assert "credentialing-api" in warning  # the known ones, for a typo
    assert "warnings" not in world.get("/silences").json_body["silences"][0]  # said once, not stored


def test_the_cli_warns_of_a_service_the_map_does_not_know(cli_store: None,  # noqa: F811
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, added, err = cli(capsys, "silence", "add", "--match", "service=credentialing-apl", "--from",
                           WINDOW["starts_at"], "--to", WINDOW["ends_at"], "--reason", "typo", "--by", "giles",
                           "--now", T0.isoformat())
    assert code == 0 and "matchers.service: 'credentialing-apl' is not a service" in err
    assert added["warnings"] == [err.strip().removeprefix("warning: ")]


def test_a_maintenance_window_on_a_service_the_map_does_not_know_is_a_config_warning(tmp_path: Path) -> None:
    copy_config(tmp_path)
    shutil.copy(config.DEFAULT_DIR / "services.yaml", tmp_path / "services.yaml")
    routing = yaml.safe_load((tmp_path / "routing.yaml").read_text())
    routing["maintenance_windows"]["api-deploys"] = {"start": "04:00", "end": "05:00", "reason": "deploys",
                                                     "matchers": {"service": "credentialing-apl"}}
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(routing))
    [warning] = config.load(tmp_path).warnings
    assert "maintenance_windows.api-deploys.matchers.service: 'credentialing-apl' is not a service" in warning
    routing["maintenance_windows"]["api-deploys"]["matchers"] = {"service": "credentialing-api"}
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(routing))
    assert config.load(tmp_path).warnings == ()
