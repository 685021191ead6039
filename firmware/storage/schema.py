"""The device database's tables and their upgrades, versioned by ``PRAGMA user_version``.

This module is the only place that says what tables the device database has.
Each :class:`Migration` takes the file from one version to the next;
:func:`migrate` applies the missing ones in order inside one transaction, so a
power cut during an upgrade leaves the file at its old version, never half-way.

Version 1 is the schema as it was before it had an owner (up to commit
3f29ca7), statement for statement. Files written then say ``user_version`` 0
although their tables exist, and a device that never had a broker or ran a
session has only some of them: migration 1 creates just what is missing
(``IF NOT EXISTS``), so it adopts such a file without touching a row, then
checks first that every table it finds has exactly the columns version 1 defines.

A file with a version newer than :data:`SCHEMA_VERSION` was written by a newer
release: it is refused (:class:`SchemaError`) and left as it was, because this
code cannot know what the newer columns mean.

To change the schema, append a migration with the next version and the
statements that take the previous version there; never edit one that has
shipped. Write each statement so it runs inside a transaction (no VACUUM, no
``PRAGMA journal_mode``).

Columns the code reads: ``recordings.recording`` is a
:class:`~core.protocol.messages.ImuRecording` as msgpack (int16 counts, zlib);
an outbox row of an event with an empty ``payload`` is built from the event
(and its recording) when it is published.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

from firmware.storage.errors import SchemaError

log = logging.getLogger(__name__)

EVENTS_V1 = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL,
    type TEXT NOT NULL,
    severity TEXT NOT NULL,
    wall_time TEXT NOT NULL,
    body TEXT NOT NULL
)"""

