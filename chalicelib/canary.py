"""Self-monitoring: a canary walks the page path (classify → store → pager) every few minutes.

Each run classifies a synthetic canary signal with the live config, round-trips a delivery
record through the store, sends a page on the canary channel and emits ``CanaryCompleted``
(CloudWatch EMF, through Powertools Metrics). An alarm in the merge template fires on an
out-of-band SNS topic when canaries stop completing, so a responder that cannot page is
noticed by something other than itself. Canary signals never become incidents.

The canary also watches the escalation sweep's heartbeat (``heartbeats.py``): the sweep checks
every other heartbeat, but a dead sweep checks nothing, so a missed ``escalation-sweep`` beat
fails the canary, which stops ``CanaryCompleted``, which fires the out-of-band alarm. What
watches the canary is that alarm: CloudWatch, outside this code, treating no data as breaching.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from chalicelib.decisions.classify import classify
from chalicelib.models import Incident, PageKind, PageRecord, Severity, Signal, SignalKind, Transition
from chalicelib.store import Claim
from chalicelib.wiring import Deps

NAMESPACE = "AlarmResponder"


def run_canary(deps: Deps, now: datetime, metrics: Any = None) -> dict[str, Any]:
    started = time.perf_counter()
    delivery = f"canary:{now.isoformat()}"
    signal = Signal(kind=SignalKind.CANARY, source="canary", delivery_id=delivery, incident_key="canary",
                    transition=Transition.TRIGGER, occurred_at=now, title="responder canary")
    classification = classify(signal, deps.config.severity)
    if classification.rule != "rule:responder-canary":
        raise RuntimeError(f"canary classified by {classification.rule}, not by the canary rule")
    if deps.store.claim_delivery(delivery, now, 60) is not Claim.CLAIMED:
        raise RuntimeError("canary delivery could not be claimed")
    deps.store.complete_delivery(delivery, {"canary": True}, now, keep_days=1)
    record = deps.store.get_delivery(delivery)
    if not record or record["status"] != "done":
        raise RuntimeError("canary delivery did not round-trip through the store")
    from chalicelib.decisions.heartbeats import PAGED
    from chalicelib.heartbeats import Heartbeats

    sweep_state = Heartbeats(deps.pipeline).own_state(now)
    if sweep_state in PAGED:
        raise RuntimeError(f"the escalation sweep's heartbeat is {sweep_state}: escalations are not running")
    channel = deps.config.routing.communications.canary_channel
    incident = Incident(id="canary", key="canary", kind=SignalKind.CANARY, title="responder canary",
                        severity=Severity.SEV4, owner="backlog", playbook=None, rule=classification.rule,
                        opened_at=now, last_seen=now)
    page = PageRecord(id=f"canary:{channel}", step="canary", role="canary", person="canary", channel=channel,
                      kind=PageKind.UPDATE, at=now, text=f"[CANARY] the responder's page path works ({now:%H:%M} UTC)")
    deps.pager.send(page, incident)
    elapsed_ms = (time.perf_counter() - started) * 1000
    _emit(metrics, elapsed_ms)
    return {"canary": "ok", "channel": channel, "ms": round(elapsed_ms, 1)}


def _emit(metrics: Any, elapsed_ms: float) -> None:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = metrics or Metrics(namespace=NAMESPACE, service="alarm-responder")
    metrics.add_metric(name="CanaryCompleted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="CanaryMilliseconds", unit=MetricUnit.Milliseconds, value=elapsed_ms)
    metrics.flush_metrics()  # one EMF line on stdout: CloudWatch turns it into the metrics
