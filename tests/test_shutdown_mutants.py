"""Stopping the monitor: decisions that hand mutation (mut29) found no test noticing.

Rule 4 (nothing is lost across crashes and restarts) at a clean stop: what the loop handed
to the courier link and the courier has not confirmed on disk is handed over before the
courier is stopped (:meth:`firmware.app.App._hand_over_records`), to a courier started again
if the one there crashed; and a ``retroguard run`` whose guided session cannot be attached
closes the app it built (:func:`firmware.app.run_forever`). A guided session stopped at
shutdown, by the walker, or cut short by a trip, a fault or arming ends with a record that
says so (:mod:`firmware.session.runner`, ``_finish``, the balance check), and its detach
leaves nothing of it running (:func:`firmware.session.attach.detach_session`). The rigs run
the real loop, the real courier (a thread, or the child process ``retroguard run`` starts)
and SQLite files, on the simulated MPU-6050 and mock pins (:mod:`tests.app_support`).
"""

from __future__ import annotations

import dataclasses
import signal
import socket
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.protocol.events import EventType
from core.protocol.messages import SessionRecord
from firmware import app as app_module
from firmware.app import App
from firmware.gait import worker as gait_worker
from firmware.link.supervisor import CourierHandle, ProcessCourier, SpawnCourier, ThreadCourier
from firmware.session.config import SessionConfig
from firmware.session.cues import Cue
from firmware.session.plan import Interval, Plan
from firmware.session.runner import (
    BALANCE_SETTLE_S,
    SessionRunner,
    SessionState,
    attach_session,
    detach_session,
)
from firmware.storage.events import EventStore
from firmware.storage.sessions import FINAL_DUE, load_sessions
from sim import scenarios
from tests.app_support import (
    WAIT,
    Heard,
    Rig,
    TripAt,
    TripOnDemand,
    armed_rig,
    close_rigs,
    make_config,
    make_rig,
    pump_link_until,
)
from tests.storage_support import FillableDisk
from tests.test_session_runner import SESSION_THREADS

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)


class HeldRestart:
    """Starts the first courier at once and every later one only once :attr:`gate` is set
    (bounded by :data:`WAIT`): a courier that crashed stays gone, and the link without one,
    until the test lets its successor start."""

    def __init__(self, spawn: SpawnCourier) -> None:
        self._spawn = spawn
        self.gate = threading.Event()
        self.spawned = 0

    def __call__(self, sock: socket.socket) -> CourierHandle:
        self.spawned += 1
        if self.spawned > 1:
            self.gate.wait(WAIT)
        return self._spawn(sock)


@pytest.mark.parametrize("spawn", [ThreadCourier, ProcessCourier], ids=["thread", "process"])
def test_records_made_while_the_courier_is_down_reach_its_disk_at_stop(
    tmp_path: Path, spawn: SpawnCourier
) -> None:
    """The courier crashed while the walker walked; a fall is decided before the supervisor
    has started the next one, and then the monitor stops (SIGTERM). The fall's event and the
    stop's are only in the loop's memory: close hands them to the next courier and waits for
    it to say they are on disk. Before nothing checked it: without the hand-over, close said
    goodbye on a link with no courier, dropped it, and stopped the supervisor — the fall was
    never stored, nor published (mutant: :meth:`App._hand_over_records` doing nothing)."""
    restart = HeldRestart(spawn)
    detector = TripOnDemand()
    rig = armed_rig(tmp_path, detector=detector, courier=restart)
    app = rig.app
    supervisor = app.supervisor
    assert supervisor is not None and supervisor.current is not None
    supervisor.current.kill()  # the courier dies (a thread's socket closed; a process killed)
    assert pump_link_until(app.link, lambda: not app.link.connected)
    detector.trip = True
    rig.run_for(0.2)
    assert rig.state == "TRIPPED"
    assert app.link.pending and not app.link.connected  # the fall's records: in memory only
    restart.gate.set()  # the supervisor may start the next courier, as it would have anyway
    app.close(drain_timeout=WAIT)
    with EventStore(app.config.storage.database) as store:
        stored = [(e.event.type, e.event.reason) for e in store.events()]
    assert (EventType.FALL, "test fall") in stored
    assert (EventType.STOP, "monitor stopped") in stored
    assert restart.spawned == 2


