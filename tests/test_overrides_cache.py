"""The on-call overrides document is read at most once a minute per process (issue 17: it kept a
new trigger at 4 DynamoDB round trips before its page), and a change this process makes holds at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib import overrides
from chalicelib.overrides import OverrideService
from tests.conftest import CONFIG, T0


class Lambda:
    """One process's store object on the shared table or file (the cache is per store object)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_another_lambdas_change_holds_within_a_minute_and_this_ones_at_once(any_store: Any) -> None:
    here, there = Lambda(any_store), Lambda(any_store)
    assert overrides.cached(here, T0) == []
    added = OverrideService(there, CONFIG, lambda: T0).add(
        role="founder-primary", person="christian", start=T0.isoformat(), end=(T0 + timedelta(days=1)).isoformat(),
        by="giles")
    assert overrides.cached(here, T0 + timedelta(seconds=59)) == []  # read at T0: not yet
    assert overrides.cached(here, T0 + timedelta(seconds=60)) == [added]
    later = T0 + timedelta(seconds=61)
    removed = OverrideService(here, CONFIG, lambda: later).remove(added.id, "giles")
    assert overrides.cached(here, later) == [removed]  # this process's own change: at once
    assert overrides.cached(there, later) == [removed]  # never read by that one: read now


def test_a_clock_that_went_back_reads_again(any_store: Any) -> None:
    here = Lambda(any_store)
    assert overrides.cached(here, T0) == []
    OverrideService(Lambda(any_store), CONFIG, lambda: T0).add(
        role="founder-primary", person="christian", start=T0.isoformat(), end=(T0 + timedelta(days=1)).isoformat(),
        by="giles")
    assert len(overrides.cached(here, T0 - timedelta(seconds=1))) == 1