OUTBOX_V1 = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('event', 'telemetry')),
    priority INTEGER NOT NULL,
    event_seq INTEGER REFERENCES events (seq),
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    queued_wall TEXT NOT NULL
)"""

EVENT_ACKS_V1 = """
CREATE TABLE IF NOT EXISTS event_acks (
    event_id TEXT PRIMARY KEY REFERENCES events (id),
    acked_by TEXT NOT NULL,
    wall_time TEXT NOT NULL
)"""

SESSIONS_V1 = """
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
)"""

SESSION_INTERVALS_V1 = """
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
)"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    """The ``user_version`` the file has once this migration is applied."""
    summary: str
    statements: tuple[str, ...]
    """One SQL statement each, applied in order."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events; MQTT outbox and acknowledgements; guided sessions (adopts a file from before "
        "versioning as it is)",
        (
            # The text of each statement is what sqlite_master keeps, identical to what the
            # modules that owned these tables before created: a new file and an adopted one match.
            EVENTS_V1,
            "CREATE INDEX IF NOT EXISTS events_device_seq ON events (device_id, seq)",
            OUTBOX_V1,
            "CREATE INDEX IF NOT EXISTS outbox_priority ON outbox (priority, id)",
            EVENT_ACKS_V1,
            SESSIONS_V1,
            "CREATE INDEX IF NOT EXISTS sessions_started ON sessions (device_id, started_wall)",
            SESSION_INTERVALS_V1,
        ),
    ),
    Migration(
        2,
        "receipts: each outbox row names the event or session it carries and whether the broker "
        "has acknowledged it (then it waits for a consumer's receipt); runs: each monitor start, "
        "so a start after an unclean stop can say so",
        (
            "ALTER TABLE outbox ADD COLUMN message_id TEXT",
            "ALTER TABLE outbox ADD COLUMN awaiting_receipt INTEGER NOT NULL DEFAULT 0",
            "UPDATE outbox SET message_id = (SELECT id FROM events WHERE seq = outbox.event_seq)"
            " WHERE event_seq IS NOT NULL",
            "UPDATE outbox SET message_id = json_extract(payload, '$.id')"
            " WHERE event_seq IS NULL AND kind = 'event' AND json_valid(payload)",
            "CREATE INDEX outbox_message ON outbox (message_id)",
            """CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    monitor TEXT NOT NULL,
    started_wall TEXT NOT NULL,
    ended_wall TEXT,
    clean INTEGER NOT NULL DEFAULT 0,
    reported INTEGER NOT NULL DEFAULT 0
)""",
        ),
    ),
    Migration(
        3,
        "incidents (docs/incidents.md): each event names its incident, and each incident records "
        "its worst event and who closed it, how and when; recordings: a trip's IMU stored once, "
        "compactly, beside the window event that carries it (no longer in the event's body, nor "
        "in the outbox, whose event payloads are now built when they are published)",
        (
            "ALTER TABLE events ADD COLUMN incident TEXT",
            "CREATE INDEX events_incident ON events (incident)",
            """CREATE TABLE recordings (
    event_id TEXT PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    recording BLOB NOT NULL
)""",
            """CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    opened_seq INTEGER NOT NULL,
    opened_wall TEXT NOT NULL,
    severity TEXT NOT NULL,
    closed_by TEXT,
    closed_via TEXT,
    closed_wall TEXT,
    closed_severity TEXT
)""",
            "CREATE INDEX incidents_open ON incidents (device_id, closed_wall, opened_seq)",
        ),
    ),
    Migration(
        4,
        "plans (firmware/storage/plans.py): each plan a physio assigned, over MQTT or the CLI, "
        "newest in force from the next session start; NULL plan = the config's again; "
        "progressions (firmware/storage/progressions.py): the physio's schedule and its stage",
        (
            """CREATE TABLE plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plan TEXT,
    assigned_by TEXT NOT NULL,
    via TEXT NOT NULL,
    request_id TEXT,
    assigned_wall TEXT NOT NULL
)""",
            """CREATE TABLE progressions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    progression TEXT,
    stage INTEGER NOT NULL,
    stage_started_wall TEXT NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,
    changed_by TEXT NOT NULL,
    change TEXT NOT NULL,
    changed_wall TEXT NOT NULL
)""",
        ),
    ),
    Migration(
        5,
        "walker profiles (firmware/storage/walkers.py): the walkers of this treadmill, in the "
        "order the button cycles them, and every add, remove and selection; sessions, plans, "
        "progressions and incidents name their walker (what was recorded before: the default "
        "walker's)",
        (
            # WITHOUT ROWID and no index on sessions.walker: a handful of walkers, a device's
            # sessions are few; each page counts in the in-memory fallback's bound. (Migration
            # 9 adds one: every walker's retained stage reads their sessions each time.)
            """CREATE TABLE walkers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    added_wall TEXT NOT NULL,
    removed_wall TEXT
) WITHOUT ROWID""",
            "INSERT INTO walkers (id, name, position, added_wall)"
            " VALUES ('default', 'Default walker', 0, '')",
            """CREATE TABLE walker_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    walker TEXT NOT NULL,
    change TEXT NOT NULL CHECK (change IN ('added', 'removed', 'selected')),
    changed_by TEXT NOT NULL,
    via TEXT NOT NULL,
    changed_wall TEXT NOT NULL
)""",
            "ALTER TABLE sessions ADD COLUMN walker TEXT NOT NULL DEFAULT 'default'",
            "ALTER TABLE plans ADD COLUMN walker TEXT NOT NULL DEFAULT 'default'",
            "ALTER TABLE progressions ADD COLUMN walker TEXT NOT NULL DEFAULT 'default'",
            "ALTER TABLE incidents ADD COLUMN walker TEXT NOT NULL DEFAULT 'default'",
        ),
    ),
    Migration(
        6,
        "events name the walker of the guided session under way when they were raised (NULL: "
        "none under way, and every event recorded before): an event of no incident, such as "
        "the courier's test alarm or a fault it raises itself, is published naming them",
        ("ALTER TABLE events ADD COLUMN walker TEXT",),
    ),
    Migration(
        7,
        "guided sessions count falls (a trip confirmed as a fall, also after the stumble that "
        "tripped) and the falls with no recovery, per session and per interval; sessions "
        "recorded before: falls = trips - stumbles (what every release kept true), no recovery "
        "unknown (0)",
        (
            "ALTER TABLE sessions ADD COLUMN falls INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE sessions ADD COLUMN no_recovery INTEGER NOT NULL DEFAULT 0",
            "UPDATE sessions SET falls = trips - stumbles",
            "ALTER TABLE session_intervals ADD COLUMN falls INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE session_intervals ADD COLUMN no_recovery INTEGER NOT NULL DEFAULT 0",
            "UPDATE session_intervals SET falls = trips - stumbles",
        ),
    ),
    Migration(
        8,
        "a progression's stage start keeps the wall clock's offset from the monotonic clock "
        "and the boot it was read in (firmware/storage/progressions.py), so a start read "
        "before NTP stepped the clock is corrected as a session's times are; rows recorded "
        "before: NULL, kept as they are",
        (
            "ALTER TABLE progressions ADD COLUMN stage_started_offset REAL",
            "ALTER TABLE progressions ADD COLUMN stage_started_boot TEXT",
        ),
    ),
    Migration(
        9,
        "sessions are found by walker and start (firmware/storage/progressions.py, "
        "stage_sessions): the retained stage of every walker with a progression and the "
        "progression's rule read one walker's sessions since their stage began, which the "
        "(device_id, started_wall) index cannot serve (the device is not in the query), so "
        "each read scanned every session of every walker",
        ("CREATE INDEX sessions_walker ON sessions (walker, started_wall)",),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The version this code reads and writes."""


def schema_version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def check_known(conn: sqlite3.Connection, name: str) -> int:
    """The file's version; :class:`SchemaError` if this code does not know it."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"{name}: the database has schema version {version}, newer than this RetroGuard "
            f"knows (up to {SCHEMA_VERSION}): it was written by a newer release. Run that "
            "release, or move the file aside to start a new log; nothing was changed"
        )
    if version < 0:
        raise SchemaError(
            f"{name}: the database has schema version {version}, which no RetroGuard writes: "
            "it is not a RetroGuard device database; nothing was changed"
        )
    return version


