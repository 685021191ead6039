"""The README's promises, end to end: the demo session, record → replay, and bad traces."""

from __future__ import annotations

import dataclasses
import os
import re
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import firmware.app as firmware_app
import launcher.demo as demo_command
from core.clock import Clock, SimClock
from core.protocol.events import EventType
from firmware.app import App
from firmware.config import Config, GpioConfig, SafetyConfig
from firmware.gait.worker import Measurements
from firmware.link.supervisor import ProcessCourier
from firmware.monitor import Monitor
from firmware.safety import SafetyState
from launcher.cli import main
from launcher.demo import DemoResult, demo_config, run_session
from sim import scenarios
from tests.app_support import WAIT

PERIOD = 1 / 200


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> object:
    return run_session(demo_config(tmp_path_factory.mktemp("demo") / "events.db"), SimClock())


def test_demo_ends_tripped_with_relay_released(demo: object) -> None:
    assert demo.ok  # type: ignore[attr-defined]
    assert not demo.relay_closed_at_end  # type: ignore[attr-defined]
    assert demo.final_state.value == "TRIPPED"  # type: ignore[attr-defined]


def test_demo_events_tell_the_story(demo: object) -> None:
    kinds = [s.event.type for s in demo.events]  # type: ignore[attr-defined]
    assert kinds[0] is EventType.START and kinds[-1] is EventType.STOP
    # armed, tripped by the stumble, re-armed, tripped by the fall, escalated; each trip's IMU
    # follows it in a window event, and each re-arming closes its incident ("I'm OK") first
    story = [k for k in kinds if k not in (EventType.FALL, EventType.WINDOW, EventType.OK)]
    assert story == [
        EventType.START,
        EventType.RESET,
        EventType.STUMBLE,
        EventType.RESET,
        EventType.STUMBLE,
        EventType.NO_RECOVERY,
        EventType.STOP,
    ]
    assert EventType.FALL in kinds
    assert kinds.count(EventType.WINDOW) == 2 and kinds.count(EventType.OK) == 1


def test_demo_trips_on_the_stumble_and_before_the_fall_impact(demo: object) -> None:
    session = demo.session  # type: ignore[attr-defined]
    trips = [
        s.event
        for s in demo.events  # type: ignore[attr-defined]
        if s.event.type is EventType.STUMBLE
    ]
    start = demo.app.controller.transitions[0].t  # type: ignore[attr-defined]
    stumble_onset = start + session.event_time("stumble_onset")
    impact = start + session.event_time("impact")
    assert stumble_onset <= trips[0].t_monotonic <= stumble_onset + 1.0
    assert trips[1].t_monotonic < impact


def test_relay_released_within_one_sample_of_each_trip(demo: object) -> None:
    hardware = demo.app.gpio.hardware  # type: ignore[attr-defined]
    trips = [
        s.event
        for s in demo.events  # type: ignore[attr-defined]
        if s.event.type is EventType.STUMBLE
    ]
    windows = {
        s.event.of: s.event.recording
        for s in demo.events  # type: ignore[attr-defined]
        if s.event.type is EventType.WINDOW
    }
    opens = [t for t, closed in hardware.history if not closed]
    assert len(opens) == len(trips) == 2
    for trip, opened in zip(trips, opens, strict=True):
        assert 0 <= opened - trip.t_monotonic <= PERIOD
        recording = windows[trip.id]  # the trip's IMU, in the window event that follows it
        assert recording is not None and recording.count > 0


