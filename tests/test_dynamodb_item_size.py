"""Incident items stay within one 1 KB write unit: their doc is deflated against a preset dictionary.

DynamoDB bills a write by the item's size in 1 KB blocks (twice in a transaction). A typical
incident doc is 3–9 KB of JSON, ~1.2–1.8 KB deflated on its own; against the dictionary
(``chalicelib/store/incident_doc.zdict``) a few hundred bytes. Items written before it (docz
deflated without a dictionary, or ``doc`` as plain JSON) still read.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from chalicelib.errors import StoreError
from chalicelib.handlers import on_event
from chalicelib.store import dynamodb
from chalicelib.store.dynamodb import DOC_DICTIONARY, DOC_DICTIONARY_ID, DynamoStore, deflate_doc, inflate_doc
from tests.conftest import FakeClock, RecordingChannel, installed, make_deps, sns_event

ALARM = "sns-cloudwatch-alarm-metric.json"


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it (names plus values; the attributes here are S, N and B)."""
    def value(v: dict[str, Any]) -> int:
        (kind, inner), = v.items()
        return len(inner) if kind == "B" else len(inner.encode()) if kind == "S" else len(inner) // 2 + 1
    return sum(len(name) + value(v) for name, v in item.items())


def incident_item(store: DynamoStore, incident_id: str) -> dict[str, Any]:
    item: dict[str, Any] = store.client.get_item(TableName=store.table, Key={"pk": {"S": f"INCIDENT#{incident_id}"}},
                                                 ConsistentRead=True)["Item"]
    return item


def test_an_escalated_acknowledged_incident_is_one_write_unit(dynamo_store: DynamoStore, clock: FakeClock) -> None:
    for deps in installed(make_deps(dynamo_store, clock, RecordingChannel())):
        [opened] = on_event(sns_event(ALARM, message_id="m-0"), "sns", deps)["outcomes"]
        incident_id = opened["incident_id"]
        for n in range(1, 4):
            clock.advance(minutes=1)
            on_event(sns_event(ALARM, message_id=f"m-{n}"), "sns", deps)
        incident = deps.store.get(incident_id)
        plain = len(zlib.compress(incident.model_dump_json().encode(), dynamodb.DOC_COMPRESSION))
        size = item_bytes(incident_item(dynamo_store, incident_id))
        assert plain > 1024 > size, (plain, size)  # without the dictionary it would be two units
        clock.advance(minutes=15)  # longer than the flapping window: the recovery resolves at once
        [resolved] = on_event(sns_event(ALARM, message_id="m-ok", NewStateValue="OK", OldStateValue="ALARM"),
                              "sns", deps)["outcomes"]
        assert resolved["reason"] == "RESOLVED"
        assert item_bytes(incident_item(dynamo_store, incident_id)) < 1024


def test_a_doc_deflated_before_the_dictionary_still_reads(dynamo_store: DynamoStore, clock: FakeClock) -> None:
    for deps in installed(make_deps(dynamo_store, clock, RecordingChannel())):
        [opened] = on_event(sns_event(ALARM, message_id="m-0"), "sns", deps)["outcomes"]
        item = incident_item(dynamo_store, opened["incident_id"])
        doc = inflate_doc(item["docz"]["B"])
        dynamo_store.client.put_item(TableName=dynamo_store.table, Item=item | {"docz": {"B": zlib.compress(doc)}})
        assert deps.store.get(opened["incident_id"]).model_dump_json().encode() == doc


def test_the_dictionary_is_the_one_stored_docs_name() -> None:
    # Every stored doc names the dictionary by checksum: editing the file would make them unreadable.
    assert zlib.adler32(DOC_DICTIONARY.read_bytes()) == DOC_DICTIONARY_ID
    data = deflate_doc(b'{"id":"inc-1"}')
    assert data[1] & 0x20 and int.from_bytes(data[2:6], "big") == DOC_DICTIONARY_ID
    assert inflate_doc(data) == b'{"id":"inc-1"}'


def test_a_doc_deflated_with_another_dictionary_is_a_store_error() -> None:
    deflater = zlib.compressobj(6, zdict=b"some other dictionary")
    with pytest.raises(StoreError, match="unknown dictionary"):
        inflate_doc(deflater.compress(b"{}") + deflater.flush())
