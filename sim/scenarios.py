"""Synthesised waist-IMU motion: standing, walking, turns, stumbles and backward falls.

Each scenario is a :class:`~sim.motion.MotionSource` for the simulated
MPU-6050 (and, written to a trace, for ``replay``/``evaluate``). The aim is
signals that a detector cannot tell from a belt sensor by the features it
uses — magnitudes, rates, timing, posture — not a biomechanical model.

How the signals are made
    Every segment describes the trunk with analytic functions of time: the
    Euler angles yaw, pitch, roll (Z-Y-X, body frame ``(forward, left, up)``,
    positive pitch = leaning forward) *with their exact time derivatives*,
    and the waist's linear acceleration in a level frame. :class:`Sequence`
    turns them into what an IMU measures:

    * gyro = body angular rate computed from the Euler rates (exactly the
      rate of the orientation used below, so integrating the gyro reproduces
      the orientation; no numerical integration that could drift);
    * accelerometer = specific force ``R^T (a + g_up)``: gravity rotated by
      the current orientation plus linear acceleration;

    then rotates both into the sensor frame with the :class:`Mounting`, adds
    sensor noise and an optional gyro bias. Consecutive segments are
    cross-faded over ``blend_s`` with the blend's own derivative added to the
    rates, so the transitions stay self-consistent too.

Default mounting
    :data:`DEFAULT_MOUNTING` is ``x=right y=down z=forward``: the MPU-6050
    board upright on the belt buckle, component side facing forward. Front
    of the waist because a backward fall lands on the back, where a lumbar
    box would take the impact (and hurt); the same axes as the SisFall waist
    device, so synthetic and SisFall traces line up axis for axis.

Figures and where they come from (typical values, rounded; the docstrings
of the segments give the details):

* forward walking cadence 1.6-2.0 steps/s at 1.0-1.5 m/s (Grieve & Gear 1966,
  Ergonomics 9:379);
* backward walking: slower preferred speed (about 0.6-0.9 m/s), shorter steps,
  similar or higher cadence at matched speed (Thorstensson 1986, Exp Brain Res
  61:664; Laufer 2005, J Gerontol A 60:627; Hoogkamer et al. 2014, Exerc Sport
  Sci Rev 42:23);
* lower-trunk vertical acceleration ±0.2-0.4 g at step frequency, mediolateral
  at stride frequency (Zijlstra & Hof 2003, Gait Posture 18:1; Menz et al. 2003,
  Gait Posture 18:35);
* falls: trunk angular rate above ~3 rad/s (~170 °/s) (Bourke & Lyons 2008, Med
  Eng Phys 30:84), pre-impact acceleration below ~0.6 g and impact above ~3 g at
  the trunk (Bourke et al. 2007, Gait Posture 26:194), hip impact speeds of
  2-3 m/s (van den Kroonenberg et al. 1996, J Biomech Eng 118:391).

Everything is deterministic: randomness (gait phases, amplitude jitter, fall
direction, noise) comes from ``random.Random(seed)`` when a :class:`Sequence`
is built; :meth:`Sequence.at` is a pure function of ``t``.
"""

from __future__ import annotations

import bisect
import math
import random
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from core.mounting import SISFALL_MOUNTING, Mounting
from core.trace import TraceHeader
from sim.motion import Vector6

DEFAULT_MOUNTING: Mounting = SISFALL_MOUNTING
"""``x=right y=down z=forward``: upright on the belt buckle, component side forward."""

Direction = Literal["forward", "backward"]
EventKind = Literal["stumble_onset", "fall_onset", "impact", "at_rest"]


def fall_events(
    onset: float, descent_s: float, impact_s: float, settle_s: float
) -> tuple[tuple[float, EventKind], ...]:
    """A fall's labelled moments: onset, the middle of the impact pulse, at rest."""
    hit = onset + descent_s
    return ((onset, "fall_onset"), (hit + impact_s / 2.0, "impact"), (hit + settle_s, "at_rest"))


_PI = math.pi
_TAU = 2.0 * math.pi
_D2R = math.pi / 180.0
_R2D = 180.0 / math.pi
_G = 9.80665

Kin = tuple[float, float, float, float, float, float, float, float, float]
"""Trunk kinematics at one instant: yaw, pitch, roll (rad), their time
derivatives (rad/s), and the waist's linear acceleration (g) in a level frame
(forward, left, up) turned with the segment's heading."""


# ---------------------------------------------------------------- smooth shapes


def _ramp(t: float, t0: float, dur: float) -> tuple[float, float]:
    """Cosine ramp 0 → 1 over ``[t0, t0 + dur]`` and its derivative."""
    if t <= t0:
        return 0.0, 0.0
    if t >= t0 + dur:
        return 1.0, 0.0
    a = _PI * (t - t0) / dur
    return 0.5 - 0.5 * math.cos(a), 0.5 * _PI / dur * math.sin(a)


def _bump(t: float, t0: float, rise: float, hold: float, fall: float) -> tuple[float, float]:
    """0 → 1 over ``rise``, 1 for ``hold``, back to 0 over ``fall``; with derivative."""
    t1 = t0 + rise + hold
    if t < t1:
        return _ramp(t, t0, rise)
    v, dv = _ramp(t, t1, fall)
    return 1.0 - v, -dv


def _pulse(t: float, t0: float, dur: float) -> float:
    """Half-sine pulse of height 1 over ``[t0, t0 + dur]``; area ``2 dur / pi``."""
    if t <= t0 or t >= t0 + dur:
        return 0.0
    return math.sin(_PI * (t - t0) / dur)


