"""The event log: every safety event the device decided, in commit order, each once.

Only the event worker thread writes here — never the real-time thread. With a
broker configured the outbox stores events instead (:meth:`Outbox.enqueue_event
<firmware.storage.outbox.Outbox.enqueue_event>`), in the same table, so
:class:`EventStore` reads them either way.

A ``window`` event's recording is stored once, compactly, in ``recordings``
(msgpack: the int16 counts stay bytes), not in the event's JSON body, where
it would be base64 text; readers put the two back together.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import msgspec

from core.protocol.events import Event
from core.protocol.messages import ImuRecording
from firmware.storage import incidents
from firmware.storage.database import Database, as_database
from firmware.storage.walkers import selected_walker

CHOSEN_WALKER = "\0chosen"
"""The ``walker`` of an event the courier raises itself outside a session: the walker chosen
for the next one, read in the event's own transaction (never a valid walker id)."""

_recording_decoder = msgspec.msgpack.Decoder(ImuRecording)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    """Per-database sequence number: strictly increasing in commit order."""
    event: Event


def insert_event(conn: sqlite3.Connection, event: Event, walker: str | None = None) -> int:
    """Insert ``event`` inside the caller's transaction and return its ``seq``.

    Shared by :class:`EventStore` and the MQTT outbox, which must store the
    event and queue it in one transaction (an event is never stored without
    being queued, nor queued without being stored). Idempotent by event id.
    ``walker``: the walker of the session under way, stored with the event (an event of no
    incident is published naming them) and given to the incident it opens
    (:func:`incidents.note_event`); for the courier's own events outside a session,
    :data:`CHOSEN_WALKER`: the walker chosen for the next one, as this transaction reads it
    (None: a loop's event outside a session).
    """
    if walker == CHOSEN_WALKER:
        walker = selected_walker(conn).id
    body = dataclasses.replace(event, recording=None) if event.recording is not None else event
    cur = conn.execute(
        "INSERT OR IGNORE INTO events"
        " (id, device_id, type, severity, wall_time, body, incident, walker)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.id,
            event.device_id,
            event.type.value,
            event.severity.value,
            event.wall_time,
            body.to_json(),
            event.incident,
            walker,
        ),
    )
    new = cur.rowcount > 0
    row = conn.execute("SELECT seq FROM events WHERE id = ?", (event.id,)).fetchone()
    seq = int(row[0])
    if new:
        if event.recording is not None:
            conn.execute(
                "INSERT INTO recordings (event_id, recording) VALUES (?, ?)",
                (event.id, encode_recording(event.recording)),
            )
        incidents.note_event(conn, event, seq, walker)
    return seq


def encode_recording(recording: ImuRecording) -> bytes:
    """The ``recordings.recording`` column: msgpack, the samples as raw bytes."""
    return msgspec.msgpack.encode(recording)


def decode_recording(blob: bytes) -> ImuRecording:
    return _recording_decoder.decode(blob)


def event_from_row(body: str, recording: bytes | None) -> Event:
    """An event as stored: its JSON body, and its recording if it has one."""
    event = Event.from_json(body)
    if recording is None:
        return event
    return dataclasses.replace(event, recording=decode_recording(recording))


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

    def append(self, event: Event, walker: str | None = None) -> int:
        """Commit ``event`` and return its sequence number (idempotent by id); ``walker``:
        the walker of the session under way, whose incident it opens (None: none)."""
        return self._db.write(lambda conn: insert_event(conn, event, walker), key=event.id)

    def events(self, device_id: str | None = None, limit: int | None = None) -> list[StoredEvent]:
        """Events in commit order (the newest ``limit`` if given)."""
        query = (
            "SELECT e.seq, e.body, r.recording FROM events e"
            " LEFT JOIN recordings r ON r.event_id = e.id"
        )
        params: list[object] = []
        if device_id is not None:
            query += " WHERE e.device_id = ?"
            params.append(device_id)
        query += " ORDER BY e.seq DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        rows = self._db.read(lambda conn: conn.execute(query, params).fetchall())
        return [
            StoredEvent(int(seq), event_from_row(body, recording))
            for seq, body, recording in reversed(rows)
        ]

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file this store opened (a database passed in belongs to its owner)."""
        if self._owned:
            self._db.close()
