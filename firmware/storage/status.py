"""What the device's retained status topics are computed from, read from its own database.

The MQTT reporter publishes two retained summaries (``incident`` and
``progress``, :mod:`firmware.mqtt.status`) derived from the event log and the
session log, so they are right after any restart of the courier, the broker
or a consumer: the database is the record, the summaries are views of it.
These readers only read, with small indexed queries (the newest incident
events through ``events_device_seq``; this week's sessions through
``sessions_started``), and run on the reporter's publisher thread.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import msgspec

from core.protocol.events import INCIDENT_TYPES, EventType
from core.protocol.messages import SessionRecord

INCIDENT_EVENT_TYPES = INCIDENT_TYPES | {EventType.OK, EventType.CLOSED, EventType.RESET}
"""Events that open, worsen or close an incident: all an incident's state depends on."""


@dataclass(frozen=True, slots=True)
class IncidentEventRow:
    """The fields of a stored event that bear on its incident."""

    seq: int
    id: str
    type: EventType
    wall_time: str
    incident: str | None
    """``incident`` of the event record (absent from events written before incidents)."""
    by: str | None
    via: str | None
    walker: str | None = None
    """The walker of the incident on the device's record (None: no incident, or none
    recorded for it)."""
    wall_unsynced: bool = False
    """The device's clock was not set (NTP) as it stamped ``wall_time`` (the event record's
    ``wall_unsynced``; absent from events written before: False)."""


def newest_event_seq(conn: sqlite3.Connection, device_id: str) -> int:
    """The ``seq`` of the device's newest stored event (0 before the first)."""
    row = conn.execute("SELECT MAX(seq) FROM events WHERE device_id = ?", (device_id,)).fetchone()
    return int(row[0] or 0)


def incident_events(
    conn: sqlite3.Connection,
    device_id: str,
    *,
    up_to: int,
    after: int | None = None,
    limit: int | None = None,
) -> list[IncidentEventRow]:
    """The events bearing on incidents with ``after < seq <= up_to``, oldest first.

    ``limit`` keeps only the newest that many: a first read needs no more
    than an incident's last events, and one with more than a couple of
    hundred is not a case that exists. Later reads pass ``after`` (the last
    ``up_to``) and take every new one, so folding them in is exact.
    """
    types = sorted(t.value for t in INCIDENT_EVENT_TYPES)
    marks = ",".join("?" * len(types))
    rows = conn.execute(
        "SELECT e.seq, e.id, e.type, e.wall_time, json_extract(e.body, '$.incident'),"
        " json_extract(e.body, '$.by'), json_extract(e.body, '$.via'), i.walker,"
        " json_extract(e.body, '$.wall_unsynced')"
        " FROM events e LEFT JOIN incidents i ON i.id = json_extract(e.body, '$.incident')"
        f" WHERE e.device_id = ? AND e.seq > ? AND e.seq <= ? AND e.type IN ({marks})"
        " ORDER BY e.seq DESC LIMIT ?",
        (device_id, -1 if after is None else after, up_to, *types, -1 if limit is None else limit),
    ).fetchall()
    return [
        IncidentEventRow(
            int(seq),
            str(event_id),
            EventType(kind),
            str(wall),
            _text(incident),
            _text(by),
            _text(via),
            _text(walker),
            unsynced == 1,
        )
        for seq, event_id, kind, wall, incident, by, via, walker, unsynced in reversed(rows)
    ]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


_decode_record = msgspec.json.Decoder(SessionRecord).decode


def _of_walker(walker: str | None) -> tuple[str, tuple[str, ...]]:
    """The SQL condition and parameter of "sessions of ``walker``" (None: of every walker)."""
    return ("", ()) if walker is None else (" AND walker = ?", (walker,))


def latest_session(
    conn: sqlite3.Connection, device_id: str, walker: str | None = None
) -> SessionRecord | None:
    """The newest guided session (running or ended; ``walker``'s when given), or None before
    the first."""
    where, param = _of_walker(walker)
    row = conn.execute(
        f"SELECT body FROM sessions WHERE device_id = ?{where}"
        " ORDER BY started_wall DESC, rowid DESC LIMIT 1",
        (device_id, *param),
    ).fetchone()
    return None if row is None else _decoded(row[0])


def newest_sessions(
    conn: sqlite3.Connection, device_id: str, limit: int, walker: str | None = None
) -> list[SessionRecord]:
    """The ``limit`` newest sessions (``walker``'s when given), newest first."""
    where, param = _of_walker(walker)
    rows = conn.execute(
        f"SELECT body FROM sessions WHERE device_id = ?{where}"
        " ORDER BY started_wall DESC, rowid DESC LIMIT ?",
        (device_id, *param, limit),
    ).fetchall()
    return [record for (body,) in rows if (record := _decoded(body)) is not None]


def sessions_started_since(
    conn: sqlite3.Connection, device_id: str, earliest_wall: str, walker: str | None = None
) -> list[SessionRecord]:
    """Sessions whose ``started_wall`` sorts at or after ``earliest_wall`` (ISO 8601 text).

    A text comparison, so the caller passes a bound a day early and filters
    by its own rule (:func:`core.progress.week_of`): times written with
    another UTC offset still land in the right week.
    """
    where, param = _of_walker(walker)
    rows = conn.execute(
        f"SELECT body FROM sessions WHERE device_id = ? AND started_wall >= ?{where}"
        " ORDER BY started_wall, rowid",
        (device_id, earliest_wall, *param),
    ).fetchall()
    return [record for (body,) in rows if (record := _decoded(body)) is not None]


def _decoded(body: object) -> SessionRecord | None:
    try:
        return _decode_record(body if isinstance(body, (str, bytes)) else b"")
    except msgspec.DecodeError:
        return None  # a row this program did not write: load_sessions logs it
