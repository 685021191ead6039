"""The caregiver service's own SQLite database (WAL): devices, events, users, sessions, alerts,
and the walkers' guided sessions (``walk_sessions``; ``sessions`` holds the logins).

One connection guarded by one lock: every statement is short (no network I/O is
ever done while the lock is held), so the MQTT thread, the notifier and the web
handlers share it without contention worth a pool. Events are keyed by their
id, so a QoS 1 redelivery is stored once (``INSERT OR IGNORE``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    availability TEXT NOT NULL DEFAULT 'unknown',
    state TEXT NOT NULL DEFAULT 'UNKNOWN',
    state_reason TEXT NOT NULL DEFAULT '',
    state_time TEXT NOT NULL DEFAULT '',
    last_event_id TEXT,
    last_seen REAL,
    telemetry TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    seq INTEGER,
    type TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    wall_time TEXT NOT NULL,
    received_at REAL NOT NULL,
    figures TEXT NOT NULL DEFAULT '{}',
    has_window INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL DEFAULT '{}',  -- the event as received (the IMU window is read from it)
    acked_by TEXT,
    acked_at REAL,
    ack_request_id TEXT,
    ack_confirmed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_device ON events (device_id, received_at);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,            -- an event type, or 'offline'
    device_id TEXT NOT NULL,
    event_id TEXT,
    status TEXT NOT NULL,          -- held, paging, acknowledged, resolved, logged
    created_at REAL NOT NULL,
    next_at REAL,                  -- when the escalator looks at it next
    contact INTEGER NOT NULL DEFAULT 0,
    sends INTEGER NOT NULL DEFAULT 0,
    paged TEXT NOT NULL DEFAULT '[]',   -- contact indexes already paged
    closed_by TEXT,
    closed_at REAL
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (status, next_at);
CREATE INDEX IF NOT EXISTS alerts_by_device ON alerts (device_id, status);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER,
    contact TEXT NOT NULL,
    contact_index INTEGER NOT NULL,
    url_index INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',   -- pending, sent, failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, next_at);
CREATE TABLE IF NOT EXISTS walk_sessions (   -- guided-session summaries, one row per session id
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    plan TEXT NOT NULL,
    status TEXT NOT NULL,
    started_wall TEXT NOT NULL,    -- ISO 8601, UTC
    ended_wall TEXT NOT NULL,
    planned_s REAL NOT NULL,
    done_s REAL NOT NULL,
    backward_s REAL NOT NULL,
    longest_backward_s REAL NOT NULL,
    steps INTEGER NOT NULL,
    walking_s REAL NOT NULL,
    cadence_spm REAL NOT NULL,
    trips INTEGER NOT NULL,
    stumbles INTEGER NOT NULL,
    received_at REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS walk_sessions_by_device ON walk_sessions (device_id, started_wall);
"""

