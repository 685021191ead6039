"""The session log: one row per guided session and one per planned interval.

Tables ``sessions`` (plan, status, wall times, totals, the JSON record) and
``session_intervals`` (planned direction, planned and done seconds, measured
steps, walking time, cadence, trips, stumbles), beside the events.

:func:`save_session` runs on the session recorder's thread
(:class:`firmware.session.record.SessionRecorder`), never on the loop. The
last save of a finished session also queues its MQTT summary with the
outbox's :func:`~firmware.storage.outbox.queue_message` *in the same
transaction*, once per session (the ``published`` flag): a summary is never
stored without being queued nor queued twice, and the outbox delivers it like
an alert (QoS 1, deleted on PUBACK, never dropped by the bound).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware.storage.database import connect, transaction
from firmware.storage.outbox import PRIORITY_PROTECTED, MessageKind, queue_message


@dataclass(frozen=True, slots=True)
class SummaryToQueue:
    """The MQTT message to queue when a finished session is saved for the first time."""

    topic: str
    payload: Callable[[], str]
    """Builds the payload; called only when it is queued, inside the transaction."""


def save_session(
    conn: sqlite3.Connection,
    record: Mapping[str, Any],
    summary: SummaryToQueue | None = None,
) -> bool:
    """Upsert ``record`` and its intervals in one transaction; True when a summary was queued.

    With ``summary``, a record whose status is no longer ``running`` has its
    summary queued in the same transaction, once per session.
    """
    queued = False
    with transaction(conn):
        conn.execute(
            "INSERT INTO sessions (id, device_id, plan, status, started_wall, ended_wall,"
            " planned_s, done_s, backward_s, longest_backward_s, steps, walking_s, trips,"
            " stumbles, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
            " ended_wall = excluded.ended_wall, done_s = excluded.done_s,"
            " backward_s = excluded.backward_s, longest_backward_s = excluded.longest_backward_s,"
            " steps = excluded.steps, walking_s = excluded.walking_s, trips = excluded.trips,"
            " stumbles = excluded.stumbles, body = excluded.body",
            (
                record["id"],
                record["device_id"],
                record["plan"],
                record["status"],
                record["started_wall"],
                record["ended_wall"],
                record["planned_s"],
                record["done_s"],
                record["backward_s"],
                record["longest_backward_s"],
                record["steps"],
                record["walking_s"],
                record["trips"],
                record["stumbles"],
                json.dumps(record, separators=(",", ":"), sort_keys=True),
            ),
        )
        conn.execute("DELETE FROM session_intervals WHERE session_id = ?", (record["id"],))
        conn.executemany(
            "INSERT INTO session_intervals (session_id, idx, direction, speed, planned_s, done_s,"
            " steps, walking_s, cadence_spm, trips, stumbles)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    record["id"],
                    i["index"],
                    i["direction"],
                    i["speed"],
                    i["planned_s"],
                    i["done_s"],
                    i["steps"],
                    i["walking_s"],
                    i["cadence_spm"],
                    i["trips"],
                    i["stumbles"],
                )
                for i in record["intervals"]
            ],
        )
        if summary is not None and record["status"] != "running":
            (published,) = conn.execute(
                "SELECT published FROM sessions WHERE id = ?", (record["id"],)
            ).fetchone()
            if not published:
                queue_message(
                    conn,
                    MessageKind.EVENT,
                    PRIORITY_PROTECTED,
                    summary.topic,
                    summary.payload(),
                    message_id=str(record["id"]),
                )
                conn.execute("UPDATE sessions SET published = 1 WHERE id = ?", (record["id"],))
                queued = True
    return queued


@dataclass(frozen=True, slots=True)
class StoredSession:
    record: dict[str, Any]

    @property
    def started(self) -> dt.datetime:
        return dt.datetime.fromisoformat(str(self.record["started_wall"]))


def load_sessions(database: str | Path, device_id: str | None = None) -> list[StoredSession]:
    """Every stored session, oldest first (none when the file does not exist yet)."""
    path = Path(database)
    if not path.exists():
        return []
    conn = connect(path)
    try:
        query = "SELECT body FROM sessions"
        params: tuple[str, ...] = ()
        if device_id is not None:
            query += " WHERE device_id = ?"
            params = (device_id,)
        rows = conn.execute(query + " ORDER BY started_wall, rowid", params).fetchall()
    finally:
        conn.close()
    return [StoredSession(json.loads(body)) for (body,) in rows]
