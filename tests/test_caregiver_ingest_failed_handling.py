"""A message whose handling fails in a batch leaves nothing of itself behind.

A batch inserts its events up front, then handles its messages one by one (incident, alert,
receipt). If one message's handling raises (a bug in the alerting, say), its event must not
stay stored without its alert: the device would resend it, the service would take the resend
for a duplicate, receipt it, and the fall would never page anyone. So that message is undone
whole (no row, no alert, no receipt: the device keeps it and sends it again), and the batch's
other messages are stored, alerted and receipted as if it had not been there. Both engines;
real database, real Mosquitto for the receipts.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from caregiver.config import CaregiverConfig, CaregiverMqttConfig, ServerConfig
from caregiver.service import CaregiverService
from caregiver.storage import NewEvent
from caregiver.storage.store import MessageUndone, Store
from core.protocol.messages import EventMessage
from tests.mqtt_helpers import WAIT, Subscriber, subscriber
from tests.test_caregiver_ingest_batch import DEVICE, _event, _id
from tools.broker import Mosquitto

MARKER = "receipt marker"


@contextmanager
def _receipted(
    tmp_path: Path, database: str, mosquitto: Mosquitto
) -> Iterator[tuple[CaregiverService, Subscriber]]:
    """A service on ``database`` whose receipts go through the broker to a subscriber."""
    config = CaregiverConfig(
        server=ServerConfig(host="127.0.0.1", port=0, database=database),
        mqtt=CaregiverMqttConfig(
            host=mosquitto.host, port=mosquitto.port, client_id="failing", session_expiry_s=0
        ),
    )
    service = CaregiverService(config)
    try:
        with subscriber(mosquitto, ["retroguard/+/receipt"]) as sub:
            service.ingestor.start()
            assert service.ingestor.connected.wait(WAIT)
            yield service, sub
    finally:
        service.ingestor.stop()
        service.store.close()


def _receipts(service: CaregiverService, sub: Subscriber) -> list[list[str]]:
    """Every receipt sent so far: a marker event's receipt, sent after all of them on the one
    connection, says that they have all arrived (the markers' ids are left out; batches
    synced together share a receipt, so the marker's may name earlier events too)."""
    marker = _event(99, reason=MARKER)
    assert service.ingestor.handle_batch([marker])
    assert sub.wait(lambda: any(_id(marker) in m.payload.decode() for m in sub.messages))
    ids = [list(json.loads(m.payload)["ids"]) for m in sub.on("/receipt")]
    assert ids[-1][-1] == _id(marker)
    markers = {e.id for e in service.store.events_for(DEVICE) if e.reason == MARKER}
    left = ([i for i in receipt if i not in markers] for receipt in ids)
    return [receipt for receipt in left if receipt]


def _break_alerting_for(
    service: CaregiverService, monkeypatch: pytest.MonkeyPatch, broken: set[str]
) -> None:
    """The alerting raises (a bug) for the events in ``broken``, after writing its incident and
    alert: the message's handling fails half done."""
    real = service.alerting.on_event

    def buggy(tx: object, device_id: str, event: EventMessage) -> None:
        real(tx, device_id, event)  # type: ignore[arg-type]
        if event.id in broken:
            broken.discard(event.id)
            raise KeyError("a bug in the alerting")

    monkeypatch.setattr(service.alerting, "on_event", buggy)


def test_a_message_whose_handling_fails_is_undone_whole_and_stored_when_resent(
    tmp_path: Path, caregiver_db: str, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _receipted(tmp_path, caregiver_db, mosquitto) as (service, sub):
        store, ingestor = service.store, service.ingestor
        first, middle, last = _event(1, "fall"), _event(2, "fall"), _event(3, "fall")
        _break_alerting_for(service, monkeypatch, {_id(middle)})

        assert ingestor.handle_batch([first, middle, last])

        assert {e.id for e in store.events_for(DEVICE)} == {_id(first), _id(last)}
        assert sorted(a.event_id or "" for a in store.alerts(DEVICE)) == sorted(
            [_id(first), _id(last)]
        )
        assert {i.id for i in store.incidents_for(DEVICE)} == {_id(first), _id(last)}
        device = store.device(DEVICE)
        assert device is not None and device["last_event"] is not None
        assert device["last_event"]["id"] == _id(last)
        assert ingestor.rejected == 1 and ingestor.events_stored == 2
        assert _receipts(service, sub) == [[_id(first), _id(last)]]

        # the device never got a receipt for it: it sends it again, the alerting now works
        assert ingestor.handle_batch([middle])

        assert store.event(_id(middle)) is not None
        assert [a.event_id for a in store.alerts(DEVICE)].count(_id(middle)) == 1
        assert store.incident(_id(middle)) is not None
        assert ingestor.events_stored == 3 + 1  # and the first marker
        assert _receipts(service, sub)[1:] == [[_id(middle)]]


def test_a_copy_later_in_the_batch_of_a_failed_message_is_stored_in_full(
    tmp_path: Path, caregiver_db: str, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch inserted the event once, up front, for both copies: when the first copy's
    handling is undone, the second is not taken for a duplicate of a row no longer there."""
    with _receipted(tmp_path, caregiver_db, mosquitto) as (service, sub):
        store = service.store
        fall, other = _event(1, "fall"), _event(2, "fall")
        _break_alerting_for(service, monkeypatch, {_id(fall)})  # its first copy only

        assert service.ingestor.handle_batch([fall, other, fall])

        assert {e.id for e in store.events_for(DEVICE)} == {_id(fall), _id(other)}
        assert sorted(a.event_id or "" for a in store.alerts(DEVICE)) == sorted(
            [_id(fall), _id(other)]
        )
        assert service.ingestor.rejected == 1 and service.ingestor.duplicates == 0
        assert _receipts(service, sub) == [[_id(other), _id(fall)]]


def test_a_message_stored_alone_whose_handling_fails_is_not_stored_either(
    tmp_path: Path, caregiver_db: str, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The held messages' retry stores one message at a time (not a batch): there the
    message's one transaction is its undo."""
    with _receipted(tmp_path, caregiver_db, mosquitto) as (service, sub):
        fall = _event(1, "fall")
        _break_alerting_for(service, monkeypatch, {_id(fall)})

        assert service.ingestor.handle(*fall)
        assert service.store.event(_id(fall)) is None and service.store.alerts(DEVICE) == []
        assert service.ingestor.handle(*fall)  # sent again, the alerting works
        assert [a.event_id for a in service.store.alerts(DEVICE)] == [_id(fall)]
        assert _receipts(service, sub) == [[_id(fall)]]


def test_a_message_is_undone_whole_even_if_its_failed_transaction_is_let_go(
    caregiver_db: str,
) -> None:
    """A transaction inside a batch's message has no savepoint of its own (the message's is
    its): one that raised undoes the whole message even when the caller went on, and says so,
    rather than keep half of it. The batch's other messages commit."""
    store = Store(caregiver_db)
    try:
        with store.batch(["kept", "undone"], 1.0):
            with store.message(), store.transaction() as tx:
                tx.set_state("kept", "ARMED", "armed", "2026-12-02T08:00:00Z", 1.0)
            with pytest.raises(MessageUndone), store.message():
                with store.transaction() as tx:
                    tx.set_state("undone", "ARMED", "armed", "2026-12-02T08:00:00Z", 1.0)
                with contextlib.suppress(KeyError), store.transaction() as tx:
                    tx.set_state("undone", "TRIPPED", "fall", "2026-12-02T08:00:01Z", 1.0)
                    raise KeyError("a bug, let go")
        states = {d["device_id"]: d["state"] for d in store.devices()}
        assert states["kept"] == "ARMED"
        assert states["undone"] != "ARMED" and states["undone"] != "TRIPPED"
    finally:
        store.close()


def test_a_batch_without_savepoints_whose_message_failed_never_commits(
    caregiver_db: str,
) -> None:
    """Without savepoints (ingest's first attempt at a batch) a failed message cannot be undone
    alone: the batch refuses to commit even if its caller went on, and keeps nothing."""
    store = Store(caregiver_db)
    try:
        with pytest.raises(MessageUndone), store.batch(["kept", "failed"], 1.0, savepoints=False):
            with store.message(), store.transaction() as tx:
                tx.set_state("kept", "ARMED", "armed", "2026-12-02T08:00:00Z", 1.0)
            with contextlib.suppress(KeyError), store.message():
                with store.transaction() as tx:
                    tx.set_state("failed", "TRIPPED", "fall", "2026-12-02T08:00:01Z", 1.0)
                raise KeyError("a bug, let go")
        assert store.devices() == []
    finally:
        store.close()


def test_a_message_failing_after_its_receipt_was_queued_sends_no_receipt(
    tmp_path: Path, caregiver_db: str, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handling fails after the event's receipt was queued for the batch's commit (here in
    announcing it): the receipt goes with the rest of the message, or the device would forget
    an event the service does not have."""
    import caregiver.ingest as ingest

    with _receipted(tmp_path, caregiver_db, mosquitto) as (service, sub):
        kept, failing = _event(1, "fall"), _event(2, "fall")
        real = ingest._as_stored

        def buggy(event: NewEvent, now: float) -> object:
            if event.id == _id(failing):
                raise KeyError("a bug after the receipt was queued")
            return real(event, now)

        monkeypatch.setattr(ingest, "_as_stored", buggy)
        assert service.ingestor.handle_batch([kept, failing])
        monkeypatch.setattr(ingest, "_as_stored", real)

        assert service.store.event(_id(failing)) is None
        assert _receipts(service, sub) == [[_id(kept)]]


def test_when_the_last_message_fails_the_device_s_latest_event_is_the_one_before(
    tmp_path: Path, caregiver_db: str, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _receipted(tmp_path, caregiver_db, mosquitto) as (service, _sub):
        first, last = _event(1, "fall"), _event(2, "fall")
        _break_alerting_for(service, monkeypatch, {_id(last)})

        assert service.ingestor.handle_batch([first, last])

        device = service.store.device(DEVICE)
        assert device is not None and device["last_event"] is not None
        assert device["last_event"]["id"] == _id(first)


@pytest.mark.parametrize("alone", [False, True], ids=["batch", "alone"])
def test_an_os_error_outside_the_database_undoes_its_message_not_the_batch(
    tmp_path: Path,
    caregiver_db: str,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    alone: bool,
) -> None:
    """An OSError from code that is not the database's (a notifier's pipe gone, a template
    file unreadable) is a bug of that message's handling, not a database fault: the message
    is undone and counted as rejected, the batch's others are stored and receipted, and
    nothing is held (before: the whole batch was taken for a storage failure and held, and
    tried again for as long as the error lasted)."""
    with _receipted(tmp_path, caregiver_db, mosquitto) as (service, sub):
        store, ingestor = service.store, service.ingestor
        first, middle, last = _event(1, "fall"), _event(2, "fall"), _event(3, "fall")
        real = service.alerting.on_event

        def broken_pipe(tx: object, device_id: str, event: EventMessage) -> None:
            real(tx, device_id, event)  # type: ignore[arg-type]
            if event.id == _id(middle):
                raise BrokenPipeError(32, "the notifier's pipe is gone")

        monkeypatch.setattr(service.alerting, "on_event", broken_pipe)
        if alone:
            assert all(ingestor.handle(*message) for message in (first, middle, last))
        else:
            assert ingestor.handle_batch([first, middle, last])

        assert ingestor.storage_fault is None and ingestor.held == 0
        assert {e.id for e in store.events_for(DEVICE)} == {_id(first), _id(last)}
        assert sorted(a.event_id or "" for a in store.alerts(DEVICE)) == sorted(
            [_id(first), _id(last)]
        )
        assert ingestor.rejected == 1 and ingestor.events_stored == 2
        receipted = [i for ids in _receipts(service, sub) for i in ids]
        assert receipted == [_id(first), _id(last)]
