"""A progression assigned while the Pi's wall clock was wrong (no battery-backed clock: ahead,
before NTP's first sync) has its stage start corrected by the step, as a session's times are:
its weeks count from the true Monday, and the sessions walked after it count toward it.

Before, the start kept the time the wrong clock read: a day ahead, the walker's first day did
not count; a year ahead, no session counted and the walker never advanced. Real device
databases (SQLite files); the simulated wall clock the session tests use
(:class:`core.wallclock.FakeWallClock`), stepped as NTP steps it.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from core.clock import SimClock
from core.plan_presets import PRESETS
from core.protocol.plan import Progression, Stage
from core.wallclock import FakeWallClock
from firmware.storage.database import connect
from firmware.storage.progressions import (
    ProgressionState,
    advance_if_done,
    change_progression,
    current_progression,
    set_plan_by_hand,
    start_progression,
)
from firmware.storage.sessions import save_session
from tests.caregiver_support import session_record, walked

DEVICE = "tm-1"
TWO_TWO = PRESETS["alternate-2-2"]
WEEK_2 = PRESETS["progression-week-2"]
ASSIGNED = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)
"""The physio assigns the progression on Monday morning (ISO week 2026-W10), truly."""
DAY = dt.timedelta(days=1).total_seconds()
YEAR = dt.timedelta(days=365).total_seconds()


def _progression() -> Progression:
    return Progression(
        "custom", (Stage(TWO_TWO, weeks=1, sessions_per_week=3), Stage(WEEK_2, weeks=1))
    )


def _text(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def _walk_three_days(conn_path: Path, first: dt.datetime, *, unsynced: bool = False) -> None:
    """Three sessions of the first stage's plan, a day apart; ``unsynced``: recorded with the
    clock not synchronised (the record's ``wall_unsynced``)."""
    conn = connect(conn_path)
    with conn:
        for day in range(3):
            record = walked(
                session_record(
                    DEVICE, first + dt.timedelta(days=day), backward_min=14, longest_min=2
                ),
                TWO_TWO,
            )
            save_session(conn, msgspec.structs.replace(record, wall_unsynced=unsynced))
    conn.close()


@pytest.mark.parametrize("ahead", [DAY, YEAR], ids=["a day ahead", "a year ahead"])
def test_a_progression_assigned_before_ntp_set_the_clock_counts_from_its_true_start(
    tmp_path: Path, ahead: float
) -> None:
    """The clock reads ``ahead`` of the truth when the physio assigns the progression; NTP
    steps it back; the walker walks the stage's three sessions Monday to Wednesday (their
    times right: the clock is set). The stage's start is the true Monday morning, and the
    third session moves the walker on (before: never, a year ahead; a day ahead, Monday's
    walk did not count and Wednesday's did not complete the week)."""
    clock = SimClock()
    wall = FakeWallClock(clock, ASSIGNED + dt.timedelta(seconds=ahead), synced=False)
    db = tmp_path / "device.db"
    conn = connect(db)
    with conn:
        assigned = start_progression(
            conn, _progression(), stage=0, by="Jo", wall=_text(wall.now()), clock=wall
        )
    assert assigned.stage_started_wall == _text(ASSIGNED + dt.timedelta(seconds=ahead))
    clock.advance(600.0)
    wall.step(-ahead)  # NTP's first sync
    state = current_progression(conn, clock=wall)
    assert state is not None
    assert state.stage_started_wall == _text(ASSIGNED)  # the true start, read after the step
    conn.close()
    _walk_three_days(db, ASSIGNED + dt.timedelta(hours=2))
    clock.advance(2 * DAY + 3 * 3600.0)
    conn = connect(db)
    with conn:
        advanced = advance_if_done(conn, dt.UTC, _text(wall.now()), clock=wall)
    conn.close()
    assert advanced is not None and advanced.stage == 1


def test_a_start_corrected_once_stays_corrected_through_a_hold_and_a_release(
    tmp_path: Path,
) -> None:
    """A hold after the step stores the corrected start with the clock's offset now: read
    again, it is not moved a second time (nor by the release), and the stage still
    completes on the walker's three days."""
    clock = SimClock()
    wall = FakeWallClock(clock, ASSIGNED + dt.timedelta(seconds=YEAR), synced=False)
    db = tmp_path / "device.db"
    conn = connect(db)
    with conn:
        start_progression(
            conn, _progression(), stage=0, by="Jo", wall=_text(wall.now()), clock=wall
        )
    clock.advance(60.0)
    wall.step(-YEAR)
    clock.advance(60.0)
    with conn:
        held = change_progression(conn, "hold", by="Jo", wall=_text(wall.now()), clock=wall)
    assert held.stage_started_wall == _text(ASSIGNED)
    clock.advance(60.0)
    with conn:
        released = change_progression(
            conn, "release", by="Jo", wall=_text(wall.now()), clock=wall, zone=dt.UTC
        )
    assert released.stage_started_wall == _text(ASSIGNED)
    again = current_progression(conn, clock=wall)
    assert again is not None and again.stage_started_wall == _text(ASSIGNED)
    conn.close()
    _walk_three_days(db, ASSIGNED + dt.timedelta(hours=2))
    clock.advance(3 * DAY)
    conn = connect(db)
    with conn:
        advanced = advance_if_done(conn, dt.UTC, _text(wall.now()), clock=wall)
    conn.close()
    assert advanced is not None and advanced.stage == 1


def test_a_start_from_another_boot_is_kept_as_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monotonic clock starts again at each boot, so an offset read in another boot
    says nothing about a step: the start is kept as it was stored (what every row from before
    the offset was kept reads as too), never moved by the difference of two boots' clocks."""
    boot = tmp_path / "boot_id"
    boot.write_text("first-boot\n")
    monkeypatch.setattr("core.wallclock.BOOT_ID", boot)
    clock = SimClock()
    wall = FakeWallClock(clock, ASSIGNED, synced=True)
    conn = connect(tmp_path / "device.db")
    with conn:
        start_progression(
            conn, _progression(), stage=0, by="Jo", wall=_text(wall.now()), clock=wall
        )
    boot.write_text("second-boot\n")
    rebooted = FakeWallClock(SimClock(), ASSIGNED + dt.timedelta(days=3), synced=True)
    state = current_progression(conn, clock=rebooted)
    conn.close()
    assert state is not None and state.stage_started_wall == _text(ASSIGNED)


def _hold(conn: sqlite3.Connection, wall: FakeWallClock) -> ProgressionState | None:
    return change_progression(conn, "hold", by="Jo", wall=_text(wall.now()), clock=wall)


def _hold_by_hand(conn: sqlite3.Connection, wall: FakeWallClock) -> ProgressionState | None:
    """A plan set by hand (``retroguard plan set``, ``cmd/plan``) holds the progression."""
    hand = set_plan_by_hand(conn, WEEK_2, by="Jo", via="cli", wall=_text(wall.now()), clock=wall)
    return hand.held


def _release(conn: sqlite3.Connection, wall: FakeWallClock) -> ProgressionState | None:
    return change_progression(
        conn, "release", by="Jo", wall=_text(wall.now()), clock=wall, zone=dt.UTC
    )


Change = Callable[[sqlite3.Connection, FakeWallClock], ProgressionState | None]


@pytest.mark.parametrize("frame", ["another boot", "before migration 8"])
@pytest.mark.parametrize(
    ("before", "change"),
    [(None, _hold), (None, _hold_by_hand), (_hold, _release)],
    ids=["hold", "hold by a plan set by hand", "release"],
)
def test_a_hold_or_release_before_ntp_s_step_keeps_a_start_the_step_does_not_move(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    frame: str,
    before: Change | None,
    change: Change,
) -> None:
    """The stage began in an earlier boot, at its true time (or in a row from before the
    offset was kept: read as stored). After a reboot, before NTP sets the clock (a day
    behind), the physio holds (or releases) the progression: the start is not changed, so
    the new row keeps the start's own offset and boot, and NTP's step of three days does not
    move it. Before, the row took the wrong clock's offset and boot, and the step "corrected"
    the right start three days later (the physio saw 5 March; the stage's weeks were
    counted from it)."""
    boot = tmp_path / "boot_id"
    boot.write_text("first-boot\n")
    monkeypatch.setattr("core.wallclock.BOOT_ID", boot)
    start = ASSIGNED + dt.timedelta(hours=1)
    wall = FakeWallClock(SimClock(), start, synced=True)
    conn = connect(tmp_path / "device.db")
    with conn:
        start_progression(
            conn, _progression(), stage=0, by="Jo", wall=_text(wall.now()), clock=wall
        )
        if before is not None:
            before(conn, wall)
        if frame == "before migration 8":
            conn.execute(
                "UPDATE progressions SET stage_started_offset = NULL, stage_started_boot = NULL"
            )
    boot.write_text("second-boot\n")
    clock = SimClock()
    rebooted = FakeWallClock(clock, start + dt.timedelta(days=1), synced=False)  # truly day 2
    with conn:
        changed = change(conn, rebooted)
    assert changed is not None and changed.stage_started_wall == _text(start)
    clock.advance(60.0)
    rebooted.step(3 * DAY)  # NTP's first sync
    state = current_progression(conn, clock=rebooted)
    conn.close()
    assert state is not None and state.stage_started_wall == _text(start)


def test_a_start_corrected_in_this_boot_stays_corrected_after_a_reboot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hold after the step stores the start as corrected, with the offset after the step:
    read in the next boot (where no offset can be compared) it is the true start, not the
    one the wrong clock read at the assignment."""
    boot = tmp_path / "boot_id"
    boot.write_text("first-boot\n")
    monkeypatch.setattr("core.wallclock.BOOT_ID", boot)
    clock = SimClock()
    wall = FakeWallClock(clock, ASSIGNED + dt.timedelta(seconds=DAY), synced=False)
    conn = connect(tmp_path / "device.db")
    with conn:
        start_progression(
            conn, _progression(), stage=0, by="Jo", wall=_text(wall.now()), clock=wall
        )
    clock.advance(60.0)
    wall.step(-DAY)
    with conn:
        _hold(conn, wall)
    boot.write_text("second-boot\n")
    rebooted = FakeWallClock(SimClock(), ASSIGNED + dt.timedelta(days=2), synced=True)
    state = current_progression(conn, clock=rebooted)
    conn.close()
    assert state is not None and state.stage_started_wall == _text(ASSIGNED)


def test_a_release_before_ntp_s_step_advances_from_a_monday_the_step_does_not_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walker did the held stage's three sessions in week 10, the clock set. After a
    reboot, before NTP sets the clock (three days behind: it reads Saturday, truly Tuesday of
    week 11), the physio releases it: the walker moves on, the next stage counting from the
    Monday after week 10, a date of the sessions' calendar, not a reading of the wrong clock,
    so NTP's step does not move it. Before, it was stored with the wrong clock's offset, and
    the step made it Thursday: the walker's Tuesday and Wednesday counted toward nothing."""
    boot = tmp_path / "boot_id"
    boot.write_text("first-boot\n")
    monkeypatch.setattr("core.wallclock.BOOT_ID", boot)
    wall = FakeWallClock(SimClock(), ASSIGNED, synced=True)
    db = tmp_path / "device.db"
    conn = connect(db)
    with conn:
        start_progression(
            conn, _progression(), stage=0, by="Jo", wall=_text(wall.now()), clock=wall
        )
        _hold(conn, wall)
    conn.close()
    _walk_three_days(db, ASSIGNED + dt.timedelta(hours=2))
    boot.write_text("second-boot\n")
    clock = SimClock()
    truly = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)
    rebooted = FakeWallClock(clock, truly - dt.timedelta(days=3), synced=False)
    conn = connect(db)
    with conn:
        released = _release(conn, rebooted)
    monday = _text(dt.datetime(2026, 3, 9, tzinfo=dt.UTC))
    assert released is not None and released.advanced_on_release and released.stage == 1
    assert released.stage_started_wall == monday
    clock.advance(60.0)
    rebooted.step(3 * DAY)  # NTP's first sync
    state = current_progression(conn, clock=rebooted)
    conn.close()
    assert state is not None and state.stage_started_wall == monday


