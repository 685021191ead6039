"""Assembling the monitor from config: the only place backends are chosen.

:func:`build_app` picks the HAL backends named in the config once, at
start-up, and wires IMU → detector → safety controller → courier link, and
the supervisor that keeps a courier process (storage, MQTT) running beside
the loop. The same function builds the real monitor (``retroguard run``), the
demo and the end-to-end tests, so what is tested is what runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

from core.clock import Clock, RealClock, SimClock
from core.logsetup import logging_off_this_thread
from core.mounting import Mounting, up_vector
from core.protocol.messages import DeviceHealth, DeviceState, SilenceResult
from core.protocol.payloads import wall_now
from core.wallclock import SyncWatch, WallClock, WallStamper
from firmware.config import Config
from firmware.detection.base import Detector
from firmware.detection.factory import build_detector
from firmware.link import messages
from firmware.link.endpoint import CourierLink
from firmware.link.supervisor import CourierSupervisor, ProcessCourier, SpawnCourier
from firmware.monitor import Monitor
from firmware.pacing import open_pacing
from firmware.preflight import BENCH_WARNING, WORN_CHECK_OFF_WARNING
from firmware.safety import SafetyController, SensorLimits, SoundingAlarm
from firmware.status_light import StatusLight
from firmware.watchdog import ServiceWatchdog
from hal.buzzer_patterns import is_safety_signal
from hal.gpio_factory import GpioDevices, open_gpio
from hal.imu_factory import open_imu
from hal.interfaces import Buzzer, Imu

if TYPE_CHECKING:
    from firmware.storage.events import StoredEvent

log = logging.getLogger(__name__)

_RANGE_TOLERANCE = 1.001
"""Full-scale readings are legal (saturation); only beyond full scale is garbage."""


@dataclass
class App:
    config: Config
    clock: Clock
    imu: Imu
    gpio: GpioDevices
    controller: SafetyController
    monitor: Monitor
    link: CourierLink
    """The loop's end of the link to the courier (storage and network)."""
    supervisor: CourierSupervisor | None
    """Keeps a courier running; None when the app was built without one (tests of the loop)."""
    status_light: StatusLight | None = None
    """Drives the status LED from the loop (sessions tell it which interval runs)."""
    wall: WallClock | None = None
    """The wall clock the loop stamps with (a guided session's records too: attach_session):
    the one given to :func:`build_app`, else :attr:`sync_watch`."""
    sync_watch: SyncWatch | None = None
    """The host's wall clock, its "synchronised" read off the loop's thread (started and
    stopped with the app); None when build_app was given a wall clock (tests, demos)."""
    started: bool = field(default=False, init=False)
    """:meth:`start` was called: a courier (and the loop's IMU) may have been started. An app
    closed before it (``retroguard run`` whose session could not be attached) started nothing
    and made no record worth a courier: its close hands nothing over."""
    closed: bool = field(default=False, init=False)
    """:meth:`close` has run: a second call returns at once (it would otherwise wait out
    its whole flush on a link that is already closed)."""

    def start(self, *, courier_wait_s: float = 0.0, courier_required: bool = False) -> None:
        """Start the wall clock's watch and the courier, then the loop's IMU.

        ``courier_wait_s``: first wait up to that long for the courier to say how its storage
        is (:meth:`start_scripted`). The wait comes before the IMU starts, so its FIFO does
        not fill meanwhile. If the courier has said nothing by then the monitor starts anyway
        (it refuses arming until the courier speaks), or, with ``courier_required``, raises
        :class:`CourierNotStarted` and starts nothing.

        The watch's thread is made here, on the loop's thread (one step below its priority),
        and its first answer awaited before the start event is stamped with it.
        """
        self.started = True
        if self.sync_watch is not None and not self.sync_watch.start():
            log.warning(
                "whether the wall clock is synchronised is not known yet: "
                "the first events say it is not"
            )
        if self.supervisor is not None:
            self.supervisor.start()
            if courier_wait_s > 0 and not self.link.await_storage_report(courier_wait_s):
                if courier_required:
                    raise CourierNotStarted(
                        f"the courier (storage and network) said nothing in {courier_wait_s:g} s: "
                        "a walk on a simulated clock would outrun it (its reset presses "
                        "refused: alerts cannot be stored)"
                    )
                log.warning("the courier said nothing in %.0f s: starting anyway", courier_wait_s)
        self.monitor.start()

    def start_scripted(self) -> None:
        """:meth:`start` for the scripted demos, whose simulated finger presses reset at set
        loop times: first the courier must have said how its storage is, or the press is
        refused (alerts cannot be stored yet).

        On the host's clock the wait is :data:`COURIER_START_S`; a courier slower than that
        still has the loop's start-up grace, in the same real seconds. A loop on a simulated
        clock outruns real time: it spends the grace, and reaches the presses, within a
        fraction of a real second, so it starts only once the courier has spoken, however
        long that takes on a busy host (:data:`SIMULATED_COURIER_START_S` is a net against
        a courier that cannot start at all: :class:`CourierNotStarted`, nothing started).
        """
        if isinstance(self.clock, SimClock):
            self.start(courier_wait_s=SIMULATED_COURIER_START_S, courier_required=True)
        else:
            self.start(courier_wait_s=COURIER_START_S)

    def close(self, drain_timeout: float = 2.0, await_receipts_s: float = 0.0) -> None:
        """Stop safely: relay released first, then hand every record to the courier.

        The courier then has up to ``drain_timeout`` for the broker to take
        what is queued, and with ``await_receipts_s`` (the demo, whose caregiver
        service is running) up to that long more for a consumer's receipts of the
        alerts; whatever is left stays in the outbox for the next start.
        Every step is attempted even when one before it raised (an IMU that fails to
        close must not keep the records from the courier or the courier running), and
        an error is raised at the end. Once the relay has been released, a second call
        returns at once.

        An app never started (:attr:`started`) is closed without a stop event and without the
        hand-over: no courier was started to take it. The flush used to wait out its whole
        timeout (12 s) for none before ``retroguard run`` could say why it stopped (a session
        that could not be attached), and log the stop of a monitor that never started as a
        record lost.
        """
        if self.closed:
            return
        with contextlib.ExitStack() as steps:  # run last-registered first: so, in reverse
            steps.callback(self.gpio.close)
            if self.sync_watch is not None:
                steps.callback(self.sync_watch.stop)
            if self.supervisor is not None:
                steps.callback(
                    self.supervisor.stop, drain_timeout + await_receipts_s + COURIER_EXIT_S
                )
                steps.callback(self.link.close)
                if self.started:
                    steps.callback(self.link.goodbye, "monitor stopped", await_receipts_s)
                    steps.callback(self._hand_over_records, drain_timeout)
            steps.callback(self.imu.close)
            steps.callback(self.monitor.pacing.close)
            steps.callback(self._release_relay)
            if self.started:
                self.controller.stop(self.clock.monotonic())

    def _release_relay(self) -> None:
        self.gpio.relay.release()
        self.closed = True  # released: what is left may be skipped by a second call

    def _hand_over_records(self, drain_timeout: float) -> None:
        disk_ok = self.link.storage_ok is not False
        if not self.link.flush(drain_timeout + LINK_FLUSH_S, on_disk=disk_ok):
            log.error(
                "%d records not confirmed on disk by the courier at shutdown", self.link.pending
            )
        elif self.link.pending:
            log.error(
                "%d records only in the courier's memory at shutdown (its disk refuses "
                "writes: %s): published, not on disk",
                self.link.pending,
                self.link.storage_detail,
            )

    def stored_events(self, device_id: str | None = None) -> list[StoredEvent]:
        """Every event the courier has stored on disk so far, for the demo and tests.

        It reads SQLite in this process: never call it from the monitor loop.
        """
        from firmware.storage.events import EventStore

        if not self.closed:  # after close the link is gone: what reached the disk is there
            self.link.flush(LINK_FLUSH_S)
        with EventStore(self.config.storage.database) as store:
            return store.events(device_id)


