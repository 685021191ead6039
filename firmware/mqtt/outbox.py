"""The persistent MQTT outbox, in the event store's SQLite database.

Why SQLite and not paho's queue: paho keeps unacknowledged QoS 1 messages in
memory only, so a restart or a power cut would lose exactly the fall that
happened while the Wi-Fi was down. Here an event is inserted into ``events``
and queued in ``outbox`` in one ``synchronous=FULL`` transaction, and its
row is deleted only when the broker has acknowledged it (PUBACK).

Bound: ``max_rows``. When an insert takes the outbox over it, the oldest
telemetry goes first, then the oldest informational events (start, stop,
reset). Fall, stumble, no-recovery and fault events are never dropped: the
bound is exceeded (and logged) rather than lose one.

Each thread gets its own connection (WAL lets the publisher read while the
event worker writes); nothing here ever runs on the real-time thread.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from core.protocol import payloads
from core.protocol.events import Event, EventType
from core.protocol.topics import Topics
from firmware.store import connect, insert_event

log = logging.getLogger(__name__)

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('event', 'telemetry')),
    priority INTEGER NOT NULL,
    event_seq INTEGER REFERENCES events (seq),
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    queued_wall TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_priority ON outbox (priority, id);
CREATE TABLE IF NOT EXISTS event_acks (
    event_id TEXT PRIMARY KEY REFERENCES events (id),
    acked_by TEXT NOT NULL,
    wall_time TEXT NOT NULL
);
"""

PRIORITY_TELEMETRY = 0
"""Dropped first when the outbox is full."""
PRIORITY_INFO = 1
"""start / stop / reset: dropped only when no telemetry is left to drop."""
PRIORITY_PROTECTED = 2
"""fall / stumble / no-recovery / fault: never dropped."""

