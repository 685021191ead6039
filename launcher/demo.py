"""``retroguard demo``: the whole monitor on simulated hardware, walking a scripted session.

Nothing here is a demo-only shortcut: :func:`firmware.app.build_app` builds
the same driver, detector, controller and store as ``retroguard run``, on the
register-level MPU-6050 simulation and gpiozero mock pins with a model of the
fail-safe relay circuit. The simulated walker follows
:func:`sim.scenarios.demo_session`; a simulated finger presses the reset
button at scripted times, exactly as a person at the machine would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from core.clock import Clock, RealClock
from core.dbfile import demo_database_problem
from core.demo_limits import speed_problem
from core.logsetup import logging_off_this_thread
from core.protocol.events import ALERT_TYPES, EventType
from core.protocol.ids import CAREGIVER_INSTANCE_PREFIX, check_device_id
from core.realtime import LoopHelperThread, SchedulingPolicy, realtime_section
from core.wallclock import FakeWallClock
from core.zones import system_zone, zones_said
from firmware.app import App, CourierNotStarted, build_app, favour_realtime_thread
from firmware.config import Config, StorageConfig
from firmware.link.supervisor import ProcessCourier, SpawnCourier
from firmware.monitor import Monitor
from firmware.safety import SafetyState
from firmware.session.runner import SessionRunner, attach_session, detach_session
from firmware.session.runner import SessionState as SessionRunnerState
from firmware.session.summary import minutes, trips_words
from firmware.storage.events import EventStore, StoredEvent
from firmware.storage.outbox import OutboxDepth, outbox_depth
from firmware.storage.sessions import load_sessions
from launcher.extras import missing_extra
from launcher.live_line import LinesAbove, LiveLine, logging_above, stderr_above
from sim import scenarios
from sim.backends import SimulatedGpio, SimulatedHardware, simulated_hardware
from sim.relay_hardware import SimulatedButton
from tools.broker import BrokerError, Mosquitto, mosquitto_available
from tools.demo_speed import at_speed, demo_wall
from tools.session_demo import CuePrinter, PrintedSpeaker

if TYPE_CHECKING:
    from caregiver.demo import DemoCaregiverProcess

log = logging.getLogger(__name__)

ARM_AT_S = 4.5
"""The walker's helper presses reset once the IMU has settled and the sensor-worn check has
seen the walker's body (its first 3 s block, after 1 s of settling)."""
PRESS_S = 0.6
"""How long a finger holds the reset button: past the chirp (firmware.presses.ARM_HOLD_S)."""
RESET_AFTER_STUMBLE_S = 4.0
"""Into the pause after the stumble, the walker presses reset to carry on."""
LET_GO_AFTER_STUMBLE_S = 1.0
"""Into the pause after the stumble, the walker first presses reset and lets go before the
chirp (:data:`LET_GO_PRESS_S`): a common slip. The press ends the alarm and is refused
("Not armed. Press and hold reset until the chirp."); with the alarm over, the walker is
told how to re-arm or call for help, as every walker after a trip is once the buzzer is quiet
(:meth:`firmware.session.safety_words.SafetyWords._trip`). Without it the alarm sounded
until the arming press, and the demo never showed those words."""
LET_GO_PRESS_S = 0.2
"""Let go before the chirp (firmware.presses.ARM_HOLD_S): a reset press that cannot arm."""
REARM_AFTER_FAULT_S = 4.0
"""After a fault has cleared (back in STANDBY), the helper presses reset this much later:
the sensor-worn check measures the body afresh after a fault (1 s settling and a 3 s block,
from the fault; STANDBY comes 0.5 s after it)."""
DEFAULT_MQTT_PORT = 1883
BROKER_ACL = Path(__file__).resolve().parent.parent / "docs" / "mqtt" / "mosquitto.acl"
"""The demo broker's ACL: the very file ``scripts/install-pi.sh --broker`` installs on a Pi,
read as it is, so a topic the product uses that the ACL forgets fails the demo too."""
CAREGIVER_ACCOUNT = "caregiver"
"""The caregiver service's broker account (:data:`core.protocol.ids.ACCOUNT_NAMES`)."""
WATCH_ACCOUNT = f"{CAREGIVER_INSTANCE_PREFIX}watch"
"""The account of the ``retroguard watch`` the demo prints (docs/mqtt.md, "Watching from a
terminal"; its block is the ACL's)."""
DEMO_LOOP_PRIORITY = 20
"""The unit's ``CPUSchedulingPriority`` (systemd/retroguard.service)."""
GUIDED_TIME_SCALE = 30.0
"""The guided session's plan runs 30 times faster: its 2-minute intervals last 4 s."""
RECEIPTS_WAIT_S = 15.0
"""With the caregiver service running, how long (real seconds, once the relay is released)
the courier waits on its way out for the service's receipts of the alerts it published: the
last ones (the fall's window, the session's summary) are published as the walk ends."""