COURIER_START_S = 30.0
"""How long the scripted demos on the host's clock wait for a starting courier
(:meth:`App.start_scripted`)."""
SIMULATED_COURIER_START_S = 300.0
"""How long the scripted demos on a simulated clock wait for a starting courier before they
give up (:class:`CourierNotStarted`): a net against a courier that cannot start, not a
timing. On a busy host a courier took over 30 s to say its first word."""
LINK_FLUSH_S = 10.0
"""How long the records of the last moments may take to reach the courier's disk at shutdown."""
COURIER_EXIT_S = 5.0


class CourierNotStarted(RuntimeError):
    """A scripted run on a simulated clock found no courier to store its alerts (nothing of
    the monitor was started)."""


def _stamp(stamper: WallStamper) -> tuple[str, bool]:
    """A state change's wall time and whether the clock was not set (``wall_unsynced``), from
    the loop's stamper: no ``adjtimex`` per change (safety rule 3)."""
    stamp = stamper.stamp()
    return stamp.wall_time, not stamp.synced


def build_app(
    config: Config,
    clock: Clock,
    *,
    imu: Imu | None = None,
    gpio: GpioDevices | None = None,
    detector: Detector | None = None,
    courier: SpawnCourier | None = ProcessCourier,
    wall: WallClock | None = None,
    courier_wall_synced: bool | None = None,
) -> App:
    """Build the whole monitor.

    ``imu`` and ``gpio`` replace the backends the config names (the demo and
    tests pass simulated ones whose models they drive); ``detector`` replaces
    the configured one (tests inject failing detectors); ``courier`` says how
    the courier runs: a child process (``retroguard run``, the demo), a thread
    (:class:`~firmware.link.supervisor.ThreadCourier`, fast tests) or not at
    all (None: records wait in the link). ``wall``: the wall clock events are stamped with,
    and whether it was synchronised (default the host's, watched off the loop's thread:
    :class:`~core.wallclock.SyncWatch`; tests and the demo pass a
    :class:`~core.wallclock.FakeWallClock`). ``courier_wall_synced``: what the courier's own
    events (a caregiver's ``closed``, its faults) and retained stages say of the clock instead
    of asking the host (:class:`~core.wallclock.SaidWallClock`): the demo passes its simulated
    clock's "set", so its courier judges as its loop does in a container without network
    time. None (``retroguard run``): the courier asks the host, as the loop does.
    """
    # No database here: the courier opens it, and whatever state it is in (damaged, from a
    # newer release, on a full disk) the monitor starts and protects the walker.
    if imu is None:
        imu = open_imu(config.imu, clock)
    if gpio is None:
        gpio = open_gpio(config.gpio, clock)
    if gpio.relay_sense is None:
        log.warning(
            "relay contact feedback not wired (gpio.relay_sense_wired = false): a welded relay "
            "contact or a latch that lets go on its own will go unreported"
        )
    buzzer = gpio.buzzer
    link = CourierLink(clock.monotonic)
    hello = messages.Hello(config, os.getpid(), wall_now(), wall_synced=courier_wall_synced)
    link.hello(messages.encode(hello))
    if detector is None:
        up = up_vector(Mounting.parse(config.imu.mounting))
        detector = build_detector(config.detector, imu.sample_rate_hz, up=up)
    # The host's wall clock, its "synchronised" asked by a thread of its own: under the unit
    # that is a file's stat (adjtimex refused), a filesystem call not made on the loop's thread.
    sync_watch = SyncWatch() if wall is None else None
    if sync_watch is not None:
        wall = sync_watch
    # the loop's wall stamper, on its thread: its events' times and its state changes' (the
    # retained state message's wall_time and whether the clock was set)
    stamper = WallStamper(wall, clock.monotonic)
    controller = SafetyController(
        relay=gpio.relay,
        buzzer=buzzer,
        detector=detector,
        emit=link.submit,
        config=config.safety,
        limits=SensorLimits(
            accel_g=config.imu.accel_range_g * _RANGE_TOLERANCE,
            gyro_dps=config.imu.gyro_range_dps * _RANGE_TOLERANCE,
        ),
        sample_rate_hz=imu.sample_rate_hz,
        device_id=config.device.id,
        on_state=lambda state, reason, worn, fault: link.report_state(
            state, reason, *_stamp(stamper), worn=worn, fault=fault
        ),
        start_reason="monitor started"
        + (f"; {BENCH_WARNING}" if config.gpio.relay_drive == "static" else "")
        + ("" if config.safety.worn_check else f"; {WORN_CHECK_OFF_WARNING}"),
        heartbeat_hold_s=(
            config.gpio.heartbeat_hold_s if config.gpio.relay_drive == "heartbeat" else None
        ),
        edge_clock=clock.monotonic,
        arm_gate=link.storage_problem,
        wall=stamper,
        # The button's level at an arming's first edge: up, the latch did not close (a FAULT
        # at once; the contact read back would say so only after its debounce).
        reset_held=lambda: gpio.button.is_pressed,
    )
    read_timeout_s = config.safety.sample_timeout_s / 4
    monitor = Monitor(
        imu=imu,
        relay=gpio.relay,
        button=gpio.button,
        controller=controller,
        clock=clock,
        read_timeout_s=read_timeout_s,
        relay_sense=gpio.relay_sense,
        pacing=open_pacing(config.imu, config.gpio, gpio.factory, clock, read_timeout_s),
        help_button=gpio.help_button,
        press_gap_s=config.session.double_press_gap_s,
    )

    def take_requests(monitor: Monitor) -> None:
        if not link.requests_arrived:  # the usual iteration: one int looked at
            return
        link.requests_arrived = 0
        for asked in link.take_silences():  # taken whatever sounds: never kept for later
            result = silence_alarm(
                buzzer, controller.sounding, event_id=asked.event_id, incident=asked.incident
            )
            link.answer_silence(asked.request_id, result)  # queued for the courier: no wait
        if link.take_chirp():  # a test alarm: below every safety pattern, never cuts one
            buzzer.play("chirp", monitor.clock.monotonic())
        for incident in link.take_closed_incidents():
            controller.on_incident_closed(incident, monitor.clock.monotonic())
        still_open = link.take_open_incident()
        if still_open is not None:
            controller.carry_on_incident(still_open)

    light = StatusLight(gpio.status_led, controller)
    monitor.on_iteration += [link.poll, take_requests, light, HealthReports(monitor, link, clock)]
    return App(
        config=config,
        clock=clock,
        imu=imu,
        gpio=gpio,
        controller=controller,
        monitor=monitor,
        link=link,
        supervisor=CourierSupervisor(link, courier) if courier is not None else None,
        status_light=light,
        wall=wall,
        sync_watch=sync_watch,
    )


