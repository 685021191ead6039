"""Helpers for the MPU-6050 driver and simulation tests: trivial motion sources, a hook clock,
and a way to tell samples the chip took from corrupted ones."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from core.clock import SimClock
from core.samples import ImuSample
from hal.config import ImuConfig
from hal.mpu6050 import Mpu6050, RegisterSettings
from sim.i2c_bus import BusTiming, FakeI2cBus
from sim.motion import Vector6
from sim.mpu6050_sim import SimulatedMpu6050, raw_motion

ADDRESS = 0x68
STANDING: Vector6 = (0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
"""At rest with the sensor's +Z up: 1 g on Z, no rotation."""
BUS_CALL_OVERHEAD_S = 100e-6
"""Host time per I2C call on a Pi Zero 2 W (system call and smbus2), roughly."""


@dataclass
class ConstantMotion:
    """The same reading forever (by default standing still, gravity on +Z)."""

    value: Vector6 = STANDING
    duration: float = 1e9

    def at(self, t: float) -> Vector6:
        return self.value


@dataclass
class RampMotion:
    """ax grows with time (g per second), so each sample's value tells when it was taken.

    ``gyro_slope`` (degrees per second, per second) ramps gz too: its low byte, the last of
    each FIFO frame, then runs through every value."""

    slope: float = 0.1
    duration: float = 1e9
    gyro_slope: float = 0.0

    def at(self, t: float) -> Vector6:
        return (self.slope * t, 0.0, 1.0, 0.0, 0.0, self.gyro_slope * t)


class HookClock(SimClock):
    """A SimClock that runs callbacks once the time reaches given instants.

    It plays the outside world: a cable that comes back at t = 0.3 s, say.
    The code under test only ever sleeps on the clock.
    """

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self._hooks: list[tuple[float, Callable[[], None]]] = []

    def at(self, when: float, action: Callable[[], None]) -> None:
        self._hooks.append((when, action))
        self._hooks.sort(key=lambda hook: hook[0])

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        now = self.monotonic()
        while self._hooks and self._hooks[0][0] <= now:
            _, action = self._hooks.pop(0)
            action()


def untaken(
    samples: Iterable[ImuSample], chip: SimulatedMpu6050, settings: RegisterSettings
) -> int:
    """How many of ``samples`` the chip never took: corrupted data that reached the caller.

    Compares raw accel and gyro values with the chip's :attr:`SimulatedMpu6050.history`
    (make the chip with ``keep_samples``), and needs a zero gyro bias.
    """
    taken = set(chip.taken_motions())
    scale = settings.accel_g_per_lsb, settings.gyro_dps_per_lsb
    return sum(1 for s in samples if raw_motion(s, *scale) not in taken)


def history_positions(
    samples: Iterable[ImuSample], chip: SimulatedMpu6050, settings: RegisterSettings
) -> list[int | None]:
    """Where each of ``samples`` is in the chip's :attr:`SimulatedMpu6050.history` (None: a
    sample the chip never took). With a motion whose samples all differ (a ramp), a true
    stream gives consecutive positions: a repeat is a duplicate, a jump a lost sample."""
    where = {motion: i for i, motion in enumerate(chip.taken_motions())}
    scale = settings.accel_g_per_lsb, settings.gyro_dps_per_lsb
    return [where.get(raw_motion(s, *scale)) for s in samples]


@dataclass
class Rig:
    clock: HookClock
    bus: FakeI2cBus
    chip: SimulatedMpu6050
    imu: Mpu6050
    config: ImuConfig = field(default_factory=ImuConfig)

    def read(self, timeout: float = 0.05) -> list[ImuSample]:
        return list(self.imu.read_batch(timeout))


def make_rig(
    config: ImuConfig | None = None,
    motion: ConstantMotion | RampMotion | None = None,
    *,
    start: bool = True,
    bus_hz: float | None = None,
    **chip_options: Any,
) -> Rig:
    """The real driver on a fake bus with a simulated chip, on a simulated clock.

    ``bus_hz`` makes each bus transaction take its time at that I2C clock (see
    :class:`sim.i2c_bus.BusTiming`); by default transactions take none.
    """
    config = config or ImuConfig()
    clock = HookClock()
    chip = SimulatedMpu6050(motion or ConstantMotion(), clock, **chip_options)
    timing = None if bus_hz is None else BusTiming(clock, bus_hz, BUS_CALL_OVERHEAD_S)
    bus = FakeI2cBus({config.address: chip}, timing=timing)
    imu = Mpu6050(bus, config, clock)
    if start:
        imu.start()
    return Rig(clock, bus, chip, imu, config)
