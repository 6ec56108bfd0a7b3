"""Each person's PagerDuty alerts for an incident: which dedup keys a trigger uses, which may
be open, which a webhook's resolve may resolve us by. Pure functions of the incident.

A PagerDuty service folds a trigger whose dedup key is still open into the
open alert and notifies nobody, so one key per incident would never reach the backup, nor
anyone on a repeat loop. So each person has their own key, ``<incident id>/<person>/<n>``,
and at most one open alert (``models.PagerDutyAlerts``):

- a trigger uses the person's current *n*; a fresh *n* only once PagerDuty confirmed the
  last one (a trigger whose reply was lost reuses its key: if PagerDuty did open it, the
  retry folds into it);
- when a trigger is claimed for sending, its key joins the person's ``maybe_open`` keys and
  the page also carries every older one: the channel triggers the new alert, then resolves
  the older ones in the same send; a confirmed send closes them. So ``maybe_open`` holds at
  most two keys, and an acknowledgement or resolution costs one call per person;
- acknowledge and resolve go to every key in ``maybe_open``: every trigger ever claimed,
  sent, failed or in flight, whether or not it was confirmed;
- a ``incident.resolved`` webhook resolves our incident only for the person's current (latest)
  alert; an earlier one still open is recorded and closed, and one we resolved ourselves
  coming back is ignored (``pagerduty_alert``). Pages queued before per-person keys carry
  none: their alert is the bare incident id (-1 in ``maybe_open``) and is acknowledged and
  resolved as well.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from chalicelib.config import ResponderConfig
from chalicelib.models import Incident, PagerDutyAlerts, PageRecord, PageStatus, TimelineEntry

LEGACY_KEY = -1  # the bare incident id: the one key of pages queued before per-person keys


class AlertReason(StrEnum):
    """What an alert PagerDuty says was resolved is to us."""

    CURRENT = "CURRENT"   # the person's latest alert: resolving it resolves the incident
    EARLIER = "EARLIER"   # an earlier alert not yet closed: recorded and closed, nothing more
    CLOSED = "CLOSED"     # one we resolved ourselves, coming back: nothing to do
    FOREIGN = "FOREIGN"   # not a key we made (an alarm's own PagerDuty integration)


def pagerduty_channels(config: ResponderConfig) -> frozenset[str]:
    return frozenset(name for name, ch in config.routing.channels.items() if ch.type == "pagerduty")


def dedup_key(incident_id: str, person: str, n: int) -> str:
    """The PagerDuty dedup key of ``person``'s ``n``-th alert for this incident."""
    return incident_id if n == LEGACY_KEY else f"{incident_id}/{person}/{n}"


def incident_id_of(dedup: str) -> str:
    """Our incident id in a dedup key we made (the key itself when it is an incident id)."""
    return dedup.split("/", 1)[0]


def key_number(incident_id: str, dedup: str) -> tuple[str, int] | None:
    """(person, n) of a key we made for this incident; n is ``LEGACY_KEY`` for the bare id."""
    if dedup == incident_id:
        return "", LEGACY_KEY
    parts = dedup.split("/")
    if len(parts) == 3 and parts[0] == incident_id and parts[2].isdigit():
        return parts[1], int(parts[2])
    return None


def pagerduty_alerts(incident: Incident, pagerduty: frozenset[str]) -> dict[str, PagerDutyAlerts]:
    """Each person's PagerDuty alerts, older formats folded in: ``EscalationState.alerts``
    (every key counted may be open) and pages without keys (the bare incident id)."""
    state = incident.escalation
    if state is None:
        return {}
    alerts = {a.person: a for a in state.pagerduty}
    known = set(alerts)
    for person, count in state.alerts:
        if person not in known and count:
            alerts[person] = PagerDutyAlerts(person=person, current=count - 1, confirmed=True,
                                             maybe_open=tuple(range(count)))
    for page in incident.pages:
        if (page.person not in known and page.channel in pagerduty and page.kind.calls_for_action
                and not page.dedup_keys and page.status not in (PageStatus.PENDING, PageStatus.CANCELLED)):
            mine = alerts.get(page.person) or PagerDutyAlerts(person=page.person, role=page.role)
            alerts[page.person] = _opened(mine, LEGACY_KEY, page.channel)
    for person, mine in alerts.items():
        if not mine.role or not mine.channels:
            used = [p for p in incident.pages if p.person == person and p.channel in pagerduty]
            alerts[person] = mine.model_copy(update={
                "role": mine.role or next((p.role for p in used), ""),
                "channels": mine.channels or tuple(sorted({p.channel for p in used}))})
    return alerts


def _opened(alerts: PagerDutyAlerts, n: int, channel: str) -> PagerDutyAlerts:
    return alerts.model_copy(update={"maybe_open": tuple(sorted({*alerts.maybe_open, n})),
                                     "channels": tuple(sorted({*alerts.channels, channel}))})


