"""A reset press let go between the loop's take of the button's edges and its look at the clock.

The loop takes the reset button's edges, then reads the clock, and judges a press still down
at that reading held as long as the reading says. The button's edges come from another thread
(gpiozero's): a press let go just short of :data:`~firmware.presses.ARM_HOLD_S`, after the take
and before the reading (the loop's thread set aside for a moment by the interpreter), was
judged down at the reading, held past the hold. Reported held, it armed with the button up: a
FAULT on the first heartbeat edge (with the contact read back, "relay did not close after the
reset", the relay's words: "may not stop the belt, pull the safety key"). After a trip it sent
the caregivers "I'm OK", and as the arming press ended its sequence, a call for help whose
first press it was never went out. The edges that came before the reading are taken with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.protocol.events import EventType
from firmware.presses import ARM_HOLD_S, PATTERN_GAP_S
from firmware.safety import SafetyState
from hal.interfaces import PressEdges
from tests.app_support import Rig, TripAt, close_rigs, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

SHORT_S = 0.001
"""How much short of the hold the press is let go (after the take, before the reading)."""


def _let_go_between_the_take_and_the_clock(rig: Rig) -> None:
    """Down now; the loop looks until just short of the hold; at its next look the button is
    let go right after the edges were taken, and the reading comes a moment later, past the
    hold (the loop's thread set aside in between)."""
    monitor = rig.app.monitor
    source = monitor._edges
    assert isinstance(source, PressEdges)
    take = source.take_edges
    rig.button.down()
    down_at = rig.clock.monotonic()
    while rig.clock.monotonic() - down_at < ARM_HOLD_S - 0.03:
        monitor.step()
    rig.clock.advance(down_at + ARM_HOLD_S - SHORT_S - rig.clock.monotonic())

    def take_then_let_go() -> list[tuple[float, bool]]:
        edges = take()
        source.take_edges = take  # type: ignore[method-assign]
        rig.button.up()  # held ARM_HOLD_S - SHORT_S
        rig.clock.advance(2 * SHORT_S)  # the reading comes past the hold
        return edges

    source.take_edges = take_then_let_go  # type: ignore[method-assign]
    monitor.step()
    assert source.take_edges == take  # the look happened as described


@pytest.mark.parametrize("sense", [True, False], ids=["contact-read-back", "no-read-back"])
def test_a_press_let_go_short_of_the_hold_as_the_loop_looks_does_not_arm(
    tmp_path: Path, sense: bool
) -> None:
    """Let go before the hold: refused as let go before the chirp, never ARMED, no FAULT."""
    rig = make_rig(tmp_path, relay_sense_wired=sense)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    _let_go_between_the_take_and_the_clock(rig)
    rig.run_for(PATTERN_GAP_S + 0.1)
    controller = rig.app.controller
    states = [t.state for t in controller.transitions]
    assert SafetyState.ARMED not in states and SafetyState.FAULT not in states, states
    assert "let go before the chirp" in controller.reason, controller.reason
    assert rig.hardware.history == []
    rig.run_for(1.5)  # the refusal's beeps over
    rig.press_reset()  # held past the chirp: armed as always
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def test_after_a_trip_such_a_first_press_of_a_call_for_help_still_calls(tmp_path: Path) -> None:
    """TRIPPED, the walker calls for help: the first of three quick presses let go a
    millisecond short of the hold as the loop looks. Help goes out, nobody is told the walker
    is fine, the belt stays stopped."""
    rig = make_rig(tmp_path, relay_sense_wired=False, detector=TripAt(2.0))
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "TRIPPED"
    closed = list(rig.hardware.history)
    _let_go_between_the_take_and_the_clock(rig)
    now = rig.clock.monotonic()
    for k in (1, 2):  # the call for help's second and third presses
        rig.button.press_at(now + 0.3 * k, now + 0.3 * k + 0.15)
    rig.run_for(2.0)
    events = rig.events()
    assert EventType.HELP in events
    assert EventType.OK not in events
    assert rig.state == "TRIPPED"
    assert rig.hardware.history == closed
