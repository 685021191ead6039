"""Synthesised walking and standing whose gait and sway figures are known exactly.

:mod:`sim.scenarios` makes signals a detector cannot tell from a belt sensor;
this module makes signals whose *answers* are known, to check the gait and
balance meters (:mod:`firmware.gait`) against the truth:

* :class:`SteppedWalking`: steps at given instants (so step times, their
  variability and left-right asymmetry are known), each step one cycle of a
  vertical bounce whose amplitude may differ between left and right steps
  (known autocorrelation symmetry), AP at the step rhythm, ML and yaw at the
  stride rhythm (side to side once per stride);
* :class:`SwayingStance`: quiet standing with horizontal trunk acceleration
  that is a sum of known sinusoids (known RMS, range, path, velocity, jerk
  and ellipse), under a static tilt of the belt that the meter must remove;
* :class:`Chain`: motion sources one after the other.

All are :class:`~sim.motion.MotionSource` (specific force in g, rate in
deg/s, sensor frame through a :class:`~core.mounting.Mounting`), for the
simulated MPU-6050 or sampled directly, and deterministic: randomness comes
from ``random.Random(seed)`` when they are built.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from core.mounting import SISFALL_MOUNTING, Mounting
from sim.motion import MotionSource, Vector6

_TAU = 2.0 * math.pi


def _tilted(
    mounting: Mounting, tilt: tuple[float, float], f: float, left: float, up: float
) -> tuple[float, float, float]:
    """Body ``(forward, left, up)`` -> sensor, for a belt pitched forward by the angle whose
    ``(cos, sin)`` is ``tilt`` (worked out once per source: this runs twice a sample)."""
    c, s = tilt
    return mounting.inverse((c * f - s * up, left, s * f + c * up))


def step_times(
    count: int,
    mean_s: float,
    *,
    asymmetry: float = 0.0,
    jitter_sd_s: float = 0.0,
    seed: int = 0,
    start_s: float = 0.0,
) -> list[float]:
    """``count`` step instants: odd steps last ``mean·(1+asymmetry)``, even ones
    ``mean·(1-asymmetry)``, each plus Gaussian jitter (SD ``jitter_sd_s``)."""
    rng = random.Random(seed)
    times = [start_s]
    for k in range(1, count):
        base = mean_s * (1.0 + asymmetry if k % 2 else 1.0 - asymmetry)
        times.append(times[-1] + base + rng.gauss(0.0, jitter_sd_s))
    return times


@dataclass(frozen=True, slots=True)
class GaitTruth:
    """What the meters should find in a :class:`SteppedWalking` (its steady part)."""

    step_times: tuple[float, ...]
    amplitudes: tuple[float, float]

    @property
    def durations(self) -> list[float]:
        t = self.step_times
        return [b - a for a, b in itertools.pairwise(t)]

    @property
    def mean_step_s(self) -> float:
        d = self.durations
        return sum(d) / len(d)

    @property
    def cadence_spm(self) -> float:
        return 60.0 / self.mean_step_s

    @property
    def cv_pct(self) -> float:
        d = self.durations
        m = sum(d) / len(d)
        return 100.0 * math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1)) / m

    @property
    def asymmetry_pct(self) -> float:
        d = self.durations
        odd, even = d[0::2], d[1::2]
        return 100.0 * abs(sum(odd) / len(odd) - sum(even) / len(even)) / self.mean_step_s


class SteppedWalking:
    """Walking with heel strikes exactly at ``times`` (seconds from the source's start).

    Each heel strike is a bump of vertical acceleration of fixed width
    (Gaussian, SD ``bump_s``; ``vertical_g`` high, times ``amplitude_ratio``
    on every second step), less the bumps' mean level (the trunk's bounce
    averages to nothing); AP follows the bump's slope (braking then
    propulsion); ML is a half-wave per step whose sign alternates (the side
    to side sway, once per stride), yaw the same. The bump does not stretch
    with the step, as a heel strike's transient does not: any consistent way
    of timing a bump finds the step times themselves. Before the first step
    and after the last the walker stands.
    """

    def __init__(
        self,
        times: Sequence[float],
        *,
        vertical_g: float = 0.35,
        amplitude_ratio: float = 1.0,
        bump_s: float = 0.08,
        ml_g: float = 0.1,
        yaw_dps: float = 25.0,
        tilt_deg: float = 4.0,
        mounting: Mounting = SISFALL_MOUNTING,
        noise_g: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.times = list(times)
        self.truth = GaitTruth(tuple(self.times), (vertical_g, vertical_g * amplitude_ratio))
        self._a = (vertical_g, vertical_g * amplitude_ratio)
        self._sigma = bump_s
        mean_step = (self.times[-1] - self.times[0]) / max(1, len(self.times) - 1)
        # the mean of the bumps over a step: what the bounce adds to 1 g on average
        self._level = 0.5 * sum(self._a) * bump_s * math.sqrt(_TAU) / mean_step
        self._ml = ml_g
        self._yaw = yaw_dps
        self._tilt = (math.cos(math.radians(tilt_deg)), math.sin(math.radians(tilt_deg)))
        self._mounting = mounting
        self._noise = noise_g
        self._rng = random.Random(seed)
        self.duration = self.times[-1] + 2.0

    def _bumps(self, t: float) -> tuple[float, float]:
        """Vertical bumps and their AP companion (g) at ``t``, from the nearby steps."""
        times, sigma = self.times, self._sigma
        k = bisect.bisect_left(times, t - 5.0 * sigma)
        v = ap = 0.0
        while k < len(times) and times[k] <= t + 5.0 * sigma:
            u = (t - times[k]) / sigma
            g = math.exp(-0.5 * u * u)
            a = self._a[k % 2]
            v += a * g
            ap -= 0.6 * a * u * g
            k += 1
        return v, ap

    def walking(self, t: float) -> bool:
        return self.times[0] <= t < self.times[-1]

    def vertical(self, t: float) -> float:
        """The vertical linear acceleration (g) at ``t``: the signal the regularity measures."""
        if not self.walking(t):
            return 0.0
        return self._bumps(t)[0] - self._level

    def at(self, t: float) -> Vector6:
        v = ap = ml = yaw = 0.0
        if self.walking(t):
            v, ap = self._bumps(t)
            v -= self._level
            k = bisect.bisect_right(self.times, t) - 1
            t0, t1 = self.times[k], self.times[k + 1]
            half = math.pi * (t - t0) / (t1 - t0)
            side = 1.0 if k % 2 == 0 else -1.0
            ml = side * self._ml * math.sin(half)
            yaw = side * self._yaw * math.sin(half)
        n = self._noise
        if n > 0.0:
            g = self._rng.gauss
            v, ap, ml = v + g(0.0, n), ap + g(0.0, n), ml + g(0.0, n)
        ax, ay, az = _tilted(self._mounting, self._tilt, ap, ml, 1.0 + v)
        gx, gy, gz = _tilted(self._mounting, self._tilt, 0.0, 0.0, yaw)
        return (ax, ay, az, gx, gy, gz)


@dataclass(frozen=True, slots=True)
class Wave:
    amplitude_ms2: float
    frequency_hz: float
    phase: float = 0.0


G = 9.80665


class SwayingStance:
    """Standing with horizontal trunk acceleration ``Σ A sin(2πft + φ)`` per axis (m/s²).

    The frequencies lie below 1 Hz (postural sway), where the meter's 3.5 Hz
    low-pass passes them unchanged. The belt is tilted by ``tilt_deg``
    (forward) and ``roll_deg`` (to the side): static gravity in the
    horizontal axes that the meter's tilt correction must remove.
    """

    def __init__(
        self,
        duration: float,
        ap: Sequence[Wave],
        ml: Sequence[Wave],
        *,
        tilt_deg: float = 5.0,
        roll_deg: float = 3.0,
        mounting: Mounting = SISFALL_MOUNTING,
        noise_g: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.duration = duration
        self.ap = tuple(ap)
        self.ml = tuple(ml)
        self._tilt = math.radians(tilt_deg)
        self._roll = math.radians(roll_deg)
        self._mounting = mounting
        self._noise = noise_g
        self._rng = random.Random(seed)

    @staticmethod
    def _sum(waves: Sequence[Wave], t: float) -> float:
        return sum(w.amplitude_ms2 * math.sin(_TAU * w.frequency_hz * t + w.phase) for w in waves)

    def horizontal(self, t: float) -> tuple[float, float]:
        """(AP, ML) linear acceleration in m/s² at ``t``."""
        return self._sum(self.ap, t), self._sum(self.ml, t)

    def at(self, t: float) -> Vector6:
        ap, ml = self.horizontal(t)
        f, left, up = ap / G, ml / G, 1.0
        # belt tilt: pitch about left, then roll about forward
        cp, sp = math.cos(self._tilt), math.sin(self._tilt)
        f, up = cp * f - sp * up, sp * f + cp * up
        cr, sr = math.cos(self._roll), math.sin(self._roll)
        left, up = cr * left + sr * up, -sr * left + cr * up
        n = self._noise
        if n > 0.0:
            g = self._rng.gauss
            f, left, up = f + g(0.0, n), left + g(0.0, n), up + g(0.0, n)
        ax, ay, az = self._mounting.inverse((f, left, up))
        return (ax, ay, az, 0.0, 0.0, 0.0)


class Chain:
    """Motion sources one after another, each for its own ``duration``."""

    def __init__(self, sources: Sequence[MotionSource]) -> None:
        self.sources = list(sources)
        self.starts: list[float] = []
        t = 0.0
        for source in self.sources:
            self.starts.append(t)
            t += source.duration
        self.duration = t

    def at(self, t: float) -> Vector6:
        k = max(0, bisect.bisect_right(self.starts, t) - 1)
        source = self.sources[k]
        return source.at(min(t - self.starts[k], source.duration))
