"""What a recording would have read under other conditions: another mounting (a rotation of
every sample's axes), another gyro calibration (a scale), or the motion run backward in time.

It exists so that the robustness runs (``--rotate``, ``--gyro-scale``, ``--reverse``) reuse
the recordings there are instead of needing new ones. Pure functions over sample streams: no
detector, no files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from core.samples import ImuSample

Rotation = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]
"""Row-major 3x3 proper rotation matrix (sensor frame to the rotated sensor frame)."""

ROTATION_PRESETS: dict[str, str] = {
    # SisFall's axes: x right, y down, z forward (core.mounting.SISFALL_MOUNTING).
    "upside-down": "z180",
    "hip": "y90",
    "tilted-30": "x30",
    "crooked": "x30,y90,z20",
}
"""Named mountings for ``--rotate``, as rotations about the *SisFall* sensor
axes: ``upside-down`` turns the clip over about the forward axis (y then points
up), ``hip`` turns it 90 deg about the vertical (the face points right, a belt
clip on the hip), ``tilted-30`` pitches it 30 deg about the lateral axis (a
clip leaning on the belly), ``crooked`` combines all three with odd angles."""


def parse_rotation(spec: str) -> Rotation:
    """``x30,y90,z-20`` (degrees about the sensor axes, applied left to right)
    or a name from :data:`ROTATION_PRESETS`, as a rotation matrix."""
    text = ROTATION_PRESETS.get(spec.strip(), spec)
    m: Rotation = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    for part in text.split(","):
        part = part.strip().lower()
        try:
            axis, deg = part[0], float(part[1:])
        except (IndexError, ValueError):
            axis, deg = "?", 0.0
        if axis not in "xyz":
            raise ValueError(
                f"rotation {spec!r}: expected e.g. x30,y90 or one of {', '.join(ROTATION_PRESETS)}"
            )
        c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        if axis == "x":
            r: Rotation = ((1.0, 0.0, 0.0), (0.0, c, -s), (0.0, s, c))
        elif axis == "y":
            r = ((c, 0.0, s), (0.0, 1.0, 0.0), (-s, 0.0, c))
        else:
            r = ((c, -s, 0.0), (s, c, 0.0), (0.0, 0.0, 1.0))
        m = _matmul(r, m)
    return m


def _matmul(a: Rotation, b: Rotation) -> Rotation:
    rows = [tuple(sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)) for i in range(3)]
    return (rows[0], rows[1], rows[2])  # type: ignore[return-value]


def apply_rotation(m: Rotation, v: tuple[float, float, float]) -> tuple[float, float, float]:
    x, y, z = v
    return (
        m[0][0] * x + m[0][1] * y + m[0][2] * z,
        m[1][0] * x + m[1][1] * y + m[1][2] * z,
        m[2][0] * x + m[2][1] * y + m[2][2] * z,
    )


def rotated(samples: Iterable[ImuSample], m: Rotation) -> Iterator[ImuSample]:
    """The same motion seen by a sensor mounted differently: accelerometer and
    gyro vectors of every sample rotated by ``m``."""
    for s in samples:
        a = apply_rotation(m, (s.ax, s.ay, s.az))
        g = apply_rotation(m, (s.gx, s.gy, s.gz))
        yield ImuSample(s.t, a[0], a[1], a[2], g[0], g[1], g[2])


def time_reversed(samples: Iterable[ImuSample]) -> Iterator[ImuSample]:
    """The recording played backward in time: the same path through the same
    postures in reverse order. Sample ``i`` of the output is input sample
    ``n-1-i`` at time ``t_first + t_last - t`` (so time still increases with
    the same spacing); acceleration is kept and angular rate negated, which is
    exactly what a sensor sees when a motion runs the other way (position
    reversed in time keeps its second derivative and flips its first).
    Forward walking reversed is close to backward walking: the proxy for the
    gait RetroGuard is built for. Needs the whole recording in memory."""
    buffered = list(samples)
    if not buffered:
        return
    span = buffered[0].t + buffered[-1].t
    for s in reversed(buffered):
        yield ImuSample(span - s.t, s.ax, s.ay, s.az, -s.gx, -s.gy, -s.gz)


def gyro_scaled(samples: Iterable[ImuSample], scale: float) -> Iterator[ImuSample]:
    """The same motion seen by a gyro whose sensitivity is off by ``scale``
    (a dataset converted with another counts-per-deg/s factor)."""
    for s in samples:
        yield s._replace(gx=s.gx * scale, gy=s.gy * scale, gz=s.gz * scale)