def silence_alarm(
    buzzer: Buzzer,
    sounding: SoundingAlarm | None = None,
    *,
    event_id: str | None = None,
    incident: str | None = None,
) -> SilenceResult:
    """A caregiver's ``silence`` (MQTT ``cmd/silence``), on the loop: stop the alarm or safety
    signal sounding (:func:`~hal.buzzer_patterns.is_safety_signal`) if it is the one the
    silence names, and say what it came to (the command's reply).

    ``sounding``: what the controller's pattern sounds for
    (:attr:`firmware.safety.SafetyController.sounding`). ``event_id`` / ``incident``: the
    alarm the caregiver pressed Silence for; each one given must match the alarm sounding, or
    it is kept (``not_that_alarm``). A silence that reached the device late — a slow network,
    a sender's client that queued it while offline — used to stop whatever sounded then: a
    second fall after the walker re-armed, which no caregiver had seen, lost the buzzer that
    calls people nearby. Blank (neither named: Home Assistant's static button, older
    clients): the alarm sounding, as before.

    A guided session's cue sounding when no alarm is (the turn's beeps to a walker walking
    backward, blind) is the walker's, and the runner does not play a stopped cue again: it
    is left playing (``cue_left_playing``). The request is consumed either way (the caller
    took it), so a silence that reaches the loop with no alarm sounding cannot silence a
    later trip's alarm. It only stops the buzzer: it never arms, plays nothing, and touches
    no relay. Two property reads and a log line; no wait."""
    playing = buzzer.pattern
    if not is_safety_signal(playing):
        if playing is not None:
            log.info("caregiver's silence: no alarm sounding; %s left playing", playing)
            return SilenceResult(silence="cue_left_playing", pattern=playing)
        log.info("caregiver's silence: nothing was sounding")
        return SilenceResult(silence="nothing_sounding")
    owner = sounding if sounding is not None and sounding.pattern == playing else None
    event = owner.event if owner is not None else None
    owned_by = owner.incident if owner is not None else None
    if (event_id is not None and event_id != event) or (
        incident is not None and incident != owned_by
    ):
        log.warning(
            "caregiver's silence for %s: the %s sounding is another alarm (%s): kept",
            _naming(event_id, incident),
            playing,
            _naming(event, owned_by),
        )
        return SilenceResult(
            silence="not_that_alarm", pattern=playing, event_id=event, incident=owned_by
        )
    buzzer.stop()
    log.info("caregiver's silence: %s stopped", playing)
    return SilenceResult(silence="stopped", pattern=playing, event_id=event, incident=owned_by)


