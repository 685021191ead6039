"""Leaving FAULT and arming again: only on data that is really healthy, only on a new press.

End to end on simulated hardware (the real loop, driver, controller and gpiozero devices on
MockFactory pins, the register-level chip), asserting on the simulated relay's contact.
Each test is a way the belt used to be armed, or the controller to leave FAULT, when it
must not have been.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from core.protocol.events import EventType
from firmware.config import SafetyConfig
from firmware.safety import Faulted, FaultKind, SafetyState
from hal.buzzer_patterns import get_pattern
from tests.app_support import (
    PERIOD,
    Explodes,
    Frozen,
    Rig,
    Standing,
    TripAt,
    armed_rig,
    close_rigs,
    make_rig,
)

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

SLOW_FREEZE = SafetyConfig(worn_check=False, frozen_after_s=1.0)
"""A frozen sensor judged only after 1 s (the config allows up to 2 s), longer than the
0.5 s of healthy data that leaves FAULT and allows arming."""


def _states(rig: Rig) -> list[SafetyState]:
    return [t.state for t in rig.app.controller.transitions]


def test_a_sensor_stuck_on_one_reading_stays_in_fault(tmp_path: Path) -> None:
    """The frozen run was forgotten at the fault, so the stuck sensor's next readings started
    a new one, counted as healthy, and after 0.5 s of them the controller went back to
    STANDBY: FAULT and STANDBY in turn every second, a FAULT event each time, and a reset
    pressed in STANDBY armed the belt on a dead sensor. It stays in FAULT now, until the
    readings move again."""
    rig = armed_rig(tmp_path, safety=SLOW_FREEZE)
    assert rig.sim_imu is not None
    chip = rig.sim_imu.chip
    moving = chip.motion
    chip.motion = Frozen()
    rig.run_for(1.6)
    assert rig.state == "FAULT"
    assert "frozen" in rig.app.controller.reason
    for _ in range(4):  # a walker pressing reset again and again
        rig.press_reset()
        rig.run_for(0.3)
    assert rig.state == "FAULT" and not rig.hardware.contact_closed()
    assert _states(rig)[-2:] == [SafetyState.ARMED, SafetyState.FAULT]
    assert rig.events().count(EventType.FAULT) == 1
    chip.motion = moving  # the sensor works again: healthy data leaves FAULT as before
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def test_a_sensor_stuck_from_the_start_is_never_armable(tmp_path: Path) -> None:
    """0.5 s of one reading repeated is not 0.5 s of healthy data: with a frozen check slower
    than that, the controller went to STANDBY and armed on a sensor stuck since power-on."""
    rig = make_rig(tmp_path, motion=Frozen(), safety=SLOW_FREEZE)
    rig.run_for(0.6)
    assert rig.state == "STARTING"
    rig.press_reset()
    assert rig.state in {"STARTING", "FAULT"} and not rig.hardware.contact_closed()
    rig.run_for(2.0)
    assert rig.state == "FAULT" and "frozen" in rig.app.controller.reason
    assert SafetyState.STANDBY not in _states(rig)
    assert rig.hardware.history == []  # never closed


def test_an_imu_that_comes_and_goes_does_not_leave_fault(tmp_path: Path) -> None:
    """Healthy means ``healthy_before_arm_s`` of samples without a break. In FAULT a silence
    was no new fault and the good spells before it still counted, so an IMU giving 0.3 s of
    samples and 0.3 s of none reached STANDBY on two spells, faulted at the next gap, and so
    on: a FAULT event each time, and a reset in between armed on a failing sensor."""
    rig = armed_rig(tmp_path)
    assert rig.sim_imu is not None
    chip = rig.sim_imu.chip
    chip.stalled = True
    rig.run_for(0.5)
    assert rig.state == "FAULT"
    for _ in range(5):
        chip.stalled = False
        rig.run_for(0.3)
        chip.stalled = True
        rig.run_for(0.3)
    assert rig.state == "FAULT" and not rig.hardware.contact_closed()
    assert _states(rig)[-2:] == [SafetyState.ARMED, SafetyState.FAULT]
    assert rig.events().count(EventType.FAULT) == 1
    chip.stalled = False  # samples without a break: healthy, as before
    rig.run_for(1.0)
    assert rig.state == "STANDBY"


def test_a_button_held_through_a_fault_does_not_arm_when_the_imu_recovers(
    tmp_path: Path,
) -> None:
    """A reset press must be made once arming is possible. A button held down — or jammed,
    or leant on by a walker who fell against the console — from a FAULT into STANDBY was
    reported as a reset press the moment STANDBY began, and the belt armed with nobody
    pressing anything. Now it is ignored; letting go and pressing again arms."""
    rig = armed_rig(tmp_path)
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


def test_a_lasting_fault_keeps_the_buzzer_pattern_moving(tmp_path: Path) -> None:
    """A batch that faulted returned before the buzzer was told the time, so a fault that
    lasts — a detector raising at every sample — left the first beep of ``fault`` sounding
    without end. The pattern plays on now: on 0.8 s of every 3 s."""
    rig = armed_rig(tmp_path, detector=Explodes(3.0))
    rig.run_for(2.0)
    assert rig.state == "FAULT"
    buzzer = rig.app.gpio.buzzer
    looks = 300
    on = 0
    for _ in range(looks):
        rig.run_for(0.02)
        on += buzzer.is_on
    pattern = get_pattern("fault")
    assert buzzer.pattern == pattern.name
    assert 0.15 < on / looks < 0.4  # 0.8 s of 3 s: about 0.27


def test_standing_data_still_recovers_at_once(tmp_path: Path) -> None:
    """What the changes above must not cost: a working sensor after a fault is healthy
    0.5 s later, as before (the quiet standing motion repeats no reading)."""
    rig = armed_rig(tmp_path, motion=Standing(seed=3))
    assert rig.sim_imu is not None
    rig.sim_imu.bus.disconnect()
    rig.run_for(0.5)
    assert rig.state == "FAULT"
    rig.sim_imu.bus.reconnect()
    rig.run_for(1.5)
    assert rig.state == "STANDBY"


def test_a_stuck_sensor_on_a_slow_clock_stays_in_fault(tmp_path: Path) -> None:
    """The samples' timestamps follow the sensor's clock, the healthy time the host's: on a
    sensor clocked slow a run of one reading grows slower than the time since it began to
    count as healthy, so a run restarted at the fault did not cover the healthy time, and the
    stuck sensor was back in STANDBY. The run is kept across the fault now, so it does."""
    rig = make_rig(tmp_path, motion=Frozen(), safety=SLOW_FREEZE)
    rig.run_for(2.0)
    controller = rig.app.controller
    assert rig.state == "FAULT" and "frozen" in controller.reason
    last = rig.app.monitor.last_batch[-1]
    now = rig.clock.monotonic()
    for k in range(1, 401):  # 2 s of one reading, the sensor's clock 10 % slow
        sample = last._replace(t=last.t + k * 0.005)
        controller.on_samples([sample], now + k * 0.0055)
        assert rig.state == "FAULT", f"left FAULT after {k} stuck samples"
    assert not rig.hardware.contact_closed()


def test_a_short_press_then_a_call_for_help_never_starts_the_belt(tmp_path: Path) -> None:
    """Without the contact read back, a reset let go before the chirp armed the firmware
    with the latch open: the belt stood still while the state said ARMED, and the next press
    of the button closed the latch — here the first press of a call for help, so the belt
    started as the walker asked for help. A press let go before the chirp is refused now."""
    rig = make_rig(tmp_path, relay_sense_wired=False)
    rig.run_for(1.0)
    rig.press_reset(hold=0.2)
    rig.run_for(1.0)
    assert rig.state == "STANDBY" and "hold reset until the chirp" in rig.app.controller.reason
    now = rig.clock.monotonic()
    for k in range(3):  # three quick presses: help
        rig.button.press_at(now + 0.5 * k, now + 0.5 * k + 0.2)
    rig.run_for(2.0)
    assert rig.events()[-1] is EventType.HELP
    assert rig.state == "STANDBY" and rig.hardware.history == []  # never closed


def test_a_stall_without_the_contact_read_back_stops_the_belt_until_a_reset(
    tmp_path: Path,
) -> None:
    """The loop stalls for longer than the hold time: the hold circuit opens the relay and the
    latch keeps it open. Without the contact read back nothing said so: the state stayed
    ARMED, the edges went on, and the next press of the button closed the latch — here the
    first press of a call for help, so the belt started as the walker asked for help. The gap
    between heartbeat edges is the monitor's own to measure: it is a FAULT at once."""
    rig = armed_rig(tmp_path, relay_sense_wired=False)
    rig.run_for(1.0)
    hold_s = rig.hardware.hold_s  # type: ignore[attr-defined]
    closed_before = len(rig.hardware.history)
    rig.clock.advance(4 * hold_s)  # no edge for 200 ms: longer than the hold, not the FIFO
    rig.run_for(0.2)
    controller = rig.app.controller
    fault = controller.transitions[-1]
    assert rig.state == "FAULT" and fault.cause == Faulted(FaultKind.HEARTBEAT_GAP)
    assert fault.source is SafetyState.ARMED
    gap = re.fullmatch(
        r"no heartbeat for (\d+) ms, against the relay's 50 ms hold \(44 ms with its "
        r"tolerance\): its latch let go or was about to, so the belt stopped \(the loop "
        r"stalled or the IMU paused\)",
        fault.reason,
    )
    assert gap is not None and int(gap[1]) >= 200, fault.reason
    assert not rig.app.gpio.relay.holding
    assert rig.events()[-1] is EventType.FAULT
    now = rig.clock.monotonic()
    for k in range(3):  # three quick presses: help
        rig.button.press_at(now + 0.5 * k, now + 0.5 * k + 0.2)
    rig.run_for(2.0)
    assert EventType.HELP in rig.events()
    assert not rig.hardware.contact_closed()
    assert len(rig.hardware.history) == closed_before + 1  # opened by the stall, never closed
    rig.press_reset()  # a reset at the machine arms again, as after any fault
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def test_a_stall_just_past_a_hold_shorter_than_configured_stops_the_belt(
    tmp_path: Path,
) -> None:
    """The configured hold is what the technician measured (a multimeter's average, good to
    about 10 %) or the default 50 ms, and the default parts nominally hold 45 ms. Here the
    circuit holds 45 ms: a 47 ms stall dropped its latch while the check, at the configured
    50 ms, saw nothing — without the read-back the state stayed ARMED, and the first press of
    a call for help closed the latch. The check allows seven eighths of the hold (44 ms)."""
    rig = armed_rig(tmp_path, relay_sense_wired=False)
    rig.hardware.hold_s = 0.045  # type: ignore[attr-defined]
    rig.run_for(1.0)
    closed_before = len(rig.hardware.history)
    rig.clock.advance(0.047)  # no heartbeat edge for 47 ms
    rig.run_for(0.2)
    assert not rig.hardware.contact_closed()  # the 45 ms latch let go
    controller = rig.app.controller
    assert rig.state == "FAULT", controller.reason
    assert controller.fault_kind is FaultKind.HEARTBEAT_GAP
    assert controller.reason.startswith("no heartbeat for 47 ms,"), controller.reason
    now = rig.clock.monotonic()
    for k in range(3):  # three quick presses: help
        rig.button.press_at(now + 0.5 * k, now + 0.5 * k + 0.2)
    rig.run_for(2.0)
    assert EventType.HELP in rig.events()
    assert not rig.hardware.contact_closed()
    assert len(rig.hardware.history) == closed_before + 1  # opened by the stall, never closed


