"""Arming: decisions that hand mutation (mut26) found no test noticing.

Safety rule 2 (only a person at the machine re-arms) rests on the controller's reset press
(:meth:`firmware.safety.SafetyController.on_button`), the press recogniser
(:mod:`firmware.presses`) and the monitor loop between them. Each test runs the real loop,
driver and relay model on a simulated clock with a finger on the button's mock pin (as
:mod:`tests.test_presses_answered`), and asserts what the walker would hear and see: the
state, the relay's contact, the buzzer's pattern, the reason.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.protocol.events import EventType
from core.samples import ImuSample
from firmware.config import SafetyConfig
from firmware.link import messages
from firmware.presses import PATTERN_GAP_S
from firmware.safety import NOT_READY_REASON
from tests.app_support import Rig, TripOnDemand, armed_rig, close_rigs

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

TAP_S = 0.15
"""A press let go well before the chirp."""
REPORTED_S = TAP_S + PATTERN_GAP_S + 0.05
"""From a tap's press until its sequence is over and the loop has reported it."""


def _tap(rig: Rig) -> None:
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + TAP_S)


def test_a_tap_while_armed_is_no_reset_press_and_changes_nothing(tmp_path: Path) -> None:
    """A lone press let go before the chirp is reported once its sequence is over, in any
    state (:mod:`firmware.presses`); in ARMED the controller ignores it: the walk goes on,
    relay held, reason and buzzer untouched. Without the transition table's say-so in
    ``on_button`` it was judged as a reset press: the ``refused`` beeps and "reset was let go
    before the chirp" under a walker walking on an armed belt (mutant: the table check
    dropped)."""
    rig = armed_rig(tmp_path, relay_drive="static")
    controller = rig.app.controller
    rig.run_for(0.5)  # the arming chirp is over
    reason, transitions = controller.reason, len(controller.transitions)
    _tap(rig)
    rig.run_for(REPORTED_S + 0.5)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert controller.reason == reason and len(controller.transitions) == transitions
    assert rig.app.gpio.buzzer.pattern is None
    assert EventType.FAULT not in rig.events()


def test_a_tap_made_before_a_fault_leaves_the_faults_beeps_sounding(tmp_path: Path) -> None:
    """A press that went down before the FAULT began (a tap while ARMED, reported once its
    sequence is over, by then in FAULT) is nobody's answer to the fault: it stays silent and
    the fault's beeps go on, as a press from before a trip leaves the alarm sounding. Taken
    as a press in FAULT, it stopped the fault's beeps for the ``refused`` ones — the warning
    cut short by a press the walker made before anything was wrong (mutant: ``on_button``
    refusing in FAULT whenever the press went down)."""
    rig = armed_rig(tmp_path, relay_drive="static")
    assert rig.sim_imu is not None
    controller = rig.app.controller
    rig.run_for(0.5)
    _tap(rig)
    rig.run_for(TAP_S + 0.05)  # let go; its sequence still open
    rig.sim_imu.bus.disconnect()  # the sensor's cable cut: a FAULT within a few reads
    rig.run_for(0.3)
    assert rig.state == "FAULT" and not rig.hardware.contact_closed()
    assert rig.app.gpio.buzzer.pattern == "fault"
    reason = controller.reason
    rig.run_for(REPORTED_S)  # the tap's sequence is over: it was reported, in FAULT
    assert rig.state == "FAULT" and controller.reason == reason
    sounding = controller.sounding
    assert sounding is not None and sounding.pattern == "fault"


def test_a_call_for_help_while_armed_whose_first_press_is_held_a_while_is_help(
    tmp_path: Path,
) -> None:
    """While ARMED no press is a reset press, so a first press held past the chirp's time
    (0.4 s) stays the first press of its sequence: two quick presses after it make three
    within the help window, a call for help — ``help_sent`` and the ``help`` event, the walk
    going on. When the loop reported held presses in ARMED too (to the controller, which
    ignores them there), that first press was taken as a reset press and ended its sequence:
    the two that followed were a double press, the session's, and the call for help was lost
    (mutant: ``answered = True`` in :meth:`Monitor._read_buttons`)."""
    rig = armed_rig(tmp_path, relay_drive="static")
    rig.run_for(0.5)
    now = rig.clock.monotonic()
    for down, up in ((0.0, 0.5), (0.7, 0.8), (0.95, 1.05)):
        rig.button.press_at(now + down, now + up)
    rig.run_for(1.0)
    assert EventType.HELP in rig.events()
    assert rig.app.gpio.buzzer.pattern == "help_sent"
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


