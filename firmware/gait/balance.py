"""Standing balance from the belt IMU: the ISway acceleration measures.

What is measured follows Mancini et al. 2012 (*ISway: a sensitive, valid and
reliable measure of postural control*, J NeuroEng Rehabil 9:59, Table 2),
who took the sway measures of force-plate posturography (Prieto et al.
1996, IEEE Trans Biomed Eng 43:956) to the horizontal acceleration of the
lower trunk:

1. the acceleration is projected onto the horizontal plane of the mean
   gravity direction (:class:`~firmware.gait.frame.BodyFrame`, τ = 10 s,
   started from the mean of the settling seconds before the window), in
   m/s², giving AP and ML;
2. low-pass filtered at 3.5 Hz (a second-order Butterworth; Mancini used a
   zero-phase one — the phase does not change the figures below, which
   depend on amplitudes and shapes), kept at 25 Hz, mean removed;
3. from the two series:

   * **RMS** (m/s²) and **range** (max - min, m/s²) of AP and of ML;
   * **path**: the length of the 2-D acceleration trajectory, the sum of
     ``hypot(dAP, dML)`` (m/s²);
   * **mean velocity**: the mean of ``hypot(∫AP dt, ∫ML dt)`` (m/s), each
     integral with its linear trend removed (sensor offsets integrate to
     drift);
   * **jerk**: ``½ ∫ (dAP/dt)² + (dML/dt)² dt`` (m²/s⁵), scaled to a 30 s
     trial (``* 30 s / T``) so checks of any length compare;
   * **95 % confidence ellipse area** (m²/s⁴): ``2π F₀.₉₅(2, n-2) √det Σ``
     with Σ the covariance of (AP, ML) (Prieto et al. 1996; with F exact
     for its two numerator degrees of freedom).

A trial is **moved** (not standing still: its figures are not sway) when the
horizontal range exceeds 0.25 g or the low-passed vertical range 0.15 g (a
step bounces the trunk by 0.2-0.4 g; the horizontal range alone missed six
steps, whose low-passed horizontal range was 0.21 g).

The **noise floor** is measured in the same recording: above 12 Hz a
standing trunk does not move, so what the accelerometer shows there is its
own noise. Its density, from ``x - lowpass₁₂(x)``, scaled to the 3.5 Hz
band, is the RMS a perfectly still sensor would add to the AP and ML RMS
(about 0.008 m/s² for an MPU-6050 at 400 µg/√Hz). It assumes white noise up
to ``bandwidth_hz`` (the sensor's own filter, ``imu.dlpf_hz``; half the
sample rate when unknown) and is left out when the rate is too low for a
band above 12 Hz.

With an unknown mounting AP and ML are not known before the walker walks:
:class:`SwaySignal` keeps the filtered 25 Hz series (30 s are 750 pairs)
so that :meth:`SwaySignal.metrics` can name AP and ML once
:class:`~firmware.gait.frame.AxisLearner` has learned them; the
rotation-invariant figures (path, velocity, jerk, area, the total RMS) are
known at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.mounting import Mounting
from firmware.gait.filters import Biquad, butter_lowpass, noise_bandwidth
from firmware.gait.frame import BodyFrame, ap_ml_axes

G = 9.80665
SWAY_LOWPASS_HZ = 3.5
SWAY_RATE_HZ = 25.0
GRAVITY_TAU_S = 10.0
NOISE_SPLIT_HZ = 12.0
JERK_REFERENCE_S = 30.0
MOVED_RANGE_MS2 = 2.5
"""A horizontal range above this (0.25 g) is not standing still: a reach, a stumble."""
MOVED_VERTICAL_MS2 = 1.5
"""A vertical range above this (0.15 g) is not standing still: a step bounces the trunk by
0.2-0.4 g, quiet standing by a few hundredths (Moe-Nilssen & Helbostad 2004; Mancini et al.
2012 report horizontal sway of 0.05-0.3 m/s² RMS, and vertical sway is smaller still)."""


def tuple_of_two(fc_hz: float, rate_hz: float) -> tuple[Biquad, Biquad]:
    """Two identical low-passes, one per horizontal axis."""
    return butter_lowpass(fc_hz, rate_hz), butter_lowpass(fc_hz, rate_hz)


def f_quantile_2(p: float, m: int) -> float:
    """The ``p`` quantile of Fisher's F with (2, ``m``) degrees of freedom (closed form)."""
    return 0.5 * m * (math.pow(1.0 - p, -2.0 / m) - 1.0)


@dataclass(frozen=True, slots=True)
class SwayMetrics:
    """The ISway figures of one standing trial (None: not known, e.g. AP before it is learned)."""

    duration_s: float
    rms_ap: float | None
    rms_ml: float | None
    range_ap: float | None
    range_ml: float | None
    rms_total: float
    path: float
    mean_velocity: float
    jerk: float
    ellipse_area: float
    noise_floor: float | None
    moved: bool


