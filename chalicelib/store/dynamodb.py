"""The AWS store: one DynamoDB table (partition key ``pk``, string), conditional writes.

Items:
    ``DELIVERY#<id>``  status (leased|done), lease_until, expires_at (also the TTL attribute
                       ``ttl``), outcome (JSON)
    ``INCIDENT#<id>``  key, status, version, opened_at, doc (the incident as JSON), and while
                       something is scheduled ``due_pk`` = "DUE" + ``due_at`` (epoch seconds):
                       the sparse global index ``due`` serves the sweep
    ``OPENKEY#<key>``  incident_id: exists exactly while that incident is open
    ``DOC#<key>``      version, body (JSON): small shared documents (playbook action logs)

botocore's ``ClientError`` stops here: throttling and 5xx become ``TransientError`` (the
Lambda retries), a lost condition becomes ``ConflictError`` or a False/None answer, and
anything else ``StoreError``.
"""

from __future__ import annotations

import builtins
import json
from datetime import datetime, timedelta
from typing import Any

from chalicelib.errors import ConflictError, StoreError, TransientError
from chalicelib.models import Incident, IncidentStatus
from chalicelib.store import Claim

DUE_INDEX = "due"
_TRANSIENT = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
}


class DynamoStore:
    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # deferred: cold starts that never touch the store skip it

            self._client = boto3.client("dynamodb")
        return self._client

    def _call(self, op: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, op)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed(exc.response.get("Item")) from exc
            if code == "TransactionCanceledException":
                reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
                raise _TransactionCancelled(reasons) from exc
            if code in _TRANSIENT:
                raise TransientError(f"dynamodb {op} on {self.table}: {code}") from exc
            raise StoreError(f"dynamodb {op} on {self.table}: {code}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"dynamodb {op} on {self.table}: {type(exc).__name__}") from exc

    # --- deliveries -------------------------------------------------------------------

    def claim_delivery(self, delivery_id: str, now: datetime, lease_seconds: int) -> Claim:
        ts = int(now.timestamp())
        try:
            self._call(
                "put_item", TableName=self.table,
                Item={"pk": _s(f"DELIVERY#{delivery_id}"), "status": _s("leased"),
                      "lease_until": _n(ts + lease_seconds), "ttl": _n(ts + 86400)},
                # new id, or an abandoned lease (the Lambda that held it died), or an expired record
                ConditionExpression="attribute_not_exists(pk) OR (#st = :leased AND lease_until < :now)"
                                    " OR (#st = :done AND expires_at < :now)",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={":leased": _s("leased"), ":done": _s("done"), ":now": _n(ts)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as failed:
            held = (failed.item or {}).get("status", {}).get("S")
            return Claim.IN_PROGRESS if held == "leased" else Claim.DONE
        return Claim.CLAIMED

    def complete_delivery(self, delivery_id: str, outcome: dict[str, Any], now: datetime,
                          keep_days: int) -> None:
        expires = int((now + timedelta(days=keep_days)).timestamp())
        self._call("put_item", TableName=self.table, Item={
            "pk": _s(f"DELIVERY#{delivery_id}"), "status": _s("done"), "expires_at": _n(expires),
            "ttl": _n(expires), "outcome": _s(json.dumps(outcome, default=str)),
        })

    def release_delivery(self, delivery_id: str) -> None:
        try:
            self._call("delete_item", TableName=self.table, Key={"pk": _s(f"DELIVERY#{delivery_id}")},
                       ConditionExpression="#st = :leased", ExpressionAttributeNames={"#st": "status"},
                       ExpressionAttributeValues={":leased": _s("leased")})
        except _ConditionFailed:
            pass

    def get_delivery(self, delivery_id: str) -> dict[str, Any] | None:
        item = self._get(f"DELIVERY#{delivery_id}")
        if item is None:
            return None
        outcome = item.get("outcome", {}).get("S")
        return {"status": item["status"]["S"], "outcome": json.loads(outcome) if outcome else None}

    # --- incidents --------------------------------------------------------------------

    def create(self, incident: Incident) -> Incident | None:
        stored = incident.model_copy(update={"version": 1})
        try:
            self._call("transact_write_items", TransactItems=[
                {"Put": {"TableName": self.table,
                         "Item": {"pk": _s(f"OPENKEY#{incident.key}"), "incident_id": _s(incident.id)},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self.table, "Item": self._incident_item(stored),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
        except _TransactionCancelled as cancelled:
            if cancelled.reasons and cancelled.reasons[0] == "ConditionalCheckFailed":
                return None
            raise TransientError(f"dynamodb create cancelled: {cancelled.reasons}") from cancelled
        return stored

    def save(self, incident: Incident) -> Incident:
        stored = incident.model_copy(update={"version": incident.version + 1})
        put = {"TableName": self.table, "Item": self._incident_item(stored),
               "ConditionExpression": "version = :v",
               "ExpressionAttributeValues": {":v": _n(incident.version)}}
        if stored.status is IncidentStatus.RESOLVED:
            release = {"TableName": self.table, "Key": {"pk": _s(f"OPENKEY#{stored.key}")},
                       "ConditionExpression": "incident_id = :id",
                       "ExpressionAttributeValues": {":id": _s(stored.id)}}
            try:
                self._call("transact_write_items", TransactItems=[{"Put": put}, {"Delete": release}])
                return stored
            except _TransactionCancelled as cancelled:
                if cancelled.reasons and cancelled.reasons[0] == "ConditionalCheckFailed":
                    raise ConflictError(f"incident {incident.id} changed since version {incident.version}") from None
                # The key was released already (an earlier save of this resolved incident).
        try:
            self._call("put_item", **put)
        except _ConditionFailed:
            raise ConflictError(f"incident {incident.id} changed since version {incident.version}") from None
        return stored

    def get(self, incident_id: str) -> Incident | None:
        item = self._get(f"INCIDENT#{incident_id}")
        return Incident.model_validate_json(item["doc"]["S"]) if item else None

    def get_open(self, key: str) -> Incident | None:
        pointer = self._get(f"OPENKEY#{key}")
        if pointer is None:
            return None
        incident = self.get(pointer["incident_id"]["S"])
        if incident is None:
            # Both items are written in one transaction, so this is a read between them.
            raise ConflictError(f"incident key {key} is being written; read again")
        return incident if incident.is_open else None

    def list(self) -> list[Incident]:
        incidents = self._incidents("scan", FilterExpression="begins_with(pk, :p)",
                                    ExpressionAttributeValues={":p": _s("INCIDENT#")})
        return sorted(incidents, key=lambda i: (i.opened_at, i.id))

    def due(self, now: datetime) -> builtins.list[Incident]:
        return self._incidents("query", IndexName=DUE_INDEX, KeyConditionExpression="due_pk = :due AND due_at <= :now",
                               ExpressionAttributeValues={":due": _s("DUE"), ":now": _n(int(now.timestamp()))})

    def _incidents(self, op: str, **kwargs: Any) -> builtins.list[Incident]:
        """Every incident a scan or query returns, following LastEvaluatedKey across pages."""
        incidents: builtins.list[Incident] = []
        start = None
        while True:
            page = self._call(op, TableName=self.table, **kwargs, **({"ExclusiveStartKey": start} if start else {}))
            incidents += [Incident.model_validate_json(i["doc"]["S"]) for i in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                return incidents

    def get_doc(self, key: str) -> tuple[dict[str, Any] | None, int]:
        item = self._get(f"DOC#{key}")
        return (json.loads(item["body"]["S"]), int(item["version"]["N"])) if item else (None, 0)

    def put_doc(self, key: str, doc: dict[str, Any], expected_version: int) -> None:
        condition = "attribute_not_exists(pk)" if expected_version == 0 else "version = :v"
        values = {} if expected_version == 0 else {"ExpressionAttributeValues": {":v": _n(expected_version)}}
        try:
            self._call("put_item", TableName=self.table, ConditionExpression=condition, **values,
                       Item={"pk": _s(f"DOC#{key}"), "version": _n(expected_version + 1),
                             "body": _s(json.dumps(doc, default=str))})
        except _ConditionFailed:
            raise ConflictError(f"document {key} changed since version {expected_version}") from None

    def _get(self, pk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._call("get_item", TableName=self.table, Key={"pk": _s(pk)},
                                                 ConsistentRead=True).get("Item")
        return item

    @staticmethod
    def _incident_item(incident: Incident) -> dict[str, Any]:
        item = {"pk": _s(f"INCIDENT#{incident.id}"), "key": _s(incident.key),
                "status": _s(incident.status.value), "version": _n(incident.version),
                "opened_at": _s(incident.opened_at.isoformat()), "doc": _s(incident.model_dump_json())}
        if incident.next_action_at is not None:
            # whole seconds, rounded down: the sweep runs each minute, a second early is harmless
            item |= {"due_pk": _s("DUE"), "due_at": _n(int(incident.next_action_at.timestamp()))}
        return item


class _ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any] | None = None) -> None:
        super().__init__("condition failed")
        self.item = item


class _TransactionCancelled(Exception):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__(",".join(reasons))
        self.reasons = reasons


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}