@dataclass
class DemoResult:
    app: App
    session: scenarios.Sequence
    events: list[StoredEvent]
    relay_closed_at_end: bool
    final_state: SafetyState
    runner: SessionRunner | None = None

    @property
    def ok(self) -> bool:
        """The demo's promise: it ends tripped by the fall, with the relay released."""
        kinds = [s.event.type for s in self.events]
        return (
            not self.relay_closed_at_end
            and self.final_state is SafetyState.TRIPPED
            and EventType.FALL in kinds
        )


def _discard(value: object) -> None:
    """Hooks return nothing; ``poll`` returns a count we do not need."""


def demo_config(database: Path) -> Config:
    config = Config()
    return dataclasses.replace(config, storage=StorageConfig(database=str(database)))


def run_session(
    config: Config,
    clock: Clock,
    *,
    session: scenarios.Sequence | None = None,
    on_started: Callable[[App, scenarios.Sequence, SessionRunner | None], None] | None = None,
    on_walk_over: Callable[[], None] | None = None,
    guided: bool = True,
    await_receipts_s: float = 0.0,
) -> DemoResult:
    """Build the app, schedule the presses, run the whole session, close, return what happened.

    With ``guided`` the walker also follows a time-compressed guided session
    (:data:`GUIDED_TIME_SCALE`), started as soon as the treadmill is armed. ``on_walk_over``
    is called once the loop has returned and the session has stopped, with the app's threads
    still running (the demo's cue printers print what is left then).
    ``await_receipts_s``: at close, once the relay is released, how long the courier waits
    for a consumer's receipts of the alerts (:meth:`firmware.app.App.close`).
    """
    session = session or scenarios.demo_session()
    sim = simulated_hardware(config.imu, config.gpio, clock, session)
    wall = demo_wall(clock)  # the events' and the session's: one clock, synchronised
    app = demo_app(config, clock, sim, wall)
    button = sim.gpio.button_sim
    hardware = sim.gpio.hardware
    assert button is not None and hardware is not None, "the demo needs simulated GPIO"
    app.monitor.on_iteration.append(lambda monitor: _discard(button.poll()))
    app.monitor.on_iteration.append(_RearmAfterFault(button, clock))
    # The rig has no sound card: its speaker prints what a board with one would say (the
    # cues' prompts, and the words-only ones: after a trip, a call for help, a refused press).
    runner: SessionRunner | None = None
    if guided:
        speaker = PrintedSpeaker(
            clock, rate_wpm=config.session.speech_rate_wpm, time_scale=GUIDED_TIME_SCALE
        )
        runner = attach_session(app, time_scale=GUIDED_TIME_SCALE, wall=wall, speaker=speaker)
        app.monitor.on_iteration.append(_StartWhenArmed(runner))
    try:
        app.start_scripted()  # its reset presses are scripted
    except CourierNotStarted:
        if runner is not None:
            detach_session(app, runner)
        app.close(drain_timeout=0.0)  # no courier: nothing to drain
        raise
    start = clock.monotonic()
    pause = session.span("reset_pause")
    for at in (ARM_AT_S, pause.start + RESET_AFTER_STUMBLE_S):
        button.press_at(start + at, start + at + PRESS_S)
    let_go = start + pause.start + LET_GO_AFTER_STUMBLE_S
    button.press_at(let_go, let_go + LET_GO_PRESS_S)
    if on_started is not None:
        on_started(app, session, runner)
    try:
        app.monitor.run(until=start + session.duration)
    finally:
        relay_closed = hardware.contact_closed()
        final_state = app.controller.state
        # As `retroguard run` does (firmware.app.run_forever): the relay is released first,
        # and the app is closed whatever the session's stop does. A stop that raised used to
        # skip app.close(): the courier was left running and the last records never reached it.
        app.gpio.relay.release()
        try:
            if runner is not None:
                try:
                    runner.stop(clock.monotonic())  # the loop has returned: this thread owns it
                finally:
                    # Whatever the stop did: a raising stop skipped the detach, and the gait
                    # meter's thread, the voice and the control socket outlived the demo.
                    try:
                        if on_walk_over is not None:
                            on_walk_over()
                    finally:
                        detach_session(app, runner)
        finally:
            app.close(drain_timeout=10.0, await_receipts_s=await_receipts_s)
    return DemoResult(
        app=app,
        session=session,
        events=_stored_events(config),
        relay_closed_at_end=relay_closed,
        final_state=final_state,
        runner=runner,
    )


