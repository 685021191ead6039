"""Where vertical, anteroposterior (AP) and mediolateral (ML) are, seen from the sensor.

Gravity
    The direction of gravity is estimated as a slow low-pass of the
    accelerometer vector (time constant ``tau_s``, seconds). This is the
    static tilt correction of Moe-Nilssen (1998, *Clin Biomech* 13:320): the
    belt is seldom square to the trunk, and a tilt of a few degrees puts a
    part of the 1 g into the horizontal axes; projecting onto the plane
    perpendicular to the mean gravity removes it. The trunk's *dynamic*
    rotation during a stride or during sway stays in the signal, as in the
    studies whose figures the metrics are compared with (Moe-Nilssen &
    Helbostad 2004; Mancini et al. 2012: their ISway acceleration measures
    are dominated by that tilt). The gyro is not needed for this; its bias
    is removed by the driver (``imu.gyro_bias_dps``, measured by
    ``retroguard calibrate``) and it serves the steady-walking test, which
    excludes turns (rotation about the vertical).

Horizontal axes
    With a known mounting (:mod:`core.mounting`), the sensor's "forward"
    projected onto the horizontal plane is AP and up x AP is ML (left). With
    ``mounting = "unknown"`` the horizontal plane is still known from
    gravity but not which way the walker faces: the basis is then an
    arbitrary pair ``e1, e2``, and :class:`AxisLearner` finds ML in it from
    walking — the pelvis sways side to side once per stride, so ML carries
    the stride frequency (the first harmonic of the stride) far more than AP,
    whose main rhythm is the step (Menz et al. 2003, *Gait Posture* 18:35;
    Zijlstra & Hof 2003, *Gait Posture* 18:1). Signs (left or right, forward
    or backward) never matter to the metrics.
"""

from __future__ import annotations

import math
from typing import Literal

from core.mounting import Mounting

Vec3 = tuple[float, float, float]
AxesSource = Literal["mounting", "learned", "unknown"]
"""How AP and ML were told apart: the configured mounting, learned from walking, or not yet."""

REFRESH_SAMPLES = 8
"""The unit vectors are recomputed every this many samples (gravity moves slowly)."""


def _norm(v: Vec3) -> Vec3:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if n < 1e-9:
        raise ValueError("zero vector")
    return (v[0] / n, v[1] / n, v[2] / n)


def _dot(a: Vec3, b: Vec3) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vec3, b: Vec3) -> Vec3:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _horizontal(v: Vec3, up: Vec3) -> Vec3:
    d = _dot(v, up)
    return _norm((v[0] - d * up[0], v[1] - d * up[1], v[2] - d * up[2]))


