"""Beds (sim.bed): a fall off a bed is confirmed, lying down on one on purpose is not.

Someone rolling off a bed lies before and after the fall, so "upright
shortly before the impact" cannot make it a fall candidate; the free fall
onto the floor does. Someone who sits on a bed and reclines onto it stays
lying as long as a fainted person would; the controlled way the body got
there (the trunk turning at 60-90 deg/s, a gentle contact) is what tells.
"""

from __future__ import annotations

import pytest

from core.mounting import up_vector
from core.samples import ImuSample
from firmware.detection import Detection, DetectionKind, DetectorConfig
from firmware.detection.factory import build_detector
from sim.bed import BedFall, LieDown
from sim.scenarios import Sequence, Standing

RATE = 200.0


def detect(seq: Sequence) -> list[Detection]:
    det = build_detector(DetectorConfig(), RATE, up=up_vector(seq.mounting))
    out: list[Detection] = []
    for i in range(int(seq.duration * RATE)):
        t = i / RATE
        out.extend(det.update(ImuSample(t, *seq.at(t))))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_fall_off_a_bed_is_confirmed(seed: int) -> None:
    seq = Sequence([Standing(2.0), LieDown(lie_s=6.0), BedFall()], seed=seed)
    falls = [d for d in detect(seq) if d.kind is DetectionKind.FALL]
    assert falls, "rolling off the bed onto the floor is a fall"
    assert falls[0].t > seq.event_time("impact")
    assert falls[0].figures["impact_g"] > 4.0


def test_a_fall_off_a_bed_without_the_free_fall_rule_is_missed() -> None:
    """The same fall with the drop rule off (a free fall longer than any):
    lying before, so no "upright before": the old detector never confirmed it."""
    seq = Sequence([Standing(2.0), LieDown(lie_s=6.0), BedFall()], seed=0)
    det = build_detector(DetectorConfig(drop_min_s=10.0), RATE, up=up_vector(seq.mounting))
    found: list[Detection] = []
    for i in range(int(seq.duration * RATE)):
        found.extend(det.update(ImuSample(i / RATE, *seq.at(i / RATE))))
    assert not [d for d in found if d.kind is DetectionKind.FALL]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("recline_s", [1.5, 2.5])
def test_lying_down_on_a_bed_and_staying_is_no_fall(seed: int, recline_s: float) -> None:
    seq = Sequence([Standing(3.0), LieDown(lie_s=30.0, recline_s=recline_s)], seed=seed)
    assert not [d for d in detect(seq) if d.kind is DetectionKind.FALL]
