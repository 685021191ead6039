"""A time-compressed guided session on simulated hardware, cues, prompts and LED printed.

``retroguard session demo`` (and the README demo, through :func:`run_guided_demo`
or :func:`attach_demo_printer`): the walker arms with the reset button, the
session starts, the plan runs ``time_scale`` times faster than real time (60:
the 30-minute ``alternate-2-2`` plan in 30 s), each cue is printed with the
plan time and the buzzer pattern it played, every sentence the runner says
(:class:`PrintedSpeaker`: played on a board with a speaker, printed here — the
cues' prompts and the words-only ones, such as what to do after a trip), and every
change of the status LED with what it means; the session's record and the walker's week are
printed at the end, as ``retroguard session stop`` prints them
(:func:`tools.sessions.print_session_end`).
``--balance`` starts the session in STANDBY, so it opens with the standing
balance check, and prints its figures and each interval's gait (docs/gait.md).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from core.clock import Clock, RealClock
from core.dbfile import demo_database_problem
from core.demo_limits import scale_problem, speed_problem
from core.errors import ConfigError
from core.logsetup import logging_off_this_thread
from core.protocol.walker import Walker
from core.realtime import LoopHelperThread, realtime_section
from firmware.app import CourierNotStarted, build_app
from firmware.config import Config, StorageConfig
from firmware.monitor import Monitor
from firmware.safety import SafetyState
from firmware.session.cues import PATTERN
from firmware.session.plan import Plan
from firmware.session.runner import (
    BALANCE_MEASURE_S,
    BALANCE_SETTLE_S,
    SessionRunner,
    attach_session,
    detach_session,
)
from firmware.status_light import StatusLight, safety_pattern
from firmware.storage.sessions import load_sessions
from hal.led_patterns import LOOKS
from sim import scenarios
from sim.backends import simulated_hardware
from tools.demo_speed import at_speed, demo_wall
from tools.sessions import describe_balance, describe_gait, print_session_end

log = logging.getLogger(__name__)

ARM_AT_S = 4.5
"""The walker presses reset once the sensor-worn check has seen a body (1 s + a 3 s block):
the earliest press; a later one once the LED says "press reset to arm" (:data:`ARM_WAIT_S`)."""
ARM_WAIT_S = 30.0
"""Loop seconds past :data:`ARM_AT_S` the walker waits for the LED's "press reset to arm"
(:func:`_ready_to_arm`) before pressing anyway. A busy host can start the loop late: at
``--speed 10`` a 37 ms wait overflows the IMU's FIFO (365 ms at 200 Hz, a chip's size, not
scaled by :func:`tools.demo_speed.at_speed`), the monitor recovers through a FAULT and the
sensor-worn check starts again, so its verdict comes some seconds after 4.5 s. The walk
lasts this much longer, so a late press still has the whole plan walked."""
PRESS_S = 0.6
"""Held past the chirp (firmware.presses.ARM_HOLD_S): the latch closes while it is down."""
DEMO_LOOP_PRIORITY = 20
"""The unit's ``CPUSchedulingPriority`` (systemd/retroguard.service), where the OS allows
it: a busy host would otherwise stall the loop past the relay's hold time (a fault)."""


def _run_until_standby(monitor: Monitor, until: float) -> None:
    """Run the loop until the monitor is in STANDBY (or ``until``), for ``--balance``.

    The check starts only from STANDBY; started in STARTING the session just waits for
    arming and the walker never hears "Stand still". A fixed 0.5 s was not enough: at
    ``--speed 10`` the IMU is healthy long enough later than that, and the demo's
    ``--balance`` showed no balance check at all."""
    _run_until(monitor, lambda m: m.controller.state is SafetyState.STANDBY, until)


def _ready_to_arm(monitor: Monitor) -> bool:
    """The status LED would say "press reset to arm" (STANDBY, the sensor-worn check has its
    verdict): what a walker waits for before pressing. The LED's own rule
    (:func:`firmware.status_light.safety_pattern`), read on the loop thread: attributes only."""
    c = monitor.controller
    return safety_pattern(c.state, c.reason, c.measuring) == "standby"


