"""The treadmill moments the detector meets in every session, and the fall it exists for.

Segments for :class:`sim.scenarios.Sequence`, and ready-made sessions built
from them:

* :class:`BeltStart` — the belt starts under a standing walker, who starts
  walking;
* :class:`SpeedChange` — the belt speed steps up or down under a walker;
* turn-arounds: :class:`sim.scenarios.Turn` ending in the other walking
  direction (the 2/2 plan's "turn around and walk backward");
* :class:`UprightBackwardFall` — the belt carries the feet away and the
  walker sits down backward, trunk near vertical.

Why these: on a treadmill the moments when gait starts or changes come at
every belt start, speed change and turn-around of a session plan, and a
detector whose state lags the body (its "upright", its gait activity) is
most exposed then. The upright backward fall is the product's core case.

Physics of the treadmill moments
    A treadmill belt moves toward the rear of the machine. A walker facing
    the front (forward walking) has the feet carried backward relative to
    the trunk; a walker facing the rear (backward walking, RetroGuard's use)
    has the feet carried the way the body faces. When the belt accelerates
    by ``dv`` over ``ramp_s`` the feet are dragged before the next steps
    catch up: the trunk pitches opposite to the drag (backward for a
    backward walker) by a few degrees and comes back within about a second,
    and the pelvis lurches a few hundredths of a g (velocity-neutral: the
    walker stays on the deck). Consumer treadmills change speed at about
    0.3-0.5 m/s² (0.5 mph in 0.5-1 s), and a walker needs one or two steps
    to adapt cadence and step length. The pitch figure scales with the speed
    change: ``drag_deg_per_mps`` (5°/(m/s)) gives 1-2° for a 0.2-0.3 mph
    step and 3-4° for a belt start to 1.5 mph — within the 2-6° trunk sway
    reported after treadmill-belt perturbations that people recover from by
    stepping (e.g. Sessoms et al. 2014, Gait Posture 40:641; perturbations
    there are 10 times faster than a speed-setting change).

Physics of the upright backward fall
    The belt carries the feet toward the walker's front; if the steps do not
    keep up, the base of support leaves from under the pelvis, the knees and
    hips fold and the pelvis drops: the walker sits down backward. The trunk
    stays near vertical (it leans back only ``trunk_deg``, 5-15°) because
    hips and knees take the rotation, not the spine. The pelvis accelerates
    downward at up to ``drop_g`` (0.6 g: the legs still brake a little; pure
    free fall would be 1 g) with a smooth ``sin²`` profile over ``drop_s``
    (0.75 s), so the specific force along the vertical sinks to 0.4 g, the
    downward speed reaches ``drop_g·g·drop_s/2`` = 2.2 m/s and the pelvis
    falls ``drop_g·g·drop_s²·(1/4 - 1/π²)`` = 0.49 m, from a walking hip
    height of about 0.85 m to the deck (seated hip height ~0.1 m plus the
    buttocks' soft tissue). The seat then absorbs 2.2 m/s in ``impact_s``
    (0.1 s): a half-sine of 3.5 g above gravity. Afterward the trunk either
    stays sitting (``ends="seated"``, 25-35° back) or rolls back onto the
    deck (``ends="lying"``, 80-90°). The belt keeps carrying the seated
    walker toward the rear at belt speed, which is constant velocity and
    reads as nothing. One case of this shape traced in data not held here
    dropped at 1.6 m/s with the trunk tilted 10°, which a 0.55 s drop at
    0.6 g reproduces (``drop_s`` 0.55).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

from sim.scenarios import (
    _G,
    Direction,
    EventKind,
    Kin,
    SegmentContext,
    SegmentMotion,
    Sequence,
    Standing,
    Turn,
    Walking,
    _bump,
    _default_lean,
    _Gait,
    _pulse,
    _ramp,
    fall_events,
)

_PI = math.pi
_D2R = math.pi / 180.0
MPH = 0.44704
"""Metres per second in one mile per hour (treadmills are set in mph)."""


def mph(speed: float) -> float:
    """A treadmill setting in mph as m/s."""
    return speed * MPH


def _facing(direction: Direction) -> float:
    """+1 when the walker faces the way the belt drags the feet (backward walking)."""
    return 1.0 if direction == "backward" else -1.0


def _blend(k: float, dk: float, a: Kin, b: Kin) -> Kin:
    """``a`` cross-faded into ``b`` by weight ``k`` (with derivative ``dk``)."""
    d = [b[j] - a[j] for j in range(3)]
    return (
        a[0] + k * d[0],
        a[1] + k * d[1],
        a[2] + k * d[2],
        a[3] + k * (b[3] - a[3]) + dk * d[0],
        a[4] + k * (b[4] - a[4]) + dk * d[1],
        a[5] + k * (b[5] - a[5]) + dk * d[2],
        a[6] + k * (b[6] - a[6]),
        a[7] + k * (b[7] - a[7]),
        a[8] + k * (b[8] - a[8]),
    )


_STILL: Kin = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class BeltStart:
    """The belt starts under a standing walker, who starts walking at ``speed_mps``.

    After ``lead_in_s`` of standing the belt accelerates over ``ramp_s``; the
    gait grows from nothing to its full amplitude over the same time, and the
    drag on the feet pitches the trunk by ``drag_deg_per_mps`` times the
    speed, opposite to the drag, for about a second. Then steady walking.
    """

    duration: float = 20.0
    speed_mps: float = 0.22
    direction: Direction = "backward"
    lead_in_s: float = 2.0
    ramp_s: float = 1.0
    drag_deg_per_mps: float = 5.0
    label: str = "belt_start"

    def __post_init__(self) -> None:
        if self.ramp_s <= 0 or self.lead_in_s < 0 or not self.speed_mps > 0:
            raise ValueError("a belt start needs a positive ramp and speed")
        if self.lead_in_s + self.ramp_s > self.duration:
            raise ValueError("the belt start does not fit in the segment's duration")

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _SpeedMotion(
            ctx,
            0.0,
            self.speed_mps,
            self.direction,
            self.lead_in_s,
            self.ramp_s,
            self.drag_deg_per_mps,
            Standing(self.lead_in_s + self.ramp_s).realise(ctx),
        )


@dataclass(frozen=True, slots=True)
class SpeedChange:
    """The belt goes from ``from_mps`` to ``to_mps`` under a walker.

    After ``lead_in_s`` at the old speed, the gait cross-fades to the new
    speed's cadence and amplitude over ``ramp_s`` while the change drags the
    feet (speed up) or lets them run ahead (slow down): the trunk pitches by
    ``drag_deg_per_mps`` times the change, opposite to the drag.
    """

    duration: float = 10.0
    from_mps: float = 0.22
    to_mps: float = 0.36
    direction: Direction = "backward"
    lead_in_s: float = 1.0
    ramp_s: float = 1.0
    drag_deg_per_mps: float = 5.0
    label: str = "speed_change"

    def __post_init__(self) -> None:
        if self.ramp_s <= 0 or self.lead_in_s < 0:
            raise ValueError("a speed change needs a positive ramp")
        if not (self.from_mps > 0 and self.to_mps > 0):
            raise ValueError("walking speeds must be positive")
        if self.lead_in_s + self.ramp_s > self.duration:
            raise ValueError("the speed change does not fit in the segment's duration")

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        old = _Gait(self.from_mps, self.direction, None, ctx.style)
        return _SpeedMotion(
            ctx,
            self.from_mps,
            self.to_mps,
            self.direction,
            self.lead_in_s,
            self.ramp_s,
            self.drag_deg_per_mps,
            _GaitMotion(old, _default_lean(self.direction) * _D2R, ctx.t0),
        )


class _GaitMotion:
    """Steady gait with a lean, as :class:`sim.scenarios.Walking` moves."""

    __slots__ = ("_gait", "_lean", "_t0")
    yaw_change = 0.0
    events: tuple[tuple[float, EventKind], ...] = ()

    def __init__(self, gait: _Gait, lean: float, t0: float) -> None:
        self._gait, self._lean, self._t0 = gait, lean, t0

    def kin(self, t: float) -> Kin:
        y, p, r, dy, dp, dr, ax, ay, az = self._gait.kin(self._t0 + t)
        return (y, p + self._lean, r, dy, dp, dr, ax, ay, az)


class _SpeedMotion:
    """``before`` until the ramp, then cross-faded into gait at ``to_mps``,
    with the trunk pitch and pelvis lurch of the belt's drag on the feet."""

    __slots__ = ("_after", "_before", "_drag", "_lurch", "_ramp_s", "_start", "events")
    yaw_change = 0.0

    def __init__(
        self,
        ctx: SegmentContext,
        from_mps: float,
        to_mps: float,
        direction: Direction,
        start: float,
        ramp_s: float,
        drag_deg_per_mps: float,
        before: SegmentMotion,
    ) -> None:
        gait = _Gait(to_mps, direction, None, ctx.style)
        self._before = before
        self._after = _GaitMotion(gait, _default_lean(direction) * _D2R, ctx.t0)
        self._start = start
        self._ramp_s = ramp_s
        change = to_mps - from_mps
        # The feet are dragged the way the belt accelerates them; the trunk
        # pitches the other way (positive pitch leans forward). A backward
        # walker faces the way the belt carries the feet.
        sign = _facing(direction) * (1.0 if change > 0 else -1.0)
        self._drag = -sign * abs(change) * drag_deg_per_mps * _D2R
        # The pelvis lurches with the feet at a fraction of the belt's
        # acceleration (g), then brakes: velocity-neutral.
        self._lurch = sign * 0.5 * abs(change) / ramp_s / _G
        self.events: tuple[tuple[float, EventKind], ...] = ()

    def kin(self, t: float) -> Kin:
        s, r = self._start, self._ramp_s
        k, dk = _ramp(t, s, r)
        if k <= 0.0:
            out = self._before.kin(t)
        elif k >= 1.0:
            out = self._after.kin(t)
        else:
            out = _blend(k, dk, self._before.kin(t), self._after.kin(t))
        b, db = _bump(t, s, 0.4 * r + 0.2, 0.1, 0.8)
        lurch = self._lurch * (_pulse(t, s, r) - r / (r + 0.4) * _pulse(t, s + r, r + 0.4))
        y, p, rl, dy, dp, dr, ax, ay, az = out
        return (y, p + self._drag * b, rl, dy, dp + self._drag * db, dr, ax + lurch, ay, az)


