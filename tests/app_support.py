"""Building the whole monitor on simulated hardware for end-to-end tests."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from core.clock import SimClock
from core.protocol.events import EventType
from core.samples import ImuSample
from core.wallclock import SystemWallClock, WallClock
from firmware.app import SIMULATED_COURIER_START_S, App, build_app
from firmware.config import Config, MqttConfig, SafetyConfig, StorageConfig
from firmware.courier.service import Courier
from firmware.detection.base import NO_DETECTIONS, Detection, DetectionKind, Detector
from firmware.link.endpoint import CourierLink
from firmware.link.supervisor import SpawnCourier, ThreadCourier
from firmware.monitor import Monitor
from firmware.session.runner import SessionRunner, detach_session
from hal.config import ImuConfig
from sim.backends import SimulatedHardware, simulated_hardware
from sim.motion import Vector6
from sim.relay_hardware import ContactSense, SimulatedButton

RATE = 200.0
PERIOD = 1.0 / RATE
WAIT = 30.0
"""Upper bound for any wait on the courier: a net against hangs, not a timing."""


class Standing:
    """Upright and still, with the sensor noise a real MPU-6050 always shows."""

    duration = 1e9

    def __init__(self, seed: int = 1) -> None:
        self._random = random.Random(seed)

    def at(self, t: float) -> Vector6:
        g = self._random.gauss
        return (g(0, 0.01), g(0, 0.01), 1.0 + g(0, 0.01), g(0, 0.3), g(0, 0.3), g(0, 0.3))


class Frozen:
    """A sensor stuck on one reading: identical samples, which real noise never gives."""

    duration = 1e9

    def at(self, t: float) -> Vector6:
        return (0.01, 0.02, 0.98, 0.5, -0.25, 0.125)


class TripAt:
    """A detector that decides 'stumble' on the first sample at or after ``t``."""

    def __init__(self, t: float, kind: DetectionKind = DetectionKind.STUMBLE) -> None:
        self.t = t
        self.kind = kind
        self.fired_at: float | None = None

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        if self.fired_at is None and sample.t >= self.t:
            self.fired_at = sample.t
            return (Detection(self.kind, sample.t, "test trip", {"tilt_deg": 40.0}),)
        return NO_DETECTIONS

    def reset(self) -> None:
        self.fired_at = None


class TripsAt:
    """A detector that decides 'stumble' on the first sample at or after each of ``times``
    (a second trip after the walker re-armed, say)."""

    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        if self.times and sample.t >= self.times[0]:
            self.times.pop(0)
            return (Detection(DetectionKind.STUMBLE, sample.t, "test trip", {"tilt_deg": 40.0}),)
        return NO_DETECTIONS

    def reset(self) -> None:
        pass


class TripOnDemand:
    """A detector that decides 'fall' on the next sample once ``trip`` is set (then clears it)."""

    def __init__(self) -> None:
        self.trip = False

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        if self.trip:
            self.trip = False
            return [Detection(DetectionKind.FALL, sample.t, "test fall", {"peak_g": 3.0})]
        return NO_DETECTIONS

    def reset(self) -> None:
        self.trip = False


class Explodes:
    """A detector with a bug that shows after ``t`` seconds."""

    def __init__(self, t: float) -> None:
        self.t = t

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        if sample.t >= self.t:
            raise ZeroDivisionError("bug in detector")
        return NO_DETECTIONS

    def reset(self) -> None:
        pass


@dataclasses.dataclass
class Heard:
    """A speaker (the session's voice) that keeps what it was asked to say and to withdraw:
    the words a walker would hear, without espeak-ng or a sound card."""

    said: list[str] = dataclasses.field(default_factory=list)
    withdrawn: list[str] = dataclasses.field(default_factory=list)

    def say(self, text: str) -> None:
        self.said.append(text)

    def withdraw(self, text: str) -> None:
        self.withdrawn.append(text)

    def close(self) -> None: ...


def make_config(
    tmp_path: Path,
    mqtt: MqttConfig | None = None,
    imu: ImuConfig | None = None,
    *,
    worn_check: bool = False,
    safety: SafetyConfig | None = None,
    **gpio: Any,
) -> Config:
    """The monitor's defaults on simulated hardware, storage in ``tmp_path``.

    ``worn_check`` is off unless a test asks for it: the sensor-worn check needs a few
    seconds of a body before the first arming, and these rigs arm 1 s after the start
    to test other things (tests/test_worn.py tests the check itself, end to end).
    ``safety`` replaces the whole safety section (its ``worn_check`` then rules)."""
    config = Config()
    return dataclasses.replace(
        config,
        imu=imu or config.imu,
        gpio=dataclasses.replace(config.gpio, **gpio),
        safety=safety if safety is not None else SafetyConfig(worn_check=worn_check),
        storage=StorageConfig(database=str(tmp_path / "events.db")),
        mqtt=mqtt or MqttConfig(),
    )


STALLED_ITERATIONS = 10_000
"""Loop iterations in a row that leave the simulated clock where it was before a run is
called stuck. A working loop waits (for a pulse, a poll period, a read timeout) in nearly
every iteration, and only the simulated clock's sleeps move it: an iteration that waits for
nothing never reaches ``until``, and without this bound the test would loop until pytest's
timeout (mutation review, session 24: P13, P16, P20 in firmware/pacing.py)."""


def run_monitor(monitor: Monitor, clock: SimClock, seconds: float) -> None:
    """Run ``monitor`` for ``seconds`` of simulated time, failing fast if the time stops.

    ``Monitor.run(until=...)`` loops until the clock gets there, which on a
    :class:`SimClock` happens only if the loop waits; a loop that spins without waiting
    (polling with no timeout, waiting on a closed line, an edge target already reached) is
    stopped after :data:`STALLED_ITERATIONS` iterations at the same instant and reported as
    an assertion naming the instant and the pacing, in seconds rather than pytest's timeout."""
    stop = threading.Event()
    last = [clock.monotonic(), 0]

    def watch(monitor: Monitor) -> None:
        now = clock.monotonic()
        if now != last[0]:
            last[0], last[1] = now, 0
            return
        last[1] += 1
        if last[1] >= STALLED_ITERATIONS:
            stop.set()

    monitor.on_iteration.append(watch)
    try:
        monitor.run(stop=stop, until=clock.monotonic() + seconds)
    finally:
        monitor.on_iteration.remove(watch)
    if stop.is_set():
        raise AssertionError(
            f"the monitor loop stalled: {STALLED_ITERATIONS} iterations in a row at simulated "
            f"t={last[0]:.6f} s without the clock advancing (pacing mode "
            f"{monitor.pacing.mode!r}, {type(monitor.pacing).__name__}): an iteration that "
            "never waits, so the run would never reach its end"
        )


class Rig:
    """The app on a SimClock, with a finger on the button and a way to run the loop."""

    def __init__(self, app: App, clock: SimClock, sim: SimulatedHardware) -> None:
        self.app = app
        self.clock = clock
        self.sim_imu = sim.imu_rig
        """The simulated bus and chip under the driver, for fault injection."""
        assert sim.gpio.button_sim is not None and sim.gpio.hardware is not None
        self.button: SimulatedButton = sim.gpio.button_sim
        self.hardware = sim.gpio.hardware
        self.sense: ContactSense | None = sim.gpio.contact_sense
        """The wire reading the contact back (None with ``relay_sense_wired=False``)."""
        self.help_button: SimulatedButton | None = sim.gpio.help_button_sim
        """A finger on the optional help button (``help_button_wired=True``)."""
        app.monitor.on_iteration.append(lambda monitor: self._poll_fingers())

    def _poll_fingers(self) -> None:
        self.button.poll()
        if self.help_button is not None:
            self.help_button.poll()

    @property
    def state(self) -> str:
        return self.app.controller.state.value

    def run_for(self, seconds: float) -> None:
        """Run the loop for ``seconds`` of simulated time (:func:`run_monitor`: bounded)."""
        run_monitor(self.app.monitor, self.clock, seconds)

    def press_reset(self, hold: float = 0.5) -> None:
        """A person presses reset now and lets go ``hold`` seconds later (past the chirp)."""
        now = self.clock.monotonic()
        self.button.press_at(now, now + hold)
        self.run_for(hold + 0.05)

    def events(self) -> list[EventType]:
        return [s.event.type for s in self.app.stored_events()]

    @property
    def courier(self) -> Courier:
        """The in-process courier serving this rig (it runs on a thread here)."""
        supervisor = self.app.supervisor
        assert supervisor is not None
        deadline = time.monotonic() + WAIT
        idle = threading.Event()  # never set: a bounded wait between looks at the supervisor
        while time.monotonic() < deadline:
            handle = supervisor.current
            if not isinstance(handle, ThreadCourier):
                idle.wait(0.01)
            elif handle.ready.wait(0.01):
                assert handle.courier is not None
                return handle.courier
        raise AssertionError(f"no courier started in {WAIT:.0f} s")


def pump_link_until(link: CourierLink, done: Any, timeout: float = WAIT) -> bool:
    """Poll the link as the loop would until ``done()``: waits on its socket, never a sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        link.poll()
        if done():
            return True
        sock = link._sock
        select.select([sock] if sock is not None else [], [], [], 0.02)
    return False


class SyncedHostClock(SystemWallClock):
    """This host's wall clock, said synchronised: a rig's events read the time as they always
    did, and are not flagged "clock not set" on a machine whose NTP is not (a container, CI)."""

    def synchronized(self) -> bool:
        return True


_open_rigs: list[Rig] = []


def close_open_rigs() -> None:
    """Close every rig made so far (relay released, event worker joined).

    A session still attached is detached first: ``app.close()`` knows nothing of the runner's
    threads (its gait meter, voice, control socket), and a test that ends without
    :func:`detach_session` (a failure, or nothing left to check) left its ``retroguard-gait``
    thread running on the pytest worker, where a later test counted it as its own."""
    while _open_rigs:
        rig = _open_rigs.pop()
        app = rig.app
        for runner in [h for h in app.monitor.on_iteration if isinstance(h, SessionRunner)]:
            with contextlib.suppress(Exception):
                detach_session(app, runner)
        with contextlib.suppress(Exception):  # a test may have closed it already
            app.close()


@pytest.fixture
def close_rigs() -> Iterator[None]:
    """Close every rig a test made (the ``mosquitto`` fixture closes them earlier, while
    their broker still runs)."""
    yield
    close_open_rigs()


def make_rig(
    tmp_path: Path,
    motion: Any = None,
    detector: Detector | None = None,
    extra: Sequence[Any] = (),
    mqtt: MqttConfig | None = None,
    courier: SpawnCourier = ThreadCourier,
    imu: ImuConfig | None = None,
    worn_check: bool = False,
    safety: SafetyConfig | None = None,
    wall: Callable[[SimClock], WallClock] | None = None,
    host_wall: bool = False,
    **gpio: Any,
) -> Rig:
    """``wall``: the wall clock the events are stamped with, made on the rig's clock
    (default: this host's, said synchronised whatever its NTP, so a test's events do not
    depend on the machine it runs on). ``host_wall``: none given, as ``retroguard run``
    has it (the host's, its "synchronised" read by the app's
    :class:`~core.wallclock.SyncWatch`)."""
    clock = SimClock()
    config = make_config(tmp_path, mqtt, imu, worn_check=worn_check, safety=safety, **gpio)
    sim = simulated_hardware(
        config.imu, config.gpio, clock, motion if motion is not None else Standing()
    )
    app = build_app(
        config,
        clock,
        imu=sim.imu_rig.imu,
        gpio=sim.gpio,
        detector=detector,
        courier=courier,
        wall=None if host_wall else wall(clock) if wall is not None else SyncedHostClock(),
    )
    app.start()
    rig = Rig(app, clock, sim)
    _open_rigs.append(rig)
    # The courier has opened the database and said how storage is: a reset press is judged
    # on what it said, not on how fast a thread started. The app's own net for a starting
    # courier, not WAIT: in a full suite beside a mutation run, a courier's first word once took
    # over 30 s (load average 6.6).
    assert pump_link_until(
        app.link, lambda: app.link.storage_ok is not None, timeout=SIMULATED_COURIER_START_S
    )
    return rig


def armed_rig(tmp_path: Path, **kwargs: Any) -> Rig:
    """A rig run to STANDBY (nothing closed the relay before the reset), then armed by a
    press: ARMED with the contact closed."""
    rig = make_rig(tmp_path, **kwargs)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    assert not rig.hardware.contact_closed(), "nothing may close the relay before a reset"
    rig.press_reset()
    assert rig.state == "ARMED"
    assert rig.hardware.contact_closed()
    return rig
