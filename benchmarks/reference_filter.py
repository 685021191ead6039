"""The yardstick for the detector's speed: a plain pre-impact filter.

Published threshold-based pre-impact detectors (e.g. Bourke et al. 2008,
Med Eng Phys 30:937, "vertical velocity"; Wu & Xue 2008, IEEE TBME 55:1070;
the threshold benchmark of the KFall paper, Yu et al. 2021) keep a trunk
orientation, take the acceleration along the vertical, integrate it into a
vertical velocity and compare that with a threshold. This class is that and
nothing more, in the same plain-Python scalar style as the detector:

* orientation: the gravity direction in the sensor frame, rotated by the
  gyro each sample and pulled toward the normalised accelerometer (a
  complementary filter, time constant 0.5 s);
* vertical velocity: (a . gravity - 1 g) integrated with a 1 s leak;
* decision: down faster than 1.3 m/s.

It exists only so ``benchmarks/detector.py`` can report the detector's speed
as a ratio measured in the same process, on the same samples, which is far
more stable across machines and load than samples per second.
"""

from __future__ import annotations

import math

from core.samples import ImuSample

_D2R = math.pi / 180.0
_G = 9.80665


class VerticalVelocityFilter:
    """Orientation + vertical-velocity pre-impact threshold, one sample at a time."""

    def __init__(
        self,
        sample_rate_hz: float,
        gravity_tau_s: float = 0.5,
        velocity_tau_s: float = 1.0,
        threshold_mps: float = 1.3,
    ) -> None:
        self.dt = 1.0 / sample_rate_hz
        self.gravity_tau_s = gravity_tau_s
        self.velocity_tau_s = velocity_tau_s
        self.threshold_mps = threshold_mps
        self.rx, self.ry, self.rz = 0.0, 0.0, 1.0
        self.started = False
        self.vz = 0.0
        self.t_prev = 0.0

    def update(self, s: ImuSample) -> bool:
        """Consume one sample; True while the body goes down faster than the threshold."""
        t, ax, ay, az, gx, gy, gz = s
        dt = t - self.t_prev if self.started else self.dt
        self.t_prev = t
        amag = math.sqrt(ax * ax + ay * ay + az * az)
        if not self.started:
            if amag > 0.0:
                self.rx, self.ry, self.rz = ax / amag, ay / amag, az / amag
            self.started = True
            return False
        wx, wy, wz = gx * _D2R, gy * _D2R, gz * _D2R
        rx, ry, rz = self.rx, self.ry, self.rz
        rx, ry, rz = (
            rx + dt * (ry * wz - rz * wy),
            ry + dt * (rz * wx - rx * wz),
            rz + dt * (rx * wy - ry * wx),
        )
        if amag > 0.0:
            k = dt / self.gravity_tau_s
            rx += k * (ax / amag - rx)
            ry += k * (ay / amag - ry)
            rz += k * (az / amag - rz)
        n = math.sqrt(rx * rx + ry * ry + rz * rz)
        rx, ry, rz = rx / n, ry / n, rz / n
        self.rx, self.ry, self.rz = rx, ry, rz
        a_vert = ax * rx + ay * ry + az * rz - 1.0
        vz = self.vz + (a_vert * _G - self.vz / self.velocity_tau_s) * dt
        self.vz = vz
        return -vz > self.threshold_mps
