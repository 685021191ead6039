"""A session the monitor never finished recording (a power cut, a crash, a kill) is closed at the
next start, with what its records prove, on a real SQLite file and a real monitor process.

The runner's records are written as the courier writes them (:class:`SessionArchive`), the
last one — the session's end — lost with the process; then the monitor starts again on the
file. Before, the session stayed ``running`` for ever: never done, never summarised, shown
under way by ``retroguard sessions`` and the retained progress.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sqlite3
import time
from pathlib import Path

import msgspec
import pytest

from core.progress import days_done, done, week_of, week_start
from core.protocol.messages import SessionRecord
from core.zones import system_zone
from firmware.link import messages
from firmware.link.endpoint import CourierLink
from firmware.link.supervisor import CourierSupervisor, ProcessCourier
from firmware.session.plan import Interval, Plan
from firmware.session.record import SessionArchive
from firmware.session.runner import attach_session, detach_session
from firmware.session.summary import figures_line
from firmware.storage.sessions import load_sessions
from tests.app_support import armed_rig, close_rigs, make_config, pump_link_until
from tests.caregiver_support import session_record
from tests.mqtt_helpers import WAIT, config_for, subscriber
from tests.test_storage_faults import MonitorProcess, monitors  # noqa: F401 - fixture
from tools.broker import Mosquitto
from tools.sessions import print_sessions

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

UTC = dt.UTC
PLAN = Plan(
    "short",
    (
        Interval.of_seconds("backward", 30.0),
        Interval.of_seconds("forward", 20.0),
        Interval.of_seconds("backward", 40.0),
    ),
)


def walk_and_lose_the_end(tmp_path: Path, database: Path, seconds: float) -> list[SessionRecord]:
    """Walk ``PLAN`` for ``seconds`` on a simulated rig, each record the runner hands over
    stored in ``database`` as the courier stores it, until the monitor "dies": no record after
    ``seconds`` (nor the final one) reaches the file. The records stored, in order."""
    rig = armed_rig(tmp_path / "rig")
    handed: list[tuple[SessionRecord, bool]] = []
    rig.app.link.submit_session = lambda record, final: handed.append((record, final))  # type: ignore[method-assign]
    runner = attach_session(rig.app, PLAN, speaker=None)
    runner.request("start")
    rig.run_for(seconds)
    archive = SessionArchive(database)
    stored = [r for r, final in handed if not final and not r.ended]
    for record in stored:
        assert archive.save(record, final=False)
    archive.close()
    detach_session(rig.app, runner)
    return stored


def only_session(database: Path) -> SessionRecord:
    (stored,) = load_sessions(database)
    return stored.record


def test_a_session_cut_mid_walk_is_closed_as_stopped_by_the_next_start(
    tmp_path: Path,
    monitors: list[MonitorProcess],  # noqa: F811 - fixture
) -> None:
    db = tmp_path / "device.db"
    stored = walk_and_lose_the_end(tmp_path, db, 60.0)  # in the last interval: two walked
    assert len(stored) >= 3  # the start and the two intervals' ends, as the runner writes them
    left = only_session(db)
    assert left.status == "running"

    monitor = MonitorProcess(db)  # the next start, on the same file
    monitors.append(monitor)
    monitor.stop()

    closed = only_session(db)
    assert closed.status == "stopped"  # the plan was not walked through: not done
    assert closed.interrupted
    assert not done(closed)
    # What the last stored record proves: the first two intervals, perhaps a little of the
    # third (a record when an interval's gait figures came in), never the plan's 90 s.
    assert 50.0 - 0.1 <= closed.done_s == left.done_s < 60.0
    assert 30.0 - 0.1 <= closed.backward_s == left.backward_s < 40.0
    assert [i.done_s for i in closed.intervals] == [i.done_s for i in left.intervals]
    started = dt.datetime.fromisoformat(left.started_wall)
    assert closed.ended_wall == (started + dt.timedelta(seconds=left.done_s)).isoformat(
        timespec="seconds"
    )  # the time of its last record, not the restart's
    out = io.StringIO()
    print_sessions(load_sessions(db), out, UTC)
    text = out.getvalue()
    assert "stopped  ^" in text
    assert "its end not recorded: the monitor stopped" in text
    assert "running" not in text

    again = MonitorProcess(db)  # closed once: a later start leaves it as it is
    monitors.append(again)
    again.stop()
    assert only_session(db) == closed


def test_a_session_walked_through_and_cut_before_its_end_counts_as_done(
    tmp_path: Path,
    monitors: list[MonitorProcess],  # noqa: F811 - fixture
) -> None:
    """Every interval's record stored, the end lost: done, once a day, on the restart."""
    db = tmp_path / "device.db"
    day = dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    walked = session_record("tm-run", day, backward_min=12, longest_min=10, status="running")
    walked = msgspec.structs.replace(walked, ended_wall=None)
    earlier = session_record(
        "tm-run", day - dt.timedelta(hours=2), backward_min=12, longest_min=10, status="stopped"
    )
    earlier = msgspec.structs.replace(earlier, done_s=300.0)  # cut short by the walker
    archive = SessionArchive(db)
    assert archive.save(earlier, final=True)
    assert archive.save(walked, final=False)
    archive.close()
    assert days_done([s.record for s in load_sessions(db)], UTC) == 0

    monitor = MonitorProcess(db)
    monitors.append(monitor)
    monitor.stop()

    records = {s.record.id: s.record for s in load_sessions(db)}
    closed = records[walked.id]
    assert closed.status == "completed"
    assert closed.interrupted
    assert done(closed)
    assert closed.backward_s == walked.backward_s
    assert closed.longest_backward_s == walked.longest_backward_s
    assert records[earlier.id] == earlier  # an ended session is left as it was
    assert figures_line(closed).startswith(
        "Session completed (its end not recorded: the monitor stopped (power cut, crash or "
        "kill); closed at the next start): 30 plan minutes, 12 backward;"
    )  # the journal's summary line and ``retroguard session stop``'s
    assert days_done(records.values(), UTC) == 1