def _run_until(monitor: Monitor, done: Callable[[Monitor], bool], until: float) -> None:
    """Run the loop until ``done`` holds after an iteration (or ``until``)."""
    reached = threading.Event()

    def look(m: Monitor) -> None:
        if done(m):
            reached.set()

    monitor.on_iteration.append(look)
    try:
        monitor.run(stop=reached, until=until)
    finally:
        monitor.on_iteration.remove(look)


class _LoopTime:
    """The clock at the loop's latest iteration (a loop hook: one clock read).

    The relay is judged over the walk: once the loop has stopped, nothing sends the heartbeat
    and the hold circuit lets go one hold time after the last edge, as it must. The history
    is read after the cue printer and the session are stopped, which on a busy host at
    ``--speed 10`` took longer than the hold (50 ms of the host's time): that lapse made a
    completed session "DEMO FAILED: the relay opened"."""

    def __init__(self) -> None:
        self.t = -math.inf

    def __call__(self, monitor: Monitor) -> None:
        self.t = monitor.clock.monotonic()


def _discard(value: object) -> None:
    """Hooks return nothing; ``poll`` returns a count we do not need."""


def format_cue(runner: SessionRunner, index: int) -> str:
    cue = runner.cues[index]
    plan_t = cue.plan_t
    interval = runner.plan.intervals[min(cue.interval, len(runner.plan.intervals) - 1)]
    where = f"interval {cue.interval + 1}/{len(runner.plan.intervals)}"
    if interval.direction != "rest":  # a rest has the belt stopped: no speed, as in the words
        where += f" ({interval.speed})"
    sound = PATTERN[cue.cue] if cue.played else "refused: another pattern is sounding"
    if cue.replayed:
        sound += " (again: cut short by another pattern)"
    elif cue.late:
        sound += " (late: refused when due)"
    return (
        f"  [{int(plan_t // 60):2d}:{int(plan_t % 60):02d}] cue {cue.cue.value:10} "
        f"{cue.text:32} buzzer {sound}; {where}"
    )


def format_spoken(runner: SessionRunner, index: int) -> str:
    """The spoken prompt of a cue, from its record: for a runner with no
    :class:`PrintedSpeaker` (whose own lines say what was said, cue or not)."""
    cue = runner.cues[index]
    if cue.replayed:
        return REPLAYED_NOTE
    return format_said(cue.spoken)


def format_said(text: str) -> str:
    return f'{"":10}says "{text}"'


REPLAYED_NOTE = f"{'':10}(its words were said as it started)"
"""Under a cue played again after it was cut short: its beeps only (docs/sessions.md)."""


def format_light(t: float, name: str, since: float) -> str:
    return f"  (loop {t - since:5.1f} s) LED {name:13} {LOOKS[name]}"


SPOKEN_MAX = 4096
"""What a :class:`PrintedSpeaker` keeps for its printer (prompts, withdrawals); past that the
oldest go: only when nothing prints them (a walk with no printer)."""
HORIZON_SLACK_S = 0.1
"""Loop seconds the printer stays behind the clock when it plays the speaker's queue: a
prompt or a withdrawal the loop timed just before the printer read the clock, and had not
handed over yet, is still taken in its place (one thread switch, at up to 20x speed)."""


PRINTER_STOP_WAIT_S = 10.0
"""How long :meth:`CuePrinter.stop` waits for the printer's thread to print what is left."""


@dataclass(frozen=True, slots=True)
class _Said:
    t: float
    text: str


@dataclass(frozen=True, slots=True)
class _Withdrawn:
    t: float
    text: str


@dataclass(frozen=True, slots=True)
class _Closed:
    t: float