@pytest.fixture
def process_settings() -> Iterator[None]:
    """:func:`~firmware.app.run_forever` sets the process's SIGTERM and SIGINT handlers and
    the GIL's switch interval, as ``retroguard run`` should: put back for the next test."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    interval = sys.getswitchinterval()
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures(process_settings.__name__)
def test_a_run_whose_session_cannot_attach_closes_the_app_it_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``retroguard run`` builds the app (pins, the IMU's bus, the courier link), then attaches
    the guided session; a control socket that cannot be made fails the attach, and the run
    closes what it built before it raises the reason (mutant: the close dropped: the relay
    and the IMU left to the process's end). Nothing was started — no courier, no loop — so
    there is nothing to hand over: the close used to wait out its whole flush (12 s) for a
    courier that was never started, then logged records "not confirmed on disk" (the stop
    event of a monitor that never started) before the run could say what was wrong."""
    (tmp_path / "a-file").write_text("")
    base = make_config(tmp_path)
    config = dataclasses.replace(
        base,
        session=SessionConfig(voice="off", control_socket=str(tmp_path / "a-file" / "x.sock")),
    )
    built: list[App] = []
    build_app = app_module.build_app

    def build(*args: object, **kwargs: object) -> App:
        app = build_app(*args, **kwargs)  # type: ignore[arg-type]
        built.append(app)
        return app

    monkeypatch.setattr(app_module, "build_app", build)
    with pytest.raises(ConfigError, match=r"session\.control_socket: cannot listen"):
        app_module.run_forever(config)
    (app,) = built
    assert app.closed and not app.gpio.relay.holding
    assert app.supervisor is not None and app.supervisor.current is None  # none was started
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


# -- firmware/session: a session stopped, tripped or faulted -------------------------------

PLAN = Plan("walk", (Interval.of_seconds("backward", 120.0), Interval.of_seconds("forward", 60.0)))
MEASURED_S = 10.0
"""Seconds of the balance check measured (after its settling) before it is cut short."""


def _stored_sessions(rig: Rig) -> list[SessionRecord]:
    return [s.record for s in load_sessions(rig.app.config.storage.database)]


def _balance_check_under_way(tmp_path: Path) -> tuple[Rig, SessionRunner]:
    """A session started in STANDBY, its standing balance check measuring for
    :data:`MEASURED_S`."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    runner = attach_session(rig.app, PLAN)
    assert runner.config.balance_check
    runner.request("start")
    rig.run_for(0.05)
    assert runner.state is SessionState.BALANCE
    rig.run_for(BALANCE_SETTLE_S + MEASURED_S)
    return rig, runner


def test_a_balance_check_under_way_when_the_monitor_stops_is_recorded_interrupted(
    tmp_path: Path,
) -> None:
    """SIGTERM during the standing balance check: ``retroguard run`` stops the session once the
    loop has returned (:meth:`SessionRunner.stop`), and its record says the check was cut
    short, after how long — not nothing, as if no check had been made, and no figures from
    the job ended unfinished (mutant: :meth:`SessionRunner._finish` not ending the check)."""
    rig, runner = _balance_check_under_way(tmp_path)
    runner.stop(rig.clock.monotonic())  # the loop has returned: this thread owns the runner
    detach_session(rig.app, runner)
    (record,) = _stored_sessions(rig)
    assert record.status == "stopped"
    (check,) = record.balance
    assert (check.condition, check.status) == ("eyes open", "interrupted")
    assert check.duration_s == pytest.approx(MEASURED_S, abs=0.1)
    assert check.rms_ap_ms2 is None  # a check cut short has no figures
    assert runner.snapshot().get("balance_check") is None  # none under way any more


def test_a_gait_thread_still_busy_when_the_monitor_stops_keeps_no_final_record_from_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session is stopped at shutdown while the measurement thread has not answered for
    its last interval (a Pi under load): the final record waits for those figures on the loop
    (:data:`~firmware.session.runner.FINAL_WAIT_S`), but there is no loop any more.
    :func:`detach_session` waits a while, then has it stored without them: the session is
    finished on disk and its summary due now, not left "final record due" until the next
    start (mutant: :meth:`SessionRunner.settle_measurements` leaving the deferred record's
    deadline as it was: it was never handed over)."""
    rig = armed_rig(tmp_path)
    runner = attach_session(rig.app, PLAN)
    measurements = runner.measurements
    assert measurements is not None
    runner.request("start")
    rig.run_for(3.0)
    answered = threading.Event()  # the thread answers the last interval only once set
    finish = gait_worker._WorkerState._finish

    def late(state: gait_worker._WorkerState, dropped_s: float, discard: bool) -> None:
        answered.wait(WAIT)
        finish(state, dropped_s, discard)

    monkeypatch.setattr(gait_worker._WorkerState, "_finish", late)
    close = measurements.close

    def answer_then_close(timeout: float = 5.0) -> None:  # after the wait has run out
        answered.set()
        close(timeout)

    monkeypatch.setattr(measurements, "close", answer_then_close)
    runner.stop(rig.clock.monotonic())  # the loop has returned: this thread owns the runner
    assert measurements.busy  # the last interval's figures are not in
    detach_session(rig.app, runner, timeout=0.5)  # a wait meant to run out
    rig.app.close(drain_timeout=WAIT)
    (record,) = _stored_sessions(rig)
    assert record.status == "stopped"
    conn = sqlite3.connect(rig.app.config.storage.database)
    try:
        (published,) = conn.execute("SELECT published FROM sessions").fetchone()
    finally:
        conn.close()
    assert published != FINAL_DUE  # the final record (the summary's) is stored