def turn_around(
    to: Direction, speed_mps: float = 0.22, turn_s: float = 2.5, duration: float = 5.0
) -> Turn:
    """The 2/2 plan's turn-around on a running belt: 180° about the vertical
    in ``turn_s`` while stepping, from the other direction into ``to``
    (the following segment walks ``to``; the sequence's blend joins them)."""
    start: Direction = "forward" if to == "backward" else "backward"
    return Turn(
        duration,
        speed_mps,
        start,
        angle_deg=180.0,
        turn_s=turn_s,
        lead_in_s=1.0,
        label=f"turn_to_{to}",
    )


@dataclass(frozen=True, slots=True)
class UprightBackwardFall:
    """A backward walker sits down backward: the belt carries the feet away,
    the pelvis drops fast with the trunk near vertical (module docstring)."""

    lie_s: float = 12.0
    speed_mps: float = 0.22
    lead_in_s: float = 1.0
    drop_s: float = 0.75
    drop_g: float = 0.6
    trunk_deg: float = 10.0
    impact_s: float = 0.1
    settle_s: float = 0.8
    ends: Literal["lying", "seated"] = "lying"
    label: str = "upright_backward_fall"

    def __post_init__(self) -> None:
        if min(self.drop_s, self.impact_s, self.settle_s, self.drop_g) <= 0:
            raise ValueError("fall timings and drop must be positive")
        if self.lead_in_s < 0 or self.impact_s >= self.settle_s:
            raise ValueError("the impact must end before the body settles")

    @property
    def duration(self) -> float:
        return self.lead_in_s + self.drop_s + self.settle_s + self.lie_s

    @property
    def impact_speed_mps(self) -> float:
        """Downward speed of the pelvis when it reaches the deck."""
        return self.drop_g * _G * self.drop_s / 2.0

    @property
    def drop_m(self) -> float:
        """How far the pelvis falls."""
        return self.drop_g * _G * self.drop_s**2 * (0.25 - 1.0 / _PI**2)

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _UprightFallMotion(self, ctx)


