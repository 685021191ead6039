"""Moving the courier's records into memory when the disk refuses writes, and back after.

:func:`seed` fills a fresh in-memory database with what the publisher and the
run log need while the file cannot be written: every queued outbox row with
its id, receipt state and event (so queued alerts are still sent and
receipts still land) and that event's recording (its payload is built from
both), the incidents still open and those of the events copied (so a
caregiver can still close them), the last runs, then, each as far as it can,
the walker profiles, their changes and every walker's plan and progression in
force (:func:`seed_walkers`: the button still chooses, an incident names the
chosen walker, a session starts with its walker's plan) and the sessions a
record may still come for (:func:`seed_sessions`); and it sets the numbering
so rows made in memory get ids after the file's. Row ids then mean
the same message in both databases.

:func:`merge` writes what memory holds back into the file, in the caller's
transaction: new events (their sequence numbers kept where free), the
outbox as memory has it (rows copied at the switch and delivered since are
deleted, the rest updated with their receipt state, new ones inserted with
their ids), recordings, incidents (a closing made in memory is kept),
acknowledgements, sessions, runs, walker choices, and the plans and progressions a physio
assigned meanwhile, each with its walker and once (:func:`_merge_history`; each walker's in
force when memory took over is copied in, so no walker's plan changes with the disk).
:data:`TRANSFERRED` names every table and the columns copied: all of them.
"""

from __future__ import annotations

import logging
import sqlite3

from firmware.storage.database import transaction
from firmware.storage.sessions import FINAL_DUE

log = logging.getLogger(__name__)

EVENT_COLUMNS = (
    "seq", "id", "device_id", "type", "severity", "wall_time", "body", "incident", "walker",
)  # fmt: skip
RECORDING_COLUMNS = ("event_id", "recording")
INCIDENT_COLUMNS = (
    "id",
    "device_id",
    "opened_seq",
    "opened_wall",
    "severity",
    "closed_by",
    "closed_via",
    "closed_wall",
    "closed_severity",
    "walker",
)
OUTBOX_COLUMNS = (
    "id",
    "kind",
    "priority",
    "event_seq",
    "topic",
    "payload",
    "queued_wall",
    "message_id",
    "awaiting_receipt",
)
ACK_COLUMNS = ("event_id", "acked_by", "wall_time")
SESSION_COLUMNS = (
    "id",
    "device_id",
    "plan",
    "status",
    "started_wall",
    "ended_wall",
    "planned_s",
    "done_s",
    "backward_s",
    "longest_backward_s",
    "steps",
    "walking_s",
    "trips",
    "stumbles",
    "body",
    "published",
    "walker",
    "falls",
    "no_recovery",
)
INTERVAL_COLUMNS = (
    "session_id",
    "idx",
    "direction",
    "speed",
    "planned_s",
    "done_s",
    "steps",
    "walking_s",
    "cadence_spm",
    "trips",
    "stumbles",
    "falls",
    "no_recovery",
)
RUN_COLUMNS = ("id", "monitor", "started_wall", "ended_wall", "clean", "reported")
PLAN_COLUMNS = ("id", "plan", "assigned_by", "via", "request_id", "assigned_wall", "walker")
PROGRESSION_COLUMNS = (
    "id",
    "progression",
    "stage",
    "stage_started_wall",
    "held",
    "changed_by",
    "change",
    "changed_wall",
    "walker",
    "stage_started_offset",
    "stage_started_boot",
)
ASSIGNMENTS = (("plans", PLAN_COLUMNS), ("progressions", PROGRESSION_COLUMNS))
"""The physio's plans and progressions: each walker's newest row of each goes to memory (the
one in force for them, a progression with its stage and hold), and every row made there comes
back, with its walker. Before, only the single newest row went, whoever's it was (the other
walkers' sessions ran the config's plan while in memory), and neither carried its walker (a
plan assigned to one walker in memory came back as the default walker's)."""
WALKER_COLUMNS = ("id", "name", "position", "added_wall", "removed_wall")
WALKER_CHANGE_COLUMNS = ("id", "walker", "change", "changed_by", "via", "changed_wall")
"""The walker profiles and their changes (a handful of rows): all go to memory, so the button
chooses among them there and an incident opened there names the chosen walker; every change
made there comes back. The profiles themselves come back only where the file lacks them (a
damaged file's replacement): only ``retroguard walker`` changes them, and on the file."""
TRANSFERRED: dict[str, tuple[str, ...]] = {
    "events": EVENT_COLUMNS,
    "recordings": RECORDING_COLUMNS,
    "incidents": INCIDENT_COLUMNS,
    "outbox": OUTBOX_COLUMNS,
    "event_acks": ACK_COLUMNS,
    "sessions": SESSION_COLUMNS,
    "session_intervals": INTERVAL_COLUMNS,
    "runs": RUN_COLUMNS,
    "plans": PLAN_COLUMNS,
    "progressions": PROGRESSION_COLUMNS,
    "walkers": WALKER_COLUMNS,
    "walker_changes": WALKER_CHANGE_COLUMNS,
}
"""Every table of the schema with the columns the move to memory and back copies: all of its
columns. A column left out reaches the other side as its default (plans, progressions and
sessions came back as the default walker's); tests/test_storage_transfer_walkers.py fails
when a migration adds a table or a column this does not name."""
RUNS_KEPT = 16
"""Runs copied into memory: enough to find the last unclean one."""
SESSIONS_KEPT = 16
"""Ended sessions copied into memory besides those running or with a final record due: the
newest, which a late amendment or a record handed over again may still be about."""