def test_record_then_replay_reports_the_fall(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "fall.csv"
    assert main(["record", str(trace), "--scenario", "backward-fall", "--seconds", "15"]) == 0
    capsys.readouterr()
    assert main(["replay", str(trace)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"stumble\s+trips relay .*\(lead \+\d+ ms before impact\)", out)
    assert re.search(r"fall\s+trips relay", out)


def test_replay_of_walking_has_no_detections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "walk.csv"
    assert main(["record", str(trace), "--scenario", "walk-backward", "--seconds", "30"]) == 0
    capsys.readouterr()
    assert main(["replay", str(trace)]) == 0
    assert "no detections" in capsys.readouterr().out


def test_replay_of_a_corrupt_trace_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "walk.csv"
    assert main(["record", str(trace), "--scenario", "standing", "--seconds", "2"]) == 0
    lines = trace.read_text().splitlines()
    lines[20] = "0.1,0.2,oops,1,2,3,4"
    trace.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["replay", str(trace)]) == 2
    err = capsys.readouterr().err
    assert f"{trace}:21:" in err


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        (3, "1e300", "column az: 1e+300 g is beyond ±32 g"),
        (4, "-inf", "non-finite value in column gx"),
        (6, "2500000", "column gz: 2.5e+06 deg/s is beyond ±4000 deg/s"),
        (0, "{:.9f}", "closer than the format's 1 µs resolution"),
        (0, "1e300", "more than 60 s is two recordings"),
    ],
)
def test_replay_of_a_physically_impossible_line_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], column: int, value: str, says: str
) -> None:
    trace = tmp_path / "walk.csv"
    assert main(["record", str(trace), "--scenario", "standing", "--seconds", "2"]) == 0
    lines = trace.read_text().splitlines()
    previous_t = float(lines[19].split(",")[0])
    fields = lines[20].split(",")
    fields[column] = value.format(previous_t + 1e-9)  # "{:.9f}": 1 ns after the previous sample
    lines[20] = ",".join(fields)
    trace.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["replay", str(trace)]) == 2
    err = capsys.readouterr().err
    assert f"{trace}:21: " in err and says in err, err


def test_record_refuses_a_gyro_bias_that_would_make_samples_no_trace_may_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo'd bias made every rate a value no IMU reads, and record stopped at the first
    sample the trace writer refused; the config now refuses the bias before anything runs.
    (record still turns a refused sample into an error, not a traceback: the writer refuses
    what the reader would, tests/test_trace.py.)"""
    config = tmp_path / "config.toml"
    config.write_text("[imu]\ngyro_bias_dps = [5000.0, 0.0, 0.0]\n")
    trace = tmp_path / "walk.csv"
    assert main(["record", str(trace), "-c", str(config), "--seconds", "1"]) == 2
    err = capsys.readouterr().err
    assert "imu.gyro_bias_dps: each axis must be within ±40 deg/s" in err, err
    assert "Traceback" not in err and not trace.exists()


def test_a_trace_whose_rows_run_at_half_its_header_rate_is_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every other row of a 200 Hz recording kept, the header left at 200 Hz: the rows were
    fed to the detector as 200 Hz samples (the rates "agreed", nothing was resampled) and
    replay said "400 samples (2.0 s at 200 Hz)" of a four-second walk, exit 0; evaluate scored
    it. Both now refuse it with the header's line and the rows' rate; with the header put
    right it is resampled and replayed."""
    trace = tmp_path / "walk.csv"
    assert main(["record", str(trace), "--scenario", "walk-backward", "--seconds", "4"]) == 0
    lines = trace.read_text().splitlines(keepends=True)
    body = lines.index("t,ax,ay,az,gx,gy,gz\n") + 1
    trace.write_text("".join(lines[:body] + lines[body::2]))
    rate_line = next(n for n, line in enumerate(lines, 1) if line.startswith("# sample_rate"))
    capsys.readouterr()

    assert main(["replay", str(trace)]) == 2
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err == (
        f"retroguard replay: {trace}:{rate_line}: sample_rate_hz: 200, but the rows are 10 ms "
        "apart (100 Hz): fix the header, or the t column (docs/trace-format.md)\n"
    )
    assert main(["evaluate", str(trace), "-j", "1"]) == 2
    assert f"{trace}:{rate_line}: sample_rate_hz: 200, but the rows are 10 ms" in (
        capsys.readouterr().err
    )

    trace.write_text(
        trace.read_text().replace("# sample_rate_hz: 200\n", "# sample_rate_hz: 100\n")
    )
    assert main(["replay", str(trace)]) == 0
    assert capsys.readouterr().out.startswith(f"{trace}: 799 samples (4.0 s at 200 Hz)\n")


