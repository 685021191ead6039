"""The safety state machine, end to end on simulated hardware.

Every test runs the real loop, driver, gpiozero devices and relay-circuit
model on a simulated clock, and asserts on the *contact* of the simulated
relay: what the treadmill would actually see.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import pytest

from core.clock import SimClock
from core.protocol.events import EventType
from core.protocol.messages import DeviceHealth, DeviceState
from core.samples import ImuSample
from firmware.app import HealthReports
from firmware.config import SafetyConfig
from firmware.contact import ContactWatch, Mismatch
from firmware.detection.base import NO_DETECTIONS, Detection, DetectionKind
from firmware.link.endpoint import CourierLink
from firmware.safety import (
    SAFETY_TRANSITIONS,
    Cause,
    Detected,
    FaultClass,
    Faulted,
    FaultKind,
    ImuHealthy,
    LocalReset,
    SafetyController,
    SafetyState,
    Started,
    Trigger,
)
from hal.config import ImuConfig
from tests.app_support import (
    PERIOD,
    Explodes,
    Frozen,
    Rig,
    TripAt,
    armed_rig,
    close_rigs,
    make_rig,
)

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)


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
    """A read at every sample: the tripping sample is decided as it arrives (with the default
    two a wake it may wait one period more: tests/test_imu_pacing.py)."""
    detector = TripAt(3.0)
    rig = armed_rig(tmp_path, detector=detector, imu=ImuConfig(samples_per_wake=1))
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
    trip = rig.app.controller.transitions[-1]
    assert trip.cause == Detected(DetectionKind.STUMBLE) and trip.source is SafetyState.ARMED
    assert trip.reason == "stumble: test trip"  # the words stay as they were
    rig.run_for(10.0)  # the IMU around the trip follows it, 10 s later, in a window event
    (window,) = [s.event for s in rig.app.stored_events() if s.event.of == stumble.id]
    assert window.recording is not None
    assert window.recording.count > 100  # the seconds before the trip, for plotting


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


class Unprintable(Exception):
    """An exception whose message cannot be read (a bug in its ``__str__``)."""

    def __str__(self) -> str:
        raise ValueError("no message")


class ExplodesUnprintably:
    """A detector with a bug, showing after 3 s, whose exception cannot say what it is."""

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        if sample.t >= 3.0:
            raise Unprintable()
        return NO_DETECTIONS

    def reset(self) -> None:
        pass


def test_a_detector_exception_that_cannot_be_printed_still_faults_and_is_reported(
    tmp_path: Path,
) -> None:
    """Reporting the failure (the reason, the journal's count) read ``str(exc)`` inside the
    ``except`` block: it raised again, out of the controller, and the loop died instead of
    holding FAULT with the reason and the event."""
    rig = armed_rig(tmp_path, detector=ExplodesUnprintably())
    rig.run_for(2.0)
    assert rig.state == "FAULT"
    assert rig.app.controller.reason == (
        "detector error: Unprintable: (its message could not be read: ValueError)"
    )
    assert rig.app.controller.transitions[-1].cause == Faulted(FaultKind.DETECTOR_ERROR)
    assert not rig.hardware.contact_closed()
    assert rig.events()[-1] is EventType.FAULT


def test_a_loop_crash_that_cannot_be_printed_is_still_recorded_as_a_crash(
    tmp_path: Path,
) -> None:
    rig = armed_rig(tmp_path, relay_drive="static")

    def crash(monitor: object) -> None:
        raise Unprintable()

    rig.app.monitor.on_iteration.append(crash)
    with pytest.raises(Unprintable):
        rig.run_for(0.5)
    assert not rig.hardware.contact_closed()
    assert rig.state == "FAULT"
    assert rig.app.controller.transitions[-1].cause == Faulted(FaultKind.LOOP_CRASH)
    assert "monitor loop crashed: Unprintable" in rig.app.controller.reason


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


@pytest.mark.parametrize("axis", range(6), ids=["ax", "ay", "az", "gx", "gy", "gz"])
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["positive", "negative"])
def test_a_reading_beyond_its_range_on_any_axis_faults(
    tmp_path: Path, axis: int, sign: float
) -> None:
    """Every axis is checked against its range, both ways: a garbage reading on any one of
    them is impossible data, never a sample for the detector to decide on."""
    rig = armed_rig(tmp_path)
    controller = rig.app.controller
    now = rig.clock.monotonic()
    values = list(GOOD)
    values[axis] = sign * (100.0 if axis < 3 else 10_000.0)  # beyond 16 g and 2000 deg/s
    batch = [ImuSample(now + PERIOD, *GOOD), ImuSample(now + 2 * PERIOD, *values)]
    controller.on_samples(batch, now)
    assert rig.state == "FAULT" and not rig.hardware.contact_closed()
    assert controller.transitions[-1].cause == Faulted(FaultKind.OUT_OF_RANGE)


def test_a_reset_read_in_starting_as_the_data_turns_healthy_is_ignored(tmp_path: Path) -> None:
    """The loop reads the buttons before the IMU, so a press can be read in STARTING once
    the data has been good for ``healthy_before_arm_s`` but before the batch that enters
    STANDBY. Only STANDBY and TRIPPED arm: the press is ignored — no transition, no fault,
    and no "I'm OK" closing an incident carried on from before the start."""
    rig = make_rig(tmp_path)
    controller = rig.app.controller
    assert controller.state is SafetyState.STARTING
    assert controller.carry_on_incident("0" * 32)
    noise = random.Random(1).gauss
    start = t = rig.clock.monotonic()
    while t < start + 0.45:  # good batches, not yet for the 0.5 s that leave STARTING
        batch = [
            ImuSample(t + i * PERIOD, noise(0, 0.01), noise(0, 0.01), 1.0, noise(0, 0.3), 0, 0)
            for i in (1, 2)
        ]
        t += 2 * PERIOD
        controller.on_samples(batch, t)
    assert controller.state is SafetyState.STARTING
    controller.on_button(start + 0.1, start + 0.55)  # healthy long enough by now
    assert controller.state is SafetyState.STARTING
    assert [tr.state for tr in controller.transitions] == [SafetyState.STARTING]
    assert controller.incident == "0" * 32
    assert rig.events() == [EventType.START]
    assert not rig.hardware.contact_closed()


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


# -- relay contact feedback ------------------------------------------------------------
#
# The contact read back (K1's mirror contact through the optocoupler, modelled by
# sim.relay_hardware.ContactSense) against what the controller asked for.

DEBOUNCE = SafetyConfig().contact_debounce_s


class TripsAt:
    """A detector that decides 'stumble' at each of ``times`` (the first sample at or after)."""

    def __init__(self, times: Sequence[float]) -> None:
        self.pending = sorted(times)
        self.fired: list[float] = []

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        if self.pending and sample.t >= self.pending[0]:
            self.pending.pop(0)
            self.fired.append(sample.t)
            return (Detection(DetectionKind.STUMBLE, sample.t, "test trip", {}),)
        return NO_DETECTIONS

    def reset(self) -> None:
        pass


def _fault_cause(rig: Rig) -> Cause:
    return rig.app.controller.transitions[-1].cause


def test_a_stall_that_drops_the_latch_while_armed_faults(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    hold_s = rig.hardware.hold_s  # type: ignore[attr-defined]
    stalled_at = rig.clock.monotonic()
    rig.clock.advance(4 * hold_s)  # no heartbeat for 200 ms: longer than the hold, not the FIFO
    resumed_at = rig.clock.monotonic()
    opened = rig.hardware.opened_after(stalled_at - PERIOD)
    assert opened is not None and opened <= stalled_at + hold_s
    assert rig.state == "ARMED"  # the edge after the stall is not sent yet
    rig.run_for(0.3)  # past the contact's debounce, short of the 0.5 s healthy before STANDBY
    controller = rig.app.controller
    fault = controller.transitions[-1]
    assert rig.state == "FAULT"
    assert fault.cause == Faulted(FaultKind.HEARTBEAT_GAP)
    assert fault.source is SafetyState.ARMED
    # At the first wake after the stall, not after the contact's debounce.
    assert resumed_at <= fault.t <= resumed_at + 2 * PERIOD
    stalled = re.fullmatch(
        r"no heartbeat for (\d+) ms, against the relay's 50 ms hold \(44 ms with its "
        r"tolerance\): its latch let go or was about to, so the belt stopped \(the loop "
        r"stalled or the IMU paused\)",
        fault.reason,
    )
    assert stalled is not None and int(stalled[1]) >= 200
    faults = [t for t in controller.transitions if isinstance(t.cause, Faulted)]
    assert faults == [fault]  # one FAULT: the contact read back adds none
    assert not rig.app.gpio.relay.holding  # released by software too: no more edges
    assert not rig.hardware.contact_closed()
    assert rig.events()[-1] is EventType.FAULT
    assert rig.app.stored_events()[-1].event.reason == fault.reason
    # Not a lasting fault: the contact agrees again, and a reset arms as always.
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


class SlowOnce:
    """A detector that takes 40 ms over one sample at ``at``: the process was descheduled
    after the batch was read, before its heartbeat edge."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.clock: SimClock | None = None
        self.done = False

    def update(self, sample: ImuSample) -> Sequence[Detection]:
        if not self.done and sample.t >= self.at and self.clock is not None:
            self.done = True
            self.clock.advance(0.040)
        return NO_DETECTIONS

    def reset(self) -> None:
        pass


def test_a_stall_inside_a_batch_is_measured_at_the_edges(tmp_path: Path) -> None:
    """The gap that drops the latch is between edges, not between batch reads: here the
    batches are read 40 ms apart at most, inside the 44 ms the 50 ms hold allows with its
    tolerance (:data:`~firmware.safety.HOLD_MARGIN`), while two edges are 45 ms apart."""
    detector = SlowOnce(at=2.0)
    rig = armed_rig(tmp_path, detector=detector)
    detector.clock = rig.clock
    rig.run_for(1.0)
    fault = next(t for t in rig.app.controller.transitions if isinstance(t.cause, Faulted))
    assert detector.done and fault.cause == Faulted(FaultKind.HEARTBEAT_GAP)
    stalled = re.search(r"no heartbeat for (\d+) ms", fault.reason)
    assert stalled is not None and int(stalled[1]) >= 44, fault.reason


def test_a_stall_shorter_than_the_hold_time_is_no_fault(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    for _ in range(20):
        # 35 ms + one wake between edges: inside the 44 ms the 50 ms hold allows (the longest
        # gaps a healthy loop makes under heavy load are about 30 ms)
        rig.clock.advance(0.035)
        rig.run_for(0.2)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert rig.hardware.history[-1][1] is True and len(rig.hardware.history) == 1


def test_a_latch_that_drops_on_its_own_while_armed_faults(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    dropped_at = rig.clock.monotonic()
    rig.hardware.drop_latch()  # a dip in the coil supply, a knock: edges keep coming
    rig.run_for(0.5)
    fault = rig.app.controller.transitions[-1]
    assert rig.state == "FAULT"
    assert fault.cause == Faulted(FaultKind.CONTACT_OPEN_WHILE_ARMED)
    assert dropped_at + DEBOUNCE <= fault.t <= dropped_at + DEBOUNCE + 2 * PERIOD
    assert re.fullmatch(
        r"relay contact opened while armed \(open for \d+ ms, no loop stall\): the hold circuit "
        r"or the relay let go — check its supply and wiring",
        fault.reason,
    ), fault.reason
    assert rig.events()[-1] is EventType.FAULT


def test_a_press_too_short_to_close_the_latch_is_refused(tmp_path: Path) -> None:
    """A lone press let go before the chirp cannot close the latch: it is refused, no
    transition (it used to arm the firmware, and the contact read back faulted 0.1 s later)."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.002)  # let go before the first heartbeat edge
    rig.run_for(1.0)  # a lone short press is a reset press once its sequence is over (0.6 s)
    controller = rig.app.controller
    assert rig.state == "STANDBY" and controller.transitions[-1].cause == ImuHealthy()
    assert controller.reason == (
        "not armed: reset was let go before the chirp; press and hold reset until the chirp"
    )
    assert rig.app.gpio.buzzer.pattern == "refused"
    assert rig.hardware.history == []
    assert EventType.FAULT not in rig.events()


def test_a_latch_that_does_not_close_after_the_reset_faults(tmp_path: Path) -> None:
    """Armed without the button down as the edges begin (the reset press reaching the
    controller some other way than the held button): the latch cannot close. The button read
    up at the first edge says so at once, read back or not: the reset was let go (a stall's
    words, press and hold again), not a relay that may not stop the belt."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    now = rig.clock.monotonic()
    rig.app.controller.on_button(now, now)  # the press, but no finger on the button
    rig.run_for(0.3)  # the fault comes after the debounce (0.1 s)
    controller = rig.app.controller
    armed, fault = controller.transitions[-2], controller.transitions[-1]
    assert armed.cause == LocalReset()  # the firmware armed ...
    assert rig.hardware.history == []  # ... but the latch never closed
    assert fault.cause == Faulted(FaultKind.RESET_LET_GO)
    assert controller.fault_class is FaultClass.STALL
    assert fault.reason == (
        "reset let go before the relay's latch closed (up at the first heartbeat edge after "
        "arming): the belt did not start; press and hold reset until the chirp"
    )


def test_a_press_inside_the_contact_s_debounce_after_a_let_go_reset_starts_nothing(
    tmp_path: Path,
) -> None:
    """With the contact read back, a reset read up at the arming's first edge waited for the
    contact's debounce (0.1 s) to say the latch never closed; a press inside that window (a
    walker jabbing the button, a call for help's first press) closed the latch under the
    ARMED state: the belt started, no FAULT (rev38b). Up at the first edge is a FAULT at
    once now, read back or not: the press after it closes nothing."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    controller = rig.app.controller
    now = rig.clock.monotonic()
    controller.on_button(now, now)  # armed, the finger already off the button
    rig.run_for(0.03)  # the first edges: the button read up
    assert controller.state is SafetyState.FAULT
    assert controller.transitions[-1].cause == Faulted(FaultKind.RESET_LET_GO)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.3)  # pressed again within the old 0.1 s window
    rig.run_for(1.0)
    assert rig.hardware.history == []  # the latch never closed: the belt never ran
    assert controller.state is not SafetyState.ARMED


def test_static_drive_arms_with_the_reset_let_go_at_once(tmp_path: Path) -> None:
    """Static drive has no latch: the relay holds by its level, so a reset let go the moment
    it was reported is no fault there, and the walk goes on (mut39: the button read at the
    first hold under static drive too faulted a good arming "reset let go")."""
    rig = make_rig(tmp_path, relay_drive="static")
    rig.run_for(1.0)
    controller = rig.app.controller
    now = rig.clock.monotonic()
    controller.on_button(now, now)  # armed, the finger already off the button
    rig.run_for(0.5)
    assert controller.state is SafetyState.ARMED, controller.reason
    assert rig.app.gpio.relay.holding


def test_a_latch_that_does_not_close_under_a_held_reset_is_the_relay_s_fault(
    tmp_path: Path,
) -> None:
    """The reset read down at the first edge and the contact still open after the debounce:
    the coil did not pull in (the model cannot break a coil: the button's reading is made
    "held" while no finger closes the latch). That is the relay's or its wiring's fault, in
    the contact's words."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    controller = rig.app.controller
    controller._reset_held = lambda: True
    now = rig.clock.monotonic()
    controller.on_button(now, now)
    rig.run_for(0.3)
    armed, fault = controller.transitions[-2], controller.transitions[-1]
    assert armed.cause == LocalReset() and rig.hardware.history == []
    assert fault.cause == Faulted(FaultKind.CONTACT_OPEN_WHILE_ARMED)
    assert controller.fault_class is FaultClass.CONTACT
    assert fault.reason.startswith("relay did not close after the reset (contact still open ")
    assert fault.reason.endswith(
        "after arming): hold reset until the chirp; otherwise check the latch and coil wiring"
    )


def test_a_welded_contact_faults_and_the_state_keeps_saying_so(tmp_path: Path) -> None:
    detector = TripAt(3.0)
    rig = armed_rig(tmp_path, detector=detector)
    rig.hardware.weld_contact()
    rig.run_for(2.0)
    assert detector.fired_at is not None
    controller = rig.app.controller
    trip, fault = controller.transitions[-2], controller.transitions[-1]
    assert trip.cause == Detected(DetectionKind.STUMBLE)
    assert not rig.app.gpio.relay.holding  # software released it ...
    assert rig.hardware.contact_closed()  # ... and the belt could still run
    assert fault.cause == Faulted(FaultKind.CONTACT_CLOSED_WHILE_RELEASED)
    assert fault.source is SafetyState.TRIPPED
    assert detector.fired_at + DEBOUNCE <= fault.t <= detector.fired_at + DEBOUNCE + 2 * PERIOD
    assert re.fullmatch(
        r"relay contact reads closed while released \(for \d+ ms\): a welded contact, a wiring "
        r"fault or a cut sense wire — RetroGuard cannot stop the belt: pull the safety key and "
        r"have the relay and its wiring checked",
        fault.reason,
    ), fault.reason
    # The IMU is healthy, a person presses reset: FAULT it stays, saying why, announced once.
    rig.run_for(5.0)
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "FAULT" and controller.reason == fault.reason
    assert controller.transitions[-1] is fault
    assert controller.contact_fault is FaultKind.CONTACT_CLOSED_WHILE_RELEASED
    assert rig.events()[-2:] == [EventType.STUMBLE, EventType.FAULT]


def test_a_contact_closing_while_already_in_fault_is_announced(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path)
    assert rig.sim_imu is not None
    rig.sim_imu.bus.disconnect()
    rig.run_for(1.0)
    controller = rig.app.controller
    imu_fault = controller.transitions[-1]
    assert rig.state == "FAULT" and imu_fault.cause != Faulted(
        FaultKind.CONTACT_CLOSED_WHILE_RELEASED
    )
    events_before = len(rig.events())
    rig.hardware.weld_contact()  # closed while released: an armature stuck shut
    rig.run_for(0.5)
    assert controller.reason.startswith("relay contact reads closed while released")
    assert controller.transitions[-1] is imu_fault  # FAULT has no edge to itself
    assert rig.events()[events_before:] == [EventType.FAULT]
    assert rig.app.stored_events()[-1].event.reason == controller.reason
    rig.sim_imu.bus.reconnect()
    rig.run_for(3.0)
    assert rig.state == "FAULT"  # the IMU is back; the contact still reads closed


def test_a_cut_sense_wire_faults_at_once_and_nothing_arms_until_it_is_mended(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    assert rig.state == "STANDBY" and rig.sense is not None
    cut_at = rig.clock.monotonic()
    rig.sense.cut()
    rig.run_for(0.5)
    fault = rig.app.controller.transitions[-1]
    assert fault.cause == Faulted(FaultKind.CONTACT_CLOSED_WHILE_RELEASED)
    assert cut_at + DEBOUNCE <= fault.t <= cut_at + DEBOUNCE + 2 * PERIOD
    assert "a cut sense wire" in fault.reason
    rig.press_reset()
    rig.run_for(2.0)
    assert rig.state == "FAULT" and rig.hardware.history == []
    rig.sense.mend()
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def test_a_loose_sense_connector_keeps_the_fault_until_it_reads_right_for_the_debounce(
    tmp_path: Path,
) -> None:
    """A sense wire whose connector makes contact now and then (10 ms in every 50 ms) reads
    "open" for a reading or two at a time: each is shorter than the debounce, so none of
    them is the contact agreeing again. The controller stays in FAULT and a reset press
    does not arm; the fault ends only once the wire reads right for the debounce."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    sense = rig.sense
    assert rig.state == "STANDBY" and sense is not None
    sense.cut()
    rig.run_for(0.5)
    assert rig.app.controller.contact_fault is FaultKind.CONTACT_CLOSED_WHILE_RELEASED
    loose_from = rig.clock.monotonic()

    def loose_connector(monitor: object) -> None:
        touching = (rig.clock.monotonic() - loose_from) % 0.05 < 0.01
        if touching and sense.is_cut:
            sense.mend()
        elif not touching and not sense.is_cut:
            sense.cut()

    rig.app.monitor.on_iteration.append(loose_connector)
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "FAULT" and rig.hardware.history == []
    assert [t.state for t in rig.app.controller.transitions].count(SafetyState.FAULT) == 1
    rig.app.monitor.on_iteration.remove(loose_connector)
    sense.mend()
    rig.run_for(1.0)
    assert rig.state == "STANDBY"


def test_a_sense_wire_cut_during_a_walk_shows_at_the_next_release(tmp_path: Path) -> None:
    """Cut while ARMED it reads "closed", as the contact is: the next release reveals it."""
    rig = armed_rig(tmp_path, detector=TripAt(3.0))
    assert rig.sense is not None
    rig.sense.cut()
    rig.run_for(0.9)
    assert rig.state == "ARMED"
    rig.run_for(1.0)
    assert rig.state == "FAULT"
    assert not rig.hardware.contact_closed()  # the relay did open: only the wire is lying
    assert rig.app.controller.transitions[-1].cause == Faulted(
        FaultKind.CONTACT_CLOSED_WHILE_RELEASED
    )


@pytest.mark.parametrize("drive", ["heartbeat", "static"])
def test_no_contact_fault_in_long_normal_operation(tmp_path: Path, drive: str) -> None:
    """Arming, trips and re-arming on a relay with real travel times and a jittery loop.

    The simulated relay closes 10 ms and opens 15 ms after its coil (a force-guided relay
    with a flyback diode); the loop now and then takes up to 30 ms more between edges.
    The longest disagreement that settled by itself is the debounce's measured margin.
    """
    trips = [4.0 + 6.0 * i for i in range(6)]
    rig = make_rig(tmp_path, detector=TripsAt(trips), relay_drive=drive)
    assert rig.sense is not None
    rig.sense.operate_s, rig.sense.release_s = 0.010, 0.015
    jitter = random.Random(7)

    def late(_: object) -> None:
        if jitter.random() < 0.1:
            rig.clock.advance(jitter.uniform(0.0, 0.030))

    rig.app.monitor.on_iteration.append(late)
    rig.run_for(1.5)
    for trip in trips:
        rig.press_reset()
        assert rig.state == "ARMED", rig.app.controller.reason
        rig.run_for(trip + 1.5 - (rig.clock.monotonic() - rig.app.controller.transitions[0].t))
        assert rig.state == "TRIPPED", rig.app.controller.reason
    controller = rig.app.controller
    assert not any(isinstance(t.cause, Faulted) for t in controller.transitions)
    assert [c for _, c in rig.hardware.history] == [True, False] * len(trips)
    assert 0.010 <= controller.longest_contact_settling_s <= DEBOUNCE / 2


def test_without_the_sense_wiring_the_monitor_still_protects(tmp_path: Path) -> None:
    rig = armed_rig(tmp_path, detector=TripAt(3.0), relay_sense_wired=False)
    assert rig.sense is None and rig.app.gpio.relay_sense is None
    rig.hardware.drop_latch()  # unseen without the feedback: the documented limitation
    rig.run_for(0.5)
    assert rig.state == "ARMED" and rig.app.controller.contact_closed is None
    rig.run_for(2.0)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()


# -- the contact's debounce, reading by reading (firmware/contact.py) -----------------------
# Times are exact in binary (0.25 s steps, a 0.5 s debounce), so each limit is met exactly.


@pytest.mark.parametrize("debounce_s", [0.0, -0.1])
def test_a_contact_debounce_that_is_not_positive_is_refused(debounce_s: float) -> None:
    with pytest.raises(ValueError, match="debounce_s must be positive"):
        ContactWatch(debounce_s)


def test_a_disagreement_is_a_mismatch_once_it_has_lasted_the_debounce() -> None:
    watch = ContactWatch(0.5)
    assert watch.update(True, True, 0.0) is None
    assert watch.update(True, False, 1.0) is None  # the latch dropped: the count starts
    assert watch.update(True, False, 1.25) is None
    assert watch.update(True, False, 1.5) == Mismatch(True, since=1.0, lasted_s=0.5)
    assert watch.update(True, False, 1.75) == Mismatch(True, since=1.0, lasted_s=0.75)
    assert watch.agreeing_for(1.75) == 0.0


def test_a_gap_longer_than_the_debounce_restarts_the_count() -> None:
    """Nothing was seen during a stall: the count starts again at the next reading. A gap of
    exactly the debounce is still observed."""
    watch = ContactWatch(0.5)
    assert watch.update(True, False, 0.0) is None  # armed; the latch closes at the first edge
    assert watch.update(True, False, 2.0) is None  # the loop stalled 2 s in between
    assert watch.update(True, False, 2.25) is None
    assert watch.update(True, False, 2.5) == Mismatch(True, since=2.0, lasted_s=0.5)
    exact = ContactWatch(0.5)
    assert exact.update(False, True, 0.0) is None
    assert exact.update(False, True, 0.5) == Mismatch(False, since=0.0, lasted_s=0.5)


def test_a_disagreement_read_only_at_gaps_longer_than_the_debounce_restarts_once() -> None:
    """Every gap restarted the count, so readings all more than the debounce apart never made
    a mismatch: the count restarts once a disagreement, and the mismatch says how seldom the
    contact was read."""
    watch = ContactWatch(0.5)
    assert watch.update(False, True, 0.0) is None  # closed while released ...
    assert watch.update(False, True, 0.75) is None  # ... the loop stalled: counted from here
    mismatch = watch.update(False, True, 1.5)  # stalled again: seen at both ends, 0.75 s
    assert mismatch == Mismatch(False, since=0.75, lasted_s=0.75)
    assert mismatch.widest_gap_s == 0.75
    assert watch.update(False, False, 2.25) is None  # agrees: the next disagreement ...
    assert watch.update(False, True, 3.0) is None
    assert watch.update(False, True, 4.0) is None  # ... restarts at a gap once again


def test_a_new_wish_starts_a_new_count() -> None:
    watch = ContactWatch(0.5)
    assert watch.update(False, True, 0.0) is None  # closed while released, for a moment ...
    assert watch.update(True, False, 0.25) is None  # ... then armed, and open: a new story
    assert watch.update(True, False, 0.5) is None
    assert watch.update(True, False, 0.75) == Mismatch(True, since=0.25, lasted_s=0.5)


def test_the_longest_settled_disagreement_is_the_margin_and_mismatches_do_not_count() -> None:
    watch = ContactWatch(0.5)
    watch.update(True, False, 0.0)
    watch.update(True, True, 0.25)  # settled after 0.25 s
    watch.update(False, True, 1.0)
    watch.update(False, False, 1.125)  # settled after 0.125 s: the longest stays
    assert watch.longest_settled_s == 0.25
    watch.update(True, False, 2.0)
    assert watch.update(True, False, 3.0) is None  # a stall: counted again from 3.0
    assert watch.update(True, False, 3.5) is not None  # reported ...
    watch.update(True, True, 4.0)  # ... and then agreeing: no margin, it was a mismatch
    assert watch.longest_settled_s == 0.25
    watch.update(True, False, 4.25)  # after a mismatch, a disagreement that settles counts
    watch.update(True, True, 4.625)
    assert watch.longest_settled_s == 0.375


def test_agreement_is_timed_from_the_last_disagreement_or_gap() -> None:
    watch = ContactWatch(0.5)
    watch.update(True, True, 0.0)
    assert watch.agreeing_for(0.25) == 0.25
    watch.update(True, False, 0.5)
    assert watch.agreeing_for(0.5) == 0.0  # disagreeing now
    watch.update(True, True, 0.75)
    assert watch.agreeing_for(1.0) == 0.25
    watch.update(True, True, 3.0)  # a gap longer than the debounce: agreeing only since 3.0
    assert watch.agreeing_for(3.25) == 0.25


class HealthLink:
    """Stands in for the courier link: keeps what the loop reports."""

    def __init__(self) -> None:
        self.reports: list[tuple[DeviceHealth, Mapping[str, tuple[bool, str]]]] = []

    def report_health(self, health: DeviceHealth, checks: Mapping[str, tuple[bool, str]]) -> None:
        self.reports.append((health, checks))


def _health(rig: Rig) -> tuple[DeviceHealth, Mapping[str, tuple[bool, str]]]:
    link = HealthLink()
    reports = HealthReports(rig.app.monitor, cast(CourierLink, link), rig.clock)
    rig.app.monitor.on_iteration.append(reports)
    rig.run_for(HealthReports.INTERVAL_S + 0.05)
    rig.app.monitor.on_iteration.remove(reports)
    return link.reports[-1]


def test_health_says_whether_the_belt_is_enabled(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, detector=TripAt(4.0))
    rig.run_for(1.0)
    health, checks = _health(rig)
    assert health.belt_enabled is False
    assert checks["relay-contact"] == (True, "reads open in STANDBY, as it should")
    # the loop's line in words, not the LoopStats(iterations=…) repr a caregiver saw
    ok, loop = checks["loop"]
    assert ok and loop.startswith("the monitor loop has run ") and "LoopStats" not in loop
    assert loop.endswith("(0 reads found none, 0 failed)")
    rig.press_reset()
    health, checks = _health(rig)
    assert health.belt_enabled is True and health.state == DeviceState.ARMED
    assert checks["relay-contact"] == (True, "reads closed in ARMED, as it should")
    rig.hardware.weld_contact()
    rig.run_for(2.0)
    health, checks = _health(rig)
    assert health.belt_enabled is True and health.state == DeviceState.FAULT
    assert checks["relay-contact"] == (
        False,
        "relay contact closed while released: reads closed in FAULT",
    )


def test_health_without_the_sense_wiring(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, relay_sense_wired=False)
    health, checks = _health(rig)
    assert health.belt_enabled is None
    assert checks["relay-contact"] == (
        True,
        "not read back (gpio.relay_sense_wired = false): a dropped latch or a welded contact "
        "goes unseen",
    )


def test_a_welded_contact_read_only_at_gaps_longer_than_the_debounce_is_named(
    tmp_path: Path,
) -> None:
    """A loop that reads the contact less often than the debounce (an IMU read that waits out
    its timeout, a sensor re-initialising): every gap restarted the count, so a welded contact
    was never reported, and the self-test said "reads closed in STANDBY, as it should". The
    count restarts once now: the fault names what was expected (released), what was seen
    (closed), for how long, and how seldom the loop read it."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    gap = DEBOUNCE + 0.01

    def slow(_monitor: object) -> None:
        rig.clock.advance(gap)

    rig.app.monitor.on_iteration.append(slow)
    rig.hardware.weld_contact()
    rig.run_for(1.0)
    rig.app.monitor.on_iteration.remove(slow)
    controller = rig.app.controller
    assert controller.contact_fault is FaultKind.CONTACT_CLOSED_WHILE_RELEASED
    assert rig.state == "FAULT"
    said = re.fullmatch(
        r"relay contact reads closed while released \(for (\d+) ms, at every reading; the loop "
        r"read it as seldom as every (\d+) ms\): a welded contact, a wiring fault or a cut sense "
        r"wire — RetroGuard cannot stop the belt: pull the safety key and have the relay and its "
        r"wiring checked",
        controller.reason,
    )
    assert said is not None, controller.reason
    assert int(said[1]) >= DEBOUNCE * 1000 and int(said[2]) >= gap * 1000
    assert rig.app.stored_events()[-1].event.reason == controller.reason


def test_a_stall_while_the_walker_still_holds_reset_faults_too(tmp_path: Path) -> None:
    """The loop stalls for longer than the hold time while the walker still holds reset: the
    button bypasses the latch, so the contact closes again at the next edge and the read-back
    sees nothing. The gap is a FAULT all the same: a monitor that missed its hold time is not
    one to walk on, and the walker, at the machine, arms again with one more press."""
    rig = make_rig(tmp_path)
    rig.run_for(1.0)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 2.0)
    while rig.state != "ARMED" and rig.clock.monotonic() < now + 1.5:
        rig.run_for(0.01)
    assert rig.state == "ARMED" and rig.clock.monotonic() < now + 1.5
    rig.clock.advance(4 * rig.hardware.hold_s)  # type: ignore[attr-defined]
    rig.run_for(1.0)
    fault = next(t for t in rig.app.controller.transitions if isinstance(t.cause, Faulted))
    assert fault.cause == Faulted(FaultKind.HEARTBEAT_GAP)
    assert not rig.app.gpio.relay.holding and not rig.hardware.contact_closed()
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def test_a_latch_that_does_not_close_after_a_re_arming_is_not_called_a_stall(
    tmp_path: Path,
) -> None:
    """A first walk armed and closed, tripped, and the re-arming's latch does not close: the
    reason is the re-arming's (hold reset until the chirp, the latch and coil wiring), not a
    loop stall measured from the first walk's last edge, nor a contact that "opened"."""
    detector = TripAt(3.0)
    rig = armed_rig(tmp_path, detector=detector)
    rig.run_for(2.5)
    assert rig.state == "TRIPPED"
    rig.run_for(5.0)
    now = rig.clock.monotonic()
    rig.app.controller.on_button(now, now)  # the press, but no finger on the button
    rig.run_for(0.3)
    controller = rig.app.controller
    armed, fault = controller.transitions[-2], controller.transitions[-1]
    assert armed.cause == LocalReset() and armed.source is SafetyState.TRIPPED
    assert fault.cause == Faulted(FaultKind.RESET_LET_GO)  # no finger on the button
    assert fault.reason.startswith("reset let go before the relay's latch closed"), fault.reason


def test_stopping_the_monitor_releases_the_relay_before_anything_else(tmp_path: Path) -> None:
    """The belt stops the moment the monitor does, before the recordings are encoded and
    sent (no recording is ever encoded while the relay is held)."""
    rig = armed_rig(tmp_path)
    relay = rig.app.gpio.relay
    assert relay.holding
    held_while_sending: list[bool] = []
    controller = rig.app.controller
    send = controller._send_windows

    def sending(*args: object, **kwargs: object) -> None:
        held_while_sending.append(relay.holding)
        send(*args, **kwargs)  # type: ignore[arg-type]

    controller._send_windows = sending  # type: ignore[method-assign]
    controller.stop(rig.clock.monotonic())
    assert not relay.holding
    assert held_while_sending == [False]
