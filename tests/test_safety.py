"""The safety state machine, end to end on simulated hardware.

Every test runs the real loop, driver, gpiozero devices and relay-circuit
model on a simulated clock, and asserts on the *contact* of the simulated
relay: what the treadmill would actually see.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from core.protocol.events import EventType
from core.samples import ImuSample
from firmware.detection.base import DetectionKind
from firmware.safety import (
    SAFETY_TRANSITIONS,
    Cause,
    Detected,
    Faulted,
    FaultKind,
    ImuHealthy,
    LocalReset,
    SafetyController,
    SafetyState,
    Started,
    Trigger,
)
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
    stumble = rig.app.stored_events()[-1].event
    assert stumble.state == "TRIPPED" and stumble.figures == {"tilt_deg": 40.0}
    assert len(stumble.imu_window) > 100  # the seconds before the trip, for plotting
    trip = rig.app.controller.transitions[-1]
    assert trip.cause == Detected(DetectionKind.STUMBLE) and trip.source is SafetyState.ARMED
    assert trip.reason == "stumble: test trip"  # the words stay as they were


def test_rearm_needs_a_press_after_the_trip(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path, detector=TripAt(3.0))
    rig.run_for(2.0)
    assert rig.state == "TRIPPED"
    rig.run_for(5.0)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert rig.events()[-1] is EventType.RESET
    rearm = rig.app.controller.transitions[-1]
    assert rearm.cause == LocalReset() and rearm.source is SafetyState.TRIPPED


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
    assert rig.app.controller.transitions[-1].cause in {
        Faulted(FaultKind.IMU_SILENT),
        Faulted(FaultKind.IMU_ERROR),
    }


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
    assert rig.app.controller.transitions[-1].cause == Faulted(FaultKind.FIFO_OVERFLOW)
    assert not rig.hardware.contact_closed()


def test_frozen_data_faults(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, motion=Frozen())
    rig.run_for(2.0)
    assert rig.state == "FAULT"
    assert "frozen" in rig.app.controller.reason
    assert rig.app.controller.transitions[-1].cause == Faulted(FaultKind.FROZEN_DATA)
    rig.press_reset()
    assert rig.state == "FAULT" and not rig.hardware.contact_closed()


def test_detector_exception_releases_and_faults(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path, detector=Explodes(3.0))
    rig.run_for(2.0)
    assert rig.state == "FAULT"
    assert "detector error: ZeroDivisionError" in rig.app.controller.reason
    assert rig.app.controller.transitions[-1].cause == Faulted(FaultKind.DETECTOR_ERROR)
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
    assert rig.app.controller.transitions[-1].cause == Faulted(FaultKind.LOOP_CRASH)


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


GOOD = (0.0, 0.0, 1.0, 0.1, 0.2, 0.3)


@pytest.mark.parametrize(
    ("second", "kind", "words"),
    [
        ((40.0, 0.0, 1.0, 0.0, 0.0, 0.0), FaultKind.OUT_OF_RANGE, "IMU data out of range"),
        ((float("nan"), 0.0, 1.0, 0.0, 0.0, 0.0), FaultKind.OUT_OF_RANGE, "out of range"),
        (None, FaultKind.TIMESTAMPS_NOT_INCREASING, "IMU timestamps not increasing"),
    ],
    ids=["out-of-range", "nan", "timestamps"],
)
def test_impossible_data_faults_with_its_kind(
    tmp_path: Path, second: tuple[float, ...] | None, kind: FaultKind, words: str
) -> None:
    rig = armed_rig(tmp_path)
    controller = rig.app.controller
    now = rig.clock.monotonic()  # later than every sample the loop has seen
    if second is None:  # a good sample, then another with the same timestamp
        batch = [ImuSample(now + PERIOD, *GOOD), ImuSample(now + PERIOD, 0.0, 0.0, 1.0, 0, 0, 0)]
    else:
        batch = [ImuSample(now + PERIOD, *GOOD), ImuSample(now + 2 * PERIOD, *second)]
    controller.on_samples(batch, now)
    assert rig.state == "FAULT" and not rig.hardware.contact_closed()
    assert controller.transitions[-1].cause == Faulted(kind)
    assert words in controller.reason
    assert rig.events()[-1] is EventType.FAULT


def _edges(rig: Rig) -> set[tuple[SafetyState | None, SafetyState, Trigger]]:
    return {(t.source, t.state, t.cause.trigger) for t in rig.app.controller.transitions}


def test_every_transition_in_the_table_is_taken(tmp_path: Path) -> None:
    """Each edge of SAFETY_TRANSITIONS happens in a scenario, and nothing else does."""
    taken: set[tuple[SafetyState | None, SafetyState, Trigger]] = set()
    # start, IMU healthy, arm, trip, re-arm, IMU lost while ARMED, back, lost in STANDBY.
    rig = armed_rig(tmp_path / "a", detector=TripAt(3.0))
    assert rig.sim_imu is not None
    rig.run_for(2.5)
    assert rig.state == "TRIPPED"
    rig.press_reset()
    rig.sim_imu.bus.disconnect()
    rig.run_for(1.0)
    rig.sim_imu.bus.reconnect()
    rig.run_for(3.0)
    assert rig.state == "STANDBY"
    rig.sim_imu.bus.disconnect()
    rig.run_for(1.0)
    assert rig.state == "FAULT"
    taken |= _edges(rig)
    # IMU lost while TRIPPED.
    rig = armed_rig(tmp_path / "b", detector=TripAt(3.0))
    assert rig.sim_imu is not None
    rig.run_for(2.5)
    rig.sim_imu.bus.disconnect()
    rig.run_for(1.0)
    assert rig.state == "FAULT"
    taken |= _edges(rig)
    # Frozen data before the IMU was ever healthy: STARTING -> FAULT.
    rig = make_rig(tmp_path / "c", motion=Frozen())
    rig.run_for(1.0)
    taken |= _edges(rig)
    assert taken == set(SAFETY_TRANSITIONS.edges)


class ForcingController(SafetyController):
    """A controller with a bug on demand: at the end of its next batch it enters ``forced``
    through the guarded entry, skipping every check its real inputs make first."""

    forced: tuple[SafetyState, Cause] | None = None

    def on_samples(self, batch: Sequence[ImuSample], now: float) -> None:
        super().on_samples(batch, now)
        if self.forced is not None and batch:
            target, cause = self.forced
            self.forced = None
            self._enter(target, cause, "forced by the test", now)


@pytest.fixture
def forcing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("firmware.app.SafetyController", ForcingController)


def _force(rig: Rig, target: SafetyState, cause: Cause) -> float:
    controller = rig.app.controller
    assert isinstance(controller, ForcingController)
    controller.forced = (target, cause)
    forced_at = rig.clock.monotonic()
    rig.run_for(0.05)  # on the loop: an exception would propagate out of run_for
    assert controller.forced is None
    return forced_at


@pytest.mark.usefixtures("forcing")
@pytest.mark.parametrize(
    ("source", "target", "cause"),
    [
        ("ARMED", SafetyState.STANDBY, ImuHealthy()),
        ("ARMED", SafetyState.ARMED, LocalReset()),  # ARMED again: _enter itself keeps it held
        ("ARMED", SafetyState.TRIPPED, LocalReset()),  # the right pair, the wrong trigger
        ("ARMED", SafetyState.STARTING, Started()),
        ("STANDBY", SafetyState.TRIPPED, Detected(DetectionKind.FALL)),
        ("STANDBY", SafetyState.ARMED, Detected(DetectionKind.STUMBLE)),  # arming, not by reset
        ("TRIPPED", SafetyState.STANDBY, ImuHealthy()),
        ("TRIPPED", SafetyState.FAULT, LocalReset()),
    ],
)
def test_a_forbidden_transition_releases_and_faults_without_raising(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    source: str,
    target: SafetyState,
    cause: Cause,
) -> None:
    rig = armed_rig(tmp_path, detector=TripAt(2.0))
    if source == "TRIPPED":
        rig.run_for(1.5)
    if source == "STANDBY":
        assert rig.sim_imu is not None
        rig.sim_imu.bus.disconnect()
        rig.run_for(0.5)
        rig.sim_imu.bus.reconnect()
        rig.run_for(1.0)
    assert rig.state == source
    events_before = len(rig.events())
    forced_at = _force(rig, target, cause)
    controller = rig.app.controller
    assert rig.state == "FAULT"
    assert not rig.hardware.contact_closed()
    assert rig.hardware.opened_after(forced_at) is not None or source != "ARMED"
    last = controller.transitions[-1]
    assert last.cause == Faulted(FaultKind.FORBIDDEN_TRANSITION)
    assert last.source is SafetyState(source) and last.state is SafetyState.FAULT
    assert last.reason.startswith(f"forbidden transition {source} -> {target.value} on ")
    assert rig.events()[events_before:] == [EventType.FAULT]
    assert rig.app.stored_events()[-1].event.reason == last.reason
    assert any(
        r.levelname == "ERROR" and "forbidden transition" in r.getMessage() for r in caplog.records
    )
    # Leaving FAULT is as always: healthy data, then a local reset.
    rig.run_for(1.0)
    assert rig.state == "STANDBY" and not rig.hardware.contact_closed()
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


@pytest.mark.usefixtures("forcing")
def test_a_forbidden_transition_in_fault_stays_in_fault(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, motion=Frozen())
    rig.run_for(1.0)
    assert rig.state == "FAULT"
    events_before = rig.events()
    _force(rig, SafetyState.ARMED, LocalReset())  # FAULT -> ARMED: never
    assert rig.state == "FAULT"
    assert rig.hardware.history == []  # the contact never closed
    # Already in FAULT: no second event (its FAULT event went out when it was entered).
    assert rig.events() == events_before
    assert rig.app.controller.transitions[-1].cause == Faulted(FaultKind.FROZEN_DATA)
