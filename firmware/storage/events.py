"""The event log: every safety event the device decided, in commit order, each once.

Only the event worker thread writes here — never the real-time thread. With a
broker configured the outbox stores events instead (:meth:`Outbox.enqueue_event
<firmware.storage.outbox.Outbox.enqueue_event>`), in the same table, so
:class:`EventStore` reads them either way.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from core.protocol.events import Event
from firmware.storage.database import Database, as_database


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    """Per-database sequence number: strictly increasing in commit order."""
    event: Event


def insert_event(conn: sqlite3.Connection, event: Event) -> int:
    """Insert ``event`` inside the caller's transaction and return its ``seq``.

    Shared by :class:`EventStore` and the MQTT outbox, which must store the
    event and queue it in one transaction (an event is never stored without
    being queued, nor queued without being stored). Idempotent by event id.
    """
    conn.execute(
        "INSERT OR IGNORE INTO events (id, device_id, type, severity, wall_time, body)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            event.id,
            event.device_id,
            event.type.value,
            event.severity.value,
            event.wall_time,
            event.to_json(),
        ),
    )
    row = conn.execute("SELECT seq FROM events WHERE id = ?", (event.id,)).fetchone()
    return int(row[0])


def probe_write(conn: sqlite3.Connection) -> None:
    """Write a row and roll it back: proves the file takes writes, and leaves no trace."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT INTO events (id, device_id, type, severity, wall_time, body)"
            " VALUES ('doctor-probe', '', 'doctor', 'info', '', '{}')"
        )
    finally:
        conn.execute("ROLLBACK")


class EventStore:
    """Append-only event log. Thread-safe; writes are committed before returning.

    On a path it opens that file; the courier passes its
    :class:`~firmware.storage.fallback.FallbackDatabase` instead.
    """

    def __init__(self, database: str | Path | Database) -> None:
        self._db, self._owned = as_database(database)

    def append(self, event: Event) -> int:
        """Commit ``event`` and return its sequence number (idempotent by id)."""
        return self._db.write(lambda conn: insert_event(conn, event), key=event.id)

    def events(self, device_id: str | None = None, limit: int | None = None) -> list[StoredEvent]:
        """Events in commit order (the newest ``limit`` if given)."""
        query = "SELECT seq, body FROM events"
        params: list[object] = []
        if device_id is not None:
            query += " WHERE device_id = ?"
            params.append(device_id)
        query += " ORDER BY seq DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        rows = self._db.read(lambda conn: conn.execute(query, params).fetchall())
        return [StoredEvent(int(seq), Event.from_json(body)) for seq, body in reversed(rows)]

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file this store opened (a database passed in belongs to its owner)."""
        if self._owned:
            self._db.close()
