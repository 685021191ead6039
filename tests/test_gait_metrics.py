"""The gait and balance meters against the truth: synthesised walking with known step times,
asymmetry and bounce, standing sway of known amplitude, in known and unknown mountings.

Tolerances (stated in docs/gait.md, "Checked on synthesised data"): cadence and mean step time
0.5 %, step-time CV and asymmetry 0.3 percentage points, step and stride regularity and
symmetry 0.01 of the NumPy definition on the noise-free signal, harmonic ratio 10 % of a NumPy
DFT of the exact strides; sway RMS 2 %, range 8 %, path 3 %, mean velocity 10 %, jerk 5 %,
ellipse area 4 %, noise floor 15 %."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from core.mounting import SISFALL_MOUNTING, UNKNOWN_MOUNTING, Mounting
from core.samples import ImuSample
from firmware.gait.balance import BalanceMeter, SwayMetrics
from firmware.gait.frame import AxisLearner
from firmware.gait.stream import Decimator
from firmware.gait.walking import GaitMeasure, GaitMeter
from sim.gait_motion import Chain, SteppedWalking, SwayingStance, Wave, step_times
from sim.motion import MotionSource, Vector6
from tools.gait_reference import harmonic_ratios, sway_reference, unbiased_autocorrelation

RATE = 200.0


def sampled(source: MotionSource, rate: float = RATE, start: float = 0.0) -> list[ImuSample]:
    return [
        ImuSample(start + i / rate, *source.at(i / rate))
        for i in range(int(source.duration * rate))
    ]


def measure_gait(
    samples: Sequence[ImuSample], mounting: Mounting = SISFALL_MOUNTING, rate: float = RATE
) -> GaitMeasure:
    decimator = Decimator(rate)
    meter = GaitMeter(decimator.rate_hz, mounting, AxisLearner())
    for a in decimator.feed(samples):
        if a is None:
            meter.gap()
        else:
            meter.add(*a)
    return meter.finish()


def measure_sway(
    samples: Sequence[ImuSample],
    mounting: Mounting = SISFALL_MOUNTING,
    settle_s: float = 5.0,
    angle: float | None = None,
) -> SwayMetrics:
    decimator = Decimator(RATE)
    meter = BalanceMeter(decimator.rate_hz, mounting, settle_s=settle_s, averaged=decimator.k)
    for a in decimator.feed(samples):
        assert a is not None
        meter.add(a[0], a[1], a[2], a[3])
    return meter.signal().metrics(angle)


class Rotated:
    """A sensor clipped on crooked: every reading turned by a fixed rotation (not a mounting
    the vocabulary can name), 35° about the vertical and 12° of tilt."""

    def __init__(self, source: MotionSource, yaw_deg: float = 35.0, tilt_deg: float = 12.0):
        self.source = source
        self.duration = source.duration
        cy, sy = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
        ct, st = math.cos(math.radians(tilt_deg)), math.sin(math.radians(tilt_deg))
        yaw = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
        tilt = np.array([[1.0, 0.0, 0.0], [0.0, ct, -st], [0.0, st, ct]])
        self._m = tilt @ yaw

    def at(self, t: float) -> Vector6:
        v = self.source.at(t)
        a = self._m @ np.asarray(v[:3])
        g = self._m @ np.asarray(v[3:])
        return (*map(float, a), *map(float, g))  # type: ignore[return-value]


# ------------------------------------------------------------------ walking


@pytest.mark.parametrize(("n", "max_lag"), [(2, 5), (7, 3), (64, 63), (257, 300), (1000, 320)])
def test_the_reference_autocorrelation_is_each_lag_s_own_sum(n: int, max_lag: int) -> None:
    """Through the FFT, each lag is the sum of its own products, none wrapped round from the
    signal's other end, for lengths at and past a power of two and lags past the signal."""
    x = np.random.default_rng(n).normal(3.0, 1.0, n)
    d = x - x.mean()
    lags = min(max_lag, n - 1) + 1
    sums = np.array([np.dot(d[: n - m], d[m:]) / (n - m) for m in range(lags)])
    assert np.allclose(unbiased_autocorrelation(x, max_lag), sums / sums[0], rtol=0, atol=1e-12)