def test_record_refuses_a_scenario_fall_its_seconds_would_cut_off_but_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--scenario backward-fall --seconds 3`` wrote three seconds of walking labelled a
    fall with its impact at 4.95 s: replay put the walk's stumble "before impact", evaluate
    scored a fall the file does not hold. Now refused before anything is written."""
    trace = tmp_path / "fall.csv"
    assert main(["record", str(trace), "--scenario", "backward-fall", "--seconds", "3"]) == 2
    said = capsys.readouterr()
    assert said.err == (
        "retroguard record: --seconds 3 ends before the scenario's fall (onset at 4 s, impact "
        "at 4.95 s), which its header would label all the same: give --seconds 7 or more\n"
    )
    assert not trace.exists()
    assert main(["record", str(trace), "--scenario", "backward-fall", "--seconds", "7"]) == 0
    assert "# impact_t: 4.95\n" in trace.read_text()


def test_a_fall_trace_cut_off_at_a_line_end_before_its_impact_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A recording cut at a line's end (a copy stopped, a disk filled) reads as whole: its
    header's impact_t stayed, replay said the stumble came "before impact" of an impact the
    file no longer held, and evaluate scored the fall as caught in time. Both now say the
    recording ends before what it labels, naming the header's line."""
    trace = tmp_path / "fall.csv"
    assert main(["record", str(trace), "--scenario", "backward-fall", "--seconds", "12"]) == 0
    lines = trace.read_text().splitlines(keepends=True)
    body = lines.index("t,ax,ay,az,gx,gy,gz\n") + 1
    kept = [line for line in lines[body:] if float(line.split(",")[0]) < 4.9]
    trace.write_text("".join(lines[:body] + kept))
    impact_line = next(n for n, line in enumerate(lines, 1) if line.startswith("# impact_t"))
    last_t = float(kept[-1].split(",")[0])
    capsys.readouterr()

    assert main(["replay", str(trace)]) == 2
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err == (
        f"retroguard replay: {trace}:{impact_line}: impact_t: 4.95, after the last row "
        f"(t = {last_t:g}): the recording ends before what it labels (was it cut off?)\n"
    )
    assert main(["evaluate", str(trace), "-j", "1"]) == 2
    assert f"{trace}:{impact_line}: impact_t: 4.95, after the last row" in capsys.readouterr().err


def test_a_fall_trace_cut_off_before_its_first_row_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fall recording cut off before its first row (its header whole) replayed as "0
    samples, no detections", exit 0, and evaluate scored its fall as missed: it ends before
    what it labels as much as one cut after its onset. (Mutation, mut37: without the check
    of no row, the label's comparison with no last row raised a TypeError.)"""
    trace = tmp_path / "fall.csv"
    assert main(["record", str(trace), "--scenario", "backward-fall", "--seconds", "7"]) == 0
    lines = trace.read_text().splitlines(keepends=True)
    trace.write_text("".join(lines[: lines.index("t,ax,ay,az,gx,gy,gz\n") + 1]))
    onset_line = next(n for n, line in enumerate(lines, 1) if line.startswith("# onset_t"))
    capsys.readouterr()

    assert main(["replay", str(trace)]) == 2
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err == (
        f"retroguard replay: {trace}:{onset_line}: onset_t: 4, after the header, no row: the "
        "recording ends before what it labels (was it cut off?)\n"
    )
    assert main(["evaluate", str(trace), "-j", "1"]) == 2
    assert f"{trace}:{onset_line}: onset_t: 4, after the header, no row" in (
        capsys.readouterr().err
    )


def test_replay_of_a_missing_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(tmp_path / "absent.csv")]) == 2
    assert "absent.csv" in capsys.readouterr().err