PROTECTED_TYPES = frozenset(
    {EventType.FALL, EventType.STUMBLE, EventType.NO_RECOVERY, EventType.FAULT}
)
ALERT_TYPES = frozenset({EventType.FALL, EventType.STUMBLE, EventType.NO_RECOVERY})
"""Events a caregiver acknowledges."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    payload: str


class Outbox:
    """Queue of messages waiting for a PUBACK, shared by the event worker and the publisher."""

    def __init__(self, path: str | Path, topics: Topics, max_rows: int = 10000) -> None:
        if max_rows < 1:
            raise ValueError("outbox max_rows must be at least 1")
        self.path = Path(path)
        self.topics = topics
        self.max_rows = max_rows
        self.dropped = 0
        """Rows dropped by the bound since this object was made."""
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._conn()  # create the tables now, so a bad path fails at construction

    # -------------------------------------------------------------- plumbing

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.executescript(OUTBOX_SCHEMA)
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection (call once the threads are done)."""
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # ------------------------------------------------------------ producers

    def enqueue_event(self, event: Event) -> int:
        """Store ``event`` and queue its ``/event`` message in one transaction; return its seq.

        Idempotent by event id: a second call stores and queues nothing new.
        """
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            seq = insert_event(conn, event)
            if conn.total_changes != before:  # a new event, not a repeat
                priority = PRIORITY_PROTECTED if event.type in PROTECTED_TYPES else PRIORITY_INFO
                conn.execute(
                    "INSERT INTO outbox (kind, priority, event_seq, topic, payload, queued_wall)"
                    " VALUES ('event', ?, ?, ?, ?, ?)",
                    (
                        priority,
                        seq,
                        self.topics.event,
                        payloads.event_payload(event, seq),
                        payloads.wall_now(),
                    ),
                )
                self._enforce_bound(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return seq

    def enqueue_telemetry(self, payload: str) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO outbox (kind, priority, event_seq, topic, payload, queued_wall)"
                " VALUES ('telemetry', ?, NULL, ?, ?, ?)",
                (PRIORITY_TELEMETRY, self.topics.telemetry, payload, payloads.wall_now()),
            )
            self._enforce_bound(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _enforce_bound(self, conn: sqlite3.Connection) -> None:
        (count,) = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
        excess = int(count) - self.max_rows
        if excess <= 0:
            return
        dropped: dict[str, int] = {}
        for priority, label in ((PRIORITY_TELEMETRY, "telemetry"), (PRIORITY_INFO, "info event")):
            if excess <= 0:
                break
            cur = conn.execute(
                "DELETE FROM outbox WHERE id IN"
                " (SELECT id FROM outbox WHERE priority = ? ORDER BY id LIMIT ?)",
                (priority, excess),
            )
            if cur.rowcount > 0:
                dropped[label] = cur.rowcount
                excess -= cur.rowcount
        total = sum(dropped.values())
        self.dropped += total
        if total:
            log.warning(
                "MQTT outbox over its bound of %d rows: dropped the oldest %s (%d dropped so far)",
                self.max_rows,
                ", ".join(f"{n} {label}" for label, n in dropped.items()),
                self.dropped,
            )
        if excess > 0:
            log.warning(
                "MQTT outbox holds %d rows, over its bound of %d, and all are alerts or faults: "
                "keeping them (alerts are never dropped)",
                count - total,
                self.max_rows,
            )

    # ------------------------------------------------------------ publisher

    def fetch_after(self, after_id: int, limit: int) -> list[OutboxRow]:
        """The next ``limit`` queued rows with ``id > after_id``, oldest first."""
        rows = (
            self._conn()
            .execute(
                "SELECT id, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            )
            .fetchall()
        )
        return [OutboxRow(int(i), str(t), str(p)) for i, t, p in rows]

    def delete(self, ids: Iterable[int]) -> None:
        """Forget acknowledged rows (one transaction: one fsync for a whole batch of PUBACKs)."""
        batch = [(i,) for i in ids]
        if not batch:
            return
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("DELETE FROM outbox WHERE id = ?", batch)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def depth(self) -> int:
        (count,) = self._conn().execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    # -------------------------------------------------------- acknowledgement

    def acknowledge(self, event_id: str, by: str) -> tuple[str, bool]:
        """Record that a caregiver acknowledged an alert; return (event id, newly acknowledged).

        ``event_id == "latest"`` means the newest alert not yet acknowledged.
        Raises ``LookupError`` when there is no such alert.
        """
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            alert_types = tuple(t.value for t in ALERT_TYPES)
            marks = ",".join("?" * len(alert_types))
            if event_id == "latest":
                row = conn.execute(
                    f"SELECT id FROM events WHERE device_id = ? AND type IN ({marks})"
                    " AND id NOT IN (SELECT event_id FROM event_acks) ORDER BY seq DESC LIMIT 1",
                    (self.topics.device_id, *alert_types),
                ).fetchone()
                if row is None:
                    raise LookupError("no unacknowledged alert")
            else:
                row = conn.execute(
                    f"SELECT id FROM events WHERE id = ? AND device_id = ? AND type IN ({marks})",
                    (event_id, self.topics.device_id, *alert_types),
                ).fetchone()
                if row is None:
                    raise LookupError(f"no alert with id {event_id}")
            found = str(row[0])
            cur = conn.execute(
                "INSERT OR IGNORE INTO event_acks (event_id, acked_by, wall_time) VALUES (?, ?, ?)",
                (found, by, payloads.wall_now()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return found, cur.rowcount > 0

    def acknowledged_by(self, event_id: str) -> str | None:
        row = (
            self._conn()
            .execute("SELECT acked_by FROM event_acks WHERE event_id = ?", (event_id,))
            .fetchone()
        )
        return None if row is None else str(row[0])


class OutboxSink:
    """EventSink that stores and queues each event in one transaction.

    Use it *instead of* :class:`firmware.sinks.StoreSink` (it writes the same
    ``events`` table, so :class:`firmware.store.EventStore` reads it as usual).
    ``on_queued`` wakes the publisher; it must not block.
    """

    def __init__(self, outbox: Outbox, on_queued: Callable[[], None] | None = None) -> None:
        self.outbox = outbox
        self._on_queued = on_queued

    def handle(self, event: Event) -> None:
        self.outbox.enqueue_event(event)
        if self._on_queued is not None:
            self._on_queued()
