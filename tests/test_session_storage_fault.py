"""Session records survive a storage fault: what memory keeps while the file refuses writes
reaches the file whole, a session a power cut left running is closed once though the next
start found the file unwritable, and a trip is in the session's stored figures as soon as
its event is.

Real SQLite files (the disk made read-only with SQLite's own ``query_only``:
tests/storage_support.py), the real courier on a thread with a real Mosquitto, the runner on
a simulated rig.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import msgspec
import pytest

from core.protocol.messages import SessionRecord
from core.protocol.walker import Walker
from firmware.session.record import SessionArchive
from firmware.storage.fallback import FallbackDatabase
from firmware.storage.sessions import load_sessions
from tests.app_support import close_rigs
from tests.caregiver_support import session_record
from tests.storage_support import FillableDisk
from tests.test_storage_faults import MonitorProcess, monitors  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

UTC = dt.UTC
TOPIC = "retroguard/tm-1/session"
DAY = dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def ended(device_id: str = "tm-1") -> SessionRecord:
    return session_record(device_id, DAY, backward_min=12, longest_min=10)


def running(record: SessionRecord) -> SessionRecord:
    return msgspec.structs.replace(record, status="running", ended_wall=None)


def rows(path: Path, query: str, *params: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def on_file(path: Path) -> FallbackDatabase:
    db = FallbackDatabase(path)
    assert db.open().fault is None
    return db


# ------------------------------------------------------------ memory and back


def test_a_session_stored_in_memory_keeps_its_walker_and_falls_on_the_file(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """The merge copied the columns of the first release only: a session stored in memory came
    to the file as the default walker's with no falls, and every per-walker count (the week's
    progress, ``retroguard sessions --walker``) missed it."""
    path = tmp_path / "device.db"
    db = on_file(path)
    disk.go_read_only()
    db.probe()
    assert db.in_memory
    record = msgspec.structs.replace(
        session_record("tm-1", DAY, backward_min=12, longest_min=10, trips=2, stumbles=1),
        walker=Walker("ann", "Ann"),
        falls=1,
        no_recovery=1,
    )
    archive = SessionArchive(db)
    assert archive.save(record, final=True)
    disk.free()
    assert db.recover(now=True)
    archive.close()
    db.close()
    assert rows(path, "SELECT walker, falls, no_recovery FROM sessions") == [("ann", 1, 1)]
    assert [s.record.id for s in load_sessions(path, walker="ann")] == [record.id]