# ---------------------------------------------------------------- public records


class Event(NamedTuple):
    """A labelled instant of a scenario, in :class:`Sequence` time."""

    t: float
    kind: EventKind
    segment: int
    """Index of the segment it belongs to."""


class Span(NamedTuple):
    """Where a segment sits in :class:`Sequence` time (the blend starts at ``start``)."""

    start: float
    end: float
    label: str


class Pose(NamedTuple):
    """Ground-truth trunk orientation in degrees, for tests and plots."""

    yaw_deg: float
    pitch_deg: float
    """Positive leaning forward, negative backward (-90 = lying on the back)."""
    roll_deg: float
    tilt_deg: float
    """Angle between the trunk's up axis and vertical, whatever its direction."""


class SegmentMotion(Protocol):
    """A realised segment: kinematics as a function of segment-local time."""

    yaw_change: float
    """Heading change (rad) from the segment's start to its end."""
    events: tuple[tuple[float, EventKind], ...]
    """Local times of labelled instants."""

    def kin(self, t: float) -> Kin:
        """Kinematics at local time ``t``; defined past the end (it keeps going or holds)."""
        ...


@dataclass(frozen=True, slots=True)
class SegmentContext:
    """What :class:`Sequence` hands a segment when it realises it."""

    rng: random.Random
    style: _GaitStyle
    t0: float
    """Sequence time at which the segment starts (gait phase runs on it)."""


class Segment(Protocol):
    """A scenario building block: parameters only; :class:`Sequence` realises it."""

    @property
    def label(self) -> str: ...

    @property
    def duration(self) -> float: ...

    def realise(self, ctx: SegmentContext) -> SegmentMotion: ...


# ---------------------------------------------------------------- gait


def step_frequency_hz(speed_mps: float, direction: Direction = "forward") -> float:
    """Step frequency (steps/s) of treadmill walking at ``speed_mps``.

    Step length grows with speed, so cadence = speed / step length:

    * forward, step ≈ 0.35 + 0.27·v m: 1.6 Hz at 1.0 m/s, 1.9 Hz at 1.4 m/s,
      within the 1.6-2.0 steps/s adults choose at 1.0-1.5 m/s (Grieve & Gear 1966);
    * backward, step ≈ 0.26 + 0.23·v m: about 0.42 m at the ~0.7 m/s people
      prefer walking backward, i.e. ~1.7 steps/s. Backward walking is slower,
      with shorter steps and a similar or higher cadence than forward walking
      at the same speed (Thorstensson 1986; Laufer 2005; Hoogkamer et al. 2014).

    Clamped to 0.8-2.4 Hz, the range of walking rather than shuffling or running.
    """
    if not speed_mps > 0:
        raise ValueError(f"walking speed must be positive, not {speed_mps}")
    step_m = 0.35 + 0.27 * speed_mps if direction == "forward" else 0.26 + 0.23 * speed_mps
    return min(2.4, max(0.8, speed_mps / step_m))


@dataclass(frozen=True, slots=True)
class _GaitStyle:
    """One walker's idiosyncrasies: phase offsets and amplitude factors, drawn once per
    sequence so that consecutive walking segments continue the same stride."""

    phases: tuple[float, ...]
    gains: tuple[float, ...]

    @staticmethod
    def draw(rng: random.Random) -> _GaitStyle:
        return _GaitStyle(
            phases=tuple(rng.uniform(0.0, _TAU) for _ in range(7)),
            gains=tuple(rng.uniform(0.85, 1.15) for _ in range(6)),
        )


class _Gait:
    """Periodic trunk motion of walking, zero-mean (lean is added by the segment).

    Amplitudes scale with speed ``v`` (m/s), then by the walker's gains:

    * vertical acceleration ±(0.12 + 0.2·v) g at step frequency (0.24 g at
      0.6 m/s, 0.36 g at 1.2 m/s; capped to 0.15-0.4 g) plus a quarter of that at
      twice the step frequency: the inverted-pendulum bounce of the pelvis;
    * anteroposterior acceleration 0.6 times the vertical, at step frequency;
    * mediolateral acceleration ±(0.08 + 0.04·v) g at stride frequency (half the
      step frequency), the side-to-side shift of weight;
    * pitch rate ±(15 + 10·v) °/s at step frequency, roll rate ±(18 + 10·v) °/s
      and yaw rate ±(20 + 12·v) °/s at stride frequency (pelvic obliquity and
      rotation), i.e. ±20-40 °/s as seen on waist gyros (SisFall D01/D02).

    Backward walking gets 0.9 times the vertical amplitude: shorter, more careful steps.
    """

    __slots__ = ("_a", "_p", "_w", "step_hz")

    def __init__(
        self, speed_mps: float, direction: Direction, step_hz: float | None, style: _GaitStyle
    ) -> None:
        v = speed_mps
        f = step_hz if step_hz is not None else step_frequency_hz(v, direction)
        if not f > 0:
            raise ValueError(f"step frequency must be positive, not {f}")
        self.step_hz = f
        w = _TAU * f
        g = style.gains
        av = min(0.4, max(0.15, 0.12 + 0.2 * v)) * (0.9 if direction == "backward" else 1.0)
        pitch_rate = (15.0 + 10.0 * v) * _D2R * g[3]
        roll_rate = (18.0 + 10.0 * v) * _D2R * g[4]
        yaw_rate = (20.0 + 12.0 * v) * _D2R * g[5]
        self._w = w
        # Amplitudes: vertical, vertical 2nd harmonic, AP, ML (g); pitch, roll, yaw (rad).
        self._a = (
            av * g[0],
            0.25 * av * g[0],
            0.6 * av * g[1],
            (0.08 + 0.04 * v) * g[2],
            pitch_rate / w,
            roll_rate / (0.5 * w),
            yaw_rate / (0.5 * w),
        )
        self._p = style.phases

    def kin(self, t: float) -> Kin:
        """Oscillation at absolute sequence time ``t`` (phase continuity across segments)."""
        a, p, w = self._a, self._p, self._w
        ph = w * t
        half = 0.5 * ph
        sp, cp = math.sin(ph + p[4]), math.cos(ph + p[4])
        sr, cr = math.sin(half + p[5]), math.cos(half + p[5])
        sy, cy = math.sin(half + p[6]), math.cos(half + p[6])
        return (
            a[6] * sy,
            a[4] * sp,
            a[5] * sr,
            a[6] * 0.5 * w * cy,
            a[4] * w * cp,
            a[5] * 0.5 * w * cr,
            a[2] * math.sin(ph + p[2]),
            a[3] * math.sin(half + p[3]),
            a[0] * math.cos(ph + p[0]) + a[1] * math.cos(2.0 * ph + p[1]),
        )


