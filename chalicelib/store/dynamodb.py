"""The AWS store: one DynamoDB table (partition key ``pk``, string), conditional writes.

Items (no item grows with the events an incident receives; see ``chalicelib.store.bounds``):

- delivery ``DELIVERY#<id>``: status (leased, done), lease_until, expires_at, ``ttl``, outcome;
  written when a delivery is claimed and completed.
- incident ``INCIDENT#<id>``: key, status, version, opened_at, timeline_count, docz (the bounded
  incident as zlib-compressed JSON: a write is billed by the item's size in 1 KB blocks. Deflated
  against a preset dictionary, ``incident_doc.zdict``, a typical incident, a 3–9 KB record takes
  ~300–400 bytes instead of ~1.2–1.8 KB, so most incident writes are one unit, not two; the
  stream's header names its dictionary by checksum, so items deflated without one, and items
  holding ``doc``, plain JSON, from before, are read as well), and while
  something is scheduled ``due_shard``/``due_at`` (the sparse ``due`` index; left up to
  ``DUE_SLACK`` early rather than moved); written on every change but a counted repeat.
- repeat counter ``REPEATS#<id>``: ``repeats``/``repeat_seen`` (the repeats ``record_repeat``
  counted: the incident's ``count`` is its doc's plus these, never folded) and ``repeat_sev``,
  the guard (``bounds.repeat_floor``; absent: nothing counts here). Read with the incident in one
  BatchGetItem; armed by the first write after create, its guard rewritten (narrowed before the
  incident write, widened after it) when it changes, each time with the incident version it is for
  (``guard_version``): a widening that lands after a later version's write is refused.
- timeline entry ``TL#<id>#<seq:09d>``: entry (JSON, at most ~4.3 KB); written once, whole, in
  the transaction of the incident write that moves it out of the record's window, or adds it
  cut short there (``bounds.leaving_window``); an entry the window holds exactly has none yet.
- open key ``OPENKEY#<key>``: incident_id; exists while that incident is open (written by
  create, deleted after the resolving write).
- document ``DOC#<key>``: version, body (JSON): playbook action logs, tokens, ack links.

The full timeline (``store.full_timeline``: the window, and the records of what left it) is
read only by the API's detail and the post-mortem; the event path never reads it. A counted
repeat is ``record_repeat``: an UpdateItem of the small counter item guarded by ``repeat_sev``,
then the delivery's conditional Put, no transaction (~2 write units whatever the incident's
size). Any other change is one conditional PutItem (a transaction bills each item twice), with
entries leaving the window one transaction; a resolve disarms the counter before it and
releases the open key after it, each a plain write.

Transactions read ``CancellationReasons`` item by item: only a failed condition on the item
the write guards (the open key on create, the incident's version on save) is a conflict
(``None`` from create, ``ConflictError`` from save). Anything else (throttling, a concurrent
transaction, a validation error) wrote nothing and is retried a few times, then raised as
``TransientError``. A pointer to a resolved or missing incident (a release that failed, a
Lambda that died after the resolving write) heals on read: ``get_open`` deletes it conditionally.

The ``due`` index is keys-only (an incident write costs the index a few dozen bytes, not the
whole record again) and sharded: ``due_shard`` is a stable hash of the incident id modulo
``due_shards`` (``RESPONDER_DUE_SHARDS``), so index writes spread over that many partitions
instead of one, and the sweep queries each shard for ``due_at <= now``. The shard count may
grow but never shrink: a smaller count would no longer query the shards above it.

botocore's ``ClientError`` stops here: throttling and 5xx become ``TransientError`` (the
Lambda retries), a lost condition becomes ``ConflictError`` or a False/None answer, and
anything else ``StoreError``.
"""

from __future__ import annotations

import builtins
import functools
import json
import logging
import zlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.errors import ConflictError, StoreError, TransientError, from_client_error
from chalicelib.models import Incident, IncidentStatus, TimelineEntry
from chalicelib.store import Claim, DueIncident, Repeat, bounds
from chalicelib.store.retry import TRANSIENT_ATTEMPTS, Pause, backoff, retried