class _RearmAfterFault:
    """The helper at the machine presses reset again once a fault has cleared (a loop hook).

    On a busy host a real-time demo can stall for longer than the hold time:
    the latch drops, as it would on a Pi, the contact feedback reports it
    (FAULT), and once the monitor is back in STANDBY a person would press
    reset and carry on. The scripted presses cannot know when; this does. On
    a simulated clock nothing stalls and it never presses.
    """

    def __init__(self, button: SimulatedButton, clock: Clock) -> None:
        self._button = button
        self._clock = clock
        self._handled: object = None

    def __call__(self, monitor: Monitor) -> None:
        transitions = monitor.controller.transitions
        last = transitions[-1] if transitions else None
        if (
            last is None
            or last is self._handled
            or last.source is not SafetyState.FAULT
            or last.state is not SafetyState.STANDBY
        ):
            return
        self._handled = last
        at = self._clock.monotonic() + REARM_AFTER_FAULT_S
        self._button.press_at(at, at + PRESS_S)


class _StartWhenArmed:
    """The walker starts the guided session once the treadmill is armed (a loop hook)."""

    def __init__(self, runner: SessionRunner) -> None:
        self._runner = runner
        self._requested = False

    def __call__(self, monitor: Monitor) -> None:
        if not self._requested and monitor.controller.state is SafetyState.ARMED:
            self._requested = True
            self._runner.request("start")


def _stored_events(config: Config) -> list[StoredEvent]:
    store = EventStore(config.storage.database)
    try:
        return store.events()
    finally:
        store.close()


def walker_doing(state: SafetyState, runner: SessionRunner | None, scripted: str) -> str:
    """What the walker is doing, as the status line says it: standing until armed; with a
    guided session, its current interval's direction (or that it is paused); else the
    scripted walk's part (``scripted``)."""
    if state in (SafetyState.STARTING, SafetyState.STANDBY):
        return "standing"
    if runner is None:
        return scripted.replace("_", " ")
    now = runner.interval_now()
    if now is not None:
        _, direction = now
        return "rest" if direction == "rest" else f"walk {direction}"
    if runner.state is SessionRunnerState.PAUSED:
        return "paused"
    return "walking" if state is SafetyState.ARMED else "stopped"


