"""The session log: SQLite tables beside the events, and the MQTT session summary.

Tables, in the monitor's database (``storage.database``)::

    sessions           one row per session: plan, status, wall times, totals, the JSON record
    session_intervals  one row per planned interval: planned direction, planned and done
                       seconds, measured steps, walking time, cadence, trips, stumbles

A session's row is written when it starts running, at every interval's end
and pause (so a power cut loses at most one interval), and a last time when
it ends. The final write also queues the ``<prefix>/<device>/session``
summary in the MQTT outbox *in the same transaction* (when a broker is
configured), so a summary is never stored without being queued nor queued
twice; the outbox delivers it like an event (QoS 1, deleted on PUBACK, never
dropped by the outbox bound).

Writes happen on the recorder's own thread: the loop hands a record over
with a non-blocking put (:meth:`SessionRecorder.submit`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware.store import connect

if TYPE_CHECKING:
    from firmware.mqtt.reporter import MqttReporter

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

SESSION_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    plan TEXT NOT NULL,
    status TEXT NOT NULL,
    started_wall TEXT NOT NULL,
    ended_wall TEXT,
    planned_s REAL NOT NULL,
    done_s REAL NOT NULL,
    backward_s REAL NOT NULL,
    longest_backward_s REAL NOT NULL,
    steps INTEGER NOT NULL,
    walking_s REAL NOT NULL,
    trips INTEGER NOT NULL,
    stumbles INTEGER NOT NULL,
    body TEXT NOT NULL,
    published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions (device_id, started_wall);
CREATE TABLE IF NOT EXISTS session_intervals (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    direction TEXT NOT NULL,
    speed TEXT NOT NULL,
    planned_s REAL NOT NULL,
    done_s REAL NOT NULL,
    steps INTEGER NOT NULL,
    walking_s REAL NOT NULL,
    cadence_spm REAL NOT NULL,
    trips INTEGER NOT NULL,
    stumbles INTEGER NOT NULL,
    PRIMARY KEY (session_id, idx)
);
"""


def session_payload(record: Mapping[str, Any]) -> str:
    """The ``.../session`` summary (docs/mqtt/schemas/session.schema.json)."""
    data = dict(record)
    data["schema"] = SCHEMA_VERSION
    data["wall_time"] = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def open_session_db(path: str | Path) -> sqlite3.Connection:
    conn = connect(path)
    conn.executescript(SESSION_SCHEMA)
    return conn


def save_session(
    conn: sqlite3.Connection,
    record: Mapping[str, Any],
    *,
    outbox_topic: str | None = None,
) -> bool:
    """Upsert ``record`` and its intervals in one transaction; True when a summary was queued.

    With ``outbox_topic`` the summary is queued in the MQTT outbox in the same
    transaction, once per session (the ``published`` flag).
    """
    from firmware.mqtt.outbox import OUTBOX_SCHEMA, PRIORITY_PROTECTED

    queued = False
    if outbox_topic is not None:
        conn.executescript(OUTBOX_SCHEMA)
    conn.execute("BEGIN IMMEDIATE")
    try:
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
        if outbox_topic is not None and record["status"] != "running":
            (published,) = conn.execute(
                "SELECT published FROM sessions WHERE id = ?", (record["id"],)
            ).fetchone()
            if not published:
                conn.execute(
                    "INSERT INTO outbox (kind, priority, event_seq, topic, payload, queued_wall)"
                    " VALUES ('event', ?, NULL, ?, ?, ?)",
                    (
                        PRIORITY_PROTECTED,
                        outbox_topic,
                        session_payload(record),
                        dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                    ),
                )
                conn.execute("UPDATE sessions SET published = 1 WHERE id = ?", (record["id"],))
                queued = True
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return queued


class SessionRecorder:
    """Writes session records on its own thread; :meth:`submit` never blocks."""

    def __init__(self, database: str | Path, reporter: MqttReporter | None = None) -> None:
        self.database = Path(database)
        self._reporter = reporter
        self._queue: queue.SimpleQueue[tuple[dict[str, Any], bool] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="retroguard-sessions", daemon=True)
        self._done = threading.Condition()
        self._submitted = 0
        self._handled = 0
        self.published = 0
        """Summaries queued for MQTT since start."""
        open_session_db(self.database).close()  # a bad path fails here, not on the thread

    def start(self) -> None:
        self._thread.start()

    def submit(self, record: dict[str, Any], final: bool) -> None:
        """Hand a record over (the runner calls this on the loop thread)."""
        self._submitted += 1
        self._queue.put_nowait((record, final))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is written (not for the loop thread)."""
        target = self._submitted
        with self._done:
            return self._done.wait_for(lambda: self._handled >= target, timeout)

    def close(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._queue.put_nowait(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        conn = open_session_db(self.database)
        topic = self._reporter.topics.session if self._reporter is not None else None
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                record, final = item
                try:
                    queued = save_session(conn, record, outbox_topic=topic if final else None)
                except Exception:
                    log.exception("session %s could not be stored", record.get("id"))
                    queued = False
                if queued and self._reporter is not None:
                    self.published += 1
                    self._reporter.wake()
                with self._done:
                    self._handled += 1
                    self._done.notify_all()
        finally:
            conn.close()


@dataclass(frozen=True, slots=True)
class StoredSession:
    record: dict[str, Any]

    @property
    def started(self) -> dt.datetime:
        return dt.datetime.fromisoformat(str(self.record["started_wall"]))


def load_sessions(database: str | Path, device_id: str | None = None) -> list[StoredSession]:
    """Every stored session, oldest first."""
    path = Path(database)
    if not path.exists():
        return []
    conn = open_session_db(path)
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
