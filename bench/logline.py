"""Cost of the per-event log line: CPU µs per line with the JSON formatter, 10,000 lines, median of 5.

Every event handled writes one INFO line (``handlers.on_event``: "event handled" with its
outcome); bench/storm.py turns INFO off to measure the pipeline alone, so this is the part it
leaves out. Two figures: ``format`` (the formatter alone) and ``log_call`` (``log.info`` through
the stdlib logger and a handler writing to memory: record, caller lookup, format, write).

    python bench/logline.py
"""

from __future__ import annotations

import io
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LINES = 10_000
# What a repeat event's outcome looks like (pipeline.Outcome.summary()).
OUTCOME = {"delivery_id": "sns:5e2b1c4d-8f3a-4b6e-9d1c-2a7f8e9b0c1d", "reason": "DUPLICATE_OPEN", "kind": "alarm",
           "transition": "repeat", "incident_key": "cloudwatch:123456789012:us-east-1:storm-alarm-17",
           "severity": "SEV2", "owner": "platform", "playbook": None, "rule": "latency-high",
           "incident_id": "inc-01HF3Z9Q4K", "unknown_reason": None, "playbook_result": None, "pages": 0}


class Context:
    function_name = "alarm-responder-prod-on_alarm_sns"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    aws_request_id = "6f1b3c2e-0d4a-4b7e-9a51-0c2f1e6d8b3a"


def per_line_us(action: object, repeats: int = 5) -> float:
    """CPU time (process_time: a loaded machine inflates wall time, not this), median of runs."""
    runs = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(LINES):
            action()  # type: ignore[operator]
        runs.append((time.process_time() - start) / LINES * 1e6)
    return round(statistics.median(runs), 2)


def measure() -> dict[str, object]:
    os.environ["_X_AMZN_TRACE_ID"] = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    from chalicelib import observability

    observability.setup_logging("INFO")
    observability.bind_lambda_context(Context())
    log = logging.getLogger("responder")
    sink = io.StringIO()
    handler = log.handlers[0]
    handler.setStream(sink)  # type: ignore[attr-defined]
    formatter = handler.formatter
    assert formatter is not None
    record = log.makeRecord(log.name, logging.INFO, __file__, 1, "event handled", (), None,
                            extra={"outcome": OUTCOME})

    def log_call() -> None:
        log.info("event handled", extra={"outcome": OUTCOME})
        sink.seek(0)
        sink.truncate()

    result: dict[str, object] = {"lines": LINES, "format_us_per_line": per_line_us(lambda: formatter.format(record)),
                                 "log_call_us_per_line": per_line_us(log_call)}
    log.info("event handled", extra={"outcome": OUTCOME})
    line = sink.getvalue().strip()
    result["line_bytes"] = len(line)
    result["fields"] = sorted(json.loads(line))
    return result


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
