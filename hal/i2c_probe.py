"""Open a real I2C bus for a one-off probe, such as ``retroguard doctor``'s WHO_AM_I read.

The firmware never imports ``smbus2`` (backends are chosen in the HAL), yet
the doctor wants to read one register on the bus *before* handing it to the
driver: a bare register read tells "nothing answers at 0x68" apart from
"something answers, but it is not an MPU-6050", which the driver's start-up
(with its retries and reset) blurs. This is that one import, kept here.
"""

from __future__ import annotations

from typing import cast

from hal.mpu6050 import I2cBus


def open_i2c_bus(number: int) -> I2cBus:
    """``smbus2.SMBus(number)``; its ``FileNotFoundError``/``PermissionError`` pass through."""
    from smbus2 import SMBus

    return cast(I2cBus, SMBus(number))
