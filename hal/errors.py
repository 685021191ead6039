"""The HAL's own exception types.

Backends translate library errors (``OSError`` errno 121/5 from smbus2,
gpiozero's exceptions) into these, so the firmware can tell a transient bus
glitch from a dead sensor without knowing which library produced it.
"""

from __future__ import annotations


class HalError(Exception):
    """Base of every error raised by a HAL backend."""


class ImuError(HalError):
    """The IMU could not deliver trustworthy samples."""


class ImuBusError(ImuError):
    """A transient I2C failure (NACK, errno 121; I/O error, errno 5).

    Worth retrying within the stale-data budget: treadmill motors cause bursts
    of these when they switch on.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class ImuDisconnectedError(ImuError):
    """The IMU stopped answering for longer than the retry budget allows."""


class ImuIdentityError(ImuError):
    """WHO_AM_I returned something other than the expected chip id."""


class ImuTimeoutError(ImuError):
    """The chip did not complete reset or wake-up within its deadline."""


class ImuFifoOverflowError(ImuError):
    """The sensor FIFO overflowed: samples were lost and the stream has a gap.

    Never swallowed: a gap in the data means the detector may have missed a
    fall, so the safety controller treats it as a fault.
    """

    def __init__(self, message: str, samples_lost_at_least: int = 0) -> None:
        super().__init__(message)
        self.samples_lost_at_least = samples_lost_at_least


class ImuCorruptDataError(ImuFifoOverflowError):
    """A FIFO burst failed the driver's plausibility check: its samples were discarded.

    The bytes were damaged on the wire or read out of alignment, yet decoded into in-range
    values. It is an :class:`ImuFifoOverflowError` because the outcome is the same: the burst's
    samples are gone, the FIFO was reset and the stream has a gap, so the safety controller
    faults exactly as for an overflow, and the next read gets fresh, aligned data.
    """
