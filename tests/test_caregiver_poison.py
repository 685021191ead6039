"""One message no database can hold must not stop ingest for every device.

Ingest holds a batch the database refuses (a storage fault: the broker keeps it, it is tried
again) and puts every later batch behind it, so that nothing is stored out of order. A
message whose own data the database refuses (a sequence number beyond PostgreSQL's bigint)
would be refused on every try: before, on PostgreSQL it held every device's falls behind it
until the service was restarted, and again after (the broker delivers it again). Such numbers
are now bad input, refused when the message is decoded; and a message that the database
refuses for its data when stored alone is let go (logged, counted as rejected) instead of
held. Both engines; real databases, real Mosquitto for the receipts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from caregiver.storage.faults import StorageFault
from core.protocol.messages import INT64_MAX, EventMessage, InvalidMessage
from core.protocol.payloads import decode_as
from tests.test_caregiver_ingest_batch import _event, _id
from tests.test_caregiver_ingest_failed_handling import _receipted
from tools.broker import Mosquitto

OTHER = "treadmill-2"


def test_a_sequence_beyond_a_database_s_integers_is_bad_input() -> None:
    _, largest = _event(INT64_MAX)
    assert decode_as(EventMessage, largest).seq == INT64_MAX
    _, beyond = _event(INT64_MAX + 1)
    with pytest.raises(InvalidMessage, match=r"<= 9223372036854775807 - at `\$\.seq`"):
        decode_as(EventMessage, beyond)


def test_an_event_no_database_holds_does_not_stop_the_others(
    tmp_path: Path, caregiver_db: str, mosquitto: Mosquitto
) -> None:
    """Before: on PostgreSQL the batch failed as a storage fault ("bigint out of range"),
    was held, and every later batch waited behind it for as long as the service ran."""
    with _receipted(tmp_path, caregiver_db, mosquitto) as (service, _):
        ingestor = service.ingestor
        bad, good = _event(INT64_MAX + 1, "fall"), _event(1, "fall", device=OTHER)
        assert ingestor.handle_batch([bad, good])
        assert ingestor.storage_fault is None and ingestor.held == 0
        assert [e.id for e in service.store.events_for(OTHER)] == [_id(good)]
        assert ingestor.rejected == 1 and ingestor.events_stored == 1


def test_a_message_whose_data_the_database_refuses_alone_is_let_go(
    tmp_path: Path, caregiver_db: str, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored alone (the held messages' retry), a message the database refuses for its data
    is let go and counted, so the messages behind it are stored; a fault of the database
    itself still holds it (handle answers False: not acknowledged)."""
    with _receipted(tmp_path, caregiver_db, mosquitto) as (service, _):
        ingestor = service.ingestor
        poisoned, next_one = _event(1, "fall"), _event(1, "fall", device=OTHER)
        real = service.alerting.on_event
        postgres = caregiver_db.startswith("postgresql")

        def refusing(tx: Any, device_id: str, event: EventMessage) -> None:
            real(tx, device_id, event)
            if event.id == _id(poisoned):  # the real database refuses a value
                if postgres:
                    tx._db.execute("SELECT CAST('many' AS integer)")  # SQLSTATE 22P02
                else:
                    tx._db.execute("SELECT ?", (2**64,))  # sqlite3: OverflowError

        monkeypatch.setattr(service.alerting, "on_event", refusing)
        assert ingestor.handle(*poisoned)
        assert ingestor.storage_fault is None
        assert ingestor.rejected == 1 and ingestor.events_stored == 0
        assert ingestor.handle(*next_one)
        assert [e.id for e in service.store.events_for(OTHER)] == [_id(next_one)]
        assert service.store.events_for("treadmill-1") == []

        def failing(tx: Any, device_id: str, event: EventMessage) -> None:
            raise StorageFault("caregiver database: disk I/O error")

        monkeypatch.setattr(service.alerting, "on_event", failing)
        assert not ingestor.handle(*_event(2, "fall"))
        assert ingestor.storage_fault is not None