def test_an_advance_from_sessions_walked_with_the_clock_a_year_ahead_is_corrected_by_the_step(
    tmp_path: Path,
) -> None:
    """Sessions walked with the clock not set are as wrong as it, and so is the Monday after
    their week: the next stage's start keeps the clock's offset, and NTP's step moves it back
    with the clock (left a year ahead, no session would count toward it for a year)."""
    clock = SimClock()
    ahead = ASSIGNED + dt.timedelta(seconds=YEAR)  # Tuesday 2 March 2027
    wall = FakeWallClock(clock, ahead, synced=False)
    db = tmp_path / "device.db"
    conn = connect(db)
    with conn:
        start_progression(
            conn, _progression(), stage=0, by="Jo", wall=_text(wall.now()), clock=wall
        )
    conn.close()
    _walk_three_days(db, ahead + dt.timedelta(hours=2), unsynced=True)
    clock.advance(2 * DAY + 3 * 3600.0)
    conn = connect(db)
    with conn:
        advanced = advance_if_done(conn, dt.UTC, _text(wall.now()), clock=wall)
    monday = dt.datetime(2027, 3, 8, tzinfo=dt.UTC)
    assert advanced is not None and advanced.stage_started_wall == _text(monday)
    clock.advance(60.0)
    wall.step(-YEAR)
    state = current_progression(conn, clock=wall)
    conn.close()
    assert state is not None
    assert state.stage_started_wall == _text(monday - dt.timedelta(seconds=YEAR))