def _default_lean(direction: Direction) -> float:
    """Trunk lean toward the direction of travel: 4° forward, 3° backward.

    An assumption, not a measured figure: walkers incline slightly into the
    direction they move; the detector must not read the backward lean of
    backward walking as the start of a fall.
    """
    return 4.0 if direction == "forward" else -3.0


# ---------------------------------------------------------------- segments


@dataclass(frozen=True, slots=True)
class Standing:
    """Quiet standing: gravity, postural sway and nothing else.

    Sway: two sinusoids per axis at 0.1-0.7 Hz, 0.2-0.5° in pitch and a little
    less in roll, the range of quiet-standing centre-of-mass sway; the waist
    acceleration that goes with it (about 1 m above the ankles) is a few mg.
    """

    duration: float
    label: str = "standing"

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _StandingMotion(ctx.rng)


class _StandingMotion:
    __slots__ = ("_c",)
    yaw_change = 0.0
    events: tuple[tuple[float, EventKind], ...] = ()

    def __init__(self, rng: random.Random) -> None:
        def wave(lo: float, hi: float, flo: float, fhi: float) -> tuple[float, float, float]:
            return rng.uniform(lo, hi) * _D2R, _TAU * rng.uniform(flo, fhi), rng.uniform(0, _TAU)

        # (amplitude rad, angular frequency rad/s, phase) for pitch, pitch, roll, roll, yaw
        self._c = (
            wave(0.2, 0.5, 0.1, 0.3),
            wave(0.1, 0.3, 0.3, 0.7),
            wave(0.1, 0.3, 0.1, 0.3),
            wave(0.05, 0.2, 0.3, 0.7),
            wave(0.05, 0.2, 0.03, 0.1),
        )

    def kin(self, t: float) -> Kin:
        ang = [0.0, 0.0, 0.0]
        rate = [0.0, 0.0, 0.0]
        acc = [0.0, 0.0]
        for i, (a, w, p) in enumerate(self._c):
            s, c = math.sin(w * t + p), math.cos(w * t + p)
            axis = (1, 1, 2, 2, 0)[i]
            ang[axis] += a * s
            rate[axis] += a * w * c
            # Sway pivots about the ankles, ~1 m below the waist: leaning forward
            # (+pitch) moves the waist forward, rolling right (+roll) moves it right.
            if axis == 1:
                acc[0] -= a * w * w * s / _G
            elif axis == 2:
                acc[1] += a * w * w * s / _G
        return (ang[0], ang[1], ang[2], rate[0], rate[1], rate[2], acc[0], acc[1], 0.0)


@dataclass(frozen=True, slots=True)
class Walking:
    """Steady treadmill walking (the belt carries the body back; no net travel).

    ``direction`` is the way the walker faces relative to travel: backward
    walking is RetroGuard's use case. ``step_hz`` overrides the cadence of
    :func:`step_frequency_hz`; ``lean_deg`` the trunk lean (positive forward).
    """

    duration: float
    speed_mps: float = 0.6
    direction: Direction = "backward"
    step_hz: float | None = None
    lean_deg: float | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", f"walk_{self.direction}")

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _WalkingMotion(self, ctx)


class _WalkingMotion:
    __slots__ = ("_gait", "_lean", "_t0")
    yaw_change = 0.0
    events: tuple[tuple[float, EventKind], ...] = ()

    def __init__(self, spec: Walking, ctx: SegmentContext) -> None:
        self._gait = _Gait(spec.speed_mps, spec.direction, spec.step_hz, ctx.style)
        lean = spec.lean_deg if spec.lean_deg is not None else _default_lean(spec.direction)
        self._lean = lean * _D2R
        self._t0 = ctx.t0

    def kin(self, t: float) -> Kin:
        y, p, r, dy, dp, dr, ax, ay, az = self._gait.kin(self._t0 + t)
        return (y, p + self._lean, r, dy, dp, dr, ax, ay, az)


