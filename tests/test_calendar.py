"""Calendar feeds (issue 13 §3): ``GET /oncall/calendar/{role|person}/NAME.ics?sig=``, through
chalice.test.Client on both stores, read back with icalendar and compared minute by minute with
the schedule ``decisions/oncall.py`` pages by, stored overrides included; and the CLI's signed URL."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import icalendar
import pytest
from chalice.test import Client

from chalicelib import overrides
from chalicelib.config.routing import RoutingConfig
from chalicelib.decisions.oncall import holders
from chalicelib.web import calendar
from chalicelib.web.tokens import Role as TokenRole
from chalicelib.wiring import Deps
from tests.conftest import ROOT, T0, FakeClock, RecordingChannel, app_on
from tests.test_operations import cli, cli_store, post  # noqa: F401 (cli_store: a fixture)
from tests.test_shifts import env  # noqa: F401 (a fixture: the shipped config with a weekly rotation)

STEP = timedelta(minutes=5)


def get(http: Client, url: str) -> Any:
    parts = urlsplit(url)
    return http.http.get(f"{parts.path}?{parts.query}" if parts.query else parts.path)


def events(body: bytes) -> list[Any]:
    parsed = icalendar.Calendar.from_ical(body)
    return list(parsed.walk("VEVENT"))


def shifts_of(found: list[Any]) -> list[tuple[datetime, datetime, str, str, bool]]:
    """(start, end, role, person, override) of each timed event, as the feed's reader sees them."""
    out = []
    for event in found:
        start = event.decoded("dtstart")
        if not isinstance(start, datetime):
            continue  # an all-day holiday
        summary = str(event.get("summary"))
        override = summary.endswith(" (override)")
        role, _, person = summary.removesuffix(" (override)").partition(": ")
        out.append((start, event.decoded("dtend"), role, person, override))
    return out


def assert_same_schedule(found: list[tuple[datetime, datetime, str, str, bool]], routing: RoutingConfig,
                         roles: list[str], person: str | None, now: datetime, step: timedelta = STEP) -> None:
    """Every ``step`` of the 16 weeks: the feed's events name exactly who ``holders()`` names."""
    zone = routing.zone
    start = min(s for s, *_ in found)
    assert start.astimezone(zone).date() == now.astimezone(zone).date() - timedelta(weeks=calendar.WEEKS)
    end = max(e for _, e, *_ in found)
    moment, active = start, 0
    while moment < end:
        for role in roles:
            expected = [p for p in holders(routing.roles[role], moment, zone) if person in (None, p)]
            covering = [(p, o) for s, e, r, p, o in found if r == role and s <= moment < e]
            assert sorted(p for p, _ in covering) == sorted(expected), (role, moment)
            overridden = any(o.start <= moment < o.end for o in routing.roles[role].overrides)
            assert all(o == overridden for _, o in covering), (role, moment)
            active += bool(covering)
        moment += step
    assert active


def test_a_role_feed_reads_back_as_the_shifts_and_overrides_paging_uses(env: tuple[Client, Deps],  # noqa: F811
                                                                       clock: FakeClock) -> None:
    http, deps = env
    token = deps.tokens.create("giles", TokenRole.RESPONDER)[1]
    swap = {"role": "engineering-oncall", "person": "christian", "from": "2025-03-18T10:15:00-04:00",
            "to": "2025-03-19T08:45:00-04:00"}
    assert post(http, token, "/oncall/overrides", swap).status_code == 201
    assert deps.links is not None
    response = get(http, calendar.signed_url(deps.links, "role", "engineering-oncall"))
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    found = shifts_of(events(response.body))
    routing = overrides.with_stored(deps.config, overrides.stored(deps.store)).routing
    assert_same_schedule(found, routing, ["engineering-oncall"], None, clock.now)
    # the override replaces the rotation's shift for its span: three events that Tuesday and Wednesday
    tuesday = [(s.isoformat(), e.isoformat(), p, o) for s, e, _, p, o in found
               if "2025-03-18" <= s.isoformat()[:10] <= "2025-03-19"]
    assert tuesday == [("2025-03-18T14:15:00+00:00", "2025-03-19T12:45:00+00:00", "christian", True),
                       ("2025-03-19T12:45:00+00:00", "2025-03-20T13:00:00+00:00", "engineer-on-call", False)]


