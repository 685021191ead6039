"""The session log: one row per guided session and one per planned interval.

Tables ``sessions`` (plan, status, wall times, totals, the JSON record) and
``session_intervals`` (planned direction, planned and done seconds, measured
steps, walking time, cadence, trips, stumbles, falls, falls with no recovery),
beside the events.

:func:`save_session` runs in the courier process
(:class:`firmware.session.record.SessionArchive`), never on the loop. The
last save of a finished session also queues its MQTT summary with the
outbox's :func:`~firmware.storage.outbox.queue_message` *in the same
transaction*, once per session and amendment (``published``: 0 before, -1 while an
ended session's final record is due (:data:`FINAL_DUE`), then 1 + the ``amended`` of the
record last queued): a summary is never stored without
being queued nor queued twice, and the outbox delivers it like an alert (QoS 1,
deleted on PUBACK, never dropped by the bound). A record amended after its
session ended (an event of its trip's incident that came later) is queued again
and replaces the summary of that session still in the outbox; an ended record
older than the one stored (fewer amendments) is not written.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from core.progress import done
from core.protocol.messages import SessionRecord
from core.protocol.payloads import encode
from firmware.storage.database import connect, transaction
from firmware.storage.outbox import PRIORITY_PROTECTED, MessageKind, queue_message

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SummaryToQueue:
    """The MQTT message to queue when a finished session is saved for the first time."""

    topic: str
    payload: Callable[[], str]
    """Builds the payload; called only when it is queued, inside the transaction."""


def save_session(
    conn: sqlite3.Connection,
    record: SessionRecord,
    summary: SummaryToQueue | None = None,
) -> bool:
    """Upsert ``record`` and its intervals in one transaction; True when a summary was queued.

    With ``summary``, a record whose status is no longer ``running`` has its
    summary queued in the same transaction, once per session. The ``body``
    column is the record as compact JSON with sorted keys
    (:func:`core.protocol.payloads.encode`), as every release wrote it.
    """
    with transaction(conn):
        return write_session(conn, record, summary)


FINAL_DUE = -1
"""``published`` of an ended session whose final record is still due: the runner stores the
end at once and its final record (the summary's) once the last interval's gait figures are in
(up to ``FINAL_WAIT_S``). A monitor stopped in between never sends it; the next run's start
finishes it (:func:`close_left_running`)."""


def write_session(
    conn: sqlite3.Connection,
    record: SessionRecord,
    summary: SummaryToQueue | None = None,
    *,
    final_due: bool = False,
) -> bool:
    """:func:`save_session` inside the caller's transaction. ``final_due``: ``record`` has
    ended but its final record (with the summary) is still to come (:data:`FINAL_DUE`)."""
    queued = False
    before = conn.execute(
        "SELECT published, status, CASE WHEN json_valid(body)"
        " THEN coalesce(json_extract(body, '$.amended'), 0) ELSE 0 END"
        " FROM sessions WHERE id = ?",
        (record.id,),
    ).fetchone()
    if before is not None and before[1] != "running" and int(before[2]) > record.amended:
        log.info(
            "session %s: a record with %d amendments not written over one with %d",
            record.id,
            record.amended,
            int(before[2]),
        )
        return False
    conn.execute(
        "INSERT INTO sessions (id, device_id, plan, status, started_wall, ended_wall,"
        " planned_s, done_s, backward_s, longest_backward_s, steps, walking_s, trips,"
        " stumbles, body, walker, falls, no_recovery)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
        " started_wall = excluded.started_wall, ended_wall = excluded.ended_wall,"
        " done_s = excluded.done_s,"
        " backward_s = excluded.backward_s, longest_backward_s = excluded.longest_backward_s,"
        " steps = excluded.steps, walking_s = excluded.walking_s, trips = excluded.trips,"
        " stumbles = excluded.stumbles, body = excluded.body, falls = excluded.falls,"
        " no_recovery = excluded.no_recovery",
        (
            record.id,
            record.device_id,
            record.plan,
            record.status,
            record.started_wall,
            record.ended_wall,
            record.planned_s,
            record.done_s,
            record.backward_s,
            record.longest_backward_s,
            record.steps,
            record.walking_s,
            record.trips,
            record.stumbles,
            encode(record),
            record.walker.id,
            record.fall_count,
            record.no_recovery,
        ),
    )
    conn.execute("DELETE FROM session_intervals WHERE session_id = ?", (record.id,))
    conn.executemany(
        "INSERT INTO session_intervals (session_id, idx, direction, speed, planned_s, done_s,"
        " steps, walking_s, cadence_spm, trips, stumbles, falls, no_recovery)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                record.id,
                i.index,
                i.direction,
                i.speed,
                i.planned_s,
                i.done_s,
                i.steps,
                i.walking_s,
                i.cadence_spm,
                i.trips,
                i.stumbles,
                i.fall_count,
                i.no_recovery,
            )
            for i in record.intervals
        ],
    )
    published = 0 if before is None else int(before[0])
    if final_due and record.ended and published == 0:
        conn.execute("UPDATE sessions SET published = ? WHERE id = ?", (FINAL_DUE, record.id))
        return False
    if published == FINAL_DUE and not final_due and summary is None and record.ended:
        # The final record, with no broker to queue it for: nothing is due any more.
        conn.execute("UPDATE sessions SET published = 0 WHERE id = ?", (record.id,))
        return False
    if summary is not None and record.ended and published <= record.amended:
        # An amended record's summary replaces the one of the session still queued (the
        # caregiver keeps one row per session id, and the newest counts).
        conn.execute("DELETE FROM outbox WHERE message_id = ?", (record.id,))
        queue_message(
            conn,
            MessageKind.EVENT,
            PRIORITY_PROTECTED,
            summary.topic,
            summary.payload(),
            message_id=record.id,
        )
        conn.execute(
            "UPDATE sessions SET published = ? WHERE id = ?", (record.amended + 1, record.id)
        )
        queued = True
    return queued


INTERRUPTED_NOTE = "its end not recorded: the monitor stopped (power cut, crash or kill)"
"""How every surface says a session was closed by the next start (:func:`close_left_running`)."""


def close_left_running(
    conn: sqlite3.Connection,
    summary_for: Callable[[SessionRecord], SummaryToQueue | None] = lambda _: None,
) -> list[SessionRecord]:
    """Close every session a previous run of the monitor left ``running``, inside the
    caller's transaction; the records as closed, oldest first.

    A monitor stopped by a power cut, a crash or a kill never writes a session's last
    record, so the session stayed ``running`` for ever: never done, never summarised,
    shown under way on every surface. Only a new run may call this (the courier, when the
    monitor's hello names a run the log does not know yet): no session of it has started,
    so every one still ``running`` is a previous run's. Each is closed with what its last
    stored record proves — a physio credits what was walked, no more: ``completed`` when
    it walked every interval (:func:`core.progress.done`, to the plan clock's second),
    else ``stopped``; ``interrupted`` says its end was not recorded; ``ended_wall`` is the
    time of that record (start, plan time and pauses), not the restart's, which may be
    days later. Its summary (``summary_for``) is queued as any ended session's. A row
    whose body is not a record is logged and left as it is.

    A session whose end was stored but whose final record was not (:data:`FINAL_DUE`: the
    monitor stopped while the runner waited for the last gait figures) is finished the same
    way — its summary queued, without those figures — and returned with the others; it is
    not ``interrupted``: its end was recorded.
    """
    rows = conn.execute(
        "SELECT id, body FROM sessions WHERE status = 'running' ORDER BY started_wall, rowid"
    ).fetchall()
    closed: list[SessionRecord] = []
    for session_id, body in rows:
        try:
            record = _decode_record(body)
        except msgspec.DecodeError as exc:
            log.warning("session %s left running is not a readable record: %s", session_id, exc)
            continue
        walked = done(msgspec.structs.replace(record, status="completed"))  # the one rule
        try:
            ended = dt.datetime.fromisoformat(record.started_wall) + dt.timedelta(
                seconds=record.done_s + record.paused_s
            )
            ended_wall = ended.isoformat(timespec="seconds")
        except ValueError:
            ended_wall = record.started_wall
        record = msgspec.structs.replace(
            record,
            status="completed" if walked else "stopped",
            ended_wall=ended_wall,
            interrupted=True,
        )
        write_session(conn, record, summary_for(record))
        log.warning(
            "session %s of %s (started %s) closed as %s, %s; %.0f of %.0f plan minutes walked",
            record.id,
            record.walker.name,
            record.started_wall,
            record.status,
            INTERRUPTED_NOTE,
            record.done_s / 60,
            record.planned_s / 60,
        )
        closed.append(record)
    due = conn.execute(
        "SELECT id, body FROM sessions WHERE published = ? AND status != 'running'"
        " ORDER BY started_wall, rowid",
        (FINAL_DUE,),
    ).fetchall()
    for session_id, body in due:
        try:
            record = _decode_record(body)
        except msgspec.DecodeError as exc:
            log.warning(
                "session %s, its summary due, is not a readable record: %s", session_id, exc
            )
            continue
        write_session(conn, record, summary_for(record))
        log.warning(
            "session %s of %s (started %s) ended %s but the monitor stopped before its last "
            "record: finished now, without its last interval's gait figures",
            record.id,
            record.walker.name,
            record.started_wall,
            record.status,
        )
        closed.append(record)
    return closed


@dataclass(frozen=True, slots=True)
class UnderWay:
    """The newest session, still ``running`` on record: under way, or left so by a monitor
    that stopped mid-session (until the next one starts)."""

    walker: str
    started_wall: str


def under_way(conn: sqlite3.Connection) -> UnderWay | None:
    """The session the database records as under way (see :class:`UnderWay`), else None."""
    row = conn.execute(
        "SELECT walker, started_wall, status FROM sessions ORDER BY started_wall DESC LIMIT 1"
    ).fetchone()
    if row is None or row[2] != "running":
        return None
    return UnderWay(str(row[0]), str(row[1]))


@dataclass(frozen=True, slots=True)
class StoredSession:
    record: SessionRecord

    @property
    def started(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.record.started_wall)


_decode_record = msgspec.json.Decoder(SessionRecord).decode


def load_sessions(
    database: str | Path, device_id: str | None = None, walker: str | None = None
) -> list[StoredSession]:
    """Every stored session (of ``walker``, when given), oldest first (none when the file does
    not exist yet).

    A row whose body is not a session record (it was not written by this
    program) is logged and left out: one bad row does not hide the log.
    """
    path = Path(database)
    if not path.exists():
        return []
    conn = connect(path)
    try:
        query = "SELECT id, body FROM sessions"
        where: list[str] = []
        params: list[str] = []
        if device_id is not None:
            where.append("device_id = ?")
            params.append(device_id)
        if walker is not None:
            where.append("walker = ?")
            params.append(walker)
        if where:
            query += " WHERE " + " AND ".join(where)
        rows = conn.execute(query + " ORDER BY started_wall, rowid", params).fetchall()
    finally:
        conn.close()
    sessions: list[StoredSession] = []
    for session_id, body in rows:
        try:
            sessions.append(StoredSession(_decode_record(body)))
        except msgspec.DecodeError as exc:
            log.warning("session %s in %s is not a readable record: %s", session_id, path, exc)
    return sessions