class PrintedSpeaker:
    """The demos' speaker: prints what a board with a speaker would say (a
    :class:`~firmware.session.cues.Speaker`).

    The simulated rig has no sound card (``session.voice = "auto"`` gives it no player), and
    a runner with no speaker keeps every words-only prompt to itself — what to do after a
    trip, that help was called, why a reset press was refused, that caregivers will not be
    called — so the demos never showed them. With this one the runner says them as on a
    board with a speaker, and :class:`CuePrinter` prints them on its own thread, in time
    order with the cues and the LED. :meth:`say`, :meth:`withdraw` and :meth:`close` run on
    the loop thread: a read of the loop's clock and a deque append, no I/O, no wait.

    What is printed is what a :class:`firmware.session.voice.PromptPlayer` would begin to
    play, on the loop's clock, whenever the printer's thread gets to it: one prompt at a
    time, each as long as its words at ``rate_wpm`` (``session.speech_rate_wpm``) compressed
    ``time_scale`` times like the demo's plan, the next when it ends. A prompt withdrawn
    before it would begin (still queued) is never printed, as the player drops it; one
    withdrawn while it would play is printed — the player cuts it short, the walker has heard
    it begin — and the next begins at once. Said again after a withdrawal, it is printed.
    ``close`` drops what is still queued, as the player's does. Judged on the loop's clock, not
    on when the printer's thread wakes, so a demo on a simulated clock (running far faster
    than the printer polls) prints what the same walk at real speed prints.
    """

    def __init__(self, clock: Clock, *, rate_wpm: float = 150.0, time_scale: float = 1.0) -> None:
        if not rate_wpm > 0 or not time_scale > 0:
            raise ValueError("rate_wpm and time_scale must be positive")
        self._clock = clock
        self._word_s = 60.0 / rate_wpm / time_scale
        self._closed = False
        self._spoken: deque[_Said | _Withdrawn | _Closed] = deque(maxlen=SPOKEN_MAX)
        """What the loop asked, in its order and on its clock: appended by the loop, taken by
        the printer (one deque operation each, atomic: no lock)."""
        # The printer's side: the speaker's queue played out in loop time.
        self._queued: deque[_Said] = deque()
        self._playing: str | None = None
        self._free_at = -math.inf
        """Loop time the prompt playing ends (or ended)."""

    def say(self, text: str) -> None:
        """Queue ``text`` to be printed. Never blocks: safe on the real-time thread."""
        if self._closed:
            return
        self._spoken.append(_Said(self._clock.monotonic(), text))

    def withdraw(self, text: str) -> None:
        """``text``, asked for so far, no longer holds: not printed if it would not have begun
        yet. Never blocks: safe on the real-time thread."""
        self._spoken.append(_Withdrawn(self._clock.monotonic(), text))

    def close(self) -> None:
        """Say nothing more; what would not have begun by now is dropped (the player's
        ``close``)."""
        if not self._closed:
            self._closed = True
            self._spoken.append(_Closed(self._clock.monotonic()))

    def speech_s(self, text: str) -> float:
        """How long ``text`` would play, in loop seconds."""
        return len(text.split()) * self._word_s

    def horizon(self) -> float:
        """Loop time up to which the loop has said all it will: the clock, less
        :data:`HORIZON_SLACK_S`."""
        return self._clock.monotonic() - HORIZON_SLACK_S

    def heard(self, until: float) -> list[tuple[float, str]]:
        """The prompts that would have begun before ``until`` (loop time: :meth:`horizon`;
        ``math.inf``: all, the last drain), each with the loop time it begins, oldest first;
        each once. The printer's thread only."""
        began: list[tuple[float, str]] = []
        spoken = self._spoken
        while spoken and spoken[0].t < until:
            event = spoken.popleft()
            self._play(event.t, began)  # what began before it: a withdrawal as one begins wins
            if isinstance(event, _Said):
                self._queued.append(event)
            elif isinstance(event, _Withdrawn):
                # every prompt queued was said before it: all of its text are withdrawn
                self._queued = deque(q for q in self._queued if q.text != event.text)
                if self._playing == event.text and self._free_at > event.t:
                    self._free_at = event.t  # cut short: the next begins now
            else:
                self._queued.clear()
                self._free_at = min(self._free_at, event.t)
        self._play(until, began)
        return began

    def _play(self, until: float, began: list[tuple[float, str]]) -> None:
        """Begin, one after another, the queued prompts whose turn comes before ``until``."""
        while self._queued:
            start = max(self._free_at, self._queued[0].t)
            if start >= until:
                return
            said = self._queued.popleft()
            began.append((start, said.text))
            self._playing = said.text
            self._free_at = start + self.speech_s(said.text)


