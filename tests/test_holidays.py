"""Holidays (issue 13 §3): local dates in routing.yaml with no business hours; a Sev3 raised on one
pages at the next business day's start."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from chalice.test import Client
from pydantic import ValidationError

from chalicelib.config.routing import BusinessHours, RoutingConfig
from chalicelib.decisions.oncall import in_business_hours, next_business_moment
from chalicelib.models import PageKind
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps
from tests.conftest import CONFIG, FakeClock, RecordingChannel
from tests.test_operations import paged, post

NY = ZoneInfo("America/New_York")
CHRISTMAS = BusinessHours(holidays=frozenset({date(2026, 12, 25)}))


def test_a_holiday_has_no_business_hours_and_the_next_day_does() -> None:
    assert not in_business_hours(CHRISTMAS, datetime(2026, 12, 25, 10, 0, tzinfo=NY), NY)
    assert in_business_hours(BusinessHours(), datetime(2026, 12, 25, 10, 0, tzinfo=NY), NY)  # without it: a Friday
    assert in_business_hours(CHRISTMAS, datetime(2026, 12, 28, 9, 0, tzinfo=NY), NY)


@pytest.mark.parametrize("holidays, at, expected", [
    ({date(2026, 12, 25)}, datetime(2026, 12, 24, 20, 0), datetime(2026, 12, 28, 9, 0)),   # Thu night → Mon
    ({date(2026, 12, 25)}, datetime(2026, 12, 25, 11, 0), datetime(2026, 12, 28, 9, 0)),   # on the day → Mon
    ({date(2026, 12, 25), date(2026, 12, 28)}, datetime(2026, 12, 24, 20, 0), datetime(2026, 12, 29, 9, 0)),
    ({date(2026, 12, 21) + timedelta(days=n) for n in range(12)}, datetime(2026, 12, 20, 12, 0),
     datetime(2027, 1, 4, 9, 0)),                                                             # a closed fortnight
    (set(), datetime(2026, 12, 24, 20, 0), datetime(2026, 12, 25, 9, 0))])
def test_next_business_moment_skips_holidays(holidays: set[date], at: datetime, expected: datetime) -> None:
    hours = BusinessHours(holidays=frozenset(holidays))
    assert next_business_moment(hours, at.replace(tzinfo=NY), NY) == expected.replace(tzinfo=NY)


def test_an_overnight_window_belongs_to_the_day_it_opened() -> None:
    night = BusinessHours(days=("thu", "fri"), start=time(22, 0), end=time(6, 0),
                          holidays=frozenset({date(2026, 12, 24)}))
    assert not in_business_hours(night, datetime(2026, 12, 25, 3, 0, tzinfo=NY), NY)  # Thu 24's window
    assert in_business_hours(night, datetime(2026, 12, 25, 23, 0, tzinfo=NY), NY)     # Fri 25's


def test_holidays_are_read_from_the_top_of_routing_yaml_and_refused_twice_or_malformed() -> None:
    assert date(2026, 12, 25) in CONFIG.routing.business_hours.holidays  # shipped
    base: dict[str, Any] = CONFIG.routing.model_dump(mode="json")
    base["business_hours"].pop("holidays")
    loaded = RoutingConfig.model_validate({**base, "holidays": ["2027-07-05"]})
    assert loaded.business_hours.holidays == frozenset({date(2027, 7, 5)})
    with pytest.raises(ValidationError, match="holidays"):
        RoutingConfig.model_validate({**base, "holidays": ["the fifth"]})
    with pytest.raises(ValidationError, match="give them once"):
        RoutingConfig.model_validate({**base, "holidays": [], "business_hours": {"holidays": ["2027-07-05"]}})


def test_a_sev3_on_a_holiday_pages_on_the_next_business_day(client: Client, deps: Deps, clock: FakeClock,
                                                            console: RecordingChannel) -> None:
    clock.now = datetime(2026, 12, 25, 10, 0, tzinfo=NY)
    token = deps.tokens.create("alice", Role.RESPONDER)[1]
    opened = post(client, token, "/incidents", {"severity": 3, "title": "export is slow"})
    assert opened.status_code == 201 and paged(console) == []
    clock.now = datetime(2026, 12, 28, 8, 59, tzinfo=NY)
    deps.pipeline.sweep()
    assert paged(console) == []
    clock.now = datetime(2026, 12, 28, 9, 0, tzinfo=NY)
    deps.pipeline.sweep()
    assert paged(console) == [("engineer-daytime", PageKind.TRIGGER)]
