"""The courier's database survives its file: damage is moved aside, a full disk sends records to
memory (still queued, ids kept), and everything lands on disk once it takes writes again.

Real SQLite files throughout; the full disk is SQLite's own ``SQLITE_FULL`` (see
tests/storage_support.py).
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.protocol.commands import Ack
from core.protocol.events import Event, EventType
from core.protocol.topics import Topics
from firmware.storage.damage import UNCARRIED, MovedAside, move_aside, moved_aside_files
from firmware.storage.database import FileDatabase, after_commit, connect, transaction
from firmware.storage.events import EventStore
from firmware.storage.fallback import DISK_RETRY_S, FallbackDatabase, _Gate
from firmware.storage.faults import Trouble, trouble
from firmware.storage.outbox import Outbox
from firmware.storage.runs import begin_run, find_run
from firmware.storage.sessions import load_sessions, write_session
from sim.recordings import fall_recording
from tests.storage_support import DAMAGE, FillableDisk, alert, break_the_sessions_table, damage
from tests.test_session_record_format import RECORD

TOPICS = Topics("retroguard", "tm-1")
WAIT = 20.0
"""A bound against hangs, never a timing."""
RECORDING = fall_recording()


class Heard:
    """A storage listener that writes down what it heard."""

    def __init__(self) -> None:
        self.lost: list[str] = []
        self.replaced: list[MovedAside] = []
        self.back: list[tuple[list[str], str]] = []
        self.order: list[str] = []
        """"lost" and "back", in the order heard."""

    def storage_lost(self, why: str) -> None:
        self.lost.append(why)
        self.order.append("lost")

    def storage_replaced(self, moved: MovedAside) -> None:
        self.replaced.append(moved)

    def storage_back(self, now_on_disk: Sequence[str], detail: str) -> None:
        self.back.append((list(now_on_disk), detail))
        self.order.append("back")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def opened(path: Path, heard: Heard | None = None, **kwargs: object) -> FallbackDatabase:
    db = FallbackDatabase(path, listener=heard, **kwargs)  # type: ignore[arg-type]
    db.open()
    return db


def file_rows(path: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


# ----------------------------------------------------------------- kinds of trouble


def test_disk_errors_and_damage_are_told_apart(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all, but long enough to have a header" * 100)
    with pytest.raises(sqlite3.DatabaseError) as not_a_db:
        connect(garbage)
    assert trouble(not_a_db.value) is Trouble.DAMAGED

    conn = connect(tmp_path / "full.db")
    conn.execute("PRAGMA max_page_count = 1")
    with pytest.raises(sqlite3.OperationalError) as full:
        conn.execute("CREATE TABLE filler (x)")
    assert trouble(full.value) is Trouble.UNWRITABLE
    with pytest.raises(sqlite3.IntegrityError) as constraint:
        conn.execute("INSERT INTO runs (monitor) VALUES ('no start time')")
    assert trouble(constraint.value) is None  # a bug, not the disk
    assert trouble(OSError(28, "No space left on device")) is Trouble.UNWRITABLE
    conn.close()


def test_a_transaction_the_disk_rolled_back_raises_the_disk_error(tmp_path: Path) -> None:
    conn = connect(tmp_path / "full.db")
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")
    rows = [(str(i), "x" * 2000) for i in range(100)]
    with pytest.raises(sqlite3.OperationalError, match="disk is full"), transaction(conn):
        conn.executemany("INSERT INTO runs (monitor, started_wall) VALUES (?, ?)", rows)
    assert not conn.in_transaction
    conn.close()


def test_a_commit_that_fails_leaving_the_transaction_open_is_rolled_back(tmp_path: Path) -> None:
    """A failed COMMIT that SQLite did not roll back itself (a busy one, a deferred constraint;
    here SQLite refuses it through its authorizer) is rolled back: left open, the connection's
    next BEGIN failed "within a transaction" and the courier stored nothing more."""
    conn = connect(tmp_path / "events.db")
    told: list[str] = []

    def refuse_commit(action: int, arg1: str | None, *_: str | None) -> int:
        refused = action == sqlite3.SQLITE_TRANSACTION and arg1 == "COMMIT"
        return sqlite3.SQLITE_DENY if refused else sqlite3.SQLITE_OK

    conn.set_authorizer(refuse_commit)
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"), transaction(conn):
        conn.execute("INSERT INTO runs (monitor, started_wall) VALUES ('refused', 'now')")
        after_commit(conn, lambda: told.append("refused"))
    conn.set_authorizer(None)
    assert not conn.in_transaction and told == []
    with transaction(conn):
        conn.execute("INSERT INTO runs (monitor, started_wall) VALUES ('kept', 'now')")
        after_commit(conn, lambda: told.append("kept"))
    assert told == ["kept"]
    assert conn.execute("SELECT monitor FROM runs").fetchall() == [("kept",)]
    conn.close()


# --------------------------------------------------------------------------- damage


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_file_is_moved_aside_and_a_new_one_started(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "events.db"
    before = damage(kind, path)
    db = FallbackDatabase(path, stamp=lambda: "20261201T210003Z")
    found = db.open()

    assert found.fault is None and not db.in_memory
    assert found.moved is not None
    moved = found.moved.moved_to
    assert moved == tmp_path / "events.db.damaged-20261201T210003Z"
    assert moved_aside_files(path) == [moved]
    if kind == "foreign tables":  # SQLite put it in WAL mode before the check refused it
        assert file_rows(moved, "SELECT what FROM events") == [("not ours",)]
    else:
        assert moved.read_bytes() == before  # kept as it was, for inspection
    assert found.moved.why  # in words, for the FAULT event
    assert str(moved) in found.moved.sentence()

    store = EventStore(db)
    fall = alert()
    store.append(fall)
    carried = found.moved.carried  # what of its queue could still be read came along
    assert [s.event.id for s in store.events()][carried:] == [fall.id]
    db.close()
    with EventStore(path) as reopened:  # a sound file at the old name
        assert [s.event.id for s in reopened.events()][carried:] == [fall.id]


def test_the_queue_of_a_damaged_file_is_carried_into_the_new_one(tmp_path: Path) -> None:
    """A fall stored just before a power cut that damaged the file: the broker had it, the
    caregiver had not confirmed it, and another alert was not even published yet. Both are
    published again from the new file, ids and receipt state kept (before: left behind in
    the moved-aside file, never sent again)."""
    path = tmp_path / "events.db"
    outbox = Outbox(path, TOPICS, max_rows=100, receipts=True)
    published, unpublished = alert(t=1.0), alert(t=2.0, kind=EventType.NO_RECOVERY)
    delivered = alert(t=1.5)
    for event in (published, unpublished, delivered):
        outbox.enqueue_event(event)
    rows = outbox.fetch_after(0, 10)
    outbox.settle([rows[0].id, rows[2].id])  # the broker has them; one has its receipt
    assert outbox.receipted([delivered.id]) == 1
    before = outbox.fetch_after(0, 10)
    outbox.close()
    break_the_sessions_table(path)
    damaged = path.read_bytes()

    db = FallbackDatabase(path, stamp=lambda: "20261201T210003Z")
    found = db.open()

    assert found.moved is not None and found.fault is None
    assert found.moved.moved_to.read_bytes() == damaged  # kept as it was, for inspection
    assert found.moved.carried == 2
    assert "2 queued messages" in found.moved.sentence()
    reopened = Outbox(db, TOPICS, max_rows=100, receipts=True)
    after = reopened.fetch_after(0, 10)
    assert [(r.id, r.topic, r.payload) for r in after] == [
        (r.id, r.topic, r.payload) for r in before
    ]
    assert [r.id for r in reopened.awaiting_receipt(10)] == [before[0].id]
    assert reopened.receipted([published.id]) == 1  # the caregiver's receipt still lands
    store = EventStore(db)
    assert [s.event.id for s in store.events()] == [published.id, unpublished.id]
    store.append(alert(t=3.0))  # numbered on after the old file's last: one sequence goes on
    assert sorted(s.seq for s in store.events()) == [1, 2, 4]
    db.close()


def test_a_damaged_file_on_a_disk_that_refuses_a_new_one_still_publishes_its_queue(
    tmp_path: Path, disk: FillableDisk, caplog: pytest.LogCaptureFixture
) -> None:
    """Damaged, and the disk refuses the new file (read-only after the rename): the queue read
    out of the damaged file seeds memory, so its alerts are still published there and reach
    the new file once the disk takes writes (before: memory started empty, the queue stayed
    in the moved-aside file)."""
    path = tmp_path / "events.db"
    outbox = Outbox(path, TOPICS, max_rows=100, receipts=True)
    fall = alert()
    outbox.enqueue_event(fall)
    before = outbox.fetch_after(0, 10)
    outbox.close()
    break_the_sessions_table(path)
    disk.go_read_only()

    db = FallbackDatabase(path)
    found = db.open()

    assert found.moved is not None and db.in_memory
    assert found.fault is not None and "cannot create a new database" in found.fault
    # The journal says no new file was created (before: "and a new one started").
    assert "and no new one could be created (" in caplog.text
    assert "a new one started" not in caplog.text
    queue = Outbox(db, TOPICS, max_rows=100, receipts=True)
    assert [(r.id, r.payload) for r in queue.fetch_after(0, 10)] == [
        (r.id, r.payload) for r in before
    ]
    disk.free()
    assert db.recover(now=True)
    assert [r.id for r in Outbox(db, TOPICS, max_rows=100).fetch_after(0, 10)] == [before[0].id]
    db.close()


def test_a_damaged_file_whose_queue_cannot_be_read_still_opens_a_new_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    damage("truncated", path)  # two thirds of its pages gone: the queue cannot be read
    found = FallbackDatabase(path).open()
    assert found.moved is not None and found.moved.carried == 0
    assert "queued messages" not in found.moved.sentence()


def _cut_power(path: Path, to: Path) -> Path:
    """The files at ``path`` as a power cut leaves them: copied while its store is open (the
    write-ahead log not checkpointed into the database); the copy's path."""
    to.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            shutil.copyfile(f"{path}{suffix}", to / f"{path.name}{suffix}")
    return to / path.name


