"""Retention: the caregiver database keeps incidents for good, lets recordings, the
notification log and routine events go after their time, and gives the disk back.

Real SQLite files; the sweeper on a fake wall clock and a fake monotonic clock.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest

from caregiver.config import RetentionConfig, parse_config
from caregiver.retention import RetentionSweeper
from caregiver.service import CaregiverService
from caregiver.storage import NewEvent, Pruned, Store
from core.errors import ConfigError
from sim.recordings import fall_recording
from tests.caregiver_db import execute
from tests.caregiver_support import (
    BY_HAND,
    WAIT,
    fall_window,
    make_config,
    running_service,
    wait_until,
)
from tools.broker import Mosquitto

DAY = 86400.0
T0 = 1_800_000_000.0


def _event(
    event_id: str, kind: str, severity: str, incident: str | None, payload: str = "{}"
) -> NewEvent:
    return NewEvent(
        id=event_id,
        device_id="treadmill-1",
        seq=None,
        type=kind,
        severity=severity,
        state="TRIPPED",
        reason=kind,
        wall_time="2027-01-15T08:00:00+00:00",
        figures={},
        has_window=payload != "{}",
        payload=payload,
        incident=incident,
    )


def _fill(store: Store, n: int, at: float) -> None:
    """``n`` incidents (a trip with its recording), a sent and a pending notification each,
    and ``n`` routine events, all received at ``at``."""
    blob = msgspec.msgpack.encode(fall_recording())
    with store.transaction() as tx:
        for i in range(n):
            incident = f"inc{i:04d}"
            tx.record_event(_event(f"trip{i:04d}", "stumble", "warning", incident), at)
            tx.record_event(_event(f"win{i:04d}", "window", "info", incident), at)
            tx.store_recording(f"trip{i:04d}", f"win{i:04d}", blob)
            tx.open_incident(incident, "treadmill-1", "stumble", f"trip{i:04d}", "w", at)
            alert = tx.page_alert(
                "stumble", "treadmill-1", f"trip{i:04d}", at, at, incident, frame=BY_HAND
            )
            tx.queue_notification(
                alert, "Ann", 0, 0, "t", "b" * 200, at, contact_key="Ann", url_key="a"
            )
            tx.queue_notification(
                alert, "Bob", 1, 0, "t", "b" * 200, at, contact_key="Bob", url_key="b"
            )
            tx.record_event(_event(f"start{i:04d}", "start", "info", None), at)
        for pending in tx.notifications_due(at)[::2]:
            tx.notification_sent(pending.id, 1)


def test_a_year_on_recordings_go_incidents_stay_and_the_file_shrinks(caregiver_db: str) -> None:
    """On SQLite the file shrinks too; PostgreSQL's autovacuum makes the space reusable."""
    store = Store(caregiver_db)
    sqlite = store.engine == "sqlite"
    try:
        _fill(store, 200, T0)
        with store.transaction() as tx:
            tx.record_event(_event("recent", "start", "info", None), T0 + 365 * DAY)
        full = store.file_bytes()
        kept = store.prune(
            recordings_before=T0 - DAY, notifications_before=None, routine_before=None, now=T0
        )
        assert (kept.recordings, kept.notifications, kept.routine_events) == (0, 0, 0)

        pruned = RetentionSweeper(store, RetentionConfig(), clock=lambda: T0 + 366 * DAY).sweep()
        assert pruned.recordings == 200
        assert pruned.notifications == 200  # the sent ones; the pending 200 wait for delivery
        assert pruned.routine_events == 200  # not "recent": the device's latest event stays
        if sqlite:
            assert pruned.pages_freed > 0
            assert store.file_bytes() < full / 2
        trip = store.event("trip0007")
        assert trip is not None and not trip.has_window  # the page no longer offers a plot
        assert store.recording("trip0007") is None
        incident = store.incident("inc0007")
        assert incident is not None and [e.id for e in store.incident_events("inc0007")] == [
            "trip0007",
            "win0007",
        ]
        assert len(store.notifications_due(T0 + 366 * DAY)) == 200
        assert store.event("recent") is not None
        if sqlite:
            db = sqlite3.connect(caregiver_db)
            assert db.execute("PRAGMA freelist_count").fetchone() == (0,)
            db.close()
    finally:
        store.close()


def test_an_older_monitors_window_is_cut_out_of_its_event_after_a_year(
    caregiver_db: str,
) -> None:
    store = Store(caregiver_db)
    try:
        payload = json.dumps({"id": "old", "imu_window": fall_window(), "reason": "fall"})
        with store.transaction() as tx:
            tx.record_event(_event("old", "fall", "critical", None, payload), T0)
        assert store.imu_window("old") is not None
        pruned = store.prune(
            recordings_before=T0 + 1, notifications_before=None, routine_before=None, now=T0
        )
        assert pruned.windows == 1
        old = store.event("old")
        assert old is not None and not old.has_window and old.reason == "fall"
        assert store.imu_window("old") is None
    finally:
        store.close()


