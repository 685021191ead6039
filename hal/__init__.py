"""Hardware abstraction for RetroGuard.

Everything that touches a bus, a pin or a clock lives here, behind small
interfaces (:mod:`hal.interfaces`), so that ``firmware`` never imports
``smbus2``, ``gpiozero`` or ``RPi.GPIO`` and runs unchanged on simulated
backends (:mod:`sim`).
"""

from core.samples import ImuSample
from hal.errors import (
    HalError,
    ImuBusError,
    ImuDisconnectedError,
    ImuError,
    ImuFifoOverflowError,
    ImuIdentityError,
    ImuTimeoutError,
)

__all__ = [
    "HalError",
    "ImuBusError",
    "ImuDisconnectedError",
    "ImuError",
    "ImuFifoOverflowError",
    "ImuIdentityError",
    "ImuSample",
    "ImuTimeoutError",
]