def test_a_detector_failing_at_every_wake_is_logged_once_with_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A detector raising at every sample was logged with its traceback at every wake, 100
    lines a second formatted on the loop: the journal on the SD card filled with one failure
    and journald's rate limit dropped the lines that mattered. Now one traceback, and the
    FAULT stays as it was."""
    rig = armed_rig(tmp_path, detector=Explodes(3.0))
    with caplog.at_level(logging.DEBUG, logger="firmware.safety"):
        rig.run_for(3.0)
    assert rig.state == "FAULT"
    failed = [r for r in caplog.records if r.getMessage().startswith("detector")]
    assert rig.app.controller.samples_seen > 0
    assert [(r.getMessage(), r.exc_info is not None) for r in failed] == [("detector failed", True)]
    assert failed[0].exc_info is not None and failed[0].exc_info[0] is ZeroDivisionError


def test_a_reset_pressed_while_the_sensor_is_stuck_does_not_arm(tmp_path: Path) -> None:
    """Tripped, then the sensor sticks on one reading: with a frozen check slower than the
    healthy time (``frozen_after_s`` 2 s, 0.5 s healthy), the stuck readings are not healthy
    data once they have lasted 0.5 s. A reset pressed then, before the frozen FAULT, must not
    arm the belt on a dead sensor (the press is judged on the data, not only on the state)."""
    rig = armed_rig(
        tmp_path, detector=TripAt(3.0), safety=SafetyConfig(worn_check=False, frozen_after_s=2.0)
    )
    assert rig.sim_imu is not None
    rig.run_for(2.0)
    assert rig.state == "TRIPPED"
    rig.sim_imu.chip.motion = Frozen()
    rig.run_for(0.6)  # stuck for longer than the healthy time, not yet the frozen fault
    assert rig.state == "TRIPPED"
    rig.press_reset()  # let go 0.5 s later: reported at 0.4 s, 1.0 s into the freeze
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    rig.run_for(1.5)
    assert rig.state == "FAULT" and "frozen" in rig.app.controller.reason
    assert rig.events().count(EventType.RESET) == 1  # only the arming before the trip


def test_a_sensor_that_never_gives_a_sample_faults(tmp_path: Path) -> None:
    """A sensor that answers on the bus but never makes a sample (no bus error, so the
    driver's own budget never runs out) is IMU silent once the timeout has passed since the
    start: FAULT, with its event for the caregivers, as a sensor silenced later is; the
    controller's timeout counts from the start when no sample ever came, not from never."""
    rig = make_rig(tmp_path)
    assert rig.sim_imu is not None
    rig.sim_imu.chip.stalled = True
    rig.run_for(1.0)
    assert rig.state == "FAULT"
    assert rig.app.controller.transitions[-1].cause == Faulted(FaultKind.IMU_SILENT)
    assert EventType.FAULT in rig.events()
    assert rig.hardware.history == []  # never closed


def test_with_static_drive_a_silent_imu_opens_the_relay_within_the_sample_timeout(
    tmp_path: Path,
) -> None:
    """Static drive has no hold circuit to drop the relay when the edges stop, and a sensor
    that answers but makes no samples raises no bus error for the driver's budget: the
    controller's silence timeout (``safety.sample_timeout_s``, 0.1 s) is the reaction time,
    counted from the last good sample and seen at the next read that comes back empty (the
    read waits at most its timeout, here 25 ms): never a second timeout."""
    rig = armed_rig(tmp_path, relay_drive="static")
    assert rig.sim_imu is not None
    silent_at = rig.clock.monotonic()
    rig.sim_imu.chip.stalled = True
    rig.run_for(1.0)
    assert rig.state == "FAULT"
    assert rig.app.controller.transitions[-1].cause == Faulted(FaultKind.IMU_SILENT)
    opened = rig.hardware.opened_after(silent_at - PERIOD)
    timeout = SafetyConfig().sample_timeout_s
    assert opened is not None and opened - silent_at < 2 * timeout


def test_a_reset_read_after_a_stall_is_judged_on_fresh_data(tmp_path: Path) -> None:
    """The loop reads the buttons before the IMU. After a stall longer than the sample
    timeout, a reset press held through it is read before anything shows whether the sensor
    is still there: the data it is judged on is stale, so it does not arm. Here the sensor
    was lost during the stall: the walker did not re-arm (no RESET, no "I'm OK" closing the
    trip's incident); the controller goes to FAULT in that incident."""
    rig = armed_rig(tmp_path, detector=TripAt(3.0))
    assert rig.sim_imu is not None
    rig.run_for(2.0)
    assert rig.state == "TRIPPED"
    incident = rig.app.controller.incident
    assert incident is not None
    rig.button.down()
    rig.run_for(0.1)  # the press is seen going down
    rig.sim_imu.bus.disconnect()
    rig.clock.advance(0.4)  # the loop stalls; the press has now been held for the chirp
    rig.run_for(0.2)
    rig.button.up()
    rig.run_for(0.5)
    assert rig.state == "FAULT" and not rig.hardware.contact_closed()
    assert rig.events().count(EventType.RESET) == 1  # only the arming before the trip
    assert EventType.OK not in rig.events()
    assert rig.app.controller.incident == incident
    assert [t.state for t in rig.app.controller.transitions][-2:] == [
        SafetyState.TRIPPED,
        SafetyState.FAULT,
    ]


def test_a_press_going_down_at_the_very_moment_of_the_trip_does_not_rearm(
    tmp_path: Path,
) -> None:
    """A reset must go down after the trip: one that went down at the trip's own instant (a
    hand already on the button as the walker stumbled, held on) is not a press after it, and
    held through the chirp it does not re-arm the belt under someone who may be falling."""
    rig = armed_rig(tmp_path, detector=TripAt(3.0))
    pressed: list[float] = []

    def press_at_the_trip(monitor: object) -> None:
        if rig.state == "TRIPPED" and not pressed:
            pressed.append(rig.clock.monotonic())
            rig.button.down()

    rig.app.monitor.on_iteration.append(press_at_the_trip)
    rig.run_for(2.0)
    assert pressed and pressed[0] == rig.app.controller.since
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    rig.button.up()
    rig.run_for(1.0)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    rig.press_reset()  # a press after the trip re-arms as always
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
