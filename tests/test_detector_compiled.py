"""The compiled detector (mypyc, ``setup.py``) detects exactly what the pure-Python one does.

Same detections, field for field, and the same internal state at the end,
on real SisFall and KFall recordings that exercise every rule (trips, a
collapse, firm and soft landings, a fall ending seated, jogging that must
not trip) and on a synthesised treadmill session with an upright backward
fall. Skipped, saying why, where the compiled build is absent (no C
compiler, ``RETROGUARD_PURE``) or stale (the sources were edited since).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from core.mounting import up_vector
from core.samples import ImuSample
from firmware.detection import DetectorConfig
from firmware.detection.factory import build_detector, compiled_class, detector_class
from firmware.detection.retro import FallDetector
from sim import treadmill
from sim.bed import BedFall, LieDown
from sim.scenarios import BackwardFall, Standing
from sim.scenarios import Sequence as Scenario
from tests.detector_support import detector_state, run
from tests.kfall_support import kfall_file
from tests.sisfall_support import sisfall_file
from tools.datasets import describe, open_samples

RATE = 200.0


def compiled() -> type[FallDetector]:
    cls = compiled_class()
    if cls is None:
        pytest.skip(
            "compiled detector not built or stale: `pip install -e .` with a C compiler "
            "(and without RETROGUARD_PURE) builds it"
        )
    return cls


def assert_identical(samples: Sequence[ImuSample], up: tuple[float, float, float] | None) -> None:
    cls = compiled()
    pure = FallDetector(DetectorConfig(), RATE, up=up)
    fast = cls(DetectorConfig(), RATE, up=up)
    expected = run(pure, samples)
    assert run(fast, samples) == expected
    assert detector_state(fast) == detector_state(pure)
    # and through step(), the batch path's entry point
    again = cls(DetectorConfig(), RATE, up=up)
    found = []
    for s in samples:
        found.extend(again.step(s.t, s.ax, s.ay, s.az, s.gx, s.gy, s.gz, s.accel_magnitude))
    assert found == expected


SISFALL = [
    "F02_SA01_R01.txt",  # backward slip: STUMBLE before impact, FALL
    "F13_SA05_R04.txt",  # soft slump off a chair: the long lie
    "F11_SA01_R02.txt",  # backward fall ending seated: the hard-impact path
    "F05_SA13_R01.txt",  # a trip while jogging slowly
    "D04_SA01_R01.txt",  # jogging quickly: nothing
    "D12_SA08_R04.txt",  # lying down on a bed
]
KFALL = [
    "S06T34R01.csv",  # backward slip while walking (onset labelled)
    "S16T34R02.csv",  # backward slip caught by the upright-collapse rule
    "S08T23R02.csv",  # forward fall getting up: a trip before onset, then the fall
    "S09T09R01.csv",  # jogging quickly with a turn
    "S06T19R01.csv",  # lying down quickly on a bed
    "S06T27R05.csv",  # impact 0.53 s after the first sample: a landing in the warm-up
]


@pytest.mark.parametrize("name", SISFALL)
def test_compiled_and_pure_agree_on_sisfall(name: str) -> None:
    rec = describe(sisfall_file(name))
    assert_identical(list(open_samples(rec, RATE)), rec.up)


@pytest.mark.parametrize("name", KFALL)
def test_compiled_and_pure_agree_on_kfall(name: str) -> None:
    rec = describe(kfall_file(name))
    assert_identical(list(open_samples(rec, RATE)), rec.up)


def test_compiled_and_pure_agree_on_a_synthesised_treadmill_fall() -> None:
    seq = treadmill.upright_backward_fall(seed=3)
    n = int(seq.duration * RATE)
    samples = [ImuSample(i / RATE, *seq.at(i / RATE)) for i in range(n)]
    assert_identical(samples, up_vector(seq.mounting))


def test_compiled_and_pure_agree_on_a_fall_in_the_warm_up() -> None:
    """A quiet quarter second ends the warm-up, then a fall; and a fall whose
    impact comes inside the warm-up (landings against the provisional upright)."""
    for segments in (
        [Standing(0.3), BackwardFall(lead_in_s=0.0, fall_s=0.6, lie_s=4.0)],
        [BackwardFall(lead_in_s=0.0, fall_s=0.6, lie_s=4.0)],
    ):
        seq = Scenario(segments, seed=2, blend_s=0.05)
        n = int(seq.duration * RATE)
        samples = [ImuSample(i / RATE, *seq.at(i / RATE)) for i in range(n)]
        assert_identical(samples, up_vector(seq.mounting))


def test_compiled_and_pure_agree_on_a_fall_off_a_bed() -> None:
    """The free-fall landing (lying before and after) and the controlled recline."""
    seq = Scenario([Standing(2.0), LieDown(lie_s=6.0), BedFall()], seed=1)
    n = int(seq.duration * RATE)
    samples = [ImuSample(i / RATE, *seq.at(i / RATE)) for i in range(n)]
    assert_identical(samples, up_vector(seq.mounting))


def test_the_factory_builds_the_compiled_detector_when_it_is_current() -> None:
    cls = compiled()
    assert detector_class() is cls
    assert type(build_detector(DetectorConfig(), RATE)) is cls
