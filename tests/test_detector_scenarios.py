"""The detector on synthesised scenarios (sim.scenarios): what must trip, what must not.

These are the cases a treadmill user meets: standing, walking forward and
backward, 180-degree turns (fast ones too), a stumble caught by recovery steps
and a backward fall onto the back. They also check the things real recordings
cannot vary on demand: the mounting, the sample rate and an uncalibrated gyro.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

import pytest

from core.mounting import Mounting
from core.samples import ImuSample
from firmware.detection import (
    TRIPPING_KINDS,
    Detection,
    DetectionKind,
    DetectorConfig,
    build_detector,
)
from sim.scenarios import (
    BackwardFall,
    Lying,
    Segment,
    Sequence,
    Standing,
    StumbleRecovery,
    Turn,
    Walking,
)
from tools.datasets.resample import resample


def samples(seq: Sequence, rate: float) -> list[ImuSample]:
    n = int(seq.duration * rate)
    return [ImuSample(i / rate, *seq.at(i / rate)) for i in range(n)]


def detect(
    seq: Sequence, rate: float = 200.0, config: DetectorConfig | None = None
) -> list[Detection]:
    det = build_detector(config or DetectorConfig(), rate)
    out: list[Detection] = []
    for s in samples(seq, rate):
        out.extend(det.update(s))
    return out


def trips(detections: Seq[Detection]) -> list[Detection]:
    return [d for d in detections if d.kind in TRIPPING_KINDS]


HARMLESS: dict[str, list[Segment]] = {
    "standing": [Standing(20.0)],
    "walking forward": [Standing(2.0), Walking(25.0, 1.3, "forward")],
    "walking backward": [Standing(2.0), Walking(25.0, 0.6, "backward")],
    "brisk backward walk": [Standing(2.0), Walking(20.0, 1.0, "backward")],
    "180 deg turn": [Standing(2.0), Walking(3.0), Turn(), Walking(3.0)],
    "fast turn (0.6 s)": [
        Standing(2.0),
        Walking(3.0),
        Turn(duration=1.5, turn_s=0.6, lead_in_s=0.5),
        Walking(3.0),
    ],
    "two turns and back": [Standing(2.0), Turn(), Walking(2.0), Turn(angle_deg=-180.0)],
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", list(HARMLESS))
def test_harmless_motion_never_trips(name: str, seed: int) -> None:
    assert trips(detect(Sequence(HARMLESS[name], seed=seed))) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stumble_with_recovery_trips_at_once(seed: int) -> None:
    seq = Sequence([Standing(2.0), Walking(5.0), StumbleRecovery(), Walking(3.0)], seed=seed)
    onset = seq.event_time("stumble_onset")
    found = trips(detect(seq))
    assert found, "the stumble was not detected"
    assert found[0].kind is DetectionKind.STUMBLE
    assert onset <= found[0].t <= onset + 0.4
    assert all(d.kind is not DetectionKind.FALL for d in found)


def fall_sequence(seed: int = 0, mounting: Mounting | None = None, **kw: object) -> Sequence:
    segs = [Standing(2.0), Walking(5.0), BackwardFall(lie_s=14.0)]
    if mounting is None:
        return Sequence(segs, seed=seed, **kw)  # type: ignore[arg-type]
    return Sequence(segs, seed=seed, mounting=mounting, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backward_fall_trips_before_impact_then_confirms_and_escalates(seed: int) -> None:
    seq = fall_sequence(seed)
    impact = seq.event_time("impact")
    found = detect(seq)
    kinds = [d.kind for d in found]
    assert kinds == [DetectionKind.STUMBLE, DetectionKind.FALL, DetectionKind.NO_RECOVERY]
    stumble, fall, no_recovery = found
    assert impact - stumble.t >= 0.2, "the relay must open well before the impact"
    assert impact < fall.t <= impact + 3.0
    at_rest = seq.event_time("at_rest")
    assert no_recovery.t >= at_rest + DetectorConfig().no_recovery_s
    # The caregiver's story tells how long the walker lay still.
    assert no_recovery.figures["still_s"] == pytest.approx(DetectorConfig().no_recovery_s, abs=0.05)


def test_no_recovery_time_is_configurable() -> None:
    found = detect(fall_sequence(), config=DetectorConfig(no_recovery_s=4.0))
    nr = [d for d in found if d.kind is DetectionKind.NO_RECOVERY]
    fall = [d for d in found if d.kind is DetectionKind.FALL]
    assert nr and fall
    assert nr[0].t - fall[0].t < 6.0
    assert nr[0].figures["still_s"] == pytest.approx(4.0, abs=0.05)


def test_lying_still_from_the_start_is_not_a_fall() -> None:
    assert detect(Sequence([Lying(20.0)])) == []


MOUNTINGS = ["x=forward y=left z=up", "x=down y=right z=backward", "x=down y=forward z=right"]


@pytest.mark.parametrize("mounting", MOUNTINGS)
def test_other_mountings_detect_the_same(mounting: str) -> None:
    m = Mounting.parse(mounting)
    base = detect(fall_sequence(0))
    other = detect(fall_sequence(0, m))
    assert [d.kind for d in other] == [d.kind for d in base]
    assert [d.t for d in other] == pytest.approx([d.t for d in base], abs=0.02)
    walk = Sequence(HARMLESS["180 deg turn"], mounting=m)
    assert trips(detect(walk)) == []


@pytest.mark.parametrize("rate", [50.0, 100.0, 500.0, 1000.0])
def test_other_sample_rates_detect_the_same(rate: float) -> None:
    seq = fall_sequence(0)
    impact = seq.event_time("impact")
    found = detect(seq, rate=rate)
    assert [d.kind for d in found][:2] == [DetectionKind.STUMBLE, DetectionKind.FALL]
    assert found[0].t < impact - 0.15
    assert trips(detect(Sequence(HARMLESS["fast turn (0.6 s)"]), rate=rate)) == []


def test_a_1khz_recording_resampled_to_200hz_still_trips_before_impact() -> None:
    seq = fall_sequence(1)
    det = build_detector(DetectorConfig(), 200.0)
    found = [d for s in resample(samples(seq, 1000.0), 200.0) for d in det.update(s)]
    assert found[0].kind is DetectionKind.STUMBLE
    assert found[0].t < seq.event_time("impact")


def test_an_uncalibrated_gyro_changes_nothing() -> None:
    """An MPU-6050 off the shelf has a zero-rate offset of several deg/s."""
    bias = (4.0, -6.0, 3.0)
    assert trips(detect(Sequence(HARMLESS["walking backward"], gyro_bias_dps=bias))) == []
    found = detect(fall_sequence(0, gyro_bias_dps=bias))
    assert [d.kind for d in found][:2] == [DetectionKind.STUMBLE, DetectionKind.FALL]