def _detrended_integral(x: Sequence[float], dt: float) -> list[float]:
    v: list[float] = []
    total = 0.0
    for value in x:
        total += value * dt
        v.append(total)
    n = len(v)
    k_mean = 0.5 * (n - 1)
    v_mean = sum(v) / n
    sxx = sum((k - k_mean) ** 2 for k in range(n))
    slope = sum((k - k_mean) * (vk - v_mean) for k, vk in enumerate(v)) / sxx if sxx else 0.0
    return [vk - v_mean - slope * (k - k_mean) for k, vk in enumerate(v)]


@dataclass(frozen=True, slots=True)
class SwaySignal:
    """The filtered horizontal accelerations (m/s², 25 Hz) of one trial, and its noise floor."""

    rate_hz: float
    a1: tuple[float, ...]
    a2: tuple[float, ...]
    noise_floor: float | None
    knows_ap: bool
    """``a1`` is AP and ``a2`` ML (a known mounting); else an arbitrary horizontal pair."""
    vertical_range: float = 0.0
    """Max - min of the low-passed vertical acceleration (m/s²): a step shows here first."""

    def metrics(self, ap_angle: float | None = None) -> SwayMetrics:
        """The figures; ``ap_angle`` (radians from ``a1`` toward ``a2``) names AP for an
        unknown mounting."""
        n = len(self.a1)
        if n < 3:
            raise ValueError("a sway trial needs at least three samples")
        dt = 1.0 / self.rate_hz
        m1 = sum(self.a1) / n
        m2 = sum(self.a2) / n
        x1 = [a - m1 for a in self.a1]
        x2 = [a - m2 for a in self.a2]
        s11 = sum(a * a for a in x1) / (n - 1)
        s22 = sum(b * b for b in x2) / (n - 1)
        s12 = sum(a * b for a, b in zip(x1, x2, strict=True)) / (n - 1)
        path = sum(math.hypot(x1[i + 1] - x1[i], x2[i + 1] - x2[i]) for i in range(n - 1))
        v1 = _detrended_integral(x1, dt)
        v2 = _detrended_integral(x2, dt)
        mean_velocity = sum(math.hypot(a, b) for a, b in zip(v1, v2, strict=True)) / n
        jerk_sq = 0.0
        for i in range(1, n - 1):
            j1 = (x1[i + 1] - x1[i - 1]) / (2.0 * dt)
            j2 = (x2[i + 1] - x2[i - 1]) / (2.0 * dt)
            jerk_sq += (j1 * j1 + j2 * j2) * dt
        duration = n * dt
        jerk = 0.5 * jerk_sq * JERK_REFERENCE_S / duration
        det = max(0.0, s11 * s22 - s12 * s12)
        area = 2.0 * math.pi * f_quantile_2(0.95, n - 2) * math.sqrt(det)
        rms_total = math.sqrt((sum(a * a for a in x1) + sum(b * b for b in x2)) / n)
        moved = (
            max(max(x1) - min(x1), max(x2) - min(x2)) > MOVED_RANGE_MS2
            or self.vertical_range > MOVED_VERTICAL_MS2
        )
        ap: list[float] | None = None
        ml: list[float] | None = None
        if self.knows_ap:
            ap, ml = x1, x2
        elif ap_angle is not None:
            (c1, c2), (d1, d2) = ap_ml_axes(ap_angle)
            ap = [c1 * a + c2 * b for a, b in zip(x1, x2, strict=True)]
            ml = [d1 * a + d2 * b for a, b in zip(x1, x2, strict=True)]
        return SwayMetrics(
            duration_s=duration,
            rms_ap=math.sqrt(sum(a * a for a in ap) / n) if ap is not None else None,
            rms_ml=math.sqrt(sum(b * b for b in ml) / n) if ml is not None else None,
            range_ap=max(ap) - min(ap) if ap is not None else None,
            range_ml=max(ml) - min(ml) if ml is not None else None,
            rms_total=rms_total,
            path=path,
            mean_velocity=mean_velocity,
            jerk=jerk,
            ellipse_area=area,
            noise_floor=self.noise_floor,
            moved=moved,
        )