@dataclass(frozen=True, slots=True)
class Turn:
    """A 180° (``angle_deg``) turn while walking, a classic false-alarm source.

    After ``lead_in_s`` of walking the heading turns with a cosine profile over
    ``turn_s``: 180° in 2 s peaks at about 140 °/s of yaw rate, as fast as a
    fall's pitch rate but about the vertical. The trunk banks up to 4° into the
    turn. Positive angles turn left. The heading stays changed afterwards.
    """

    duration: float = 5.0
    speed_mps: float = 0.6
    direction: Direction = "backward"
    angle_deg: float = 180.0
    turn_s: float = 2.0
    lead_in_s: float = 1.0
    label: str = "turn"

    def __post_init__(self) -> None:
        if self.turn_s <= 0 or self.lead_in_s < 0:
            raise ValueError("turn_s must be positive and lead_in_s not negative")
        if self.lead_in_s + self.turn_s > self.duration:
            raise ValueError("the turn does not fit in the segment's duration")

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _TurnMotion(self, ctx)


class _TurnMotion:
    __slots__ = ("_bank", "_gait", "_lean", "_spec", "_t0", "events", "yaw_change")

    def __init__(self, spec: Turn, ctx: SegmentContext) -> None:
        self._spec = spec
        self._gait = _Gait(spec.speed_mps, spec.direction, None, ctx.style)
        self._lean = _default_lean(spec.direction) * _D2R
        self._t0 = ctx.t0
        self._bank = -math.copysign(4.0 * _D2R, spec.angle_deg)  # left turn: lean left
        self.yaw_change = spec.angle_deg * _D2R
        self.events: tuple[tuple[float, EventKind], ...] = ()

    def kin(self, t: float) -> Kin:
        s = self._spec
        y, p, r, dy, dp, dr, ax, ay, az = self._gait.kin(self._t0 + t)
        k, dk = _ramp(t, s.lead_in_s, s.turn_s)
        turn = self.yaw_change * k
        y += turn
        dy += self.yaw_change * dk
        if s.lead_in_s < t < s.lead_in_s + s.turn_s:
            a = _PI * (t - s.lead_in_s) / s.turn_s
            r += self._bank * math.sin(a)
            dr += self._bank * _PI / s.turn_s * math.cos(a)
            ay += 0.05 * math.copysign(math.sin(a), s.angle_deg)  # centripetal
        c, sn = math.cos(turn), math.sin(turn)
        return (y, p + self._lean, r, dy, dp, dr, c * ax - sn * ay, sn * ax + c * ay, az)


@dataclass(frozen=True, slots=True)
class StumbleRecovery:
    """A backward stumble while walking backward, caught by recovery steps.

    After ``lead_in_s`` of backward walking (event ``stumble_onset``):

    * the trunk rotates backward by ``tilt_deg`` (15-30°) within ``rise_s``
      (150-300 ms) — a cosine profile, so the peak rate is
      ``tilt·pi/(2·rise)``: 22° in 0.22 s peaks at ~160 °/s — with a few degrees
      of roll and twist, since real stumbles are not purely sagittal;
    * the pelvis drops briefly (vertical specific force down to ~0.55 g for
      180 ms) and lurches backward, then the catching step brakes both;
    * the normal gait pattern is disrupted, then ~2 s of larger, hastier
      recovery steps follow while the trunk returns upright over ``recover_s``.

    The descent and lurch are velocity-neutral: the waist ends where it began.
    """

    duration: float = 5.0
    speed_mps: float = 0.6
    lead_in_s: float = 1.0
    tilt_deg: float = 22.0
    rise_s: float = 0.22
    hold_s: float = 0.1
    recover_s: float = 0.9
    label: str = "stumble"

    def __post_init__(self) -> None:
        if min(self.rise_s, self.recover_s) <= 0 or min(self.hold_s, self.lead_in_s) < 0:
            raise ValueError("stumble timings must be positive")
        if self.lead_in_s + self.rise_s + self.hold_s + self.recover_s > self.duration:
            raise ValueError("the stumble does not fit in the segment's duration")

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _StumbleMotion(self, ctx)


class _StumbleMotion:
    __slots__ = ("_gait", "_lean", "_roll", "_spec", "_t0", "_twist", "events", "yaw_change")

    def __init__(self, spec: StumbleRecovery, ctx: SegmentContext) -> None:
        self._spec = spec
        self._gait = _Gait(spec.speed_mps, "backward", None, ctx.style)
        self._lean = _default_lean("backward") * _D2R
        self._t0 = ctx.t0
        self._roll = ctx.rng.uniform(-6.0, 6.0) * _D2R
        self._twist = ctx.rng.uniform(-8.0, 8.0) * _D2R
        self.yaw_change = 0.0
        self.events: tuple[tuple[float, EventKind], ...] = ((spec.lead_in_s, "stumble_onset"),)

    def kin(self, t: float) -> Kin:
        s = self._spec
        on = s.lead_in_s
        y, p, r, dy, dp, dr, ax, ay, az = self._gait.kin(self._t0 + t)
        dip, ddip = _bump(t, on, 0.15, 0.3, 0.6)
        rec, drec = _bump(t, on + 0.45, 0.4, 1.2, 0.8)
        m = 1.0 - 0.7 * dip + 0.5 * rec
        dm = -0.7 * ddip + 0.5 * drec
        b, db = _bump(t, on, s.rise_s, s.hold_s, s.recover_s)
        tilt = s.tilt_deg * _D2R
        # Descent and backward lurch, each cancelled by a later, longer brake pulse.
        drop = -0.45 * _pulse(t, on, 0.18) + 0.45 * 0.18 / 0.3 * _pulse(t, on + 0.18, 0.3)
        lurch = -0.3 * _pulse(t, on, 0.15) + 0.3 * 0.15 / 0.35 * _pulse(t, on + 0.15, 0.35)
        return (
            y * m + self._twist * b,
            p * m + self._lean - tilt * b,
            r * m + self._roll * b,
            dy * m + y * dm + self._twist * db,
            dp * m + p * dm - tilt * db,
            dr * m + r * dm + self._roll * db,
            ax * m + lurch,
            ay * m,
            az * m + drop,
        )


