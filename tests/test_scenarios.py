"""Synthesised motion: physical plausibility, self-consistency, determinism, replay."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from core.mounting import Mounting, Vec3
from core.samples import ImuSample
from core.trace import Trace, TraceHeader, read_trace, write_trace
from sim.motion import MotionSource
from sim.scenarios import (
    DEFAULT_MOUNTING,
    BackwardFall,
    Lying,
    Sequence,
    Standing,
    StumbleRecovery,
    Turn,
    Walking,
    demo_session,
    scenario,
    step_frequency_hz,
)
from sim.trace_motion import TraceMotion, sample_motion

RATE = 200.0
UP: Vec3 = (0.0, 0.0, 1.0)


def _norm(v: Vec3) -> float:
    return math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


def _angle_deg(a: Vec3, b: Vec3) -> float:
    c = (a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (_norm(a) * _norm(b))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _accel(s: ImuSample) -> Vec3:
    return (s.ax, s.ay, s.az)


def _gyro(s: ImuSample) -> Vec3:
    return (s.gx, s.gy, s.gz)


def _window(samples: list[ImuSample], t0: float, t1: float) -> list[ImuSample]:
    return [s for s in samples if t0 <= s.t <= t1]


def _mean(vs: list[Vec3]) -> Vec3:
    n = len(vs)
    return (sum(v[0] for v in vs) / n, sum(v[1] for v in vs) / n, sum(v[2] for v in vs) / n)


def _body(samples: list[ImuSample], mounting: Mounting = DEFAULT_MOUNTING) -> list[Vec3]:
    return [mounting.apply(_accel(s)) for s in samples]


def _dominant_hz(xs: list[float], rate: float, lo: float, hi: float) -> float:
    """Frequency of the largest DFT magnitude of ``xs`` between lo and hi (0.01 Hz grid)."""
    mean = sum(xs) / len(xs)
    ys = [x - mean for x in xs]
    best, best_f = -1.0, lo
    f = lo
    while f <= hi:
        w = 2 * math.pi * f / rate
        re = sum(y * math.cos(w * i) for i, y in enumerate(ys))
        im = sum(y * math.sin(w * i) for i, y in enumerate(ys))
        p = re * re + im * im
        if p > best:
            best, best_f = p, f
        f += 0.01
    return best_f


def _rotate(v: Vec3, axis_angle: Vec3) -> Vec3:
    """Rodrigues: rotate ``v`` by the rotation vector ``axis_angle`` (rad)."""
    th = _norm(axis_angle)
    if th == 0.0:
        return v
    k = (axis_angle[0] / th, axis_angle[1] / th, axis_angle[2] / th)
    c, s = math.cos(th), math.sin(th)
    kxv = (k[1] * v[2] - k[2] * v[1], k[2] * v[0] - k[0] * v[2], k[0] * v[1] - k[1] * v[0])
    kv = k[0] * v[0] + k[1] * v[1] + k[2] * v[2]
    return tuple(v[i] * c + kxv[i] * s + k[i] * kv * (1 - c) for i in range(3))  # type: ignore[return-value]


def _gravity_from_gyro(samples: list[ImuSample]) -> list[Vec3]:
    """Propagate the first sample's gravity direction with the gyro alone.

    A world-fixed vector seen from a frame turning at w changes as dg/dt = -w x g,
    i.e. it turns by -w dt each step (trapezoidal rate).
    """
    g = _accel(samples[0])
    n0 = _norm(g)
    g = (g[0] / n0, g[1] / n0, g[2] / n0)
    out = [g]
    for a, b in itertools.pairwise(samples):
        dt = b.t - a.t
        k = -math.radians(1.0) * dt / 2
        g = _rotate(g, ((a.gx + b.gx) * k, (a.gy + b.gy) * k, (a.gz + b.gz) * k))
        out.append(g)
    return out


@pytest.fixture(scope="module")
def demo() -> Sequence:
    return demo_session(seed=3)


@pytest.fixture(scope="module")
def demo_samples(demo: Sequence) -> list[ImuSample]:
    return sample_motion(demo, RATE)


# ---------------------------------------------------------------- protocol, determinism


def test_sequences_are_motion_sources(demo: Sequence) -> None:
    assert isinstance(demo, MotionSource)
    assert isinstance(TraceMotion([ImuSample(0, 0, 0, 1, 0, 0, 0)]), MotionSource)


def test_same_seed_same_signal_other_seed_other_signal() -> None:
    times = [i * 0.013 for i in range(3000)]
    first = demo_session(seed=7)
    a = [first.at(t) for t in times]
    b = demo_session(seed=7)
    assert [b.at(t) for t in reversed(times)] == a[::-1]  # pure function of t
    c = demo_session(seed=8)
    assert [c.at(t) for t in times] != a


def test_holds_outside_its_duration(demo: Sequence) -> None:
    assert demo.at(demo.duration + 5.0) == demo.at(demo.duration)
    assert demo.at(-1.0) == demo.at(0.0)


def test_validation() -> None:
    with pytest.raises(ValueError, match="speed"):
        scenario(Walking(5.0, speed_mps=0.0))
    with pytest.raises(ValueError, match="fit"):
        StumbleRecovery(duration=1.0)
    with pytest.raises(ValueError, match="fit"):
        Turn(duration=2.0)
    with pytest.raises(ValueError, match="at least one"):
        Sequence([])
    with pytest.raises(ValueError, match="not fully known"):
        Sequence([Standing(1.0)], mounting=Mounting.parse("x=up y=unknown z=unknown"))


# ---------------------------------------------------------------- physical checks


def test_standing_reads_one_g_and_almost_no_rotation() -> None:
    samples = sample_motion(scenario(Standing(20.0), seed=1), RATE)
    mags = [_norm(_accel(s)) for s in samples]
    assert sum(mags) / len(mags) == pytest.approx(1.0, abs=0.05)
    assert max(abs(m - 1.0) for m in mags) < 0.05
    assert max(_norm(_gyro(s)) for s in samples) < 5.0
    up = _mean(_body(samples))
    assert up[2] > 0.99  # gravity along body up, whatever the sensor axes


def test_cadence_model_matches_the_literature_ranges() -> None:
    for v in (1.0, 1.2, 1.4):
        assert 1.6 <= step_frequency_hz(v, "forward") <= 2.0
    for v in (0.4, 0.6, 0.8, 1.0):
        # Backward: shorter steps, hence a higher cadence at the same belt speed.
        assert step_frequency_hz(v, "backward") > step_frequency_hz(v, "forward")
    assert 1.4 <= step_frequency_hz(0.7, "backward") <= 1.9


@pytest.mark.parametrize(("speed", "direction"), [(0.6, "backward"), (1.2, "forward")])
def test_walking_bounces_at_the_step_rate(speed: float, direction: str) -> None:
    seq = scenario(Walking(12.0, speed, direction), seed=2)  # type: ignore[arg-type]
    samples = sample_motion(seq, 50.0)  # 50 Hz is plenty below 5 Hz and keeps the DFT cheap
    vertical = [b[2] for b in _body(samples)]
    f_step = step_frequency_hz(speed, direction)  # type: ignore[arg-type]
    assert _dominant_hz(vertical, 50.0, 0.5, 4.0) == pytest.approx(f_step, abs=0.05)
    # ±0.2-0.4 g vertical oscillation; trunk rates of tens of deg/s, not hundreds.
    swing = (max(vertical) - min(vertical)) / 2
    assert 0.15 <= swing <= 0.55
    peak_rate = max(_norm(_gyro(s)) for s in samples)
    assert 20.0 <= peak_rate <= 70.0
    # Mediolateral sway repeats once a stride (two steps).
    lateral = [b[1] for b in _body(samples)]
    assert _dominant_hz(lateral, 50.0, 0.3, 4.0) == pytest.approx(f_step / 2, abs=0.05)
    # Lean into the direction of travel.
    pitches = [seq.pose(s.t).pitch_deg for s in samples]
    mean_pitch = sum(pitches) / len(pitches)
    assert (mean_pitch > 0) == (direction == "forward")
    assert abs(mean_pitch) < 6.0


def test_stumble_rotates_back_fast_and_recovers() -> None:
    seq = scenario(StumbleRecovery(speed_mps=0.6), seed=4)
    onset = seq.event_time("stumble_onset")
    samples = sample_motion(seq, RATE)
    before = _window(samples, onset - 0.5, onset)
    burst = _window(samples, onset, onset + 0.35)
    after = _window(samples, onset + 3.0, seq.duration)
    # Backward pitch rate: about the body's left axis, negative.
    rate_left = [DEFAULT_MOUNTING.apply(_gyro(s))[1] for s in burst]
    assert -200.0 <= min(rate_left) <= -100.0
    pitch_before = min(seq.pose(s.t).pitch_deg for s in before)
    pitch_min = min(seq.pose(s.t).pitch_deg for s in burst)
    assert 15.0 <= pitch_before - pitch_min <= 30.0
    # Brief unloading, no impact.
    mags = [_norm(_accel(s)) for s in _window(samples, onset, onset + 1.0)]
    assert min(mags) < 0.7
    assert max(_norm(_accel(s)) for s in samples) < 2.0
    # Back upright, still walking.
    assert max(seq.pose(s.t).tilt_deg for s in after) < 10.0
    assert max(_norm(_gyro(s)) for s in after) > 15.0


def test_fall_impact_posture_and_gravity_axis(
    demo: Sequence, demo_samples: list[ImuSample]
) -> None:
    onset = demo.event_time("fall_onset")
    impact = demo.event_time("impact")
    at_rest = demo.event_time("at_rest")
    assert onset + 0.6 <= impact <= onset + 1.1
    near = _window(demo_samples, impact - 0.5, impact + 0.5)
    peak = max(near, key=lambda s: _norm(_accel(s)))
    assert 3.0 <= _norm(_accel(peak)) <= 6.5
    assert peak.t == pytest.approx(impact, abs=0.02)
    # Partial free fall just before the impact.
    falling = _window(demo_samples, onset, impact - 0.06)
    assert 0.3 <= min(_norm(_accel(s)) for s in falling) <= 0.6
    # Growing backward pitch rate, 150-300 deg/s at its peak.
    pitch_rates = [DEFAULT_MOUNTING.apply(_gyro(s))[1] for s in falling]
    assert -300.0 <= min(pitch_rates) <= -150.0
    assert min(pitch_rates[: len(pitch_rates) // 3]) > min(pitch_rates[-len(pitch_rates) // 3 :])
    # Pitched >= 60 deg (backward) from the impact on; lying still after at_rest.
    assert all(demo.pose(s.t).pitch_deg <= -60.0 for s in _window(demo_samples, impact, 1e9))
    lying = _window(demo_samples, at_rest, demo.duration)
    assert lying[-1].t - at_rest >= 15.0
    assert max(_norm(_gyro(s)) for s in lying) < 2.0
    # Gravity moved from body up to body forward (lying on the back).
    upright = _mean(_body(_window(demo_samples, onset - 5.0, onset)))
    flat = _mean(_body(lying))
    assert upright[2] > 0.95 and abs(upright[0]) < 0.15
    assert flat[0] > 0.95 and abs(flat[2]) < 0.15
    assert _angle_deg(_mean([_accel(s) for s in lying]), DEFAULT_MOUNTING.inverse(UP)) > 80.0


def test_gyro_integrates_to_the_orientation_the_accelerometer_sees() -> None:
    """Self-consistency: gravity propagated by the gyro alone, through standing,
    walking, a 180 deg turn, a stumble and a fall, ends where the accelerometer
    says gravity is once the body lies still."""
    seq = Sequence(
        [
            Standing(2.0),
            Walking(4.0),
            Turn(),
            StumbleRecovery(),
            BackwardFall(lie_s=3.0),
        ],
        seed=5,
        noise=0.0,
    )
    samples = sample_motion(seq, RATE)
    predicted = _gravity_from_gyro(samples)
    for s, g in zip(samples, predicted, strict=True):
        if s.t > seq.event_time("at_rest") + 0.2:
            assert _angle_deg(g, _accel(s)) < 1.0, s.t
    # The turn changes heading, not the gravity direction: still upright after it.
    after_turn = seq.span("turn").end
    i = next(k for k, s in enumerate(samples) if s.t >= after_turn)
    assert _angle_deg(predicted[i], DEFAULT_MOUNTING.inverse(UP)) < 10.0
    assert seq.pose(after_turn).yaw_deg == pytest.approx(180.0, abs=10.0)


def test_turn_is_fast_about_the_vertical_only() -> None:
    seq = scenario(Turn(speed_mps=0.6), seed=6)
    samples = sample_motion(seq, RATE)
    body_rates = [DEFAULT_MOUNTING.apply(_gyro(s)) for s in samples]
    assert max(abs(w[2]) for w in body_rates) > 100.0
    assert max(math.hypot(w[0], w[1]) for w in body_rates) < 70.0
    assert max(seq.pose(s.t).tilt_deg for s in samples) < 12.0


def test_lying_still() -> None:
    samples = sample_motion(scenario(Lying(10.0), seed=1), RATE)
    flat = _mean(_body(samples))
    assert flat[0] > 0.99
    assert max(_norm(_gyro(s)) for s in samples) < 1.0


def test_same_scenario_in_two_mountings_is_the_same_motion_rotated() -> None:
    other = Mounting.parse("x=down y=left z=forward")
    a = Sequence([Walking(3.0), BackwardFall(lie_s=1.0)], seed=9, noise=0.0)
    b = Sequence([Walking(3.0), BackwardFall(lie_s=1.0)], seed=9, noise=0.0, mounting=other)
    for i in range(0, int(a.duration * RATE), 7):
        t = i / RATE
        va, vb = a.at(t), b.at(t)
        for sl in (slice(0, 3), slice(3, 6)):
            xa: Vec3 = va[sl]  # type: ignore[assignment]
            xb: Vec3 = vb[sl]  # type: ignore[assignment]
            assert _norm(xa) == pytest.approx(_norm(xb), abs=1e-9)
            assert other.inverse(DEFAULT_MOUNTING.apply(xa)) == pytest.approx(xb, abs=1e-9)
    assert a.at(1.0)[:3] != pytest.approx(b.at(1.0)[:3], abs=0.1)


def test_transitions_are_smooth(demo: Sequence) -> None:
    """No jumps at segment boundaries: sampled at 1 kHz, consecutive readings
    differ by little except inside the impact."""
    impact = demo.event_time("impact")
    quiet = Sequence(
        [Walking(20.0), StumbleRecovery(), Standing(10.0), Walking(15.0), BackwardFall()],
        seed=3,
        noise=0.0,
    )
    for span in quiet.segments[1:]:
        prev = quiet.at(span.start - 0.05)
        for i in range(-49, 1000):
            t = span.start + i / 1000
            if abs(t - impact) < 0.3:
                continue
            cur = quiet.at(t)
            assert max(abs(cur[k] - prev[k]) for k in range(3)) < 0.1, t
            assert max(abs(cur[k] - prev[k]) for k in range(3, 6)) < 5.0, t
            prev = cur


# ---------------------------------------------------------------- demo timeline


def test_demo_session_timeline(demo: Sequence) -> None:
    labels = [s.label for s in demo.segments]
    assert labels == ["walk_backward", "stumble", "reset_pause", "walk_backward", "fall"]
    assert demo.segments[0].end - demo.segments[0].start == 20.0
    for a, b in itertools.pairwise(demo.segments):
        assert a.end == b.start
    stumble = demo.event_time("stumble_onset")
    pause = demo.span("reset_pause")
    assert demo.span("stumble").start < stumble < pause.start
    assert pause.end < demo.event_time("fall_onset") < demo.event_time("impact")
    assert demo.duration - demo.event_time("at_rest") >= 15.0
    assert demo.label == "fall"
    assert [e.kind for e in demo.events] == ["stumble_onset", "fall_onset", "impact", "at_rest"]
    with pytest.raises(KeyError):
        demo.event_time("impact", 1)
    with pytest.raises(KeyError):
        demo.span("swimming")
    harder = demo_session(seed=3, stumble=StumbleRecovery(tilt_deg=30.0, rise_s=0.15))
    onset = harder.event_time("stumble_onset")
    assert min(harder.pose(onset + i / 100).pitch_deg for i in range(40)) < -30.0


def test_scenario_written_as_a_trace_replays_identically(tmp_path: Path) -> None:
    seq = Sequence([Walking(2.0), BackwardFall(lie_s=1.0)], seed=1)
    samples = sample_motion(seq, RATE)
    path = tmp_path / "fall.csv"
    write_trace(path, seq.trace_header(RATE), samples)
    trace = read_trace(path)
    assert trace.header.label == "fall"
    assert trace.header.impact_t == pytest.approx(seq.event_time("impact"))
    assert trace.header.mounting == DEFAULT_MOUNTING
    replay = TraceMotion(trace)
    assert replay.duration == pytest.approx(seq.duration)
    for s in samples[::13]:
        assert replay.at(s.t) == pytest.approx(tuple(s)[1:], abs=1e-4)


# ---------------------------------------------------------------- TraceMotion


def _ramp_trace() -> Trace:
    samples = [ImuSample(10.0 + i * 0.01, i, -i, 1.0, 2 * i, 0.0, -1.0) for i in range(101)]
    return Trace(TraceHeader(100.0, "test", DEFAULT_MOUNTING), samples)


def test_trace_motion_interpolates_linearly() -> None:
    m = TraceMotion(_ramp_trace())
    assert m.duration == pytest.approx(1.0)
    assert m.at(0.0) == (0, 0, 1.0, 0, 0.0, -1.0)
    assert m.at(0.005) == pytest.approx((0.5, -0.5, 1.0, 1.0, 0.0, -1.0))
    assert m.at(0.123) == pytest.approx((12.3, -12.3, 1.0, 24.6, 0.0, -1.0))
    # Random access after sequential access, and backwards.
    assert m.at(0.9999) == pytest.approx((99.99, -99.99, 1.0, 199.98, 0.0, -1.0))
    assert m.at(0.0101) == pytest.approx((1.01, -1.01, 1.0, 2.02, 0.0, -1.0))
    assert m.at(0.02) == pytest.approx((2, -2, 1.0, 4, 0.0, -1.0))


def test_trace_motion_holds_the_ends() -> None:
    m = TraceMotion(_ramp_trace().samples)
    assert m.at(-3.0) == (0, 0, 1.0, 0, 0.0, -1.0)
    assert m.at(1.0) == (100, -100, 1.0, 200, 0.0, -1.0)
    assert m.at(50.0) == (100, -100, 1.0, 200, 0.0, -1.0)


def test_trace_motion_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        TraceMotion([])
    s = ImuSample(0.0, 0, 0, 1, 0, 0, 0)
    with pytest.raises(ValueError, match="increase"):
        TraceMotion([s, s])


def test_sample_motion_uses_exact_times() -> None:
    samples = sample_motion(scenario(Standing(1.0)), 200.0)
    assert len(samples) == 201
    assert [s.t for s in samples[:3]] == [0.0, 0.005, 0.01]
    assert samples[-1].t == 1.0
    with pytest.raises(ValueError):
        sample_motion(scenario(Standing(1.0)), 0.0)