Row = tuple[object, ...]


def _names(columns: tuple[str, ...]) -> str:
    return ", ".join(columns)


def _marks(columns: tuple[str, ...]) -> str:
    return ", ".join("?" * len(columns))


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({_names(columns)}) VALUES ({_marks(columns)})"


def continue_numbering(memory: sqlite3.Connection, disk: sqlite3.Connection) -> None:
    """New rows in memory get ids after the file's, so ids stay unique when they go back.

    The file's numbering is kept aside too (``temp.copied_up_to``, outside the schema): rows
    up to it were copied from the file, rows after it made in memory (:func:`_merge_history`).
    """
    sequences = disk.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
    with transaction(memory):
        memory.execute("DELETE FROM sqlite_sequence")
        memory.executemany("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", sequences)
        memory.execute(
            "CREATE TEMP TABLE IF NOT EXISTS copied_up_to (name TEXT PRIMARY KEY, seq INTEGER)"
        )
        memory.execute("DELETE FROM temp.copied_up_to")
        memory.executemany("INSERT INTO temp.copied_up_to (name, seq) VALUES (?, ?)", sequences)


def _copied_up_to(memory: sqlite3.Connection, table: str) -> int | None:
    """The last id of ``table`` copied from the file into ``memory`` (those after it were made
    there); None when unknown (the file's numbering could not be read: every row a copy)."""
    try:
        row = memory.execute(
            "SELECT seq FROM temp.copied_up_to WHERE name = ?", (table,)
        ).fetchone()
    except sqlite3.OperationalError:  # no such table: continue_numbering never ran
        return None
    return 0 if row is None else int(row[0])


def seed(memory: sqlite3.Connection, disk: sqlite3.Connection) -> frozenset[int]:
    """Copy the queued outbox, its events and acknowledgements, and the last runs; the ids copied.

    All or nothing: when memory cannot hold it all, nothing is copied (the
    file keeps those rows, and they are sent once it takes writes again).
    """
    outbox = disk.execute(f"SELECT {_names(OUTBOX_COLUMNS)} FROM outbox ORDER BY id").fetchall()
    carried = "SELECT event_seq FROM outbox WHERE event_seq IS NOT NULL"
    events = disk.execute(
        f"SELECT {_names(EVENT_COLUMNS)} FROM events WHERE seq IN ({carried}) ORDER BY seq"
    ).fetchall()
    acks = disk.execute(
        f"SELECT {_names(ACK_COLUMNS)} FROM event_acks WHERE event_id IN"
        f" (SELECT id FROM events WHERE seq IN ({carried}))"
    ).fetchall()
    recordings = disk.execute(
        f"SELECT {_names(RECORDING_COLUMNS)} FROM recordings WHERE event_id IN"
        f" (SELECT id FROM events WHERE seq IN ({carried}))"
    ).fetchall()
    incidents = disk.execute(
        f"SELECT {_names(INCIDENT_COLUMNS)} FROM incidents WHERE closed_wall IS NULL OR id IN"
        f" (SELECT incident FROM events WHERE seq IN ({carried}))"
    ).fetchall()
    runs = disk.execute(
        f"SELECT {_names(RUN_COLUMNS)} FROM runs ORDER BY id DESC LIMIT ?", (RUNS_KEPT,)
    ).fetchall()
    with transaction(memory):
        memory.executemany(_insert("events", EVENT_COLUMNS), events)
        memory.executemany(_insert("recordings", RECORDING_COLUMNS), recordings)
        memory.executemany(_insert("incidents", INCIDENT_COLUMNS), incidents)
        memory.executemany(_insert("event_acks", ACK_COLUMNS), acks)
        memory.executemany(_insert("outbox", OUTBOX_COLUMNS), outbox)
        memory.executemany(_insert("runs", RUN_COLUMNS), reversed(runs))
    seed_walkers(memory, disk)
    seed_sessions(memory, disk)
    return frozenset(int(str(row[0])) for row in outbox)