@dataclass(frozen=True, slots=True)
class BackwardFall:
    """A backward fall while walking backward, ending lying on the back.

    Phases, after ``lead_in_s`` of backward walking:

    1. ``fall_onset``: loss of balance. The trunk pitches backward from its lean
       to ``impact_tilt_deg`` (70°) over ``fall_s`` (0.9 s) with an accelerating
       profile (progress (u²+u³)/2), so the rate grows to ~200 °/s just before
       impact; some roll and twist build up. The gait fades out over 0.3 s.
       The pelvis accelerates downward up to 0.55 g, so the measured specific
       force sinks to ~0.45 g just before impact (partial free fall), reaching
       ~2.4 m/s downward; it also drifts backward at up to ~0.8 m/s.
    2. ``impact``: the pelvis hits the ground and both velocities are absorbed
       by half-sine pulses over ``impact_s`` (100 ms): about 5 g peak, plus
       a damped 14 Hz ringing of soft tissue. The event time is the peak.
    3. The back settles to ``lying_tilt`` (84-90°, drawn) within 0.5 s; then
       ``at_rest``: lying still with faint breathing motion for ``lie_s``.
    """

    lie_s: float = 15.0
    speed_mps: float = 0.6
    lead_in_s: float = 1.0
    fall_s: float = 0.9
    impact_tilt_deg: float = 70.0
    impact_s: float = 0.1
    settle_s: float = 0.5
    label: str = "fall"

    def __post_init__(self) -> None:
        if min(self.fall_s, self.impact_s, self.settle_s) <= 0 or self.lead_in_s < 0:
            raise ValueError("fall timings must be positive")
        if self.impact_s >= self.settle_s:
            raise ValueError("the impact must end before the body settles")

    @property
    def duration(self) -> float:
        return self.lead_in_s + self.fall_s + self.settle_s + self.lie_s

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _FallMotion(self, ctx)


_FALL_DOWN_G = 0.55
"""Peak downward acceleration of the pelvis during the fall (g)."""
_FALL_BACK_G = 0.15
"""Peak backward acceleration of the pelvis during the fall (g)."""


class _FallMotion:
    __slots__ = (
        "_gait",
        "_imp_x",
        "_imp_z",
        "_lean",
        "_lie",
        "_roll",
        "_spec",
        "_t0",
        "_tilt",
        "_twist",
        "events",
        "yaw_change",
    )

    def __init__(self, spec: BackwardFall, ctx: SegmentContext) -> None:
        rng = ctx.rng
        self._spec = spec
        self._gait = _Gait(spec.speed_mps, "backward", None, ctx.style)
        self._lean = _default_lean("backward") * _D2R
        self._t0 = ctx.t0
        self._tilt = spec.impact_tilt_deg * _D2R
        self._lie = rng.uniform(84.0, 90.0) * _D2R
        self._roll = rng.choice((-1.0, 1.0)) * rng.uniform(3.0, 10.0) * _D2R
        self._twist = rng.uniform(-15.0, 15.0) * _D2R
        # Impact pulses that cancel the velocities built up during the fall:
        # down: area of k·sin²(pi u/2) over fall_s is k·fall_s/2; back: area of
        # h·sin(pi u) is h·fall_s·2/pi; a half-sine of height P over impact_s has
        # area P·impact_s·2/pi.
        self._imp_z = _FALL_DOWN_G * spec.fall_s / 2.0 * _PI / (2.0 * spec.impact_s)
        self._imp_x = _FALL_BACK_G * spec.fall_s / spec.impact_s
        self.yaw_change = self._twist
        self.events = fall_events(spec.lead_in_s, spec.fall_s, spec.impact_s, spec.settle_s)

    def kin(self, t: float) -> Kin:
        s = self._spec
        on = s.lead_in_s
        hit = on + s.fall_s
        fade, dfade = _ramp(t, on, 0.3)
        m, dm = 1.0 - fade, -dfade
        gy, gp, gr, gdy, gdp, gdr, gax, gay, gaz = self._gait.kin(self._t0 + t)

        # Pitch: lean → -impact tilt (accelerating) → -lying tilt (decelerating).
        if t <= on:
            pitch, dpitch = self._lean, 0.0
        elif t < hit:
            u = (t - on) / s.fall_s
            span = -self._tilt - self._lean
            pitch = self._lean + span * 0.5 * u * u * (1.0 + u)
            dpitch = span * 0.5 * u * (2.0 + 3.0 * u) / s.fall_s
        elif t < hit + s.settle_s:
            u = (t - hit) / s.settle_s
            span = self._tilt - self._lie
            pitch = -self._tilt + span * (1.0 - (1.0 - u) * (1.0 - u))
            dpitch = span * 2.0 * (1.0 - u) / s.settle_s
        else:
            a = _TAU * 0.25 * (t - hit - s.settle_s)  # breathing, 15 breaths/min
            pitch = -self._lie + 0.2 * _D2R * math.sin(a)
            dpitch = 0.2 * _D2R * _TAU * 0.25 * math.cos(a)
        k, dk = _ramp(t, on, s.fall_s + 0.5 * s.settle_s)

        ax = gax * m
        az = gaz * m
        if on < t < hit:
            u = (t - on) / s.fall_s
            sh = math.sin(0.5 * _PI * u)
            az -= _FALL_DOWN_G * sh * sh
            ax -= _FALL_BACK_G * math.sin(_PI * u)
        elif hit <= t < hit + s.impact_s:
            az += self._imp_z * _pulse(t, hit, s.impact_s)
            ax += self._imp_x * _pulse(t, hit, s.impact_s)
        elif hit + s.impact_s <= t < hit + s.settle_s:
            d = t - hit - s.impact_s
            az += 0.8 * math.exp(-d / 0.04) * math.sin(_TAU * 14.0 * d)
        return (
            gy * m + self._twist * k,
            gp * m + pitch,
            gr * m + self._roll * k,
            gdy * m + gy * dm + self._twist * dk,
            gdp * m + gp * dm + dpitch,
            gdr * m + gr * dm + self._roll * dk,
            ax,
            gay * m,
            az,
        )