def test_demo_command_runs_in_real_time_scaled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``retroguard demo --speed 2``: the walk on the host's clock twice as fast (a
    :class:`~core.clock.RealClock` at speed 2, whose scaling tests/test_real_clock.py checks),
    and the hold time and contact debounce twice as long on it: the same real milliseconds as
    on a Pi. The clock the command asks for is stood in for by a simulated one, so the walk
    does not hang on the host: on its clock a loaded machine stalled the loop past the hold
    time late in the walk, and the demo ended re-armed (what a stall does:
    test_demo_reports_a_host_stall_and_carries_on)."""
    speeds: list[float] = []
    clock = SimClock()

    def real_clock(speed: float) -> SimClock:
        speeds.append(speed)
        return clock

    ran: list[tuple[Config, Clock]] = []

    def recorded(config: Config, on: Clock, **kwargs: Any) -> DemoResult:
        ran.append((config, on))
        return run_session(config, on, **kwargs)

    monkeypatch.setattr(demo_command, "RealClock", real_clock)
    monkeypatch.setattr(demo_command, "run_session", recorded)
    assert main(["demo", "--speed", "2", "--no-live", "--db", str(tmp_path / "d.db")]) == 0
    assert speeds == [2.0]
    ((config, ran_on),) = ran
    assert ran_on is clock
    assert config.gpio.heartbeat_hold_s == pytest.approx(2 * GpioConfig().heartbeat_hold_s)
    assert config.safety.contact_debounce_s == pytest.approx(2 * SafetyConfig().contact_debounce_s)
    out = capsys.readouterr().out
    assert "Ended in TRIPPED with the relay released." in out
    assert re.search(r"fall\s+critical", out)
    assert "2 trips (1 stumble, 1 fall; 1 with no recovery)." in out


class _HeldCourier:
    """A courier slower to start than the demo waits for on the host's clock: it is spawned
    only once the demo has waited twice :data:`firmware.app.COURIER_START_S` for it, or
    once the walk is over (the loop's clock past ``walk_ends``)."""

    def __init__(self, clock: SimClock, walk_ends: float) -> None:
        self.clock = clock
        self.walk_ends = walk_ends
        self.released = threading.Event()
        self.waiting_since: float | None = None
        self.released_at_loop_time: float | None = None

    def spawn(self, sock: socket.socket) -> ProcessCourier:
        self.released.wait()  # the supervisor's thread: the courier has not started yet
        return ProcessCourier(sock)

    def look(self) -> None:
        """On every poll of the link: release the courier when its time has come."""
        if self.released.is_set():
            return
        waited = self.waiting_since is not None and (
            time.monotonic() - self.waiting_since > 2 * firmware_app.COURIER_START_S
        )
        if waited or self.clock.monotonic() >= self.walk_ends:
            self.released_at_loop_time = self.clock.monotonic()
            self.released.set()


def test_a_demo_on_a_simulated_clock_waits_for_a_slow_courier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a busy host the courier took longer to start than the demo waited for it (30 s),
    the walk started anyway, and on a simulated clock it spent the loop's start-up grace in
    a fraction of a real second: the walker's re-arming press after the stumble was refused
    (alerts cannot be stored), the fall came in the stumble's incident, and the session
    record read 1 trip, 0 stumbles, 1 fall (test_demo_command_runs_in_real_time_scaled
    failed so under load). Here the courier is held back past the wait: the walk waits
    for it, and tells the same story as ever."""
    monkeypatch.setattr(firmware_app, "COURIER_START_S", 0.2)
    clock = SimClock()
    session = scenarios.demo_session()
    held = _HeldCourier(clock, walk_ends=session.duration)
    built: list[App] = []

    def build(config: Config, on: Clock, **kwargs: Any) -> App:
        app = firmware_app.build_app(config, on, **{**kwargs, "courier": held.spawn})
        link = app.link
        poll, await_report = link.poll, link.await_storage_report

        def polled(_: object = None) -> None:
            held.look()
            poll()

        def awaited(timeout: float) -> bool:
            held.waiting_since = time.monotonic()
            try:
                return await_report(timeout)
            finally:
                held.waiting_since = None

        # The loop's own hook (bound at build) is left as it is: only the waits look.
        monkeypatch.setattr(link, "poll", polled)
        monkeypatch.setattr(link, "await_storage_report", awaited)
        built.append(app)
        return app

    monkeypatch.setattr(demo_command, "build_app", build)
    try:
        result = run_session(demo_config(tmp_path / "events.db"), clock, session=session)
    finally:
        held.released.set()
    from firmware.storage.sessions import load_sessions

    (app,) = built
    record = load_sessions(app.config.storage.database)[-1].record
    assert (record.trips, record.stumbles, record.falls, record.no_recovery) == (2, 1, 1, 1)
    assert result.ok
    kinds = [s.event.type for s in result.events if s.event.type is not EventType.WINDOW]
    assert kinds.count(EventType.RESET) == 2 and kinds.count(EventType.OK) == 1
    walk_started = app.controller.transitions[0].t
    assert held.released_at_loop_time is not None and held.released_at_loop_time <= walk_started


class _SilentCourier:
    """A courier that never says a word (it cannot start): it takes what the loop sends and
    ends when the loop closes the link."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.pid = os.getpid()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if select.select([self._sock], [], [], remaining)[0]:
                try:
                    if not self._sock.recv(65536):
                        return True  # the loop closed the link
                except OSError:
                    return True
        return False

    def kill(self) -> None:
        self._sock.close()


def test_a_demo_on_a_simulated_clock_never_walks_without_a_courier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A courier that cannot start at all: the walk on a simulated clock does not start
    (its presses would be refused); a clear error says why, and nothing was armed."""
    monkeypatch.setattr(firmware_app, "SIMULATED_COURIER_START_S", 0.5)
    monkeypatch.setattr(firmware_app, "LINK_FLUSH_S", 0.5)
    built: list[App] = []

    def build(config: Config, on: Clock, **kwargs: Any) -> App:
        built.append(firmware_app.build_app(config, on, **{**kwargs, "courier": _SilentCourier}))
        return built[-1]

    monkeypatch.setattr(demo_command, "build_app", build)
    with pytest.raises(firmware_app.CourierNotStarted, match=r"said nothing in 0\.5 s"):
        run_session(demo_config(tmp_path / "events.db"), SimClock())
    (app,) = built
    assert app.controller.state is SafetyState.STARTING and app.monitor.stats.iterations == 0
    hardware = app.gpio.hardware
    assert hardware is not None and hardware.history == [] and not hardware.contact_closed()


def test_demo_guided_session_cues_pause_on_trips_and_never_touch_the_relay(demo: object) -> None:
    runner = demo.runner  # type: ignore[attr-defined]
    assert runner is not None
    cues = [c.cue.value for c in runner.cues]
    assert cues[:5] == ["backward", "turn_ahead", "forward", "turn_ahead", "backward"]
    assert all(c.played for c in runner.cues)
    # The relay opened only for the two trips and closed only for the two resets.
    hardware = demo.app.gpio.hardware  # type: ignore[attr-defined]
    assert [closed for _, closed in hardware.history] == [True, False, True, False]


def test_demo_reports_a_host_stall_and_carries_on(tmp_path: Path) -> None:
    """A busy host stalls the loop past the hold time mid-walk: the latch drops, the monitor
    measures the gap between its heartbeat edges and faults, the helper presses reset again,
    and the walk still ends with the fall tripped."""
    clock = SimClock()

    def stall_once(app: App, walk: object, runner: object) -> None:
        stalled: list[float] = []

        def hook(monitor: Monitor) -> None:
            armed = monitor.controller.state is SafetyState.ARMED
            if armed and not stalled and clock.monotonic() >= 6.0:
                stalled.append(clock.monotonic())
                clock.advance(0.2)  # four hold times without an edge

        app.monitor.on_iteration.append(hook)

    result = run_session(demo_config(tmp_path / "events.db"), clock, on_started=stall_once)
    assert result.ok and result.final_state is SafetyState.TRIPPED
    kinds = [s.event.type for s in result.events]
    # the re-arming press closes the fault's incident ("I'm OK") before it arms
    assert kinds[3] is EventType.OK
    kinds = [k for k in kinds if k is not EventType.OK]
    assert kinds[:4] == [EventType.START, EventType.RESET, EventType.FAULT, EventType.RESET]
    fault = result.events[2].event
    assert fault.reason.startswith("no heartbeat for ")
    assert fault.reason.endswith("(the loop stalled or the IMU paused)")
    assert EventType.FALL in kinds


def test_the_demo_session_record_counts_the_fall(demo: object) -> None:
    """The demo's second trip is a stumble the detector confirms as a fall, with no recovery:
    the session's record counts one stumble (the first trip, recovered) and one fall."""
    from firmware.storage.sessions import load_sessions

    app = demo.app  # type: ignore[attr-defined]
    record = load_sessions(app.config.storage.database)[-1].record
    assert (record.status, record.trips, record.stumbles) == ("stopped", 2, 1)
    assert (record.falls, record.no_recovery) == (1, 1)


def test_the_demo_removes_its_temporary_folder_unless_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain_demo: PlainDemo
) -> None:
    import io
    import tempfile

    from launcher.demo import run_demo

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = io.StringIO()
    # On a simulated clock: what becomes of the folder does not depend on the clock, and the
    # host's at 10x speed walked 2 x 7.5 s.
    run_demo(live=False, out=out, broker_ok=False, clock=SimClock())
    assert "(a temporary folder, removed at exit; --keep keeps it)" in out.getvalue()
    assert list(tmp_path.glob("retroguard-demo-*")) == []
    # With --keep: the plain demo's walk, which kept its folder (the tests reading its event
    # store read it there).
    kept = plain_demo.database.parent
    assert kept.name.startswith("retroguard-demo-") and plain_demo.database.is_file()
    assert kept.parent == plain_demo.temporary
    assert f"Event store: {plain_demo.database} (kept after the demo: --keep)" in plain_demo.printed