class CuePrinter:
    """Prints each new cue, what is said, and the status LED's changes, from its own thread:
    terminal output never runs on the loop thread.

    What is said: with a :class:`PrintedSpeaker` as the runner's speaker, every sentence it
    was asked to say (the one source of the words: a cue's prompt is printed once, as said;
    a cue the buzzer refused says nothing until it plays); with none, each cue's prompt
    from its record. The LED's brief interval flicker is not printed (each cue line stands
    for it)."""

    def __init__(
        self,
        runner: SessionRunner,
        out: TextIO,
        poll_s: float = 0.05,
        light: StatusLight | None = None,
    ) -> None:
        self._runner = runner
        self._out = out
        self._poll_s = poll_s
        self._light = light
        speaker = runner.speaker
        self._speaker = speaker if isinstance(speaker, PrintedSpeaker) else None
        self._lit_until = -math.inf
        """The time of the last LED change taken. The light keeps its last 256 changes
        (:attr:`StatusLight.shown`), and each comes at a later time than the one before (a
        change starts a :data:`~firmware.status_light.STEP_S` wait), so the new ones are those
        after it. Counted by position, the printer printed no LED change after the 256th of
        a process: the list stays 256 long."""
        self._since: float | None = None
        self._printed = 0
        self._held: list[tuple[float, str]] = []
        """Lines not printed yet: later than the speaker's horizon (:meth:`drain`)."""
        self._stop = threading.Event()
        # One real-time step below the loop when made on the loop's thread (core.realtime): at
        # normal priority a busy host preempted it while it held the GIL, and the loop waited
        # (a 175 ms wait for the GIL, traced in `retroguard demo`: the relay's latch dropped).
        self._thread = LoopHelperThread(self._run, "session-cues")

    def start(self) -> CuePrinter:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            self.drain()
        self.drain(final=True)

    def drain(self, *, final: bool = False) -> None:
        """Print what is new, in time order; ``final``: the walk is over, everything left.

        With a :class:`PrintedSpeaker`, lines are printed only up to its
        :meth:`~PrintedSpeaker.horizon`, the later ones held for the next drain: a cue's
        words follow its line, before the LED's change a moment later."""
        speaker = self._speaker
        until = speaker.horizon() if speaker is not None and not final else math.inf
        lines = self._held
        cues = self._runner.cues
        while self._printed < len(cues):
            t = cues[self._printed].t
            lines.append((t, format_cue(self._runner, self._printed)))
            if self._speaker is None:
                lines.append((t, format_spoken(self._runner, self._printed)))
            elif cues[self._printed].replayed:
                lines.append((t, REPLAYED_NOTE))
            self._printed += 1
        if speaker is not None:  # after the cues: said as they played, or later
            lines.extend((t, format_said(text)) for t, text in speaker.heard(until))
        shown = list(self._light.shown) if self._light is not None else []
        for t, name in shown:
            if t <= self._lit_until:
                continue
            self._lit_until = t
            if self._since is None:
                self._since = t
            if name != "interval_change":
                lines.append((t, format_light(t, name, self._since)))
        lines.sort(key=lambda item: item[0])  # stable: a cue's line before its words
        ready = next((n for n, (t, _) in enumerate(lines) if t >= until), len(lines))
        for _, line in lines[:ready]:
            self._out.write(line + "\n")
        del lines[:ready]
        self._out.flush()

    def stop(self) -> None:
        """Print everything left, on the printer's own thread, and end it.

        The last lines are printed by the thread that printed the others, never by the caller
        (the loop's thread, in the demos). It printed them on the caller's thread, and a walk
        on a simulated clock that ended before the printer's thread first ran (a host whose
        two cores were both taken by real-time loops: a CI run) printed every line from the
        loop's thread. Waits at most :data:`PRINTER_STOP_WAIT_S`: past that (an output that
        stalls) the thread prints what is left when it can."""
        self._stop.set()
        if self._thread.ident is None:  # never started: nothing else prints
            self.drain(final=True)
            return
        self._thread.join(timeout=PRINTER_STOP_WAIT_S)
        if self._thread.is_alive():
            log.warning(
                "the cue printer did not finish within %.0f s; its last lines may come later",
                PRINTER_STOP_WAIT_S,
            )