@dataclass(frozen=True, slots=True)
class Lying:
    """Lying still on the back (trunk 84-90° from upright), breathing faintly."""

    duration: float
    label: str = "lying"

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _LyingMotion(ctx.rng)


class _LyingMotion:
    __slots__ = ("_pitch", "_roll")
    yaw_change = 0.0
    events: tuple[tuple[float, EventKind], ...] = ()

    def __init__(self, rng: random.Random) -> None:
        self._pitch = -rng.uniform(84.0, 90.0) * _D2R
        self._roll = rng.uniform(-5.0, 5.0) * _D2R

    def kin(self, t: float) -> Kin:
        a = _TAU * 0.25 * t
        amp = 0.2 * _D2R
        return (
            0.0,
            self._pitch + amp * math.sin(a),
            self._roll,
            0.0,
            amp * _TAU * 0.25 * math.cos(a),
            0.0,
            0.0,
            0.0,
            0.0,
        )


@dataclass(frozen=True, slots=True)
class Resting:
    """The sensor off the body, lying still on a surface (the console, a shelf, the floor).

    No rotation and no acceleration: the accelerometer reads gravity at a fixed
    tilt (``pitch_deg``, ``roll_deg``; -80° pitch is a box lying on its back on
    a sloping console) and both sensors read only their noise — the
    :class:`Sequence`'s, the MPU-6050 datasheet's noise density. What the
    sensor-worn check (:mod:`firmware.detection.worn`) must call "not worn".
    """

    duration: float
    pitch_deg: float = -80.0
    roll_deg: float = 3.0
    label: str = "resting"

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _VibratingMotion(self.pitch_deg * _D2R, self.roll_deg * _D2R, 0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Vibrating:
    """The sensor off the body, resting on a console shaken by the treadmill's motor.

    A motor and its belt shake the frame at tens of Hz (``freq_hz``) with a
    tiny amplitude (``accel_g`` of vertical acceleration: 0.05 g at 25 Hz is a
    20 µm shake). The console also rocks about its mounting, ``lever_m`` below
    the sensor: the angle is the displacement over the lever, so the angular
    rate's amplitude is ``accel / (2 pi f lever)`` — 0.3 °/s for the defaults.
    What the sensor-worn check must call "not worn" although the data move.
    """

    duration: float
    freq_hz: float = 25.0
    accel_g: float = 0.05
    lever_m: float = 0.3
    pitch_deg: float = -80.0
    roll_deg: float = 3.0
    label: str = "vibrating"

    def __post_init__(self) -> None:
        if not (self.freq_hz > 0 and self.lever_m > 0 and self.accel_g >= 0):
            raise ValueError("vibration frequency and lever must be positive")

    @property
    def rocking_dps(self) -> float:
        """Amplitude of the console's rocking rate (°/s)."""
        return self.accel_g * _G / (_TAU * self.freq_hz * self.lever_m) * _R2D

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        w = _TAU * self.freq_hz
        return _VibratingMotion(
            self.pitch_deg * _D2R, self.roll_deg * _D2R, w, self.accel_g, self.rocking_dps * _D2R
        )


class _VibratingMotion:
    __slots__ = ("_accel", "_pitch", "_rate", "_roll", "_w")
    yaw_change = 0.0
    events: tuple[tuple[float, EventKind], ...] = ()

    def __init__(self, pitch: float, roll: float, w: float, accel_g: float, rate: float) -> None:
        self._pitch = pitch
        self._roll = roll
        self._w = w
        self._accel = accel_g
        self._rate = rate

    def kin(self, t: float) -> Kin:
        if self._w == 0.0:
            return (0.0, self._pitch, self._roll, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        s, c = math.sin(self._w * t), math.cos(self._w * t)
        rock = self._rate / self._w  # angle amplitude (rad) of a rate amplitude ``_rate``
        return (
            0.0,
            self._pitch + rock * s,
            self._roll + 0.5 * rock * c,
            0.0,
            self._rate * c,
            -0.5 * self._rate * s,
            0.0,
            0.0,
            self._accel * s,
        )


# ---------------------------------------------------------------- sequence

_NOISE_N = 4096
_NOISE_RATE_HZ = 1000.0
ACCEL_NOISE_G = 0.004
"""MPU-6050 accelerometer noise, 400 µg/√Hz over a ~70 Hz noise bandwidth (44 Hz DLPF)."""
GYRO_NOISE_DPS = 0.05
"""MPU-6050 gyro noise, 0.005 °/s/√Hz over the same bandwidth."""


class Sequence:
    """Segments played one after another: the :class:`MotionSource` tests and the demo use.

    Each segment starts where the previous one ends; during the first
    ``blend_s`` of a segment the motion cross-fades from the previous one
    (whose motion simply continues), so there are no jumps. Headings add up
    (a turn leaves the walker turned). Labelled instants (:attr:`events`) and
    segment boundaries (:attr:`segments`) are exact, in sequence time.

    ``noise`` scales the sensor noise (0 for noise-free signals); it is white
    noise held for 1 ms, drawn from a table, so ``at(t)`` stays a pure
    function of ``t``. ``gyro_bias_dps`` adds a constant zero-rate offset, as
    an uncalibrated MPU-6050 has (up to ±20 °/s).
    """

    def __init__(
        self,
        segments: Iterable[Segment],
        *,
        seed: int = 0,
        mounting: Mounting = DEFAULT_MOUNTING,
        noise: float = 1.0,
        blend_s: float = 0.6,
        gyro_bias_dps: tuple[float, float, float] = (0.0, 0.0, 0.0),
        name: str = "",
    ) -> None:
        specs = list(segments)
        if not specs:
            raise ValueError("a sequence needs at least one segment")
        if not mounting.is_known:
            raise ValueError(
                f"cannot synthesise for a mounting that is not fully known: {mounting}"
            )
        if blend_s < 0 or noise < 0:
            raise ValueError("blend_s and noise must not be negative")
        self.seed = seed
        self.mounting = mounting
        self.name = name or "+".join(s.label for s in specs)
        rng = random.Random(seed)
        style = _GaitStyle.draw(rng)
        starts: list[float] = []
        motions: list[SegmentMotion] = []
        spans: list[Span] = []
        events: list[Event] = []
        offsets: list[float] = []
        t = 0.0
        heading = 0.0
        for i, spec in enumerate(specs):
            if not spec.duration > 0:
                raise ValueError(f"segment {i} ({spec.label}) has no duration")
            motion = spec.realise(SegmentContext(rng, style, t))
            starts.append(t)
            motions.append(motion)
            offsets.append(heading)
            spans.append(Span(t, t + spec.duration, spec.label))
            events.extend(Event(t + lt, kind, i) for lt, kind in motion.events)
            heading += motion.yaw_change
            t += spec.duration
        self._starts = starts
        self._motions = motions
        self._offsets = [(h, math.cos(h), math.sin(h)) for h in offsets]
        self._blend = [min(blend_s, s.duration) for s in specs]
        self._duration = t
        self.segments: tuple[Span, ...] = tuple(spans)
        self.events: tuple[Event, ...] = tuple(events)
        self.label: Literal["fall", "adl"] = (
            "fall" if any(e.kind == "impact" for e in events) else "adl"
        )
        m = mounting.matrix  # sensor -> body; its transpose maps body -> sensor
        self._m = (m[0][0], m[1][0], m[2][0], m[0][1], m[1][1], m[2][1], m[0][2], m[1][2], m[2][2])
        noise_rng = random.Random(f"noise:{seed}")
        sig = (ACCEL_NOISE_G,) * 3 + (GYRO_NOISE_DPS,) * 3
        # array('d'), not lists: six tables of 4096 floats as Python objects are ~0.8 MB of
        # the demo's and the CPU benchmark's memory; as C doubles ~0.2 MB, same values
        self._noise = [
            array("d", (noise * s * noise_rng.gauss(0.0, 1.0) for _ in range(_NOISE_N)))
            if noise
            else None
            for s in sig
        ]
        self._bias = gyro_bias_dps

    @property
    def duration(self) -> float:
        return self._duration

    def event_time(self, kind: EventKind, index: int = 0) -> float:
        """Time of the ``index``-th event of ``kind``; ``KeyError`` when there is none."""
        times = [e.t for e in self.events if e.kind == kind]
        if index >= len(times):
            raise KeyError(f"{self.name} has {len(times)} {kind} event(s), not {index + 1}")
        return times[index]

    def span(self, label: str, index: int = 0) -> Span:
        """The ``index``-th segment labelled ``label``; ``KeyError`` when there is none."""
        found = [s for s in self.segments if s.label == label]
        if index >= len(found):
            raise KeyError(f"{self.name} has {len(found)} segment(s) {label!r}, not {index + 1}")
        return found[index]

    def _kin_at(self, t: float) -> Kin:
        """World kinematics at sequence time ``t`` (clamped), blended across boundaries."""
        t = min(max(t, 0.0), self._duration)
        i = bisect.bisect_right(self._starts, t) - 1
        k = self._kin_of(i, t)
        local = t - self._starts[i]
        blend = self._blend[i]
        if i == 0 or local >= blend:
            return k
        w, dw = _ramp(local, 0.0, blend)
        q = self._kin_of(i - 1, t)
        d = [k[j] - q[j] for j in range(3)]
        return (
            q[0] + w * d[0],
            q[1] + w * d[1],
            q[2] + w * d[2],
            q[3] + w * (k[3] - q[3]) + dw * d[0],
            q[4] + w * (k[4] - q[4]) + dw * d[1],
            q[5] + w * (k[5] - q[5]) + dw * d[2],
            q[6] + w * (k[6] - q[6]),
            q[7] + w * (k[7] - q[7]),
            q[8] + w * (k[8] - q[8]),
        )

    def _kin_of(self, i: int, t: float) -> Kin:
        """Segment ``i``'s kinematics at sequence time ``t``, in the sequence's heading."""
        y, p, r, dy, dp, dr, ax, ay, az = self._motions[i].kin(t - self._starts[i])
        h, c, s = self._offsets[i]
        if h == 0.0:
            return (y, p, r, dy, dp, dr, ax, ay, az)
        return (y + h, p, r, dy, dp, dr, c * ax - s * ay, s * ax + c * ay, az)

    def body(self, t: float) -> tuple[float, float, float, float, float, float]:
        """Noise-free specific force (g) and angular rate (°/s) in the body frame
        ``(forward, left, up)`` at time ``t``."""
        y, p, r, dy, dp, dr, ax, ay, az = self._kin_at(t)
        cy, sy = math.cos(y), math.sin(y)
        cp, sp = math.cos(p), math.sin(p)
        cr, sr = math.cos(r), math.sin(r)
        # Specific force in the world frame: linear acceleration plus 1 g up.
        fz = az + 1.0
        # World -> body: Rx(r)^T Ry(p)^T Rz(y)^T.
        x1 = cy * ax + sy * ay
        y1 = cy * ay - sy * ax
        x2 = cp * x1 - sp * fz
        z2 = sp * x1 + cp * fz
        # Body angular rate of R = Rz(y) Ry(p) Rx(r) from the Euler rates.
        return (
            x2,
            cr * y1 + sr * z2,
            cr * z2 - sr * y1,
            (dr - dy * sp) * _R2D,
            (dp * cr + dy * cp * sr) * _R2D,
            (dy * cp * cr - dp * sr) * _R2D,
        )

    def at(self, t: float) -> Vector6:
        """(ax, ay, az, gx, gy, gz) in the sensor frame: g and °/s, with noise and bias."""
        t = min(max(t, 0.0), self._duration)
        bf, bl, bu, wf, wl, wu = self.body(t)
        m = self._m
        out = [
            m[0] * bf + m[1] * bl + m[2] * bu,
            m[3] * bf + m[4] * bl + m[5] * bu,
            m[6] * bf + m[7] * bl + m[8] * bu,
            m[0] * wf + m[1] * wl + m[2] * wu + self._bias[0],
            m[3] * wf + m[4] * wl + m[5] * wu + self._bias[1],
            m[6] * wf + m[7] * wl + m[8] * wu + self._bias[2],
        ]
        j = int(t * _NOISE_RATE_HZ) % _NOISE_N
        for c, table in enumerate(self._noise):
            if table is not None:
                out[c] += table[j]
        return (out[0], out[1], out[2], out[3], out[4], out[5])

    def pose(self, t: float) -> Pose:
        """Ground-truth trunk orientation at ``t`` (heading included in yaw)."""
        y, p, r = self._kin_at(t)[:3]
        tilt = math.acos(max(-1.0, min(1.0, math.cos(p) * math.cos(r))))
        return Pose(y * _R2D, p * _R2D, r * _R2D, tilt * _R2D)

    def trace_header(
        self, sample_rate_hz: float, sensor: str = "MPU-6050 (simulated)"
    ) -> TraceHeader:
        """A trace header describing this sequence (label, first impact and
        fall onset, provenance)."""
        impacts = [e.t for e in self.events if e.kind == "impact"]
        onsets = [e.t for e in self.events if e.kind == "fall_onset"]
        return TraceHeader(
            sample_rate_hz=sample_rate_hz,
            sensor=sensor,
            mounting=self.mounting,
            label=self.label,
            activity=self.name,
            impact_t=impacts[0] if impacts else None,
            source=f"sim.scenarios seed={self.seed}",
            description=", ".join(f"{s.label} {s.start:.2f}-{s.end:.2f}s" for s in self.segments),
            onset_t=onsets[0] if onsets else None,
        )


# ---------------------------------------------------------------- ready-made scenarios


def scenario(
    segment: Segment,
    *,
    seed: int = 0,
    mounting: Mounting = DEFAULT_MOUNTING,
    noise: float = 1.0,
) -> Sequence:
    """One segment on its own as a :class:`MotionSource`, e.g. ``scenario(Standing(10))``."""
    return Sequence([segment], seed=seed, mounting=mounting, noise=noise)


def demo_session(
    *,
    seed: int = 0,
    speed_mps: float = 0.6,
    mounting: Mounting = DEFAULT_MOUNTING,
    reset_pause_s: float = 10.0,
    lie_s: float = 20.0,
    noise: float = 1.0,
    stumble: StumbleRecovery | None = None,
) -> Sequence:
    """The demo's story, about 75 s long:

    1. walk backward 20 s;
    2. a backward stumble with recovery (``stumble_onset`` ~1 s into it) —
       the detector should open the relay here;
    3. ``reset_pause``: standing while the treadmill is stopped and the
       operator resets (``span("reset_pause")`` gives the window);
    4. walk backward 15 s;
    5. a backward fall (``fall_onset``, ``impact``, ``at_rest`` events) and
       lying still for ``lie_s`` (≥ 15 s, for the no-recovery escalation).

    ``stumble`` replaces the default stumble (22° backward at ~160 °/s, its
    speed ``speed_mps``), e.g. to demonstrate a harder or a milder one.
    """
    return Sequence(
        [
            Walking(20.0, speed_mps, "backward"),
            stumble if stumble is not None else StumbleRecovery(speed_mps=speed_mps),
            Standing(reset_pause_s, label="reset_pause"),
            Walking(15.0, speed_mps, "backward"),
            BackwardFall(lie_s=lie_s, speed_mps=speed_mps),
        ],
        seed=seed,
        mounting=mounting,
        noise=noise,
        name="demo_session",
    )