def _truth_regularity(walk: SteppedWalking, rate: float = 100.0) -> tuple[float, float]:
    """Ad1 and Ad2 by the definition (NumPy) on the noise-free vertical signal."""
    t = np.arange(walk.times[0], walk.times[-1], 1.0 / rate)
    ac = unbiased_autocorrelation(np.array([walk.vertical(x) for x in t]), int(3.2 * rate))
    lag = walk.truth.mean_step_s * rate
    ad1 = float(ac[int(0.6 * lag) : int(1.4 * lag)].max())
    ad2 = float(ac[int(1.6 * lag) : int(2.4 * lag)].max())
    return ad1, ad2


@pytest.mark.parametrize(
    ("mean_s", "asymmetry", "jitter_s", "ratio"),
    [
        (0.6, 0.0, 0.0, 1.0),  # 100 steps/min, perfectly regular
        (0.6, 0.05, 0.01, 1.0),  # left steps 10 % longer, 10 ms of jitter
        (0.6, 0.0, 0.0, 0.7),  # right steps 30 % weaker: amplitude asymmetry only
        (0.6, 0.08, 0.02, 0.8),  # both, and more jitter
        (1.25, 0.04, 0.02, 0.9),  # 48 steps/min: backward at the prescribed 0.5 mph
        (0.46, 0.03, 0.008, 1.0),  # 130 steps/min
    ],
)
def test_walking_with_known_step_times_and_asymmetry(
    mean_s: float, asymmetry: float, jitter_s: float, ratio: float
) -> None:
    walk = SteppedWalking(
        step_times(
            int(240 / mean_s),
            mean_s,
            asymmetry=asymmetry,
            jitter_sd_s=jitter_s,
            seed=3,
            start_s=2.0,
        ),
        amplitude_ratio=ratio,
    )
    truth = walk.truth
    got = measure_gait(sampled(walk))
    assert got.axes == "mounting"
    assert got.steady_share > 0.9
    assert got.cadence_spm == pytest.approx(truth.cadence_spm, rel=0.005)
    assert got.step_time_s == pytest.approx(truth.mean_step_s, rel=0.005)
    assert got.step_time_cv_pct == pytest.approx(truth.cv_pct, abs=0.3)
    assert got.step_asymmetry_pct == pytest.approx(truth.asymmetry_pct, abs=0.3)
    ad1, ad2 = _truth_regularity(walk)
    assert got.step_regularity == pytest.approx(ad1, abs=0.01)
    assert got.stride_regularity == pytest.approx(ad2, abs=0.01)
    assert got.step_symmetry == pytest.approx(ad1 / ad2, abs=0.01)


def test_the_harmonic_ratio_falls_with_asymmetry_as_the_dft_of_the_strides_says() -> None:
    found = []
    for ratio in (1.0, 0.9, 0.7):
        walk = SteppedWalking(step_times(300, 0.6, start_s=2.0), amplitude_ratio=ratio, yaw_dps=0.0)
        got = measure_gait(sampled(walk))
        rate = 100.0
        t = np.arange(0.0, walk.duration, 1.0 / rate)
        v = np.array([walk.vertical(x) for x in t])
        bounds = [
            (round(walk.times[k] * rate), round(walk.times[k + 2] * rate))
            for k in range(10, len(walk.times) - 12)
        ]
        expected = harmonic_ratios(v, bounds)
        assert got.harmonic_ratio_v is not None
        if ratio < 1.0:  # a perfect gait's ratio is a ratio of rounding errors
            assert got.harmonic_ratio_v == pytest.approx(expected, rel=0.1)
        found.append(got.harmonic_ratio_v)
    assert found[0] > 50.0 > found[1] > found[2] > 1.0


