"""Guided sessions on the simulated clock: cue order and times, trips pause and re-arming
resumes, press patterns beside the reset button, and no session action ever moves the relay."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import math
import queue
import sqlite3
import threading
import tokenize
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core.errors import ConfigError
from core.samples import ImuSample
from firmware.detection.base import Detection, DetectionKind
from firmware.safety import SafetyState
from firmware.session.control import ControlServer, send_command
from firmware.session.cues import Cue
from firmware.session.plan import PRESETS, Interval, Plan
from firmware.session.runner import (
    BALANCE_MEASURE_S,
    BALANCE_SETTLE_S,
    SESSION_TRANSITIONS,
    PauseCause,
    SessionRunner,
    SessionState,
    SessionTrigger,
    attach_session,
    detach_session,
)
from firmware.storage.sessions import load_sessions
from hal.buzzer_patterns import get_pattern
from hal.gpio import GpioBuzzer
from hal.interfaces import PressEdges
from launcher.cli import main
from sim import scenarios
from tests.app_support import (  # noqa: F401 - fixture
    WAIT,
    Heard,
    Rig,
    TripAt,
    armed_rig,
    close_open_rigs,
    close_rigs,
    make_rig,
    pump_link_until,
)

pytestmark = pytest.mark.usefixtures("close_rigs")

SHORT = Plan(
    "short",
    (
        Interval.of_seconds("backward", 30.0),
        Interval.of_seconds("forward", 20.0),
        Interval.of_seconds("rest", 10.0),
        Interval.of_seconds("backward", 150.0),
    ),
)
"""Cues expected: backward 0, get ready to turn 15, forward 30, rest 50, backward 60, one minute
left 150, done 210."""


def _cues(runner: SessionRunner) -> list[tuple[Cue, float]]:
    return [(c.cue, c.plan_t) for c in runner.cues]


def _relay_history(rig: Rig) -> list[tuple[float, bool]]:
    return rig.hardware.history


@dataclasses.dataclass(frozen=True)
class WalkedSession:
    """:data:`SHORT` walked to its end once, for the tests that read its cues and its store."""

    runner: SessionRunner
    start: float
    """The loop's clock just after the session started."""
    database: str


@pytest.fixture(scope="module")
def short_walked(tmp_path_factory: pytest.TempPathFactory) -> WalkedSession:
    """The walker steps backward at 1.5 steps/s from 3 s on, the session starts at 5 s and runs
    its 210 s to the end. Its cues (:func:`test_cues_fire_in_order_at_the_planned_times`) and
    its stored record (:func:`test_sessions_are_stored_per_interval`) are of the same run:
    each test simulated its own 215 s of the 200 Hz monitor, the file's longest two."""
    motion = scenarios.Sequence(
        [scenarios.Standing(3.0), scenarios.Walking(400.0, 0.6, "backward", step_hz=1.5)],
        seed=3,
    )
    rig = armed_rig(tmp_path_factory.mktemp("short-walked"), motion=motion)
    try:
        runner = attach_session(rig.app, SHORT)
        rig.run_for(5.0)
        runner.request("start")
        rig.run_for(0.01)
        start = rig.clock.monotonic()
        rig.run_for(215.0)
        detach_session(rig.app, runner)
        return WalkedSession(runner, start, rig.app.config.storage.database)
    finally:
        close_open_rigs()


def test_cues_fire_in_order_at_the_planned_times(short_walked: WalkedSession) -> None:
    runner, start = short_walked.runner, short_walked.start
    assert runner.state is SessionState.FINISHED
    expected = [
        (Cue.BACKWARD, 0.0),
        (Cue.TURN_AHEAD, 15.0),
        (Cue.FORWARD, 30.0),
        (Cue.REST, 50.0),
        (Cue.BACKWARD, 60.0),
        (Cue.ONE_MINUTE, 150.0),
        (Cue.DONE, 210.0),
    ]
    got = _cues(runner)
    assert [c for c, _ in got] == [c for c, _ in expected]
    period = 0.02  # one loop iteration at most, whatever the batch size
    for (_, t), (_, want) in zip(got, expected, strict=True):
        assert want <= t + 1e-9 <= want + period
    # The buzzer played each cue (nothing of higher priority was sounding).
    assert all(c.played for c in runner.cues)
    # Wall time on the loop's clock matches plan time: nothing paused.
    assert runner.cues[-1].t - start == pytest.approx(210.0, abs=0.05)
    record = runner.finished[-1]
    assert record.status == "completed"
    assert record.backward_s == pytest.approx(180.0, abs=0.1)
    assert [i.direction for i in record.intervals] == [
        "backward",
        "forward",
        "rest",
        "backward",
    ]