@dataclasses.dataclass(frozen=True)
class PlainDemo:
    """What ``run_demo`` off a terminal printed, and the walk it ran."""

    code: int
    printed: str
    result: DemoResult
    database: Path
    """Its event store, in the temporary folder it kept (``keep=True``)."""
    temporary: Path
    """Where its temporary folder was made (``tempfile.tempdir``): nothing else made one there."""


@pytest.fixture(scope="module")
def plain_demo(tmp_path_factory: pytest.TempPathFactory) -> PlainDemo:
    """``run_demo`` with no live line on a simulated clock, run once for the tests that read
    what it printed or stored (nothing of it is changed by them), on a machine in India (for
    the stored events' zone: nothing else it prints has one), its files in a temporary folder
    it keeps (``--keep``, for the temporary folder's test)."""
    import io

    walks: list[DemoResult] = []

    def walk(*args: Any, **kwargs: Any) -> DemoResult:
        walks.append(run_session(*args, **kwargs))
        return walks[-1]

    import tempfile

    out = io.StringIO()
    temporary = tmp_path_factory.mktemp("plain-demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Asia/Kolkata")
        patch.setattr(demo_command, "run_session", walk)
        patch.setattr(tempfile, "tempdir", str(temporary))
        code = demo_command.run_demo(
            live=False, out=out, broker_ok=False, keep=True, clock=SimClock()
        )
    (result,) = walks
    (folder,) = temporary.glob("retroguard-demo-*")
    return PlainDemo(code, out.getvalue(), result, folder / "retroguard.db", temporary)