def attach_demo_printer(
    runner: SessionRunner, out: TextIO | None = None, light: StatusLight | None = None
) -> CuePrinter:
    """Print this runner's cues (and the LED) as they play, and what it says when its speaker
    is a :class:`PrintedSpeaker`."""
    return CuePrinter(runner, out or sys.stdout, light=light).start()


def run_guided_demo(
    *,
    speed: float = 1.0,
    time_scale: float = 60.0,
    plan: str | Plan | None = None,
    database: Path | None = None,
    out: TextIO | None = None,
    clock: Clock | None = None,
    balance: bool = False,
) -> int:
    """Run the demo; 0 when the session completed with the relay never touched by it.

    With ``balance`` the session is started in STANDBY, so it opens with the standing
    balance check (5 s settling and 30 s measured, in real time: it is not compressed), and
    the walker arms once it is done; the check's figures and each interval's gait are printed
    at the end (an interval needs some 20 s of walking for gait figures: ``time_scale`` 6)."""
    out = out or sys.stdout
    problems = [p for p in (speed_problem(speed), scale_problem(time_scale)) if p is not None]
    for problem in problems:  # the bounds of both demos (core.demo_limits)
        print(f"retroguard session demo: {problem}", file=sys.stderr)
    if problems:
        return 2
    refused = None if database is None else demo_database_problem(database)
    if refused is not None:
        print(f"retroguard session demo: --db: {refused}", file=sys.stderr)
        return 2
    assigned = None if database is None else assigned_plan(database)
    if assigned is not None and plan is not None:
        walker, assignment = assigned
        print(
            f"retroguard session demo: --plan: {walker.name} ({walker.id}), the walker chosen "
            f"in {database}, has plan {assignment.revision} assigned "
            f"({assignment.plan.describe()}), and a session walks its walker's assigned "
            "plan, not --plan: leave out --plan to walk theirs, or choose another walker "
            f"(retroguard walker select) or clear theirs (retroguard plan clear --walker "
            f"{walker.id}) first",
            file=sys.stderr,
        )
        return 2
    if assigned is not None:
        the_plan = assigned[1].plan
    elif isinstance(plan, Plan):
        the_plan = plan
    else:
        from tools.plans import read_plan

        try:
            the_plan = read_plan(plan or "alternate-2-2")
        except ConfigError as exc:
            for problem in exc.problems:
                print(f"retroguard session demo: --plan: {problem}", file=sys.stderr)
            return 2
    # Real-time from before anything is built: every thread of the monitor's process (the
    # simulated chip's clock, the gait meter, the courier's supervisor, the cue printer, the
    # log writer) takes the policy of the thread that makes it, so made here they run at or one
    # step below the loop. Made before the section, they ran at normal priority, and a busy
    # host could preempt one holding the GIL while the loop waited for it (core.realtime).
    # The loop's log records are only queued, as `retroguard run` has them (core.logsetup).
    with (
        tempfile.TemporaryDirectory(prefix="retroguard-session-demo-") as tmp,
        realtime_section(DEMO_LOOP_PRIORITY, "the session demo's monitor loop"),
        logging_off_this_thread(),
    ):
        db = database or Path(tmp) / "events.db"
        # The hold time and debounce in the host's real milliseconds, as `retroguard demo`
        # has them: at --speed 10 a 6 ms hiccup of a busy host was a 60 ms hang to the
        # 50 ms hold circuit, and the demo ended "DEMO FAILED ... the relay moved".
        config = at_speed(
            dataclasses.replace(Config(), storage=StorageConfig(database=str(db))), speed
        )
        walk_s = the_plan.duration_s / time_scale + 5.0
        arm_at = ARM_AT_S + (BALANCE_SETTLE_S + BALANCE_MEASURE_S + 1.0 if balance else 0.0)
        motion = scenarios.Sequence(
            [
                scenarios.Standing(arm_at + 1.0),
                scenarios.Walking(walk_s + ARM_WAIT_S, 0.6, "backward"),
            ],
            seed=5,
            name="guided_session",
        )
        clock = clock or RealClock(speed)
        sim = simulated_hardware(config.imu, config.gpio, clock, motion)
        wall = demo_wall(clock)  # the host's time, at any --speed
        app = build_app(config, clock, imu=sim.imu_rig.imu, gpio=sim.gpio, wall=wall)
        button, hardware = sim.gpio.button_sim, sim.gpio.hardware
        assert button is not None and hardware is not None, "the demo needs simulated GPIO"
        app.monitor.on_iteration.append(lambda monitor: _discard(button.poll()))
        loop_time = _LoopTime()
        app.monitor.on_iteration.append(loop_time)
        # The rig has no sound card: the speaker prints what a board with one would say.
        runner = attach_session(
            app,
            the_plan,
            time_scale=time_scale,
            wall=wall,
            speaker=PrintedSpeaker(
                clock, rate_wpm=config.session.speech_rate_wpm, time_scale=time_scale
            ),
        )
        out.write(
            f"Guided session demo: {the_plan.describe()}, {time_scale:g}x compressed "
            f"({the_plan.duration_s / time_scale:.0f} s of loop time"
            f"{f' at {speed:g}x speed' if speed != 1 else ''}).\n"
            "The walker arms with the reset button, then starts the session; the plan's clock "
            "runs only while armed.\n"
        )
        if assigned is not None:
            walker, assignment = assigned
            out.write(
                f"The plan is {walker.name}'s ({walker.id}), the walker chosen in {db}: their "
                f"assigned plan {assignment.revision}, as the monitor walks it.\n"
            )
        if database is not None:
            out.write(f"Session stored in {db} (retroguard sessions --db {db} shows it).\n")
        try:
            app.start_scripted()  # its reset press is scripted
        except CourierNotStarted:
            detach_session(app, runner)
            app.close(drain_timeout=0.0)  # no courier: nothing to drain
            raise
        start = clock.monotonic()
        printer = CuePrinter(runner, out, light=app.status_light).start()
        unfinished = ""
        try:
            if balance:  # in STANDBY: the session opens with the balance check
                _run_until_standby(app.monitor, until=start + ARM_AT_S)
                runner.request("start")
            # The walker presses at ``arm_at``, or later once the LED says "press reset to
            # arm": a press at a fixed time came, on a busy host, while the monitor was still
            # checking the sensor after a FAULT at its start, and was refused (ARM_WAIT_S).
            app.monitor.run(until=start + arm_at)
            _run_until(app.monitor, _ready_to_arm, until=start + arm_at + ARM_WAIT_S)
            pressed = clock.monotonic()
            button.press_at(pressed, pressed + PRESS_S)
            app.monitor.run(until=pressed + PRESS_S + 0.2)
            if not balance:
                runner.request("start")
            end = pressed + 1.0 + the_plan.duration_s / time_scale + 1.5
            app.monitor.run(until=end)
        finally:
            # The monitor has stopped: a session still under way ends here (stopped), so its
            # record is final and nothing says it is running.
            try:
                if runner.under_way:
                    unfinished = runner.pause_reason or f"session {runner.state.value.lower()}"
                    runner.stop(clock.monotonic())  # the loop has returned: this thread owns it
            finally:
                # Whatever the stop did: a raising stop used to leave the cue printer and the
                # gait meter's thread running, and the app open.
                printer.stop()
                detach_session(app, runner)
                # Over the walk: the lapse once the loop has stopped is the circuit's (_LoopTime).
                history = [(t, closed) for t, closed in hardware.history if t <= loop_time.t]
                app.close()
        sessions = load_sessions(db)
        if not sessions:
            out.write("DEMO FAILED: no session was stored.\n")
            return 1
        r = sessions[-1].record
        if unfinished:
            out.write(
                f"The monitor stopped before the plan's end ({unfinished}): the session is "
                "recorded as stopped.\n"
            )
        print_session_end(db, r, sessions, out, mqtt=bool(app.config.mqtt.host))
        if balance:
            for b in r.balance:
                out.write(f"Balance check {describe_balance(b)}\n")
            for i in r.intervals:
                if i.gait is not None:
                    out.write(f"  interval {i.index + 1} {i.direction}: {describe_gait(i.gait)}\n")
        # The relay closed once, at arming, and the session never moved it.
        failed = _why_failed(r.status, history, start)
        if failed is not None:
            out.write(f"DEMO FAILED: {failed}.\n")
        return 0 if failed is None else 1


