"""Build the configured IMU backend: the real MPU-6050, or one found by name.

``backend = "mpu6050"`` opens the I2C bus with smbus2 (imported only then).
Any other name is looked up in :data:`hal.backends.IMU_BACKENDS`; the
simulation registers ``"simulated"`` there, and returns the same
:class:`hal.mpu6050.Mpu6050` driver on a simulated bus and chip, so demos and
tests run the real driver code.
"""

from __future__ import annotations

from typing import cast

from core.clock import Clock
from hal.backends import IMU_BACKENDS, load_backend
from hal.config import ImuConfig
from hal.errors import ImuError
from hal.interfaces import Imu
from hal.mpu6050 import Mpu6050


def open_imu(config: ImuConfig, clock: Clock) -> Imu:
    """Return an unstarted IMU for ``config.backend``. The caller calls ``start()``.

    Raises :class:`hal.ImuError` when the I2C bus cannot be opened,
    :class:`hal.HalError` for a backend that is not installed, and
    ``ValueError`` for a config the chip cannot do.
    """
    if config.backend == "mpu6050":
        return _open_hardware(config, clock)
    return cast(Imu, load_backend(IMU_BACKENDS, config.backend)(config, clock))


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
