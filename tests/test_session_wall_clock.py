"""A session's wall-clock times on a Pi without a battery-backed clock: a start recorded
before NTP set the clock is corrected by the step (and so counts in its true ISO week), and a
session whose clock was never synchronised is flagged where the physio reads the figures."""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3
from pathlib import Path

import pytest
from msgspec.structs import replace

from caregiver.progress import parse_summary
from core.progress import started_utc, week_of
from core.protocol.messages import SessionRecord
from core.wallclock import FakeWallClock
from firmware.mqtt.status import progress_message
from firmware.session.plan import Interval, Plan
from firmware.session.runner import SessionState, attach_session, detach_session
from firmware.storage.sessions import load_sessions
from launcher.cli import main
from tests.app_support import (  # noqa: F401 - fixture
    Rig,
    armed_rig,
    close_rigs,
)
from tests.caregiver_support import (
    WAIT,
    Http,
    SimDevice,
    make_config,
    received,
    running_service,
    session_record,
)
from tools.broker import Mosquitto
from tools.sessions import UNSYNCED_NOTE

pytestmark = pytest.mark.usefixtures("close_rigs")

PLAN = Plan(
    "clock",
    (Interval.of_seconds("backward", 10.0), Interval.of_seconds("backward", 20.0)),
)
"""Two intervals, the shortest a plan file allows and twice that: the clock is stepped between
the first's record and the session's end. (30 s and 60 s simulated three times as much of the
200 Hz monitor for the same story; five sessions made this file one of the suite's slowest.)"""
DEVICE = "treadmill-1"
FRIDAY = dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.UTC)
"""The last shutdown's time: what the clock says at boot before NTP."""
WEEKEND = dt.timedelta(days=2, hours=15).total_seconds()
"""The step NTP makes on Monday morning."""


def _run_session(
    tmp_path: Path, *, synced: bool, step: float | None
) -> tuple[Rig, SessionRecord, str]:
    """A whole session on a wall clock that starts at the last shutdown's time (synchronised
    or not); after the first interval's record is stored, the clock is stepped by ``step``
    and says it is synchronised. Returns the rig, the session as stored and the start the
    runner first read."""
    rig = armed_rig(tmp_path)
    wall = FakeWallClock(rig.clock, FRIDAY, synced=synced)
    runner = attach_session(rig.app, PLAN, wall=wall)
    runner.request("start")
    rig.run_for(1.0)
    assert runner.session is not None
    first = runner.session.started_wall
    rig.run_for(14.0)  # the first interval's record is stored with the clock as it was
    if step is not None:
        wall.step(step)
    rig.run_for(20.0)
    assert runner.state is SessionState.FINISHED
    detach_session(rig.app, runner)
    (stored,) = load_sessions(rig.app.config.storage.database)
    return rig, stored.record, first


def _column_start(rig: Rig) -> str:
    conn = sqlite3.connect(rig.app.config.storage.database)
    try:
        (row,) = conn.execute("SELECT started_wall FROM sessions").fetchall()
    finally:
        conn.close()
    return str(row[0])


def _sessions_text(rig: Rig, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["sessions", "--db", str(rig.app.config.storage.database)]) == 0
    return capsys.readouterr().out


def test_a_start_before_ntp_sets_the_clock_is_corrected_into_its_true_week(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rig, record, first = _run_session(tmp_path, synced=False, step=WEEKEND)
    assert week_of(dt.datetime.fromisoformat(first), dt.UTC) == "2026-W48"  # Friday's
    want = dt.datetime.fromisoformat(first) + dt.timedelta(seconds=WEEKEND)
    assert started_utc(record) == want
    assert week_of(started_utc(record), dt.UTC) == "2026-W49"  # Monday's
    assert _column_start(rig) == record.started_wall  # the row's index column too
    assert record.ended_wall is not None
    assert dt.datetime.fromisoformat(record.ended_wall) - want == dt.timedelta(
        seconds=30
    )  # the plan
    assert not record.wall_unsynced  # set during the session: its times are right now
    text = _sessions_text(rig, capsys)
    assert UNSYNCED_NOTE not in text
    assert "2026-W49" in text and "2026-W48" not in text


def test_a_session_never_synchronised_is_flagged_in_the_session_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rig, record, first = _run_session(tmp_path, synced=False, step=None)
    assert record.started_wall == first
    assert record.wall_unsynced
    text = _sessions_text(rig, capsys)
    (row,) = [line for line in text.splitlines() if " clock " in line and "completed" in line]
    assert row.startswith("2026-11-27 18:00* ")
    assert UNSYNCED_NOTE in text


@pytest.mark.parametrize("synced", [False, True])
def test_the_journal_and_the_progress_message_say_when_the_clock_was_not_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, synced: bool
) -> None:
    """The session's end in the journal, and the retained progress (Home Assistant's week
    sensors read it), carry the flag the session log and the caregiver show."""
    with caplog.at_level(logging.WARNING, logger="firmware.session.runner"):
        _, record, _ = _run_session(tmp_path, synced=synced, step=None)
    warned = [r.getMessage() for r in caplog.records if "clock not set" in r.getMessage()]
    assert warned == ([] if synced else [warned[0]])
    if not synced:
        assert record.id in warned[0] and record.started_wall in warned[0]
    now = dt.datetime.fromisoformat(record.started_wall)
    message = progress_message(DEVICE, record, [record], now, dt.UTC)
    assert message.clock_not_set is (not synced)
    assert message.week_clock_not_set == (0 if synced else 1)


def test_a_synchronised_clock_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rig, record, first = _run_session(tmp_path, synced=True, step=1.5)  # NTP's own slew
    assert record.started_wall == first == _column_start(rig)
    assert not record.wall_unsynced
    assert UNSYNCED_NOTE not in _sessions_text(rig, capsys)


def test_the_caregiver_s_progress_page_notes_a_session_whose_clock_was_not_set(
    mosquitto: Mosquitto, tmp_path: Path, caregiver_db: str
) -> None:
    unset = replace(
        session_record(DEVICE, dt.datetime.now(dt.UTC), backward_min=4, longest_min=2),
        wall_unsynced=True,
    )
    older = {k: v for k, v in received(unset).items() if k != "wall_unsynced"}
    row, problem = parse_summary(older, DEVICE)  # an older device's summary: no flag
    assert row is not None and row.wall_unsynced == 0, problem
    config = make_config(mosquitto, tmp_path, database=caregiver_db)
    with running_service(config, web=True, background=False) as service:
        device = SimDevice(mosquitto, DEVICE)
        set_ = session_record(
            DEVICE, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), backward_min=4, longest_min=2
        )
        device.session(set_)
        device.session(unset)
        ingestor = service.ingestor
        assert ingestor.wait_for(lambda: ingestor.sessions_stored >= 2, WAIT)
        stored = {s.id: s.wall_unsynced for s in service.store.walk_sessions(DEVICE, 10)}
        assert stored == {set_.id: 0, unset.id: 1}
        web = Http(service.port)
        assert web.login() == 303
        status, _, page = web.request("GET", f"/devices/{DEVICE}/progress")
        assert status == 200
        rows = {m[1]: m[2] for m in re.finditer(r'<tr data-session="(\w+)"(.*?)</tr>', page, re.S)}
        assert "clock not set" in rows[unset.id] and "clock not set" not in rows[set_.id]
        assert 'id="clock-unsynced-note"' in page
        device.close()