class _UprightFallMotion:
    __slots__ = ("_end", "_gait", "_imp", "_lean", "_spec", "_t0", "_trunk", "events")
    yaw_change = 0.0

    def __init__(self, spec: UprightBackwardFall, ctx: SegmentContext) -> None:
        rng = ctx.rng
        self._spec = spec
        self._gait = _Gait(spec.speed_mps, "backward", None, ctx.style)
        self._lean = _default_lean("backward") * _D2R
        self._t0 = ctx.t0
        self._trunk = spec.trunk_deg * _D2R
        lo, hi = (80.0, 90.0) if spec.ends == "lying" else (25.0, 35.0)
        self._end = rng.uniform(lo, hi) * _D2R
        # The half-sine seat impact absorbs the drop's speed: area P·impact_s·2/pi.
        self._imp = spec.impact_speed_mps / _G * _PI / (2.0 * spec.impact_s)
        self.events = fall_events(spec.lead_in_s, spec.drop_s, spec.impact_s, spec.settle_s)

    def kin(self, t: float) -> Kin:
        s = self._spec
        on = s.lead_in_s
        hit = on + s.drop_s
        fade, dfade = _ramp(t, on, 0.25)
        m, dm = 1.0 - fade, -dfade
        gy, gp, gr, gdy, gdp, gdr, gax, gay, gaz = self._gait.kin(self._t0 + t)
        # Trunk pitch: the walking lean, back to -trunk_deg during the drop
        # (hips and knees fold, the spine stays near vertical), then on to
        # the end posture after the seat lands.
        lean, dlean = _ramp(t, on, s.drop_s)
        pitch = self._lean + (-self._trunk - self._lean) * lean
        dpitch = (-self._trunk - self._lean) * dlean
        back, dback = _ramp(t, hit + s.impact_s, s.settle_s - s.impact_s)
        pitch += (self._trunk - self._end) * back
        dpitch += (self._trunk - self._end) * dback
        if t > hit + s.settle_s:
            a = 2.0 * _PI * 0.25 * (t - hit - s.settle_s)  # breathing
            pitch += 0.2 * _D2R * math.sin(a)
            dpitch += 0.2 * _D2R * 2.0 * _PI * 0.25 * math.cos(a)
        az = gaz * m
        if on < t < hit:
            u = (t - on) / s.drop_s
            sh = math.sin(0.5 * _PI * u)
            az -= s.drop_g * sh * sh
        elif hit <= t < hit + s.impact_s:
            az += self._imp * _pulse(t, hit, s.impact_s)
        elif hit + s.impact_s <= t < hit + s.settle_s:
            d = t - hit - s.impact_s
            az += 0.5 * math.exp(-d / 0.04) * math.sin(2.0 * _PI * 12.0 * d)
        return (
            gy * m,
            gp * m + pitch,
            gr * m,
            gdy * m + gy * dm,
            gdp * m + gp * dm + dpitch,
            gdr * m + gr * dm,
            gax * m,
            gay * m,
            az,
        )


