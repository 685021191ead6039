"""Motion sources: what the body does, in the sensor's frame.

The simulated MPU-6050 asks its motion source for the true specific force (g)
and angular rate (deg/s) at each of its sample instants, quantises them like
the real ADC would and pushes them through its FIFO.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

Vector6 = tuple[float, float, float, float, float, float]


@runtime_checkable
class MotionSource(Protocol):
    """True inertial signals as a function of simulated time."""

    @property
    def duration(self) -> float:
        """Seconds of motion available; after that the source holds its last value."""
        ...

    def at(self, t: float) -> Vector6:
        """(ax, ay, az, gx, gy, gz) at time ``t`` seconds since the source began."""
        ...
