"""A device database that opens, reads and writes, yet fails ``PRAGMA quick_check``, is
moved aside and its queue carried into a new file (real SQLite files).

The damaged files of :mod:`tests.storage_support` all make SQLite raise on the way in (the
opener, or the check itself); hand mutation testing found that a file the check *reports*
on (a finding, no exception) was never tried: the check's verdict could be ignored and every
test passed, so a damaged file would have been written on (a wrong free-page count hands a
page out twice, and an alert written to it is overwritten by the next).
"""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

from core.protocol.topics import Topics
from firmware.storage.fallback import FallbackDatabase
from firmware.storage.outbox import Outbox, OutboxRow
from tests.storage_support import alert

FREELIST_COUNT = 36
"""Offset in the database header of the number of free pages (big-endian, 4 bytes)."""


def _with_a_wrong_free_page_count(path: Path) -> tuple[bytes, list[OutboxRow]]:
    """A device database holding three queued alerts whose header claims free pages it does
    not have (SQLite opens, reads and writes it; ``quick_check`` reports it): its bytes, and
    its queue as it was before the damage."""
    outbox = Outbox(path, Topics("retroguard", "tm-1"))
    for i in range(3):
        outbox.enqueue_event(alert("tm-1", t=float(i)))
    queued = outbox.fetch_after(0, 10)
    outbox.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the file, the log empty
    conn.close()
    data = bytearray(path.read_bytes())
    data[FREELIST_COUNT : FREELIST_COUNT + 4] = struct.pack(">I", 7)
    path.write_bytes(bytes(data))
    return bytes(data), queued


def test_a_file_the_check_reports_on_is_moved_aside_with_its_queue_carried(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    damaged, before = _with_a_wrong_free_page_count(path)

    db = FallbackDatabase(path, stamp=lambda: "20261201T210003Z")
    found = db.open()
    try:
        assert found.fault is None and found.moved is not None
        assert "quick_check" in found.moved.why and "freelist" in found.moved.why
        assert found.moved.moved_to.read_bytes() == damaged  # kept as it was, for inspection
        assert found.moved.carried == 3
        after = Outbox(db, Topics("retroguard", "tm-1")).fetch_after(0, 10)
        assert [(r.id, r.payload) for r in after] == [(r.id, r.payload) for r in before]
        assert db.read(lambda c: c.execute("PRAGMA quick_check").fetchone()[0]) == "ok"
    finally:
        db.close()