WALK_FIELDS = (
    "id", "device_id", "plan", "status", "started_wall", "ended_wall", "planned_s", "done_s",
    "backward_s", "longest_backward_s", "steps", "walking_s", "cadence_spm", "trips", "stumbles",
)  # fmt: skip
"""The ``walk_sessions`` columns a session summary fills (docs/mqtt/schemas/session.schema.json)."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: str
    device_id: str
    seq: int | None
    type: str
    severity: str
    state: str
    reason: str
    wall_time: str
    received_at: float
    figures: dict[str, float]
    has_window: bool
    acked_by: str | None
    acked_at: float | None
    ack_confirmed: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "device_id": self.device_id,
            "seq": self.seq,
            "type": self.type,
            "severity": self.severity,
            "state": self.state,
            "reason": self.reason,
            "wall_time": self.wall_time,
            "figures": self.figures,
            "has_window": self.has_window,
            "acked_by": self.acked_by,
            "acked_at": self.acked_at,
        }


_EVENT_COLUMNS = (
    "id, device_id, seq, type, severity, state, reason, wall_time, received_at, figures, "
    "has_window, acked_by, acked_at, ack_confirmed"
)


def _event(row: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent(
        id=row[0],
        device_id=row[1],
        seq=row[2],
        type=row[3],
        severity=row[4],
        state=row[5],
        reason=row[6],
        wall_time=row[7],
        received_at=row[8],
        figures=json.loads(row[9]),
        has_window=bool(row[10]),
        acked_by=row[11],
        acked_at=row[12],
        ack_confirmed=bool(row[13]),
    )


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        with self._lock:
            return self._db.execute(sql, params).rowcount

    # ------------------------------------------------------------- devices

    def touch_device(self, db: sqlite3.Connection, device_id: str, now: float) -> None:
        db.execute(
            "INSERT INTO devices (device_id, last_seen) VALUES (?, ?) "
            "ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen",
            (device_id, now),
        )

    _DEVICE_SELECT = (
        "SELECT d.device_id, d.availability, d.state, d.state_reason, d.state_time, "
        "d.last_seen, d.telemetry, e.id, e.type, e.severity, e.reason, e.wall_time, "
        "e.received_at, (SELECT COUNT(*) FROM alerts a WHERE a.device_id = d.device_id "
        "AND a.status IN ('held', 'paging')) FROM devices d "
        "LEFT JOIN events e ON e.id = d.last_event_id"
    )

    def devices(self) -> list[dict[str, Any]]:
        rows = self.query(self._DEVICE_SELECT + " ORDER BY d.device_id")
        return [_device_row(r) for r in rows]

    def device(self, device_id: str) -> dict[str, Any] | None:
        rows = self.query(self._DEVICE_SELECT + " WHERE d.device_id = ?", (device_id,))
        return _device_row(rows[0]) if rows else None

    # -------------------------------------------------------------- events

    def events_for(self, device_id: str, limit: int = 200) -> list[StoredEvent]:
        rows = self.query(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE device_id = ? "
            "ORDER BY received_at DESC, seq DESC LIMIT ?",
            (device_id, limit),
        )
        return [_event(r) for r in rows]

    def event(self, event_id: str) -> StoredEvent | None:
        rows = self.query(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,))
        return _event(rows[0]) if rows else None

    def imu_window(self, event_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT payload FROM events WHERE id = ? AND has_window", (event_id,))
        if not rows:
            return None
        window = json.loads(rows[0][0]).get("imu_window")
        return window if valid_window(window) else None

    def event_count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM events")[0][0])

    # ------------------------------------------------------ guided sessions

    def upsert_walk_session(
        self, db: sqlite3.Connection, summary: Mapping[str, Any], payload: str, now: float
    ) -> str:
        """Store one session summary by id: "new", "updated", or "same" (a redelivery).

        A summary re-published for the same id replaces the row; one naming
        another device's session is ignored ("same"), so no device can overwrite
        another's log.
        """
        row = db.execute(
            "SELECT device_id, payload FROM walk_sessions WHERE id = ?", (summary["id"],)
        ).fetchone()
        if row is not None and (row[0] != summary["device_id"] or row[1] == payload):
            return "same"
        columns = ", ".join(WALK_FIELDS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in WALK_FIELDS[2:])
        db.execute(
            f"INSERT INTO walk_sessions ({columns}, received_at, payload) "
            f"VALUES ({', '.join('?' * (len(WALK_FIELDS) + 2))}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}, received_at = excluded.received_at, "
            "payload = excluded.payload",
            (*(summary[c] for c in WALK_FIELDS), now, payload),
        )
        return "new" if row is None else "updated"

    def walk_sessions(self, device_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """The device's guided sessions, newest first."""
        rows = self.query(
            f"SELECT {', '.join(WALK_FIELDS)} FROM walk_sessions WHERE device_id = ? "
            "ORDER BY started_wall DESC, id LIMIT ?",
            (device_id, limit),
        )
        return [dict(zip(WALK_FIELDS, r, strict=True)) for r in rows]

    def walk_session_count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM walk_sessions")[0][0])

    # --------------------------------------------------------------- users

    def add_user(self, username: str, password_hash: str, now: float) -> None:
        self.execute(
            "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
            (username, password_hash, now),
        )

    def password_hash(self, username: str) -> str | None:
        rows = self.query("SELECT password_hash FROM users WHERE username = ?", (username,))
        return str(rows[0][0]) if rows else None


def _device_row(r: tuple[Any, ...]) -> dict[str, Any]:
    telemetry: Mapping[str, Any] = json.loads(r[6] or "{}")
    return {
        "device_id": r[0],
        "availability": r[1],
        "state": r[2],
        "state_reason": r[3],
        "state_time": r[4],
        "last_seen": r[5],
        "telemetry": dict(telemetry),
        "last_event": (
            {
                "id": r[7],
                "type": r[8],
                "severity": r[9],
                "reason": r[10],
                "wall_time": r[11],
                "received_at": r[12],
            }
            if r[7]
            else None
        ),
        "open_alerts": int(r[13]),
    }


def valid_window(window: Any) -> bool:
    """An ``imu_window`` as docs/mqtt.md describes it (columns dt, ax..gz; rows of 7 numbers)."""
    if not isinstance(window, dict):
        return False
    rows = window.get("rows")
    return (
        window.get("columns") == ["dt", "ax", "ay", "az", "gx", "gy", "gz"]
        and isinstance(rows, list)
        and all(
            isinstance(r, list)
            and len(r) == 7
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in r)
            for r in rows
        )
    )
