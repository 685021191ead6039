"""Session records survive a storage fault: what memory keeps while the file refuses writes
reaches the file whole, a session a power cut left running is closed once though the next
start found the file unwritable, and a trip is in the session's stored figures as soon as
its event is.

Real SQLite files (the disk made read-only with SQLite's own ``query_only``:
tests/storage_support.py), the real courier on a thread with a real Mosquitto, the runner on
a simulated rig.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from pathlib import Path

import msgspec
import pytest

from core.protocol.messages import SessionRecord
from core.protocol.walker import Walker
from firmware.link import messages
from firmware.link.endpoint import CourierLink
from firmware.link.supervisor import CourierSupervisor, ThreadCourier
from firmware.session.plan import Interval, Plan
from firmware.session.record import SessionArchive
from firmware.session.runner import SessionState, attach_session, detach_session
from firmware.storage.database import connect, transaction
from firmware.storage.fallback import FallbackDatabase
from firmware.storage.schema import migrate
from firmware.storage.sessions import FINAL_DUE, close_left_running, load_sessions
from firmware.storage.transfer import SESSIONS_KEPT, merge, seed_sessions
from tests.app_support import TripAt, armed_rig, close_rigs, make_config, pump_link_until
from tests.caregiver_support import session_record
from tests.mqtt_helpers import WAIT, config_for, subscriber
from tests.storage_support import FillableDisk, PowerCuts, break_the_root_page
from tests.test_storage_faults import MonitorProcess, monitors  # noqa: F401 - fixture
from tools.broker import Mosquitto

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

UTC = dt.UTC
TOPIC = "retroguard/tm-1/session"
DAY = dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def ended(device_id: str = "tm-1") -> SessionRecord:
    return session_record(device_id, DAY, backward_min=12, longest_min=10)


def running(record: SessionRecord) -> SessionRecord:
    return msgspec.structs.replace(record, status="running", ended_wall=None)


def rows(path: Path, query: str, *params: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def on_file(path: Path) -> FallbackDatabase:
    db = FallbackDatabase(path)
    assert db.open().fault is None
    return db


# ------------------------------------------------------------ memory and back


def test_an_end_stored_in_memory_keeps_its_final_record_due_on_the_file(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """The session started on the file; the disk went read-only; its end was stored in memory
    (final record due); the disk came back. Before, the merge kept the higher ``published``,
    the file's 0 over memory's -1: a monitor stopped before the final record left the session
    ended and never summarised."""
    path = tmp_path / "device.db"
    db = on_file(path)
    archive = SessionArchive(db, summary_topic=TOPIC)
    record = ended()
    assert archive.save(running(record), final=False)
    disk.go_read_only()
    assert archive.save(record, final=False)  # the end; its final record waits for gait figures
    assert db.in_memory
    disk.free()
    assert db.recover(now=True)
    archive.close()
    db.close()
    assert rows(path, "SELECT status, published FROM sessions") == [("completed", FINAL_DUE)]

    with transaction(connect(path)) as conn:  # the next start finishes it, once
        finished = close_left_running(conn, archive.summary_for)
        again = close_left_running(conn, archive.summary_for)
    assert [r.id for r in finished] == [record.id] and again == []
    assert rows(path, "SELECT count(*) FROM outbox WHERE message_id = ?", record.id) == [(1,)]


def test_a_final_record_handed_over_again_in_memory_is_not_summarised_twice(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """Its summary queued (and delivered) from the file; the same final record again while the
    disk refuses writes (the loop hands a record over again when the courier that stored it
    died before confirming). Memory knew nothing of the session and queued its summary
    again."""
    path = tmp_path / "device.db"
    db = on_file(path)
    archive = SessionArchive(db, summary_topic=TOPIC)
    record = ended()
    assert archive.save(record, final=True)
    db.write(lambda conn: conn.execute("DELETE FROM outbox"))  # the broker took it
    disk.go_read_only()
    db.probe()
    assert db.in_memory
    assert archive.save(record, final=True)
    assert archive.published == 1
    assert db.read(lambda conn: conn.execute("SELECT count(*) FROM outbox").fetchone()) == (0,)
    disk.free()
    assert db.recover(now=True)
    archive.close()
    db.close()
    assert rows(path, "SELECT published FROM sessions") == [(1,)]
    assert rows(path, "SELECT count(*) FROM outbox") == [(0,)]


def test_a_session_stored_in_memory_keeps_its_walker_and_falls_on_the_file(
    tmp_path: Path, disk: FillableDisk
) -> None:
    """The merge copied the columns of the first release only: a session stored in memory came
    to the file as the default walker's with no falls, and every per-walker count (the week's
    progress, ``retroguard sessions --walker``) missed it."""
    path = tmp_path / "device.db"
    db = on_file(path)
    disk.go_read_only()
    db.probe()
    assert db.in_memory
    record = msgspec.structs.replace(
        session_record("tm-1", DAY, backward_min=12, longest_min=10, trips=2, stumbles=1),
        walker=Walker("ann", "Ann"),
        falls=1,
        no_recovery=1,
    )
    archive = SessionArchive(db)
    assert archive.save(record, final=True)
    disk.free()
    assert db.recover(now=True)
    archive.close()
    db.close()
    assert rows(path, "SELECT walker, falls, no_recovery FROM sessions") == [("ann", 1, 1)]
    assert [s.record.id for s in load_sessions(path, walker="ann")] == [record.id]


# --------------------------------------------------- a start on an unwritable file


def test_a_session_left_running_is_closed_once_by_a_start_on_a_read_only_disk(
    tmp_path: Path,
    mosquitto: Mosquitto,
    disk: FillableDisk,
    monitors: list[MonitorProcess],  # noqa: F811 - fixture
) -> None:
    """A power cut left a session running; the next start finds the disk read-only (the courier
    runs from memory). Before, memory knew no session: nobody closed it while the disk
    refused writes, nor once it took them again. Now it is closed at the start, summarised
    as interrupted, and the closing lands on the file when it takes writes: a later start
    leaves it as it is."""
    config = make_config(tmp_path, config_for(mosquitto))
    db = Path(config.storage.database)
    now = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    left = msgspec.structs.replace(
        session_record(config.device.id, now, backward_min=2, longest_min=2, status="running"),
        ended_wall=None,
        done_s=300.0,
    )
    archive = SessionArchive(db)
    assert archive.save(left, final=False)
    archive.close()
    assert config.mqtt is not None
    prefix = f"{config.mqtt.topic_prefix}/{config.device.id}"
    disk.go_read_only()
    with subscriber(mosquitto, [f"{prefix}/session"]) as sub:
        link = CourierLink(time.monotonic)
        started = dt.datetime.now(UTC).isoformat(timespec="milliseconds")
        link.hello(messages.encode(messages.Hello(config, os.getpid(), started)))
        supervisor = CourierSupervisor(link, ThreadCourier)
        supervisor.start()
        try:
            assert pump_link_until(link, lambda: link.storage_ok is False)
            assert pump_link_until(link, lambda: bool(sub.on("/session")))
            disk.free()
            assert pump_link_until(link, lambda: link.storage_ok is True)  # the retry's merge
        finally:
            link.goodbye("test over")
            link.close()
            supervisor.stop(WAIT)
    # One summary queued, once: the publisher sends the outbox again from its start when it
    # moves between memory and the file (QoS 1; the caregiver keeps one row per session id).
    (payload,) = {m.payload for m in sub.on("/session")}
    body = json.loads(payload)
    assert (body["id"], body["status"], body["interrupted"]) == (left.id, "stopped", True)
    (stored,) = load_sessions(db)
    closed = stored.record
    assert closed.status == "stopped" and closed.interrupted
    assert rows(db, "SELECT published FROM sessions") == [(1,)]
    summaries = "SELECT id, payload FROM outbox WHERE message_id = ?"
    queued = rows(db, summaries, left.id)  # the one from memory, unless the broker took it
    assert len(queued) <= 1

    again = MonitorProcess(db)  # the next start, on the file: nothing left to close
    monitors.append(again)
    again.stop()
    assert [s.record for s in load_sessions(db)] == [closed]
    assert rows(db, summaries, left.id) == queued


# ------------------------------------------------------------- a trip's figures

PLAN = Plan("short", (Interval.of_seconds("backward", 30.0), Interval.of_seconds("forward", 20.0)))


def test_a_trip_during_the_walkers_pause_is_handed_over_at_once(tmp_path: Path) -> None:
    """The walker paused the session (the belt still armed) and tripped: the trip was counted
    but no record went to the courier until the next interval's end or the session's end,
    minutes later perhaps; a power cut meanwhile lost it from the session's figures, though
    its event was stored."""
    rig = armed_rig(tmp_path, detector=TripAt(8.0))
    handed: list[SessionRecord] = []
    rig.app.link.submit_session = lambda record, final: handed.append(record)  # type: ignore[method-assign]
    runner = attach_session(rig.app, PLAN, speaker=None)
    try:
        runner.request("start")
        rig.run_for(3.0)
        runner.request("pause")
        rig.run_for(2.0)
        assert handed[-1].status == "running" and handed[-1].trips == 0
        before = len(handed)
        rig.run_for(6.0)  # the trip at 8 s, during the pause
        assert rig.state == "TRIPPED"
        assert len(handed) == before + 1
        assert (handed[-1].trips, handed[-1].stumbles) == (1, 1)
        assert handed[-1].intervals[0].trips == 1
    finally:
        detach_session(rig.app, runner)


def _trip_kept(path: Path) -> tuple[int, int]:
    """(stumble events, the session's trips) as the file holds them (0 trips: no session)."""
    conn = sqlite3.connect(path)
    try:
        (stumbles,) = conn.execute("SELECT count(*) FROM events WHERE type = 'stumble'").fetchone()
        (trips,) = conn.execute("SELECT coalesce(max(trips), 0) FROM sessions").fetchone()
        return int(stumbles), int(trips)
    finally:
        conn.close()


def test_a_power_cut_keeps_a_trips_event_and_its_count_in_the_session_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trip pauses a running session and hands its record (the trip counted) over right
    behind the trip's event. The courier committed the two one after the other: a power cut
    between the commits kept the event (the alert) and lost the trip from the session's
    figures. Now the loop sends them in one piece and the courier commits them in one
    transaction: a cut at any transaction boundary keeps both or neither."""
    cuts = PowerCuts(_trip_kept)
    monkeypatch.setattr("firmware.storage.fallback.connect", cuts.connect)
    rig = armed_rig(tmp_path, detector=TripAt(8.0))
    link = rig.app.link
    runner = attach_session(rig.app, PLAN, speaker=None)
    try:
        runner.request("start")
        rig.run_for(6.0)
        # Everything before the trip is stored (the session's first row among it).
        assert pump_link_until(link, lambda: link.pending == 0 and not len(link._writer))
        rig.run_for(3.0)  # the trip at 8 s pauses the running session
        assert rig.state == "TRIPPED" and runner.state is SessionState.PAUSED
        assert pump_link_until(link, lambda: _trip_kept(tmp_path / "events.db") == (1, 1))
    finally:
        detach_session(rig.app, runner)
    assert cuts.errors == []
    assert (0, 0) in cuts.cuts  # cuts before the trip, and the file after it holds both
    assert set(cuts.cuts) <= {(0, 0), (1, 1)}, f"a cut kept the trip's event alone: {cuts.cuts}"


def test_a_session_left_running_in_a_damaged_file_is_carried_into_the_new_one_and_closed(
    tmp_path: Path,
) -> None:
    """A power cut left a session running, and the file damaged (an index of the event log):
    the file is moved aside and a new one started with its queue. Before, the session stayed
    in the moved-aside file, running for ever, never closed nor summarised."""
    path = tmp_path / "device.db"
    left = running(ended())
    archive = SessionArchive(path)
    assert archive.save(left, final=False)
    archive.close()
    break_the_root_page(path, "events_device_seq")
    db = FallbackDatabase(path)
    found = db.open()
    assert found.moved is not None and found.fault is None
    (carried,) = db.write(lambda conn: close_left_running(conn))
    db.close()
    assert carried.id == left.id and carried.interrupted
    assert [s.record for s in load_sessions(path)] == [carried]


def test_memory_gets_the_sessions_a_record_may_come_for_however_many_ended_since(
    tmp_path: Path,
) -> None:
    """:func:`seed_sessions` copies those running and those whose final record is due, even
    with more than ``SESSIONS_KEPT`` ended after them, and of the rest the newest (a late
    amendment is about a recent one), not the oldest."""
    disk = connect(str(tmp_path / "device.db"))
    memory = connect(":memory:")
    migrate(disk, "tm-1")
    migrate(memory, "tm-1")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def session(n: int, status: str, published: int) -> tuple[object, ...]:
        started = (start + dt.timedelta(days=n)).isoformat()
        return (f"s{n:02d}", "tm-1", "{}", status, started, 0, 0, 0, 0, 0, 0, 0, 0, "{}", published)

    with transaction(disk):
        disk.executemany(
            "INSERT INTO sessions (id, device_id, plan, status, started_wall, planned_s, done_s,"
            " backward_s, longest_backward_s, steps, walking_s, trips, stumbles, body, published)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [session(0, "running", 0), session(1, "ended", FINAL_DUE)]
            + [session(n, "ended", 1) for n in range(2, 2 + SESSIONS_KEPT + 4)],
        )
        disk.executemany(
            "INSERT INTO session_intervals (session_id, idx, direction, speed, planned_s,"
            " done_s, steps, walking_s, cadence_spm, trips, stumbles)"
            " VALUES (?, ?, 'backward', 'slow', 60, 60, 50, 60, 50, 0, 0)",
            [("s00", 0), ("s00", 1), ("s21", 0)],
        )
    assert seed_sessions(memory, disk) == SESSIONS_KEPT + 2
    copied = {str(i) for (i,) in memory.execute("SELECT id FROM sessions")}
    newest = {f"s{n:02d}" for n in range(6, 2 + SESSIONS_KEPT + 4)}
    assert copied == {"s00", "s01"} | newest
    # their intervals with them: the merge back writes memory's intervals over the file's
    intervals = "SELECT session_id, idx FROM session_intervals ORDER BY session_id, idx"
    assert memory.execute(intervals).fetchall() == [("s00", 0), ("s00", 1), ("s21", 0)]
    with transaction(disk):
        merge(memory, disk, frozenset())
    assert disk.execute(intervals).fetchall() == [("s00", 0), ("s00", 1), ("s21", 0)]
    disk.close()
    memory.close()


@pytest.mark.parametrize(
    ("on_file", "in_memory", "merged"),
    [
        (2, 1, 2),
        (1, 2, 2),
        (0, 1, 1),
        (1, 0, 1),
        (1, FINAL_DUE, 1),  # queued on the file: not due again
        (0, FINAL_DUE, FINAL_DUE),  # an end stored in memory: its final record still due
    ],
)
def test_the_merge_back_keeps_the_higher_amendment_queued(
    tmp_path: Path, on_file: int, in_memory: int, merged: int
) -> None:
    """``published`` is the amendment whose summary is queued, plus one: the merge keeps the
    higher of a queued one on either side, so a summary queued is never queued again (a
    lower number would let the same amendment's record queue it a second time); with none
    queued, memory's word (an end stored there, its final record due)."""
    disk = connect(str(tmp_path / "device.db"))
    memory = connect(":memory:")
    for conn, published in ((disk, on_file), (memory, in_memory)):
        migrate(conn, "tm-1")
        with transaction(conn):
            conn.execute(
                "INSERT INTO sessions (id, device_id, plan, status, started_wall, planned_s,"
                " done_s, backward_s, longest_backward_s, steps, walking_s, trips, stumbles,"
                " body, published) VALUES ('s1', 'tm-1', '{}', 'ended',"
                " '2026-01-01T00:00:00+00:00', 0, 0, 0, 0, 0, 0, 0, 0, '{}', ?)",
                (published,),
            )
    with transaction(disk):
        merge(memory, disk, frozenset())
    assert disk.execute("SELECT published FROM sessions").fetchall() == [(merged,)]
    disk.close()
    memory.close()


def test_the_trip_s_session_record_leaves_in_the_iteration_of_the_trip(tmp_path: Path) -> None:
    """The runner's hook runs before the link's poll: the session record it hands over at a
    trip is sent in the trip's iteration, in one piece with the trip's event, and nothing of
    the trip is still queued in the link when the iteration ends (a hook after every other
    records it). The power-cut test above only notices otherwise when the courier happens to
    read between the two iterations. Mutant that survived: the runner appended after the
    link's poll, so the record went an iteration later, in a transaction of its own."""
    rig = armed_rig(tmp_path, detector=TripAt(8.0))
    link = rig.app.link
    runner = attach_session(rig.app, PLAN, speaker=None)
    queued_at_pause: list[int] = []

    def after_every_other(_: object) -> None:
        if runner.state is SessionState.PAUSED and not queued_at_pause:
            queued_at_pause.append(len(link._writer))

    rig.app.monitor.on_iteration.append(after_every_other)
    try:
        runner.request("start")
        rig.run_for(6.0)
        assert pump_link_until(link, lambda: link.pending == 0 and not len(link._writer))
        rig.run_for(3.0)  # the trip at 8 s pauses the running session
        assert rig.state == "TRIPPED" and runner.state is SessionState.PAUSED
        assert queued_at_pause == [0]
        assert pump_link_until(link, lambda: _trip_kept(tmp_path / "events.db") == (1, 1))
    finally:
        rig.app.monitor.on_iteration.remove(after_every_other)
        detach_session(rig.app, runner)