@pytest.mark.parametrize(("repeats", "arms"), [(127, True), (128, False)])
def test_a_reading_repeated_for_the_whole_healthy_time_is_not_healthy(
    tmp_path: Path, repeats: int, arms: bool
) -> None:
    """With ``frozen_after_s`` longer than ``healthy_before_arm_s`` (allowed: up to 2 s), a
    sensor stuck on one reading is not yet a FAULT when the walker presses reset, so the
    arming itself must refuse a stuck sensor: the healthy time may not all be one reading
    repeated. One period short of it a press re-arms; the repeat that completes it is refused
    (not ready), the belt stopped. Refused only past it, a dead sensor re-armed the belt for
    one more sample period (mutant: ``<=`` for ``<`` in ``_healthy_long_enough``).
    Timestamps a power of two apart, so the sums are exact."""
    safety = SafetyConfig(worn_check=False, frozen_after_s=1.0)
    assert round(safety.healthy_before_arm_s * 256) == 128
    detector = TripOnDemand()
    rig = armed_rig(tmp_path, detector=detector, safety=safety, relay_drive="static")
    detector.trip = True
    rig.run_for(0.1)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    controller = rig.app.controller
    period = 1 / 256
    start = float(math.ceil(rig.clock.monotonic())) + 1.0  # after every live sample, exact
    stuck = (0.01, -0.02, 0.98, 0.3, -0.1, 0.2)  # a reading the rig's motion never gives
    t = start
    for i in range(repeats + 1):  # the first reading, then ``repeats`` periods of it
        t = start + i * period
        controller.on_samples([ImuSample(t, *stuck)], t)
    controller.on_button(t, t)
    if arms:
        assert rig.state == "ARMED"
    else:
        assert rig.state == "TRIPPED" and controller.reason == NOT_READY_REASON
        assert not rig.app.gpio.relay.holding


def test_an_open_incident_handed_to_the_loop_arms_nothing(tmp_path: Path) -> None:
    """The courier tells the loop of an incident its record holds open when it starts (a
    monitor restarted after a crash or a power cut, the walker maybe still on the floor):
    bookkeeping only, re-arming closes it (``test_device_incidents``). A courier restarted
    under a run with an incident of its own, TRIPPED or in STANDBY after a fault, changes
    nothing at all: no transition, the belt stopped until the reset button. The restart test
    could not notice an arming there: the message reaches a monitor that starts with it
    while still STARTING, where no press arms (mutant: an arming after
    ``carry_on_incident`` in the loop's hook)."""
    detector = TripOnDemand()
    rig = armed_rig(tmp_path, detector=detector, relay_drive="static")
    controller = rig.app.controller
    detector.trip = True
    rig.run_for(0.1)
    assert rig.state == "TRIPPED"
    own = controller.incident
    transitions = len(controller.transitions)
    rig.courier.channel.send(messages.OpenIncident("a" * 32))
    rig.run_for(0.5)
    assert rig.state == "TRIPPED" and controller.incident == own
    assert len(controller.transitions) == transitions
    assert not rig.hardware.contact_closed()

    rig.press_reset()  # the walker re-arms: the trip's incident is over
    assert rig.state == "ARMED" and controller.incident is None
    rig.sim_imu.bus.disconnect()  # a FAULT, then STANDBY once the sensor is back
    rig.run_for(0.5)
    rig.sim_imu.bus.reconnect()
    rig.run_for(1.5)
    assert rig.state == "STANDBY" and not rig.hardware.contact_closed()
    transitions = len(controller.transitions)
    rig.courier.channel.send(messages.OpenIncident("b" * 32))
    rig.run_for(0.5)
    assert rig.state == "STANDBY" and len(controller.transitions) == transitions
    assert not rig.hardware.contact_closed()
