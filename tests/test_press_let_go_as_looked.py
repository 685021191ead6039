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

from collections import deque
from pathlib import Path

import pytest

from core.protocol.events import EventType
from firmware.presses import ARM_HOLD_S, PATTERN_GAP_S
from firmware.safety import SafetyState
from hal.gpio import GpioButton
from hal.interfaces import PressEdges
from tests.app_support import Rig, TripAt, close_rigs, make_rig

pytestmark = pytest.mark.usefixtures(close_rigs.__name__)

SHORT_S = 0.001
"""How much short of the hold the press is let go (after the take, before the reading)."""


def _tripped(tmp_path: Path) -> tuple[Rig, list[tuple[float, bool]]]:
    """A rig armed by a reset and tripped, and its relay's history so far."""
    rig = make_rig(tmp_path, relay_sense_wired=False, detector=TripAt(2.0))
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "TRIPPED"
    return rig, list(rig.hardware.history)


def _help_went_out_and_the_belt_stayed_stopped(rig: Rig, closed: list[tuple[float, bool]]) -> None:
    events = rig.events()
    assert EventType.HELP in events
    assert EventType.OK not in events
    assert rig.state == "TRIPPED"
    assert rig.hardware.history == closed


def _down_until_just_short_of_the_hold(rig: Rig) -> None:
    """The reset pressed and the loop looking at it until :data:`SHORT_S` before the hold."""
    rig.button.down()
    down_at = rig.clock.monotonic()
    while rig.clock.monotonic() - down_at < ARM_HOLD_S - 0.03:
        rig.app.monitor.step()
    rig.clock.advance(down_at + ARM_HOLD_S - SHORT_S - rig.clock.monotonic())


def _let_go_between_the_take_and_the_clock(rig: Rig) -> None:
    """Down now; the loop looks until just short of the hold; at its next look the button is
    let go right after the edges were taken, and the reading comes a moment later, past the
    hold (the loop's thread set aside in between)."""
    monitor = rig.app.monitor
    source = monitor._edges
    assert isinstance(source, PressEdges)
    take = source.take_edges
    _down_until_just_short_of_the_hold(rig)

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
    rig, closed = _tripped(tmp_path)
    _let_go_between_the_take_and_the_clock(rig)
    now = rig.clock.monotonic()
    for k in (1, 2):  # the call for help's second and third presses
        rig.button.press_at(now + 0.3 * k, now + 0.3 * k + 0.15)
    rig.run_for(2.0)
    _help_went_out_and_the_belt_stayed_stopped(rig, closed)


class _HeldBack(deque[tuple[float, bool]]):
    """The button's edge queue, with an edge held back: stamped by gpiozero's thread and not
    yet queued (the thread set aside between its clock reading and its append)."""

    holding = False
    held: tuple[tuple[float, bool], ...] = ()

    def append(self, edge: tuple[float, bool]) -> None:
        if self.holding:
            self.held = (*self.held, edge)
        else:
            super().append(edge)

    def let_through(self) -> None:
        self.holding = False
        for edge in self.held:
            super().append(edge)
        self.held = ()


def _let_go_stamped_before_the_clock_queued_after_the_look(rig: Rig) -> None:
    """As :func:`_let_go_between_the_take_and_the_clock`, but gpiozero's thread, which stamps
    the release before the loop's reading, is set aside before it queues it: the loop's second
    take finds nothing, and the release is queued a moment after it."""
    monitor = rig.app.monitor
    source = monitor._edges
    assert isinstance(source, GpioButton)
    queue = _HeldBack(source._edges, maxlen=source._edges.maxlen)
    source._edges = queue
    take = source.take_edges
    _down_until_just_short_of_the_hold(rig)

    def late_take() -> list[tuple[float, bool]]:
        edges = take()
        source.take_edges = take  # type: ignore[method-assign]
        queue.let_through()  # the release is queued now, after the loop looked
        return edges

    def take_then_let_go() -> list[tuple[float, bool]]:
        edges = take()
        queue.holding = True
        rig.button.up()  # held ARM_HOLD_S - SHORT_S: stamped now, its queueing held back
        rig.clock.advance(2 * SHORT_S)  # the reading comes past the hold
        source.take_edges = late_take  # type: ignore[method-assign]
        return edges

    source.take_edges = take_then_let_go  # type: ignore[method-assign]
    monitor.step()
    assert source.take_edges == take and not queue.held  # the look happened as described


