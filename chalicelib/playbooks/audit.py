"""The append-only audit trail of every playbook step and its result, and the reads a run made.

Locally a JSON-lines file; in AWS one object per record in an S3 bucket with Object Lock
in COMPLIANCE mode (declared in the merge template), so no one, root included, can edit
or delete a record during the retention period. Records hold ids, parameters and results,
never payload text.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any, Protocol

from chalicelib.errors import StoreError, from_client_error


class AuditLog(Protocol):
    def append(self, record: dict[str, Any]) -> None: ...


class JsonlAuditLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str, sort_keys=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as out:  # O_APPEND: one whole line per write
            out.write(line + "\n")

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]


class S3AuditLog:
    def __init__(self, bucket: str, prefix: str = "audit/", client: Any = None) -> None:
        self.bucket, self.prefix, self._client = bucket, prefix, client

    def append(self, record: dict[str, Any]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        at = str(record.get("at", ""))
        key = f"{self.prefix}{at[:10]}/{record.get('incident', 'none')}/{at}-{uuid.uuid4().hex[:8]}.json"
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, ContentType="application/json",
                                    Body=json.dumps(record, default=str, sort_keys=True).encode())
        except (ClientError, BotoCoreError) as exc:  # lost audit records are never "transient": they fail the run
            raise from_client_error(exc, "s3", "put_object", context=f"audit put to s3://{self.bucket}/{self.prefix}",
                                    into=lambda message, _: StoreError(message)) from None


def open_audit(url: str, s3_client: Any = None) -> AuditLog:
    """``file://path`` (default ``file://.responder/audit.jsonl``) or ``s3://bucket/prefix/``."""
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return S3AuditLog(bucket, prefix or "audit/", s3_client)
    if url.startswith("file://"):
        return JsonlAuditLog(url.removeprefix("file://"))
    raise StoreError("RESPONDER_AUDIT: expected file://path or s3://bucket/prefix")