def _naming(event: str | None, incident: str | None) -> str:
    """``event …, incident …`` for the log, naming only what is known (it read "incident
    None" for a silence that named an event alone)."""
    named = [
        f"{label} {value}" for label, value in (("event", event), ("incident", incident)) if value
    ]
    return ", ".join(named) or "no event"


class HealthReports:
    """Once a second, the loop's figures to the courier: telemetry and self-test read them.

    An ``on_iteration`` hook: it reads counters the loop itself keeps and
    hands one small message to the link, so it costs the loop microseconds.
    """

    INTERVAL_S = 1.0

    def __init__(self, monitor: Monitor, link: CourierLink, clock: Clock) -> None:
        self._monitor = monitor
        self._link = link
        self._clock = clock
        self._last = (clock.monotonic(), monitor.stats.samples)

    def __call__(self, monitor: Monitor) -> None:
        now = self._clock.monotonic()
        then, before = self._last
        if now - then < self.INTERVAL_S:
            return
        samples = monitor.stats.samples
        self._last = (now, samples)
        controller = monitor.controller
        health = DeviceHealth(
            state=DeviceState(controller.state.value),
            sample_rate_hz=round((samples - before) / (now - then), 1),
            imu_ok=monitor.healthy,
            imu_errors=monitor.stats.imu_errors,
            bus_errors=controller.bus_errors,
            belt_enabled=controller.contact_closed,
        )
        checks = {
            "imu": (
                monitor.healthy,
                f"{controller.samples_seen} samples; state {controller.state.value}",
            ),
            "loop": _loop_check(monitor),
            "relay-contact": _contact_check(monitor),
            "imu-pacing": monitor.pacing.check(),
            "sensor-worn": _worn_check(monitor),
        }
        self._link.report_health(health, checks)


