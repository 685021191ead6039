"""The calibration move: stand still, bend forward from the hips, straighten up.

``retroguard calibrate`` finds the vertical axis from standing still and the
forward axis from this lean (a standing person looks the same whichever way
the box faces about the vertical, so forward needs a movement). This segment
plugs into :class:`sim.scenarios.Sequence`, so the calibration is tested
in any mounting and with any gyro bias, with quiet-standing sway throughout.

The belt sits on the pelvis, which tilts with a hip hinge; its linear
acceleration during a slow 1.5 s bend is a few hundredths of a g and is left
out. ``tilt_deg`` is positive forward; a negative value leans backward (the
mistake the calibration cannot tell from a sensor mounted back to front).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.scenarios import EventKind, Kin, SegmentContext, SegmentMotion, Standing

_D2R = math.pi / 180.0


def _ramp(t: float, t0: float, dur: float) -> tuple[float, float]:
    """Cosine ramp 0 → 1 over ``[t0, t0 + dur]`` and its derivative."""
    if t <= t0:
        return 0.0, 0.0
    if t >= t0 + dur:
        return 1.0, 0.0
    a = math.pi * (t - t0) / dur
    return 0.5 - 0.5 * math.cos(a), 0.5 * math.pi / dur * math.sin(a)


@dataclass(frozen=True, slots=True)
class Lean:
    """Standing for ``lead_in_s``, bending by ``tilt_deg`` over ``bend_s``, holding for
    ``hold_s``, straightening over ``back_s``, then standing to the end of ``duration``."""

    duration: float = 8.0
    lead_in_s: float = 1.0
    tilt_deg: float = 30.0
    bend_s: float = 1.5
    hold_s: float = 1.0
    back_s: float = 1.5
    label: str = "lean"

    def __post_init__(self) -> None:
        if min(self.bend_s, self.back_s) <= 0 or min(self.lead_in_s, self.hold_s) < 0:
            raise ValueError("lean timings must be positive")
        if self.lead_in_s + self.bend_s + self.hold_s + self.back_s > self.duration:
            raise ValueError("the lean does not fit in the segment's duration")

    def realise(self, ctx: SegmentContext) -> SegmentMotion:
        return _LeanMotion(self, ctx)


class _LeanMotion:
    __slots__ = ("_spec", "_stand")
    yaw_change = 0.0
    events: tuple[tuple[float, EventKind], ...] = ()

    def __init__(self, spec: Lean, ctx: SegmentContext) -> None:
        self._spec = spec
        self._stand = Standing(spec.duration).realise(ctx)

    def kin(self, t: float) -> Kin:
        s = self._spec
        y, p, r, dy, dp, dr, ax, ay, az = self._stand.kin(t)
        down, d_down = _ramp(t, s.lead_in_s, s.bend_s)
        up, d_up = _ramp(t, s.lead_in_s + s.bend_s + s.hold_s, s.back_s)
        tilt = s.tilt_deg * _D2R
        return (y, p + tilt * (down - up), r, dy, dp + tilt * (d_down - d_up), dr, ax, ay, az)