@dataclasses.dataclass
class ClosedHeard(Heard):
    """:class:`Heard`, and whether it was closed (a player's thread and sound card freed)."""

    closed: bool = False

    def close(self) -> None:
        self.closed = True


def test_a_session_that_cannot_attach_leaves_none_of_its_threads_running(tmp_path: Path) -> None:
    """The control socket cannot be made after the session's gait meter and voice were
    started: the attach fails with the reason, and stops them first — the app's close knows
    nothing of them, and ``retroguard run`` then closes only the app (mutants: the gait
    meter's close, the voice's close dropped from that failure path)."""
    rig = make_rig(tmp_path)
    (tmp_path / "a-file").write_text("")
    voice = ClosedHeard()
    before = set(threading.enumerate())
    with pytest.raises(ConfigError, match=r"session\.control_socket: cannot listen"):
        attach_session(
            rig.app, PLAN, speaker=voice, control_socket=str(tmp_path / "a-file" / "x.sock")
        )
    started = [t for t in threading.enumerate() if t not in before]
    assert [t.name for t in started if t.name in SESSION_THREADS] == []
    assert voice.closed
    hooks = rig.app.monitor.on_iteration
    assert [h for h in hooks if isinstance(h, SessionRunner)] == []  # nor added to the loop


def test_a_session_stopped_mid_walk_hands_over_its_final_record_with_the_last_figures(
    tmp_path: Path,
) -> None:
    """The walker stops the session 20 s into a walking interval: the final record — the one
    the courier makes the caregivers' summary from — waits for that interval's gait figures
    from the measurement thread and carries them; handed over at the stop, it had none
    (mutant: :meth:`SessionRunner._finish` never deferring the final record)."""
    motion = scenarios.Sequence(
        [scenarios.Standing(3.0), scenarios.Walking(400.0, 0.6, "backward", step_hz=1.5)],
        seed=3,
    )
    rig = armed_rig(tmp_path, motion=motion)
    handed: list[tuple[SessionRecord, bool]] = []
    submit = rig.app.link.submit_session

    def keep(record: SessionRecord, final: bool) -> None:
        handed.append((record, final))
        submit(record, final)

    rig.app.link.submit_session = keep  # type: ignore[method-assign]
    runner = attach_session(rig.app, PLAN)
    rig.run_for(2.0)
    runner.request("start")
    rig.run_for(20.0)
    runner.request("stop")
    rig.run_for(0.05)
    detach_session(rig.app, runner)
    (final,) = [record for record, is_final in handed if is_final]
    assert final.status == "stopped"
    gait = final.intervals[0].gait
    assert gait is not None and gait.steps > 0
    assert final == runner.finished[-1]
    (stored,) = _stored_sessions(rig)
    assert stored.intervals[0].gait == gait


TRIP_AT = 20.0


