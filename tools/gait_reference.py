"""An offline reference for the gait and balance metrics: whole recordings at once, NumPy.

SisFall and KFall have no footstep labels, so the device's step detection
(:mod:`firmware.gait.walking`, streaming, causal, pure Python) is checked
against a detector that shares nothing with it but the input and that may
look at the whole recording, forward and backward in time:

1. **Orientation**: the mean gravity direction over the recording (Moe-Nilssen
   1998's static tilt correction); vertical = acceleration along it,
   AP and ML = along the mounting's forward and left made horizontal.
2. **Step frequency** from two spectra (Welch-style averaged periodograms,
   20 s Hann segments): the vertical acceleration's main peak (0.6-4 Hz) is
   the step frequency or, in a slow gait with a double-humped vertical
   acceleration (SisFall SE04), twice it; the ML acceleration's (0.3-1.6 Hz)
   is the stride frequency — the pelvis sways side to side once per stride —
   or, in a few gaits (SisFall SA08), the step. Their ratio says which: about
   2 or 1, the vertical peak is the step; about 4, the step is twice the ML
   peak. Any other ratio is flagged (``vertical_agrees`` false) and twice
   the ML peak is used.
3. **One step per cycle**: the vertical acceleration band-passed around the
   step frequency (0.6-1.5 x, zero-phase, an FFT mask with cosine edges) is
   a near-sinusoid with exactly one cycle per step; its upward zero crossings
   cut the recording into step cycles. Cycles shorter than 0.25 s or longer
   than 2 s (30-240 steps/min, the device's range) are not steps, nor are
   cycles whose swing is under a quarter of the median swing (the band-passed
   noise of standing before and after a short walk, as in KFall's trials).
4. **Step timing**: in each cycle the step is timed at the maximum of the
   vertical acceleration band-passed 0.3-3 x the step frequency (zero-phase;
   wide enough to keep step-to-step timing), refined with a parabola.

A step of the device matches a reference step when it lies within 40 % of
the median step time of it after the median offset between the two is
removed (the device times steps at the peak of a causally filtered signal,
about 0.1 s later, constantly).

The module also computes the unbiased autocorrelation and the sway figures
with NumPy, for the tests to compare with the streaming code.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.mounting import Mounting
from core.samples import ImuSample

FloatArray = npt.NDArray[np.float64]

MIN_STEP_S = 0.25
MAX_STEP_S = 2.0
QUIET_CYCLE_SHARE = 0.25
"""A cycle whose band-passed swing is under this share of the median swing is not a step."""


@dataclass(frozen=True, slots=True)
class Recording:
    """A recording as arrays: time (s), acceleration (g) and rate (deg/s), sensor frame."""

    rate_hz: float
    t: FloatArray
    acc: FloatArray
    gyro: FloatArray

    @staticmethod
    def of(samples: Sequence[ImuSample], rate_hz: float) -> Recording:
        data = np.asarray(samples, dtype=float)
        return Recording(rate_hz, data[:, 0], data[:, 1:4], data[:, 4:7])

    def window(self, start_s: float, end_s: float) -> Recording:
        keep = (self.t >= self.t[0] + start_s) & (self.t < self.t[0] + end_s)
        return Recording(self.rate_hz, self.t[keep], self.acc[keep], self.gyro[keep])


def body_axes(rec: Recording, mounting: Mounting) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Vertical, AP and ML acceleration (g), with the mean gravity direction as vertical."""
    up = rec.acc.mean(axis=0)
    up /= np.linalg.norm(up)
    forward = np.asarray(mounting.inverse((1.0, 0.0, 0.0)))
    ap_axis = forward - forward.dot(up) * up
    ap_axis /= np.linalg.norm(ap_axis)
    ml_axis = np.cross(up, ap_axis)
    return rec.acc @ up, rec.acc @ ap_axis, rec.acc @ ml_axis


def band_pass(x: FloatArray, rate_hz: float, lo_hz: float, hi_hz: float) -> FloatArray:
    """Zero-phase band-pass by an FFT mask with raised-cosine edges (10 % of each edge)."""
    n = len(x)
    spectrum = np.fft.rfft(x - x.mean())
    f = np.fft.rfftfreq(n, 1.0 / rate_hz)
    mask = np.zeros_like(f)
    inside = (f >= lo_hz) & (f <= hi_hz)
    mask[inside] = 1.0
    for edge, direction in ((lo_hz, -1.0), (hi_hz, 1.0)):
        width = 0.1 * edge
        ramp = (direction * (f - edge) > 0) & (direction * (f - edge) < width)
        mask[ramp] = 0.5 * (1.0 + np.cos(np.pi * np.abs(f[ramp] - edge) / width))
    return np.fft.irfft(spectrum * mask, n)


