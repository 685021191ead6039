"""Gyro bias and mounting from a still stand and a forward lean: the maths of ``calibrate``.

Pure functions of recorded samples (no I/O, no clock), so they are tested on
synthesised motion in every mounting.

Standing still
    The mean specific force points up, so the sensor axis closest to it is
    the vertical one (``up`` or ``down``). The gyro's mean is its bias —
    except that nobody stands perfectly still: postural sway tilts the trunk
    by a fraction of a degree at 0.1-0.7 Hz, and over a few seconds the sway
    does not average out (a 0.5° drift in 5 s is 0.1 °/s). The tilt part of
    that sway is visible to the accelerometer, so the bias across the
    vertical is the slope of (integrated gyro - tilt seen by the
    accelerometer) against time, which cancels the sway; about the vertical
    the accelerometer sees nothing and the plain mean is used (sway in yaw
    is the smallest).

Leaning forward
    Standing gives no clue to which way the person faces, so the person
    bends forward from the hips. The specific force then tips toward the
    body's *back* (the accelerometer measures the upward push of the floor,
    and a forward-pitched trunk has it pointing partly backward), so
    forward is the opposite of the sideways part of the specific force at
    the deepest point of the lean. The gyro must agree: integrated from the
    start of the lean to its deepest point, it has turned about the body's
    left axis by about the lean angle. A sideways or backward lean cannot be
    told from a box mounted sideways or back to front, which is why the
    printed procedure insists on *forward*.

Both axes must lie within :data:`AXIS_TOLERANCE_DEG` of a sensor axis: the
mounting vocabulary (:mod:`core.mounting`) names square mountings only. A box
clipped on at an angle is rejected with the advice to set
``mounting = "unknown"``, which makes the detector learn gravity online.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.mounting import Direction, Mounting
from core.samples import ImuSample

Vec3 = tuple[float, float, float]

AXIS_TOLERANCE_DEG = 20.0
"""Largest angle between a measured body axis and the sensor axis it is snapped to."""
STILL_GYRO_STD_DPS = 3.0
"""Quiet standing sways at about 1 °/s; walking turns the trunk at 20-40 °/s."""
STILL_ACCEL_STD_G = 0.03
"""Quiet standing moves the waist by a few mg; walking by 0.2 g and more."""
GRAVITY_RANGE_G = (0.85, 1.15)
"""Mean specific force at rest; outside it the accelerometer (or its range setting) is off."""
LEAN_MIN_DEG = 12.0
"""A smaller lean is too close to sway and tilted mounting to name forward reliably."""
LEAN_SMOOTH_S = 0.2
"""Moving average over the lean, so noise and sway do not pick the deepest point."""
GYRO_AGREEMENT = 0.35
"""Gyro and accelerometer lean angles must agree within this fraction (plus 3°)."""

_AXES = ("x", "y", "z")


class CalibrationError(Exception):
    """The recording cannot give a calibration; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class StillResult:
    samples: int
    seconds: float
    gravity: Vec3
    """Mean specific force (g), sensor frame: points up."""
    gravity_g: float
    accel_std_g: float
    """Standard deviation of the specific force's magnitude."""
    gyro_std_dps: Vec3
    gyro_bias_dps: Vec3


@dataclass(frozen=True, slots=True)
class AxisFit:
    """A measured direction snapped to the nearest signed sensor axis."""

    axis: int
    sign: int
    off_deg: float
    """Angle between the measured direction and the axis."""

    @property
    def name(self) -> str:
        return f"{'+' if self.sign > 0 else '-'}{_AXES[self.axis]}"


@dataclass(frozen=True, slots=True)
class LeanResult:
    forward: Vec3
    """Measured forward direction, sensor frame (unit)."""
    lean_deg: float
    """Deepest lean seen by the accelerometer."""
    gyro_lean_deg: float
    """Rotation about the body's left axis, integrated by the gyro to the deepest point."""


