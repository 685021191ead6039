"""Device retention: what the database keeps, for how long, and the space given back.

Real SQLite files throughout; "later" is the retention's wall clock set ahead
(the records keep the time they were written), so nothing sleeps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.protocol.events import Event, EventType
from core.protocol.topics import Topics
from firmware.config import load_config
from firmware.storage.database import Database, FileDatabase, connect
from firmware.storage.events import EventStore, insert_event
from firmware.storage.outbox import Outbox
from firmware.storage.retention import (
    BATCH_ROWS,
    Retention,
    RetentionPolicy,
    enable_incremental_vacuum,
    incremental_vacuum_enabled,
)
from sim.recordings import fall_recording
from tests.app_support import close_rigs, make_rig, pump_link_until
from tests.storage_support import FIXTURE

DEVICE = "tm-1"
TOPICS = Topics("retroguard", DEVICE)
POLICY = RetentionPolicy(keep_telemetry_days=7, keep_windows_days=365, keep_events_days=0)
RECORDING = fall_recording()
"""About 10 kB, as a monitor's (made once: encoding it is the slow part of these tests)."""


def later(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def retention(db: Database, days: float, policy: RetentionPolicy = POLICY) -> Retention:
    return Retention(db, policy, wall=lambda: later(days))


def window_event(t: float) -> Event:
    trip = Event.now(EventType.FALL, DEVICE, t, "TRIPPED", "impact", incident="a" * 32)
    return Event.now(
        EventType.WINDOW,
        DEVICE,
        t + 10,
        "TRIPPED",
        "IMU -4.0 .. +10.0 s around the fall",
        incident=trip.incident,
        of=trip.id,
        recording=RECORDING,
    )


def delivered(outbox: Outbox) -> None:
    """The broker (and the caregiver service) took everything queued."""
    outbox.delete(row.id for row in outbox.fetch_after(0, 10_000))


def test_undelivered_telemetry_goes_after_its_days_and_nothing_else_does(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "d.db", TOPICS)
    for i in range(3):
        outbox.enqueue_telemetry(f'{{"n":{i}}}')
    outbox.enqueue_event(window_event(1.0))
    db = FileDatabase(tmp_path / "d.db")
    assert retention(db, 6).step().telemetry == 0
    pruned = retention(db, 8).step()
    assert pruned.telemetry == 3 and pruned.windows == 0 and pruned.events == 0
    assert [r.topic for r in outbox.fetch_after(0, 100)] == [TOPICS.event]  # the alert stays
    outbox.close()
    db.close()


def test_a_recording_goes_after_a_year_its_event_stays_and_a_queued_one_is_kept(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "d.db", TOPICS)
    sent = window_event(1.0)
    outbox.enqueue_event(sent)
    delivered(outbox)
    waiting = window_event(2.0)
    outbox.enqueue_event(waiting)  # the broker has not taken it: however old, it is kept
    db = FileDatabase(tmp_path / "d.db")
    assert retention(db, 300).step().windows == 0
    assert retention(db, 366).step().windows == 1
    by_id = {s.event.id: s.event for s in EventStore(db).events()}
    assert by_id[sent.id].recording is None and by_id[sent.id].of == sent.of  # the event stays
    assert by_id[waiting.id].recording == waiting.recording
    (row,) = outbox.fetch_after(0, 10)
    assert '"recording"' in row.payload  # still published whole
    outbox.close()
    db.close()


def test_events_are_kept_forever_unless_configured(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "d.db", TOPICS)
    outbox.enqueue_event(window_event(1.0))
    delivered(outbox)
    db = FileDatabase(tmp_path / "d.db")
    assert retention(db, 5000).step().events == 0
    shorter = dataclasses.replace(POLICY, keep_events_days=30)
    assert retention(db, 31, shorter).step().events == 1
    assert EventStore(db).events() == []
    counts = db.read(
        lambda c: [
            c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("recordings", "incidents")
        ]
    )
    assert counts == [0, 0]  # the recording went with its event, the empty incident too
    outbox.close()
    db.close()


def test_freed_pages_go_back_to_the_card_a_little_at_a_time(tmp_path: Path) -> None:
    db = FileDatabase(tmp_path / "d.db")
    events = [window_event(float(i)) for i in range(2 * BATCH_ROWS + 10)]
    db.write(lambda conn: [insert_event(conn, e) for e in events])  # stored, none queued
    assert db.read(incremental_vacuum_enabled)  # a new file is made ready for it
    pages_before = db.read(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
    policy = retention(db, 366)
    steps = [policy.step() for _ in range(8)]
    assert [s.windows for s in steps[:3]] == [BATCH_ROWS, BATCH_ROWS, 10]  # in small bites
    pages_after = db.read(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
    assert policy.total.pages > 0 and pages_after < pages_before / 2
    assert db.read(lambda c: c.execute("PRAGMA freelist_count").fetchone()[0]) == 0
    db.close()


def test_tick_runs_a_step_only_when_due_and_never_from_memory(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "d.db", TOPICS)
    outbox.enqueue_telemetry("{}")
    db = FileDatabase(tmp_path / "d.db")
    now = [100.0]
    paused = [True]
    ticker = Retention(
        db, POLICY, paused=lambda: paused[0], clock=lambda: now[0], wall=lambda: later(8)
    )
    assert ticker.tick() is None  # the records are in memory: nothing is pruned there
    paused[0] = False
    first = ticker.tick()
    assert first is not None and first.telemetry == 1
    assert ticker.tick() is None  # caught up: the next pass is in an hour
    now[0] += 3600
    second = ticker.tick()
    assert second is not None and second.rows == 0
    outbox.close()
    db.close()


def test_an_older_file_is_converted_to_incremental_vacuum_once_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    raw = sqlite3.connect(path, isolation_level=None)
    assert not incremental_vacuum_enabled(raw)
    before = raw.execute("SELECT COUNT(*) FROM events").fetchone()
    enable_incremental_vacuum(raw)
    assert incremental_vacuum_enabled(raw)
    assert raw.execute("SELECT COUNT(*) FROM events").fetchone() == before
    raw.close()
    conn = connect(path)  # migrates; the mode stays
    assert incremental_vacuum_enabled(conn)
    conn.close()


def test_retention_is_configured_in_storage(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[storage]\nkeep_telemetry_days = 3\nkeep_windows_days = 0\n")
    storage = load_config(config).storage
    assert (storage.keep_telemetry_days, storage.keep_windows_days) == (3.0, 0.0)
    assert storage.keep_events_days == 0.0
    config.write_text("[storage]\nkeep_windows_days = -1\n")
    with pytest.raises(ConfigError, match="keep_windows_days"):
        load_config(config)


@pytest.mark.usefixtures(close_rigs.__name__)
def test_the_courier_converts_an_older_file_before_arming_and_then_arms(tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "events.db")  # the rig's database: from before
    rig = make_rig(tmp_path)
    assert pump_link_until(rig.app.link, lambda: rig.app.link.storage_ok is True)
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED"
    assert rig.courier.db.read(incremental_vacuum_enabled)
    assert rig.courier.retention.policy == POLICY  # [storage]'s defaults
