"""The device database has one schema owner: versioned, adopted from before versioning, refused
when newer (by the storage package and the CLI; the monitor's courier moves such a file aside
and starts a new one: tests/test_storage_faults.py).

``fixtures/device-3f29ca7.db`` was written by the code of commit 3f29ca7, the
last before the schema had a version (``fixtures/make_device_3f29ca7_db.py``
says how); the tests work on a copy of it.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from core.protocol.topics import Topics
from firmware.storage.database import connect
from firmware.storage.errors import SchemaError
from firmware.storage.events import EventStore
from firmware.storage.outbox import Outbox
from firmware.storage.schema import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version
from firmware.storage.sessions import SummaryToQueue, load_sessions, save_session
from launcher.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "device-3f29ca7.db"
DEVICE_TABLES = (
    "events",
    "outbox",
    "event_acks",
    "sessions",
    "session_intervals",
    "runs",
    "recordings",
    "incidents",
    "plans",
    "progressions",
)
TABLES_V1 = ("events", "outbox", "event_acks", "sessions", "session_intervals", "sqlite_sequence")
SQL_ON_DEVICE_TABLES = re.compile(
    r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE(?: IF NOT EXISTS)?|ON)\s+"
    rf"(?:{'|'.join(DEVICE_TABLES)})\b"
)


def old_copy(tmp_path: Path) -> Path:
    db = tmp_path / "device.db"
    shutil.copyfile(FIXTURE, db)
    return db


OUTBOX_V1_COLUMNS = "id, kind, priority, event_seq, topic, payload, queued_wall"
EVENTS_V1_COLUMNS = "seq, id, device_id, type, severity, wall_time, body"
SESSIONS_V1_COLUMNS = (
    "id, device_id, plan, status, started_wall, ended_wall, planned_s, done_s, backward_s,"
    " longest_backward_s, steps, walking_s, trips, stumbles, body, published"
)
SESSION_INTERVALS_V1_COLUMNS = (
    "session_id, idx, direction, speed, planned_s, done_s, steps, walking_s, cadence_spm,"
    " trips, stumbles"
)
V1_COLUMNS = {
    "session_intervals": SESSION_INTERVALS_V1_COLUMNS,
    "outbox": OUTBOX_V1_COLUMNS,
    "events": EVENTS_V1_COLUMNS,
    "sessions": SESSIONS_V1_COLUMNS,
}


def rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every version-1 table, in version 1's columns, read without the code
    under test (later versions add columns; what version 1 held must stay as it was)."""
    conn = sqlite3.connect(db)
    try:
        return {
            t: conn.execute(f"SELECT {V1_COLUMNS.get(t, '*')} FROM {t} ORDER BY rowid").fetchall()
            for t in TABLES_V1
        }
    finally:
        conn.close()


