"""A damaged file's queue that memory could not take, on a disk that refused even the mark
saying it is still to be carried: it reaches the file once the disk takes writes (real SQLite
files; the disk made read-only and freed by :class:`~tests.storage_support.FillableDisk`).

Hand mutation testing of :mod:`firmware.storage.fallback` found the salvaged queue's own
route into the file untested: every test had the ``.uncarried`` mark on disk, which carries
the queue by a second route (:func:`~firmware.storage.damage.carry_uncarried`), so both
dropping the queue when memory could not take it and skipping its carry at recovery passed.
A disk remounted read-only refuses the mark too (:func:`~firmware.storage.damage._mark_uncarried`
logs it); here the mark is removed as such a disk would have left it: never written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.protocol.topics import Topics
from firmware.storage.damage import UNCARRIED
from firmware.storage.database import connect
from firmware.storage.fallback import FallbackDatabase
from firmware.storage.outbox import Outbox
from tests.storage_support import FillableDisk, alert, break_the_sessions_table

TOPICS = Topics("retroguard", "tm-1")


def _queued_ids(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [str(r[0]) for r in conn.execute("SELECT message_id FROM outbox ORDER BY id")]
    finally:
        conn.close()


def test_a_salvaged_queue_memory_could_not_take_reaches_the_file_without_its_mark(
    tmp_path: Path, disk: FillableDisk
) -> None:
    path = tmp_path / "events.db"
    outbox = Outbox(path, TOPICS, max_rows=100, receipts=True)
    alerts = [alert(t=float(i)) for i in range(5)]  # each bigger than a page
    for event in alerts:
        outbox.enqueue_event(event)
    outbox.close()
    break_the_sessions_table(path)
    disk.go_read_only()
    empty = connect(":memory:")
    schema_bytes = int(empty.execute("PRAGMA page_count").fetchone()[0]) * 4096
    empty.close()

    db = FallbackDatabase(path, memory_limit_bytes=schema_bytes + 4096)  # not room for them
    try:
        found = db.open()
        assert found.moved is not None and db.in_memory
        assert Outbox(db, TOPICS).depth() < len(alerts)  # memory could not take the queue
        Path(f"{found.moved.moved_to}{UNCARRIED}").unlink()  # as a read-only disk leaves it
        disk.free()
        assert db.recover(now=True)
    finally:
        db.close()
    assert _queued_ids(path) == [e.id for e in alerts]
