"""Leaving FAULT and arming again: only on data that is really healthy, only on a new press.

End to end on simulated hardware (the real loop, driver, controller and gpiozero devices on
MockFactory pins, the register-level chip), asserting on the simulated relay's contact.
Each test is a way the belt used to be armed, or the controller to leave FAULT, when it
must not have been.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app_support import Rig, close_rigs, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)


def _armed_rig(tmp_path: Path, **kwargs: object) -> Rig:
    rig = make_rig(tmp_path, **kwargs)  # type: ignore[arg-type]
    rig.run_for(1.0)
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    return rig


def test_a_button_held_through_a_fault_does_not_arm_when_the_imu_recovers(
    tmp_path: Path,
) -> None:
    """A reset press must be made once arming is possible. A button held down — or jammed,
    or leant on by a walker who fell against the console — from a FAULT into STANDBY was
    reported as a reset press the moment STANDBY began, and the belt armed with nobody
    pressing anything. Now it is ignored; letting go and pressing again arms."""
    rig = _armed_rig(tmp_path)
    assert rig.sim_imu is not None
    chip = rig.sim_imu.chip
    chip.stalled = True
    rig.run_for(0.5)
    assert rig.state == "FAULT"
    pressed = rig.clock.monotonic()
    rig.button.press_at(pressed, pressed + 3.0)
    rig.run_for(0.5)
    chip.stalled = False
    rig.run_for(2.0)
    assert rig.state == "STANDBY" and not rig.hardware.contact_closed()
    rig.run_for(1.0)  # let go
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def test_a_button_held_from_the_start_does_not_arm(tmp_path: Path) -> None:
    """The same at power-on: a button down before the IMU is healthy is no reset press."""
    rig = make_rig(tmp_path)
    now = rig.clock.monotonic()
    rig.button.press_at(now + 0.1, now + 2.0)
    rig.run_for(2.5)
    assert rig.state == "STANDBY" and rig.hardware.history == []
    rig.press_reset()
    assert rig.state == "ARMED"