def test_a_release_stamped_before_the_look_and_queued_after_it_does_not_arm(
    tmp_path: Path,
) -> None:
    """The release was stamped before the loop read the clock but queued after the loop's
    second take: the button reads up as the loop looks, so the press is not judged held then
    (it armed, chirped and faulted at its first heartbeat edge, and after a trip told the
    caregivers the walker was fine); its release, taken at the next look, settles it as let
    go before the chirp."""
    rig = make_rig(tmp_path, relay_sense_wired=False)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    _let_go_stamped_before_the_clock_queued_after_the_look(rig)
    rig.run_for(PATTERN_GAP_S + 0.1)
    controller = rig.app.controller
    states = [t.state for t in controller.transitions]
    assert SafetyState.ARMED not in states and SafetyState.FAULT not in states, states
    assert "let go before the chirp" in controller.reason, controller.reason
    assert rig.hardware.history == []


def test_a_tap_down_before_the_take_and_up_before_the_reading_is_one_tap(tmp_path: Path) -> None:
    """The press came before the loop took the edges, its release after the take and before
    the reading: both are one tap, in order. Refused as let go before the chirp, never ARMED
    (mut39: the late edges put first left the press down, and it armed with the button up; the
    late edges alone lost the press, and the walker heard nothing)."""
    rig = make_rig(tmp_path, relay_sense_wired=False)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    monitor = rig.app.monitor
    source = monitor._edges
    assert isinstance(source, PressEdges)
    take = source.take_edges

    def take_then_let_go() -> list[tuple[float, bool]]:
        edges = take()
        source.take_edges = take  # type: ignore[method-assign]
        rig.clock.advance(0.125)
        rig.button.up()  # a tap, let go after the take
        return edges

    rig.button.down()
    source.take_edges = take_then_let_go  # type: ignore[method-assign]
    monitor.step()
    assert source.take_edges == take  # the look happened as described
    rig.run_for(PATTERN_GAP_S + 1.0)
    controller = rig.app.controller
    states = [t.state for t in controller.transitions]
    assert SafetyState.ARMED not in states and SafetyState.FAULT not in states, states
    assert "let go before the chirp" in controller.reason, controller.reason
    assert rig.hardware.history == []


def test_after_a_trip_a_first_press_whose_release_was_on_its_way_still_calls(
    tmp_path: Path,
) -> None:
    """TRIPPED, the walker calls for help; the first press's release is stamped before the
    loop's reading and queued after its take. Help goes out, nobody is told the walker is
    fine, the belt stays stopped."""
    rig, closed = _tripped(tmp_path)
    _let_go_stamped_before_the_clock_queued_after_the_look(rig)
    now = rig.clock.monotonic()
    for k in (1, 2):  # the call for help's second and third presses
        rig.button.press_at(now + 0.3 * k, now + 0.3 * k + 0.15)
    rig.run_for(2.0)
    _help_went_out_and_the_belt_stayed_stopped(rig, closed)


class _LosesARelease(deque[tuple[float, bool]]):
    """The button's edge queue losing the next release (a pin factory's bounce filter that
    drops the release of a tap shorter than its bounce time, or an edge it never delivers):
    the edges say the press is down while the pin reads up."""

    losing = False

    def append(self, edge: tuple[float, bool]) -> None:
        if self.losing and not edge[1]:
            self.losing = False
            return
        super().append(edge)


def _losing_the_next_release(rig: Rig) -> _LosesARelease:
    source = rig.app.monitor._edges
    assert isinstance(source, GpioButton)
    queue = _LosesARelease(source._edges, maxlen=source._edges.maxlen)
    queue.losing = True
    source._edges = queue
    return queue


def test_a_press_whose_release_is_lost_is_not_deferred_until_the_next_press(
    tmp_path: Path,
) -> None:
    """TRIPPED, the walker calls for help; the first press's release never reaches the loop,
    which finds the button up at its looks. The press is not left down for ever, to be judged
    held at the next press (the second of the call, which then armed the belt and told the
    caregivers "I'm OK", and the call went out as nothing): help goes out, the belt stays
    stopped."""
    rig, closed = _tripped(tmp_path)
    queue = _losing_the_next_release(rig)
    now = rig.clock.monotonic()
    for k in (0, 1, 2):  # the call for help's three presses, the first one's release lost
        rig.button.press_at(now + 0.3 * k, now + 0.3 * k + 0.15)
    rig.run_for(2.0)
    assert not queue.losing  # the release was lost as described
    _help_went_out_and_the_belt_stayed_stopped(rig, closed)


