"""Guided sessions on the simulated clock: cue order and times, trips pause and re-arming
resumes, press patterns beside the reset button, and no session action ever moves the relay."""

from __future__ import annotations

import concurrent.futures
import sqlite3
import tokenize
from pathlib import Path

import pytest

from firmware.session.control import ControlServer, send_command
from firmware.session.cues import Cue
from firmware.session.plan import PRESETS, Interval, Plan
from firmware.session.runner import SessionRunner, SessionState, attach_session, detach_session
from firmware.storage.sessions import load_sessions
from sim import scenarios
from tests.app_support import Rig, TripAt, close_rigs, make_rig  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("close_rigs")

SHORT = Plan(
    "short",
    (
        Interval("backward", 30.0),
        Interval("forward", 20.0),
        Interval("rest", 10.0),
        Interval("backward", 150.0),
    ),
)
"""Cues expected: backward 0, forward 30, rest 50, backward 60, one minute left 150, done 210."""


def _armed_rig(tmp_path: Path, **kwargs: object) -> Rig:
    rig = make_rig(tmp_path, **kwargs)  # type: ignore[arg-type]
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED"
    return rig


def _cues(runner: SessionRunner) -> list[tuple[Cue, float]]:
    return [(c.cue, c.plan_t) for c in runner.cues]


def _relay_history(rig: Rig) -> list[tuple[float, bool]]:
    return rig.hardware.history


def test_cues_fire_in_order_at_the_planned_times(tmp_path: Path) -> None:
    rig = _armed_rig(tmp_path)
    runner = attach_session(rig.app, SHORT)
    runner.request("start")
    rig.run_for(0.01)
    start = rig.clock.monotonic()
    rig.run_for(215.0)
    assert runner.state is SessionState.FINISHED
    expected = [
        (Cue.BACKWARD, 0.0),
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
    assert record["status"] == "completed"
    assert record["backward_s"] == pytest.approx(180.0, abs=0.1)
    assert [i["direction"] for i in record["intervals"]] == [
        "backward",
        "forward",
        "rest",
        "backward",
    ]
    detach_session(rig.app, runner)


def test_preset_cues_on_a_compressed_clock(tmp_path: Path) -> None:
    rig = _armed_rig(tmp_path)
    runner = attach_session(rig.app, PRESETS["alternate-2-2"], time_scale=60.0)
    runner.request("start")
    rig.run_for(31.0)
    got = _cues(runner)
    kinds = [c for c, _ in got]
    assert kinds == [Cue.BACKWARD, Cue.FORWARD] * 7 + [Cue.FORWARD, Cue.ONE_MINUTE, Cue.DONE]
    times = [t for _, t in got]
    want = [120.0 * n for n in range(15)] + [1740.0, 1800.0]
    for t, w in zip(times, want, strict=True):
        assert w <= t + 1e-6 <= w + 60 * 0.02
    detach_session(rig.app, runner)


def test_a_trip_pauses_and_rearming_resumes(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, detector=TripAt(20.0))
    rig.run_for(1.0)
    rig.press_reset()
    runner = attach_session(rig.app, SHORT)
    runner.request("start")
    rig.run_for(25.0 - rig.clock.monotonic())
    assert rig.state == "TRIPPED"
    assert runner.state is SessionState.PAUSED
    assert "trip" in runner.pause_reason
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
    # The current interval's cue is repeated after the arming chirp.
    assert runner.cues[-1].cue is Cue.BACKWARD
    assert runner.cues[-1].plan_t == pytest.approx(plan_t + 1.0, abs=0.1)
    rig.run_for(200.0)
    assert runner.state is SessionState.FINISHED
    record = runner.finished[-1]
    assert record["trips"] == 1 and record["stumbles"] == 1 and record["pauses"] == 1
    assert record["paused_s"] > 30.0
    detach_session(rig.app, runner)


def test_starting_a_session_never_arms(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    runner = attach_session(rig.app, SHORT)
    before = _relay_history(rig)
    runner.request("start")
    rig.run_for(60.0)
    assert rig.state == "STANDBY"
    assert not rig.app.gpio.relay.holding
    assert _relay_history(rig) == before
    assert runner.state is SessionState.PAUSED
    assert "waiting for arming" in runner.pause_reason
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
    rig = _armed_rig(tmp_path)
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

    # In STANDBY a double press is a reset press: it arms, and starts nothing.
    double_press()
    assert rig.state == "ARMED"
    assert runner.state is SessionState.IDLE
    # Armed: double press starts, double press pauses, double press resumes.
    double_press()
    assert runner.state is SessionState.RUNNING
    double_press()
    assert runner.state is SessionState.PAUSED and runner.pause_reason == "paused by the walker"
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
    assert runner.finished[-1]["status"] == "stopped"
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
    detach_session(rig.app, runner)


def test_a_long_pause_abandons_the_session(tmp_path: Path) -> None:
    rig = _armed_rig(tmp_path)
    runner = attach_session(rig.app, SHORT)
    runner.request("start")
    rig.run_for(1.0)
    runner.request("pause")
    rig.run_for(rig.app.config.session.max_pause_s + 1.0)
    assert runner.state is SessionState.FINISHED
    assert runner.finished[-1]["status"] == "abandoned"
    detach_session(rig.app, runner)


def test_sessions_are_stored_per_interval(tmp_path: Path) -> None:
    motion = scenarios.Sequence(
        [scenarios.Standing(3.0), scenarios.Walking(400.0, 0.6, "backward", step_hz=1.5)],
        seed=3,
    )
    rig = _armed_rig(tmp_path, motion=motion)
    runner = attach_session(rig.app, SHORT)
    rig.run_for(5.0)
    runner.request("start")
    rig.run_for(215.0)
    detach_session(rig.app, runner)
    sessions = load_sessions(rig.app.config.storage.database)
    assert len(sessions) == 1
    record = sessions[0].record
    assert record["status"] == "completed"
    # 1.5 steps/s over the walking intervals (the rest interval is walked too: the simulated
    # walker ignores cues, and the log measures what happened, not what was planned).
    assert record["steps"] == pytest.approx(1.5 * 210, rel=0.05)
    assert record["cadence_spm"] == pytest.approx(90.0, rel=0.05)
    conn = sqlite3.connect(rig.app.config.storage.database)
    rows = conn.execute(
        "SELECT idx, direction, planned_s, done_s, steps FROM session_intervals ORDER BY idx"
    ).fetchall()
    conn.close()
    assert [r[1] for r in rows] == ["backward", "forward", "rest", "backward"]
    assert [r[2] for r in rows] == [30.0, 20.0, 10.0, 150.0]
    assert [r[4] for r in rows][3] == pytest.approx(1.5 * 150, rel=0.05)


def test_local_cli_socket_controls_the_session(tmp_path: Path) -> None:
    rig = _armed_rig(tmp_path)
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
                future = pool.submit(send_command, server.path, command)
                for _ in range(2000):  # the loop answers at its next iteration
                    if future.done():
                        break
                    rig.run_for(0.01)
                ok, message = future.result()
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

    rig = _armed_rig(tmp_path)
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
    assert payload["id"] == record["id"] and payload["schema"] == 1
    detach_session(rig.app, runner)
