"""The detector's first second: not blind, and still right at a walking start.

A fall can come early in a recording (a dataset that starts 0.1 s before the
onset, a detector restarted just before it). Landings are followed from the
first sample against a provisional upright and judged against the learned
one; the stumble rules still wait for the warm-up, which learns "upright"
from its least-moving samples, so walking starts still do not trip.
"""

from __future__ import annotations

import math

import pytest

from core.mounting import up_vector
from core.samples import ImuSample
from firmware.detection import TRIPPING_KINDS, Detection, DetectionKind, DetectorConfig
from firmware.detection.factory import build_detector
from firmware.detection.retro import FallDetector
from sim import treadmill
from sim.scenarios import BackwardFall, Sequence, Standing, Walking

RATE = 200.0


def samples(seq: Sequence) -> list[ImuSample]:
    return [ImuSample(i / RATE, *seq.at(i / RATE)) for i in range(int(seq.duration * RATE))]


def detect(
    seq: Sequence, *, mounted: bool = True, config: DetectorConfig | None = None
) -> list[Detection]:
    up = up_vector(seq.mounting) if mounted else None
    det = build_detector(config or DetectorConfig(), RATE, up=up)
    out: list[Detection] = []
    for s in samples(seq):
        out.extend(det.update(s))
    return out


def early_fall(seed: int, standing_s: float = 0.0) -> Sequence:
    """A backward fall whose impact comes 0.6 s after the quiet start (if
    any): the recording starts as the trunk starts to go."""
    fall = BackwardFall(lead_in_s=0.0, fall_s=0.6, lie_s=8.0)
    segments = [Standing(standing_s), fall] if standing_s > 0 else [fall]
    return Sequence(segments, seed=seed, blend_s=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_fall_inside_the_first_second_is_confirmed(seed: int) -> None:
    """Impact 0.6 s after the first sample, inside the 1 s warm-up, with no
    motionless sample before it: the landing is followed against the
    provisional upright (the mounting's "up") and the fall confirmed once
    the trunk has lain through the confirmation window. (Without a known
    mounting the warm-up ends with a lying "upright" and nothing can tell
    lying from standing: the monitor always knows its mounting.)"""
    seq = early_fall(seed)
    impact = seq.event_time("impact")
    assert impact < DetectorConfig().warmup_s
    falls = [d for d in detect(seq) if d.kind is DetectionKind.FALL]
    assert falls, "the landing inside the warm-up must be judged"
    assert falls[0].t > impact


def test_the_learned_upright_replaces_the_provisional_one() -> None:
    """Standing still: no upright is reported while the warm-up learns it,
    then the learned one (the motionless samples' mean) reads ~0 deg."""
    det = FallDetector(DetectorConfig(), RATE, up=None)
    for s in samples(Sequence([Standing(2.0)], seed=0)):
        if s.t < 0.9:
            assert det.upright is None
        det.update(s)
    assert det.upright is not None
    assert det.tilt_deg < 2.0


def _tilted(v: tuple[float, float, float], deg: float) -> tuple[float, float, float]:
    """``v`` turned by ``deg`` about the sensor's x axis."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return (v[0], c * v[1] - s * v[2], s * v[1] + c * v[2])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("off_deg", [-25.0, 25.0])
def test_a_crooked_belt_walking_from_the_first_sample_does_not_trip(
    seed: int, off_deg: float
) -> None:
    """The mounting's "up" 25 deg off the walker's upright (a belt worn
    crooked) and a walk from the first sample: the provisional upright is
    25 deg off during the warm-up (every heel strike a landing with the
    trunk "tilted"), and nothing may come of it, then or after the switch
    to the learned upright."""
    seq = Sequence([Walking(8.0, treadmill.mph(1.5), "backward")], seed=seed)
    up = up_vector(seq.mounting)
    assert up is not None
    det = build_detector(DetectorConfig(), RATE, up=_tilted(up, off_deg))
    tripped = [d for s in samples(seq) for d in det.update(s) if d.kind in TRIPPING_KINDS]
    assert tripped == [], f"{tripped[0].reason} at {tripped[0].t:.2f} s"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_stumble_rules_wait_for_the_warm_up(seed: int) -> None:
    """A fall 0.3 s after a quiet start, impact at 0.9 s: the landing is
    confirmed, and no stumble is reported from the provisional upright."""
    seq = early_fall(seed, standing_s=0.3)
    found = detect(seq)
    assert not [d for d in found if d.kind is DetectionKind.STUMBLE and d.t < 1.0]
    assert any(d.kind is DetectionKind.FALL for d in found)


@pytest.mark.parametrize("mounted", [True, False])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("standing_s", [0.0, 0.3, 0.6])
@pytest.mark.parametrize("direction", ["backward", "forward"])
def test_walking_starts_do_not_trip(
    standing_s: float, seed: int, mounted: bool, direction: str
) -> None:
    """A walk that starts with the recording (mid-stride: no still sample,
    the whole warm-up learns from the least-moving samples) or after a short
    quiet stretch (which ends the warm-up early): never a trip."""
    walk = Walking(12.0, treadmill.mph(1.5), "backward" if direction == "backward" else "forward")
    segments = [Standing(standing_s), walk] if standing_s > 0 else [walk]
    seq = Sequence(segments, seed=seed)
    tripped = [d for d in detect(seq, mounted=mounted) if d.kind in TRIPPING_KINDS]
    assert tripped == [], f"{tripped[0].reason} at {tripped[0].t:.2f} s"