def test_a_lost_release_the_loop_first_finds_past_the_hold_does_not_arm(
    tmp_path: Path,
) -> None:
    """A press let go just short of the hold, its release lost: the first look that finds
    the button up comes at or after the hold. Let go as of that look, the press read as held
    and armed the belt with the button up (then the first-edge FAULT), telling the caregivers
    "I'm OK". A press whose release the loop never saw is never judged held: refused, the
    belt stays stopped, no "I'm OK"."""
    rig, closed = _tripped(tmp_path)
    queue = _losing_the_next_release(rig)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + ARM_HOLD_S - 0.001)
    rig.run_for(2.0)
    assert not queue.losing  # the release was lost as described
    events = rig.events()
    assert EventType.OK not in events and events.count(EventType.RESET) == 1  # the first arming
    assert rig.state == "TRIPPED"
    assert rig.hardware.history == closed


def test_after_a_release_the_pin_factory_dropped_the_next_press_still_counts(
    tmp_path: Path,
) -> None:
    """TRIPPED, the walker calls for help; the pin factory drops the first press's release
    (its bounce filter), so gpiozero never hears the button go up and, at the second press,
    hears no change: the level it last reported was already "pressed". The second press gave
    no press edge, only a release, and the call went out as two presses, refused. All three
    presses count: help goes out, the belt stays stopped, no "I'm OK"."""
    rig, closed = _tripped(tmp_path)
    pin = rig.button.pin
    now = rig.clock.monotonic()
    rig.button.down()
    rig.run_for(0.15)
    assert pin._change_state(rig.button.active_low)  # up, and no callback: dropped
    assert not rig.app.monitor.button.is_pressed
    for k in (1, 2):  # the call for help's second and third presses
        rig.button.press_at(now + 0.3 * k, now + 0.3 * k + 0.15)
    rig.run_for(2.0)
    _help_went_out_and_the_belt_stayed_stopped(rig, closed)


def test_a_held_press_read_up_at_one_look_is_judged_held_at_the_next(tmp_path: Path) -> None:
    """The button held for the chirp reads up at one look (a glitch on the line, no edge):
    that look only waits, and the next, which finds it down, judges it held as always. The
    one-look wait never turns a held press into one let go: ARMED, the latch closed."""
    rig = make_rig(tmp_path, relay_sense_wired=True)
    rig.run_for(1.0)
    assert rig.state == "STANDBY"
    pin = rig.button.pin
    monitor = rig.app.monitor
    rig.button.down()
    down_at = rig.clock.monotonic()
    while rig.clock.monotonic() - down_at < ARM_HOLD_S - 0.03:
        monitor.step()
    assert rig.state == "STANDBY"
    rig.clock.advance(0.05)  # past the hold at this look
    up = rig.button.active_low
    assert pin._change_state(up)  # a glitch: the line reads up, no callback
    monitor.step()
    assert rig.state == "STANDBY"  # not judged at a look that found it up
    assert pin._change_state(not up)  # down again, still no callback
    rig.run_for(0.1)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    rig.button.up()
    rig.run_for(1.0)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def test_a_release_late_by_more_than_a_look_then_queued_leaves_a_call_for_help_whole(
    tmp_path: Path,
) -> None:
    """TRIPPED, the walker calls for help; the first press's release is stamped and then held
    back from the queue for two looks (gpiozero's thread set aside), so the loop lets the
    press go as of the look that found the button up, and the release comes after. That late
    release is no second release nor a press: help goes out, the belt stays stopped."""
    rig, closed = _tripped(tmp_path)
    source = rig.app.monitor._edges
    assert isinstance(source, GpioButton)
    queue = _HeldBack(source._edges, maxlen=source._edges.maxlen)
    source._edges = queue
    now = rig.clock.monotonic()
    rig.button.down()
    rig.run_for(0.15)
    queue.holding = True
    rig.button.up()  # stamped now, its queueing held back
    assert queue.held and not rig.app.monitor.button.is_pressed
    for _ in range(3):
        rig.app.monitor.step()
    assert rig.app.monitor._patterns.down_at is None  # let go before its release came
    queue.let_through()
    for k in (1, 2):  # the call for help's second and third presses
        rig.button.press_at(now + 0.3 * k, now + 0.3 * k + 0.15)
    rig.run_for(2.0)
    _help_went_out_and_the_belt_stayed_stopped(rig, closed)