def test_the_demo_off_a_terminal_prints_its_cues_led_and_spoken_prompts_as_plain_lines(
    plain_demo: PlainDemo,
) -> None:
    """With no live line (``--no-live``, or stdout not a terminal) the guided session's cue
    lines, the status LED's patterns and the spoken prompts still reach ``out``, whole lines
    with no terminal control codes (once, they went into a buffer nobody read)."""
    assert plain_demo.code == 0
    printed = plain_demo.printed
    assert re.search(r"\(loop +[0-9.]+ s\) LED standby +one short flash every 2 s", printed)
    # Armed with the session waiting: the walk's look at once (the session's hook runs before
    # the light's since it hands its records over before the link's poll; the armed look was
    # shown for that one iteration before).
    assert re.search(r"\(loop +[0-9.]+ s\) LED walk_backward +on, two short dark blips", printed)
    assert "LED armed" not in printed
    assert re.search(r"\[ 0:00\] cue backward +Walk backward\. +buzzer cue_backward", printed)
    assert 'says "Interval 1 of 15. Walk backward for 2 minutes. 30 minutes to go."' in printed
    assert "\x1b" not in printed and "\r" not in printed


def test_the_demo_s_stored_events_say_the_zone_of_their_times(plain_demo: PlainDemo) -> None:
    """The demo's list of stored events gave each time of day with no zone, where the
    dashboard and ``retroguard sessions`` ("Times in UTC.") name theirs. On a machine in
    India (:func:`plain_demo` runs there) the heading now says IST, and each time is the
    event's stamp read in IST."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from firmware.storage.events import EventStore

    assert plain_demo.code == 0
    db = plain_demo.database
    printed = plain_demo.printed.splitlines()
    heading = next(line for line in printed if "events stored" in line)
    assert re.fullmatch(r"\d+ events stored \(times in IST\):", heading), heading
    first = printed[printed.index(heading) + 1]
    store = EventStore(db)
    try:
        stamp = store.events()[0].event.wall_time
    finally:
        store.close()
    said = dt.datetime.fromisoformat(stamp).astimezone(ZoneInfo("Asia/Kolkata"))
    assert first.split()[:3] == ["#1", said.strftime("%H:%M:%S.%f")[:12], "start"]


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("run", "refuses is refused here too (exit 2). Runs until SIGTERM or Ctrl-C."),
        ("replay", "prints each detection, offline: no hardware, no relay."),
        ("record", "to a trace file for 'retroguard replay' and 'retroguard evaluate'"),
        ("config", "--check FILE refuses exactly what 'retroguard run' would refuse"),
        ("sessions", "Only reads: a database that is not there is refused, not created."),
        ("session", "through its local control socket (no network message can)"),
        ("walker", "chooses whose the next session is (a session under way stays its walker's)"),
        ("plan", "the running monitor is not restarted and the relay is not touched."),
    ],
)
def test_each_monitor_command_s_help_says_what_it_does(
    command: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A maker at the Pi reads --help before the docs: each command of the monitor says what it
    does and what it refuses, not only its options."""
    with pytest.raises(SystemExit) as ended:
        main([command, "--help"])
    assert ended.value.code == 0
    assert says in " ".join(capsys.readouterr().out.split())


