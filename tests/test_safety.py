"""The safety state machine, end to end on simulated hardware.

Every test runs the real loop, driver, gpiozero devices and relay-circuit
model on a simulated clock, and asserts on the *contact* of the simulated
relay: what the treadmill would actually see.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.protocol.events import EventType
from tests.app_support import PERIOD, Explodes, Frozen, Rig, TripAt, close_rigs, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)


def armed_rig(tmp_path: Path, **kwargs: object) -> Rig:
    rig = make_rig(tmp_path, **kwargs)  # type: ignore[arg-type]
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    assert not rig.hardware.contact_closed(), "nothing may close the relay before a reset"
    rig.press_reset()
    assert rig.state == "ARMED"
    assert rig.hardware.contact_closed()
    return rig


def test_starts_released_and_only_a_local_press_arms(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.run_for(3.0)
    assert rig.state == "STANDBY"
    assert rig.hardware.history == []  # never closed
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    rig.run_for(5.0)
    assert rig.hardware.contact_closed()
    assert rig.events() == [EventType.START, EventType.RESET]


def test_press_before_imu_is_healthy_does_not_arm(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.press_reset(hold=0.2)  # within healthy_before_arm_s of start
    assert rig.state in {"STARTING", "STANDBY"}
    assert not rig.hardware.contact_closed()


def test_detection_releases_within_one_sample(tmp_path: Path) -> None:
    detector = TripAt(3.0)
    rig = armed_rig(tmp_path, detector=detector)
    rig.run_for(2.0)
    assert rig.state == "TRIPPED"
    assert detector.fired_at is not None
    opened = rig.hardware.opened_after(detector.fired_at - PERIOD)
    assert opened is not None
    assert opened - detector.fired_at <= PERIOD
    assert not rig.hardware.contact_closed()
    assert rig.events()[-1] is EventType.STUMBLE
    stumble = rig.app.store.events()[-1].event
    assert stumble.state == "TRIPPED" and stumble.figures == {"tilt_deg": 40.0}
    assert len(stumble.imu_window) > 100  # the seconds before the trip, for plotting


def test_rearm_needs_a_press_after_the_trip(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path, detector=TripAt(3.0))
    rig.run_for(2.0)
    assert rig.state == "TRIPPED"
    rig.run_for(5.0)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert rig.events()[-1] is EventType.RESET


def test_imu_loss_releases_and_faults(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    assert rig.sim_imu is not None
    lost_at = rig.clock.monotonic()
    rig.sim_imu.bus.disconnect()
    rig.run_for(1.0)
    assert rig.state == "FAULT"
    opened = rig.hardware.opened_after(lost_at)
    assert opened is not None
    # No healthy batch, no heartbeat edge: the hold circuit drops on its own,
    # and the controller's timeout clears it for good.
    assert opened - lost_at <= rig.hardware.hold_s + PERIOD  # type: ignore[attr-defined]
    assert EventType.FAULT in rig.events()
    reason = rig.app.controller.reason
    assert "IMU" in reason


def test_imu_back_needs_a_reset_to_arm_again(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    assert rig.sim_imu is not None
    rig.sim_imu.bus.disconnect()
    rig.run_for(1.0)
    assert rig.state == "FAULT"
    rig.sim_imu.bus.reconnect()
    rig.run_for(3.0)
    assert rig.state == "STANDBY"
    assert not rig.hardware.contact_closed()
    rig.press_reset()
    assert rig.state == "ARMED"


def test_hung_loop_drops_the_relay_by_hardware(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    hung_at = rig.clock.monotonic()
    rig.clock.advance(2.0)  # the loop does not run at all for 2 s
    assert not rig.hardware.contact_closed()
    opened = rig.hardware.opened_after(hung_at)
    hold_s = rig.hardware.hold_s  # type: ignore[attr-defined]
    assert opened is not None and opened - hung_at <= hold_s + 1e-9
    rig.run_for(0.1)  # when it wakes, the FIFO overflowed: samples were lost
    assert rig.state == "FAULT"
    assert "overflow" in rig.app.controller.reason
    assert not rig.hardware.contact_closed()


def test_frozen_data_faults(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, motion=Frozen())
    rig.run_for(2.0)
    assert rig.state == "FAULT"
    assert "frozen" in rig.app.controller.reason
    rig.press_reset()
    assert rig.state == "FAULT" and not rig.hardware.contact_closed()


def test_detector_exception_releases_and_faults(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path, detector=Explodes(3.0))
    rig.run_for(2.0)
    assert rig.state == "FAULT"
    assert "detector error: ZeroDivisionError" in rig.app.controller.reason
    assert not rig.hardware.contact_closed()
    assert rig.events()[-1] is EventType.FAULT


def test_crash_in_the_loop_releases_and_propagates(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path, relay_drive="static")
    crash_at = rig.clock.monotonic() + 0.5

    def crash(monitor: object) -> None:
        if rig.clock.monotonic() >= crash_at:
            raise RuntimeError("bug in the loop")

    rig.app.monitor.on_iteration.append(crash)
    with pytest.raises(RuntimeError, match="bug in the loop"):
        rig.run_for(2.0)
    assert not rig.hardware.contact_closed()
    assert rig.state == "FAULT"


def test_static_drive_holds_a_level_and_releases(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path, relay_drive="static", detector=TripAt(3.0))
    rig.run_for(2.0)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()


def test_garbage_from_the_bus_never_crashes_the_loop(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    assert rig.sim_imu is not None
    for _ in range(20):
        rig.sim_imu.bus.inject_garbage(3)
        rig.run_for(0.05)
    assert rig.state in {"ARMED", "FAULT"}
    if rig.state == "FAULT":
        assert not rig.hardware.contact_closed()


def test_stop_releases_and_records(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    rig.app.close()
    assert not rig.hardware.contact_closed()
