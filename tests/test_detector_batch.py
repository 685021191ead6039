"""The batch path (tools.batch) detects exactly what the streaming path does.

Real recordings that exercise every decision (a backward slip with its trip and
FALL, a soft slump confirmed by the long lie, a fall ending seated, a jog that
must not trip) and a synthesised session, fed once sample by sample through
``update()`` and once as NumPy blocks of many sizes, random splits included:
the detections must be equal field for field, figures and reasons included,
and so must the state the detector ends in.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from core.samples import ImuSample
from firmware.detection import Detection, DetectorConfig
from firmware.detection.retro import FallDetector
from sim.scenarios import (
    BackwardFall,
    Standing,
    StumbleRecovery,
    Turn,
    Walking,
)
from sim.scenarios import (
    Sequence as Scenario,
)
from tests.detector_support import detector_state, run
from tests.sisfall_support import sisfall_file
from tools.batch import as_block, detect_block
from tools.datasets.sisfall import read_sisfall

RATE = 200.0

RECORDINGS = [
    "F02_SA01_R01.txt",  # backward slip while walking: STUMBLE before impact, then FALL
    "F13_SA05_R04.txt",  # soft slump off a chair: FALL only after the long lie
    "F11_SA01_R02.txt",  # backward fall ending seated: the hard-impact path
    "D18_SA03_R01.txt",  # stumble without a fall
    "D04_SA01_R01.txt",  # jogging quickly: nothing
]


def splits(n: int, rng: random.Random) -> Iterator[tuple[int, int]]:
    """Random block boundaries over ``n`` rows: sizes 1 to 500."""
    i = 0
    while i < n:
        j = min(n, i + rng.randint(1, 500))
        yield i, j
        i = j


def assert_same(samples: Sequence[ImuSample], seed: int) -> list[Detection]:
    config = DetectorConfig()
    one = FallDetector(config, RATE)
    expected = run(one, samples)

    block = as_block(samples)
    whole = FallDetector(config, RATE)
    assert detect_block(whole, block) == expected
    assert detector_state(whole) == detector_state(one)

    rng = random.Random(seed)
    pieces = FallDetector(config, RATE)
    got: list[Detection] = []
    for i, j in splits(len(samples), rng):
        got.extend(detect_block(pieces, block[i:j]))
    assert got == expected
    assert detector_state(pieces) == detector_state(one)
    return expected


@pytest.mark.parametrize("name", RECORDINGS)
def test_batch_and_streaming_agree_on_real_recordings(name: str) -> None:
    samples = read_sisfall(sisfall_file(name))
    found = assert_same(samples, seed=len(name))
    if name.startswith("F"):
        assert found, "a fall recording must give detections for the comparison to mean much"


def test_batch_and_streaming_agree_on_a_synthesised_session() -> None:
    seq = Scenario(
        [
            Standing(3.0),
            Walking(20.0, 0.6, "backward"),
            Turn(),
            StumbleRecovery(),
            Walking(10.0, 0.6, "backward"),
            BackwardFall(lie_s=12.0),
        ],
        seed=3,
    )
    n = int(seq.duration * RATE)
    samples = [ImuSample(i / RATE, *seq.at(i / RATE)) for i in range(n)]
    kinds = {d.kind.value for d in assert_same(samples, seed=7)}
    assert {"stumble", "fall", "no_recovery"} <= kinds


def test_a_block_of_the_wrong_shape_is_refused() -> None:
    det = FallDetector(DetectorConfig(), RATE)
    with pytest.raises(ValueError, match=r"\(N, 7\)"):
        detect_block(det, np.zeros((10, 6)))
    with pytest.raises(ValueError, match=r"\(N, 7\)"):
        detect_block(det, np.zeros(7))
    assert detect_block(det, np.zeros((0, 7))) == []