def _add(a: Vec3, b: Vec3) -> Vec3:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _sub(a: Vec3, b: Vec3) -> Vec3:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _scale(a: Vec3, k: float) -> Vec3:
    return (a[0] * k, a[1] * k, a[2] * k)


def _dot(a: Vec3, b: Vec3) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vec3, b: Vec3) -> Vec3:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _norm(a: Vec3) -> float:
    return math.sqrt(_dot(a, a))


def _unit(a: Vec3) -> Vec3:
    n = _norm(a)
    return _scale(a, 1.0 / n) if n > 0 else a


def _angle_deg(a: Vec3, b: Vec3) -> float:
    c = _dot(_unit(a), _unit(b))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _accel(s: ImuSample) -> Vec3:
    return (s.ax, s.ay, s.az)


def _gyro(s: ImuSample) -> Vec3:
    return (s.gx, s.gy, s.gz)


def _mean(vectors: Sequence[Vec3]) -> Vec3:
    n = len(vectors)
    return (
        sum(v[0] for v in vectors) / n,
        sum(v[1] for v in vectors) / n,
        sum(v[2] for v in vectors) / n,
    )


def _std(values: Sequence[float]) -> float:
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def _slope(ts: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` against ``ts``."""
    tm = sum(ts) / len(ts)
    ym = sum(ys) / len(ys)
    num = sum((t - tm) * (y - ym) for t, y in zip(ts, ys, strict=True))
    den = sum((t - tm) ** 2 for t in ts)
    return num / den


def _sway_corrected_bias(samples: Sequence[ImuSample], up: Vec3) -> Vec3:
    """Gyro bias: slope of (integrated gyro - accelerometer tilt) across the vertical,
    plain mean along it (see the module docstring)."""
    t0 = samples[0].t
    ts: list[float] = []
    ys: list[Vec3] = []
    integral: Vec3 = (0.0, 0.0, 0.0)
    previous = t0
    for s in samples:
        integral = _add(integral, _scale(_gyro(s), math.radians(s.t - previous)))
        previous = s.t
        # Small tilt seen by the accelerometer, as a rotation vector: (v - up) x up.
        tilt = _cross(_sub(_unit(_accel(s)), up), up)
        across = _sub(integral, _scale(up, _dot(integral, up)))
        ts.append(s.t - t0)
        ys.append(_sub(across, tilt))
    slope = tuple(math.degrees(_slope(ts, [y[i] for y in ys])) for i in range(3))
    across_bias: Vec3 = (slope[0], slope[1], slope[2])
    along = _dot(_mean([_gyro(s) for s in samples]), up)
    return _add(_sub(across_bias, _scale(up, _dot(across_bias, up))), _scale(up, along))


def analyse_still(samples: Sequence[ImuSample]) -> StillResult:
    """Gravity direction, stillness and gyro bias; :class:`CalibrationError` if not still."""
    if len(samples) < 20:
        raise CalibrationError(f"only {len(samples)} samples recorded: is the IMU streaming?")
    seconds = samples[-1].t - samples[0].t
    gravity = _mean([_accel(s) for s in samples])
    gravity_g = _norm(gravity)
    accel_std = _std([_norm(_accel(s)) for s in samples])
    gyro_std: Vec3 = (
        _std([s.gx for s in samples]),
        _std([s.gy for s in samples]),
        _std([s.gz for s in samples]),
    )
    if max(gyro_std) > STILL_GYRO_STD_DPS or accel_std > STILL_ACCEL_STD_G:
        raise CalibrationError(
            f"the person was not standing still (gyro spread {max(gyro_std):.1f} °/s, limit "
            f"{STILL_GYRO_STD_DPS:g}; acceleration spread {accel_std:.3f} g, limit "
            f"{STILL_ACCEL_STD_G:g}): stand upright and still, arms relaxed, and run it again"
        )
    low, high = GRAVITY_RANGE_G
    if not low <= gravity_g <= high:
        raise CalibrationError(
            f"the accelerometer reads {gravity_g:.2f} g at rest, not about 1 g: check "
            "imu.accel_range_g, or the sensor is faulty"
        )
    bias = _sway_corrected_bias(samples, _unit(gravity))
    return StillResult(len(samples), seconds, gravity, gravity_g, accel_std, gyro_std, bias)


def snap(direction: Vec3, what: str, exclude: int | None = None) -> AxisFit:
    """The signed sensor axis nearest ``direction``; :class:`CalibrationError` if too far."""
    u = _unit(direction)
    candidates = [i for i in range(3) if i != exclude]
    axis = max(candidates, key=lambda i: abs(u[i]))
    sign = 1 if u[axis] > 0 else -1
    off = math.degrees(math.acos(min(1.0, abs(u[axis]))))
    if off > AXIS_TOLERANCE_DEG:
        raise CalibrationError(
            f"{what} is {off:.0f}° away from the nearest sensor axis ({'+' if sign > 0 else '-'}"
            f"{_AXES[axis]}; limit {AXIS_TOLERANCE_DEG:g}°): the box is not mounted square. "
            'Mount it square and calibrate again, or set mounting = "unknown" in [imu] '
            "(the detector then learns gravity online)"
        )
    return AxisFit(axis, sign, off)


def _smoothed(samples: Sequence[ImuSample], window: int) -> list[Vec3]:
    out: list[Vec3] = []
    acc: Vec3 = (0.0, 0.0, 0.0)
    for i, s in enumerate(samples):
        acc = _add(acc, _accel(s))
        if i >= window:
            acc = _sub(acc, _accel(samples[i - window]))
        out.append(_scale(acc, 1.0 / min(i + 1, window)))
    return out


def analyse_lean(
    samples: Sequence[ImuSample], up: Vec3, bias: Vec3, sample_rate_hz: float
) -> LeanResult:
    """Forward from the deepest point of a forward lean; the gyro must confirm it."""
    if len(samples) < 20:
        raise CalibrationError(f"only {len(samples)} samples recorded during the lean")
    up = _unit(up)
    smooth = _smoothed(samples, max(1, round(LEAN_SMOOTH_S * sample_rate_hz)))
    tilts = [_angle_deg(v, up) for v in smooth]
    deepest = max(range(len(tilts)), key=tilts.__getitem__)
    lean_deg = tilts[deepest]
    if lean_deg < LEAN_MIN_DEG:
        raise CalibrationError(
            f"the lean was too small ({lean_deg:.0f}°, at least {LEAN_MIN_DEG:g}° needed): "
            "bend forward from the hips by about 30°, hold it for a second, straighten up"
        )
    v = smooth[deepest]
    backward = _sub(v, _scale(up, _dot(v, up)))
    forward = _unit(_scale(backward, -1.0))
    left = _cross(up, forward)
    turned = 0.0
    previous = samples[0].t
    # Centre the smoothing window on the sample it is attributed to.
    half = max(1, round(LEAN_SMOOTH_S * sample_rate_hz)) // 2
    end = max(0, deepest - half)
    for s in samples[: end + 1]:
        turned += _dot(_sub(_gyro(s), bias), left) * (s.t - previous)
        previous = s.t
    if abs(turned - lean_deg) > GYRO_AGREEMENT * lean_deg + 3.0:
        raise CalibrationError(
            f"the gyro saw a turn of {turned:.0f}° about the left axis where the accelerometer "
            f"saw a {lean_deg:.0f}° lean: bend slowly straight forward, without twisting, "
            "and run it again"
        )
    return LeanResult(forward, lean_deg, turned)


def mounting_from(up: AxisFit, forward: AxisFit) -> Mounting:
    """The :class:`Mounting` whose ``up`` and ``forward`` are these sensor axes."""
    axes: list[Direction | None] = [None, None, None]
    axes[up.axis] = "up" if up.sign > 0 else "down"
    axes[forward.axis] = "forward" if forward.sign > 0 else "backward"
    return Mounting(axes[0], axes[1], axes[2])
