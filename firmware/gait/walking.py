"""Gait from the belt IMU, per interval: steps, their timing, regularity, harmonics, sway.

Streaming and bounded: samples go in one at a time (:meth:`GaitMeter.add`),
a few tens of seconds are buffered, and :meth:`GaitMeter.finish` gives the
interval's figures. Plain Python, no NumPy: it runs on the monitor's
measurement thread (:mod:`firmware.gait.worker`).

Steps
    The vertical acceleration (:class:`~firmware.gait.frame.BodyFrame`)
    goes through the session step detector's filters (gravity removed with a
    1.5 s moving mean, two first-order low-passes at 3 Hz, a hysteresis of
    half the running mean deviation, never under 0.02 g; see
    :mod:`firmware.session.steps`); each upward excursion is one step, timed
    at the centroid of the positive lobe it belongs to (``Σ t·x / Σ x`` over
    the samples above zero). The centroid is steadier than the peak, which
    jumps between the two tops of a flat or double-humped step (timing SD
    against the offline reference on SisFall D02: 5-36 ms for the centroid
    against 6-65 ms for the peak, median step-time CV 3.9 % against 6.9 %).

Steady walking
    Steps form a *run* while each step time is within ±25 % of the median of
    the run's last eight and the trunk turns less than 25 °/s on average over
    the last stride (180° turns, as in KFall's walks, are not steady
    walking). A run of at least six steps is steady walking; every metric
    but ``analysed_s`` is computed from steady walking only, and the share of
    the interval it covers is reported.

Step time
    Mean, coefficient of variation (SD / mean, %) and the left-right
    asymmetry ``|mean(odd steps) - mean(even steps)| / mean`` (%) within each
    run (which foot is which is not known, so the absolute value, weighted
    by the run's steps). Cadence = 60 / mean step time.

Regularity and symmetry (Moe-Nilssen & Helbostad 2004, *J Biomech* 37:121)
    The unbiased autocorrelation of the vertical acceleration,
    ``Ad(m) = [1/(N-m) Σ x_i x_{i+m}] / [1/N Σ x_i²]``, summed over the
    steady stretches (each cut into chunks of at most 20 s, mean removed,
    no product across two chunks), up to lags of 3.2 s. *Step regularity*
    ``Ad1`` is its peak near one step time (0.6-1.4 x the mean step time),
    *stride regularity* ``Ad2`` near two (1.6-2.4 x); both 1 for a perfectly
    repeating gait. *Step symmetry* is ``Ad1 / Ad2`` (1: left and right steps
    alike; Moe-Nilssen & Helbostad 2004, also Tura et al. 2010, *J NeuroEng
    Rehabil* 7:4).

Harmonic ratio (Menz et al. 2003)
    Per steady stride (two consecutive steady steps), see
    :mod:`firmware.gait.harmonics`; vertical always, AP and ML when the
    mounting is known or learned. Given when at least ten strides carry ten
    or more harmonics below the Nyquist frequency.

Trunk sway while walking
    RMS of the AP, ML and vertical acceleration (m/s², mean removed per
    chunk) over the steady stretches.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from itertools import pairwise
from operator import mul

from core.mounting import Mounting
from firmware.gait.frame import AxesSource, AxisLearner, BodyFrame, ap_ml_axes
from firmware.gait.harmonics import MIN_HARMONICS, StrideDft, harmonic_ratio
from firmware.session import steps as step_rules

G = 9.80665
GRAVITY_TAU_S = 3.0
STEADY_MIN_STEPS = 6
STEADY_TOLERANCE = 0.25
STEADY_MEDIAN_OF = 8
TURN_DPS = 25.0
CHUNK_S = 20.0
MAX_LAG_S = 3.2
MIN_STEP_TIMES = 10
"""Fewer steady step times and no step-time figure is given."""
MIN_STRIDES = 10
MIN_AC_SECONDS = 4.0
"""Autocorrelation pairs needed at the stride lag, in seconds of data."""
TRIM_EVERY = 100
"""Samples between two trims of the buffers (at most a chunk, a run's start and 4 s are kept)."""


@dataclass(frozen=True, slots=True)
class GaitMeasure:
    """One interval's gait (None: not enough steady walking, or not measurable)."""

    analysed_s: float
    steady_s: float
    steps: int
    """Steady step times measured."""
    step_time_s: float | None
    step_time_cv_pct: float | None
    step_asymmetry_pct: float | None
    cadence_spm: float | None
    step_regularity: float | None
    stride_regularity: float | None
    step_symmetry: float | None
    harmonic_ratio_v: float | None
    harmonic_ratio_ap: float | None
    harmonic_ratio_ml: float | None
    rms_v: float | None
    rms_ap: float | None
    rms_ml: float | None
    axes: AxesSource

    @property
    def steady_share(self) -> float:
        return self.steady_s / self.analysed_s if self.analysed_s > 0 else 0.0


@dataclass(slots=True)
class _Sum:
    total: float = 0.0
    n: int = 0

    def add(self, value: float) -> None:
        self.total += value
        self.n += 1

    @property
    def mean(self) -> float:
        return self.total / self.n


@dataclass(slots=True)
class _Step:
    t: float
    idx: int
    """Absolute analysis-sample index of the peak."""
    heading: float
    """Integrated rotation about the vertical (degrees) when the step was found."""


class GaitMeter:
    """One interval's gait. ``learner`` (shared by a session's meters) learns AP/ML for an
    unknown mounting; with a known one it is not needed."""

    def __init__(
        self,
        rate_hz: float,
        mounting: Mounting,
        learner: AxisLearner | None = None,
        *,
        record_steps: bool = False,
    ) -> None:
        self.rate_hz = rate_hz
        self.step_times: list[float] | None = [] if record_steps else None
        """Every step found, steady or not (with ``record_steps``: for validation)."""
        self.dt = 1.0 / rate_hz
        self.frame = BodyFrame(rate_hz, GRAVITY_TAU_S, mounting)
        self.learner = learner if not self.frame.knows_ap else None
        self._dft = StrideDft()
        self._max_lag = int(MAX_LAG_S * rate_hz)
        # step-signal filters (as firmware.session.steps)
        self._k_mean = 1.0 - math.exp(-self.dt / step_rules.MEAN_TAU_S)
        self._k_lp = 1.0 - math.exp(-self.dt * 2.0 * math.pi * step_rules.LOWPASS_HZ)
        self._k_env = 1.0 - math.exp(-self.dt / step_rules.ENVELOPE_TAU_S)
        self._reset_signal()
        # buffers of analysis samples (g), absolute index of element 0 = _base
        self._v: list[float] = []
        self._e1: list[float] = []
        self._e2: list[float] = []
        self._base = 0
        self._n = 0
        self._since_trim = 0
        self._heading = 0.0
        # runs of steps
        self._run: list[_Step] = []
        self._run_steps = 0
        self._confirmed = False
        self._chunk_start = 0
        self._last_step_t = -math.inf
        self._odd = _Sum()
        self._even = _Sum()
        # accumulators
        self.analysed_n = 0
        self.steady_s = 0.0
        self._d_n = 0
        self._d_sum = 0.0
        self._d_sq = 0.0
        self._asym_sum = 0.0
        self._asym_w = 0
        self._ac_s = [0.0] * (self._max_lag + 1)
        self._ac_c = [0] * (self._max_lag + 1)
        self._sw = [0.0] * 4  # Σv², Σe1², Σe2², Σe1·e2 (mean removed per chunk)
        self._sw_n = 0
        self._hr_v = _Sum()
        self._hr_ap = _Sum()
        self._hr_ml = _Sum()

    # ------------------------------------------------------------- input

    def _reset_signal(self) -> None:
        self._mean: float | None = None
        self._lp1 = 0.0
        self._lp2 = 0.0
        self._env = 0.0
        self._below = False
        self._above = False
        self._lobe_w = self._lobe_wt = self._lobe_wn = 0.0

    def add(
        self, t: float, ax: float, ay: float, az: float, gx: float, gy: float, gz: float
    ) -> None:
        """One analysis sample (seconds, g, deg/s, sensor frame)."""
        frame = self.frame
        frame.update(ax, ay, az)
        up, e1, e2 = frame.up, frame.e1, frame.e2
        v = ax * up[0] + ay * up[1] + az * up[2]
        self._v.append(v)
        self._e1.append(ax * e1[0] + ay * e1[1] + az * e1[2])
        self._e2.append(ax * e2[0] + ay * e2[1] + az * e2[2])
        self._heading += (gx * up[0] + gy * up[1] + gz * up[2]) * self.dt
        n = self._n
        self._n = n + 1
        self.analysed_n += 1
        # the step signal
        mean = self._mean
        if mean is None:
            self._mean = v
            return
        mean += (v - mean) * self._k_mean
        self._mean = mean
        k = self._k_lp
        self._lp1 += (v - mean - self._lp1) * k
        self._lp2 += (self._lp1 - self._lp2) * k
        x = self._lp2
        self._env += (abs(x) - self._env) * self._k_env
        threshold = max(step_rules.MIN_THRESHOLD_G, step_rules.HYSTERESIS * self._env)
        if x > 0.0:
            self._lobe_w += x
            self._lobe_wt += x * t
            self._lobe_wn += x * n
        if x < -threshold:
            if self._above and self._lobe_w > 0.0:
                self._found(self._lobe_wt / self._lobe_w, round(self._lobe_wn / self._lobe_w))
            self._above = False
            self._below = True
            self._lobe_w = self._lobe_wt = self._lobe_wn = 0.0
        elif self._below and x > threshold:
            self._below = False
            self._above = True
        self._since_trim += 1
        if self._since_trim >= TRIM_EVERY:
            self._since_trim = 0
            self._trim()

    def gap(self) -> None:
        """The samples stop and start again later (a pause): nothing bridges the gap."""
        self._end_run()
        self._reset_signal()
        self._base = self._n
        self._v.clear()
        self._e1.clear()
        self._e2.clear()
        self._last_step_t = -math.inf

    # ------------------------------------------------------------- steps

    def _found(self, t: float, idx: int) -> None:
        if t - self._last_step_t < step_rules.MIN_STEP_S:
            return
        self._last_step_t = t
        if self.step_times is not None:
            self.step_times.append(t)
        step = _Step(t, idx, self._heading)
        run = self._run
        if run:
            last = run[-1]
            d = t - last.t
            ok = d <= step_rules.MAX_STEP_S
            if ok and len(run) >= 3:
                recent = [b.t - a.t for a, b in pairwise(run[-STEADY_MEDIAN_OF - 1 :])]
                median = statistics.median(recent)
                ok = abs(d - median) <= STEADY_TOLERANCE * median
            if ok and len(run) >= 2:
                before = run[-2]
                ok = abs(step.heading - before.heading) / (t - before.t) <= TURN_DPS
            if not ok:
                self._end_run()
                run = self._run
        run.append(step)
        self._run_steps += 1
        if self._confirmed:
            self._commit(run, len(run) - 1)
        elif len(run) >= STEADY_MIN_STEPS:
            self._confirmed = True
            self._chunk_start = run[0].idx
            for i in range(1, len(run)):
                self._commit(run, i)
        if self._confirmed:
            if run[-1].idx - self._chunk_start >= CHUNK_S * self.rate_hz:
                self._chunk(self._chunk_start, run[-1].idx)
                self._chunk_start = run[-1].idx
            if len(run) > STEADY_MEDIAN_OF + 2:
                del run[: len(run) - STEADY_MEDIAN_OF - 2]

    def _commit(self, run: list[_Step], i: int) -> None:
        d = run[i].t - run[i - 1].t
        self._d_n += 1
        self._d_sum += d
        self._d_sq += d * d
        self.steady_s += d
        side = self._odd if (self._run_steps - (len(run) - 1 - i)) % 2 else self._even
        side.add(d)
        if i >= 2:
            self._stride(run[i - 2].idx, run[i].idx)

    def _end_run(self) -> None:
        run = self._run
        if self._confirmed and run:
            self._chunk(self._chunk_start, run[-1].idx)
            odd, even = self._odd, self._even
            if odd.n and even.n:
                mean = (odd.total + even.total) / (odd.n + even.n)
                asym = abs(odd.mean - even.mean) / mean
                weight = odd.n + even.n
                self._asym_sum += asym * weight
                self._asym_w += weight
        run.clear()
        self._run_steps = 0
        self._confirmed = False
        self._odd = _Sum()
        self._even = _Sum()

    # ------------------------------------------------------ buffered work

    def _slice(self, a: int, b: int) -> tuple[list[float], list[float], list[float]]:
        lo, hi = a - self._base, b - self._base
        if lo < 0:
            raise AssertionError("gait buffer trimmed past a step still in use")
        return self._v[lo:hi], self._e1[lo:hi], self._e2[lo:hi]

    def _chunk(self, a: int, b: int) -> None:
        """Autocorrelation and sway sums over the steady samples ``[a, b)``."""
        n = b - a
        if n < 2:
            return
        v, e1, e2 = self._slice(a, b)
        mv, m1, m2 = sum(v) / n, sum(e1) / n, sum(e2) / n
        x = [s - mv for s in v]
        y1 = [s - m1 for s in e1]
        y2 = [s - m2 for s in e2]
        zero_lag = sum(map(mul, x, x))
        sw = self._sw
        sw[0] += zero_lag
        sw[1] += sum(map(mul, y1, y1))
        sw[2] += sum(map(mul, y2, y2))
        sw[3] += sum(map(mul, y1, y2))
        self._sw_n += n
        s, c = self._ac_s, self._ac_c
        s[0] += zero_lag
        c[0] += n
        for m in range(1, min(self._max_lag, n - 1) + 1):
            s[m] += sum(map(mul, x, x[m:]))
            c[m] += n - m

    def _stride(self, a: int, b: int) -> None:
        n = b - a
        k_max = self._dft.usable(n)
        if k_max < MIN_HARMONICS:
            return
        v, e1, e2 = self._slice(a, b)
        dft = self._dft
        hr = harmonic_ratio(dft.coefficients(v, k_max))
        if hr is not None:
            self._hr_v.add(hr)
        angle = self._ap_angle()
        learner = self.learner
        if angle is None:
            if learner is not None:
                c1 = dft.coefficients(e1, 1)[0]
                c2 = dft.coefficients(e2, 1)[0]
                learner.add(c1, c2)
            return
        c1s = dft.coefficients(e1, k_max)
        c2s = dft.coefficients(e2, k_max)
        if learner is not None:
            learner.add(c1s[0], c2s[0])
        (a1, a2), (b1, b2) = ap_ml_axes(angle)
        ap = [a1 * p + a2 * q for p, q in zip(c1s, c2s, strict=True)]
        ml = [b1 * p + b2 * q for p, q in zip(c1s, c2s, strict=True)]
        hr_ap = harmonic_ratio(ap)
        hr_ml = harmonic_ratio(ml, odd_over_even=True)
        if hr_ap is not None and hr_ml is not None:
            self._hr_ap.add(hr_ap)
            self._hr_ml.add(hr_ml)

    def _ap_angle(self) -> float | None:
        if self.frame.knows_ap:
            return 0.0
        return self.learner.ap_angle() if self.learner is not None else None

    def _trim(self) -> None:
        needed = self._n - int(2.0 * step_rules.MAX_STEP_S * self.rate_hz)
        run = self._run
        if run:
            needed = min(needed, run[0].idx, run[-2].idx if len(run) >= 2 else run[-1].idx)
            if self._confirmed:
                needed = min(needed, self._chunk_start)
        drop = needed - self._base
        if drop > 0:
            del self._v[:drop]
            del self._e1[:drop]
            del self._e2[:drop]
            self._base = needed

    # ------------------------------------------------------------- output

    def finish(self) -> GaitMeasure:
        """The interval's figures (the meter is spent afterwards)."""
        self._end_run()
        analysed = self.analysed_n * self.dt
        step_time = cv = asym = cadence = None
        ad1 = ad2 = symmetry = None
        if self._d_n >= MIN_STEP_TIMES:
            step_time = self._d_sum / self._d_n
            var = (
                max(0.0, self._d_sq / self._d_n - step_time * step_time)
                * self._d_n
                / (self._d_n - 1)
            )
            cv = 100.0 * math.sqrt(var) / step_time
            cadence = 60.0 / step_time
            if self._asym_w:
                asym = 100.0 * self._asym_sum / self._asym_w
            ad1, ad2 = self._regularity(step_time)
            if ad1 is not None and ad2 is not None and ad2 > 0.0:
                symmetry = ad1 / ad2
        angle = self._ap_angle()
        rms_v = rms_ap = rms_ml = None
        if self._sw_n and self.steady_s >= MIN_AC_SECONDS:
            n = self._sw_n
            rms_v = math.sqrt(self._sw[0] / n) * G
            if angle is not None:
                (a1, a2), (b1, b2) = ap_ml_axes(angle)
                s11, s22, s12 = self._sw[1] / n, self._sw[2] / n, self._sw[3] / n
                rms_ap = math.sqrt(max(0.0, a1 * a1 * s11 + a2 * a2 * s22 + 2 * a1 * a2 * s12)) * G
                rms_ml = math.sqrt(max(0.0, b1 * b1 * s11 + b2 * b2 * s22 + 2 * b1 * b2 * s12)) * G

        def mean_of(acc: _Sum) -> float | None:
            return acc.mean if acc.n >= MIN_STRIDES else None

        axes: AxesSource = (
            "mounting" if self.frame.knows_ap else "learned" if angle is not None else "unknown"
        )
        return GaitMeasure(
            analysed_s=analysed,
            steady_s=self.steady_s,
            steps=self._d_n,
            step_time_s=step_time,
            step_time_cv_pct=cv,
            step_asymmetry_pct=asym,
            cadence_spm=cadence,
            step_regularity=ad1,
            stride_regularity=ad2,
            step_symmetry=symmetry,
            harmonic_ratio_v=mean_of(self._hr_v),
            # AP/ML ratios only with the axes they were computed on still standing: a learner
            # that later strides contradicted no longer names AP and ML.
            harmonic_ratio_ap=mean_of(self._hr_ap) if angle is not None else None,
            harmonic_ratio_ml=mean_of(self._hr_ml) if angle is not None else None,
            rms_v=rms_v,
            rms_ap=rms_ap,
            rms_ml=rms_ml,
            axes=axes,
        )

    def autocorrelation(self) -> list[float | None]:
        """The normalised unbiased autocorrelation ``Ad(m)``, m = 0 .. max lag (None: no pairs)."""
        s, c = self._ac_s, self._ac_c
        if not c[0] or s[0] <= 0.0:
            return [None] * len(s)
        zero = s[0] / c[0]
        return [s[m] / c[m] / zero if c[m] else None for m in range(len(s))]

    def _regularity(self, step_time: float) -> tuple[float | None, float | None]:
        ad = self.autocorrelation()
        lag = step_time * self.rate_hz
        need = MIN_AC_SECONDS * self.rate_hz
        return _peak(ad, 0.6 * lag, 1.4 * lag, need, self._ac_c), _peak(
            ad, 1.6 * lag, 2.4 * lag, need, self._ac_c
        )


def _peak(
    ad: list[float | None], lo: float, hi: float, need: float, counts: list[int]
) -> float | None:
    """The largest ``Ad`` in lags ``[lo, hi]`` (a parabola through the top three), if the
    lags there have at least ``need`` pairs each."""
    first, last = max(1, math.ceil(lo)), min(len(ad) - 2, math.floor(hi))
    best: int | None = None
    for m in range(first, last + 1):
        value = ad[m]
        if value is None or counts[m] < need:
            return None
        best_value = ad[best] if best is not None else None
        if best_value is None or value > best_value:
            best = m
    if best is None:
        return None
    y0, y1, y2 = ad[best - 1], ad[best], ad[best + 1]
    if y0 is None or y1 is None or y2 is None:
        return y1
    denom = y0 - 2.0 * y1 + y2
    if denom >= 0.0:
        return y1
    shift = 0.5 * (y0 - y2) / denom
    return y1 - 0.25 * (y0 - y2) * shift