def _loop_check(monitor: Monitor) -> tuple[bool, str]:
    """The self-test's line for the monitor loop, in words a caregiver reads on "Check this
    treadmill" (before: the dataclass's repr, ``LoopStats(iterations=455, samples=910, …)``)."""
    stats = monitor.stats
    if stats.iterations == 0:
        return False, "the monitor loop has not run yet"
    return True, (
        f"the monitor loop has run {stats.iterations} times and read {stats.samples} samples "
        f"({stats.empty_reads} reads found none, {stats.imu_errors} failed)"
    )


def _worn_check(monitor: Monitor) -> tuple[bool, str]:
    """The self-test's line for the sensor-worn check: what it reads now (docs/safety.md).

    Not worn is not a failure of the device (no one may be on the treadmill), and a check
    switched off is a choice made in the config (a bench), said in words like an unwired
    contact feedback: the line is always OK."""
    worn = monitor.controller.worn
    if worn is None:
        return True, "off (safety.worn_check = false): a sensor not worn can arm the belt"
    if not worn.ready:
        return True, "measuring the body signal"
    figure = f"{worn.rotation_dps:.3f} deg/s, a body shows {worn.threshold_dps:g} or more"
    if worn.worn:
        return True, f"worn: body signal {figure}"
    return True, f"not worn ({figure}): arming is refused until it is"


