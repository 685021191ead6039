"""Value types shared by every backend and by the firmware."""

from __future__ import annotations

import math
from typing import NamedTuple


class ImuSample(NamedTuple):
    """One IMU reading in physical units.

    A ``NamedTuple`` rather than a dataclass: samples are created at up to
    1 kHz on a Pi Zero, and tuple construction and attribute access are the
    cheapest typed record Python offers.

    ``t`` is monotonic seconds (never wall-clock); ``ax..az`` are in g and
    ``gx..gz`` in degrees per second, in the sensor's own frame.
    """

    t: float
    ax: float
    ay: float
    az: float
    gx: float
    gy: float
    gz: float

    @property
    def accel_magnitude(self) -> float:
        """Length of the acceleration vector in g (1.0 at rest)."""
        return math.sqrt(self.ax * self.ax + self.ay * self.ay + self.az * self.az)

    @property
    def gyro_magnitude(self) -> float:
        """Length of the angular-rate vector in deg/s."""
        return math.sqrt(self.gx * self.gx + self.gy * self.gy + self.gz * self.gz)
