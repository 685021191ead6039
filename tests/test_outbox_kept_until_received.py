"""The device outbox keeps alerts until a consumer confirms them, and hands the oldest out
first; its writes hold the write lock from their start. On a real SQLite file.

Hand mutation testing of :mod:`firmware.storage.outbox` and
:mod:`firmware.storage.database` found these decision points no test noticed when changed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.protocol.commands import Ack
from core.protocol.events import Event, EventType
from core.protocol.topics import Topics
from firmware.storage.database import FileDatabase
from firmware.storage.outbox import Outbox

DEVICE = "tm-1"
INCIDENT = "c" * 32


def _event(kind: EventType, t: float = 1.0, incident: str | None = INCIDENT, **extra: str) -> Event:
    return Event.now(kind, DEVICE, t, "TRIPPED", kind.value, incident=incident, **extra)


def _closing(incident: str, by: str, via: str) -> Event:
    return _event(EventType.CLOSED, 2.0, incident, by=by, via=via)


def _outbox(tmp_path: Path) -> Outbox:
    return Outbox(FileDatabase(tmp_path / "d.db"), Topics("retroguard", DEVICE), receipts=True)


def test_the_closed_event_of_an_ack_waits_for_a_consumer_s_receipt(tmp_path: Path) -> None:
    """A caregiver's ack closes the incident with a ``closed`` event, which every other
    caregiver must see (or they keep going to a fall already handled): like the events it
    closes, it is kept past the broker's PUBACK until a consumer's receipt names it. Mutant
    that survived: it was queued as an informational row, forgotten at the PUBACK (and
    droppable by the outbox's bound)."""
    outbox = _outbox(tmp_path)
    outbox.enqueue_event(_event(EventType.STUMBLE))
    done = outbox.close_incident(Ack(by="Ann", via="dashboard"), _closing)
    assert done.closed_event is not None
    outbox.settle(r.id for r in outbox.fetch_after(0, 100))  # the broker has both
    waiting = outbox.awaiting_receipt(10)
    assert any(done.closed_event.id in r.payload for r in waiting)
    assert outbox.receipted([done.closed_event.id]) == 1
    outbox.close()


def test_alerts_waiting_for_a_receipt_are_sent_again_oldest_first(tmp_path: Path) -> None:
    """A round of copies has room for ``max_inflight`` rows: the oldest unconfirmed alerts go
    first, so none waits behind newer ones for ever. Mutant that survived: newest first, so
    with more alerts waiting than a round holds the oldest were never sent again."""
    outbox = _outbox(tmp_path)
    alerts = [_event(EventType.FALL, float(i), incident=None) for i in range(5)]
    for alert in alerts:
        outbox.enqueue_event(alert)
    rows = outbox.fetch_after(0, 100)
    outbox.settle(r.id for r in rows)
    assert [r.id for r in outbox.awaiting_receipt(2)] == [rows[0].id, rows[1].id]
    assert outbox.receipted([alerts[0].id]) == 1
    assert [r.id for r in outbox.awaiting_receipt(2)] == [rows[1].id, rows[2].id]
    outbox.close()


def test_a_write_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    """``BEGIN IMMEDIATE``: a writer that reads before it writes (an event checked for a
    repeat, then inserted) holds the write lock from the start, so another writer waits for it
    (the connections' busy timeout) instead of the first failing half-way with
    ``SQLITE_BUSY`` when its snapshot went stale, which the courier would take for a disk fault
    and move everything to memory. Another connection that will not wait (timeout 0) is
    refused at once while the work has only read. Mutant that survived: a deferred ``BEGIN``."""
    db = FileDatabase(tmp_path / "d.db")
    other = sqlite3.connect(tmp_path / "d.db", timeout=0, isolation_level=None)

    def reads_only(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT COUNT(*) FROM events").fetchone()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")

    try:
        db.write(reads_only)
        other.execute("BEGIN IMMEDIATE")  # free again once the work committed
        other.execute("ROLLBACK")
    finally:
        other.close()
        db.close()