# ---------------------------------------------------------------- sessions

SPEED_STEPS_MPH = (0.3, 0.5, 0.8, 1.0, 1.2, 1.5)
"""The belt settings a session steps through (0.3 mph is the slowest most
treadmills run, 1.5 mph brisk for backward walking)."""


def belt_start_session(
    *, seed: int = 0, direction: Direction = "backward", speed_mph: float = 0.5
) -> Sequence:
    """Standing, the belt starts, 20 s of walking."""
    v = mph(speed_mph)
    return Sequence(
        [Standing(3.0), BeltStart(20.0, v, direction)],
        seed=seed,
        name=f"walking_treadmill_belt_start_{direction}_{speed_mph:g}mph",
    )


def speed_steps_session(
    *, seed: int = 0, direction: Direction = "backward", hold_s: float = 8.0
) -> Sequence:
    """Belt start at 0.3 mph, then up through :data:`SPEED_STEPS_MPH` and back down."""
    speeds = [mph(s) for s in SPEED_STEPS_MPH]
    segments: list[Walking | BeltStart | SpeedChange | Standing] = [
        Standing(3.0),
        BeltStart(hold_s, speeds[0], direction),
    ]
    for a, b in itertools.pairwise(speeds):
        segments.append(SpeedChange(hold_s, a, b, direction))
    for a, b in itertools.pairwise(speeds[::-1]):
        segments.append(SpeedChange(hold_s, a, b, direction))
    return Sequence(segments, seed=seed, name=f"walking_treadmill_speed_steps_{direction}")