def test_demo_help_says_what_the_demo_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["demo", "--help"])
    assert ended.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "on simulated hardware" in text
    assert "prints the session's cues, what they say and the status LED's patterns" in text
    assert "Exit 0 when the fall tripped and the relay ended released." in text


def test_a_session_stop_that_raises_still_closes_the_demo(tmp_path: Path) -> None:
    """The session's stop raises at the end of the demo: the relay is released before it runs,
    the app is still closed (courier stopped, the stop event stored), and the error is not
    swallowed. Before, a raising stop skipped app.close(): the courier was left running and
    the stop event never reached it (as `retroguard run` did before b114a4e)."""
    built: list[App] = []
    holding_at_stop: list[bool] = []
    gait: list[Measurements | None] = []

    def break_the_stop(app: App, walk: object, runner: Any) -> None:
        built.append(app)
        gait.append(runner.measurements)

        def stop(now: float) -> tuple[bool, str]:
            holding_at_stop.append(app.gpio.relay.holding)
            raise RuntimeError("bug in the session's stop")

        runner.stop = stop

    # A walk with the demo's presses, armed, without its trips: the stop is what is tested.
    walk = scenarios.Sequence(
        [
            scenarios.Walking(8.0, 0.6, "backward"),
            scenarios.Standing(8.0, label="reset_pause"),
        ],
        seed=0,
    )
    with pytest.raises(RuntimeError, match="bug in the session's stop"):
        run_session(
            demo_config(tmp_path / "events.db"),
            SimClock(),
            session=walk,
            on_started=break_the_stop,
        )
    (app,) = built
    assert holding_at_stop == [False]
    assert app.closed and not app.gpio.relay.holding
    supervisor = app.supervisor
    assert supervisor is not None and supervisor.current is not None
    assert supervisor.current.wait(0.0)  # the courier has finished
    kinds = [s.event.type for s in app.stored_events()]
    assert kinds[-1] is EventType.STOP
    # The session was detached all the same: its gait meter's thread ends (it was left running
    # on the test's process, where a later test counted it as its own).
    (measurements,) = gait
    assert measurements is not None
    measurements._thread.join(WAIT)  # a bound, not a timing: a thread never told to end stays
    assert not measurements._thread.is_alive()


def test_the_demo_prints_every_prompt_the_walker_hears_each_once(plain_demo: PlainDemo) -> None:
    """The demo's speaker prints what a board with a speaker says: the cues' words, each once
    (not a line from the cue's record as well), and the words-only prompts a runner without a
    speaker never said — after the first trip, the walker lets go of reset too soon: why it
    did not arm, then, the alarm over, how to re-arm or call for help."""
    assert plain_demo.code == 0
    runner = plain_demo.result.runner
    assert runner is not None
    texts = runner.prompts.file.prompts
    lines = [line.strip() for line in plain_demo.printed.splitlines()]
    said = [line.removeprefix('says "')[:-1] for line in lines if line.startswith('says "')]
    assert said.count(texts.refused_hold) == 1 and said.count(texts.tripped) == 1
    assert said.index(texts.tripped) == said.index(texts.refused_hold) + 1
    # In their place: after the trip's LED, before the re-armed session's resume cue.
    at = lines.index(f'says "{texts.tripped}"')
    assert any(" LED tripped " in line for line in lines[:at])
    assert "cue backward   Start the belt, walk backward." in " ".join(lines[at:])
    # Every cue's words once, in order: nothing else was said.
    cue_words = [c.spoken for c in runner.cues if c.played and c.spoken]
    assert len(cue_words) >= 10
    others = [s for s in said if s not in (texts.refused_hold, texts.tripped)]
    assert " ".join(others) == " ".join(cue_words)
    for c in runner.cues:
        if c.played and c.spoken and not c.resumed:
            # Once a cue: an interval's words are its own; "get ready to turn" comes before
            # each turn.
            cued = sum(1 for d in runner.cues if d.played and d.spoken == c.spoken)
            assert said.count(c.spoken) == cued, c.spoken