def _tripped_mid_walk(tmp_path: Path, voice: Heard | None = None) -> tuple[Rig, SessionRunner]:
    """A session running from 1.5 s, a stumble at :data:`TRIP_AT` that pauses it, TRIPPED."""
    rig = armed_rig(tmp_path, detector=TripAt(TRIP_AT))
    runner = attach_session(rig.app, PLAN, speaker=voice)
    runner.request("start")
    rig.run_for(TRIP_AT + 0.5 - rig.clock.monotonic())
    assert rig.state == "TRIPPED" and runner.state is SessionState.PAUSED
    return rig, runner


def test_a_session_paused_by_a_trip_when_the_monitor_stops_counts_its_last_pause(
    tmp_path: Path,
) -> None:
    """SIGTERM 10 s after a trip paused the session: its record's paused time takes in those
    10 s (what the next start's repair counts the end from, and what a physio reads as time
    off the belt), not only the pauses that ended before (mutant: :meth:`_finish` not adding
    the pause under way)."""
    rig, runner = _tripped_mid_walk(tmp_path)
    rig.run_for(TRIP_AT + 10.0 - rig.clock.monotonic())
    runner.stop(rig.clock.monotonic())  # the loop has returned: this thread owns the runner
    detach_session(rig.app, runner)
    (record,) = _stored_sessions(rig)
    assert record.status == "stopped" and record.trips == 1
    assert record.paused_s == pytest.approx(10.0, abs=0.1)


def test_a_session_stopped_while_tripped_plays_and_says_no_done_cue(tmp_path: Path) -> None:
    """The walker tripped; the alarm is over (a press let go before the chirp), the belt still
    stopped, and the session is stopped from the CLI: the "session done" cue is for a stop
    made walking, armed. Played here it told someone who had just stumbled, on a belt the
    trip stopped, "Session done. Slow the belt to a stop, holding the rail. Well walked."
    (mutant: the DONE cue on every stop; over the alarm itself the buzzer refuses it, and it
    is dropped)."""
    heard = Heard()
    rig, runner = _tripped_mid_walk(tmp_path, heard)
    rig.press_reset(hold=0.1)  # let go before the chirp: the alarm ends, nothing is armed
    rig.run_for(10.0)  # the trip's words said
    assert rig.state == "TRIPPED" and rig.app.gpio.buzzer.pattern is None
    said = len(heard.said)
    runner.request("stop")
    rig.run_for(5.0)
    assert runner.state is SessionState.FINISHED
    assert [c for c in runner.cues if c.t > TRIP_AT and c.cue is Cue.DONE] == []
    assert [words for words in heard.said[said:] if words.startswith("Session done")] == []
    detach_session(rig.app, runner)


@pytest.mark.parametrize("cut_by", ["arming", "fault", "pause"])
def test_a_balance_check_cut_short_is_recorded_interrupted_after_what_it_measured(
    tmp_path: Path, cut_by: str
) -> None:
    """The check measures only in STANDBY and only while it is asked for: the walker arming
    with the reset button, the sensor's bus failing (FAULT) or the walker's pause ends it on
    that iteration, recorded as cut short after the seconds it measured. Left running until
    the session's stop, the seconds walked, faulted or paused after it were counted as
    standing measured (mutants: the check not ended where the session leaves BALANCE for
    the safety state, nor on a pause)."""
    rig, runner = _balance_check_under_way(tmp_path)
    if cut_by == "arming":
        rig.press_reset()
        assert rig.state == "ARMED" and runner.state is SessionState.RUNNING
    elif cut_by == "fault":
        rig.sim_imu.bus.disconnect()
        rig.run_for(0.5)
        assert rig.state == "FAULT" and runner.state is SessionState.PAUSED
    else:
        runner.request("pause")
        rig.run_for(0.05)
        assert runner.state is SessionState.PAUSED
    rig.run_for(3.0)
    runner.stop(rig.clock.monotonic())
    detach_session(rig.app, runner)
    (record,) = _stored_sessions(rig)
    (check,) = record.balance
    assert (check.condition, check.status) == ("eyes open", "interrupted")
    assert MEASURED_S <= check.duration_s <= MEASURED_S + 1.0


