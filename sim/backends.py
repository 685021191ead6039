"""The simulated hardware as HAL backends: the real drivers on simulated buses and pins.

Registered in ``pyproject.toml`` as the ``simulated`` entry of
``retroguard.imu_backends`` and ``retroguard.gpio_backends``, so a config
with ``backend = "simulated"`` gets them from :func:`hal.imu_factory.open_imu`
and :func:`hal.gpio_factory.open_gpio` without the HAL importing this
package. Tests and the demo call :func:`simulated_hardware` directly to pick
what the simulated walker does and to reach the models for fault injection.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import NamedTuple

from core.clock import Clock
from hal.config import GpioConfig, ImuConfig
from hal.gpio_factory import GpioDevices, open_gpio_on
from hal.mpu6050 import Mpu6050
from sim import scenarios
from sim.i2c_bus import FakeI2cBus
from sim.motion import MotionSource
from sim.mpu6050_sim import SimulatedMpu6050
from sim.pins import ClockedMockFactory
from sim.relay_hardware import (
    ContactSense,
    HeartbeatRelayHardware,
    RelayHardware,
    SimulatedButton,
    StaticRelayHardware,
)

SIM_MAX_PIN_STATES = 100_000
"""History kept per simulated pin: hours of heartbeat would otherwise grow without bound."""
INT_PIN_HISTORY = 2_000
"""Changes the simulated INT pin keeps: 5 s of pulses at 200 Hz."""
HEARTBEAT_PIN_HISTORY = 4_000
"""Changes a heartbeat-driven relay pin keeps: 20 s of edges at 200 Hz. The hold-circuit model
hears every edge as it happens; the history is for tests that look at the last seconds, and
at :data:`SIM_MAX_PIN_STATES` it grew by 20 MB over the first eight minutes of a run."""

RUN_BUS_LOG_SIZE = 256
"""Transactions the ``simulated`` entry point's bus keeps (a monitor run, not a test that reads
the log): the default 10,000 held 1.4 MB in a process whose budget is 30 MB."""

IDLE_SIMULATION_S = 365 * 24 * 3600.0
"""``retroguard run`` on simulated hardware: a walker standing still for a year."""


class SimulatedImuRig(NamedTuple):
    """The simulated IMU with its bus and chip exposed, so tests can inject faults."""

    imu: Mpu6050
    bus: FakeI2cBus
    chip: SimulatedMpu6050


@dataclass(slots=True)
class SimulatedGpio(GpioDevices):
    """The GPIO devices on mock pins, with the circuit outside the Pi modelled."""

    hardware: RelayHardware | None = None
    """The relay's hold circuit and latch (or plain coil, for static drive)."""
    button_sim: SimulatedButton | None = None
    """A finger for the simulated reset button."""
    help_button_sim: SimulatedButton | None = None
    """A finger for the simulated help button (None when ``help_button_wired`` is off)."""
    contact_sense: ContactSense | None = None
    """The wire reading the relay's contact back (None when ``relay_sense_wired`` is off)."""
    imu_int: SimulatedMpu6050 | None = None
    """The simulated chip whose INT drives ``gpio.pins.imu_int`` (None: not wired to one)."""

    def wire_imu_int(self, chip: SimulatedMpu6050, pin: int) -> None:
        """Connect ``chip``'s INT output to GPIO ``pin``, as the wiring guide's U1 INT.

        The pin keeps its last :data:`INT_PIN_HISTORY` changes only: it pulses at the sample
        rate, and a long demo or benchmark would otherwise grow its history (memory the
        firmware on a Pi does not have) by megabytes."""
        int_pin = self.factory.observed_pin(pin)
        int_pin.limit_history(INT_PIN_HISTORY)
        chip.connect_int(int_pin)
        self.imu_int = chip

    def _close_models(self) -> None:
        if self.imu_int is not None:
            self.imu_int.disconnect_int()
        if self.contact_sense is not None:
            self.contact_sense.detach()
        if self.hardware is not None:
            self.hardware.detach()


@dataclass(slots=True)
class SimulatedHardware:
    """Everything the monitor runs on, simulated, with handles for tests."""

    imu_rig: SimulatedImuRig
    gpio: SimulatedGpio


def build_simulated_imu(
    config: ImuConfig,
    clock: Clock,
    motion: MotionSource,
    *,
    seed: int = 0,
    bus_log_size: int = 10_000,
) -> SimulatedImuRig:
    """The real driver on a fake bus with a simulated chip at ``config.address``.

    ``bus_log_size``: transactions the bus keeps in :attr:`FakeI2cBus.log` for tests."""
    chip = SimulatedMpu6050(motion, clock, seed=seed)
    bus = FakeI2cBus({config.address: chip}, seed=seed, log_size=bus_log_size)
    rig = SimulatedImuRig(Mpu6050(bus, config, clock, owns_bus=True), bus, chip)
    _rigs[rig.imu] = rig
    return rig


