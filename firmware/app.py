"""Assembling the monitor from config: the only place backends are chosen.

:func:`build_app` picks the HAL backends named in the config once, at
start-up, and wires IMU → detector → safety controller → event dispatcher →
store. The same function builds the real monitor (``retroguard run``), the
demo and the end-to-end tests, so what is tested is what runs.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

from core.clock import Clock, RealClock
from core.mounting import Mounting, up_vector
from core.protocol.messages import DeviceHealth, DeviceState
from firmware.config import Config
from firmware.detection.base import Detector
from firmware.detection.factory import build_detector
from firmware.monitor import Monitor
from firmware.safety import SafetyController, SensorLimits
from firmware.sinks import EventDispatcher, EventSink, LogSink, StoreSink
from firmware.storage.events import EventStore
from firmware.watchdog import ServiceWatchdog
from hal.gpio_factory import GpioDevices, open_gpio
from hal.imu_factory import open_imu
from hal.interfaces import Imu

if TYPE_CHECKING:
    from firmware.mqtt import MqttReporter

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
    dispatcher: EventDispatcher
    store: EventStore
    extra_sinks: list[EventSink] = field(default_factory=list)
    reporter: MqttReporter | None = None
    """Caregiver reporting; None when no broker is configured (events still stored)."""

    def start(self) -> None:
        self.dispatcher.start()
        if self.reporter is not None:
            self.reporter.start()
        self.monitor.start()

    def close(self, drain_timeout: float = 2.0) -> None:
        """Stop safely: relay released first, then drain events to disk and broker.

        Waits up to ``drain_timeout`` for the broker to acknowledge what is
        queued; whatever is left stays in the outbox for the next start.
        """
        now = self.clock.monotonic()
        try:
            self.controller.stop(now)
        finally:
            self.gpio.relay.release()
            self.imu.close()
            self.dispatcher.close()
            if self.reporter is not None:
                self.reporter.wait_drained(drain_timeout)
                self.reporter.close()
            self.store.close()
            self.gpio.close()


def build_app(
    config: Config,
    clock: Clock,
    *,
    imu: Imu | None = None,
    gpio: GpioDevices | None = None,
    extra_sinks: Sequence[EventSink] = (),
    detector: Detector | None = None,
) -> App:
    """Build the whole monitor.

    ``imu`` and ``gpio`` replace the backends the config names (the demo and
    tests pass simulated ones whose models they drive); ``detector`` replaces
    the configured one (tests inject failing detectors).
    """
    # The database first: one it must refuse (written by a newer release) stops the start
    # before any hardware is opened.
    store = EventStore(config.storage.database)
    if imu is None:
        imu = open_imu(config.imu, clock)
    if gpio is None:
        gpio = open_gpio(config.gpio, clock)
    reporter: MqttReporter | None = None
    persist: EventSink = StoreSink(store)
    if config.mqtt.host:
        from firmware.mqtt import MqttReporter  # paho only when a broker is configured

        reporter = MqttReporter(
            config.mqtt,
            device_id=config.device.id,
            device_name=config.device.name,
            database=config.storage.database,
        )
        persist = reporter.sink  # stores and queues in one transaction
    dispatcher = EventDispatcher([persist, LogSink(), *extra_sinks])
    if detector is None:
        up = up_vector(Mounting.parse(config.imu.mounting))
        detector = build_detector(config.detector, imu.sample_rate_hz, up=up)
    controller = SafetyController(
        relay=gpio.relay,
        buzzer=gpio.buzzer,
        detector=detector,
        emit=dispatcher.submit,
        config=config.safety,
        limits=SensorLimits(
            accel_g=config.imu.accel_range_g * _RANGE_TOLERANCE,
            gyro_dps=config.imu.gyro_range_dps * _RANGE_TOLERANCE,
        ),
        sample_rate_hz=imu.sample_rate_hz,
        device_id=config.device.id,
        on_state=reporter.publish_state if reporter is not None else None,
    )
    monitor = Monitor(
        imu=imu,
        relay=gpio.relay,
        button=gpio.button,
        controller=controller,
        clock=clock,
        read_timeout_s=config.safety.sample_timeout_s / 4,
    )
    if reporter is not None:
        _connect_reporter(reporter, monitor, gpio, clock)
    return App(
        config=config,
        clock=clock,
        imu=imu,
        gpio=gpio,
        controller=controller,
        monitor=monitor,
        dispatcher=dispatcher,
        store=store,
        extra_sinks=list(extra_sinks),
        reporter=reporter,
    )


def _connect_reporter(
    reporter: MqttReporter, monitor: Monitor, gpio: GpioDevices, clock: Clock
) -> None:
    """Silence requests reach the buzzer from the loop; figures go out as telemetry.

    The reporter gets read-only views: nothing it holds can arm the relay.
    """
    buzzer = gpio.buzzer

    def apply_silence(_: Monitor) -> None:
        if reporter.silence.take():
            buzzer.stop()

    monitor.on_iteration.append(apply_silence)
    reporter.set_providers(
        telemetry=TelemetryFigures(monitor, clock),
        self_test=lambda: _self_test(monitor, clock),
    )


class TelemetryFigures:
    """Achieved sample rate and IMU health since the previous telemetry message.

    Runs on the publisher thread and only reads counters the loop writes
    (plain ints under the GIL), so it never holds up the loop.
    """

    def __init__(self, monitor: Monitor, clock: Clock) -> None:
        self._monitor = monitor
        self._clock = clock
        self._last = (clock.monotonic(), monitor.stats.samples)

    def __call__(self) -> DeviceHealth:
        now, samples = self._clock.monotonic(), self._monitor.stats.samples
        then, before = self._last
        self._last = (now, samples)
        controller = self._monitor.controller
        return DeviceHealth(
            state=DeviceState(controller.state.value),
            sample_rate_hz=round((samples - before) / (now - then), 1) if now > then else 0.0,
            imu_ok=self._monitor.healthy,
            imu_errors=self._monitor.stats.imu_errors,
            bus_errors=controller.bus_errors,
        )


def _self_test(monitor: Monitor, clock: Clock) -> dict[str, dict[str, object]]:
    controller = monitor.controller
    return {
        "imu": {
            "ok": monitor.healthy,
            "detail": f"{controller.samples_seen} samples; state {controller.state.value}",
        },
        "loop": {"ok": monitor.stats.iterations > 0, "detail": f"{monitor.stats} "},
    }


GIL_SWITCH_INTERVAL_S = 0.001
"""How long another Python thread may hold the GIL before the loop gets a turn (default 5 ms).

The publisher, store and status threads are all Python; a shorter switch
interval bounds how long any of them can delay the real-time thread.
"""


def favour_realtime_thread() -> None:
    """Process-wide settings for running the monitor loop (``run`` and ``demo``)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def run_forever(config: Config) -> int:
    """``retroguard run``: the monitor on the configured hardware until SIGTERM/SIGINT."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
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
    runner = attach_session(app, control_socket="")
    try:
        app.start()
        app.monitor.run(stop=stop)
    finally:
        watchdog.stopping("stopping: relay released")
        runner.stop(app.clock.monotonic())
        detach_session(app, runner)
        app.close()
    return 0