def test_an_unknown_crooked_mounting_learns_ap_and_ml_from_the_stride() -> None:
    walk = SteppedWalking(
        step_times(300, 0.55, asymmetry=0.03, jitter_sd_s=0.01, seed=5, start_s=2.0)
    )
    known = measure_gait(sampled(walk))
    learned = measure_gait(sampled(Rotated(walk)), UNKNOWN_MOUNTING)
    assert learned.axes == "learned"
    for name in ("cadence_spm", "step_time_cv_pct", "step_regularity", "stride_regularity"):
        assert getattr(learned, name) == pytest.approx(getattr(known, name), rel=0.02), name
    assert learned.rms_ap == pytest.approx(known.rms_ap, rel=0.05)
    assert learned.rms_ml == pytest.approx(known.rms_ml, rel=0.05)
    assert known.rms_ml is not None and known.rms_ap is not None
    # AP and ML are not swapped: the side-to-side sway is the stride's.
    assert known.rms_ml < known.rms_ap and learned.rms_ml < learned.rms_ap  # type: ignore[operator]
    assert learned.harmonic_ratio_ml == pytest.approx(known.harmonic_ratio_ml, rel=0.15)


@pytest.mark.parametrize("rate", [100.0, 500.0])
def test_other_sample_rates_give_the_same_gait(rate: float) -> None:
    walk = SteppedWalking(
        step_times(200, 0.6, asymmetry=0.05, jitter_sd_s=0.01, seed=2, start_s=2.0)
    )
    at_200 = measure_gait(sampled(walk))
    other = measure_gait(sampled(walk, rate), rate=rate)
    assert other.cadence_spm == pytest.approx(at_200.cadence_spm, rel=0.002)
    assert other.step_time_cv_pct == pytest.approx(at_200.step_time_cv_pct, abs=0.2)
    assert other.step_regularity == pytest.approx(at_200.step_regularity, abs=0.01)


def test_a_gap_is_not_bridged_and_standing_is_not_walking() -> None:
    walk = SteppedWalking(step_times(100, 0.6, jitter_sd_s=0.01, seed=4, start_s=2.0))
    first = sampled(walk)
    second = sampled(walk, start=first[-1].t + 30.0)  # a 30 s pause between the two
    got = measure_gait(first + second)
    assert got.analysed_s == pytest.approx(2 * walk.duration, abs=0.1)
    assert got.steps == pytest.approx(2 * 99, abs=8)
    assert got.step_time_s == pytest.approx(walk.truth.mean_step_s, rel=0.005)
    standing = measure_gait(sampled(SwayingStance(60.0, [Wave(0.05, 0.3)], [Wave(0.04, 0.2)])))
    assert standing.steps == 0 and standing.steady_s == 0.0
    assert standing.cadence_spm is None and standing.step_regularity is None


# ------------------------------------------------------------------ standing

SWAY_AP = (Wave(0.05, 0.3), Wave(0.02, 0.7, 1.0))
SWAY_ML = (Wave(0.04, 0.25, 0.5), Wave(0.01, 0.55, 2.0))