def test_a_session_detached_at_stop_closes_its_voice_and_names_no_walker_after_it(
    tmp_path: Path,
) -> None:
    """``retroguard run`` stops a session under way, detaches it, then closes the app. The
    detach closes the session's voice (its player's thread, the sound card), and the link
    no longer names the session's walker: the monitor's stop event, made after, is nobody's
    session's — it was stored and published as the walker's (mutants: the voice's close, and
    the link told no session is under way, dropped from the detach)."""
    voice = ClosedHeard()
    rig = armed_rig(tmp_path)
    runner = attach_session(rig.app, PLAN, speaker=voice)
    runner.request("start")
    rig.run_for(2.0)
    assert rig.app.link.session_walker is not None  # the session's events name its walker
    runner.stop(rig.clock.monotonic())
    detach_session(rig.app, runner)
    assert voice.closed
    rig.app.close(drain_timeout=WAIT)
    conn = sqlite3.connect(rig.app.config.storage.database)
    try:
        walkers = dict(conn.execute("SELECT type, walker FROM events").fetchall())
    finally:
        conn.close()
    assert walkers["stop"] is None


def test_records_the_courier_s_refusing_disk_keeps_in_memory_do_not_hold_up_the_stop(
    tmp_path: Path,
    disk: FillableDisk,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The card went read-only under a walk and the walker fell; then the monitor stops. The
    courier keeps the fall in memory (and publishes it): no "on disk" can come, so the
    hand-over waits only until the courier has it, and says so — before it could wait out its
    whole flush (12 s) on a stop, then call the fall "not confirmed" as if the courier never
    had it (mutant: the hand-over waiting for "on disk" whatever the courier said)."""
    monkeypatch.setattr("firmware.courier.service.HEARTBEAT_S", 0.05)
    monkeypatch.setattr("firmware.courier.service.PROBE_S", 0.1)
    detector = TripOnDemand()
    rig = armed_rig(tmp_path, detector=detector)
    link = rig.app.link
    disk.go_read_only()
    assert pump_link_until(link, lambda: link.storage_ok is False)  # the courier's probe
    detector.trip = True
    rig.run_for(0.2)
    assert rig.state == "TRIPPED" and link.pending  # the fall: in the courier's memory only
    rig.app.close()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert [e for e in errors if "at shutdown" in e] == [
        f"{link.pending} records only in the courier's memory at shutdown (its disk refuses "
        f"writes: {link.storage_detail}): published, not on disk"
    ]


def test_a_detached_session_is_off_the_loop(tmp_path: Path) -> None:
    """Once detached, a session is no longer run by the loop, whatever it was doing: no plan
    time counted, no turn cued. Its gait meter and voice are closed by then, and a runner
    still ticking went on playing cues and counting a plan nobody runs (mutant: the hook left
    on the loop)."""
    rig = armed_rig(tmp_path)
    runner = attach_session(rig.app, PLAN)
    runner.request("start")
    rig.run_for(2.0)
    assert runner.session is not None and runner.state is SessionState.RUNNING
    detach_session(rig.app, runner)
    plan_t, cues = runner.session.plan_t, len(runner.cues)
    rig.run_for(130.0)  # past the first interval's end: its turn would be cued and recorded
    assert (runner.session.plan_t, len(runner.cues)) == (plan_t, cues)


def test_a_clean_stop_is_recorded_clean_by_the_courier(tmp_path: Path) -> None:
    """The monitor's close says goodbye before it closes the link: the courier records the
    run as ended cleanly, and no "stopped without shutting down" fault — which a kill, a
    crash or a hang gets, and a caregiver reads as events perhaps missing (mutant: the
    goodbye dropped from :meth:`App.close`; ``tests/monitor_process.py``, which the unclean-
    stop tests run, says its own goodbye)."""
    rig = armed_rig(tmp_path)
    rig.app.close(drain_timeout=WAIT)
    with EventStore(rig.app.config.storage.database) as store:
        stored = [(e.event.type, e.event.reason) for e in store.events()]
    assert stored[-1] == (EventType.STOP, "monitor stopped")
    assert [reason for kind, reason in stored if kind is EventType.FAULT] == []
    conn = sqlite3.connect(rig.app.config.storage.database)
    try:
        assert conn.execute("SELECT clean FROM runs").fetchall() == [(1,)]
    finally:
        conn.close()
