"""One contract, two stores: SQLite (embedded) and DynamoDB (moto)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.errors import ConflictError, StoreError
from chalicelib.models import Incident, IncidentStatus, Severity, SignalKind
from chalicelib.store import Claim, open_store
from tests.conftest import T0


def incident(incident_id: str = "inc-1", key: str = "alarm:a") -> Incident:
    return Incident(id=incident_id, key=key, kind=SignalKind.ALARM, title="a", severity=Severity.SEV2,
                    owner="engineering-oncall", playbook=None, rule="default", opened_at=T0, last_seen=T0)


def test_claim_is_exclusive_until_released(any_store: Any) -> None:
    assert any_store.claim_delivery("d-1", T0, 300) is Claim.CLAIMED
    assert any_store.claim_delivery("d-1", T0, 300) is Claim.IN_PROGRESS
    any_store.release_delivery("d-1")
    assert any_store.claim_delivery("d-1", T0, 300) is Claim.CLAIMED


def test_completed_delivery_stays_a_duplicate_for_the_keep_window(any_store: Any) -> None:
    assert any_store.claim_delivery("d-2", T0, 300) is Claim.CLAIMED
    any_store.complete_delivery("d-2", {"reason": "OPENED"}, T0, keep_days=14)
    assert any_store.claim_delivery("d-2", T0 + timedelta(days=13), 300) is Claim.DONE
    assert any_store.get_delivery("d-2") == {"status": "done", "outcome": {"reason": "OPENED"}}
    any_store.release_delivery("d-2")  # a completed record is not a lease: stays
    assert any_store.claim_delivery("d-2", T0 + timedelta(hours=1), 300) is Claim.DONE
    assert any_store.claim_delivery("d-2", T0 + timedelta(days=15), 300) is Claim.CLAIMED  # forgotten


def test_abandoned_lease_can_be_taken_after_it_expires(any_store: Any) -> None:
    assert any_store.claim_delivery("d-3", T0, 60) is Claim.CLAIMED
    assert any_store.claim_delivery("d-3", T0 + timedelta(seconds=59), 60) is Claim.IN_PROGRESS
    assert any_store.claim_delivery("d-3", T0 + timedelta(seconds=61), 60) is Claim.CLAIMED


def test_create_refuses_a_second_open_incident_for_a_key(any_store: Any) -> None:
    first = any_store.create(incident("inc-1"))
    assert first is not None and first.version == 1
    assert any_store.create(incident("inc-2")) is None
    assert any_store.get_open("alarm:a").id == "inc-1"
    assert any_store.get("inc-2") is None


def test_save_is_optimistic(any_store: Any) -> None:
    stored = any_store.create(incident())
    saved = any_store.save(stored.model_copy(update={"count": 2}))
    assert saved.version == 2 and any_store.get("inc-1").count == 2
    with pytest.raises(ConflictError):
        any_store.save(stored.model_copy(update={"count": 3}))  # stale version 1
    assert any_store.get("inc-1").count == 2


def test_resolving_releases_the_key_for_a_new_incident(any_store: Any) -> None:
    stored = any_store.create(incident())
    resolved = any_store.save(stored.model_copy(update={"status": IncidentStatus.RESOLVED}))
    assert any_store.get_open("alarm:a") is None
    again = any_store.save(resolved.model_copy(update={"count": 5}))  # later edits of a resolved incident
    assert again.version == 3
    second = any_store.create(incident("inc-2"))
    assert second is not None and any_store.get_open("alarm:a").id == "inc-2"
    assert [i.id for i in any_store.list()] == ["inc-1", "inc-2"]


def test_acknowledged_incident_still_holds_its_key(any_store: Any) -> None:
    stored = any_store.create(incident())
    any_store.save(stored.model_copy(update={"status": IncidentStatus.ACKNOWLEDGED}))
    assert any_store.get_open("alarm:a").status is IncidentStatus.ACKNOWLEDGED
    assert any_store.create(incident("inc-2")) is None


def test_open_store_urls(tmp_path: Any) -> None:
    assert type(open_store(f"sqlite:///{tmp_path}/x.db")).__name__ == "SqliteStore"
    assert type(open_store("dynamodb://t", dynamodb_client=object())).__name__ == "DynamoStore"
    with pytest.raises(StoreError, match="RESPONDER_STORE"):
        open_store("redis://x")


def test_documents_are_versioned(any_store: Any) -> None:
    assert any_store.get_doc("actions:x") == (None, 0)
    any_store.put_doc("actions:x", {"n": 1}, 0)
    with pytest.raises(ConflictError):
        any_store.put_doc("actions:x", {"n": 9}, 0)
    any_store.put_doc("actions:x", {"n": 2}, 1)
    with pytest.raises(ConflictError):
        any_store.put_doc("actions:x", {"n": 9}, 1)
    assert any_store.get_doc("actions:x") == ({"n": 2}, 2)