def test_a_database_made_before_incremental_vacuum_is_rewritten_once(tmp_path: Path) -> None:
    path = tmp_path / "caregiver.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE leftover (x)")  # a file made without auto_vacuum
    db.commit()
    assert db.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    db.close()
    Store(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental
    db.close()


def test_the_sweeper_runs_at_start_then_every_sweep_hours_and_survives_a_fault(
    caregiver_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(caregiver_db)
    ticks = [1000.0]
    sweeper = RetentionSweeper(
        store, RetentionConfig(sweep_hours=6), clock=lambda: T0, monotonic=lambda: ticks[0]
    )
    with caplog.at_level(logging.INFO, logger="caregiver.retention"):
        assert sweeper.tick() is not None  # at start
    # in words, not the Pruned(recordings=0, ...) repr it logged at every start
    assert caplog.messages == ["retention sweep: nothing old enough to remove"]
    ticks[0] += 6 * 3600 - 1
    assert sweeper.tick() is None
    ticks[0] += 1
    assert sweeper.tick() is not None
    store.close()  # the database is gone: logged, not raised into the ticker
    ticks[0] += 6 * 3600
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="caregiver.retention"):
        assert sweeper.tick() is None
    (record,) = caplog.records
    assert record.getMessage().startswith("retention sweep failed: ")
    assert record.getMessage().endswith("; the next one is in 6 h")
    assert record.exc_info is None  # the fault's words, not a traceback


def test_a_sweep_says_what_it_removed_in_words() -> None:
    pruned = Pruned(
        recordings=2, windows=0, notifications=5, routine_events=0, login_sessions=1, pages_freed=9
    )
    assert pruned.words() == (
        "removed 2 recordings, 5 notifications, 1 expired logins; 9 database pages freed"
    )


def test_retention_config_refuses_negative_ages() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"retention": {"recordings_days": -1, "sweep_hours": 0}}, "c.toml")
    text = "\n".join(err.value.problems)
    assert "c.toml: retention.recordings_days: must not be negative" in text
    assert "c.toml: retention.sweep_hours: must be greater than 0" in text