class BalanceMeter:
    """Streams one standing trial: ``settle_s`` seconds to find gravity, then the window.

    Feed analysis samples (:mod:`firmware.gait.stream`; ``averaged``: how many
    sensor samples each is the mean of) with :meth:`add`; :meth:`signal` gives
    the trial. Bounded: at most ``max_s`` seconds are kept.
    """

    def __init__(
        self,
        rate_hz: float,
        mounting: Mounting,
        *,
        settle_s: float = 0.0,
        bandwidth_hz: float | None = None,
        averaged: int = 1,
        max_s: float = 120.0,
    ) -> None:
        self.rate_hz = rate_hz
        self._settle_s = settle_s
        self._frame = BodyFrame(rate_hz, GRAVITY_TAU_S, mounting)
        self._lp = tuple_of_two(SWAY_LOWPASS_HZ, rate_hz)
        self._lp_v = butter_lowpass(SWAY_LOWPASS_HZ, rate_hz)
        self._v_min = math.inf
        self._v_max = -math.inf
        self._every = max(1, round(rate_hz / SWAY_RATE_HZ))
        self._phase = 0
        self._max_n = int(max_s * rate_hz / self._every)
        self.a1: list[float] = []
        self.a2: list[float] = []
        # The sensor's noise is white up to its own filter (bandwidth_hz). Below it the
        # mean of ``averaged`` sensor samples shapes it; with no filter below the sensor's
        # Nyquist frequency the means of white noise are white again (nothing to shape).
        if bandwidth_hz is None or bandwidth_hz >= rate_hz * averaged / 2.0:
            top, averaged = rate_hz / 2.0, 1
        else:
            top = min(rate_hz / 2.0, bandwidth_hz)
        self._noise_scale: float | None = None
        self._hf: tuple[Biquad, Biquad] | None = None
        if top > NOISE_SPLIT_HZ * 1.25:
            split = tuple_of_two(NOISE_SPLIT_HZ, rate_hz)
            self._hf = split
            kept = noise_bandwidth(split[0], rate_hz, top, complement=True, averaged=averaged)
            band = noise_bandwidth(self._lp[0], rate_hz, top, averaged=averaged)
            # density² = mean square / kept bandwidth; floor² = density² * band
            self._noise_scale = band / kept
        self._noise_ss = 0.0
        self._noise_n = 0
        self._t0: float | None = None
        self._settle_sum = [0.0, 0.0, 0.0]
        self._settle_n = 0
        self._started = False

    def add(self, t: float, ax: float, ay: float, az: float) -> None:
        if self._t0 is None:
            self._t0 = t
        if not self._started:
            if t - self._t0 < self._settle_s:
                s = self._settle_sum
                s[0] += ax
                s[1] += ay
                s[2] += az
                self._settle_n += 1
                return
            self._start(ax, ay, az)
        frame = self._frame
        frame.update(ax, ay, az)
        e1, e2 = frame.e1, frame.e2
        x1 = (ax * e1[0] + ay * e1[1] + az * e1[2]) * G
        x2 = (ax * e2[0] + ay * e2[1] + az * e2[2]) * G
        y1 = self._lp[0](x1)
        y2 = self._lp[1](x2)
        up = frame.up
        yv = self._lp_v((ax * up[0] + ay * up[1] + az * up[2]) * G)
        if yv < self._v_min:
            self._v_min = yv
        if yv > self._v_max:
            self._v_max = yv
        hf = self._hf
        if hf is not None:
            r1 = x1 - hf[0](x1)
            r2 = x2 - hf[1](x2)
            self._noise_ss += r1 * r1 + r2 * r2
            self._noise_n += 2
        self._phase += 1
        if self._phase >= self._every:
            self._phase = 0
            if len(self.a1) < self._max_n:
                self.a1.append(y1)
                self.a2.append(y2)

    def _start(self, ax: float, ay: float, az: float) -> None:
        self._started = True
        n = self._settle_n
        if n:
            s = self._settle_sum
            self._frame.settle(s[0] / n, s[1] / n, s[2] / n)
        else:
            self._frame.settle(ax, ay, az)
        e1, e2 = self._frame.e1, self._frame.e2
        x1 = (ax * e1[0] + ay * e1[1] + az * e1[2]) * G
        x2 = (ax * e2[0] + ay * e2[1] + az * e2[2]) * G
        for f, x in zip(self._lp, (x1, x2), strict=True):
            f.settle(x)
        up = self._frame.up
        self._lp_v.settle((ax * up[0] + ay * up[1] + az * up[2]) * G)
        if self._hf is not None:
            for f, x in zip(self._hf, (x1, x2), strict=True):
                f.settle(x)

    @property
    def measured_s(self) -> float:
        return len(self.a1) * self._every / self.rate_hz

    def signal(self) -> SwaySignal:
        floor = None
        if self._noise_scale is not None and self._noise_n:
            floor = math.sqrt(self._noise_ss / self._noise_n * self._noise_scale)
        return SwaySignal(
            rate_hz=self.rate_hz / self._every,
            a1=tuple(self.a1),
            a2=tuple(self.a2),
            noise_floor=floor,
            knows_ap=self._frame.knows_ap,
            vertical_range=self._v_max - self._v_min if self.a1 else 0.0,
        )