def _sway_truth(stance: SwayingStance, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(start, end, 1.0 / 25.0)
    h = np.array([stance.horizontal(x) for x in t])
    return h[:, 0], h[:, 1]


@pytest.mark.parametrize("mounting", [SISFALL_MOUNTING, Mounting.parse("x=up y=left z=backward")])
def test_standing_sway_of_known_amplitude(mounting: Mounting) -> None:
    stance = SwayingStance(35.0, SWAY_AP, SWAY_ML, mounting=mounting)
    got = measure_sway(sampled(stance), mounting)
    ap, ml = _sway_truth(stance, 5.0, 35.0)
    want = sway_reference(ap, ml, 25.0)
    assert got.duration_s == pytest.approx(30.0, abs=0.1)
    assert not got.moved
    assert got.rms_ap == pytest.approx(want.rms_ap, rel=0.02)
    assert got.rms_ml == pytest.approx(want.rms_ml, rel=0.02)
    # and the analytic RMS of the sinusoids, as a check on the reference
    assert want.rms_ap == pytest.approx(math.sqrt((0.05**2 + 0.02**2) / 2), rel=0.05)
    assert got.range_ap == pytest.approx(want.range_ap, rel=0.08)
    assert got.range_ml == pytest.approx(want.range_ml, rel=0.08)
    assert got.path == pytest.approx(want.path, rel=0.03)
    assert got.mean_velocity == pytest.approx(want.mean_velocity, rel=0.1)
    assert got.jerk == pytest.approx(want.jerk, rel=0.05)
    assert got.ellipse_area == pytest.approx(want.ellipse_area, rel=0.04)


def test_sway_without_axes_gives_what_needs_none_and_the_rest_once_learned() -> None:
    stance = Rotated(SwayingStance(35.0, SWAY_AP, SWAY_ML), yaw_deg=35.0, tilt_deg=0.0)
    known = measure_sway(sampled(SwayingStance(35.0, SWAY_AP, SWAY_ML)))
    blind = measure_sway(sampled(stance), UNKNOWN_MOUNTING)
    assert blind.rms_ap is None and blind.range_ml is None
    for name in ("rms_total", "path", "mean_velocity", "jerk", "ellipse_area"):
        assert getattr(blind, name) == pytest.approx(getattr(known, name), rel=0.02), name
    # With AP found 35° from the sensor's reference axis (as walking would teach it):
    decimator = Decimator(RATE)
    meter = BalanceMeter(decimator.rate_hz, UNKNOWN_MOUNTING, settle_s=5.0)
    for a in decimator.feed(sampled(stance)):
        assert a is not None
        meter.add(a[0], a[1], a[2], a[3])
    signal = meter.signal()
    best = min(
        (signal.metrics(math.radians(d)) for d in range(-180, 180, 5)),
        key=lambda m: abs((m.rms_ap or 0.0) - (known.rms_ap or 0.0)),
    )
    assert best.rms_ml == pytest.approx(known.rms_ml, rel=0.03)


def test_the_noise_floor_is_measured_and_is_what_a_still_sensor_reads() -> None:
    sigma_g = 0.003  # white noise per 200 Hz sample on each axis
    # what 0.003 g of white noise at 200 Hz leaves in the 3.5 Hz band (ENBW 1.11 x 3.5 Hz)
    expected = sigma_g * 9.80665 * math.sqrt(1.11 * 3.5 / 100.0)
    noisy = measure_sway(sampled(SwayingStance(35.0, SWAY_AP, SWAY_ML, noise_g=sigma_g, seed=9)))
    assert noisy.noise_floor == pytest.approx(expected, rel=0.15)
    still = measure_sway(sampled(SwayingStance(35.0, (), (), noise_g=sigma_g, seed=10)))
    assert still.noise_floor == pytest.approx(expected, rel=0.15)
    assert still.rms_ap == pytest.approx(expected, rel=0.25)
    assert still.rms_ml == pytest.approx(expected, rel=0.25)
    assert noisy.rms_ap is not None and noisy.rms_ap > 4.0 * still.rms_ap  # type: ignore[operator]


def test_a_step_during_the_check_is_not_sway() -> None:
    stance = SwayingStance(20.0, SWAY_AP, SWAY_ML)
    walk = SteppedWalking(step_times(6, 0.6, start_s=0.5))
    got = measure_sway(sampled(Chain([stance, walk, SwayingStance(10.0, SWAY_AP, SWAY_ML)])))
    assert got.moved


def test_an_unknown_mountings_axes_stay_put_from_one_interval_to_the_next() -> None:
    """Every interval's meter (and the balance check's) must take the same horizontal basis,
    or AP and ML learned in one interval are swapped in the next."""
    walk = SteppedWalking(
        step_times(400, 0.6, asymmetry=0.03, jitter_sd_s=0.01, seed=8, start_s=2.0),
        tilt_deg=0.0,
    )
    samples = sampled(walk)
    learner = AxisLearner()
    decimator = Decimator(RATE)
    analysis = [a for a in decimator.feed(samples) if a is not None]
    figures = []
    # Intervals starting at different moments of the stride: the sensor's x and z are both
    # nearly horizontal, and which is "farther from vertical" changes with the moment.
    for a, b in ((0, 3000), (3000, 6137), (6137, 9000), (9000, 12211), (12211, len(analysis))):
        meter = GaitMeter(decimator.rate_hz, UNKNOWN_MOUNTING, learner)
        for sample in analysis[a:b]:
            meter.add(*sample)
        figures.append(meter.finish())
    known = measure_gait(samples)
    learned = [f for f in figures if f.axes == "learned"]
    assert len(learned) >= len(figures) - 1  # the first interval may still be learning
    for f in learned:
        assert f.rms_ap == pytest.approx(known.rms_ap, rel=0.05)
        assert f.rms_ml == pytest.approx(known.rms_ml, rel=0.05)
