"""Build the configured IMU backend: the real MPU-6050 or the simulated one.

Both paths return the same :class:`hal.mpu6050.Mpu6050` driver. The
simulated path only swaps the bus and the chip for :class:`FakeI2cBus` and
:class:`SimulatedMpu6050`, so demos and tests run the real driver code.
``smbus2.SMBus`` is imported only when real hardware is asked for, so
nothing else has to load or open a bus device.
"""

from __future__ import annotations

from typing import NamedTuple

from hal.clock import Clock
from hal.config import ImuConfig
from hal.errors import ImuError
from hal.interfaces import Imu
from hal.mpu6050 import Mpu6050
from hal.sim.i2c_bus import FakeI2cBus
from hal.sim.motion import MotionSource
from hal.sim.mpu6050_sim import SimulatedMpu6050


class SimulatedImuRig(NamedTuple):
    """The simulated IMU with its bus and chip exposed, so tests can inject faults."""

    imu: Mpu6050
    bus: FakeI2cBus
    chip: SimulatedMpu6050


def open_imu(config: ImuConfig, clock: Clock, motion: MotionSource | None = None) -> Imu:
    """Return an unstarted IMU for ``config.backend``. The caller calls ``start()``.

    ``motion`` is required for the simulated backend and ignored for real
    hardware. Raises :class:`hal.ImuError` when the I2C bus cannot be
    opened, and ``ValueError`` for a config the chip cannot do.
    """
    if config.backend == "mpu6050":
        return _open_hardware(config, clock)
    if config.backend == "simulated":
        if motion is None:
            raise ValueError(
                "the simulated IMU needs a MotionSource (e.g. a scenario from hal.sim.scenarios)"
            )
        return build_simulated_imu(config, clock, motion).imu
    raise ValueError(f"unknown IMU backend {config.backend!r}; use 'mpu6050' or 'simulated'")


def build_simulated_imu(
    config: ImuConfig, clock: Clock, motion: MotionSource, *, seed: int = 0
) -> SimulatedImuRig:
    """The real driver on a fake bus with a simulated chip at ``config.address``."""
    chip = SimulatedMpu6050(motion, clock, seed=seed)
    bus = FakeI2cBus({config.address: chip}, seed=seed)
    return SimulatedImuRig(Mpu6050(bus, config, clock, owns_bus=True), bus, chip)


def _open_hardware(config: ImuConfig, clock: Clock) -> Mpu6050:
    try:
        from smbus2 import SMBus
    except ImportError as exc:  # pragma: no cover - smbus2 is a hard dependency
        raise ImuError("smbus2 is not installed: pip install smbus2") from exc
    device = f"/dev/i2c-{config.i2c_bus}"
    try:
        bus = SMBus(config.i2c_bus)
    except FileNotFoundError as exc:
        raise ImuError(
            f"no {device}: enable I2C with raspi-config (Interface Options > I2C) "
            "or dtparam=i2c_arm=on in config.txt, then reboot"
        ) from exc
    except PermissionError as exc:
        raise ImuError(
            f"permission denied on {device}: add the service user to the 'i2c' group"
        ) from exc
    except OSError as exc:
        raise ImuError(f"cannot open {device}: {exc}") from exc
    try:
        return Mpu6050(bus, config, clock, owns_bus=True)
    except Exception:
        bus.close()
        raise
