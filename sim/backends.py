"""The simulated hardware as HAL backends: the real drivers on simulated buses and pins.

Registered in ``pyproject.toml`` as the ``simulated`` entry of
``retroguard.imu_backends`` and ``retroguard.gpio_backends``, so a config
with ``backend = "simulated"`` gets them from :func:`hal.imu_factory.open_imu`
and :func:`hal.gpio_factory.open_gpio` without the HAL importing this
package. Tests and the demo call :func:`simulated_hardware` directly to pick
what the simulated walker does and to reach the models for fault injection.
"""

from __future__ import annotations

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
    contact_sense: ContactSense | None = None
    """The wire reading the relay's contact back (None when ``relay_sense_wired`` is off)."""

    def _close_models(self) -> None:
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
    config: ImuConfig, clock: Clock, motion: MotionSource, *, seed: int = 0
) -> SimulatedImuRig:
    """The real driver on a fake bus with a simulated chip at ``config.address``."""
    chip = SimulatedMpu6050(motion, clock, seed=seed)
    bus = FakeI2cBus({config.address: chip}, seed=seed)
    return SimulatedImuRig(Mpu6050(bus, config, clock, owns_bus=True), bus, chip)


def open_simulated_imu(config: ImuConfig, clock: Clock) -> Mpu6050:
    """Entry point ``simulated``: a walker standing still on the belt, for a year."""
    motion = scenarios.scenario(scenarios.Standing(IDLE_SIMULATION_S))
    return build_simulated_imu(config, clock, motion).imu


def open_simulated_gpio(config: GpioConfig, clock: Clock) -> SimulatedGpio:
    """Entry point ``simulated``: mock pins on ``clock`` and a model of the relay circuit."""
    factory = ClockedMockFactory(clock, max_states=SIM_MAX_PIN_STATES)
    devices = open_gpio_on(factory, config, clock)
    pins = config.pins
    # Attach the models after the devices exist: the button's pull-up is
    # configured by its device, and the model reads the levels it finds.
    relay_pin = factory.observed_pin(pins.relay)
    button_pin = factory.observed_pin(pins.reset_button)
    hardware: RelayHardware
    if config.relay_drive == "heartbeat":
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
        gpio = open_simulated_gpio(gpio_config, clock)
    except BaseException:
        rig.imu.close()
        raise
    return SimulatedHardware(rig, gpio)
