"""How the IMU sits on the body: a rotation from sensor axes to body axes.

The detector reasons about the body ("the trunk pitched backward by 60°"), but
the sensor reports in its own axes, and those depend on how the board was
clipped to the belt. A :class:`Mounting` names, for each sensor axis, the body
direction it points to, e.g. ``x=right y=down z=forward`` (the SisFall waist
device and RetroGuard's default belt-buckle mounting).

Body frame
    Right-handed ``(forward, left, up)``, the ROS REP-103 convention. The
    brief's "up/left/forward" order would be left-handed (up cross left =
    backward), and a left-handed frame cannot be reached from a physical
    sensor by any rotation, so the body vector components are ordered
    forward, left, up.

Only signed permutations are expressible, on purpose: a belt clip is either
mounted square or it is not, and a tilted clip shows up as a constant offset
that the detector's own upright calibration absorbs. The vocabulary is the
same one the trace header's ``mounting`` key uses (:mod:`core.trace`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

Vec3 = tuple[float, float, float]
Matrix3 = tuple[Vec3, Vec3, Vec3]
"""Row-major 3x3 matrix."""

Direction = Literal["forward", "backward", "left", "right", "up", "down"]

DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

DIRECTION_VECTORS: dict[Direction, tuple[int, int, int]] = {
    "forward": (1, 0, 0),
    "backward": (-1, 0, 0),
    "left": (0, 1, 0),
    "right": (0, -1, 0),
    "up": (0, 0, 1),
    "down": (0, 0, -1),
}
"""Each direction as a unit vector in the body frame ``(forward, left, up)``."""

_BY_NAME: dict[str, Direction] = {d: d for d in DIRECTIONS}
_VECTOR_DIRECTIONS = {v: d for d, v in DIRECTION_VECTORS.items()}
_UNKNOWN = "unknown"
_AXES = ("x", "y", "z")


class MountingError(ValueError):
    """A mounting string or axis assignment that names no proper rotation."""


def _cross(a: tuple[int, int, int], b: tuple[int, int, int]) -> tuple[int, int, int]:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


@dataclass(frozen=True, slots=True)
class Mounting:
    """Body direction of each sensor axis; ``None`` means unknown.

    Any two known axes fix the third (a real sensor is right-handed), so
    ``Mounting("right", "down", None)`` becomes ``x=right y=down z=forward``.
    Fewer than two known axes is allowed, to record partial knowledge (e.g. a
    dataset that only says which axis is vertical), but such a mounting has
    no :attr:`matrix`. A left-handed assignment raises :class:`MountingError`:
    it is always a typo, and accepting it would mirror every rotation.
    """

    x: Direction | None
    y: Direction | None
    z: Direction | None
    _matrix: Matrix3 | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        axes = [self.x, self.y, self.z]
        for name, d in zip(_AXES, axes, strict=True):
            if d is not None and d not in DIRECTION_VECTORS:
                raise MountingError(
                    f"{name}={d!r}: expected one of {', '.join(DIRECTIONS)} or unknown"
                )
        known = [(i, DIRECTION_VECTORS[d]) for i, d in enumerate(axes) if d is not None]
        for a in range(len(known)):
            for b in range(a + 1, len(known)):
                if _cross(known[a][1], known[b][1]) == (0, 0, 0):
                    i, j = known[a][0], known[b][0]
                    raise MountingError(
                        f"{_AXES[i]}={axes[i]} and {_AXES[j]}={axes[j]} lie on the same body axis"
                    )
        if len(known) >= 2:
            # The axis after i (cyclically) is cross(axis i+1, axis i+2); use it to
            # fill a missing axis or to check the given one for handedness.
            vectors = [DIRECTION_VECTORS[d] if d is not None else None for d in axes]
            for i in range(3):
                after, after2 = vectors[(i + 1) % 3], vectors[(i + 2) % 3]
                if after is None or after2 is None:
                    continue
                expected = _VECTOR_DIRECTIONS[_cross(after, after2)]
                if axes[i] is None:
                    object.__setattr__(self, _AXES[i], expected)
                    axes[i] = expected
                    vectors[i] = DIRECTION_VECTORS[expected]
                elif axes[i] != expected:
                    raise MountingError(
                        f"{_AXES[0]}={axes[0]} {_AXES[1]}={axes[1]} {_AXES[2]}={axes[2]} "
                        f"is left-handed: with {_AXES[(i + 1) % 3]}={axes[(i + 1) % 3]} and "
                        f"{_AXES[(i + 2) % 3]}={axes[(i + 2) % 3]}, {_AXES[i]} must be {expected}"
                    )
        matrix: Matrix3 | None = None
        if all(d is not None for d in axes):
            cols = [DIRECTION_VECTORS[d] for d in axes if d is not None]
            matrix = (
                (float(cols[0][0]), float(cols[1][0]), float(cols[2][0])),
                (float(cols[0][1]), float(cols[1][1]), float(cols[2][1])),
                (float(cols[0][2]), float(cols[1][2]), float(cols[2][2])),
            )
        object.__setattr__(self, "_matrix", matrix)

    @classmethod
    def parse(cls, text: str) -> Mounting:
        """Parse ``"x=right y=down z=forward"`` (any order) or ``"unknown"``.

        Each axis must appear exactly once; ``x=unknown`` marks one axis unknown.
        """
        text = text.strip()
        if text == _UNKNOWN:
            return UNKNOWN_MOUNTING
        found: dict[str, Direction | None] = {}
        for token in text.split():
            name, sep, value = token.partition("=")
            if not sep or name not in _AXES:
                raise MountingError(
                    f"bad mounting token {token!r}: expected x=, y= or z= followed by a direction"
                )
            if name in found:
                raise MountingError(f"axis {name} given twice in {text!r}")
            if value == _UNKNOWN:
                found[name] = None
            elif value in _BY_NAME:
                found[name] = _BY_NAME[value]
            else:
                raise MountingError(
                    f"{name}={value!r}: expected one of {', '.join(DIRECTIONS)} or unknown"
                )
        missing = [a for a in _AXES if a not in found]
        if missing:
            raise MountingError(
                f"mounting {text!r} does not name axis {', '.join(missing)} "
                "(write e.g. 'x=right y=down z=forward', or 'unknown')"
            )
        return cls(found["x"], found["y"], found["z"])

    def __str__(self) -> str:
        if self.x is None and self.y is None and self.z is None:
            return _UNKNOWN
        return " ".join(
            f"{name}={d if d is not None else _UNKNOWN}"
            for name, d in zip(_AXES, (self.x, self.y, self.z), strict=True)
        )

    @property
    def is_known(self) -> bool:
        """True when every axis is known, i.e. :attr:`matrix` is available."""
        return self._matrix is not None

    @property
    def matrix(self) -> Matrix3:
        """Rotation taking sensor-frame vectors to body-frame ``(forward, left, up)``."""
        if self._matrix is None:
            raise MountingError(f"mounting {self} is not fully known: no rotation")
        return self._matrix

    def apply(self, v: Vec3) -> Vec3:
        """Sensor-frame vector → body frame ``(forward, left, up)``."""
        m = self.matrix
        x, y, z = v
        return (
            m[0][0] * x + m[0][1] * y + m[0][2] * z,
            m[1][0] * x + m[1][1] * y + m[1][2] * z,
            m[2][0] * x + m[2][1] * y + m[2][2] * z,
        )

    def inverse(self, v: Vec3) -> Vec3:
        """Body-frame vector ``(forward, left, up)`` → sensor frame (the transpose)."""
        m = self.matrix
        f, le, u = v
        return (
            m[0][0] * f + m[1][0] * le + m[2][0] * u,
            m[0][1] * f + m[1][1] * le + m[2][1] * u,
            m[0][2] * f + m[1][2] * le + m[2][2] * u,
        )


UNKNOWN_MOUNTING = Mounting(None, None, None)
"""No axis known (trace header value ``unknown``)."""

SISFALL_MOUNTING = Mounting("right", "down", "forward")
"""The SisFall waist device, read off its recordings: standing gives y ≈ -1 g,
lying on the back after a backward fall gives z ≈ +1 g."""


def up_vector(mounting: Mounting) -> tuple[float, float, float] | None:
    """Sensor-frame direction of "up" for a fully known mounting, else None."""
    if not mounting.is_known:
        return None
    return mounting.inverse((0.0, 0.0, 1.0))