DUE_INDEX = "due-sharded"  # a new name: CloudFormation cannot change an index's keys in place
DUE_SHARDS = 16  # index partitions for the due times; see the module docstring
DOC_COMPRESSION = 6  # zlib level: beyond it the size hardly shrinks and the CPU time grows
# The preset dictionary incident docs are deflated against. Items hold streams made with it, so
# its bytes never change: a new dictionary gets a new file and both stay readable.
DOC_DICTIONARY = Path(__file__).with_name("incident_doc.zdict")
DOC_DICTIONARY_ID = 0x862FC867  # its Adler-32, which each stream's header carries
log = logging.getLogger("responder")
# An index entry may stay up to this many seconds ahead of the incident's ``next_action_at``
# (``_due_at``): moving it is a delete and a put in the index (2 write units), and the sweep's
# claim write (due now → its page's 60 s lease) is followed within a second by the result's write,
# which moves it anyway. A sweep that meets it early reads the incident and leaves it (not due).
DUE_SLACK = 120
TRANSACTION_ATTEMPTS = TRANSIENT_ATTEMPTS  # a cancelled transaction wrote nothing; beyond this the Lambda retries


# new id, or an abandoned lease (the Lambda that held it died), or an expired record
_CLAIMABLE = ("attribute_not_exists(pk) OR (#st = :leased AND lease_until < :now)"
              " OR (#st = :done AND expires_at < :now)")