def _queued_alerts(tmp_path: Path, before_checkpoint: int, after: int) -> Outbox:
    """A store with alerts queued, ``before_checkpoint`` of them checkpointed into the file."""
    outbox = Outbox(tmp_path / "events.db", TOPICS, max_rows=100, receipts=True)
    for i in range(before_checkpoint):
        outbox.enqueue_event(alert(t=float(i)))
    outbox.database.read(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
    for i in range(after):
        outbox.enqueue_event(alert(t=100.0 + i))
    return outbox


def _flip(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_a_damaged_write_ahead_log_is_reported_not_silently_dropped(tmp_path: Path) -> None:
    """SQLite ignores a log whose header is wrong: the database opened as a new, empty one, the
    alerts committed since the last checkpoint (here: all of them) gone without a word, and
    the first write overwrote the evidence. Now the file moves aside with its log, kept."""
    outbox = _queued_alerts(tmp_path, before_checkpoint=0, after=3)
    path = _cut_power(tmp_path / "events.db", tmp_path / "cut")
    outbox.close()
    _flip(Path(f"{path}-wal"), 16)  # a salt of the log's header
    damaged_log = Path(f"{path}-wal").read_bytes()

    found = FallbackDatabase(path, stamp=lambda: "20261201T210003Z").open()

    assert found.moved is not None
    assert "write-ahead log damaged: its header is not a write-ahead log's" in found.moved.why
    assert "may be missing" in found.moved.sentence()
    assert Path(f"{found.moved.moved_to}-wal").read_bytes() == damaged_log  # for inspection


def test_a_write_ahead_log_broken_mid_way_is_reported_and_what_precedes_is_carried(
    tmp_path: Path,
) -> None:
    """A frame damaged inside the log: SQLite replays up to it and drops the commits after it
    silently. Now that is reported, and the queue as far as it can be read comes along."""
    outbox = _queued_alerts(tmp_path, before_checkpoint=2, after=3)
    queued = outbox.fetch_after(0, 10)
    path = _cut_power(tmp_path / "events.db", tmp_path / "cut")
    outbox.close()
    (page_size,) = file_rows(tmp_path / "events.db", "PRAGMA page_size")[0]
    last_frame = (Path(f"{path}-wal").stat().st_size - 32) // (24 + page_size) - 1
    _flip(Path(f"{path}-wal"), 32 + (24 + page_size) * (last_frame - 1) + 24 + 100)

    db = FallbackDatabase(path)
    found = db.open()

    assert found.moved is not None
    assert f"frame {last_frame} is damaged and commits of the same log follow it" in (
        found.moved.why
    )
    carried = Outbox(db, TOPICS, max_rows=100, receipts=True).fetch_after(0, 10)
    assert len(carried) == found.moved.carried >= 2  # the checkpointed ones at least
    assert [r.payload for r in carried] == [r.payload for r in queued[: len(carried)]]
    db.close()


def test_a_log_torn_in_a_transaction_never_committed_is_not_taken_for_damage(
    tmp_path: Path,
) -> None:
    """A power cut in the middle of a transaction whose pages already spilled into the log: its
    frames may land in any order, one garbled before the others; without its commit frame it
    was never committed, nothing is missing, and the file stays."""
    outbox = Outbox(tmp_path / "events.db", TOPICS, max_rows=100, receipts=True)
    outbox.enqueue_event(alert())
    queued = outbox.fetch_after(0, 10)
    writer = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    writer.execute("PRAGMA cache_size = 1")  # its pages go to the log before any commit
    writer.execute("BEGIN")
    frames_before = Path(f"{tmp_path / 'events.db'}-wal").stat().st_size
    writer.executemany(
        "INSERT INTO runs (monitor, started_wall) VALUES (?, ?)",
        [(str(i), "x" * 3000) for i in range(40)],
    )
    path = _cut_power(tmp_path / "events.db", tmp_path / "cut")
    writer.execute("ROLLBACK")
    writer.close()
    outbox.close()
    (page_size,) = file_rows(tmp_path / "events.db", "PRAGMA page_size")[0]
    assert Path(f"{path}-wal").stat().st_size > frames_before + 2 * (24 + page_size)
    _flip(Path(f"{path}-wal"), frames_before + 24 + 100)  # the transaction's first frame

    db = FallbackDatabase(path)
    found = db.open()

    assert found.moved is None and found.fault is None
    assert Outbox(db, TOPICS, max_rows=100).fetch_after(0, 10) == queued
    db.close()


def test_a_sound_log_left_by_a_crash_is_replayed_not_taken_for_damage(tmp_path: Path) -> None:
    """A log restarted after a checkpoint keeps the older log's frames behind the new ones: not
    damage; every commit is there."""
    outbox = Outbox(tmp_path / "events.db", TOPICS, max_rows=100, receipts=True)
    for i in range(6):
        outbox.enqueue_event(alert(t=float(i)))
    outbox.database.read(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())
    outbox.enqueue_event(alert(t=10.0))  # the log starts over, older frames after it
    queued = outbox.fetch_after(0, 10)
    path = _cut_power(tmp_path / "events.db", tmp_path / "cut")
    outbox.close()

    db = FallbackDatabase(path)
    found = db.open()

    assert found.moved is None and found.fault is None
    assert Outbox(db, TOPICS, max_rows=100).fetch_after(0, 10) == queued
    db.close()


def test_a_file_moves_aside_with_its_wal_and_shm(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    for suffix, content in (("", b"main"), ("-wal", b"wal"), ("-shm", b"shm")):
        Path(f"{path}{suffix}").write_bytes(content)
    moved = move_aside(path, "20261201T210003Z")
    assert not path.exists() and not Path(f"{path}-wal").exists()
    assert [Path(f"{moved}{s}").read_bytes() for s in ("", "-wal", "-shm")] == [
        b"main",
        b"wal",
        b"shm",
    ]


def test_a_second_damage_in_the_same_second_gets_its_own_name(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    for _ in range(2):
        damage("random bytes", path)
        FallbackDatabase(path, stamp=lambda: "20261201T210003Z").open()
    assert [p.name for p in moved_aside_files(path)] == [
        "events.db.damaged-20261201T210003Z",
        "events.db.damaged-20261201T210003Z-2",
    ]


def test_a_sound_file_is_left_where_it_is(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    EventStore(path).close()
    db = FallbackDatabase(path)
    assert db.open().moved is None
    assert moved_aside_files(path) == []
    db.close()


# ------------------------------------------------------------------------ full disk


def test_a_disk_that_refuses_writes_at_start_sends_records_to_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    db = FallbackDatabase(blocker / "events.db")
    found = db.open()
    assert db.in_memory and found.moved is None
    assert found.fault is not None and "cannot write" in found.fault
    outbox = Outbox(db, TOPICS)
    fall = alert()
    outbox.enqueue_event(fall)
    assert db.holds_in_memory(fall.id)
    assert [r.id for r in outbox.fetch_after(0, 10)] == [1]  # queued: it is still published
    db.close()


def test_a_full_disk_sends_records_to_memory_with_the_queue_and_ids_kept(
    tmp_path: Path, disk: FillableDisk
) -> None:
    heard = Heard()
    db = opened(tmp_path / "events.db", heard)
    outbox = Outbox(db, TOPICS, receipts=True)
    before = [alert(t=float(i)) for i in range(3)]
    for event in before:
        outbox.enqueue_event(event)
    outbox.settle([1])  # the broker has the first: it waits for a receipt
    generation = outbox.generation

    disk.fill()
    during = [alert(t=10.0 + i) for i in range(5)]
    for event in during:
        outbox.enqueue_event(event)

    assert db.in_memory and outbox.generation != generation
    assert len(heard.lost) == 1 and "the disk is full" in heard.lost[0]  # once, not per write
    assert [db.holds_in_memory(e.id) for e in before + during] == [False] * 3 + [True] * 5
    rows = outbox.fetch_after(0, 100)
    assert [r.id for r in rows] == list(range(1, 9))  # the file's rows copied, ids continued
    assert [r.id for r in outbox.awaiting_receipt(10)] == [1]  # receipt state copied too
    assert EventStore(db).events()[-1].event.id == during[-1].id
    with EventStore(tmp_path / "events.db") as on_disk:  # nothing new reached the file
        assert [s.event.id for s in on_disk.events()] == [e.id for e in before]
    db.close()


def test_the_disk_is_tried_again_every_few_seconds_and_everything_lands_on_it(
    tmp_path: Path, disk: FillableDisk
) -> None:
    heard, clock = Heard(), Clock()
    path = tmp_path / "events.db"
    db = opened(path, heard, clock=clock)
    outbox = Outbox(db, TOPICS, receipts=True)
    copied = [alert(t=float(i)) for i in range(4)]
    for event in copied:
        outbox.enqueue_event(event)
    with transaction(connect(path)) as conn:
        begin_run(conn, "100", "2026-12-01T20:00:00.000+00:00")

    disk.fill()
    new = [alert(t=10.0 + i) for i in range(3)]
    for event in new:
        outbox.enqueue_event(event)
    assert db.in_memory
    # While in memory: the broker takes rows, a consumer confirms one, a caregiver acks one,
    # a session ends and a run starts.
    outbox.settle([1, 2, 5])  # 1, 2 copied from the file; 5 made in memory
    assert outbox.receipted([copied[0].id]) == 1
    assert outbox.acknowledge(new[0].id, "anna") == (new[0].id, True)
    db.write(lambda conn: write_session(conn, RECORD), key=RECORD.id)
    db.write(lambda conn: begin_run(conn, "200", "2026-12-01T21:00:00.000+00:00"))

    disk.free()
    clock.now += DISK_RETRY_S - 0.1
    assert not db.recover()  # not due yet: the disk is not hammered
    clock.now += 0.2
    assert db.recover()

    assert not db.in_memory and heard.lost and len(heard.back) == 1
    now_on_disk, detail = heard.back[0]
    assert set(now_on_disk) == {e.id for e in new} | {RECORD.id}
    assert "takes writes again" in detail
    assert not any(db.holds_in_memory(e.id) for e in new)
    # The file holds what memory held, with the same numbers.
    assert file_rows(path, "SELECT seq, id FROM events ORDER BY seq") == [
        (i + 1, e.id) for i, e in enumerate(copied + new)
    ]
    assert file_rows(path, "SELECT id, awaiting_receipt FROM outbox ORDER BY id") == [
        (2, 1),  # broker has it, waiting for a receipt
        (3, 0),
        (4, 0),
        (5, 1),
        (6, 0),
        (7, 0),
    ]  # 1 was confirmed by its consumer while in memory: gone from the file too
    assert file_rows(path, "SELECT event_id, acked_by FROM event_acks") == [(new[0].id, "anna")]
    assert [s.record for s in load_sessions(path)] == [RECORD]  # intervals too
    assert file_rows(path, "SELECT monitor FROM runs ORDER BY id") == [("100",), ("200",)]
    # And the stores carry on on the file.
    later = alert(t=99.0)
    outbox.enqueue_event(later)
    assert not db.holds_in_memory(later.id)
    assert file_rows(path, "SELECT max(seq) FROM events") == [(8,)]
    db.close()


def test_a_disk_still_full_at_the_retry_keeps_everything_in_memory(
    tmp_path: Path, disk: FillableDisk
) -> None:
    heard = Heard()
    db = opened(tmp_path / "events.db", heard)
    store = EventStore(db)
    disk.fill()
    fall = alert()
    store.append(fall)
    for _ in range(3):
        assert not db.recover(now=True)
    assert db.in_memory and db.holds_in_memory(fall.id) and heard.back == []
    assert len(heard.lost) == 1
    db.close()


def test_a_file_damaged_while_in_memory_is_moved_aside_at_the_retry(
    tmp_path: Path, disk: FillableDisk
) -> None:
    heard = Heard()
    path = tmp_path / "events.db"
    db = opened(path, heard)
    store = EventStore(db)
    disk.fill()
    fall = alert()
    store.append(fall)
    damage("random bytes", path)
    disk.free()
    assert db.recover(now=True)
    assert len(heard.replaced) == 1 and heard.replaced[0].moved_to.exists()
    with EventStore(path) as fresh:
        assert [s.event.id for s in fresh.events()] == [fall.id]
    db.close()


def test_memory_is_bounded_and_a_write_beyond_it_fails_without_harm(
    tmp_path: Path, disk: FillableDisk
) -> None:
    db = opened(tmp_path / "events.db", memory_limit_bytes=256 * 1024)
    store = EventStore(db)
    disk.fill()
    kept: list[str] = []
    with pytest.raises(sqlite3.OperationalError, match="full"):
        for i in range(10_000):
            event = alert(t=float(i), kind=EventType.NO_RECOVERY)
            store.append(event)
            kept.append(event.id)
    assert len(kept) > 10 and all(db.holds_in_memory(i) for i in kept)
    assert [s.event.id for s in store.events()] == kept
    db.close()


def test_a_file_database_is_what_tools_open(tmp_path: Path) -> None:
    db = FileDatabase(tmp_path / "events.db")
    assert db.generation == 0
    assert db.write(lambda conn: begin_run(conn, "1", "t"))
    assert db.read(lambda conn: find_run(conn, "1", "t")) is not None
    db.close()


def test_recordings_and_incidents_cross_into_memory_and_back(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """A trip's recording queued on the file is still published from memory; an incident
    closed while in memory, and a recording made there, land on the file."""
    clock = Clock()
    path = tmp_path / "events.db"
    db = opened(path, Heard(), clock=clock)
    outbox = Outbox(db, TOPICS)
    incident = "e" * 32
    trip = Event.now(EventType.FALL, "tm-1", 1.0, "TRIPPED", "fall", incident=incident)
    first = window_of(trip, 11.0)
    outbox.enqueue_event(trip)
    outbox.enqueue_event(first)

    disk.fill()
    second = window_of(trip, 12.0)  # too big for the full disk: memory from here
    outbox.enqueue_event(second)
    assert db.in_memory
    assert sum('"recording"' in r.payload for r in outbox.fetch_after(0, 100)) == 2
    done = outbox.close_incident(Ack(incident=incident, by="Ann", via="dashboard"), closed_by)
    assert done.closed_event is not None and not done.already

    disk.free()
    clock.now += DISK_RETRY_S + 0.1
    assert db.recover() and not db.in_memory
    assert file_rows(path, "SELECT event_id FROM recordings ORDER BY event_id") == sorted(
        [(first.id,), (second.id,)]
    )
    assert file_rows(path, "SELECT closed_by, closed_via FROM incidents") == [("Ann", "dashboard")]
    with EventStore(path) as on_disk:
        stored = {s.event.id: s.event for s in on_disk.events()}
    assert stored[second.id].recording == second.recording
    db.close()


def test_a_walker_chosen_in_memory_names_the_incident_opened_there_and_lands_on_the_file(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """The walker profiles cross into memory: Ben chosen while the disk is full is the walker an
    incident opened then names on the wire, and his choice and the incident reach the file."""
    from firmware.storage.walkers import add_walker, roster, select_walker

    clock = Clock()
    path = tmp_path / "events.db"
    conn = connect(path)
    with transaction(conn):
        add_walker(conn, "Ben", walker_id="ben", by="Jo", wall="w1")
    conn.close()
    db = opened(path, Heard(), clock=clock)
    outbox = Outbox(db, TOPICS)
    outbox.enqueue_event(alert())  # queued on the file, carried into memory

    disk.fill()
    outbox.enqueue_event(alert(t=1.2))  # too big for the full disk: memory from here
    assert db.in_memory
    db.write(lambda c: select_walker(c, "ben", by="walker", via="button", wall="w2"))
    trip = Event.now(EventType.FALL, "tm-1", 2.0, "TRIPPED", "fall", incident="b" * 32)
    outbox.enqueue_event(trip)
    outbox.enqueue_event(window_of(trip, 12.0))
    assert db.read(roster).selected.id == "ben"
    published = [r.payload for r in outbox.fetch_after(0, 100) if trip.id in r.payload]
    assert published and all('"walker":"ben"' in p for p in published)

    disk.free()
    clock.now += DISK_RETRY_S + 0.1
    assert db.recover() and not db.in_memory
    assert file_rows(path, "SELECT walker FROM incidents") == [("ben",)]
    assert file_rows(
        path, "SELECT walker FROM walker_changes WHERE change = 'selected' ORDER BY id"
    ) == [("ben",)]
    assert file_rows(path, "SELECT id FROM walkers ORDER BY id") == [("ben",), ("default",)]
    db.close()


def window_of(trip: Event, t: float) -> Event:
    return Event.now(
        EventType.WINDOW,
        "tm-1",
        t,
        "TRIPPED",
        "IMU around the fall",
        incident=trip.incident,
        of=trip.id,
        recording=RECORDING,
    )


def closed_by(incident: str, by: str, via: str) -> Event:
    return Event.now(
        EventType.CLOSED, "tm-1", 20.0, "TRIPPED", "closed", incident=incident, by=by, via=via
    )


def test_a_queue_salvaged_at_the_retry_reaches_the_file_though_memory_never_held_it(
    tmp_path: Path, disk: FillableDisk, caplog: pytest.LogCaptureFixture
) -> None:
    """The disk went read-only with more queued than memory's bound, so memory took over empty
    (the file keeps its queue until it takes writes). At the retry the file is found damaged:
    it is moved aside and its queue salvaged, but the disk still refuses the new file. That
    queue is kept and carried into the file once it takes writes, ids and receipt state with
    it (before: closed, the alerts left only in the moved-aside file, never sent again)."""
    heard = Heard()
    path = tmp_path / "events.db"
    db = opened(path, heard, memory_limit_bytes=256 * 1024)
    outbox = Outbox(db, TOPICS, max_rows=100, receipts=True)
    queued = [alert(t=float(i)) for i in range(40)]  # more than memory holds
    for event in queued:
        outbox.enqueue_event(event)
    outbox.settle([1])  # the broker has the first: it waits for a receipt
    before = file_rows(path, "SELECT id, message_id, awaiting_receipt FROM outbox ORDER BY id")

    disk.go_read_only()
    during = alert(t=100.0, kind=EventType.NO_RECOVERY)
    outbox.enqueue_event(during)
    assert db.in_memory and [r.id for r in outbox.fetch_after(0, 100)] == [41]  # none copied
    break_the_sessions_table(path)
    assert not db.recover(now=True)  # moved aside, its queue salvaged; no new file yet
    # The FAULT and the journal say no new file was created (before: "a new one started").
    assert len(heard.replaced) == 1
    assert "no new one could be created (" in heard.replaced[0].sentence()
    assert "no new one could be created (" in caplog.text
    assert "a new one started" not in caplog.text + heard.replaced[0].sentence()
    assert not db.recover(now=True)  # a retry that changes nothing copies nothing twice

    disk.free()
    assert db.recover(now=True)
    after = file_rows(path, "SELECT id, message_id, awaiting_receipt FROM outbox ORDER BY id")
    assert after[:-1] == before and after[-1][:2] == (41, during.id)
    assert file_rows(path, "SELECT id FROM events ORDER BY seq") == [
        (e.id,) for e in [*queued, during]
    ]
    assert outbox.receipted([queued[0].id]) == 1  # the caregiver's receipt still lands
    db.close()


def test_a_queue_salvaged_at_the_retry_does_not_bring_back_what_memory_delivered(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """As above with memory seeded from the file: rows delivered while in memory stay
    delivered when the salvaged queue is carried in (memory's word is the newer)."""
    path = tmp_path / "events.db"
    db = opened(path, Heard())
    outbox = Outbox(db, TOPICS, max_rows=100)
    for i in range(3):
        outbox.enqueue_event(alert(t=float(i)))
    disk.go_read_only()
    outbox.enqueue_event(alert(t=10.0))
    assert db.in_memory and [r.id for r in outbox.fetch_after(0, 10)] == [1, 2, 3, 4]
    outbox.settle([1, 4])  # delivered from memory: gone
    break_the_sessions_table(path)
    assert not db.recover(now=True)
    disk.free()
    assert db.recover(now=True)
    assert file_rows(path, "SELECT id FROM outbox ORDER BY id") == [(2,), (3,)]
    db.close()


def test_a_salvaged_queue_memory_cannot_hold_at_start_reaches_the_file_later(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """Damaged at start, the disk refusing the new file, and the salvaged queue bigger than
    memory's bound: memory starts empty, the queue is kept and carried into the file once it
    takes writes (before: closed when seeding failed, left only in the moved-aside file)."""
    path = tmp_path / "events.db"
    outbox = Outbox(path, TOPICS, max_rows=100, receipts=True)
    for i in range(40):  # more than memory holds
        outbox.enqueue_event(alert(t=float(i)))
    outbox.settle([1])
    outbox.close()
    before = file_rows(path, "SELECT id, message_id, awaiting_receipt FROM outbox ORDER BY id")
    break_the_sessions_table(path)
    disk.go_read_only()

    db = FallbackDatabase(path, memory_limit_bytes=256 * 1024)
    found = db.open()
    assert found.moved is not None and db.in_memory
    assert Outbox(db, TOPICS, max_rows=100).fetch_after(0, 100) == []  # memory could not
    disk.free()
    assert db.recover(now=True)
    assert file_rows(path, "SELECT id, message_id, awaiting_receipt FROM outbox ORDER BY id") == (
        before
    )
    db.close()


def test_a_salvaged_queue_not_carried_before_a_stop_is_carried_at_the_next_start(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """Damaged at start and the disk refusing the new file: the salvaged queue lived only in
    memory (or in the list waiting for the disk), and a monitor stopped before the disk took
    writes again left those alerts only in the moved-aside file, never sent. The file is now
    marked as still to be carried, and the next start that gets a writable file carries its
    queue in — once: the start after that carries nothing again."""
    path = tmp_path / "events.db"
    outbox = Outbox(path, TOPICS, max_rows=100, receipts=True)
    for i in range(3):
        outbox.enqueue_event(alert(t=float(i)))
    outbox.settle([1])  # the broker has the first: it waits for a receipt
    outbox.close()
    before = file_rows(path, "SELECT id, message_id, awaiting_receipt FROM outbox ORDER BY id")
    break_the_sessions_table(path)
    disk.go_read_only()

    db = FallbackDatabase(path)
    found = db.open()
    assert found.moved is not None and db.in_memory
    assert [r.id for r in Outbox(db, TOPICS, max_rows=100).fetch_after(0, 100)] == [1, 2, 3]
    db.close()  # the monitor stops before the disk takes writes
    mark = Path(f"{found.moved.moved_to}{UNCARRIED}")
    assert mark.exists() and moved_aside_files(path) == [found.moved.moved_to]

    disk.free()
    again = FallbackDatabase(path)
    assert again.open().moved is None and not again.in_memory
    again.close()
    assert file_rows(path, "SELECT id, message_id, awaiting_receipt FROM outbox ORDER BY id") == (
        before
    )
    assert moved_aside_files(path) == [found.moved.moved_to]  # kept for inspection
    assert not mark.exists()
    delivered = Outbox(path, TOPICS, max_rows=100, receipts=True)
    delivered.settle([2, 3])
    assert delivered.receipted([str(r[1]) for r in before]) == 3  # the caregiver has them
    delivered.close()
    third = FallbackDatabase(path)
    third.open()
    third.close()
    assert file_rows(path, "SELECT id FROM outbox") == []  # not carried a second time


class _PausingGate(_Gate):
    """The database's gate, which stops ``paused`` when it comes back for the gate after
    moving the records to memory (holding nothing), until ``go`` is set."""

    def __init__(self, paused: threading.Thread) -> None:
        super().__init__()
        self.paused_thread = paused
        self.moved = False
        self.waiting = threading.Event()
        self.go = threading.Event()

    @contextmanager
    def shared(self) -> Iterator[None]:
        if threading.current_thread() is self.paused_thread and self.moved:
            self.waiting.set()
            assert self.go.wait(WAIT), "the test never let the writer go on"
        with super().shared():
            yield

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with super().exclusive():
            yield
        if threading.current_thread() is self.paused_thread:
            self.moved = True


def test_a_recovery_between_a_move_and_its_report_is_told_after_the_loss(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """The thread whose write the full disk refused moves the records to memory, then runs
    its write again there and only then reports the loss. A recovery in between (the retry
    fell due, or the courier's last try at its stop) told the return first, and the late
    loss began a second episode for the listener — the courier's FAULT event and arming
    refused — with the records already on disk and no return ever to follow. Driven
    step by step: the writer is held, holding nothing, between its move and its work."""
    heard = Heard()
    path = tmp_path / "events.db"
    db = opened(path, heard)
    store = EventStore(db)
    fall = alert()
    failed: list[BaseException] = []

    def write() -> None:
        try:
            store.append(fall)
        except BaseException as exc:
            failed.append(exc)

    writer = threading.Thread(target=write, name="writer", daemon=True)
    gate = db._gate = _PausingGate(writer)
    disk.fill()
    writer.start()
    assert gate.waiting.wait(WAIT)  # moved to memory; its write not yet run again
    assert db.in_memory and db.episodes == 1
    disk.free()
    assert db.recover(now=True)  # the file takes writes again before the writer goes on
    assert heard.order == ["lost", "back"]  # the loss told before its return, by the recovery
    gate.go.set()
    writer.join(WAIT)
    assert not writer.is_alive() and failed == []
    assert heard.order == ["lost", "back"]  # and not again by the writer: one episode, ended
    assert db.episodes == 1 and not db.in_memory and db.fault is None
    assert heard.lost and "full" in heard.lost[0]
    with EventStore(path) as on_disk:  # the write ran again on the file, after the return
        assert [s.event.id for s in on_disk.events()] == [fall.id]
    db.close()
