"""The treadmill sessions and the upright backward fall (sim.treadmill) through the detector.

Belt starts, speed steps from 0.3 to 1.5 mph and back, the 2/2 plan's
turn-arounds, forward and backward, in several walkers (seeds) and
mountings: not one trip. The upright backward fall (the belt carries the
feet away and the walker sits down backward, trunk near vertical): tripped
before its impact and confirmed, whether it ends lying or sitting. And the
physics the scenarios claim.
"""

from __future__ import annotations

import math

import pytest

from core.mounting import Mounting, up_vector
from core.samples import ImuSample
from firmware.detection import TRIPPING_KINDS, Detection, DetectionKind, DetectorConfig
from firmware.detection.factory import build_detector
from sim import treadmill
from sim.scenarios import Sequence, Standing, Walking, _pulse

RATE = 200.0


def samples(seq: Sequence, rate: float = RATE) -> list[ImuSample]:
    n = int(seq.duration * rate)
    return [ImuSample(i / rate, *seq.at(i / rate)) for i in range(n)]


def detect(seq: Sequence, rate: float = RATE) -> list[Detection]:
    det = build_detector(DetectorConfig(), rate, up=up_vector(seq.mounting))
    out: list[Detection] = []
    for s in samples(seq, rate):
        out.extend(det.update(s))
    return out


SESSIONS = {
    "belt start backward 0.3 mph": lambda seed: treadmill.belt_start_session(
        seed=seed, speed_mph=0.3
    ),
    "belt start backward 1.5 mph": lambda seed: treadmill.belt_start_session(
        seed=seed, speed_mph=1.5
    ),
    "belt start forward 1.5 mph": lambda seed: treadmill.belt_start_session(
        seed=seed, direction="forward", speed_mph=1.5
    ),
    "speed steps backward": lambda seed: treadmill.speed_steps_session(seed=seed),
    "speed steps forward": lambda seed: treadmill.speed_steps_session(
        seed=seed, direction="forward"
    ),
    "2/2 turn-arounds": lambda seed: treadmill.turnaround_session(seed=seed),
    "whole session": lambda seed: treadmill.treadmill_session(seed=seed),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(SESSIONS))
def test_treadmill_sessions_never_trip(name: str, seed: int) -> None:
    seq = SESSIONS[name](seed)
    tripped = [d for d in detect(seq) if d.kind in TRIPPING_KINDS]
    assert tripped == [], f"{name} seed {seed}: {tripped[0].reason} at {tripped[0].t:.2f} s"


@pytest.mark.parametrize("rate", [100.0, 50.0])
def test_the_whole_session_never_trips_at_other_rates(rate: float) -> None:
    found = detect(treadmill.treadmill_session(seed=4), rate)
    assert [d for d in found if d.kind in TRIPPING_KINDS] == []


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ends", ["lying", "seated"])
@pytest.mark.parametrize("drop_s", [0.55, 0.75])
def test_upright_backward_fall_trips_before_impact_and_is_confirmed(
    seed: int, ends: str, drop_s: float
) -> None:
    seq = treadmill.upright_backward_fall(
        seed=seed, ends="lying" if ends == "lying" else "seated", drop_s=drop_s
    )
    impact = seq.event_time("impact")
    onset = seq.event_time("fall_onset")
    found = detect(seq)
    stumbles = [d for d in found if d.kind is DetectionKind.STUMBLE]
    assert stumbles, "the collapse must trip"
    assert onset < stumbles[0].t < impact - 0.1, stumbles[0].reason
    assert any(d.kind is DetectionKind.FALL for d in found)


def test_upright_backward_fall_trips_in_another_mounting() -> None:
    """The same fall seen by a box clipped on the hip, facing right."""
    v = treadmill.mph(0.5)
    seq = Sequence(
        [Standing(3.0), treadmill.BeltStart(12.0, v, "backward"), treadmill.UprightBackwardFall()],
        seed=5,
        mounting=Mounting.parse("x=backward y=down z=right"),
    )
    first = next(d for d in detect(seq) if d.kind in TRIPPING_KINDS)
    assert first.kind is DetectionKind.STUMBLE
    assert first.t < seq.event_time("impact")


# --- the physics the scenarios claim ------------------------------------------------


def test_upright_fall_drops_the_pelvis_fast_with_the_trunk_near_vertical() -> None:
    fall = treadmill.UprightBackwardFall()
    assert fall.impact_speed_mps == pytest.approx(0.6 * 9.80665 * 0.75 / 2)  # 2.2 m/s
    assert 0.4 < fall.drop_m < 0.6
    seq = treadmill.upright_backward_fall(seed=0)
    onset, impact = seq.event_time("fall_onset"), seq.event_time("impact")
    tilts = [seq.pose(onset + k * 0.01).tilt_deg for k in range(int((impact - onset) / 0.01))]
    assert max(tilts) < 16.0  # 10 deg back plus gait sway: near vertical
    up = up_vector(seq.mounting)
    assert up is not None
    vertical = [
        sum(a * u for a, u in zip(seq.at(onset + k * 0.01)[:3], up, strict=True))
        for k in range(int((impact - onset - 0.06) / 0.01))
    ]
    assert min(vertical) < 0.55  # the legs give way: well below 1 g


def test_a_speed_change_pitches_the_trunk_against_the_drag_and_comes_back() -> None:
    """Speeding up under a backward walker drags the feet the way the walker
    faces: the trunk pitches back a degree or two and returns; the pelvis
    lurch is velocity-neutral."""
    change = treadmill.SpeedChange(10.0, treadmill.mph(0.5), treadmill.mph(1.0), "backward")
    seq = Sequence([change], seed=0, noise=0.0)
    quiet = Sequence([Walking(10.0, treadmill.mph(1.0), "backward")], seed=0, noise=0.0)
    during = [seq.pose(1.0 + k * 0.02).pitch_deg for k in range(60)]
    after = [seq.pose(6.0 + k * 0.02).pitch_deg for k in range(60)]
    steady = [quiet.pose(6.0 + k * 0.02).pitch_deg for k in range(60)]
    assert min(during) < min(steady) - 0.8
    assert min(after) == pytest.approx(min(steady), abs=0.3)
    # The lurch of the pelvis is velocity-neutral: push and brake cancel.
    dt = 0.001
    r = change.ramp_s
    s0 = change.lead_in_s
    lurch = sum(
        _pulse(s0 + i * dt, s0, r) - r / (r + 0.4) * _pulse(s0 + i * dt, s0 + r, r + 0.4)
        for i in range(int((2 * r + 0.5) / dt))
    )
    assert abs(lurch * dt) < 1e-3


def test_sessions_cover_the_speeds_and_the_turn_arounds() -> None:
    seq = treadmill.treadmill_session(seed=0)
    labels = [s.label for s in seq.segments]
    assert labels.count("speed_change") == 2 * (len(treadmill.SPEED_STEPS_MPH) - 1)
    assert "turn_to_forward" in labels and "turn_to_backward" in labels
    assert treadmill.mph(1.5) == pytest.approx(0.6706, abs=1e-4)
    assert math.isclose(treadmill.SPEED_STEPS_MPH[0], 0.3)