SENSOR_AXES: tuple[Vec3, ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
REFERENCE_MAX_COS = 0.5
"""A sensor axis at least 60° from vertical may be the reference for ``e1``."""


def reference_axis(up: Vec3) -> Vec3:
    """The sensor axis that ``e1`` is the horizontal projection of, for an unknown mounting.

    The first of x, y, z at least 60° from vertical, so that every frame of a session (each
    interval's meter, the balance check's) picks the same one: AP and ML learned in one are
    AP and ML in all. "The axis farthest from vertical" was not: with the sensor upright two
    axes are nearly horizontal, and which was farther changed with the sway of the moment a
    meter started, turning the basis by 90° between intervals. Only when no axis is 60° from
    vertical (a sensor mounted diagonally) is the farthest one taken.
    """
    for axis in SENSOR_AXES:
        if abs(_dot(axis, up)) <= REFERENCE_MAX_COS:
            return axis
    return min(SENSOR_AXES, key=lambda e: abs(_dot(e, up)))


class BodyFrame:
    """The vertical and a horizontal basis in the sensor frame, following gravity slowly.

    :attr:`up`, :attr:`e1`, :attr:`e2` are unit vectors (sensor frame). With
    a known mounting ``e1`` is AP (forward) and ``e2`` ML (left); otherwise
    they are a fixed but arbitrary horizontal pair.
    """

    __slots__ = ("_alpha", "_count", "_forward", "_g", "_ref", "e1", "e2", "up")

    def __init__(self, rate_hz: float, tau_s: float, mounting: Mounting) -> None:
        self._alpha = 1.0 - math.exp(-1.0 / (rate_hz * tau_s))
        self._g: list[float] | None = None
        self._count = 0
        self._forward: Vec3 | None = (
            mounting.inverse((1.0, 0.0, 0.0)) if mounting.is_known else None
        )
        self._ref: Vec3 | None = None
        self.up: Vec3 = (0.0, 0.0, 1.0)
        self.e1: Vec3 = (1.0, 0.0, 0.0)
        self.e2: Vec3 = (0.0, 1.0, 0.0)

    @property
    def knows_ap(self) -> bool:
        """Whether :attr:`e1` is AP (a known mounting) rather than an arbitrary direction."""
        return self._forward is not None

    @property
    def started(self) -> bool:
        return self._g is not None

    def settle(self, ax: float, ay: float, az: float) -> None:
        """Take ``(ax, ay, az)`` as the gravity estimate now (e.g. a mean over a still moment)."""
        self._g = [ax, ay, az]
        self._refresh()

    def update(self, ax: float, ay: float, az: float) -> None:
        g = self._g
        if g is None:
            self.settle(ax, ay, az)
            return
        a = self._alpha
        g[0] += a * (ax - g[0])
        g[1] += a * (ay - g[1])
        g[2] += a * (az - g[2])
        self._count += 1
        if self._count >= REFRESH_SAMPLES:
            self._count = 0
            self._refresh()

    def _refresh(self) -> None:
        g = self._g
        assert g is not None
        try:
            up = _norm((g[0], g[1], g[2]))
        except ValueError:
            return  # free fall: keep the last frame
        forward = self._forward
        if forward is None:
            if self._ref is None:
                self._ref = reference_axis(up)
            forward = self._ref
        try:
            e1 = _horizontal(forward, up)
        except ValueError:
            return  # the reference is vertical (a mounting that contradicts gravity)
        self.up, self.e1, self.e2 = up, e1, _cross(up, e1)


class AxisLearner:
    """Finds ML in the ``e1, e2`` plane from the stride-frequency sway of walking.

    Each stride contributes the first Fourier coefficient (at the stride
    frequency) of the two horizontal accelerations; ML is the direction of
    the largest first-harmonic power, the principal axis of their 2x2
    covariance. Learned once at least :data:`MIN_STRIDES` strides agree
    with a power ratio of at least :data:`MIN_RATIO`.
    """

    MIN_STRIDES = 20
    MIN_RATIO = 3.0

    __slots__ = ("_p11", "_p12", "_p22", "strides")

    def __init__(self) -> None:
        self._p11 = self._p12 = self._p22 = 0.0
        self.strides = 0

    def add(self, c1: complex, c2: complex) -> None:
        self._p11 += c1.real * c1.real + c1.imag * c1.imag
        self._p22 += c2.real * c2.real + c2.imag * c2.imag
        self._p12 += (c1 * c2.conjugate()).real
        self.strides += 1

    def ap_angle(self) -> float | None:
        """Angle of AP from ``e1`` toward ``e2`` (radians), or None while not learned."""
        if self.strides < self.MIN_STRIDES:
            return None
        half_sum = 0.5 * (self._p11 + self._p22)
        spread = math.hypot(0.5 * (self._p11 - self._p22), self._p12)
        high, low = half_sum + spread, half_sum - spread
        if high <= 0.0 or (low > 0.0 and high / low < self.MIN_RATIO):
            return None
        ml = 0.5 * math.atan2(2.0 * self._p12, self._p11 - self._p22)
        return ml - 0.5 * math.pi


def ap_ml_axes(angle: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """AP and ML as unit vectors in the ``e1, e2`` plane for an AP angle (radians)."""
    c, s = math.cos(angle), math.sin(angle)
    return (c, s), (-s, c)