def seed_walkers(memory: sqlite3.Connection, disk: sqlite3.Connection) -> bool:
    """Copy the walker profiles and their changes, and each walker's plan and progression in
    force (their newest row of each, :data:`ASSIGNMENTS`); whether they were copied.

    Every walker's, not the single newest row: on a treadmill several walk, and a session one
    of them started while in memory would run the config's plan, and a progression's stage
    moved on there would start from nothing. Best effort, after the queue, like
    :func:`seed_sessions`: a plans table the file cannot read (damage) or memory cannot hold
    leaves memory with the default walker and the config's plan, and the alerts are copied all
    the same (before, such damage lost the whole queue salvaged from the file).
    """
    try:
        in_force = {
            table: disk.execute(
                f"SELECT {_names(columns)} FROM {table}"
                f" WHERE id IN (SELECT max(id) FROM {table} GROUP BY walker) ORDER BY id"
            ).fetchall()
            for table, columns in ASSIGNMENTS
        }
        walkers = disk.execute(f"SELECT {_names(WALKER_COLUMNS)} FROM walkers").fetchall()
        walker_changes = disk.execute(
            f"SELECT {_names(WALKER_CHANGE_COLUMNS)} FROM walker_changes ORDER BY id"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        log.error("storage: the walkers and their plans could not be read into memory: %s", exc)
        return False
    try:
        with transaction(memory):
            for table, columns in ASSIGNMENTS:
                memory.executemany(_insert(table, columns), in_force[table])
            memory.executemany(  # the default walker is there already: migration 5 made it
                f"INSERT OR REPLACE INTO walkers ({_names(WALKER_COLUMNS)})"
                f" VALUES ({_marks(WALKER_COLUMNS)})",
                walkers,
            )
            memory.executemany(_insert("walker_changes", WALKER_CHANGE_COLUMNS), walker_changes)
    except sqlite3.Error as exc:
        log.error("storage: the walkers and their plans could not be copied into memory: %s", exc)
        return False
    return True


def seed_sessions(memory: sqlite3.Connection, disk: sqlite3.Connection) -> int:
    """Copy the sessions a record may still come for, with their intervals; how many.

    Those still ``running`` (this run's under way, or a previous run's left so by a power cut:
    a new run's start closes them in memory, :func:`~firmware.storage.sessions.close_left_running`,
    and the closing reaches the file with the rest), those whose final record is due
    (:data:`~firmware.storage.sessions.FINAL_DUE`) and the newest :data:`SESSIONS_KEPT`. Without
    them a record written in memory found no row: it took a summary already queued for one never
    queued (published twice) and a start that ran in memory closed nothing.

    Best effort, after the queue: a sessions table the file cannot read (damage) or memory
    cannot hold leaves them in the file, where the next start that can read it closes them;
    the queue is seeded all the same.
    """
    chosen = (
        "SELECT id FROM sessions WHERE status = 'running' OR published = ?"
        " UNION SELECT id FROM (SELECT id FROM sessions ORDER BY started_wall DESC LIMIT ?)"
    )
    try:
        rows = disk.execute(
            f"SELECT {_names(SESSION_COLUMNS)} FROM sessions WHERE id IN ({chosen})",
            (FINAL_DUE, SESSIONS_KEPT),
        ).fetchall()
        intervals = disk.execute(
            f"SELECT {_names(INTERVAL_COLUMNS)} FROM session_intervals"
            f" WHERE session_id IN ({chosen}) ORDER BY session_id, idx",
            (FINAL_DUE, SESSIONS_KEPT),
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        log.error("storage: the sessions could not be read to copy into memory: %s", exc)
        return 0
    try:
        with transaction(memory):
            memory.executemany(_insert("sessions", SESSION_COLUMNS), rows)
            memory.executemany(_insert("session_intervals", INTERVAL_COLUMNS), intervals)
    except sqlite3.Error as exc:
        log.error("storage: the sessions could not be copied into memory: %s", exc)
        return 0
    return len(rows)


def merge(memory: sqlite3.Connection, disk: sqlite3.Connection, copied: frozenset[int]) -> None:
    """Write what memory holds into the file, inside the caller's transaction on ``disk``.

    ``copied``: the outbox ids :func:`seed` copied (those missing from memory
    now were delivered meanwhile).
    """
    seqs = _merge_events(memory, disk)
    disk.executemany(
        f"INSERT OR IGNORE INTO recordings ({_names(RECORDING_COLUMNS)})"
        f" VALUES ({_marks(RECORDING_COLUMNS)})",
        memory.execute(f"SELECT {_names(RECORDING_COLUMNS)} FROM recordings").fetchall(),
    )
    _merge_incidents(memory, disk)
    disk.executemany(
        f"INSERT OR IGNORE INTO event_acks ({_names(ACK_COLUMNS)}) VALUES ({_marks(ACK_COLUMNS)})",
        memory.execute(f"SELECT {_names(ACK_COLUMNS)} FROM event_acks").fetchall(),
    )
    _merge_outbox(memory, disk, copied, seqs)
    _merge_sessions(memory, disk)
    _merge_runs(memory, disk)
    disk.executemany(  # the file's word on a profile: see WALKER_CHANGE_COLUMNS
        f"INSERT OR IGNORE INTO walkers ({_names(WALKER_COLUMNS)})"
        f" VALUES ({_marks(WALKER_COLUMNS)})",
        memory.execute(f"SELECT {_names(WALKER_COLUMNS)} FROM walkers").fetchall(),
    )
    for table, columns in (*ASSIGNMENTS, ("walker_changes", WALKER_CHANGE_COLUMNS)):
        _merge_history(memory, disk, table, columns)


def carry(queue: sqlite3.Connection, disk: sqlite3.Connection) -> None:
    """Write a queue salvaged from a damaged file (:func:`seed` into memory) into ``disk``,
    inside the caller's transaction: its rows with their ids and receipt state, and its
    numbering, so the new file numbers on after the old one."""
    merge(queue, disk, frozenset())
    for name, seq in queue.execute("SELECT name, seq FROM sqlite_sequence").fetchall():
        if (
            disk.execute(
                "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?", (seq, name)
            ).rowcount
            == 0
        ):
            disk.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, seq))


