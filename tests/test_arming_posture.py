"""A reset press arms only a walker who stands: the belt is never let run under a person lying.

After a fall the walker lies on the belt or the floor, breathing and moving: the sensor-worn
check reads a body, and the detector looks for no second fall inside a fall's episode, so
nothing would trip if the belt ran. A press while the sensor reads lying is refused; once the
walker stands, the press arms and the fall's episode ends with it (it used to end only after
2 s upright, so a quick re-arm had seconds with no stumble or fall detection at all).

End to end on simulated hardware (the real loop, driver, controller, detector and worn check
on MockFactory pins and the register-level chip), asserting on the simulated relay's contact.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.mounting import Mounting, up_vector
from core.protocol.events import EventType
from firmware.config import ImuConfig, SafetyConfig
from firmware.detection import DetectorConfig, build_detector
from firmware.detection.base import KnowsPosture
from firmware.detection.retro import FallDetector
from firmware.safety import NOT_UPRIGHT_REASON
from sim import scenarios as sc
from tests.app_support import Rig, close_rigs, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

SAFETY = SafetyConfig()
ARM_AT = 1.0 + SAFETY.worn_block_s + 0.5
"""When the worn check has seen a first block of standing (tests/test_worn.py)."""


def _closes(rig: Rig) -> int:
    return [closed for _, closed in rig.hardware.history].count(True)


def _detector() -> FallDetector:
    """The detector the monitor builds (its config, rate and mounting), kept to look into."""
    imu = ImuConfig()
    detector = build_detector(
        DetectorConfig(), imu.sample_rate_hz, up=up_vector(Mounting.parse(imu.mounting))
    )
    assert isinstance(detector, KnowsPosture)
    return detector


def _fallen_rig(tmp_path: Path, after: list[object]) -> tuple[Rig, sc.Sequence, FallDetector]:
    """Armed while standing, then a backward fall; the rig is run to the fall's FALL."""
    motion = sc.Sequence(
        [sc.Standing(ARM_AT + 2.0), sc.Walking(4.0), sc.BackwardFall(lie_s=0.5), *after], seed=3
    )
    detector = _detector()
    rig = make_rig(tmp_path, motion=motion, worn_check=True, detector=detector)
    rig.run_for(ARM_AT)
    rig.press_reset()
    assert rig.state == "ARMED"
    rig.run_for(motion.span("lying").start + 4.0 - rig.clock.monotonic())
    assert rig.state == "TRIPPED" and EventType.FALL in rig.events()
    return rig, motion, detector


def test_a_press_while_the_walker_lies_breathing_after_a_fall_is_refused(tmp_path: Path) -> None:
    """Lying on the back and breathing reads worn (a body is there); before, that press armed
    the belt with the walker lying on it and nothing left to trip it."""
    rig, _, detector = _fallen_rig(tmp_path, [sc.Lying(30.0)])
    worn = rig.app.controller.worn
    assert worn is not None and worn.worn_now  # the worn check alone would arm
    assert detector.lying and detector.fall_open
    closes = _closes(rig)
    rig.press_reset()
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    assert rig.app.controller.reason == NOT_UPRIGHT_REASON
    assert _closes(rig) == closes  # never closed
    assert rig.events().count(EventType.RESET) == 1  # the first arming's only


def test_a_walker_who_stood_up_arms_and_a_stumble_right_after_is_seen(tmp_path: Path) -> None:
    """Standing again after the fall: a press 0.35 s later arms (no wait for the detector's
    2 s upright), the fall's episode ends with it, and a stumble 0.5 s into the walk trips
    the belt. Before, stumbles and landings were not looked for until the walker had stood
    for 2 s: that stumble, over by then, was never reported, the belt running on."""
    rig, motion, detector = _fallen_rig(
        tmp_path,
        [
            sc.Lying(6.0),
            sc.Standing(0.7),
            sc.Walking(0.1),
            sc.StumbleRecovery(lead_in_s=0.3),
            sc.Walking(4.0),
        ],
    )
    standing = motion.span("standing", 1)
    rig.run_for(standing.start + 0.35 - rig.clock.monotonic())
    assert not detector.lying and detector.fall_open  # up, not yet for the detector's 2 s
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert not detector.fall_open
    stumble = motion.span("stumble")
    rig.run_for(stumble.end - rig.clock.monotonic())
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    assert rig.events().count(EventType.STUMBLE) == 2  # the fall's, and this one