def test_a_person_feed_shows_each_role_they_hold(env: tuple[Client, Deps], clock: FakeClock) -> None:  # noqa: F811
    http, deps = env
    assert deps.links is not None
    response = get(http, calendar.signed_url(deps.links, "person", "engineer-daytime"))
    assert response.status_code == 200, response.body
    found = shifts_of(events(response.body))
    assert {r for _, _, r, _, _ in found} == {"engineering-oncall", "engineering-daytime"}
    assert_same_schedule(found, deps.config.routing, sorted(deps.config.routing.roles), "engineer-daytime",
                         clock.now, step=timedelta(minutes=30))


def test_holidays_are_all_day_events(env: tuple[Client, Deps], clock: FakeClock) -> None:  # noqa: F811
    http, deps = env
    clock.now = T0.replace(year=2026, month=12, day=20)
    assert deps.links is not None
    found = events(get(http, calendar.signed_url(deps.links, "role", "engineering-daytime")).body)
    holidays = [(e.decoded("dtstart"), e.decoded("dtend")) for e in found
                if str(e.get("summary")).startswith("Holiday")]
    assert holidays == [(date(2026, 12, 25), date(2026, 12, 26)), (date(2027, 1, 1), date(2027, 1, 2))]


@pytest.mark.parametrize("kind, name, sig, status, field", [
    ("role", "engineering-oncall.ics", None, 401, "sig"),
    ("role", "engineering-oncall.ics", "forged", 403, "sig"),
    ("role", "engineering-oncall.ics", "person:engineering-oncall", 403, "sig"),  # another feed's signature
    ("role", "nobody.ics", "role:nobody", 404, "role"),
    ("person", "mallory.ics", "person:mallory", 404, "person"),
    ("role", "engineering-oncall", "role:engineering-oncall", 404, "role")])
def test_a_feed_needs_its_own_signature_and_a_known_name(env: tuple[Client, Deps], kind: str,  # noqa: F811
                                                         name: str, sig: str | None, status: int,
                                                         field: str) -> None:
    http, deps = env
    assert deps.links is not None
    if sig is not None and ":" in sig:
        signed_kind, _, signed_name = sig.partition(":")
        sig = calendar.signature(deps.links, signed_kind, signed_name)  # type: ignore[arg-type]
    query = f"?sig={sig}" if sig is not None else ""
    response = http.http.get(f"/oncall/calendar/{kind}/{name}{query}")
    assert response.status_code == status, response.body
    assert response.json_body["field"] == field and response.json_body["message"]
    extra = http.http.get(f"/oncall/calendar/{kind}/{name}?sig=x&color=red")
    assert extra.status_code == 400 and extra.json_body["field"] == "color"


def test_the_cli_prints_the_signed_url_the_route_serves(cli_store: None, capsys: pytest.CaptureFixture[str],  # noqa: F811
                                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        clock: FakeClock, console: RecordingChannel) -> None:
    from chalicelib.cli import main

    secret = {"RESPONDER_LINK_SECRET": "calendar-test-link-secret-0123456789"}
    monkeypatch.setenv("RESPONDER_LINK_SECRET", secret["RESPONDER_LINK_SECRET"])
    assert main(["oncall", "calendar-url", "--person", "christian"]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://127.0.0.1:8000/oncall/calendar/person/christian.ics?sig=")
    for http, _ in app_on("sqlite", tmp_path, clock, console, secret):
        response = get(http, url)
        assert response.status_code == 200 and b"founder-backup: christian" in response.body
        assert get(http, url.replace("christian.ics", "giles.ics")).status_code == 403
    assert main(["oncall", "calendar-url", "--role", "nobody"]) == 1
    assert "--role" in capsys.readouterr().err


def test_the_event_path_never_loads_icalendar() -> None:
    code = ("import sys, app; from chalicelib import handlers, pipeline, shifts; "
            "assert 'icalendar' not in sys.modules, 'icalendar on the event path'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]



def test_a_bearer_token_does_not_open_a_feed(env: tuple[Client, Deps]) -> None:  # noqa: F811
    http, deps = env
    admin = deps.tokens.create("alice", TokenRole.ADMIN)[1]
    response = http.http.get("/oncall/calendar/role/founder-primary.ics", headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 401 and response.json_body["field"] == "sig"