def turnaround_session(*, seed: int = 0, speed_mph: float = 0.5, walk_s: float = 15.0) -> Sequence:
    """The alternate-2-2 plan, compressed: backward, turn, forward, turn, backward."""
    v = mph(speed_mph)
    return Sequence(
        [
            Standing(3.0),
            BeltStart(walk_s, v, "backward"),
            turn_around("forward", v),
            Walking(walk_s, v, "forward"),
            turn_around("backward", v),
            Walking(walk_s, v, "backward"),
        ],
        seed=seed,
        name=f"walking_treadmill_turnarounds_{speed_mph:g}mph",
    )


def treadmill_session(*, seed: int = 0, hold_s: float = 8.0) -> Sequence:
    """Everything at once: belt start, speed steps up and down walking
    backward, a turn-around, forward at each speed, a turn-around back."""
    speeds = [mph(s) for s in SPEED_STEPS_MPH]
    segments: list[Walking | BeltStart | SpeedChange | Standing | Turn] = [
        Standing(3.0),
        BeltStart(hold_s, speeds[0], "backward"),
    ]
    for a, b in itertools.pairwise(speeds):
        segments.append(SpeedChange(hold_s, a, b, "backward"))
    segments.append(turn_around("forward", speeds[-1]))
    for a, b in itertools.pairwise(speeds[::-1]):
        segments.append(SpeedChange(hold_s, a, b, "forward"))
    segments.append(turn_around("backward", speeds[0]))
    segments.append(Walking(hold_s, speeds[0], "backward"))
    return Sequence(segments, seed=seed, name="walking_treadmill_session")


def upright_backward_fall(
    *,
    seed: int = 0,
    speed_mph: float = 0.5,
    ends: Literal["lying", "seated"] = "lying",
    drop_s: float = 0.75,
    drop_g: float = 0.6,
    trunk_deg: float = 10.0,
) -> Sequence:
    """Walking backward on the belt, then sitting down backward with the trunk near vertical."""
    v = mph(speed_mph)
    fall = UprightBackwardFall(
        speed_mps=v, ends=ends, drop_s=drop_s, drop_g=drop_g, trunk_deg=trunk_deg
    )
    return Sequence(
        [Standing(3.0), BeltStart(12.0, v, "backward"), fall],
        seed=seed,
        name=f"walking_backward_upright_fall_{ends}",
    )