def assigned_plan(database: Path) -> tuple[Walker, AssignedPlan] | None:
    """The walker chosen in ``database`` and the plan assigned to them, when one is (None: the
    file is new or empty, or the walker walks the config's plan).

    The demo's monitor is the real one: at the session's start it takes the chosen walker's
    assigned plan from the database, as ``retroguard run`` does. The demo announced and timed
    its ``--plan`` (or ``alternate-2-2``) all the same, so with a 7.5-minute plan of Bob's in
    the file it said a 30-minute plan, and a plan longer than the one announced was cut off
    at the announced one's end: "DEMO FAILED: the session did not complete"."""
    import sqlite3

    from firmware.storage.database import connect
    from firmware.storage.plans import current_plan
    from firmware.storage.walkers import selected_walker

    try:
        if database.stat().st_size == 0:
            return None
    except OSError:  # not there yet: the demo makes it
        return None
    conn = connect(database)  # a newer schema: SchemaError, said by the CLI (exit 2)
    try:
        walker = selected_walker(conn)
        assignment = current_plan(conn, walker.id)
    except sqlite3.DatabaseError:  # damaged: the monitor's start moves it aside, as before
        return None
    finally:
        conn.close()
    if assignment is None or assignment.plan is None:  # cleared, or unreadable: the config's
        return None
    return walker, AssignedPlan(assignment.revision, assignment.plan)


@dataclass(frozen=True, slots=True)
class AssignedPlan:
    """A walker's plan in force, as assigned (its revision: ``retroguard plan show``'s number)."""

    revision: int
    plan: Plan


def _why_failed(status: str, history: list[tuple[float, bool]], start: float) -> str | None:
    """What went wrong, first cause first; None when the session completed with the relay
    closed once, at arming, and never moved. It said "the session did not complete or the
    relay moved" for all three, and a press refused under load read as a relay fault."""
    if not history:
        return (
            "the walker's reset press never armed the monitor (the relay never closed; "
            "the refusal is above)"
        )
    opened = next((t for t, closed in history if not closed), None)
    if opened is not None:
        return f"the relay opened at {opened - start:.1f} s of loop time (the FAULT above)"
    if status != "completed":
        return f"the session did not complete (recorded {status})"
    return None