def _merge_events(memory: sqlite3.Connection, disk: sqlite3.Connection) -> dict[int, int]:
    """Insert the events the file lacks (by id); map each memory seq to its seq in the file."""
    seqs: dict[int, int] = {}
    without_seq = EVENT_COLUMNS[1:]
    for row in memory.execute(f"SELECT {_names(EVENT_COLUMNS)} FROM events ORDER BY seq"):
        seq, event_id = int(row[0]), row[1]
        found = disk.execute("SELECT seq FROM events WHERE id = ?", (event_id,)).fetchone()
        if found is not None:
            seqs[seq] = int(found[0])
        elif disk.execute("SELECT 1 FROM events WHERE seq = ?", (seq,)).fetchone() is None:
            disk.execute(_insert("events", EVENT_COLUMNS), row)
            seqs[seq] = seq
        else:  # the file was replaced or written meanwhile: a new number
            cur = disk.execute(_insert("events", without_seq), row[1:])
            seqs[seq] = int(cur.lastrowid or 0)
    return seqs


def _merge_outbox(
    memory: sqlite3.Connection,
    disk: sqlite3.Connection,
    copied: frozenset[int],
    seqs: dict[int, int],
) -> None:
    rows = memory.execute(f"SELECT {_names(OUTBOX_COLUMNS)} FROM outbox ORDER BY id").fetchall()
    still_queued = {int(row[0]) for row in rows}
    disk.executemany(
        "DELETE FROM outbox WHERE id = ?", [(i,) for i in sorted(copied - still_queued)]
    )
    without_id = OUTBOX_COLUMNS[1:]
    for row in rows:
        outbox_id, event_seq, topic, payload, awaiting = row[0], row[3], row[4], row[5], row[8]
        values = list(row)
        values[3] = None if event_seq is None else seqs.get(int(str(event_seq)))
        found = disk.execute(
            "SELECT topic, payload, message_id FROM outbox WHERE id = ?", (outbox_id,)
        ).fetchone()
        if found is None:
            disk.execute(_insert("outbox", OUTBOX_COLUMNS), values)
        elif tuple(found) == (topic, payload, row[7]):  # the same message: its receipt state
            disk.execute(
                "UPDATE outbox SET awaiting_receipt = ? WHERE id = ?", (awaiting, outbox_id)
            )
        else:  # the id is taken by another message: a new id
            disk.execute(_insert("outbox", without_id), values[1:])