@dataclass(slots=True)
class _Bench:
    """What the two entry points opened on one clock, so the INT wire can join them."""

    chip: SimulatedMpu6050 | None = None
    gpio: SimulatedGpio | None = None
    int_pin: int = 0


_benches: weakref.WeakKeyDictionary[Clock, _Bench] = weakref.WeakKeyDictionary()
"""One simulated rig per clock: the entry points are called separately (IMU, then GPIO) with
the clock they share, and the chip's INT must reach the pin factory's imu_int pin."""


def _wire_bench(clock: Clock) -> None:
    bench = _benches.get(clock)
    if bench is not None and bench.chip is not None and bench.gpio is not None:
        bench.gpio.wire_imu_int(bench.chip, bench.int_pin)
        del _benches[clock]


def open_simulated_imu(config: ImuConfig, clock: Clock) -> Mpu6050:
    """Entry point ``simulated``: a walker standing still on the belt, for a year."""
    motion = scenarios.scenario(scenarios.Standing(IDLE_SIMULATION_S))
    rig = build_simulated_imu(config, clock, motion, bus_log_size=RUN_BUS_LOG_SIZE)
    _benches.setdefault(clock, _Bench()).chip = rig.chip
    _wire_bench(clock)
    return rig.imu


def simulated_imu_rig(imu: object) -> SimulatedImuRig | None:
    """The bus and chip under a driver the ``simulated`` entry point opened (benchmarks count
    its I2C traffic and time its chip); None for any other IMU."""
    return _rigs.get(imu)


_rigs: weakref.WeakKeyDictionary[object, SimulatedImuRig] = weakref.WeakKeyDictionary()


def open_simulated_gpio(config: GpioConfig, clock: Clock) -> SimulatedGpio:
    """Entry point ``simulated``: mock pins on ``clock`` and a model of the relay circuit.

    If the ``simulated`` IMU was opened on the same clock, its INT is wired to
    ``pins.imu_int`` (either order)."""
    gpio = _open_simulated_gpio(config, clock)
    bench = _benches.setdefault(clock, _Bench())
    bench.gpio, bench.int_pin = gpio, config.pins.imu_int
    _wire_bench(clock)
    return gpio


def _open_simulated_gpio(config: GpioConfig, clock: Clock) -> SimulatedGpio:
    factory = ClockedMockFactory(clock, max_states=SIM_MAX_PIN_STATES)
    devices = open_gpio_on(factory, config, clock)
    pins = config.pins
    # Attach the models after the devices exist: the button's pull-up is
    # configured by its device, and the model reads the levels it finds.
    relay_pin = factory.observed_pin(pins.relay)
    button_pin = factory.observed_pin(pins.reset_button)
    hardware: RelayHardware
    if config.relay_drive == "heartbeat":
        relay_pin.limit_history(HEARTBEAT_PIN_HISTORY)
        hardware = HeartbeatRelayHardware(clock, hold_s=config.heartbeat_hold_s).attach(
            relay_pin,
            button_pin,
            enable_pin=factory.observed_pin(pins.relay_enable),
            button_active_low=config.button_pull_up,
        )
    else:
        hardware = StaticRelayHardware(clock, active_high=config.relay_active_high).attach(
            relay_pin
        )
    sense = None
    if devices.relay_sense is not None:
        sense = ContactSense(clock, hardware).attach(factory.observed_pin(pins.relay_sense))
    return SimulatedGpio(
        relay=devices.relay,
        buzzer=devices.buzzer,
        button=devices.button,
        status_led=devices.status_led,
        factory=factory,
        relay_sense=devices.relay_sense,
        hardware=hardware,
        button_sim=SimulatedButton(button_pin, clock, active_low=config.button_pull_up),
        contact_sense=sense,
        help_button=devices.help_button,
        help_button_sim=(
            SimulatedButton(
                factory.observed_pin(pins.help_button), clock, active_low=config.button_pull_up
            )
            if devices.help_button is not None
            else None
        ),
    )


def simulated_hardware(
    imu_config: ImuConfig,
    gpio_config: GpioConfig,
    clock: Clock,
    motion: MotionSource | None = None,
    *,
    seed: int = 0,
) -> SimulatedHardware:
    """IMU and GPIO on simulated hardware; ``motion`` is what the walker does (default: stands)."""
    if motion is None:
        motion = scenarios.scenario(scenarios.Standing(IDLE_SIMULATION_S))
    rig = build_simulated_imu(imu_config, clock, motion, seed=seed)
    try:
        gpio = _open_simulated_gpio(gpio_config, clock)
    except BaseException:
        rig.imu.close()
        raise
    gpio.wire_imu_int(rig.chip, gpio_config.pins.imu_int)
    return SimulatedHardware(rig, gpio)