class LiveStatus:
    """A status line redrawn from its own thread: terminal I/O stays off the real-time thread.

    Only on a terminal (:class:`~launcher.live_line.LiveLine`): log records and printed lines
    are written above it, and it is drawn again below them."""

    def __init__(self, line: LiveLine, interval_s: float = 0.25) -> None:
        self.line = line
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, app: App, session: scenarios.Sequence, runner: SessionRunner | None) -> None:
        start = app.clock.monotonic()
        # One real-time step below the loop (it is made on the loop's thread): at normal
        # priority it could be preempted holding the GIL the loop waits for (core.realtime).
        self._thread = LoopHelperThread(
            lambda: self._run(app, session, runner, start), "demo-status"
        )
        self._thread.start()

    def fields(
        self, app: App, session: scenarios.Sequence, runner: SessionRunner | None, start: float
    ) -> tuple[str, ...]:
        t = app.clock.monotonic() - start
        scripted = next((s.label for s in session.segments if s.start <= t < s.end), "done")
        doing = walker_doing(app.controller.state, runner, scripted)
        hardware = app.gpio.hardware if isinstance(app.gpio, SimulatedGpio) else None
        relay = "CLOSED (belt may run)" if hardware and hardware.contact_closed() else "open"
        return (
            f"t={t:5.1f}s",
            f"walker: {doing:<13}",
            f"state: {app.controller.state.value:<8}",
            f"relay: {relay:<21}",
            f"buzzer: {app.gpio.buzzer.pattern or 'quiet'}",
        )

    def _run(
        self, app: App, session: scenarios.Sequence, runner: SessionRunner | None, start: float
    ) -> None:
        while not self._stop.wait(self._interval):
            self.line.show("  ".join(self.fields(app, session, runner, start)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.line.end()


def print_events(events: list[StoredEvent], out: TextIO) -> None:
    """Every event stored, its time of day in the machine's zone, named in the heading as
    ``retroguard sessions`` names it ("Times in UTC."). It printed the stamp's own digits with
    no zone, beside the dashboard's times that say theirs."""
    zone = system_zone()
    moments = [dt.datetime.fromisoformat(stored.event.wall_time) for stored in events]
    said = zones_said(zone, moments)
    out.write(f"\n{len(events)} events stored (times in {said}):\n")
    for stored, moment in zip(events, moments, strict=True):
        e = stored.event
        figures = ", ".join(f"{k}={v:g}" for k, v in list(e.figures.items())[:4])
        clock_time = moment.astimezone(zone).strftime("%H:%M:%S.%f")[:12]
        out.write(
            f"  #{stored.seq:<3} {clock_time}  {e.type.value:<12} {e.severity.value:<8} "
            f"{e.state:<8} {e.reason}{'  [' + figures + ']' if figures else ''}\n"
        )


def run_demo(
    *,
    speed: float = 1.0,
    database: Path | None = None,
    live: bool = True,
    out: TextIO | None = None,
    broker_ok: bool = True,
    keep_open: bool = False,
    keep: bool = False,
    clock: Clock | None = None,
) -> int:
    """The README's demo. Exit 0 when it ends with the fall tripped and the relay released.

    Without ``database`` the demo's files (event store, the dashboard's database) go in a
    temporary folder, removed at exit unless ``keep`` (``--keep``: to look at them after).
    ``clock``: the monitor's clock (tests: a :class:`~core.clock.SimClock`); by default the
    host's, ``speed`` times faster."""
    out = out or sys.stdout
    problem = speed_problem(speed)  # NaN too: it fails every comparison
    if problem is not None:
        print(f"retroguard demo: {problem}", file=sys.stderr)
        return 2
    problem = None if database is None else demo_database_problem(database)
    if problem is not None:
        print(f"retroguard demo: --db: {problem}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        line = LiveLine(out)
        # Registered first, so undone last: the children (courier, dashboard) are gone by then.
        # Its relay thread runs beside the loop, one step below it, from before its
        # real-time section (the children start first) to after it.
        relay_beside = SchedulingPolicy(os.SCHED_FIFO, DEMO_LOOP_PRIORITY)
        terminal = stack.enter_context(stderr_above(line, relay_beside)) if live else sys.stderr
        where = ""
        if database is None:
            folder = Path(tempfile.mkdtemp(prefix="retroguard-demo-"))
            database = folder / "retroguard.db"
            if keep:
                where = " (kept after the demo: --keep)"
            else:  # registered first, so removed last: after the dashboard and the broker
                stack.callback(shutil.rmtree, folder, ignore_errors=True)
                where = " (a temporary folder, removed at exit; --keep keeps it)"
        config = at_speed(demo_config(database), speed)
        session = scenarios.demo_session()
        out.write(
            f"RetroGuard demo: {session.duration:.0f} s of simulated backward walking"
            f"{f' at {speed:g}x speed' if speed != 1 else ''}.\n"
            "Reset is pressed to arm; the walker stumbles (trip), resets, walks on, then falls.\n"
            f"Event store: {database}{where}\n"
        )
        dashboard: DemoCaregiverProcess | None = None
        if broker_ok:
            # Its own folder (0700), whatever --db or --keep: the passwords live as long as
            # the broker, and are removed after it and every component that reads them.
            secret = Path(tempfile.mkdtemp(prefix="retroguard-demo-accounts-"))
            stack.callback(shutil.rmtree, secret, ignore_errors=True)
            accounts = make_accounts(secret, config.device.id)
            broker = _start_broker(out, accounts)
            if broker is not None:
                stack.callback(broker.cleanup)
                config = _reporting_to(config, broker, accounts)
                port_arg = "" if broker.port == DEFAULT_MQTT_PORT else f" --port {broker.port}"
                out.write(
                    f"MQTT broker: Mosquitto on {broker.host}:{broker.port}, set up as on a Pi: "
                    f"no anonymous login, an account each ({', '.join(accounts.passwords)}), "
                    "the documented ACL (docs/mqtt/mosquitto.acl).\n"
                    f"Watch the events arrive: .venv/bin/retroguard watch{port_arg} --username "
                    f"{WATCH_ACCOUNT} --password-file {accounts.password_file(WATCH_ACCOUNT)}\n"
                )
                dashboard = _start_dashboard(broker, database.parent, out, accounts)
                if dashboard is not None:
                    stack.callback(dashboard.stop)
        out.write("\n")
        clock = clock or RealClock(speed)
        code = _run_and_report(
            config,
            session,
            clock,
            line if live else None,
            out,
            terminal,
            caregiver=dashboard is not None,
        )
        if dashboard is not None and keep_open:
            # The login again: printed before the walk, it is hundreds of lines up by now.
            out.write(
                f"\nThe dashboard stays up at {dashboard.url} "
                f"(log in as {dashboard.username} / {dashboard.password})"
                " — press Enter (or Ctrl-C) to stop.\n"
            )
            out.flush()
            with contextlib.suppress(EOFError, KeyboardInterrupt):
                input()
        return code


def _reporting_to(config: Config, broker: Mosquitto, accounts: DemoAccounts) -> Config:
    """``config`` reporting to the demo's broker with the device's account: the ``[mqtt]``
    host, port, ``username`` and ``password_file`` docs/deployment.md has an installer set."""
    mqtt = dataclasses.replace(
        config.mqtt,
        host=broker.host,
        port=broker.port,
        username=accounts.device,
        password_file=str(accounts.password_file(accounts.device)),
    )
    return dataclasses.replace(config, mqtt=mqtt)


def _start_dashboard(
    broker: Mosquitto, workdir: Path, out: TextIO, accounts: DemoAccounts
) -> DemoCaregiverProcess | None:
    """The caregivers' side of the story: the dashboard, subscribed to the demo's broker with
    the caregiver service's account.

    In its own process, as installed: its CPU never competes with the loop for the GIL.
    """
    try:
        from caregiver.demo import spawn_demo_caregiver

        level = logging.getLogger().getEffectiveLevel()
        dashboard = spawn_demo_caregiver(
            broker.host,
            broker.port,
            workdir / "caregiver",
            log_level=level,
            username=CAREGIVER_ACCOUNT,
            password_file=str(accounts.password_file(CAREGIVER_ACCOUNT)),
        )
    except ModuleNotFoundError as exc:  # a monitor-only install: the demo runs without it
        advice = missing_extra(exc) or f"{type(exc).__name__}: {exc}"
        out.write(f"Caregiver dashboard: not started: {advice}.\n")
        return None
    except Exception as exc:  # the monitor demo still runs without the dashboard
        out.write(f"Caregiver dashboard: could not start ({type(exc).__name__}: {exc}).\n")
        return None
    out.write(
        f"Caregiver dashboard: {dashboard.url}  "
        f"(log in as {dashboard.username} / {dashboard.password})\n"
    )
    return dashboard


@dataclass(frozen=True)
class DemoAccounts:
    """The demo broker's accounts, as ``install-pi.sh --broker`` makes a Pi's: one per
    simulated device (its id), the caregiver service's, and the terminal watch's. Each
    password is random, made for this run, in a file of its own (0600) in ``folder``, which
    a component's ``[mqtt] password_file`` names, as docs/deployment.md has an installer do."""

    folder: Path
    device: str
    passwords: dict[str, str]

    def password_file(self, account: str) -> Path:
        return self.folder / f"{account}.password"


def make_accounts(folder: Path, device: str) -> DemoAccounts:
    """A random password for each account (32 characters, as the installer's), each written
    to its own file readable by this user only. ``device`` must be a device id, never an
    account's name (:func:`core.protocol.ids.check_device_id`)."""
    passwords: dict[str, str] = {}
    for account in (check_device_id(device), CAREGIVER_ACCOUNT, WATCH_ACCOUNT):
        password = secrets.token_hex(16)
        path = folder / f"{account}.password"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(password + "\n")
        passwords[account] = password
    return DemoAccounts(folder, device, passwords)


def _start_broker(out: TextIO, accounts: DemoAccounts) -> Mosquitto | None:
    """A local Mosquitto as a Pi's: no anonymous login, ``accounts`` only, a client's id its
    user name and the documented ACL (:data:`BROKER_ACL`); on port 1883 when free."""
    if not mosquitto_available():
        out.write(
            "MQTT: mosquitto is not installed (scripts/demo.sh installs it); not reporting.\n"
        )
        return None
    try:
        acl = BROKER_ACL.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:  # an installed package has no docs/
        out.write(f"MQTT: cannot read the broker's ACL {BROKER_ACL} ({exc}); not reporting.\n")
        return None
    port = DEFAULT_MQTT_PORT if _port_free(DEFAULT_MQTT_PORT) else None
    # A caregiver dashboard that is slow to start must not lose the first events.
    broker = Mosquitto(
        port=port,
        users=accounts.passwords,
        acl=acl,
        extra_config="max_queued_messages 10000\n",
    )
    try:
        broker.start()
    except (BrokerError, OSError, subprocess.CalledProcessError) as exc:
        out.write(f"MQTT: could not start Mosquitto ({exc}); not reporting.\n")
        broker.cleanup()
        return None
    return broker


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def mqtt_outcome(events: list[StoredEvent], left: OutboxDepth, caregiver: bool) -> str:
    """The demo's MQTT line: whether the caregiver service confirmed every alert, or what
    the outbox keeps (never dropped: sent again at the next start). ``caregiver``: a
    caregiver service ran and the courier waited for its receipts."""
    alerts = sum(1 for stored in events if stored.event.type in ALERT_TYPES)
    if caregiver and left.unsent == 0 and left.awaiting_receipt == 0:
        return (
            f"MQTT: all {alerts} alert{'' if alerts == 1 else 's'} confirmed by the caregiver "
            "service, and every other message delivered.\n"
        )
    waited = (
        f"not confirmed by the caregiver service within {RECEIPTS_WAIT_S:g} s"
        if caregiver
        else "no caregiver service confirming them"
    )
    return (
        f"MQTT: {left.unsent} messages the broker does not have yet, {left.awaiting_receipt} "
        f"alerts it has that the caregiver service has not confirmed ({waited}): kept in the "
        "outbox and sent again at the next start.\n"
    )


def _run_and_report(
    config: Config,
    session: scenarios.Sequence,
    clock: Clock,
    line: LiveLine | None,
    out: TextIO,
    terminal: TextIO,
    *,
    caregiver: bool = False,
) -> int:
    """Run the walk and print what happened; with ``line`` (a terminal's) a live status line,
    with every log record (``terminal``: the stderr they go to) written above it.

    With ``caregiver`` (its service is running) the courier's shutdown waits, once the relay
    is released, up to :data:`RECEIPTS_WAIT_S` for the service's receipts of the alerts."""
    favour_realtime_thread()
    caregiver = caregiver and bool(config.mqtt.host) and config.mqtt.alert_receipts
    live = line if line is not None and line.tty else None
    status = LiveStatus(live) if live is not None else None
    # Off a terminal or with --no-live there is no status line to keep clear: the cue, LED
    # and spoken-prompt lines go to ``out`` as they are, plain whole lines.
    cues_to = cast(TextIO, LinesAbove(live)) if live is not None else out
    printers: list[CuePrinter] = []

    def on_started(app: App, walk: scenarios.Sequence, runner: SessionRunner | None) -> None:
        if status is not None:
            status.start(app, walk, runner)
        if runner is not None:
            printers.append(CuePrinter(runner, cues_to, light=app.status_light).start())

    def stop_printers() -> None:
        """Each prints what is left on its own thread; again harmless (a stopped printer)."""
        for printer in printers:
            printer.stop()

    out.write(
        f"Guided session: {config.session.plan} at {GUIDED_TIME_SCALE:g}x "
        "(its cues are printed as the buzzer plays them, with what a speaker would say; "
        "a trip pauses it).\n"
    )
    # Real-time like the unit (CPUSchedulingPriority=20) where the OS allows it: at 4x speed
    # a busy machine would otherwise stall the loop past the relay's hold time. The loop's log
    # records are only queued, as `retroguard run` has them (core.logsetup): written on the
    # loop thread, each one was a write to stderr (a terminal or a pipe that can stall) in the
    # middle of the loop. The writer is made inside the real-time section, so it runs one step
    # below the loop, as every other thread of this process.
    with (
        realtime_section(DEMO_LOOP_PRIORITY, "the demo's monitor loop"),
        logging_above(live, terminal) if live is not None else contextlib.nullcontext(),
        logging_off_this_thread(),
    ):
        try:
            result = run_session(
                config,
                clock,
                session=session,
                on_started=on_started,
                on_walk_over=stop_printers,
                await_receipts_s=RECEIPTS_WAIT_S if caregiver else 0.0,
            )
        finally:  # the last lines above the status line, then the status line's last state
            stop_printers()  # when the walk never started or its stop raised
            if status is not None:
                status.stop()
    for stored in load_sessions(config.storage.database)[-1:]:
        r = stored.record
        out.write(
            f"Guided session {r.status}: {minutes(r.done_s)} of its plan minutes done, "
            f"{r.steps} steps measured, {trips_words(r)}.\n"
        )
    print_events(result.events, out)
    if config.mqtt.host:
        out.write(mqtt_outcome(result.events, outbox_depth(config.storage.database), caregiver))
    relay = "closed" if result.relay_closed_at_end else "released"
    out.write(f"\nEnded in {result.final_state.value} with the relay {relay}.\n")
    if not result.ok:
        out.write("DEMO FAILED: expected the fall to trip the relay and leave it released.\n")
        return 1
    return 0


def demo_app(
    config: Config,
    clock: Clock,
    sim: SimulatedHardware,
    wall: FakeWallClock | None = None,
    *,
    courier: SpawnCourier | None = ProcessCourier,
) -> App:
    """The demo's monitor on ``sim``: its events on ``wall`` (the session's too, which
    :func:`run_session` attaches on it; default the demo's, the host's time marked set:
    :func:`tools.demo_speed.demo_wall`),
    and its courier (``courier``: a child process, as ``retroguard run``; tests pass a thread)
    judging that clock as the loop does. Before, the courier asked the host, and in a
    container without network time every caregiver's acknowledgement (a ``closed`` event the
    courier stamps) said "the treadmill's clock was not set" beside the loop's events that
    did not."""
    wall = wall if wall is not None else demo_wall(clock)
    return build_app(
        config,
        clock,
        imu=sim.imu_rig.imu,
        gpio=sim.gpio,
        courier=courier,
        wall=wall,
        courier_wall_synced=wall.synchronized(),
    )