class DynamoStore:
    def __init__(self, table: str, client: Any = None, pause: Pause = backoff, due_shards: int = DUE_SHARDS) -> None:
        self.table = table
        self.due_shards = due_shards
        self._client = client
        self.pause = pause

    @property
    def client(self) -> Any:
        if self._client is None:
            from chalicelib.aws import new_client  # deferred: cold starts that never touch the store skip boto3

            self._client = new_client("dynamodb")
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
                cancelled = exc.response.get("CancellationReasons", [])
                raise _TransactionCancelled([r.get("Code", "None") for r in cancelled],
                                            [r.get("Item") for r in cancelled]) from exc
            raise from_client_error(exc, "dynamodb", op, context=f"dynamodb {op} on {self.table}") from exc
        except BotoCoreError as exc:
            raise from_client_error(exc, "dynamodb", op, context=f"dynamodb {op} on {self.table}") from exc

    # --- deliveries -------------------------------------------------------------------

    def claim_delivery(self, delivery_id: str, now: datetime, lease_seconds: int) -> Claim:
        ts = int(now.timestamp())
        try:
            self._call(
                "put_item", TableName=self.table,
                Item={"pk": _s(f"DELIVERY#{delivery_id}"), "status": _s("leased"),
                      "lease_until": _n(ts + lease_seconds), "ttl": _n(ts + 86400)},
                ConditionExpression=_CLAIMABLE,
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

    def record_repeat(self, delivery_id: str, incident_id: str, severity: int, outcome: dict[str, Any],
                      now: datetime, keep_days: int) -> Repeat:
        """Two small writes, no transaction (a counted repeat is ~2 write units whatever the incident's
        size): the counter item's guarded increment, then the delivery's conditional Put. Counting
        first means a refused count wrote nothing and the full path runs the delivery; a delivery
        that is not ours to complete (a redelivery, a live lease) or a failed Put takes its count
        back. Only a Lambda dying between the two writes counts one repeat too many (its retry
        counts it again); no delivery is ever marked done without its repeat counted."""
        counter = {"TableName": self.table, "Key": {"pk": _s(_counter_pk(incident_id))}}
        try:
            self._call("update_item", **counter,
                       UpdateExpression="SET repeats = if_not_exists(repeats, :zero) + :one, repeat_seen = :seen",
                       ConditionExpression="repeat_sev <= :sev",
                       ExpressionAttributeValues={":zero": _n(0), ":one": _n(1), ":sev": _n(severity),
                                                  ":seen": _s(now.isoformat())})
        except _ConditionFailed:
            return Repeat.NOT_COUNTABLE  # resolved, a playbook to re-run, a worse severity, or no counter
        ts = int(now.timestamp())
        expires = int((now + timedelta(days=keep_days)).timestamp())
        try:
            self._call("put_item", TableName=self.table, Item={
                "pk": _s(f"DELIVERY#{delivery_id}"), "status": _s("done"), "expires_at": _n(expires),
                "ttl": _n(expires), "outcome": _s(json.dumps(outcome, default=str))},
                ConditionExpression=_CLAIMABLE, ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={":leased": _s("leased"), ":done": _s("done"), ":now": _n(ts)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except BaseException as exc:
            self._call("update_item", **counter, UpdateExpression="SET repeats = repeats - :one",
                       ExpressionAttributeValues={":one": _n(1)})
            if isinstance(exc, _ConditionFailed):
                held = (exc.item or {}).get("status", {}).get("S")
                return Repeat.IN_PROGRESS if held == "leased" else Repeat.DUPLICATE
            raise
        return Repeat.COUNTED

    # --- incidents --------------------------------------------------------------------

    def create(self, incident: Incident) -> Incident | None:
        """The open key and the incident in one transaction (with any entry that needs a record of
        its own). Its repeat counter comes with its next write (``save``: the guard read here is
        None, so that write arms it); until then no repeat is counted blind."""
        entries = self._records(incident)
        stored = bounds.bounded(incident).model_copy(update={"version": 1})
        items = [
            {"Put": {"TableName": self.table,
                     "Item": {"pk": _s(f"OPENKEY#{incident.key}"), "incident_id": _s(incident.id)},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": self.table, "Item": self._incident_item(stored),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            *self._entry_puts(incident.id, entries),
        ]
        try:
            self._transact(items, f"create {incident.id}")
        except _Guarded:
            return None  # the key has an open incident (or a stale pointer: get_open heals it)
        stored._beside, stored._due_read, stored._floor_read = (0, None), _due_at(stored), None
        return stored

    def save(self, incident: Incident) -> Incident:
        """One conditional PutItem on the version (a transaction only when entries leave the window).

        Beside it, each a plain write of its own: the counter's guard (``bounds.repeat_floor``),
        rewritten when it changes, narrowed before the incident write and widened after it, so
        it never counts a repeat the stored record would refuse (a failure between the two leaves
        it narrower: repeats take the full path, whose write sets it right); and, when the incident
        resolves, the open key's release after it (a pointer to a resolved incident is stale and
        heals on read, ``get_open``; released only while it is still this incident's)."""
        entries = self._records(incident)
        stored = bounds.bounded(incident).model_copy(update={"version": incident.version + 1})
        releasing = stored.status is IncidentStatus.RESOLVED and not incident.key_released
        if releasing:
            stored = stored.model_copy(update={"key_released": True})
        # The repeats counted beside the record (in ``count``, not in the stored doc), and the
        # counter's guard: rewritten when it changes, always by the resolving write (it disarms it).
        apart, guard_read = incident._beside or (0, None)
        guard = bounds.repeat_floor(stored)
        # Narrowed before: the guard read, or with none read the one the version read asks for (its
        # writer's widening may still land; the guard's version refuses it once this one is set).
        widest = guard_read if guard_read is not None else incident._floor_read
        narrowing = ((widest is not None and (guard is None or guard > widest))
                     or (releasing and incident._beside is None))
        widening = not narrowing and guard is not None and (guard_read is None or guard < guard_read)
        put = {"TableName": self.table, "Item": self._incident_item(stored, apart),
               "ConditionExpression": "version = :v",
               "ExpressionAttributeValues": {":v": _n(incident.version)}}
        conflict = f"incident {incident.id} changed since version {incident.version}"
        stored._beside, stored._due_read, stored._floor_read = (apart, guard), _due_at(stored), None
        if narrowing:
            try:
                self._call("update_item", **self._guard(incident.id, guard, stored.version))
            except _ConditionFailed:  # a writer of a later version set it: this one's write would lose
                raise ConflictError(conflict) from None
        try:
            if entries:
                self._transact([{"Put": put}, *self._entry_puts(incident.id, entries)], f"save {incident.id}")
            else:
                self._call("put_item", **put)
        except (_ConditionFailed, _Guarded):
            raise ConflictError(conflict) from None
        if widening:
            self._after_write(f"arm the repeat counter of {incident.id}", "update_item",
                              self._guard(incident.id, guard, stored.version))
        if releasing:
            self._after_write(f"release the open key of {incident.id}", "delete_item",
                              {"TableName": self.table, "Key": {"pk": _s(f"OPENKEY#{stored.key}")},
                               "ConditionExpression": "incident_id = :id",
                               "ExpressionAttributeValues": {":id": _s(stored.id)}})
        return stored

    def _after_write(self, what: str, op: str, params: dict[str, Any]) -> None:
        """A write that follows a stored incident write: retried when throttled, never raised (the
        incident is written; what this leaves undone errs on the safe side and heals by itself)."""
        def attempt() -> None:
            try:
                self._call(op, **params)
            except _ConditionFailed:
                pass  # not ours to change any more

        try:
            retried(attempt, what=what, attempts=TRANSIENT_ATTEMPTS, pause=self.pause, retry_on=(TransientError,))
        except (TransientError, StoreError) as exc:
            log.warning("dynamodb: left undone after an incident write",
                        extra={"outcome": {"what": what, "error": type(exc).__name__}})

    def _guard(self, incident_id: str, guard: int | None, version: int) -> dict[str, Any]:
        """The counter item's guard set to ``guard`` (None: nothing counts until a full write sets it)
        for the incident's ``version``, unless a writer of a later version set it already: a widening
        that lands late (after the write that follows its version) never re-arms what that write disarmed."""
        update: dict[str, Any] = {"TableName": self.table, "Key": {"pk": _s(_counter_pk(incident_id))},
                                  "ConditionExpression": "attribute_not_exists(guard_version) OR guard_version <= :ver"}
        if guard is None:
            return update | {"UpdateExpression": "REMOVE repeat_sev SET guard_version = :ver",
                             "ExpressionAttributeValues": {":ver": _n(version)}}
        return update | {"UpdateExpression": "SET repeat_sev = :sev, repeats = if_not_exists(repeats, :zero), "
                                             "guard_version = :ver",
                         "ExpressionAttributeValues": {":sev": _n(guard), ":zero": _n(0), ":ver": _n(version)}}

    def _transact(self, items: builtins.list[dict[str, Any]], what: str) -> None:
        """Write ``items`` at once. Item 0 is the guarded one: its failed condition raises ``_Guarded``;
        any other cancellation wrote nothing and is retried."""

        def attempt() -> None:
            try:
                self._call("transact_write_items", TransactItems=items)
            except _TransactionCancelled as cancelled:
                if cancelled.reasons[:1] == ["ConditionalCheckFailed"]:
                    raise _Guarded() from None
                raise _Interrupted(f"dynamodb {what} cancelled: {','.join(cancelled.reasons)}") from None

        try:
            retried(attempt, what=what, attempts=TRANSACTION_ATTEMPTS, pause=self.pause, retry_on=(_Interrupted,))
        except _Interrupted as exc:
            raise TransientError(str(exc)) from exc

    def _records(self, incident: Incident) -> builtins.list[tuple[int, TimelineEntry]]:
        """The entries to write as records of their own with the incident (``bounds.leaving_window``:
        those leaving the record's window, and new ones it cuts short; most writes have none).

        More than one transaction holds (a record from before this layout, holding its whole
        timeline): the stored ones are written ahead, 100 at a time. The stored record fixes their
        text, so a racing writer that read the same record writes the same thing; new entries are
        only ever written in the transaction that stores their sequence numbers.
        """
        new = bounds.unsaved_entries(incident)
        limit = bounds.MAX_NEW_ENTRIES_PER_WRITE
        legacy = incident.timeline_stored == 0 and incident.version > 0
        if len(new) > limit and not legacy:
            raise StoreError(f"incident {incident.id}: {len(new)} timeline entries in one write")
        records = bounds.leaving_window(incident)
        if len(records) <= limit:
            return records
        fixed = len(new) - limit if legacy else incident.timeline_stored  # entries the read record holds
        ahead = [(seq, entry) for seq, entry in records if seq < fixed]
        for start in range(0, len(ahead), 100):
            self._transact(self._entry_puts(incident.id, ahead[start:start + 100]), f"timeline of {incident.id}")
        return [(seq, entry) for seq, entry in records if seq >= fixed]

    def _entry_puts(self, incident_id: str, entries: builtins.list[tuple[int, TimelineEntry]]
                    ) -> builtins.list[dict[str, Any]]:
        return [{"Put": {"TableName": self.table, "Item": {"pk": _s(_entry_pk(incident_id, seq)),
                                                           "entry": _s(entry.model_dump_json())}}}
                for seq, entry in entries]

    def timeline(self, incident_id: str, start: int = 0, limit: int = 100) -> builtins.list[TimelineEntry]:
        found = self._get_many([_entry_pk(incident_id, seq) for seq in range(start, start + min(limit, 100))],
                               f"timeline of {incident_id}")
        return [TimelineEntry.model_validate_json(found[pk]["entry"]["S"]) for pk in sorted(found)]

    def _get_many(self, pks: builtins.list[str], what: str) -> dict[str, dict[str, Any]]:
        """The items of ``pks`` that exist (at most 100), read consistently in one BatchGetItem."""
        keys = [{"pk": _s(pk)} for pk in pks]
        found: dict[str, dict[str, Any]] = {}
        for _ in range(TRANSACTION_ATTEMPTS):
            if not keys:
                break
            page = self._call("batch_get_item", RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}})
            found |= {item["pk"]["S"]: item for item in page.get("Responses", {}).get(self.table, [])}
            keys = page.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
        if keys:
            raise TransientError(f"dynamodb {what}: keys left unprocessed")
        return found

    def get(self, incident_id: str) -> Incident | None:
        """The incident and its repeat counter, in one round trip."""
        pk = f"INCIDENT#{incident_id}"
        found = self._get_many([pk, _counter_pk(incident_id)], f"get {incident_id}")
        return _incident(found[pk], found.get(_counter_pk(incident_id))) if pk in found else None

    def get_open(self, key: str) -> Incident | None:
        pointer = self._get(f"OPENKEY#{key}")
        if pointer is None:
            return None
        incident_id = pointer["incident_id"]["S"]
        incident = self.get(incident_id)
        if incident is not None and incident.is_open:
            return incident
        # Pointer and incident are created in one transaction, and the pointer is released only
        # after the resolving write: a pointer to a resolved or missing incident is stale (a
        # release that failed, or is about to happen). Heal it, unless it moved on.
        try:
            self._call("delete_item", TableName=self.table, Key={"pk": _s(f"OPENKEY#{key}")},
                       ConditionExpression="incident_id = :id", ExpressionAttributeValues={":id": _s(incident_id)})
        except _ConditionFailed:
            pass
        return None

    def list(self) -> list[Incident]:
        items: builtins.list[dict[str, Any]] = []
        start = None
        while True:
            page = self._call("scan", TableName=self.table,
                              FilterExpression="begins_with(pk, :p) OR begins_with(pk, :c)",
                              ExpressionAttributeValues={":p": _s("INCIDENT#"), ":c": _s("REPEATS#")},
                              **({"ExclusiveStartKey": start} if start else {}))
            items += page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        counters = {i["pk"]["S"].removeprefix("REPEATS#"): i for i in items if i["pk"]["S"].startswith("REPEATS#")}
        incidents = [_incident(i, counters.get(i["pk"]["S"].removeprefix("INCIDENT#")))
                     for i in items if i["pk"]["S"].startswith("INCIDENT#")]
        return sorted(incidents, key=lambda i: (i.opened_at, i.id))

    def due(self, now: datetime) -> builtins.list[DueIncident]:
        """Every shard's due keys, oldest first: one Query per shard (a 1 MB page holds ~15,000
        keys), one after the other; the README's "Sweep at scale" has the arithmetic."""
        found: builtins.list[DueIncident] = []
        for shard in range(self.due_shards):
            start = None
            while True:
                page = self._call("query", TableName=self.table, IndexName=DUE_INDEX,
                                  KeyConditionExpression="due_shard = :shard AND due_at <= :now",
                                  ExpressionAttributeValues={":shard": _n(shard), ":now": _n(int(now.timestamp()))},
                                  **({"ExclusiveStartKey": start} if start else {}))
                found += [DueIncident(item["pk"]["S"].removeprefix("INCIDENT#"), float(item["due_at"]["N"]))
                          for item in page.get("Items", [])]
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
        return sorted(found, key=lambda due: (due.due_at, due.incident_id))

    def backfill_due_shards(self) -> int:
        """Give every incident item the old code left with ``due_pk`` (and no ``due_shard``) its
        shard, so the sharded index lists it: until then no sweep pages its next step. A one-off
        scan between the two deploys the README describes; how many items it changed."""
        changed, start = 0, None
        while True:
            page = self._call("scan", TableName=self.table,
                              FilterExpression="begins_with(pk, :p) AND attribute_exists(due_at) "
                                               "AND attribute_not_exists(due_shard)",
                              ExpressionAttributeValues={":p": _s("INCIDENT#")},
                              **({"ExclusiveStartKey": start} if start else {}))
            for item in page.get("Items", []):
                incident_id = item["pk"]["S"].removeprefix("INCIDENT#")
                # PutItem (granted to the functions; UpdateItem is not), unless written meanwhile
                shard = {"due_shard": _n(due_shard(incident_id, self.due_shards))}
                try:
                    self._call("put_item", TableName=self.table, Item=item | shard,
                               ConditionExpression="attribute_not_exists(due_shard) AND "
                                                   + ("version = :v" if "version" in item else "attribute_exists(pk)"),
                               **({"ExpressionAttributeValues": {":v": item["version"]}} if "version" in item else {}))
                    changed += 1
                except _ConditionFailed:  # saved by the new code meanwhile, or no longer due
                    pass
            start = page.get("LastEvaluatedKey")
            if not start:
                return changed

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

    def _incident_item(self, incident: Incident, apart: int = 0) -> dict[str, Any]:
        """The record of ``incident``, whose ``count`` includes ``apart`` repeats its counter item holds."""
        doc = incident.model_copy(update={"count": incident.count - apart}) if apart else incident
        item = {"pk": _s(f"INCIDENT#{incident.id}"), "key": _s(incident.key),
                "status": _s(incident.status.value), "version": _n(incident.version),
                "opened_at": _s(incident.opened_at.isoformat()),
                "timeline_count": _n(incident.timeline_count),
                "docz": {"B": deflate_doc(doc.model_dump_json().encode())}}
        due = _due_at(incident)
        if due is not None:
            item |= {"due_shard": _n(due_shard(incident.id, self.due_shards)), "due_at": _n(due)}
        return item


class _ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any] | None = None) -> None:
        super().__init__("condition failed")
        self.item = item


class _Guarded(Exception):
    """The guarded item's condition failed: a real conflict."""


class _Interrupted(TransientError):
    """A transaction wrote nothing for a passing reason: worth another attempt."""


class _TransactionCancelled(Exception):
    def __init__(self, reasons: list[str], items: list[dict[str, Any] | None] | None = None) -> None:
        super().__init__(",".join(reasons))
        self.reasons = reasons
        self.items = items or []


def _incident(item: dict[str, Any], counter: dict[str, Any] | None = None) -> Incident:
    """An incident item as the incident, with the repeats its counter item holds (and those earlier
    code counted on the item itself, folded by its next write)."""
    doc = inflate_doc(item["docz"]["B"]) if "docz" in item else item["doc"]["S"]
    incident = Incident.model_validate_json(doc)
    if "repeats" in item:
        incident = bounds.with_repeats(incident, int(item["version"]["N"]), int(item["repeats"]["N"]),
                                       item.get("repeat_seen", {}).get("S"))
    counter = counter or {}
    apart = int(counter.get("repeats", {}).get("N", 0))
    guard = int(counter["repeat_sev"]["N"]) if "repeat_sev" in counter else None
    if apart:
        incident = bounds.with_repeats(incident, incident.version, apart, counter.get("repeat_seen", {}).get("S"))
    incident._beside = (apart, guard)
    incident._floor_read = bounds.repeat_floor(incident) if guard is None else None
    incident._due_read = int(item["due_at"]["N"]) if "due_at" in item else None
    return incident


@functools.cache
def doc_dictionary() -> bytes:
    zdict = DOC_DICTIONARY.read_bytes()
    if zlib.adler32(zdict) != DOC_DICTIONARY_ID:  # an edited file would make every stored doc unreadable
        raise StoreError(f"{DOC_DICTIONARY.name} is not the dictionary the stored incidents were deflated with")
    return zdict


def deflate_doc(doc: bytes) -> bytes:
    deflater = zlib.compressobj(DOC_COMPRESSION, zdict=doc_dictionary())
    return deflater.compress(doc) + deflater.flush()


def inflate_doc(data: bytes) -> bytes:
    """A stored doc: deflated against ``DOC_DICTIONARY`` (the header's FDICT flag and dictionary id
    say so), or, written before it, without a dictionary."""
    if len(data) < 6 or not data[1] & 0x20:
        return zlib.decompress(data)
    if int.from_bytes(data[2:6], "big") != DOC_DICTIONARY_ID:
        raise StoreError("an incident doc deflated with an unknown dictionary")
    inflater = zlib.decompressobj(zdict=doc_dictionary())
    return inflater.decompress(data) + inflater.flush()


def _due_at(incident: Incident) -> int | None:
    """The due time the index holds for ``incident``: its ``next_action_at`` in whole seconds, rounded
    down (the sweep runs each minute, a second early is harmless), or the one it held as read when
    that is at most ``DUE_SLACK`` earlier (never later: no step waits for it)."""
    if incident.next_action_at is None:
        return None
    due, held = int(incident.next_action_at.timestamp()), incident._due_read
    return held if held is not None and held <= due <= held + DUE_SLACK else due


def _counter_pk(incident_id: str) -> str:
    return f"REPEATS#{incident_id}"


def due_shard(incident_id: str, shards: int) -> int:
    """The ``due`` index partition of an incident: stable across processes (unlike ``hash``)."""
    return zlib.crc32(incident_id.encode("utf-8")) % shards


def _entry_pk(incident_id: str, seq: int) -> str:
    return f"TL#{incident_id}#{seq:09d}"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}