def test_a_backlog_goes_a_chunk_a_transaction_and_all_of_it(
    caregiver_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep of more than a chunk of each kind removes all of it, each transaction at most
    a chunk: the store's lock is let go between them (a fall waits for one chunk, not the
    sweep; on PostgreSQL no statement holds a year's backlog). The windows of older monitors
    are cut across chunks too."""
    from caregiver.storage import store as store_module

    monkeypatch.setattr(store_module, "PRUNE_CHUNK", 7)
    monkeypatch.setattr(store_module, "RECLAIM_CHUNK_PAGES", 3)
    store = Store(caregiver_db)
    try:
        _fill(store, 30, T0)
        with store.transaction() as tx:
            for i in range(16):
                payload = json.dumps({"id": f"old{i}", "imu_window": fall_window()})
                tx.record_event(_event(f"old{i:02d}", "fall", "critical", None, payload), T0)
        chunks: list[int] = []
        real = store.transaction

        def counted() -> object:
            chunks.append(1)
            return real()

        monkeypatch.setattr(store, "transaction", counted)
        reclaims: list[int] = []
        real_reclaim = store._db.reclaim_space  # what the sweep gives space back by

        def reclaim(pages: int) -> int:
            reclaims.append(real_reclaim(pages))
            return reclaims[-1]

        monkeypatch.setattr(store._db, "reclaim_space", reclaim)
        pruned = store.prune(
            recordings_before=T0 + 1, notifications_before=T0 + 1, routine_before=T0 + 1, now=T0
        )
        monkeypatch.undo()
        if store.engine == "sqlite":
            # the space back 3 pages at a time, each under its own hold of the store's lock,
            # until a step finds fewer: all of it
            assert len(reclaims) > 2 and all(given == 3 for given in reclaims[:-1])
            assert reclaims[-1] < 3 and pruned.pages_freed == sum(reclaims)
            db = sqlite3.connect(caregiver_db)
            assert db.execute("PRAGMA freelist_count").fetchone() == (0,)
            db.close()
        else:
            assert reclaims == [0]  # autovacuum's
        assert (pruned.recordings, pruned.windows) == (30, 16)
        assert (pruned.notifications, pruned.routine_events) == (30, 30)
        # 30 recordings in chunks of 7 are 5 transactions (the fifth removes 2); the 46 events
        # with a window (30 trips, 16 old) are looked through in 7 and unmarked in 7; 30
        # notifications 5; 30 routine events 5; the logins one
        assert len(chunks) == 5 + 7 + 7 + 5 + 5 + 1
        assert store.recording("trip0029") is None
        trip, old = store.event("trip0029"), store.event("old15")
        assert trip is not None and not trip.has_window
        assert old is not None and not old.has_window and store.imu_window("old15") is None
        again = store.prune(
            recordings_before=T0 + 1, notifications_before=T0 + 1, routine_before=T0 + 1, now=T0
        )
        assert again == Pruned(0, 0, 0, 0, 0, pages_freed=again.pages_freed)
    finally:
        store.close()


def _left(database: str) -> tuple[int, int, int]:
    """What the sweep removes that is still there: recordings, notifications sent or given
    up on, routine events."""
    (recordings,) = execute(database, "SELECT COUNT(*) FROM recordings")[0]
    (notes,) = execute(
        database, "SELECT COUNT(*) FROM notifications WHERE status IN ('sent', 'failed')"
    )[0]
    (routine,) = execute(
        database,
        "SELECT COUNT(*) FROM events WHERE severity = 'info' AND incident IS NULL "
        "AND received_at < ?",
        (T0 + 1,),
    )[0]
    return recordings, notes, routine


def test_a_stop_between_chunks_ends_the_sweep_quietly_and_the_next_start_finishes_it(
    caregiver_db: str,
    mosquitto: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The service stopped during a long first sweep: the sweep sees the stop before its next
    chunk and ends with one INFO line, no "failed" (before: the store was closed under it and
    its next chunk logged that the sweep failed); what its chunks removed stays removed and is
    counted once, and the next start's sweep removes the rest. The stop is asked from inside
    the sweep's question between chunks (after its second), by :meth:`CaregiverService.stop`
    itself on another thread: no timing decides where it lands."""
    from caregiver.storage import store as store_module

    monkeypatch.setattr(store_module, "PRUNE_CHUNK", 7)  # 30 of each kind: several chunks
    store = Store(caregiver_db)
    _fill(store, 30, T0)
    later = T0 + 366 * DAY  # everything _fill wrote is past every retention age
    with store.transaction() as tx:  # the device's latest event, which its card tells: kept
        tx.record_event(_event("recent", "start", "info", None), later)
    store.close()
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    swept: list[Pruned] = []
    stoppers: list[threading.Thread] = []

    def stop_after_two_chunks(service: CaregiverService) -> None:
        real_prune = service.store.prune

        def prune(**kwargs: Any) -> Pruned:
            asked = kwargs.pop("stopping")
            questions = [0]

            def stopping() -> bool:
                questions[0] += 1
                if questions[0] == 3:  # two chunks of recordings committed, the third not begun
                    stopper = threading.Thread(target=service.stop)
                    stopper.start()
                    stoppers.append(stopper)  # started: the test may join it
                    assert wait_until(asked)  # the stop has begun: the service says so now
                return bool(asked())

            swept.append(real_prune(**kwargs, stopping=stopping))
            return swept[-1]

        service.store.prune = prune  # type: ignore[method-assign]

    first = CaregiverService(config, clock=lambda: later)
    stop_after_two_chunks(first)
    with caplog.at_level(logging.INFO):
        first.start(web=False)
        assert wait_until(lambda: bool(stoppers))
        stoppers[0].join(WAIT)
        assert not stoppers[0].is_alive()
    (stopped,) = swept
    assert stopped.stopped == "recordings" and stopped.recordings == 14
    assert (stopped.notifications, stopped.routine_events, stopped.pages_freed) == (0, 0, 0)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("caregiver")]
    assert not [m for m in messages if "failed" in m], messages
    assert (
        "retention sweep stopped with the service while removing recordings (so far: removed "
        "14 recordings; 0 database pages freed); the next start goes on from there"
    ) in messages
    recordings, notes, routine = _left(caregiver_db)
    assert (recordings, routine) == (30 - 14, 30)  # what the two chunks removed, no more
    # the pending notifications to contacts this config lacks were given up on at the start
    assert notes == 60

    caplog.clear()

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "caregiver.retention"]

    with caplog.at_level(logging.INFO), running_service(config, web=False, clock=lambda: later):
        assert wait_until(lambda: bool(said()))  # the sweep at start has ended
    assert _left(caregiver_db) == (0, 0, 0)
    done = said()
    assert done[0].startswith(
        "retention sweep: removed 16 recordings, 60 notifications, 30 routine events; "
    ), done
