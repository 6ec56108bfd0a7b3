"""The web console (issue 15 §2) through chalice.test.Client on both stores: login, the session
cookie's properties, CSRF, every action through the API's own views, roles, escaping, and
the rule that the console never shows an ack link."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from chalice.test import Client

from chalicelib.decisions.oncall import holders
from chalicelib.models import IncidentStatus, Severity
from chalicelib.store import with_full_timeline
from chalicelib.web import console as console_views
from chalicelib.web import sessions
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps
from tests.conftest import T0, FakeClock, RecordingChannel, app_on, sns_event

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(params=["sqlite", "dynamodb"])
def env(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[tuple[Client, Deps]]:
    yield from app_on(request.param, tmp_path, clock, console)


@pytest.fixture
def http(env: tuple[Client, Deps]) -> Client:
    return env[0]


@pytest.fixture
def deps(env: tuple[Client, Deps]) -> Deps:
    return env[1]


def manual_incident(http: Client, deps: Deps, title: str = "customer says reports are wrong",
                    severity: int = 2) -> str:
    token = deps.tokens.create("pager", Role.RESPONDER)[1]
    response = http.http.post("/incidents", body=json.dumps({"severity": severity, "title": title}).encode(),
                              headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.json_body
    return str(response.json_body["incident"]["id"])


def log_in(http: Client, deps: Deps, user: str = "alice", role: Role = Role.RESPONDER) -> tuple[str, str]:
    """(cookie header value, csrf secret) of a fresh console session for ``user``."""
    token = deps.tokens.create(user, role)[1]
    response = http.http.post("/console/login", body=urlencode({"token": token}).encode(), headers=FORM)
    assert response.status_code == 303, response.body
    cookie = response.headers["Set-Cookie"].split(";")[0]
    page = http.http.get("/console", headers={"Cookie": cookie})
    assert page.status_code == 200
    [csrf] = set(re.findall(r'name="csrf" value="([^"]+)"', page.body.decode()))
    return cookie, csrf


def act(http: Client, cookie: str, incident_id: str, action: str, **form: str) -> Any:
    return http.http.post(f"/console/incidents/{incident_id}/{action}", body=urlencode(form).encode(),
                          headers={**FORM, "Cookie": cookie})


def text(response: Any) -> str:
    return str(response.body.decode())


# --- login and the session -----------------------------------------------------------------------


def test_without_a_session_every_page_sends_you_to_the_login_form(http: Client, deps: Deps) -> None:
    incident_id = manual_incident(http, deps)
    for path in ("/console", f"/console/incidents/{incident_id}", "/console/oncall"):
        response = http.http.get(path)
        assert response.status_code == 303 and response.headers["Location"] == "/console/login", path
    response = act(http, "rsp_console=" + "x" * 43, incident_id, "ack")
    assert response.status_code == 303
    assert deps.store.get(incident_id).status is IncidentStatus.OPEN
    form = http.http.get("/console/login")
    assert form.status_code == 200 and 'name="token"' in text(form)


def test_login_sets_a_secure_http_only_same_site_cookie_and_keeps_only_its_hash(http: Client, deps: Deps) -> None:
    token = deps.tokens.create("alice", Role.RESPONDER)[1]
    response = http.http.post("/console/login", body=urlencode({"token": token}).encode(), headers=FORM)
    assert response.status_code == 303 and response.headers["Location"] == "/console"
    cookie = response.headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in cookie and "Path=/console;" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert deps.store.get_doc(f"session:{value}")[0] is None  # the store holds the hash, not the value
    assert token not in cookie


@pytest.mark.parametrize("token", ["", "rsp_000000000000_nope", "not a token", "x" * 5000])
def test_a_bad_token_gets_the_form_again_with_a_reason_and_no_cookie(http: Client, deps: Deps, token: str) -> None:
    response = http.http.post("/console/login", body=urlencode({"token": token}).encode(), headers=FORM)
    assert response.status_code == 401 and "Set-Cookie" not in response.headers
    assert "not valid" in text(response)


def test_a_revoked_token_ends_its_console_sessions_at_once(http: Client, deps: Deps) -> None:
    token_id, token = deps.tokens.create("alice", Role.RESPONDER)
    response = http.http.post("/console/login", body=urlencode({"token": token}).encode(), headers=FORM)
    cookie = response.headers["Set-Cookie"].split(";")[0]
    assert http.http.get("/console", headers={"Cookie": cookie}).status_code == 200
    deps.tokens.revoke(token_id, by="admin")
    assert http.http.get("/console", headers={"Cookie": cookie}).status_code == 303


def test_sessions_expire_and_logging_out_ends_one(http: Client, deps: Deps, clock: FakeClock) -> None:
    cookie, csrf = log_in(http, deps)
    clock.advance(hours=sessions.SESSION_HOURS, seconds=1)
    assert http.http.get("/console", headers={"Cookie": cookie}).status_code == 303
    clock.now = T0
    cookie, csrf = log_in(http, deps)
    out = http.http.post("/console/logout", body=urlencode({"csrf": csrf}).encode(), headers={**FORM, "Cookie": cookie})
    assert out.status_code == 303 and "Max-Age=0" in out.headers["Set-Cookie"]
    assert http.http.get("/console", headers={"Cookie": cookie}).status_code == 303  # the old cookie is dead


def test_a_login_posted_from_another_site_is_refused(http: Client, deps: Deps) -> None:
    token = deps.tokens.create("alice", Role.RESPONDER)[1]
    response = http.http.post("/console/login", body=urlencode({"token": token}).encode(),
                              headers={**FORM, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403 and "Set-Cookie" not in response.headers


# --- the pages ---------------------------------------------------------------------------------


def test_the_list_is_newest_first_filters_and_names_a_bad_filter(http: Client, deps: Deps, clock: FakeClock) -> None:
    older = manual_incident(http, deps, "older problem", severity=3)
    clock.advance(minutes=5)
    newer = manual_incident(http, deps, "newer problem", severity=2)
    cookie, _ = log_in(http, deps)
    page = text(http.http.get("/console", headers={"Cookie": cookie}))
    assert page.index(f"incident-{newer}") < page.index(f"incident-{older}")
    only_sev3 = text(http.http.get("/console?severity=3", headers={"Cookie": cookie}))
    assert f"incident-{older}" in only_sev3 and f"incident-{newer}" not in only_sev3
    bad = http.http.get("/console?severity=9", headers={"Cookie": cookie})
    assert bad.status_code == 400 and "severity: must be 1, 2, 3 or 4" in text(bad)


def test_an_overdue_duty_is_flagged_on_the_list_and_the_incident(http: Client, deps: Deps, clock: FakeClock) -> None:
    incident_id = manual_incident(http, deps, severity=1)
    cookie, csrf = log_in(http, deps)
    assert act(http, cookie, incident_id, "resolve", csrf=csrf).status_code == 303
    incident = deps.store.get(incident_id)
    assert incident.duties, "a resolved Sev1 owes a post-mortem (runbook §10)"
    assert "overdue: " not in text(http.http.get("/console", headers={"Cookie": cookie}))
    clock.now = max(d.due_at for d in incident.duties) + timedelta(minutes=1)
    cookie, _ = log_in(http, deps)
    assert "overdue: " in text(http.http.get("/console", headers={"Cookie": cookie}))
    assert '<span class="overdue">overdue</span>' in text(http.http.get(f"/console/incidents/{incident_id}",
                                                                        headers={"Cookie": cookie}))


def test_the_incident_page_shows_the_timeline_pages_and_draft_but_never_an_ack_link(http: Client, deps: Deps,
                                                                                     console: RecordingChannel) -> None:
    incident_id = manual_incident(http, deps, severity=2)
    sent = [p.text for p in console.sent]
    assert any("/ack/" in t for t in sent), "the paged person's own page carries the link"
    cookie, _ = log_in(http, deps)
    page = text(http.http.get(f"/console/incidents/{incident_id}", headers={"Cookie": cookie}))
    assert 'id="timeline"' in page and "Post-mortem" in page and "engineer-on-call" in page
    assert "/ack/" not in page
    for link in re.findall(r"https?://\S+/ack/\S+", "\n".join(sent)):
        assert link not in page


def test_an_alarm_whose_quick_recovery_is_held_says_when_it_resolves(http: Client, deps: Deps,
                                                                     clock: FakeClock) -> None:
    http.lambda_.invoke("on_alarm_sns", sns_event("sns-cloudwatch-alarm-metric.json", message_id="m-1"))
    [incident] = deps.store.list()
    cookie, _ = log_in(http, deps)
    assert 'id="recovering"' not in text(http.http.get(f"/console/incidents/{incident.id}", headers={"Cookie": cookie}))
    clock.advance(minutes=2)
    http.lambda_.invoke("on_alarm_sns", sns_event("sns-cloudwatch-alarm-ok.json", message_id="m-2"))
    page = text(http.http.get(f"/console/incidents/{incident.id}", headers={"Cookie": cookie}))
    [line] = re.findall(r'<span id="recovering">([^<]+)</span>', page)
    recovered, resolves = (console_views._when(t, deps.config.routing.zone)
                           for t in (clock.now, clock.now + timedelta(minutes=10)))
    assert line == f"recovered {recovered}; resolves {resolves} unless it fires again (escalation waits)"


def test_titles_are_escaped(http: Client, deps: Deps) -> None:
    incident_id = manual_incident(http, deps, '<script>alert("x")</script> & co')
    cookie, _ = log_in(http, deps)
    for path in ("/console", f"/console/incidents/{incident_id}"):
        page = text(http.http.get(path, headers={"Cookie": cookie}))
        assert "<script>" not in page and "&lt;script&gt;" in page, path


def test_pages_forbid_framing_scripts_caching_and_referrers(http: Client, deps: Deps) -> None:
    cookie, _ = log_in(http, deps)
    headers = http.http.get("/console", headers={"Cookie": cookie}).headers
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store" and headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_the_oncall_page_names_who_holds_each_role_now_and_next(http: Client, deps: Deps) -> None:
    cookie, _ = log_in(http, deps)
    page = text(http.http.get("/console/oncall", headers={"Cookie": cookie}))
    routing, now = deps.config.routing, deps.clock()
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]*)</td>", page))
    assert set(rows) == set(routing.roles)
    for name, role in routing.roles.items():
        assert rows[name] == (", ".join(holders(role, now, routing.zone)) or "nobody"), name
    assert " from " in page  # some role changes hands within the fortnight


def test_next_change_finds_the_minute_the_holders_change() -> None:
    start = T0
    change = start.replace(second=0, microsecond=0) + timedelta(hours=3, minutes=7)

    def holders(at: Any) -> list[str]:
        return ["bob"] if at >= change else ["alice"]
    assert console_views._next_change(holders, ["alice"], start) == (change, ["bob"])
    assert console_views._next_change(lambda at: ["alice"], ["alice"], start) is None


# --- acting ------------------------------------------------------------------------------------


def test_acknowledge_from_the_console_is_on_the_timeline_with_who(http: Client, deps: Deps) -> None:
    incident_id = manual_incident(http, deps)
    cookie, csrf = log_in(http, deps)
    response = act(http, cookie, incident_id, "ack", csrf=csrf)
    assert response.status_code == 303 and response.headers["Location"].endswith("?done=ack")
    acked = deps.store.get(incident_id)
    assert acked.status is IncidentStatus.ACKNOWLEDGED and acked.acknowledged_by == "alice"
    page = text(http.http.get(response.headers["Location"], headers={"Cookie": cookie}))
    assert "Acknowledged." in page and 'id="ack"' not in page


def test_without_the_csrf_secret_or_from_another_site_nothing_changes(http: Client, deps: Deps) -> None:
    incident_id = manual_incident(http, deps)
    cookie, csrf = log_in(http, deps)
    assert act(http, cookie, incident_id, "ack").status_code == 403
    assert act(http, cookie, incident_id, "ack", csrf="wrong").status_code == 403
    cross = http.http.post(f"/console/incidents/{incident_id}/ack", body=urlencode({"csrf": csrf}).encode(),
                           headers={**FORM, "Cookie": cookie, "Origin": "https://evil.example",
                                    "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert deps.store.get(incident_id).status is IncidentStatus.OPEN


def test_a_viewer_sees_no_buttons_and_cannot_act(http: Client, deps: Deps) -> None:
    incident_id = manual_incident(http, deps)
    cookie, csrf = log_in(http, deps, "victor", Role.VIEWER)
    page = text(http.http.get(f"/console/incidents/{incident_id}", headers={"Cookie": cookie}))
    assert 'id="ack"' not in page and 'id="resolve"' not in page
    response = act(http, cookie, incident_id, "ack", csrf=csrf)
    assert response.status_code == 403 and "needs responder" in text(response)
    assert deps.store.get(incident_id).status is IncidentStatus.OPEN


def test_every_action_runs_through_the_api(http: Client, deps: Deps, clock: FakeClock) -> None:
    incident_id = manual_incident(http, deps, severity=2)
    cookie, csrf = log_in(http, deps)
    assert act(http, cookie, incident_id, "note", csrf=csrf, text="restarted the worker").status_code == 303
    assert act(http, cookie, incident_id, "severity", csrf=csrf, severity="1").status_code == 303
    assert deps.store.get(incident_id).severity is Severity.SEV1
    assert act(http, cookie, incident_id, "reassign", csrf=csrf, to="christian").status_code == 303
    assert deps.store.get(incident_id).owner == "christian"
    # the snooze form gives the team's wall clock with no zone: it is read in the team's zone
    zone = deps.config.routing.zone
    wall = (clock.now + timedelta(minutes=30)).astimezone(zone)
    assert act(http, cookie, incident_id, "snooze", csrf=csrf, until=wall.strftime("%Y-%m-%dT%H:%M")).status_code == 303
    snoozed = deps.store.get(incident_id).snoozed_until
    assert snoozed is not None and abs(snoozed - (clock.now + timedelta(minutes=30))) < timedelta(minutes=1)
    assert act(http, cookie, incident_id, "escalate", csrf=csrf).status_code == 303
    assert act(http, cookie, incident_id, "resolve", csrf=csrf, note="fixed upstream").status_code == 303
    resolved = deps.store.get(incident_id)
    assert resolved.status is IncidentStatus.RESOLVED and resolved.resolved_by == "alice"
    by_alice = [e.what for e in with_full_timeline(deps.store, resolved).timeline if e.by == "alice"]
    for done in ("note: restarted the worker", "severity", "christian", "snooze", "escalat", "resolved by alice"):
        assert any(done in what for what in by_alice), (done, by_alice)


def test_refusals_come_back_as_one_line_on_the_page(http: Client, deps: Deps) -> None:
    incident_id = manual_incident(http, deps)
    cookie, csrf = log_in(http, deps)
    assert act(http, cookie, incident_id, "resolve", csrf=csrf).status_code == 303
    later = (T0 + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    again = act(http, cookie, incident_id, "snooze", csrf=csrf, until=later)
    assert again.status_code == 409 and 'id="problem"' in text(again)
    bad = act(http, cookie, incident_id, "bogus", csrf=csrf)
    assert bad.status_code == 404 and "action: unknown" in text(bad)
    other = manual_incident(http, deps, "another")
    bad_time = act(http, cookie, other, "snooze", csrf=csrf, until="soon")
    assert bad_time.status_code == 400 and "until:" in text(bad_time)
    assert act(http, cookie, "inc-missing", "ack", csrf=csrf).status_code == 404


CONSOLE_ACTIONS = [("note", {"text": "looking"}), ("severity", {"severity": "3"}), ("reassign", {"to": "christian"}),
                   ("snooze", {"until": (T0 + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")}), ("escalate", {}),
                   ("ack", {}), ("resolve", {"note": "done"})]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RESPONDER, Role.ADMIN])
def test_console_role_matrix(http: Client, deps: Deps, role: Role) -> None:
    """The console's forms follow the API's matrix: a viewer reads, a responder and an admin act."""
    incident_id = manual_incident(http, deps)
    cookie, csrf = log_in(http, deps, f"{role.name.lower()}-person", role)
    for action, form in CONSOLE_ACTIONS:
        before = deps.store.get(incident_id).version
        response = act(http, cookie, incident_id, action, csrf=csrf, **form)
        if role is Role.VIEWER:
            assert response.status_code == 403 and "needs responder" in text(response), action
            assert deps.store.get(incident_id).version == before, action
        else:
            assert response.status_code == 303, (action, text(response)[-500:])
    assert (deps.store.get(incident_id).status is IncidentStatus.RESOLVED) is (role is not Role.VIEWER)