def schema_of(db: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        conn.close()


def raw_version(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_the_fixture_is_an_unversioned_file_with_every_table() -> None:
    assert FIXTURE.stat().st_size < 200_000
    assert raw_version(FIXTURE) == 0
    counts = {table: len(found) for table, found in rows(FIXTURE).items()}
    assert counts == {
        "events": 4,
        "outbox": 6,
        "event_acks": 1,
        "sessions": 2,
        "session_intervals": 4,
        "sqlite_sequence": 2,
    }


def test_a_3f29ca7_database_is_adopted_with_every_row(tmp_path: Path) -> None:
    db = old_copy(tmp_path)
    before = rows(db)
    conn = connect(db)
    assert schema_version(conn) == SCHEMA_VERSION
    conn.close()
    assert raw_version(db) == SCHEMA_VERSION
    assert rows(db) == before  # nothing lost, nothing rewritten (sequence counters included)
    conn = sqlite3.connect(db)
    named = conn.execute("SELECT id, message_id FROM outbox ORDER BY id").fetchall()
    conn.close()
    # version 2 names what each row carries (receipts delete by it): events by their id,
    # session summaries by the session id in their payload; telemetry carries nothing named
    assert [m for _, m in named] == [None, "evt-4-fall", "evt-5-reset", None, "ses-1", "ses-2"]


def test_the_stores_read_an_adopted_database(tmp_path: Path) -> None:
    db = old_copy(tmp_path)

    store = EventStore(db)
    stored = store.events()
    store.close()
    assert [(s.seq, s.event.id) for s in stored] == [
        (1, "evt-1-start"),
        (2, "evt-2-stumble"),
        (3, "evt-4-fall"),
        (4, "evt-5-reset"),
    ]
    fall = stored[2].event
    assert fall.reason == "impact 4.2 g" and fall.state == "TRIPPED"
    assert fall.figures == {"peak_g": 4.2, "tilt_deg": 61.0}
    assert len(fall.imu_window) == 8
    assert (fall.imu_window[-1].gx, fall.imu_window[-1].gy) == (5.0, 4.0)

    outbox = Outbox(db, Topics("retroguard", "tm-fixture"))
    try:
        assert outbox.depth() == 6
        queued = outbox.fetch_after(0, 10)
        assert [r.id for r in queued] == [2, 3, 4, 5, 6, 7]
        assert queued[1].topic == "retroguard/tm-fixture/event"
        assert '"id":"evt-4-fall"' in queued[1].payload and '"seq":3' in queued[1].payload
        assert [r.topic.rsplit("/", 1)[1] for r in queued[4:]] == ["session", "session"]
        assert outbox.acknowledged_by("evt-4-fall") == "caregiver:anna"
        assert outbox.acknowledge("latest", "caregiver:ben") == ("evt-2-stumble", True)
        outbox.enqueue_telemetry('{"t":1}')
        assert outbox.fetch_after(7, 10)[0].id == 8  # numbering goes on where it was
    finally:
        outbox.close()

    sessions = load_sessions(db)
    assert [(s.record.id, s.record.status) for s in sessions] == [
        ("ses-1", "completed"),
        ("ses-2", "stopped"),
    ]
    assert sessions[1].record.intervals[1].done_s == 12.5
    assert sessions[1].record.done_s == 72.5

    conn = connect(db)  # the summaries went out before: saving again queues nothing
    summary = SummaryToQueue("retroguard/tm-fixture/session", lambda: "{}")
    assert not save_session(conn, sessions[1].record, summary)
    conn.close()


def test_a_new_file_ends_at_the_schema_of_an_adopted_one(tmp_path: Path) -> None:
    old = old_copy(tmp_path)
    connect(old).close()
    new = tmp_path / "new.db"
    connect(new).close()
    assert raw_version(new) == SCHEMA_VERSION
    assert schema_of(new) == schema_of(old)
    # ... and version 1 alone is the schema 3f29ca7 itself created, statement for statement.
    v1 = tmp_path / "v1.db"
    conn = sqlite3.connect(v1, isolation_level=None)
    for statement in MIGRATIONS[0].statements:
        conn.execute(statement)
    conn.close()
    assert schema_of(FIXTURE) == schema_of(v1)


def test_opening_an_up_to_date_file_again_changes_nothing(tmp_path: Path) -> None:
    db = old_copy(tmp_path)
    connect(db).close()
    conn = connect(db)
    dump = list(conn.iterdump())
    assert migrate(conn, str(db)) == ()
    conn.close()
    conn = connect(db)
    assert list(conn.iterdump()) == dump
    assert schema_version(conn) == SCHEMA_VERSION
    conn.close()


def test_the_first_open_reports_the_migration_it_applied(tmp_path: Path) -> None:
    conn = sqlite3.connect(old_copy(tmp_path), isolation_level=None)
    assert migrate(conn, "device.db") == (1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert migrate(conn, "device.db") == ()
    conn.close()


def test_a_database_from_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    db = old_copy(tmp_path)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before, schema = rows(db), schema_of(db)

    message = (
        f"{db}: the database has schema version {SCHEMA_VERSION + 1}, newer than this RetroGuard "
        f"knows (up to {SCHEMA_VERSION}): it was written by a newer release. Run that release, "
        "or move the file aside to start a new log; nothing was changed"
    )
    with pytest.raises(SchemaError) as refused:
        connect(db)
    assert str(refused.value) == message
    with pytest.raises(SchemaError):
        EventStore(db)
    with pytest.raises(SchemaError):
        Outbox(db, Topics("retroguard", "tm-fixture"))
    with pytest.raises(SchemaError):
        load_sessions(db)
    assert raw_version(db) == SCHEMA_VERSION + 1
    assert rows(db) == before and schema_of(db) == schema


def test_the_cli_says_why_it_refuses_a_newer_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "newer.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    assert main(["sessions", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"schema version {SCHEMA_VERSION + 5}, newer than this RetroGuard knows" in err
    assert "Traceback" not in err


def test_an_unversioned_file_with_foreign_tables_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)")
    conn.execute("INSERT INTO events (what) VALUES ('not ours')")
    conn.commit()
    conn.close()

    with pytest.raises(SchemaError, match="table events has the columns id, what, not those of"):
        connect(db)
    assert raw_version(db) == 0
    assert [row[1] for row in schema_of(db)] == ["events"]  # the upgrade was rolled back whole


def test_only_the_storage_package_has_sql_for_the_device_tables() -> None:
    """The caregiver service is left out: its own database has tables of the same names."""
    owner = ROOT / "firmware" / "storage"
    trees = ("core", "hal", "sim", "firmware", "tools", "launcher", "benchmarks", "scripts")
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for tree in trees
        for path in sorted((ROOT / tree).rglob("*.py"))
        if owner not in path.parents
        for match in SQL_ON_DEVICE_TABLES.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    owned = "".join(p.read_text(encoding="utf-8") for p in owner.glob("*.py"))
    assert {m.group(0).split()[-1] for m in SQL_ON_DEVICE_TABLES.finditer(owned)} == set(
        DEVICE_TABLES
    )  # the pattern does recognise each table's SQL


def test_version_7_counts_the_falls_of_the_sessions_recorded_before(tmp_path: Path) -> None:
    """A trip was a stumble or a fall, so a session of version 6 had trips - stumbles falls;
    whether the walker recovered was not noted (0)."""
    from tests.storage_support import database_at_version

    db = tmp_path / "device.db"
    old = database_at_version(db, 6)
    old.execute(
        "INSERT INTO sessions (id, device_id, plan, status, started_wall, planned_s, done_s,"
        " backward_s, longest_backward_s, steps, walking_s, trips, stumbles, body)"
        " VALUES ('s1', 'tm', 'p', 'stopped', '2026-11-30T10:00:00+00:00', 1, 1, 1, 1, 0,"
        " 0, 3, 1, '{}')"
    )
    old.execute(
        "INSERT INTO session_intervals (session_id, idx, direction, speed, planned_s, done_s,"
        " steps, walking_s, cadence_spm, trips, stumbles)"
        " VALUES ('s1', 0, 'backward', '', 1, 1, 0, 0, 0, 2, 0)"
    )
    old.close()
    conn = connect(db)
    try:
        assert conn.execute("SELECT falls, no_recovery FROM sessions").fetchall() == [(2, 0)]
        assert conn.execute("SELECT falls, no_recovery FROM session_intervals").fetchall() == [
            (2, 0)
        ]
    finally:
        conn.close()


def test_version_9_finds_a_walker_s_stage_sessions_by_walker_and_start(tmp_path: Path) -> None:
    """A database of version 8 opened by this release gains the index on (walker,
    started_wall), and every read of ``sessions`` the stage makes for one walker
    (:func:`firmware.storage.progressions.stage_sessions`, the retained stage's and the
    rule's) searches it, as SQLite plans them (``EXPLAIN QUERY PLAN`` of the statements it
    ran): before, each scanned every session of every walker."""
    from core.plan_presets import PROGRESSIONS
    from firmware.storage.database import transaction
    from firmware.storage.progressions import stage_sessions, start_progression
    from tests.storage_support import database_at_version

    db = tmp_path / "device.db"
    old = database_at_version(db, 8)
    for n, walker in enumerate(("anna", "bob") * 3):
        old.execute(
            "INSERT INTO sessions (id, device_id, plan, status, started_wall, planned_s, done_s,"
            " backward_s, longest_backward_s, steps, walking_s, trips, stumbles, body, walker)"
            f" VALUES ('s{n}', 'tm', 'p', 'completed', '2026-11-3{n % 2}T10:0{n}:00+00:00',"
            " 1, 1, 1, 1, 0, 0, 0, 0, '{}', ?)",
            (walker,),
        )
    old.close()
    conn = connect(db)
    try:
        assert schema_version(conn) == SCHEMA_VERSION
        with transaction(conn):
            state = start_progression(
                conn,
                PROGRESSIONS["toward-10-minutes"],
                stage=0,
                by="Jo",
                wall="2026-11-30T09:00:00.000+00:00",
                walker="bob",
            )
        ran: list[str] = []
        conn.set_trace_callback(ran.append)
        try:
            assert len(stage_sessions(conn, state, "bob")) == 3  # Bob's three, Anna's none
        finally:
            conn.set_trace_callback(None)
        reads = [sql for sql in ran if re.search(r"\bFROM sessions\b", sql)]
        assert len(reads) == 2  # the sessions, and their intervals' sessions
        for sql in reads:
            plan = [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
            on_sessions = [step for step in plan if re.match(r"(SCAN|SEARCH) sessions\b", step)]
            assert on_sessions, plan
            assert all(
                step.startswith("SEARCH sessions USING INDEX sessions_walker (walker=? AND")
                for step in on_sessions
            ), plan
    finally:
        conn.close()
