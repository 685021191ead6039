"""The local SQLite event store.

One database file per device holds the event log (and, from the MQTT issue
on, the outbox): WAL mode so readers never block the writer, and
``synchronous=FULL`` so a committed event survives a power cut. Only the
event worker thread writes here — never the real-time thread.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from core.protocol.events import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL,
    type TEXT NOT NULL,
    severity TEXT NOT NULL,
    wall_time TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_device_seq ON events (device_id, seq);
"""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    """Per-database sequence number: strictly increasing in commit order."""
    event: Event


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) the database with the durability settings we rely on."""
    path = Path(path)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(SCHEMA)
    return conn


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


class EventStore:
    """Append-only event log. Thread-safe; writes are committed before returning."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = connect(path)
        self._lock = threading.Lock()

    def append(self, event: Event) -> int:
        """Commit ``event`` durably and return its sequence number (idempotent by id)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                seq = insert_event(self._conn, event)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return seq

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
        with self._lock:
            rows = self._conn.execute(query, params).fetchall()
        return [StoredEvent(int(seq), Event.from_json(body)) for seq, body in reversed(rows)]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