def _merge_history(
    memory: sqlite3.Connection, disk: sqlite3.Connection, table: str, columns: tuple[str, ...]
) -> None:
    """Rows of a history (never rewritten, newest by id in force) that memory holds: each once.

    A row the file has under its id (copied to memory at the switch, or carried already) is
    left as it is, and one it lacks is inserted with its id. A row made in memory whose id the
    file gave another row meanwhile (``retroguard plan set`` or ``retroguard walker`` write the
    file directly, and a small row can fit a full disk's free room) gets a new id, after the
    file's: before, ``INSERT OR IGNORE`` dropped it, and a physio's plan or a walker's choice
    made in memory was lost without a word. A row copied from a file (a damaged file's queue
    carried into a new one the CLI wrote meanwhile) is older than the file's row under its id:
    it is left out, never put in force over it.
    """
    copied_up_to = _copied_up_to(memory, table)
    for row in memory.execute(f"SELECT {_names(columns)} FROM {table} ORDER BY id").fetchall():
        found = disk.execute(
            f"SELECT {_names(columns)} FROM {table} WHERE id = ?", (row[0],)
        ).fetchone()
        if found is None:  # ids made in memory follow the file's (continue_numbering)
            disk.execute(_insert(table, columns), row)
        elif (
            tuple(found) != tuple(row)
            and copied_up_to is not None
            and int(str(row[0])) > copied_up_to  # made in memory
        ):
            disk.execute(_insert(table, columns[1:]), row[1:])


def _merge_incidents(memory: sqlite3.Connection, disk: sqlite3.Connection) -> None:
    """Incidents memory knows: new ones inserted; a closing or a worse event made in memory
    kept (memory saw everything since the switch, so its view of an incident is the newer)."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in INCIDENT_COLUMNS[4:])
    disk.executemany(
        f"{_insert('incidents', INCIDENT_COLUMNS)} ON CONFLICT (id) DO UPDATE SET {updates}",
        memory.execute(f"SELECT {_names(INCIDENT_COLUMNS)} FROM incidents").fetchall(),
    )


def _merge_sessions(memory: sqlite3.Connection, disk: sqlite3.Connection) -> None:
    """Sessions memory knows, with their intervals: memory's record is the newer.

    ``published``: a summary queued on either side stays queued (the higher amendment wins);
    else memory's word, which saw everything since the switch. Before, the higher number won,
    and an end stored in memory (:data:`~firmware.storage.sessions.FINAL_DUE`, -1) over the
    file's running row (0) came back as 0: its final record never summarised if the monitor
    stopped before it came.
    """
    updates = ", ".join(
        f"{c} = excluded.{c}" for c in SESSION_COLUMNS if c not in ("id", "published")
    )
    queued = "MAX(sessions.published, excluded.published)"
    disk.executemany(
        f"{_insert('sessions', SESSION_COLUMNS)} ON CONFLICT (id) DO UPDATE SET {updates},"
        f" published = CASE WHEN {queued} >= 1 THEN {queued} ELSE excluded.published END",
        memory.execute(f"SELECT {_names(SESSION_COLUMNS)} FROM sessions").fetchall(),
    )
    for (session_id,) in memory.execute("SELECT id FROM sessions").fetchall():
        disk.execute("DELETE FROM session_intervals WHERE session_id = ?", (session_id,))
        disk.executemany(
            _insert("session_intervals", INTERVAL_COLUMNS),
            memory.execute(
                f"SELECT {_names(INTERVAL_COLUMNS)} FROM session_intervals WHERE session_id = ?"
                " ORDER BY idx",
                (session_id,),
            ).fetchall(),
        )


def _merge_runs(memory: sqlite3.Connection, disk: sqlite3.Connection) -> None:
    for row in memory.execute(f"SELECT {_names(RUN_COLUMNS)} FROM runs ORDER BY id").fetchall():
        run_id, monitor, started, ended, clean, reported = row
        found = disk.execute(
            "SELECT id FROM runs WHERE monitor = ? AND started_wall = ?", (monitor, started)
        ).fetchone()
        if found is not None:
            disk.execute(
                "UPDATE runs SET ended_wall = COALESCE(?, ended_wall), clean = MAX(clean, ?),"
                " reported = MAX(reported, ?) WHERE id = ?",
                (ended, clean, reported, found[0]),
            )
        elif disk.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            disk.execute(_insert("runs", RUN_COLUMNS), row)
        else:
            disk.execute(_insert("runs", RUN_COLUMNS[1:]), row[1:])