def _closed(alerts: dict[str, PagerDutyAlerts], person: str, numbers: set[int]) -> dict[str, PagerDutyAlerts]:
    """``numbers`` resolved at PagerDuty; the bare incident id is one alert shared by everyone."""
    changed = dict(alerts)
    for who, mine in alerts.items():
        gone = numbers if who == person else numbers & {LEGACY_KEY}
        if gone & set(mine.maybe_open):
            changed[who] = mine.model_copy(update={"maybe_open": tuple(n for n in mine.maybe_open if n not in gone)})
    return changed


def with_alerts(incident: Incident, alerts: dict[str, PagerDutyAlerts]) -> Incident:
    state = incident.escalation
    assert state is not None
    return incident.model_copy(update={"escalation": state.model_copy(update={
        "pagerduty": tuple(alerts[p] for p in sorted(alerts)), "alerts": ()})})


def open_keys(incident: Incident, alerts: PagerDutyAlerts | None) -> tuple[str, ...]:
    return tuple(dedup_key(incident.id, alerts.person, n) for n in alerts.maybe_open) if alerts else ()


def current_alert(alerts: PagerDutyAlerts) -> int | None:
    """The person's latest alert that may be open (a per-person key before the bare id)."""
    return max(alerts.maybe_open) if alerts.maybe_open else None


def pagerduty_alert(incident: Incident, dedup: str, pagerduty: frozenset[str]) -> AlertReason:
    """Is the alert PagerDuty reports resolved the person's current one (see the module doc)?"""
    mine = key_number(incident.id, dedup)
    if mine is None:
        return AlertReason.FOREIGN
    person, n = mine
    alerts = pagerduty_alerts(incident, pagerduty)
    holders_of = [a for a in alerts.values() if n in a.maybe_open and (a.person == person or n == LEGACY_KEY)]
    if not holders_of:
        return AlertReason.CLOSED
    if any(current_alert(a) == n for a in holders_of):
        return AlertReason.CURRENT
    return AlertReason.EARLIER


def earlier_alert_resolved(incident: Incident, dedup: str, by: str, now: datetime,
                           pagerduty: frozenset[str]) -> Incident:
    """An earlier alert resolved in PagerDuty: closed and recorded; the incident stays as it is."""
    mine = key_number(incident.id, dedup)
    if mine is None or pagerduty_alert(incident, dedup, pagerduty) is not AlertReason.EARLIER:
        return incident
    person, n = mine
    alerts = pagerduty_alerts(incident, pagerduty)
    closed = with_alerts(incident, _closed(alerts, person or next(
        (a.person for a in alerts.values() if n in a.maybe_open), ""), {n}))
    return closed.noted(TimelineEntry(at=now, by=by, what=f"an earlier PagerDuty alert ({dedup}) was resolved "
                                                          "there: the incident stays as it is"))


def claimed(incident: Incident, pages: list[PageRecord],
            pagerduty: frozenset[str]) -> tuple[Incident, list[PageRecord]]:
    """Pages about to be sent. A PagerDuty trigger's key may be open from now on; the page also
    carries the person's older keys, which the channel resolves in the same send."""
    if incident.escalation is None or not any(p.channel in pagerduty and p.kind.calls_for_action for p in pages):
        return incident, pages
    alerts = pagerduty_alerts(incident, pagerduty)
    out = []
    for page in pages:
        if page.channel in pagerduty and page.kind.calls_for_action:
            found = key_number(incident.id, page.dedup_keys[0]) if page.dedup_keys else None
            n = found[1] if found else LEGACY_KEY
            mine = alerts.get(page.person) or PagerDutyAlerts(person=page.person, role=page.role)
            older = tuple(k for k in mine.maybe_open if k != n)
            mine = _opened(mine, n, page.channel)
            alerts[page.person] = mine.model_copy(update={"role": mine.role or page.role})
            page = page.model_copy(update={"dedup_keys": (dedup_key(incident.id, page.person, n),
                                                          *(dedup_key(incident.id, page.person, k) for k in older))})
        out.append(page)
    return with_alerts(incident, alerts), out


def next_key(alerts: PagerDutyAlerts | None) -> int:
    """The key of the person's next trigger: a fresh one only once PagerDuty confirmed the last
    (re-triggering an open alert would notify nobody); else the same one again."""
    if alerts is None:
        return 0
    return alerts.current + 1 if alerts.confirmed else alerts.current


def confirmed(incident: Incident, page: PageRecord, pagerduty: frozenset[str]) -> Incident:
    """PagerDuty accepted every event of this page: the trigger's alert is open (the person's
    next loop needs a fresh key), the keys it resolved are closed."""
    alerts = pagerduty_alerts(incident, pagerduty)
    numbers = [found[1] for found in (key_number(incident.id, k) for k in page.dedup_keys or (incident.id,))
               if found is not None]
    if not numbers:
        return incident
    if page.kind.calls_for_action:
        opened, closing = numbers[0], set(numbers[1:])
        mine = alerts.get(page.person) or PagerDutyAlerts(person=page.person, role=page.role)
        if opened == mine.current:
            alerts[page.person] = mine.model_copy(update={"confirmed": True})
    else:
        closing = set(numbers)
    return with_alerts(incident, _closed(alerts, page.person, closing))