def migrate(conn: sqlite3.Connection, name: str) -> tuple[int, ...]:
    """Bring the file to :data:`SCHEMA_VERSION` in one transaction; return the versions applied.

    Safe to call from several connections at once: the version is read again
    under the write lock, so only the first one upgrades and the rest apply
    nothing. ``name`` names the file in messages.
    """
    if check_known(conn, name) == SCHEMA_VERSION:
        return ()  # the usual case: no write lock taken
    conn.execute("BEGIN IMMEDIATE")
    try:
        start = check_known(conn, name)
        if start == 0:
            _check_adoptable(conn, name)
        pending = [m for m in MIGRATIONS if m.version > start]
        for migration in pending:
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if pending:
        log.info("%s: database schema upgraded from version %d to %d", name, start, SCHEMA_VERSION)
    return tuple(m.version for m in pending)


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[object, ...]]:
    """(name, type, not null, default, primary key position) of each column, in order."""
    return [tuple(row[1:]) for row in conn.execute(f"PRAGMA table_info({table})")]


def _check_adoptable(conn: sqlite3.Connection, name: str) -> None:
    """Every version-1 table the file already has has exactly version 1's columns.

    An unversioned file is either new, or from before versioning, or not ours
    at all (a wrong ``storage.database``); only the last has other columns.
    """
    reference = sqlite3.connect(":memory:")
    try:
        for statement in MIGRATIONS[0].statements:
            reference.execute(statement)
        tables = [
            str(row[0])
            for row in reference.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            expected, found = _columns(reference, table), _columns(conn, table)
            if found and found != expected:
                raise SchemaError(
                    f"{name}: table {table} has the columns "
                    f"{', '.join(str(c[0]) for c in found)}, not those of schema version 1 "
                    f"({', '.join(str(c[0]) for c in expected)}): this is not a RetroGuard "
                    "device database, or one from an unknown build; nothing was changed"
                )
    finally:
        reference.close()