def spectrum_peak(x: FloatArray, rate_hz: float, lo_hz: float, hi_hz: float) -> float:
    """The frequency of the largest peak of an averaged periodogram (20 s Hann segments)."""
    seg = min(len(x), int(20.0 * rate_hz))
    step = max(1, seg // 2)
    window = np.hanning(seg)
    power = np.zeros(seg // 2 + 1)
    for start in range(0, len(x) - seg + 1, step):
        chunk = x[start : start + seg]
        power += np.abs(np.fft.rfft((chunk - chunk.mean()) * window)) ** 2
    f = np.fft.rfftfreq(seg, 1.0 / rate_hz)
    band = (f >= lo_hz) & (f <= hi_hz)
    return float(f[band][np.argmax(power[band])])


@dataclass(frozen=True, slots=True)
class ReferenceSteps:
    step_hz: float
    """From the vertical and ML spectra (see the module docstring)."""
    times: FloatArray
    """Step times (s, the recording's clock)."""
    vertical_agrees: bool
    """The vertical and ML spectral peaks are in a ratio of about 1, 2 or 4."""

    @property
    def intervals(self) -> FloatArray:
        return np.diff(self.times)

    def cadence_spm(self) -> float:
        """60 / the mean of the step times within 25 % of their median."""
        d = self.intervals
        if len(d) == 0:
            return float("nan")
        med = float(np.median(d))
        regular = d[np.abs(d - med) <= 0.25 * med]
        return 60.0 / float(regular.mean()) if len(regular) else float("nan")


def reference_steps(rec: Recording, mounting: Mounting) -> ReferenceSteps:
    vertical, _, ml = body_axes(rec, mounting)
    fs = rec.rate_hz
    ml_peak = spectrum_peak(ml, fs, 0.3, 1.6)
    v_peak = spectrum_peak(vertical, fs, 0.6, 4.0)
    ratio = v_peak / ml_peak
    agrees = True
    if 1.7 <= ratio <= 2.3 or 0.85 <= ratio <= 1.15:
        step_hz = v_peak  # ML at the stride (or, in a few gaits, at the step): vertical = step
    elif 3.4 <= ratio <= 4.6:
        step_hz = 2.0 * ml_peak  # a double-humped vertical acceleration (SisFall SE04)
    else:
        step_hz = 2.0 * ml_peak
        agrees = False
    narrow = band_pass(vertical, fs, 0.6 * step_hz, 1.5 * step_hz)
    wide = band_pass(vertical, fs, 0.3 * step_hz, 3.0 * step_hz)
    ups = np.flatnonzero((narrow[:-1] < 0.0) & (narrow[1:] >= 0.0)) + 1
    cycles = [
        (a, b) for a, b in itertools.pairwise(ups) if MIN_STEP_S <= (b - a) / fs <= MAX_STEP_S
    ]
    swings = [float(np.ptp(narrow[a:b])) for a, b in cycles]
    floor = QUIET_CYCLE_SHARE * float(np.median(swings)) if swings else 0.0
    times: list[float] = []
    for (a, b), swing in zip(cycles, swings, strict=True):
        if swing < floor:
            continue  # standing before or after the walk: band-passed noise, not a step
        i = a + int(np.argmax(wide[a:b]))
        shift = 0.0
        if 0 < i < len(wide) - 1:
            y0, y1, y2 = wide[i - 1], wide[i], wide[i + 1]
            denom = y0 - 2.0 * y1 + y2
            if denom < 0.0:
                shift = 0.5 * (y0 - y2) / denom
        times.append(float(rec.t[i]) + shift / fs)
    return ReferenceSteps(step_hz, np.asarray(times), agrees)


@dataclass(frozen=True, slots=True)
class StepMatch:
    reference: int
    detected: int
    matched: int
    offset_s: float
    """Median (detected - reference) time of matched steps."""
    timing_sd_s: float
    """SD of the matched steps' timing error after the median offset is removed."""

    @property
    def missed(self) -> int:
        return self.reference - self.matched

    @property
    def extra(self) -> int:
        return self.detected - self.matched


def match_steps(reference: FloatArray, detected: FloatArray) -> StepMatch:
    """Pair detected with reference steps (greedy nearest, after the median offset)."""
    if len(reference) < 2 or len(detected) == 0:
        return StepMatch(len(reference), len(detected), 0, float("nan"), float("nan"))
    tolerance = 0.4 * float(np.median(np.diff(reference)))
    nearest = np.searchsorted(reference, detected)
    lo = np.clip(nearest - 1, 0, len(reference) - 1)
    hi = np.clip(nearest, 0, len(reference) - 1)
    closest = np.where(np.abs(detected - reference[lo]) <= np.abs(detected - reference[hi]), lo, hi)
    raw = detected - reference[closest]
    offset = float(np.median(raw[np.abs(raw) <= 2.0 * tolerance]))
    shifted = detected - offset
    used = np.zeros(len(reference), dtype=bool)
    errors: list[float] = []
    for t in shifted:
        k = int(np.searchsorted(reference, t))
        best = -1
        for j in (k - 1, k):
            if (
                0 <= j < len(reference)
                and not used[j]
                and abs(reference[j] - t) <= tolerance
                and (best < 0 or abs(reference[j] - t) < abs(reference[best] - t))
            ):
                best = j
        if best >= 0:
            used[best] = True
            errors.append(t - float(reference[best]))
    sd = float(np.std(errors, ddof=1)) if len(errors) > 1 else float("nan")
    return StepMatch(len(reference), len(detected), int(used.sum()), offset, sd)


def unbiased_autocorrelation(x: FloatArray, max_lag: int) -> FloatArray:
    """``Ad(m)`` of Moe-Nilssen & Helbostad (2004), m = 0 .. max_lag, normalised to Ad(0) = 1.

    The lag sums through the FFT (the power spectrum's inverse, zero-padded past 2n - 1 so no
    lag wraps round): ``np.correlate(mode="full")`` computed all 2n - 1 lags of a 4-minute walk
    directly (most of the gait tests' time), and a dot product a lag, the few hundred kept,
    still took a tenth of a second or more; the FFT's sums agree with them to 1e-16 of Ad(0)."""
    x = x - x.mean()
    n = len(x)
    lags = min(max_lag, n - 1) + 1
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(x, size)
    full = np.fft.irfft(spectrum * np.conj(spectrum), size)[:lags]
    unbiased = full / (n - np.arange(lags))
    result: FloatArray = unbiased / unbiased[0]
    return result


@dataclass(frozen=True, slots=True)
class SwayReference:
    """The ISway figures of :mod:`firmware.gait.balance`, written again with NumPy."""

    rms_ap: float
    rms_ml: float
    range_ap: float
    range_ml: float
    path: float
    mean_velocity: float
    jerk: float
    ellipse_area: float


def sway_reference(ap: FloatArray, ml: FloatArray, rate_hz: float) -> SwayReference:
    """``ap``, ``ml``: horizontal accelerations (m/s²) already low-passed, at ``rate_hz``."""
    ap = ap - ap.mean()
    ml = ml - ml.mean()
    n = len(ap)
    dt = 1.0 / rate_hz
    k = np.arange(n)

    def detrended_integral(x: FloatArray) -> FloatArray:
        v = np.cumsum(x) * dt
        slope, intercept = np.polyfit(k, v, 1)
        result: FloatArray = v - (slope * k + intercept)
        return result

    v_ap, v_ml = detrended_integral(ap), detrended_integral(ml)
    j_ap = (ap[2:] - ap[:-2]) / (2.0 * dt)
    j_ml = (ml[2:] - ml[:-2]) / (2.0 * dt)
    jerk = 0.5 * float(np.sum(j_ap**2 + j_ml**2)) * dt * 30.0 / (n * dt)
    cov = np.cov(np.vstack([ap, ml]), ddof=1)
    f95 = 0.5 * (n - 2) * (0.05 ** (-2.0 / (n - 2)) - 1.0)
    return SwayReference(
        rms_ap=float(np.sqrt(np.mean(ap**2))),
        rms_ml=float(np.sqrt(np.mean(ml**2))),
        range_ap=float(np.ptp(ap)),
        range_ml=float(np.ptp(ml)),
        path=float(np.sum(np.hypot(np.diff(ap), np.diff(ml)))),
        mean_velocity=float(np.mean(np.hypot(v_ap, v_ml))),
        jerk=jerk,
        ellipse_area=float(2.0 * np.pi * f95 * np.sqrt(np.linalg.det(cov))),
    )


def harmonic_ratios(x: FloatArray, stride_bounds: Sequence[tuple[int, int]]) -> float:
    """Mean even/odd harmonic ratio (20 harmonics) over the strides ``[a, b)`` of ``x``."""
    ratios = []
    for a, b in stride_bounds:
        spectrum = np.abs(np.fft.rfft(x[a:b]))[1:21]
        ratios.append(float(spectrum[1::2].sum() / spectrum[0::2].sum()))
    return float(np.mean(ratios))