def _contact_check(monitor: Monitor) -> tuple[bool, str]:
    """The self-test's line for the relay's contact, read back."""
    controller = monitor.controller
    if monitor.relay_sense is None:
        return True, (
            "not read back (gpio.relay_sense_wired = false): a dropped latch or a welded "
            "contact goes unseen"
        )
    closed = controller.contact_closed
    reading = "unknown" if closed is None else "closed" if closed else "open"
    fault = controller.contact_fault
    if fault is not None:
        return False, f"{fault.value}: reads {reading} in {controller.state.value}"
    return True, f"reads {reading} in {controller.state.value}, as it should"


GIL_SWITCH_INTERVAL_S = 0.001
"""How long another Python thread may hold the GIL before the loop gets a turn (default 5 ms).

Storage and network live in the courier process; the threads left beside the
loop (the courier supervisor, the session control socket, the demo's status
line) mostly sleep, and a short switch interval bounds what any of them costs.
"""


def favour_realtime_thread() -> None:
    """Process-wide settings for running the monitor loop (``run`` and ``demo``)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def release_startup_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``), once, after
    start-up and before the loop.

    Starting the monitor imports some 270 modules, reads the config and builds everything;
    much of what that allocates on the way is freed again but stays resident in the heap
    (about 1.3 MB of the 30 the monitor may use): the loop's steady state reuses little of it.
    Where the C library has no ``malloc_trim`` (musl), nothing is done."""
    import ctypes  # loaded already (smbus2): no new module

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def run_forever(config: Config) -> int:
    """``retroguard run``: the monitor on the configured hardware until SIGTERM/SIGINT."""
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Nothing that takes a lock the loop thread may hold: the handler runs on that thread,
        # between two of its bytecodes. A log call here deadlocked the process when the signal
        # came while the loop was queuing a record (the log queue's lock is not reentrant):
        # it hung, and every later SIGTERM only hung again. stop is never waited on by the loop.
        received.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from firmware.session.runner import attach_session, detach_session

    favour_realtime_thread()
    app = build_app(config, RealClock())
    watchdog = ServiceWatchdog.from_env()
    app.monitor.on_iteration.append(watchdog)
    # Guided sessions: press patterns on the reset button, and `retroguard session ...`
    # over a local Unix socket. Neither can arm; see firmware/session/runner.py.
    try:
        runner = attach_session(app, control_socket="")
    except BaseException:  # e.g. the control socket cannot be made: nothing was started
        app.close()
        raise
    # The loop logs; stderr (journald's socket) may block: the loop only queues.
    with logging_off_this_thread():
        try:
            app.start()
            release_startup_memory()
            app.monitor.run(stop=stop)
        finally:
            # Released first, whatever follows: the session's last records and their flush
            # may take seconds (a static drive would hold the belt that long), and each step
            # below may raise. A session whose stop raised used to skip app.close() too: the
            # records of the last moments never reached the courier, the courier was left
            # running, and the relay was released only by the process dying.
            app.gpio.relay.release()
            if received:
                log.info("signal %d: stopping", received[0])
            watchdog.stopping("stopping: relay released")
            try:
                try:
                    runner.stop(app.clock.monotonic())
                finally:
                    # A raising stop used to skip this: the gait thread, the voice and the
                    # control socket (its file too) were left behind.
                    detach_session(app, runner)
            finally:
                app.close()
    return 0
