"""The sweep's fan-out: due incident ids go to an SQS queue in batches; a Lambda per batch advances them.

The scheduled sweep only reads the ``due`` index (ids, no incidents) and sends one message per
due incident, ten per ``SendMessageBatch``; the queue's consumer (``handlers.on_sweep_messages``,
ten messages per invocation) runs ``Escalator.process`` on them, the routine the sweep runs
in-process when no queue is configured (on a laptop, in the CLI). So 5,000 incidents due in
the same minute cost the sweep ~500 calls, and their pages go out from as many consumers as
SQS and Lambda start (README, "Sweep at scale").

A message says which incident and what the index said its due time was. Delivery is at least
once and the next minute's sweep sends again whatever is still due, so the consumer reads
the incident first and does nothing, with a reason, when nothing is due any more
(``escalation.due_reason``); the pages themselves are claimed conditionally, once.

The consumer answers with ``batchItemFailures`` (Lambda's partial batch response): only the
messages of incidents that failed, or that it had no time left to start, come back; after
``maxReceiveCount`` receives a message goes to the sweep's dead-letter queue, whose depth
raises an alarm. Powertools' batch utility gives the same answer; it is not used because
importing it costs ~50 ms on each consumer's cold start (``python -X importtime``) and it
raises when every record of a batch fails, which would hide the per-message answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from chalicelib.errors import TransientError
from chalicelib.sources import safejson
from chalicelib.store import DueIncident

BATCH = 10  # SendMessageBatch takes at most 10 entries; the consumer reads 10 messages at a time
SEND_ATTEMPTS = 3  # entries SQS failed on its side are sent again, at most this often
# The consumer starts no further incident once its Lambda has less than this left: an incident
# in progress may wait on a channel for seconds, and a message not started comes back anyway.
CONSUMER_MARGIN_MS = 10_000

T = TypeVar("T")


def batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def message_body(due: DueIncident) -> str:
    return json.dumps({"incident_id": due.incident_id, "due_at": due.due_at})


def incident_of(body: Any) -> str | None:
    """The incident id a message names, or None if the body is not one of ours."""
    if not isinstance(body, str):
        return None
    try:
        parsed = safejson.loads(body)
    except ValueError:  # JsonRejected, JSONDecodeError
        return None
    incident_id = parsed.get("incident_id") if isinstance(parsed, dict) else None
    return incident_id if isinstance(incident_id, str) and incident_id else None


class SweepQueue:
    """The queue the sweep hands due incidents to; ``sqs`` gives the SQS client (built on first
    use by the wiring, so a sweep with nothing due builds none)."""

    def __init__(self, sqs: Callable[[], Any], url: str) -> None:
        self._sqs, self.url = sqs, url

    @property
    def client(self) -> Any:
        return self._sqs()

    def send(self, batch: Sequence[DueIncident]) -> list[str]:
        """Send up to ten; the ids SQS did not take (after ``SEND_ATTEMPTS``), which stay due."""
        from botocore.exceptions import BotoCoreError, ClientError

        pending = {str(index): due for index, due in enumerate(batch)}
        refused: list[str] = []
        for _ in range(SEND_ATTEMPTS):
            if not pending:
                break
            try:
                response = self.client.send_message_batch(QueueUrl=self.url, Entries=[
                    {"Id": entry_id, "MessageBody": message_body(due)} for entry_id, due in pending.items()])
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                raise TransientError(f"sqs send_message_batch: {code}") from exc
            except BotoCoreError as exc:
                raise TransientError(f"sqs send_message_batch: {type(exc).__name__}") from exc
            failed = {f["Id"]: bool(f.get("SenderFault")) for f in response.get("Failed", [])}
            refused += [pending[entry_id].incident_id for entry_id, ours in failed.items() if ours]
            pending = {entry_id: pending[entry_id] for entry_id, ours in failed.items() if not ours}
        return refused + [due.incident_id for due in pending.values()]


def batch_response(failed_message_ids: Sequence[str]) -> dict[str, Any]:
    """Lambda's partial batch response: only these messages are returned to the queue."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed_message_ids]}


def lambda_time_left(context: Any) -> Callable[[], int] | None:
    """The consumer's remaining time in ms, from its Lambda context (None outside Lambda)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining if callable(remaining) else None
