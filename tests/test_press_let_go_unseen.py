"""A reset press let go before the loop found it held long enough is no held press.

The loop reads the reset button once an iteration. A press let go just after it had been
down :data:`~firmware.presses.ARM_HOLD_S`, before the loop's next look, reached that look as
two facts at once: held long enough, and let go. It was reported as held (as still down),
so the controller armed with the button already up: the latch, which closes only while the
button is down as the heartbeat edges begin, stayed open under an ARMED state. Without the
contact read back nothing said so, and the next press of the button closed the latch — the
second press of a call for help started the belt, and the call itself was lost.

The same press let go in the few milliseconds between the look that reports it held and the
arming's first heartbeat edge left the latch open the same way. Where the contact is not read
back, the button is read right after that edge: up, it is a FAULT (reset let go before the
latch closed), and no press starts the belt.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from core.protocol.events import EventType
from core.samples import ImuSample
from firmware.presses import ARM_HOLD_S, PATTERN_GAP_S, HelpPattern, ResetButtonPatterns, ResetPress
from firmware.safety import FaultClass, Faulted, FaultKind, SafetyState
from hal.interfaces import Imu
from tests.app_support import Rig, TripAt, close_rigs, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)


def test_a_press_let_go_before_the_look_that_finds_it_held_is_not_held() -> None:
    """Down at 0 s, looked at 10 ms short of the hold, let go 5 ms past it and looked at once
    more: the button was up at that look, so no held reset press. The sequence goes on, and
    ends as any press let go before the chirp: refused as not held."""
    patterns = ResetButtonPatterns()
    assert patterns.feed([(0.0, True)], 0.0, armable=True) == []
    assert patterns.feed([], ARM_HOLD_S - 0.01, armable=True) == []
    let_go = ARM_HOLD_S + 0.005
    assert patterns.feed([(let_go, False)], let_go + 0.001, armable=True) == []
    ended = patterns.feed([], let_go + PATTERN_GAP_S + 0.01, armable=True)
    assert ended == [ResetPress(0.0, held=False)]


def test_such_a_press_still_starts_a_call_for_help() -> None:
    """The first press of a call for help a little long, let go before the loop found it held:
    it is the first of three, and the third asks for help."""
    patterns = ResetButtonPatterns()
    patterns.feed([(0.0, True)], 0.0, armable=True)
    patterns.feed([], ARM_HOLD_S - 0.01, armable=True)
    let_go = ARM_HOLD_S + 0.005
    out = patterns.feed([(let_go, False), (0.7, True), (0.85, False)], 0.86, armable=True)
    assert out == []
    assert patterns.feed([(1.1, True)], 1.1, armable=True) == [HelpPattern(0.0, 1.1)]


def _tripped(tmp_path: Path) -> Rig:
    """Without the contact read back: armed at 1 s, tripped at 2 s (the contact open)."""
    rig = make_rig(tmp_path, relay_sense_wired=False, detector=TripAt(2.0))
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    return rig


def _press_let_go_before_the_loop_finds_it_held(rig: Rig) -> None:
    """Down now; the loop looks at the button until just before it has been down the hold
    time; it is let go before the loop's next look (the walker's press a few ms longer than
    the hold, or an iteration a little late)."""
    monitor = rig.app.monitor
    rig.button.down()
    down_at = rig.clock.monotonic()
    while rig.clock.monotonic() - down_at < ARM_HOLD_S:  # each look happens before the hold
        monitor.step()
    rig.button.up()


def test_after_a_trip_a_call_for_help_whose_first_press_is_let_go_unseen_starts_no_belt(
    tmp_path: Path,
) -> None:
    """After a trip the walker calls for help: three quick presses, the first let go just past
    the hold time, before the loop's next look. It armed (and told the caregivers "I'm OK")
    with the button up, the latch open; the second press closed it: the belt started, and
    the call for help was never sent. Now the first press is no arming press: the three are
    a call for help, the belt stays stopped."""
    rig = _tripped(tmp_path)
    closed = list(rig.hardware.history)
    _press_let_go_before_the_loop_finds_it_held(rig)
    now = rig.clock.monotonic()
    for k in (1, 2):  # the call for help's second and third presses
        rig.button.press_at(now + 0.3 * k, now + 0.3 * k + 0.15)
    rig.run_for(2.0)
    assert rig.hardware.history == closed  # the contact never closed again
    assert rig.state == "TRIPPED"
    events = rig.events()
    assert EventType.HELP in events
    assert EventType.OK not in events  # nobody was told the walker is fine


def test_a_lone_such_press_is_refused_as_let_go_before_the_chirp(tmp_path: Path) -> None:
    """The same press alone: refused, the walker told to hold until the chirp; not armed."""
    rig = _tripped(tmp_path)
    _press_let_go_before_the_loop_finds_it_held(rig)
    rig.run_for(1.5)
    controller = rig.app.controller
    assert rig.state == "TRIPPED"
    assert "let go before the chirp" in controller.reason, controller.reason
    rig.press_reset()  # held past the chirp: armed, the latch closed
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def _let_go_before_the_first_edge(rig: Rig) -> None:
    """The walker lets go of the reset press that armed right after it was reported, before
    the arming's first heartbeat edge (the loop's read that precedes the edge)."""
    monitor = rig.app.monitor
    read = monitor.pacing.read
    done = False

    def let_go(imu: Imu) -> Sequence[ImuSample]:
        nonlocal done
        if not done and rig.app.controller.state is SafetyState.ARMED:
            done = True
            rig.button.up()
        return read(imu)

    monitor.pacing.read = let_go  # type: ignore[method-assign]


def test_let_go_between_the_report_and_the_first_edge_is_a_fault_not_a_walk(
    tmp_path: Path,
) -> None:
    """Held past the chirp's report, let go before the first heartbeat edge (no stall: the
    edge within a wake, no heartbeat gap): the latch never closed. It stayed ARMED over the
    open latch, and the first press of a call for help closed it. The button read after that
    edge says it: a FAULT at once, the relay released, and no press starts the belt."""
    rig = make_rig(tmp_path, relay_sense_wired=False)
    rig.run_for(1.0)
    _let_go_before_the_first_edge(rig)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 5.0)  # held for the chirp (let go early by the hook)
    rig.run_for(0.5)
    controller = rig.app.controller
    armed, fault = controller.transitions[-2], controller.transitions[-1]
    assert armed.state is SafetyState.ARMED  # the press armed ...
    assert rig.hardware.history == []  # ... but the latch never closed
    assert fault.cause == Faulted(FaultKind.RESET_LET_GO), fault
    assert fault.reason.startswith("reset let go before the relay's latch closed"), fault.reason
    assert controller.fault_class is FaultClass.STALL
    assert not rig.app.gpio.relay.holding
    assert rig.events()[-1] is EventType.FAULT
    now = rig.clock.monotonic()
    for k in range(3):  # three quick presses: help
        rig.button.press_at(now + 0.5 * k, now + 0.5 * k + 0.2)
    rig.run_for(2.0)
    assert EventType.HELP in rig.events()
    assert rig.hardware.history == []  # never closed: no press started the belt
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    rig.press_reset()  # held past the chirp and the first edge: armed, the latch closed
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def test_a_press_held_through_the_first_edge_arms_as_before(tmp_path: Path) -> None:
    """The usual arming, without the contact read back: the button is down at the first
    edge, the latch closes, the walk goes on (a check that misread the button would fault
    every arming)."""
    rig = make_rig(tmp_path, relay_sense_wired=False)
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert not any(isinstance(t.cause, Faulted) for t in rig.app.controller.transitions)
