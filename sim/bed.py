"""Beds: rolling off one onto the floor, and lying down on one on purpose.

Segments for :class:`sim.scenarios.Sequence`, for the FALL confirmation
that must tell lying down from falling.

Physics of a fall off a bed
    The sleeper lies on the side at the edge of the mattress (trunk rolled
    ``side_deg``, 80-90°, about the body's forward axis) and slides or rolls
    over the edge: the body is then in free fall for ``drop_s`` (a mattress
    top 45 cm above the floor: sqrt(2 x 0.45 / g) = 0.30 s; the specific
    force reads ~0 g), turning on by ``tumble_deg`` on the way, and lands on
    the floor at g x drop_s = 2.9 m/s, absorbed by the hip and shoulder in
    ``impact_s`` (80 ms: a half-sine of 5.9 g above gravity). Then lying on
    the floor, side down, breathing.

Physics of lying down on purpose
    Sitting on the edge of the bed, the trunk reclines from upright to lying
    on the back over ``recline_s`` (1.5 s: a controlled ~60 °/s, with the
    hips as the pivot), the pelvis hardly moves, and the back meets the
    mattress at ``contact_mps`` (0.3 m/s): the mattress stops it over
    ``sink_s`` (0.3 s), a bump of 0.16 g. Then lying still.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.scenarios import (
    _G,
    EventKind,
    Kin,
    SegmentContext,
    SegmentMotion,
    _pulse,
    _ramp,
    fall_events,
)

_PI = math.pi
_D2R = math.pi / 180.0


def _breathing(t: float) -> tuple[float, float]:
    """0.2° of trunk motion at 15 breaths a minute, and its rate."""
    a = 2.0 * _PI * 0.25 * t
    return 0.2 * _D2R * math.sin(a), 0.2 * _D2R * 2.0 * _PI * 0.25 * math.cos(a)


@dataclass(frozen=True, slots=True)
class BedFall:
    """Lying on the side at the edge of a bed, then over it onto the floor."""

    lie_s: float = 12.0
    lead_in_s: float = 4.0
    side_deg: float = 85.0
    drop_s: float = 0.3
    tumble_deg: float = 15.0
    impact_s: float = 0.08
    settle_s: float = 0.6
    label: str = "fall_off_bed"

    def __post_init__(self) -> None:
        if min(self.drop_s, self.impact_s, self.settle_s) <= 0 or self.lead_in_s < 0:
            raise ValueError("bed-fall timings must be positive")

    @property
    def duration(self) -> float:
        return self.lead_in_s + self.drop_s + self.settle_s + self.lie_s

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _BedFallMotion(self, ctx)


class _BedFallMotion:
    __slots__ = ("_impact", "_side", "_spec", "_tumble", "events")
    yaw_change = 0.0

    def __init__(self, spec: BedFall, ctx: SegmentContext) -> None:
        self._spec = spec
        side = ctx.rng.choice((-1.0, 1.0))
        self._side = side * spec.side_deg * _D2R
        self._tumble = side * spec.tumble_deg * _D2R
        # The half-sine absorbs the fall speed g x drop_s: area P x impact_s x 2/pi.
        self._impact = spec.drop_s * _PI / (2.0 * spec.impact_s)
        self.events = fall_events(spec.lead_in_s, spec.drop_s, spec.impact_s, spec.settle_s)

    def kin(self, t: float) -> Kin:
        s = self._spec
        on = s.lead_in_s
        hit = on + s.drop_s
        k, dk = _ramp(t, on, s.drop_s + s.impact_s)
        roll = self._side + self._tumble * k
        droll = self._tumble * dk
        b, db = _breathing(t)
        az = 0.0
        if on < t < hit:
            az = -1.0  # free fall: the specific force vanishes
        elif hit <= t < hit + s.impact_s:
            az = self._impact * _pulse(t, hit, s.impact_s)
        elif hit + s.impact_s <= t < hit + s.settle_s:
            d = t - hit - s.impact_s
            az = 0.4 * math.exp(-d / 0.04) * math.sin(2.0 * _PI * 12.0 * d)
        return (0.0, b, roll, 0.0, db, droll, 0.0, 0.0, az)


@dataclass(frozen=True, slots=True)
class LieDown:
    """Sitting on a bed, then lying back onto it on purpose, and staying."""

    lie_s: float = 20.0
    lead_in_s: float = 3.0
    recline_s: float = 1.5
    lying_deg: float = 85.0
    sink_s: float = 0.3
    contact_mps: float = 0.3
    label: str = "lie_down"

    @property
    def duration(self) -> float:
        return self.lead_in_s + self.recline_s + self.lie_s

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _LieDownMotion(self)


class _LieDownMotion:
    __slots__ = ("_spec", "events")
    yaw_change = 0.0

    def __init__(self, spec: LieDown) -> None:
        self._spec = spec
        self.events: tuple[tuple[float, EventKind], ...] = ()

    def kin(self, t: float) -> Kin:
        s = self._spec
        k, dk = _ramp(t, s.lead_in_s, s.recline_s)
        pitch = -s.lying_deg * _D2R * k
        dpitch = -s.lying_deg * _D2R * dk
        b, db = _breathing(t)
        end = s.lead_in_s + s.recline_s
        # The back sinks into the mattress at contact_mps and the mattress
        # stops it over sink_s: velocity-neutral (down, then stopped), a
        # half-sine of contact_mps / (g x sink_s x 2/pi) each way.
        bump = s.contact_mps / (_G * s.sink_s * 2.0 / _PI)
        az = bump * (_pulse(t, end, s.sink_s) - _pulse(t, end - s.sink_s, s.sink_s))
        return (0.0, pitch + b, 0.0, 0.0, dpitch + db, 0.0, 0.0, 0.0, az)