def test_a_courier_restarted_within_a_run_leaves_the_session_under_way(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Only a new run closes a session: a courier replaced while the monitor lives must not
    end (nor summarise) the session its loop is still walking."""
    config = make_config(tmp_path, config_for(mosquitto))
    link = CourierLink(time.monotonic)
    link.hello(messages.encode(messages.Hello(config, os.getpid(), "2026-12-01T21:00:00+00:00")))
    supervisor = CourierSupervisor(link, ProcessCourier)
    supervisor.start()
    db = Path(config.storage.database)
    running = msgspec.structs.replace(
        session_record(
            config.device.id,
            dt.datetime(2026, 12, 1, 21, 1, tzinfo=UTC),
            backward_min=2,
            longest_min=2,
            status="running",
        ),
        ended_wall=None,
        done_s=120.0,
    )
    try:
        link.submit_session(running, False)
        assert pump_link_until(link, lambda: link.pending == 0 and bool(load_sessions(db)))
        courier = supervisor.current
        assert isinstance(courier, ProcessCourier)
        os.kill(courier.pid, 9)
        assert pump_link_until(link, lambda: supervisor.starts == 2 and link.pending == 0)
        assert link.flush(WAIT)
    finally:
        link.goodbye("test over")
        link.close()
        supervisor.stop(WAIT)
    assert only_session(db).status == "running"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT published FROM sessions").fetchall() == [(0,)]  # no summary
    finally:
        conn.close()


def _an_hour_ago_in_this_week(now: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """An hour before ``now`` (whole seconds), but not before this week began in ``zone``: a
    session started an hour before a run in a week's first hour (a CI run at Monday 00:17
    UTC) is last week's, and this week's progress rightly counted none of it."""
    monday = dt.datetime.combine(week_start(week_of(now, zone)), dt.time(), zone)
    return max(now.replace(microsecond=0) - dt.timedelta(hours=1), monday.astimezone(UTC))


def test_the_closed_session_is_summarised_and_the_progress_says_so(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """With a broker: the summary of the closed session is queued and published (the
    caregiver's adherence reads it), and the retained progress no longer says running."""
    config = make_config(tmp_path, config_for(mosquitto))
    db = Path(config.storage.database)
    now = _an_hour_ago_in_this_week(dt.datetime.now(UTC), system_zone())
    walked = msgspec.structs.replace(
        session_record(config.device.id, now, backward_min=12, longest_min=10, status="running"),
        ended_wall=None,
    )
    archive = SessionArchive(db)
    assert archive.save(walked, final=False)
    archive.close()
    assert config.mqtt is not None
    prefix = f"{config.mqtt.topic_prefix}/{config.device.id}"

    def progress_done() -> bool:
        return any(json.loads(m.payload).get("session") == "completed" for m in sub.on("/progress"))

    with subscriber(mosquitto, [f"{prefix}/session", f"{prefix}/progress"]) as sub:
        link = CourierLink(time.monotonic)
        started = dt.datetime.now(UTC).isoformat(timespec="milliseconds")
        link.hello(messages.encode(messages.Hello(config, os.getpid(), started)))
        supervisor = CourierSupervisor(link, ProcessCourier)
        supervisor.start()
        try:
            assert pump_link_until(link, lambda: bool(sub.on("/session")) and progress_done())
        finally:
            link.goodbye("test over")
            link.close()
            supervisor.stop(WAIT)
    (summary,) = sub.on("/session")
    progress = next(
        m for m in sub.on("/progress") if json.loads(m.payload).get("session") == "completed"
    )
    body = json.loads(summary.payload)
    assert body["id"] == walked.id
    assert body["status"] == "completed"
    assert body["interrupted"] is True
    retained = json.loads(progress.payload)
    assert retained["week"] == week_of(now, system_zone())  # the session's week: this one
    assert retained["week_done"] == 1
    assert retained["session_interrupted"] is True  # Home Assistant's session attribute


def test_an_end_stored_before_its_final_record_is_summarised_at_the_next_start(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """The runner stores a plan's end at once and its final record (the summary's) once the
    last interval's gait figures are in, up to 30 s later: a walker who switches the treadmill
    and the Pi off at the end loses the final record. The session is done on the device, but
    its summary was never queued: the caregiver's adherence never saw it."""
    config = make_config(tmp_path, config_for(mosquitto))
    db = Path(config.storage.database)
    now = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    walked = session_record(config.device.id, now, backward_min=12, longest_min=10)
    archive = SessionArchive(db, summary_topic="retroguard/x/session")
    assert archive.save(walked, final=False)  # the end; the final record never comes
    archive.close()
    assert config.mqtt is not None
    prefix = f"{config.mqtt.topic_prefix}/{config.device.id}"
    with subscriber(mosquitto, [f"{prefix}/session"]) as sub:
        link = CourierLink(time.monotonic)
        started = dt.datetime.now(UTC).isoformat(timespec="milliseconds")
        link.hello(messages.encode(messages.Hello(config, os.getpid(), started)))
        supervisor = CourierSupervisor(link, ProcessCourier)
        supervisor.start()
        try:
            assert pump_link_until(link, lambda: bool(sub.on("/session")))
        finally:
            link.goodbye("test over")
            link.close()
            supervisor.stop(WAIT)
    (summary,) = sub.on("/session")
    body = json.loads(summary.payload)
    assert body["id"] == walked.id
    assert body["status"] == "completed"
    assert "interrupted" not in body  # its end was recorded
    assert only_session(db) == walked


@pytest.mark.parametrize("topic", [None, "retroguard/x/session"])
def test_a_final_record_that_comes_leaves_nothing_due(tmp_path: Path, topic: str | None) -> None:
    """The end stored, then its final record as usual: summarised once (with a broker), and
    nothing left for the next start to finish."""
    db = tmp_path / "device.db"
    walked = session_record("tm-run", dt.datetime(2026, 12, 1, 9, tzinfo=UTC), backward_min=12,
                            longest_min=10)  # fmt: skip
    archive = SessionArchive(db, summary_topic=topic)
    assert archive.save(walked, final=False)
    assert archive.save(walked, final=True)
    archive.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT published FROM sessions").fetchall() == [
            (0 if topic is None else 1,)
        ]
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (
            0 if topic is None else 1,
        )
    finally:
        conn.close()