def test_preset_cues_on_a_compressed_clock(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"], time_scale=60.0)
    runner.request("start")
    rig.run_for(31.0)
    got = _cues(runner)
    kinds = [c for c, _ in got]
    ahead = [Cue.TURN_AHEAD]
    assert kinds == [Cue.BACKWARD, *ahead, Cue.FORWARD, *ahead] * 6 + [
        Cue.BACKWARD,
        *ahead,
        Cue.FORWARD,
        Cue.FORWARD,
        Cue.ONE_MINUTE,
        Cue.DONE,
    ]
    times = [t for _, t in got]
    want = sorted(
        [120.0 * n for n in range(15)] + [120.0 * n + 105.0 for n in range(13)] + [1740.0, 1800.0]
    )
    for t, w in zip(times, want, strict=True):
        assert w <= t + 1e-6 <= w + 60 * 0.02
    detach_session(rig.app, runner)


def test_a_compressed_plans_cues_beep_within_it_and_a_real_cut_is_still_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``demo --speed 4`` logged "cue turn_ahead cut short by cue_forward" at every turn, at
    any speed: the demo's plan runs 30 times faster, so "get ready to turn", 15 plan seconds
    before the turn, came 0.5 s before it while its beeps (1.2 s) played at their own length.
    On a real plan they end 14 s before the turn. The plan's cues beep as much faster as the
    plan runs now (its speech and the LED's flash did already): none is cut by the next, and a
    cue cut short by something else (a call for help's beeps) is still said to be."""
    caplog.set_level(logging.INFO, logger="firmware.session.cue_player")
    rig = armed_rig(tmp_path)
    buzzer = rig.app.gpio.buzzer
    assert isinstance(buzzer, GpioBuzzer)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"], time_scale=30.0)
    turn_ahead = get_pattern("cue_turn_ahead")
    assert buzzer.faster["cue_turn_ahead"].period == pytest.approx(turn_ahead.period / 30.0)
    assert "chirp" not in buzzer.faster and "sway_start" not in buzzer.faster  # not plan-timed
    runner.request("start")
    rig.run_for(13.0)  # three turns, each warned 0.5 s ahead
    played = [c.cue for c in runner.cues if c.played]
    ahead, turn = Cue.TURN_AHEAD, Cue.FORWARD
    assert played[:5] == [Cue.BACKWARD, ahead, turn, ahead, Cue.BACKWARD]
    cuts = [r.getMessage() for r in caplog.records if "cut short" in r.getMessage()]
    assert cuts == []
    # A call for help's beeps during a cue: still cut short, and said so.
    while runner.cues[-1].cue is not Cue.TURN_AHEAD:
        rig.run_for(0.005)
    assert buzzer.pattern == "cue_turn_ahead"
    buzzer.play("help_sent", rig.clock.monotonic())
    rig.run_for(0.01)
    cuts = [r.getMessage() for r in caplog.records if "cut short" in r.getMessage()]
    assert cuts == ["cue turn_ahead cut short by help_sent: played again once it ends"]
    detach_session(rig.app, runner)
    assert buzzer.faster == {}  # a session on the real plan's clock next
    runner = attach_session(rig.app, SHORT)
    assert buzzer.faster == {}
    detach_session(rig.app, runner)


TO_THE_TURN = Plan("to-the-turn", SHORT.intervals[:2])
""":data:`SHORT` up to and through its first turn (backward 30 s, forward 20 s)."""


def test_a_trip_pauses_and_rearming_resumes(tmp_path: Path) -> None:
    """A trip in the first interval, re-armed 30 s later; the plan then runs to its end. The
    plan ends with the turn that follows the trip: :data:`SHORT`'s 160 s more, walked on to
    reach its end, checked nothing more than the run to the end of this one."""
    rig = make_rig(tmp_path, detector=TripAt(20.0))
    rig.run_for(1.0)
    rig.press_reset()
    runner = attach_session(rig.app, TO_THE_TURN)
    runner.request("start")
    rig.run_for(25.0 - rig.clock.monotonic())
    assert rig.state == "TRIPPED"
    assert runner.state is SessionState.PAUSED
    assert "trip" in runner.pause_reason
    assert runner.pause_cause is PauseCause.TRIP
    assert runner.session is not None
    plan_t = runner.session.plan_t
    rig.run_for(30.0)  # the plan clock stands still while tripped
    assert runner.session.plan_t == plan_t
    assert runner.session.intervals[0].trips == 1
    assert runner.session.intervals[0].stumbles == 1
    # The alarm sounds; the cues that fell due meanwhile did not.
    assert rig.app.gpio.buzzer.pattern == "alarm"
    rig.press_reset()
    assert rig.state == "ARMED"
    rig.run_for(0.05)
    assert runner.state is SessionState.RUNNING
    rig.run_for(2.0)
    # The current interval's cue is repeated after the arming chirp; 8 s before the turn,
    # "get ready to turn" is said again once its beeps are over.
    resumed, ahead = [c for c in runner.cues if c.played][-2:]
    assert resumed.cue is Cue.BACKWARD and resumed.resumed
    assert resumed.plan_t == pytest.approx(plan_t + 1.0, abs=0.1)
    assert (ahead.cue, ahead.late) == (Cue.TURN_AHEAD, True)
    rig.run_for(40.0)  # the 32 s of plan left
    assert runner.state is SessionState.FINISHED
    record = runner.finished[-1]
    assert record.trips == 1 and record.stumbles == 1 and record.pauses == 1
    assert record.paused_s > 30.0
    detach_session(rig.app, runner)


def _without_balance_check(rig: Rig) -> None:
    """The session config without the standing balance check (tests of what comes after)."""
    config = rig.app.config
    session = dataclasses.replace(config.session, balance_check=False)
    rig.app.config = dataclasses.replace(config, session=session)


def test_starting_a_session_never_arms(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    _without_balance_check(rig)  # the check's own cues: test_the_balance_check_...
    runner = attach_session(rig.app, SHORT)
    before = _relay_history(rig)
    runner.request("start")
    rig.run_for(60.0)
    assert rig.state == "STANDBY"
    assert not rig.app.gpio.relay.holding
    assert _relay_history(rig) == before
    assert runner.state is SessionState.PAUSED
    assert "waiting for arming" in runner.pause_reason
    assert runner.pause_cause is PauseCause.WAITING_FOR_ARMING
    assert runner.cues == type(runner.cues)()  # no cue: the plan has not begun
    rig.press_reset()  # the walker arms, as always
    rig.run_for(0.05)
    assert runner.state is SessionState.RUNNING
    assert [c.cue for c in runner.cues] == [Cue.BACKWARD]
    detach_session(rig.app, runner)


def _names_mentioning_relay() -> list[str]:
    found = []
    for path in sorted(Path("firmware/session").glob("*.py")):
        with tokenize.open(path) as fh:
            for token in tokenize.generate_tokens(fh.readline):
                if token.type == tokenize.NAME and "relay" in token.string.lower():
                    found.append(f"{path}:{token.start[0]}: {token.string}")
                if token.type == tokenize.STRING and token.string.strip("\"'").lower() in (
                    "relay",
                    "_relay",
                ):
                    found.append(f"{path}:{token.start[0]}: {token.string}")
    return found


def test_no_session_action_changes_the_relay(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    runner = attach_session(rig.app, SHORT)
    history = _relay_history(rig)
    assert history[-1][1] is True  # the contact is closed: the belt may run
    for command in ("start", "pause", "resume", "pause", "resume", "status", "stop", "start"):
        runner.request(command)
        rig.run_for(3.0)
        assert rig.state == "ARMED"
    # Press patterns too: double presses and a long press while armed.
    now = rig.clock.monotonic()
    for t in (now, now + 0.4, now + 3.0, now + 3.4):
        rig.button.press_at(t, t + 0.15)
    rig.button.press_at(now + 6.0, now + 8.5)
    rig.run_for(10.0)
    assert rig.state == "ARMED"
    assert _relay_history(rig) == history
    assert runner.state is SessionState.FINISHED
    # The session code has no way to the relay at all: no name in it mentions one.
    assert _names_mentioning_relay() == []
    detach_session(rig.app, runner)


def test_press_patterns_start_pause_and_stop_only_while_armed(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    runner = attach_session(rig.app, SHORT)

    def double_press() -> None:
        now = rig.clock.monotonic()
        rig.button.press_at(now, now + 0.15)
        rig.button.press_at(now + 0.35, now + 0.5)
        rig.run_for(1.5)

    # In STANDBY a double press is not a reset press (no press pattern arms, issue 15 and
    # docs/safety.md "Button press patterns"): it arms nothing and starts nothing.
    double_press()
    assert rig.state == "STANDBY"
    assert runner.state is SessionState.IDLE
    rig.press_reset()  # the one way to arm: a press held until the chirp
    rig.run_for(1.0)  # a pause, so the next presses are a sequence of their own
    assert rig.state == "ARMED"
    assert runner.state is SessionState.IDLE
    # Armed: double press starts, double press pauses, double press resumes.
    double_press()
    assert runner.state is SessionState.RUNNING
    double_press()
    assert runner.state is SessionState.PAUSED and runner.pause_reason == "paused by the walker"
    assert runner.pause_cause is PauseCause.BUTTON
    double_press()
    assert runner.state is SessionState.RUNNING
    # A single press and a triple press do nothing.
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.15)
    rig.run_for(1.5)
    now = rig.clock.monotonic()
    for k in range(3):
        rig.button.press_at(now + 0.35 * k, now + 0.35 * k + 0.15)
    rig.run_for(2.0)
    assert runner.state is SessionState.RUNNING
    # A long press stops it, with the "done" cue while the button is still held.
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 3.0)
    rig.run_for(2.1)
    assert runner.state is SessionState.FINISHED
    assert runner.finished[-1].status == "stopped"
    assert runner.cues[-1].cue is Cue.DONE
    rig.run_for(1.0)
    assert rig.state == "ARMED"
    detach_session(rig.app, runner)


def test_a_walker_pause_survives_rearming(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, detector=TripAt(10.0))
    rig.run_for(1.0)
    rig.press_reset()
    runner = attach_session(rig.app, SHORT)
    runner.request("start")
    rig.run_for(2.0)
    runner.request("pause")
    rig.run_for(10.0)
    assert rig.state == "TRIPPED"
    rig.press_reset()
    rig.run_for(1.0)
    assert runner.state is SessionState.PAUSED and runner.pause_reason == "paused by the walker"
    assert runner.pause_cause is PauseCause.CLI
    detach_session(rig.app, runner)


def test_a_long_pause_abandons_the_session(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    # A one-minute limit rather than the default quarter of an hour: the same rule in a
    # fifteenth of the loop's steps.
    session = dataclasses.replace(rig.app.config.session, max_pause_s=60.0)
    rig.app.config = dataclasses.replace(rig.app.config, session=session)
    runner = attach_session(rig.app, SHORT)
    runner.request("start")
    rig.run_for(1.0)
    runner.request("pause")
    rig.run_for(59.0)
    assert runner.state is SessionState.PAUSED  # not before the limit
    rig.run_for(2.0)
    assert runner.state is SessionState.FINISHED
    assert runner.finished[-1].status == "abandoned"
    detach_session(rig.app, runner)


def test_sessions_are_stored_per_interval(short_walked: WalkedSession) -> None:
    sessions = load_sessions(short_walked.database)
    assert len(sessions) == 1
    record = sessions[0].record
    assert record.status == "completed"
    # 1.5 steps/s over the walking intervals (the rest interval is walked too: the simulated
    # walker ignores cues, and the log measures what happened, not what was planned).
    assert record.steps == pytest.approx(1.5 * 210, rel=0.05)
    assert record.cadence_spm == pytest.approx(90.0, rel=0.05)
    conn = sqlite3.connect(short_walked.database)
    rows = conn.execute(
        "SELECT idx, direction, planned_s, done_s, steps FROM session_intervals ORDER BY idx"
    ).fetchall()
    conn.close()
    assert [r[1] for r in rows] == ["backward", "forward", "rest", "backward"]
    assert [r[2] for r in rows] == [30.0, 20.0, 10.0, 150.0]
    assert [r[4] for r in rows][3] == pytest.approx(1.5 * 150, rel=0.05)


def test_a_control_socket_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    """A control socket under a file (or too long a path, or where the user may not write)
    raised out of `retroguard run` with a traceback; the run now says which setting, and why."""
    rig = armed_rig(tmp_path)
    (tmp_path / "a-file").write_text("")
    path = tmp_path / "a-file" / "session.sock"
    with pytest.raises(ConfigError) as err:
        attach_session(rig.app, SHORT, record=False, control_socket=str(path))
    (problem,) = err.value.problems
    assert problem.startswith(f"session.control_socket: cannot listen on {path}: ")


SESSION_THREADS = frozenset({"retroguard-gait", "retroguard-session-control", "retroguard-prompts"})
"""The threads a session may start beside the loop (the app's own, such as the courier's
heartbeat, may start meanwhile: they end with app.close(), not here)."""


def _threads_started_by(attach: Any) -> tuple[Any, list[threading.Thread]]:
    before = set(threading.enumerate())
    result = attach()
    return result, [
        t for t in threading.enumerate() if t not in before and t.name in SESSION_THREADS
    ]


def test_a_detached_session_leaves_none_of_its_threads_running(tmp_path: Path) -> None:
    """What a session starts beside the loop (its gait meter, its control socket, its voice)
    ends with detach_session: app.close() knows nothing of them. A gait meter left running on
    a pytest worker was once counted by a later test as its own."""
    rig = armed_rig(tmp_path)
    runner, started = _threads_started_by(
        lambda: attach_session(rig.app, SHORT, control_socket=str(tmp_path / "session.sock"))
    )
    assert {t.name for t in started} >= {"retroguard-gait", "retroguard-session-control"}
    runner.request("start")
    rig.run_for(1.5)  # a block of samples handed to the gait meter
    runner.request("stop")
    rig.run_for(0.1)
    detach_session(rig.app, runner)
    for thread in started:
        thread.join(WAIT)  # a bound, not a timing: a thread never told to end stays
    assert [t.name for t in started if t.is_alive()] == []


def test_local_cli_socket_controls_the_session(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    runner = attach_session(rig.app, SHORT, record=False)
    server = ControlServer(tmp_path / "run" / "session.sock", runner)
    server.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            for command, state in (
                ("start", SessionState.RUNNING),
                ("pause", SessionState.PAUSED),
                ("resume", SessionState.RUNNING),
                ("stop", SessionState.FINISHED),
            ):
                future = _taken_by_the_loop(
                    rig, runner, pool, lambda c=command: send_command(server.path, c)
                )
                ok, message = future.result(WAIT)
                assert ok, message
                assert runner.state is state
            future = pool.submit(send_command, server.path, "arm")
            ok, message = future.result()
            assert not ok and "unknown command" in message
        assert rig.state == "ARMED"
    finally:
        server.close()
    detach_session(rig.app, runner)
    assert not server.path.exists()


def test_session_summary_goes_through_the_outbox(tmp_path: Path) -> None:
    from core.protocol.topics import Topics
    from firmware.session.record import session_payload
    from firmware.storage.database import connect
    from firmware.storage.sessions import SummaryToQueue, save_session

    rig = armed_rig(tmp_path)
    runner = attach_session(rig.app, SHORT, record=False)
    runner.request("start")
    rig.run_for(1.0)
    runner.request("stop")
    rig.run_for(0.1)
    record = runner.finished[-1]
    conn = connect(tmp_path / "s.db")
    summary = SummaryToQueue(
        Topics("retroguard", "treadmill-1").session, lambda: session_payload(record)
    )
    assert save_session(conn, record, summary)
    assert not save_session(conn, record, summary)  # queued once
    rows = conn.execute("SELECT topic, priority, payload FROM outbox").fetchall()
    conn.close()
    assert len(rows) == 1
    assert rows[0][0] == "retroguard/treadmill-1/session"
    from tests.mqtt_helpers import validate

    payload = validate("session", rows[0][2])
    assert payload["id"] == record.id and payload["schema"] == 1
    detach_session(rig.app, runner)


Edge = tuple[SessionState, SessionState, SessionTrigger]


class TracedRunner(SessionRunner):
    """A runner that notes every transition it makes or refuses, with a way to force one."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.taken: list[Edge] = []
        self.refused: list[Edge] = []

    def _go(self, target: SessionState, trigger: SessionTrigger) -> bool:
        source = self.state
        went = super()._go(target, trigger)
        (self.taken if went else self.refused).append((source, target, trigger))
        return went

    def force_finish(self, now: float, trigger: SessionTrigger) -> None:
        self._finish(now, trigger)

    def force_run(self, now: float, trigger: SessionTrigger) -> None:
        self._run(now, trigger)


def _traced(rig: Rig, plan: Plan, **config: float | bool) -> TracedRunner:
    button = rig.app.gpio.button
    runner = TracedRunner(
        plan,
        safety=rig.app.controller,
        buzzer=rig.app.gpio.buzzer,
        device_id=rig.app.config.device.id,
        config=dataclasses.replace(rig.app.config.session, **config),
        # The loop reads the button first and passes its edges on, as attach_session wires it.
        button=rig.app.monitor.press_edges if isinstance(button, PressEdges) else None,
    )
    rig.app.monitor.on_iteration.append(runner)
    return runner


def _ask(rig: Rig, runner: SessionRunner, command: str) -> None:
    runner.request(command)
    rig.run_for(0.05)  # the loop answers at its next iteration


def test_every_session_transition_in_the_table_is_taken(tmp_path: Path) -> None:
    """Each edge of SESSION_TRANSITIONS happens in a scenario, and nothing is refused."""
    long_plan = Plan("long", (Interval.of_seconds("backward", 600.0),))
    rig = make_rig(tmp_path / "a", detector=TripAt(4.0))
    rig.run_for(1.0)
    a = _traced(rig, long_plan, balance_check=False)
    _ask(rig, a, "start")  # STANDBY: waits for arming
    _ask(rig, a, "resume")  # still not armed: waits on
    rig.press_reset()
    rig.run_for(0.05)
    assert a.state is SessionState.RUNNING
    rig.run_for(4.5 - rig.clock.monotonic())
    assert rig.state == "TRIPPED" and a.pause_cause is PauseCause.TRIP
    _ask(rig, a, "stop")
    _ask(rig, a, "start")  # TRIPPED: waits for arming
    _ask(rig, a, "pause")  # the walker's pause replaces the wait
    rig.press_reset()
    rig.run_for(0.05)
    assert rig.state == "ARMED" and a.state is SessionState.PAUSED
    for command in ("resume", "pause", "resume", "stop"):
        _ask(rig, a, command)
    assert a.state is SessionState.FINISHED
    rig = armed_rig(tmp_path / "b")
    b = _traced(rig, Plan("tiny", (Interval.of_seconds("backward", 3.0),)), max_pause_s=2.0)
    _ask(rig, b, "start")
    rig.run_for(4.0)
    assert b.finished[-1].status == "completed"
    _ask(rig, b, "start")
    _ask(rig, b, "pause")
    rig.run_for(3.0)
    assert b.finished[-1].status == "abandoned"
    # The standing balance check, in STANDBY: done, stopped by the walker, stopped, cut short
    # by a fault and by arming.
    rig = make_rig(tmp_path / "c")
    rig.run_for(1.0)
    c = _traced(rig, long_plan)
    _ask(rig, c, "start")
    assert c.state is SessionState.BALANCE
    rig.run_for(BALANCE_SETTLE_S + BALANCE_MEASURE_S)
    assert c.state is SessionState.PAUSED and c.pause_cause is PauseCause.WAITING_FOR_ARMING
    for command in ("stop", "start", "pause", "stop", "start", "stop", "start"):
        _ask(rig, c, command)
    rig.sim_imu.bus.disconnect()
    rig.run_for(0.5)
    assert rig.state == "FAULT" and c.pause_cause is PauseCause.FAULT
    rig.sim_imu.bus.reconnect()
    rig.run_for(3.0)
    _ask(rig, c, "stop")
    _ask(rig, c, "start")
    rig.press_reset()
    assert c.state is SessionState.RUNNING
    assert a.refused == b.refused == c.refused == []
    assert set(a.taken) | set(b.taken) | set(c.taken) == set(SESSION_TRANSITIONS.edges)


@pytest.mark.parametrize(
    ("kind", "stumbles"), [(DetectionKind.STUMBLE, 1), (DetectionKind.FALL, 0)]
)
def test_trips_and_stumbles_are_counted_from_the_typed_cause(
    tmp_path: Path, kind: DetectionKind, stumbles: int
) -> None:
    rig = make_rig(tmp_path, detector=TripAt(20.0, kind=kind))
    rig.run_for(1.0)
    rig.press_reset()
    runner = attach_session(rig.app, SHORT, record=False)
    runner.request("start")
    rig.run_for(25.0 - rig.clock.monotonic())
    assert runner.state is SessionState.PAUSED and runner.pause_cause is PauseCause.TRIP
    assert runner.session is not None
    interval = runner.session.intervals[0]
    assert (interval.trips, interval.stumbles) == (1, stumbles)
    # What the English rule it replaces counted from the same transitions:
    tripped = [t for t in rig.app.controller.transitions if t.state is SafetyState.TRIPPED]
    assert len(tripped) == 1
    assert sum(t.reason.startswith("stumble") for t in tripped) == stumbles
    runner.request("stop")
    rig.run_for(0.05)
    assert (runner.finished[-1].trips, runner.finished[-1].stumbles) == (1, stumbles)
    detach_session(rig.app, runner)


def test_a_fault_pauses_without_counting_a_trip_and_rearming_resumes(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    assert rig.sim_imu is not None
    runner = attach_session(rig.app, SHORT, record=False)
    runner.request("start")
    rig.run_for(1.0)
    rig.sim_imu.bus.disconnect()
    rig.run_for(0.5)
    assert rig.state == "FAULT"
    assert runner.state is SessionState.PAUSED and runner.pause_cause is PauseCause.FAULT
    assert runner.pause_reason == (
        "paused by the monitor (FAULT): re-arm with the reset button to resume"
    )
    assert runner.session is not None and runner.session.intervals[0].trips == 0
    rig.sim_imu.bus.reconnect()
    rig.run_for(3.0)
    assert rig.state == "STANDBY" and runner.state is SessionState.PAUSED
    rig.press_reset()
    rig.run_for(0.05)
    assert runner.state is SessionState.RUNNING and runner.pause_cause is None
    detach_session(rig.app, runner)


def test_a_forbidden_session_transition_is_refused_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = armed_rig(tmp_path)
    runner = _traced(rig, SHORT)
    _ask(rig, runner, "start")
    assert runner.state is SessionState.RUNNING
    cues = len(runner.cues)
    now = rig.clock.monotonic()
    runner.force_finish(now, SessionTrigger.MAX_PAUSE)  # only a PAUSED session is abandoned
    runner.force_run(now, SessionTrigger.REARMED)  # RUNNING is not re-armed into RUNNING
    assert runner.refused == [
        (SessionState.RUNNING, SessionState.FINISHED, SessionTrigger.MAX_PAUSE),
        (SessionState.RUNNING, SessionState.RUNNING, SessionTrigger.REARMED),
    ]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "session: forbidden transition RUNNING -> FINISHED on max pause: refused",
        "session: forbidden transition RUNNING -> RUNNING on re-armed: refused",
    ]
    # Nothing else happened: no record, no cue, the session runs on.
    assert runner.state is SessionState.RUNNING and list(runner.finished) == []
    assert runner.session is not None and runner.session.status == "running"
    rig.run_for(2.0)
    assert runner.state is SessionState.RUNNING and len(runner.cues) == cues


def test_a_trip_with_no_session_under_way_is_not_the_next_sessions(tmp_path: Path) -> None:
    """With no session under way the runner only notes where the safety log is: a trip then
    is no interval's, and the session started after re-arming counts only its own."""
    detector = TripAt(2.0)
    rig = armed_rig(tmp_path, detector=detector)
    runner = attach_session(rig.app, SHORT, record=False)
    rig.run_for(1.5)
    assert rig.state == "TRIPPED" and runner.state is SessionState.IDLE
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED"
    runner.request("start")
    rig.run_for(1.0)
    assert runner.state is SessionState.RUNNING and runner.session is not None
    assert [i.trips for i in runner.session.intervals] == [0] * len(SHORT.intervals)
    detector.t, detector.fired_at = rig.clock.monotonic() + 0.5, None
    rig.run_for(1.0)
    assert rig.state == "TRIPPED" and runner.state is SessionState.PAUSED
    assert runner.session.intervals[0].trips == 1
    detach_session(rig.app, runner)


class StumbleThenFall:
    """A detector that trips on a stumble at ``t``, confirms a fall 2 s later in the same
    incident, and then that the walker is still lying (no recovery) 8 s after the trip."""

    def __init__(self, t: float) -> None:
        self.script = [
            (t, DetectionKind.STUMBLE),
            (t + 2.0, DetectionKind.FALL),
            (t + 8.0, DetectionKind.NO_RECOVERY),
        ]

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        if self.script and sample.t >= self.script[0][0]:
            _, kind = self.script.pop(0)
            return (Detection(kind, sample.t, f"test {kind.value}", {}),)
        return ()

    def reset(self) -> None:
        pass


def test_a_stumble_confirmed_as_a_fall_counts_as_a_fall(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The trip is a stumble when it happens; the fall confirmed later in the same incident
    makes it a fall (not a stumble), the no-recovery is noted, and the stored record, the
    log's row and the summary say so."""
    rig = make_rig(tmp_path, detector=StumbleThenFall(20.0))
    rig.run_for(1.0)
    rig.press_reset()
    runner = attach_session(rig.app, SHORT)
    runner.request("start")
    rig.run_for(21.0 - rig.clock.monotonic())
    assert rig.state == "TRIPPED" and runner.session is not None
    interval = runner.session.intervals[0]
    assert (interval.trips, interval.stumbles, interval.falls) == (1, 1, 0)
    rig.run_for(10.0)
    assert (interval.trips, interval.stumbles, interval.falls) == (1, 0, 1)
    assert interval.no_recovery == 1
    runner.request("stop")
    rig.run_for(0.05)
    detach_session(rig.app, runner)
    record = load_sessions(rig.app.config.storage.database)[-1].record
    assert (record.status, record.trips, record.stumbles) == ("stopped", 1, 0)
    assert (record.falls, record.fall_count, record.no_recovery) == (1, 1, 1)
    assert (record.intervals[0].falls, record.intervals[0].no_recovery) == (1, 1)
    conn = sqlite3.connect(rig.app.config.storage.database)
    try:
        row = conn.execute("SELECT trips, stumbles, falls, no_recovery FROM sessions").fetchone()
        per_interval = conn.execute(
            "SELECT falls, no_recovery FROM session_intervals WHERE idx = 0"
        ).fetchone()
    finally:
        conn.close()
    assert row == (1, 0, 1, 1) and per_interval == (1, 1)
    capsys.readouterr()
    assert main(["sessions", "--db", str(rig.app.config.storage.database)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("started"))
    assert header.split()[-5:] == ["trips", "stumbles", "falls", "no", "recovery"]
    (logged,) = [line for line in lines if " stopped " in line]
    assert logged.split()[-4:] == ["1", "0", "1", "1"]


def test_resuming_after_a_trip_says_to_start_the_belt_then_walk_on_not_to_turn(
    tmp_path: Path,
) -> None:
    """A trip in the forward interval that followed a backward one: the interval's own cue
    told the walker to turn; re-arming resumes the same interval, and its cue says to carry
    on forward, with the time left, and nothing about turning. The trip's relay stopped the
    belt, and the treadmill waits for its own start button: the cue says to start the belt
    slowly, holding the rail, then walk ("Resume walking forward" told a walker on a stopped
    belt to walk on; going backward, to step towards its end). The walker's own pause while
    armed leaves the belt as the walker left it: "Resume walking forward". The sentences are
    among those rendered ahead for the plan. (:data:`SHORT` with a 10 s first interval: the
    trip 10 s into the walk, not 40.)"""
    plan = Plan("short-start", (Interval.of_seconds("backward", 10.0), *SHORT.intervals[1:]))
    rig = make_rig(tmp_path, detector=TripAt(20.0))
    rig.run_for(1.0)
    rig.press_reset()
    runner = attach_session(rig.app, plan, record=False)
    runner.request("start")
    rig.run_for(21.0 - rig.clock.monotonic())
    assert runner.state is SessionState.PAUSED and runner.session is not None
    assert runner.session.current == 1
    turned = runner.cues[-1]
    assert (turned.cue, turned.text) == (Cue.FORWARD, "Turn around and walk forward.")
    assert turned.spoken.startswith("Slow the belt and hold the rail before you turn.")
    plan_t = runner.session.plan_t
    rig.run_for(5.0)
    rig.press_reset()
    rig.run_for(2.0)
    assert runner.state is SessionState.RUNNING
    resumed = runner.cues[-1]
    assert (resumed.cue, resumed.interval, resumed.resumed) == (Cue.FORWARD, 1, True)
    assert resumed.belt_stopped and resumed.text == "Start the belt, walk forward."
    left_min = math.ceil((plan.duration_s - resumed.plan_t) / 60)
    assert resumed.plan_t == pytest.approx(plan_t + 1.0, abs=0.1)
    restart = "Start the belt slowly, holding the rail, then walk forward. Interval 2 of 4."
    assert resumed.spoken == f"{restart} {left_min} minutes to go."
    assert "turn" not in resumed.spoken
    rendered = runner.prompts.all_for_plan(plan)
    assert restart in rendered and f"{left_min} minutes to go." in rendered
    # The walker's own pause, armed throughout: the belt is as they left it.
    runner.request("pause")
    rig.run_for(2.0)
    runner.request("resume")
    rig.run_for(1.5)
    again = runner.cues[-1]
    assert (again.cue, again.resumed, again.belt_stopped) == (Cue.FORWARD, True, False)
    assert again.text == "Resume walking forward."
    assert again.spoken.startswith("Resume walking forward. Interval 2 of 4.")
    assert "Resume walking forward. Interval 2 of 4." in rendered
    # The first interval's cue has no turn; nor has a rest, or a backward one after a rest.
    assert runner.cues[0].text == "Walk backward."
    rig.run_for(20.0)
    after = [(c.text, "turn" in c.spoken) for c in runner.cues if c.interval > 1]
    assert after == [("Stop the belt, then rest.", False), ("Walk backward.", False)]
    detach_session(rig.app, runner)


def test_an_idle_runner_calls_into_nothing_until_something_is_due_then_acts_on_time(
    tmp_path: Path,
) -> None:
    """With no session under way and nothing due (no edge, no open pattern, no command, no
    measurement answer), a tick only looks at its inputs: it follows no safety log, collects
    nothing, advances nothing. A command, a double press, a trip are still handled on the
    iteration they would have been: the start command's first cue at the next iteration, a
    double press's the first iteration past its pause."""
    rig = armed_rig(tmp_path)
    runner = attach_session(rig.app, SHORT)
    rig.run_for(1.5)  # the reset press's pattern (held past a short press) has settled
    calls: list[str] = []

    def spying(name: str) -> Any:
        method = getattr(runner, name)

        def spy(*args: object) -> Any:
            calls.append(name)
            return method(*args)

        return spy

    for name in ("_follow_safety", "_collect", "_advance", "_tell_session_walker"):
        setattr(runner, name, spying(name))
    rig.run_for(2.0)
    assert calls == [] and runner.state is SessionState.IDLE

    # A command: answered by the next iteration, the first cue at plan time 0 on it.
    runner.request("start")
    rig.app.monitor.step()
    assert runner.state is SessionState.RUNNING
    assert [(c.cue, c.plan_t) for c in runner.cues] == [(Cue.BACKWARD, 0.0)]
    assert runner.cues[0].t == pytest.approx(rig.clock.monotonic(), abs=0.011)
    rig.run_for(1.0)
    runner.request("stop")
    rig.run_for(0.05)
    assert runner.state is SessionState.FINISHED
    runner.settle_measurements(5.0)  # its record waits for the gait thread's last figures
    calls.clear()
    rig.run_for(1.0)
    assert calls == []  # FINISHED, its record stored: nothing due again

    # A double press while armed: the session starts on the first iteration past the pause.
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.15)
    rig.button.press_at(now + 0.35, now + 0.5)
    rig.run_for(1.5)
    assert runner.state is SessionState.RUNNING
    start = runner.cues[-1]
    assert start.cue is Cue.BACKWARD and start.plan_t == 0.0
    settled = now + 0.5 + runner.config.double_press_gap_s
    assert settled - 1e-6 < start.t <= settled + 0.011
    detach_session(rig.app, runner)


def _two_a_week_since_a_week_ago(db: Path, plan: Plan) -> None:
    """The default walker's progression, assigned a week ago: ``plan``, 2 sessions a week (not
    the default 3), so a week's count shows whose prescription it is counted against."""
    import datetime as dt

    from core.protocol.plan import Progression, Stage
    from firmware.storage.database import connect
    from firmware.storage.progressions import start_progression

    conn = connect(db)
    with conn:
        start_progression(
            conn,
            Progression("two-a-week", (Stage(plan, weeks=2, sessions_per_week=2),)),
            stage=0,
            by="Jo",
            wall=(dt.datetime.now(dt.UTC) - dt.timedelta(days=7)).isoformat(timespec="seconds"),
        )
    conn.close()


T = TypeVar("T")


def _taken_by_the_loop(
    rig: Rig, runner: SessionRunner, pool: concurrent.futures.Executor, ask: Callable[[], T]
) -> concurrent.futures.Future[T]:
    """``ask()``, a client of the control socket, on ``pool``'s thread (the CLI is another
    process on a device); the loop runs once its request has reached the runner, one iteration's
    worth, which takes it and answers. The loop's clock stands while the request is on its way:
    pumped meanwhile, a loaded machine's second of socket round trip was 50 simulated seconds,
    and a 30 s plan ended before its "stop" arrived ("no session to stop")."""
    queued = threading.Event()
    request = runner.request

    def noted(command: str, reply: queue.SimpleQueue[tuple[bool, str]] | None = None) -> None:
        request(command, reply)
        queued.set()

    runner.request = noted  # type: ignore[method-assign]
    try:
        future = pool.submit(ask)
        while not (queued.wait(0.05) or future.done()):  # a refusal never reaches the runner
            pass
        if queued.is_set():
            rig.run_for(0.01)  # the runner takes every queued request at each tick
    finally:
        del runner.request
    return future


def _stop_from_the_cli(rig: Rig, runner: SessionRunner, command: list[str]) -> int:
    """``retroguard session stop`` from the CLI: the loop takes the stop, then the link alone
    is pumped (the loop's clock stands) until the CLI returns: the courier stores the record
    meanwhile."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = _taken_by_the_loop(rig, runner, pool, lambda: main(command))
        assert pump_link_until(rig.app.link, future.done)
        return future.result()


def test_session_stop_prints_the_session_and_the_walker_s_week(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15 item 6: the device's session summary says the week's goals. ``retroguard
    session stop`` waits for the stopped session's record in the database (the courier stores
    it after the loop's answer, which names the session) and prints what the session demo
    prints at its end: the session's figures, then the walker's week on this treadmill —
    sessions done of those the walker's progression prescribes (2 here, not the default 3),
    the longest backward stretch, the weeks at goal. Another walker's session that week (10
    minutes backward, at goal) is theirs, not counted."""

    import msgspec

    from core.progress import started_utc, week_of
    from core.protocol.walker import Walker
    from core.zones import system_zone
    from firmware.session.runner import session_record
    from firmware.storage.database import connect
    from firmware.storage.sessions import save_session

    db = tmp_path / "events.db"  # make_rig's
    _two_a_week_since_a_week_ago(db, SHORT)
    conn = connect(db)
    rig = armed_rig(tmp_path)
    sock = tmp_path / "run" / "session.sock"
    runner = attach_session(rig.app, SHORT, control_socket=str(sock))
    runner.request("start")
    rig.run_for(10.0)
    runner.request("pause")  # the plan's clock stands while the CLI's stop is on its way
    rig.run_for(0.05)
    session = runner.session
    assert session is not None and runner.state is SessionState.PAUSED
    # Earlier that week (the same start time: the same week in any zone): the walker's
    # completed session, 2 minutes backward at most; another walker's, at goal.
    walked = session_record(session, rig.app.config.device.id)
    earlier = msgspec.structs.replace(
        walked,
        id="e" * 32,
        status="completed",
        done_s=walked.planned_s,
        backward_s=180.0,
        longest_backward_s=120.0,
    )
    theirs = msgspec.structs.replace(
        earlier, id="f" * 32, longest_backward_s=600.0, walker=Walker("anna", "Anna")
    )
    with conn:
        save_session(conn, earlier)
        save_session(conn, theirs)
    conn.close()

    command = ["session", "stop", "--socket", str(sock), "--db", str(db)]
    assert _stop_from_the_cli(rig, runner, command) == 0
    assert runner.state is SessionState.FINISHED
    lines = capsys.readouterr().out.splitlines()
    week = week_of(started_utc(walked), system_zone())
    assert lines == [
        f"session stopped (id {session.id})",
        "Session stopped: 0.2 plan minutes, 0.2 backward; measured 0 steps in 0 s of walking "
        "(0 steps/min), 0 trips (0 stumbles, 0 falls). Stored in the sessions table.",
        # the test plan holds 2 minutes at most: not "2.0 of 10 min", which read as failing
        f"Week {week}: 1 of 2 prescribed sessions done; longest backward stretch 2.0 min (the "
        "10-minute goal comes with later plans). Weeks at goal: 0 of 4.",
    ]
    assert rig.state == "ARMED"  # the stop never touched the relay
    detach_session(rig.app, runner)


def test_session_stop_says_so_when_the_record_is_not_stored_in_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record that does not reach the database in time (here: a runner that records
    nothing) is one line saying so, never an older session's figures; the stop is done."""
    import tools.sessions

    monkeypatch.setattr(tools.sessions, "SUMMARY_WAIT_S", 0.2)
    rig = armed_rig(tmp_path)
    sock = tmp_path / "run" / "session.sock"
    runner = attach_session(rig.app, SHORT, record=False, control_socket=str(sock))
    runner.request("start")
    rig.run_for(1.0)
    db = rig.app.config.storage.database
    command = ["session", "stop", "--socket", str(sock), "--db", db]
    assert _stop_from_the_cli(rig, runner, command) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("session stopped (id ")
    assert lines[1:] == [
        f"No session summary: the stopped session's record was not in {db} within 0.2 s "
        "(retroguard sessions shows it once it is stored)."
    ]
    detach_session(rig.app, runner)


def test_a_session_that_ends_on_the_device_is_summarised_in_its_journal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A session that ends with no CLI to print its summary (here the plan's end; a long
    press or a caregiver's stop take the same path) is told in the device's journal by the
    courier once it is stored: the words ``retroguard session stop`` prints, the week counted
    against the walker's progression (2 sessions a week here, not the default 3)."""
    import logging
    import time

    from core.progress import started_utc, week_of
    from core.zones import system_zone

    caplog.set_level(logging.INFO, logger="firmware.courier.service")
    tiny = Plan("tiny", (Interval.of_seconds("backward", 6.0),))
    _two_a_week_since_a_week_ago(tmp_path / "events.db", tiny)  # make_rig's database
    rig = armed_rig(tmp_path)
    runner = attach_session(rig.app, tiny)
    runner.request("start")
    rig.run_for(7.0)
    assert runner.state is SessionState.FINISHED
    record = runner.finished[-1]
    assert record.status == "completed"

    def summaries() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "firmware.courier.service" and f"session {record.id} " in r.getMessage()
        ]

    # The final record leaves the loop once the session's measurements are in (a later
    # iteration on a loaded machine): the loop runs on until the courier has told it.
    deadline = time.monotonic() + 30.0  # a bound against hangs, not a timing
    while not summaries():
        assert time.monotonic() < deadline, "the courier logged no summary"
        rig.run_for(0.05)
    week = week_of(started_utc(record), system_zone())
    assert summaries() == [
        f"session {record.id} of Default walker ended. Session completed: 0.1 plan minutes, "
        "0.1 backward; measured 0 steps in 0 s of walking (0 steps/min), 0 trips (0 stumbles, "
        f"0 falls). Week {week}: 1 of 2 prescribed sessions done; longest backward stretch "
        "0.1 min (the 10-minute goal comes with later plans). Weeks at goal: 0 of 4."
    ]
    assert rig.state == "ARMED"
    detach_session(rig.app, runner)


def test_the_session_summary_counts_trips_in_words_and_says_a_fall_with_no_recovery() -> None:
    """The physio's end-of-session line (journal, ``session stop``, the demo): "1 stumble, 1
    fall", not "1 stumbles, 1 falls", and the fall the walker did not get up from is said,
    as the dashboard and the reports count it."""
    import msgspec

    from core.protocol.messages import SessionRecord
    from firmware.session.summary import figures_line

    record = SessionRecord(
        id="a" * 32,
        device_id="tm-1",
        plan="alternate-2-2",
        status="stopped",
        started_wall="2026-12-04T16:52:00+00:00",
        ended_wall="2026-12-04T16:53:00+00:00",
        planned_s=1800.0,
        planned_backward_s=840.0,
        done_s=1152.0,
        backward_s=600.0,
        longest_backward_s=120.0,
        paused_s=0.0,
        pauses=0,
        steps=48,
        walking_s=32.0,
        cadence_spm=90.0,
        trips=2,
        stumbles=1,
        falls=1,
        no_recovery=1,
        intervals=[],
    )
    assert figures_line(record).endswith(
        "(90 steps/min), 2 trips (1 stumble, 1 fall; 1 with no recovery)."
    )
    one = msgspec.structs.replace(record, trips=1, stumbles=0, falls=1, no_recovery=0)
    assert figures_line(one).endswith(", 1 trip (0 stumbles, 1 fall).")


TEN_BACKWARD = Plan(
    "ten-backward",
    (Interval.of_seconds("backward", 600.0), Interval.of_seconds("forward", 60.0)),
)


def test_a_backward_interval_broken_by_a_trip_is_not_one_straight_stretch(
    tmp_path: Path,
) -> None:
    """The goal is 10 *straight* minutes backward: a walker who tripped halfway through the
    10-minute block, stood for a minute, re-armed and walked the rest completed the plan
    (adherence: done) but walked two 5-minute stretches, not 10 straight minutes. The record's
    longest backward stretch (what "at goal" and the weeks at goal read) was the interval's
    whole backward time, so the session counted at goal."""
    from core.progress import at_goal, done

    rig = make_rig(tmp_path, detector=TripAt(8.9))  # plan time ~294 s at 40x
    rig.run_for(1.0)
    rig.press_reset()
    runner = attach_session(rig.app, TEN_BACKWARD, time_scale=40.0)
    runner.request("start")
    rig.run_for(10.0 - rig.clock.monotonic())
    assert runner.state is SessionState.PAUSED and runner.pause_cause is PauseCause.TRIP
    rig.run_for(5.0)  # standing, tripped (the plan's clock stands still: as long as 200 s)
    rig.press_reset()
    rig.run_for(11.0)  # the 9 s of plan left at 40x, and the resume
    assert runner.state is SessionState.FINISHED
    record = runner.finished[-1]
    assert record.status == "completed" and record.trips == 1
    assert done(record)  # the plan was walked through
    assert record.intervals[0].done_s == pytest.approx(600.0, abs=0.5)
    # The longer of the two stretches either side of the trip, not their sum.
    assert 290.0 <= record.longest_backward_s <= 310.0
    assert not at_goal(record)
    detach_session(rig.app, runner)


def test_a_walker_pause_also_breaks_the_backward_stretch(tmp_path: Path) -> None:
    """Any stop of the plan's clock (here the walker's pause) ends a straight stretch."""
    rig = armed_rig(tmp_path)
    runner = attach_session(rig.app, TEN_BACKWARD, time_scale=40.0)
    runner.request("start")
    rig.run_for(10.0)  # ~400 s of plan
    runner.request("pause")
    rig.run_for(5.0)
    runner.request("resume")
    rig.run_for(10.0)
    assert runner.state is SessionState.FINISHED
    record = runner.finished[-1]
    assert record.pauses == 1 and record.done_s == pytest.approx(660.0, abs=0.5)
    assert 390.0 <= record.longest_backward_s <= 410.0
    detach_session(rig.app, runner)


def test_adjacent_backward_intervals_are_one_straight_stretch(tmp_path: Path) -> None:
    """A plan that changes only the speed note within the backward block (5 minutes at 0.4 mph,
    then 5 at 0.5 mph) has the walker going backward for 10 straight minutes: at goal. The
    record said 5 (the longest single interval), so such a walker never reached the goal."""
    from core.progress import at_goal

    plan = Plan(
        "speed-up",
        (
            Interval.of_seconds("forward", 60.0),
            Interval.of_seconds("backward", 300.0, "0.4 mph"),
            Interval.of_seconds("backward", 300.0, "0.5 mph"),
            Interval.of_seconds("forward", 60.0),
        ),
    )
    rig = armed_rig(tmp_path)
    runner = attach_session(rig.app, plan, time_scale=40.0)
    runner.request("start")
    rig.run_for(20.0)
    assert runner.state is SessionState.FINISHED
    record = runner.finished[-1]
    assert record.longest_backward_s == pytest.approx(600.0, abs=0.5)
    assert at_goal(record)
    detach_session(rig.app, runner)


def _walking(
    tmp_path: Path, trip_at: float, plan: Plan = SHORT
) -> tuple[Rig, SessionRunner, Heard]:
    """Armed at 1 s, the ``plan`` session started and walked 2 s (a voice heard), the
    detector tripping at ``trip_at``."""
    rig = make_rig(tmp_path, detector=TripAt(trip_at))
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    heard = Heard()
    runner = attach_session(rig.app, plan, record=False, speaker=heard)
    runner.request("start")
    rig.run_for(2.0)
    return rig, runner, heard


def test_a_trip_after_get_ready_to_turn_is_told_it_again_once_resumed(tmp_path: Path) -> None:
    """:data:`SHORT` turns at 30 s: "get ready to turn" at 15 s. A trip at 22 s: the alarm, and
    nothing of the session said while tripped. The walker re-arms 8 s before the turn, having
    stood up on a stopped belt: the resume cue says where they are, then "get ready to turn"
    again (once its beeps are over), then the turn, 15 s of walking after the warning."""
    rig, runner, heard = _walking(tmp_path, trip_at=2.0 + 22.0)
    ahead = "Get ready to turn. Slow the belt and hold the rail."
    rig.run_for(2.0 + 16.0 - rig.clock.monotonic())
    assert heard.said[-1] == ahead and runner.cues[-1].cue is Cue.TURN_AHEAD
    rig.run_for(2.0 + 22.5 - rig.clock.monotonic())
    assert rig.state == "TRIPPED" and rig.app.gpio.buzzer.pattern == "alarm"
    assert runner.session is not None
    tripped_at = runner.session.plan_t
    assert 15.0 + 5.0 < tripped_at < 30.0 - 5.0  # after the warning, some seconds before the turn
    said = len(heard.said)
    rig.run_for(20.0)  # the alarm sounds on, the plan clock stands still
    assert heard.said[said:] == [] and runner.session.plan_t == tripped_at
    rig.press_reset()
    rig.run_for(3.0)
    assert heard.said[said:] == [
        "Start the belt slowly, holding the rail, then walk backward. Interval 1 of 4.",
        "4 minutes to go.",
        ahead,
    ]
    again = runner.cues[-1]
    assert (again.cue, again.interval, again.played) == (Cue.TURN_AHEAD, 0, True)
    rig.run_for(6.0)
    turn = runner.cues[-1]
    assert (turn.cue, turn.interval, turn.turn) == (Cue.FORWARD, 1, True)
    assert heard.said[said + 3 :] == [turn.spoken]
    # Said twice: once before the trip, once after (refused under the resume cue's beeps at
    # first, played once they were over: a late record).
    assert [c.cue for c in runner.cues if c.played].count(Cue.TURN_AHEAD) == 2
    assert again.late
    detach_session(rig.app, runner)


def test_the_walkers_pause_is_answered_with_a_chirp_and_how_to_go_on(tmp_path: Path) -> None:
    """A double press while walking pauses the session: the walker hears the chirp and, with a
    voice, how to go on. Start, resume and stop each answer with a cue; the pause answered with
    nothing, so a walker could not tell it was taken and pressed again, resuming. A pause asked
    for over a trip says nothing: the belt is stopped and the alarm is the controller's."""
    rig, runner, heard = _walking(tmp_path, trip_at=12.0)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.15)
    rig.button.press_at(now + 0.35, now + 0.5)
    rig.run_for(0.5 + 0.6 + 0.05)
    assert runner.state is SessionState.PAUSED and runner.pause_cause is PauseCause.BUTTON
    paused = runner.cues[-1]
    assert (paused.cue, paused.played, paused.text) == (Cue.PAUSED, True, "Session paused.")
    assert rig.app.gpio.buzzer.pattern == "chirp"
    said = "Session paused. To go on, press reset twice."
    assert heard.said[-1] == said
    assert said in runner.prompts.all_for_plan(SHORT)  # rendered ahead
    # Resumed, then tripped: a pause asked for now (the CLI) is the walker's, said nothing.
    runner.request("resume")
    rig.run_for(12.5 - rig.clock.monotonic())
    assert rig.state == "TRIPPED" and runner.pause_cause is PauseCause.TRIP
    cues, spoken = len(runner.cues), len(heard.said)
    runner.request("pause")
    rig.run_for(0.1)
    assert runner.pause_cause is PauseCause.CLI
    assert len(runner.cues) == cues and heard.said[spoken:] == []
    assert rig.app.gpio.buzzer.pattern == "alarm"
    detach_session(rig.app, runner)


def test_a_reset_press_let_go_too_soon_is_said_how_to_arm(tmp_path: Path) -> None:
    """On the monitor's own loop: a press let go before the chirp is refused (the ``refused``
    beeps), and with a voice the walker hears to hold reset until the chirp."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    heard = Heard()
    runner = attach_session(rig.app, SHORT, record=False, speaker=heard)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.2)
    rig.run_for(1.0)
    assert rig.state == "STANDBY" and rig.app.gpio.buzzer.pattern == "refused"
    assert heard.said == ["Not armed. Press and hold reset until the chirp."]
    detach_session(rig.app, runner)


def test_two_presses_after_a_trip_end_the_alarm_and_say_to_press_once_and_hold(
    tmp_path: Path,
) -> None:
    """TRIPPED, the alarm sounding: a double press did nothing — no beep, no word, the alarm on
    — and a quick tap then a press held for the chirp held on in silence (a second press never
    arms: it may be a call for help's). Both are refused now, as a lone press let go too soon
    is: the alarm ends, the ``refused`` beeps, "press reset once and hold it until the chirp";
    the tapped-then-held one while still held. The relay never closes."""
    rig, runner, heard = _walking(tmp_path, trip_at=5.0)
    rig.run_for(5.5 - rig.clock.monotonic())
    assert rig.state == "TRIPPED" and rig.app.gpio.buzzer.pattern == "alarm"
    texts = runner.prompts.file.prompts
    closes = len(rig.hardware.history)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.15)
    rig.button.press_at(now + 0.35, now + 0.5)
    rig.run_for(0.5 + 0.6 + 0.05)
    assert rig.state == "TRIPPED" and rig.app.gpio.buzzer.pattern == "refused"
    assert heard.said[-1] == texts.refused_twice
    assert "once" in texts.refused_twice and texts.refused_twice in runner.prompts.all_for_plan(
        SHORT
    )
    rig.run_for(5.0)  # the refusal played out: the after-trip words
    assert rig.app.gpio.buzzer.pattern is None and heard.said[-1] == texts.tripped
    spoken = len(heard.said)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.15)
    rig.button.press_at(now + 0.35, now + 3.0)
    rig.run_for(0.35 + 0.4 + 0.05)
    assert rig.button.is_down and rig.app.gpio.buzzer.pattern == "refused"
    assert heard.said[spoken:] == [texts.refused_twice]
    rig.run_for(3.0)
    assert heard.said[spoken:] == [texts.refused_twice]  # once a sequence
    assert rig.state == "TRIPPED" and len(rig.hardware.history) == closes
    assert not rig.hardware.contact_closed()
    detach_session(rig.app, runner)


def test_re_arming_during_the_walkers_own_pause_says_it_is_still_paused(tmp_path: Path) -> None:
    """The walker paused (a double press), then stumbled; re-arming leaves the session paused,
    as the pause was theirs. The walker heard only the chirp and waited for a resume cue that
    never came: a second after the chirp they are told it is paused, and how to go on."""
    rig, runner, heard = _walking(tmp_path, trip_at=10.0)
    runner.request("pause")
    rig.run_for(10.5 - rig.clock.monotonic())
    assert rig.state == "TRIPPED" and runner.pause_cause is PauseCause.CLI
    rig.run_for(5.0)
    cues = len(runner.cues)
    rig.press_reset()
    rig.run_for(2.0)
    assert rig.state == "ARMED" and runner.state is SessionState.PAUSED
    assert [c.cue for c in runner.cues][cues:] == [Cue.PAUSED]
    assert heard.said[-1] == "Session paused. To go on, press reset twice."
    rig.run_for(5.0)  # said once, not at every look
    assert len(runner.cues) == cues + 1
    detach_session(rig.app, runner)


def _call_for_help(rig: Rig) -> None:
    """Three quick presses of reset from now: the controller plays ``help_sent`` (1.24 s) as the
    third goes down, 0.5 s from now. The session ignores them (three presses are help)."""
    now = rig.clock.monotonic()
    for n in range(3):
        rig.button.press_at(now + 0.25 * n, now + 0.25 * n + 0.1)


def test_an_interval_cue_due_during_a_call_for_help_plays_once_the_buzzer_is_free(
    tmp_path: Path,
) -> None:
    """The walker called for help (three quick presses) just before the turn: the ``help_sent``
    pattern (priority 70) refused the forward interval's cue (30), its beeps and its words
    ("Slow the belt and hold the rail before you turn ..."), and nothing asked again. A
    walker who cannot see was never told to turn. It is played as soon as the pattern ends,
    its words after the help words."""
    rig, runner, heard = _walking(tmp_path, trip_at=1e9)
    assert runner.session is not None
    rig.run_for(29.2 - runner.session.plan_t)
    _call_for_help(rig)
    rig.run_for(1.0)  # the interval ends at 30 s of plan, 0.3 s into the help pattern
    assert rig.app.gpio.buzzer.pattern == "help_sent"
    assert runner.session.current == 1
    refused = runner.cues[-1]
    assert (refused.cue, refused.played) == (Cue.FORWARD, False)
    rig.run_for(2.0)
    assert rig.state == "ARMED" and runner.state is SessionState.RUNNING
    played = runner.cues[-1]
    assert (played.cue, played.played, played.interval) == (Cue.FORWARD, True, 1)
    assert played.t > refused.t
    sent = "Help called. Your caregivers are being told."
    assert heard.said[-2:] == [sent, played.spoken]
    assert played.spoken.startswith("Slow the belt and hold the rail before you turn.")
    detach_session(rig.app, runner)


def test_one_minute_left_falling_on_a_resume_cue_plays_once_it_ends(tmp_path: Path) -> None:
    """The walker paused and resumed just before "one minute left" was due: the resume cue's
    beeps (``cue_backward``, priority 30) refused it (25) and it was never said. It plays as
    the resume cue ends. The plan is the shortest one warned (over 2 minutes, its last interval
    over one): the warning at 65 s of plan, not :data:`SHORT`'s 150 s."""
    plan = Plan("one-minute", (Interval.of_seconds("backward", 125.0),))
    rig, runner, heard = _walking(tmp_path, trip_at=1e9, plan=plan)
    assert runner.session is not None
    rig.run_for(63.7 - runner.session.plan_t)  # one minute left is due at 65 s of plan
    runner.request("pause")
    rig.run_for(5.0)
    runner.request("resume")
    rig.run_for(1.45)  # the resume cue 1 s after the resume (0.6 s of beeps), then 65 s
    assert runner.state is SessionState.RUNNING
    assert [(c.cue, c.played) for c in runner.cues][-2:] == [
        (Cue.BACKWARD, True),
        (Cue.ONE_MINUTE, False),
    ]
    rig.run_for(1.0)
    last = runner.cues[-1]
    assert (last.cue, last.played) == (Cue.ONE_MINUTE, True)
    assert heard.said[-1] == "One minute left in the session."
    detach_session(rig.app, runner)


TURN_WORDS = "Slow the belt and hold the rail before you turn."
HELP_WORDS = "Help called. Your caregivers are being told."


def test_a_turn_cue_cut_short_by_a_call_for_help_is_beeped_again_never_once_stale(
    tmp_path: Path,
) -> None:
    """The forward interval's cue had started (one long beep, 0.7 s) when the walker's call
    for help (``help_sent``, priority 70) cut it short after 0.2 s: the refused-cue retry never
    saw it (it had played), so a walker without a voice heard a blip and the help beeps, and
    never the turn. It is beeped again once the help pattern ends; its words, queued as it
    started, play in full and are not said a second time. A cue cut short by a trip is
    never played again: re-arming resumes with the resume cue, as always."""
    detector = TripAt(1e9)
    rig = make_rig(tmp_path, detector=detector)
    rig.run_for(1.0)
    rig.press_reset()
    heard = Heard()
    runner = attach_session(rig.app, SHORT, record=False, speaker=heard)
    runner.request("start")
    rig.run_for(1.0)
    s = runner.session
    assert s is not None and runner.state is SessionState.RUNNING
    buzzer = rig.app.gpio.buzzer
    rig.run_for(29.7 - s.plan_t)
    _call_for_help(rig)  # help_sent 0.5 s from now, at 30.2 s of plan
    rig.run_for(0.6)
    assert buzzer.pattern == "help_sent" and s.current == 1
    cut = runner.cues[-1]
    assert (cut.cue, cut.played, cut.late) == (Cue.FORWARD, True, False)
    assert cut.spoken.startswith(TURN_WORDS)
    rig.run_for(31.6 - s.plan_t)  # help_sent (1.24 s) ended at 31.44 s of plan
    assert buzzer.pattern == "cue_forward"
    again = runner.cues[-1]
    assert (again.cue, again.played, again.late, again.replayed) == (Cue.FORWARD, True, True, True)
    assert (again.interval, again.spoken) == (1, "")
    assert heard.said[-2:] == [cut.spoken, HELP_WORDS]  # the turn's words once
    rig.run_for(5.0)
    assert [c.cue for c in runner.cues].count(Cue.FORWARD) == 2  # once cut, once again

    # The rest's cue (two long beeps, 1.5 s) cut short by a stumble: stale at once.
    rig.run_for(50.2 - s.plan_t)
    assert buzzer.pattern == "cue_rest"
    cues = len(runner.cues)
    detector.t = rig.clock.monotonic()
    rig.run_for(5.0)
    assert rig.state == "TRIPPED" and runner.state is SessionState.PAUSED
    assert buzzer.pattern == "alarm"
    rig.press_reset()  # ends the alarm and re-arms
    assert rig.state == "ARMED"
    rig.run_for(5.0)
    assert [(c.cue, c.resumed, c.late) for c in list(runner.cues)[cues:]] == [
        (Cue.REST, True, False)
    ]
    detach_session(rig.app, runner)


REFUSED_HOLD = "Not armed. Press and hold reset until the chirp."
STAND_STILL = "Stand still, feet together, look ahead."
CHECK_DONE = "Balance check done. You may move."


def _let_go_too_soon(rig: Rig) -> float:
    """A reset press let go before the chirp: ``refused`` (1.5 s) plays 0.81 s from now, once
    its sequence has closed; returns when it starts."""
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.2)
    return now + 0.81


def test_the_balance_checks_cues_refused_or_cut_short_play_once_the_buzzer_is_free(
    tmp_path: Path,
) -> None:
    """The standing balance check's cues, in STANDBY, meet the controller's ``refused`` beeps
    (a reset press let go too soon, priority 60): "stand still" refused as the check begins
    is played, with its words, once the buzzer is free; "balance check done" cut short is
    beeped again (its words once); a check cue never outlives the check's step: the walker
    arming during it ends the check, and its cue is not played after."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    heard = Heard()
    runner = attach_session(rig.app, SHORT, record=False, speaker=heard)
    buzzer = rig.app.gpio.buzzer
    assert rig.state == "STANDBY" and runner.config.balance_check
    refused_at = _let_go_too_soon(rig)
    rig.run_for(refused_at + 0.2 - rig.clock.monotonic())
    assert buzzer.pattern == "refused"
    runner.request("start")
    rig.run_for(0.05)
    assert runner.state is SessionState.BALANCE
    assert [(c.cue, c.played) for c in runner.cues] == [(Cue.BALANCE, False)]
    rig.run_for(refused_at + 1.6 - rig.clock.monotonic())  # refused ended at 1.5 s
    assert buzzer.pattern == "sway_start"
    late = runner.cues[-1]
    assert (late.cue, late.played, late.late, late.replayed) == (Cue.BALANCE, True, True, False)
    assert heard.said == [REFUSED_HOLD, STAND_STILL]

    check = runner._check
    assert check is not None
    # The check ends 35 s after it began: "balance check done" (0.77 s), cut 0.3 s in.
    rig.run_for(check.ends - 0.81 + 0.3 - rig.clock.monotonic())
    refused_at = _let_go_too_soon(rig)
    rig.run_for(0.81 + 0.1)
    assert runner.state is SessionState.PAUSED and buzzer.pattern == "refused"
    done = runner.cues[-1]
    assert (done.cue, done.played, done.spoken) == (Cue.BALANCE_DONE, True, CHECK_DONE)
    rig.run_for(refused_at + 1.6 - rig.clock.monotonic())
    assert buzzer.pattern == "sway_done"
    again = runner.cues[-1]
    assert (again.cue, again.late, again.replayed, again.spoken) == (
        Cue.BALANCE_DONE,
        True,
        True,
        "",
    )
    assert heard.said[-2:] == [CHECK_DONE, REFUSED_HOLD]
    runner.request("stop")
    rig.run_for(2.0)

    # A new session's check: the walker arms (reset held to the chirp) as "stand still"
    # sounds. The chirp cuts it; the check is over, and its cue is not played again.
    runner.request("start")
    rig.run_for(0.2)
    assert runner.state is SessionState.BALANCE and buzzer.pattern == "sway_start"
    cues = len(runner.cues)
    rig.press_reset()
    assert rig.state == "ARMED" and runner.state is SessionState.RUNNING
    rig.run_for(3.0)
    assert [c.cue for c in list(runner.cues)[cues:]] == [Cue.BACKWARD]
    detach_session(rig.app, runner)
