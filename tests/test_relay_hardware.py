"""The simulated relay circuit: retriggerable hold timer, self-holding latch, reset button.

Times are binary fractions (hold 1/16 s, loop period 1/64 s) so every
boundary is exact in floating point and the half-open rules can be tested
to the last bit. Nothing sleeps: the SimClock is stepped by the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from gpiozero.pins.mock import MockFactory

from core.clock import SimClock
from hal.config import GpioConfig
from hal.gpio import GpioButton, GpioRelay, GpioRelaySense
from hal.gpio_factory import open_gpio
from hal.interfaces import RelaySense
from sim.pins import ClockedMockFactory, ObservedMockPin
from sim.relay_hardware import (
    ContactSense,
    HeartbeatRelayHardware,
    SimulatedButton,
    StaticRelayHardware,
)

RELAY, ENABLE, BUTTON, SENSE = 17, 23, 27, 24
T0 = 8.0
HOLD = 1 / 16
P = 1 / 64  # loop period: four edges per hold time


@dataclass
class Rig:
    clock: SimClock
    factory: ClockedMockFactory
    relay: GpioRelay
    button: GpioButton
    finger: SimulatedButton
    hw: HeartbeatRelayHardware
    sense: GpioRelaySense
    """What the firmware reads: the contact, back through the (simulated) mirror wire."""
    wire: ContactSense

    def beat(self, n: int, period: float = P) -> float:
        """``n`` loop periods, one hold() each; returns the time of the last edge."""
        for _ in range(n):
            self.clock.advance(period)
            self.relay.hold()
        return self.clock.monotonic()

    def idle(self, seconds: float) -> float:
        self.clock.advance(seconds)
        return self.clock.monotonic()

    def arm(self) -> float:
        """Edges arriving, a person presses and lets go: returns the press time."""
        self.beat(2)
        self.finger.down()
        t_press = self.clock.monotonic()
        self.beat(4)
        self.finger.up()
        self.beat(2)
        assert self.hw.contact_closed()
        return t_press


def _rig(with_enable: bool) -> Iterator[Rig]:
    clock = SimClock(T0)
    factory = ClockedMockFactory(clock)
    relay = GpioRelay(RELAY, factory, "heartbeat", enable_pin=ENABLE if with_enable else None)
    button = GpioButton(BUTTON, factory, clock, pull_up=True, bounce_s=0.02)
    hw = HeartbeatRelayHardware(clock, hold_s=HOLD).attach(
        factory.observed_pin(RELAY),
        factory.observed_pin(BUTTON),
        enable_pin=factory.observed_pin(ENABLE) if with_enable else None,
    )
    finger = SimulatedButton(factory.observed_pin(BUTTON), clock)
    sense = GpioRelaySense(SENSE, factory)
    wire = ContactSense(clock, hw).attach(factory.observed_pin(SENSE))
    yield Rig(clock, factory, relay, button, finger, hw, sense, wire)
    wire.detach()
    sense.close()
    relay.close()
    button.close()
    factory.close()


@pytest.fixture
def rig() -> Iterator[Rig]:
    yield from _rig(with_enable=True)


@pytest.fixture
def rig_no_enable() -> Iterator[Rig]:
    yield from _rig(with_enable=False)


# -- closing the latch ------------------------------------------------------------


def test_starts_open(rig: Rig) -> None:
    assert not rig.hw.contact_closed()
    assert not rig.hw.driver_active()
    assert not rig.hw.button_down
    assert rig.hw.history == []


def test_button_press_without_edges_does_not_close(rig: Rig) -> None:
    rig.finger.down()
    rig.idle(0.5)
    rig.finger.up()
    assert not rig.hw.contact_closed()
    assert rig.hw.history == []
    # Software alone (edges, no press) cannot close it either.
    rig.beat(20)
    assert rig.hw.driver_active()
    assert not rig.hw.contact_closed()


def test_press_while_edges_arrive_closes_and_latch_holds(rig: Rig) -> None:
    t_press = rig.arm()
    rig.beat(40)
    assert rig.hw.contact_closed()
    assert rig.hw.history == [(t_press, True)]
    assert rig.button.take_presses() == [t_press]


def test_button_already_held_closes_at_first_edge(rig: Rig) -> None:
    rig.finger.down()
    rig.idle(0.25)
    t_first = rig.beat(1)
    assert rig.hw.history == [(t_first, True)]


# -- opening ----------------------------------------------------------------------------


def test_edges_stop_opens_exactly_hold_after_last_edge(rig: Rig) -> None:
    rig.arm()
    t_last = rig.beat(3)
    rig.idle(1.0)  # nobody looks at the model in between
    assert not rig.hw.contact_closed()
    assert rig.hw.history[-1] == (t_last + HOLD, False)
    assert rig.hw.opened_after(t_last) == t_last + HOLD


@pytest.mark.parametrize("extra_beats", [0, 1], ids=["stuck-low", "stuck-high"])
def test_pin_stuck_at_either_level_opens(rig: Rig, extra_beats: int) -> None:
    rig.arm()
    t_last = rig.beat(4 + extra_beats)
    pin = rig.factory.observed_pin(RELAY)
    stuck_level = pin.level
    rig.idle(0.5)
    assert pin.level is stuck_level is bool(extra_beats)
    assert not rig.hw.driver_active()
    assert rig.hw.history[-1] == (t_last + HOLD, False)


def test_gap_longer_than_hold_opens_even_if_edges_resume(rig: Rig) -> None:
    rig.arm()
    t_last = rig.beat(2)
    rig.idle(HOLD + P)  # a stall: one missed hold time
    rig.beat(40)  # the loop recovers; nobody queried during the stall
    assert rig.hw.driver_active()
    assert not rig.hw.contact_closed()
    assert rig.hw.history[-1] == (t_last + HOLD, False)
    # Re-arming needs a person again, with edges arriving.
    rig.idle(0.25)
    rig.finger.down()
    assert not rig.hw.contact_closed()  # driver lapsed during the idle: press alone is not enough
    rig.finger.up()
    rig.beat(2)
    rig.finger.down()
    t_press = rig.clock.monotonic()
    rig.beat(2)
    rig.finger.up()
    assert rig.hw.contact_closed()
    assert rig.hw.history[-1] == (t_press, True)


def test_gap_of_exactly_hold_s_is_too_late(rig: Rig) -> None:
    rig.arm()
    t_last = rig.beat(1)
    rig.beat(1, period=HOLD - 1 / 1024)  # just in time
    assert rig.hw.contact_closed()
    t_last = rig.clock.monotonic()
    rig.beat(1, period=HOLD)  # exactly hold_s later: the timer lapsed at that instant
    assert not rig.hw.contact_closed()
    assert rig.hw.history[-1] == (t_last + HOLD, False)


def test_holding_the_button_bypasses_the_latch(rig: Rig) -> None:
    """As in the real circuit: a held button re-closes as soon as edges return."""
    rig.finger.down()
    rig.beat(2)
    rig.idle(0.5)
    assert not rig.hw.contact_closed()
    t_edge = rig.beat(1)
    assert rig.hw.contact_closed()
    assert rig.hw.history[-1] == (t_edge, True)


def test_release_with_enable_pin_opens_at_once(rig: Rig) -> None:
    rig.arm()
    rig.beat(3)
    t_detect = rig.idle(P / 2)  # the loop decides mid-period
    rig.relay.release()
    assert not rig.hw.contact_closed()
    assert rig.hw.opened_after(t_detect) == t_detect  # same clock instant, not hold_s later
    # Edges resume (the loop holds again): still open without a press.
    rig.beat(20)
    assert rig.hw.enabled and rig.hw.driver_active()
    assert not rig.hw.contact_closed()


def test_cleared_timer_ignores_edges_and_enabling_is_not_a_trigger(
    rig_no_enable: Rig,
) -> None:
    rig = rig_no_enable
    # Drive the clear input by hand with a plain output to place each step exactly.
    enable = GpioRelay(ENABLE, rig.factory, "static")
    rig.hw.attach(
        rig.factory.observed_pin(RELAY),
        rig.factory.observed_pin(BUTTON),
        enable_pin=rig.factory.observed_pin(ENABLE),
    )
    assert not rig.hw.enabled
    rig.finger.down()
    rig.beat(8)
    assert rig.hw.ignored_edges == 8
    assert not rig.hw.driver_active()
    assert not rig.hw.contact_closed()
    enable.hold()  # clear released: not itself an edge
    assert rig.hw.enabled and not rig.hw.driver_active()
    t_edge = rig.beat(1)
    assert rig.hw.contact_closed()  # button still held: closes at the first counted edge
    assert rig.hw.history == [(t_edge, True)]
    enable.close()


def test_release_without_enable_pin_waits_for_the_timer(rig_no_enable: Rig) -> None:
    rig = rig_no_enable
    rig.arm()
    rig.beat(3)  # odd count since arming ... pin is active now
    assert rig.relay.pin_active
    t_release = rig.idle(P / 2)
    rig.relay.release()  # drives the pin inactive: that is one more edge
    assert rig.hw.contact_closed()
    rig.idle(1.0)
    assert rig.hw.opened_after(t_release) == t_release + HOLD


def test_querying_the_past_is_refused_but_history_remains(rig: Rig) -> None:
    rig.arm()
    t_last = rig.beat(2)
    rig.idle(1.0)
    assert not rig.hw.contact_closed()
    with pytest.raises(ValueError, match="history"):
        rig.hw.contact_closed(t_last)
    assert rig.hw.history[-1] == (t_last + HOLD, False)


def test_asking_about_the_future_commits_nothing(rig: Rig) -> None:
    rig.arm()
    t_last = rig.beat(1)
    assert rig.hw.contact_closed(t_last + HOLD / 2)
    assert not rig.hw.contact_closed(t_last + 1.0)  # if no edge came
    rig.beat(8)  # edges did come, earlier than that
    assert rig.hw.contact_closed()
    assert rig.hw.opened_after(t_last) is None


def test_model_needs_positive_hold() -> None:
    with pytest.raises(ValueError):
        HeartbeatRelayHardware(SimClock(), hold_s=0.0)


# -- reading the contact back ---------------------------------------------------------


def test_the_sense_reads_the_contact_both_ways(rig: Rig) -> None:
    assert isinstance(rig.sense, RelaySense)
    assert not rig.sense.contact_closed
    assert rig.factory.observed_pin(SENSE).level is False  # the optocoupler pulls it low
    rig.arm()
    assert rig.sense.contact_closed
    t_last = rig.beat(2)
    rig.idle(1.0)  # the hold lapses while nobody looks: the read finds it
    assert not rig.sense.contact_closed
    assert rig.hw.history[-1] == (t_last + HOLD, False)
    rig.arm()
    rig.relay.release()
    assert not rig.sense.contact_closed
    rig.sense.close()
    assert not rig.sense.contact_closed
    rig.sense.close()  # idempotent


def test_the_sense_follows_with_the_relays_travel_times(rig: Rig) -> None:
    rig.wire.operate_s, rig.wire.release_s = P, 2 * P
    rig.beat(2)
    rig.finger.down()
    t_press = rig.clock.monotonic()
    assert rig.hw.contact_closed() and not rig.sense.contact_closed  # the armature travels
    rig.idle(P / 2)
    assert not rig.sense.contact_closed
    rig.clock.advance(P / 2)
    assert rig.clock.monotonic() == t_press + P and rig.sense.contact_closed
    rig.beat(2)
    rig.finger.up()
    t_release = rig.idle(P / 4)
    rig.relay.release()
    rig.idle(2 * P - 1 / 1024)
    assert rig.sense.contact_closed
    rig.idle(1 / 1024)
    assert rig.clock.monotonic() == t_release + 2 * P and not rig.sense.contact_closed


def test_a_closing_undone_before_it_arrives_never_shows(rig: Rig) -> None:
    rig.wire.operate_s, rig.wire.release_s = 4 * P, P
    rig.arm()  # held for six periods after the press: long enough to arrive
    assert rig.sense.contact_closed
    rig.relay.release()
    rig.idle(0.25)
    rig.beat(2)
    rig.finger.down()
    rig.beat(1)
    rig.relay.release()  # opened one period after closing: before the armature got there
    rig.finger.up()
    for _ in range(16):
        rig.idle(P)
        assert not rig.sense.contact_closed


def test_a_cut_sense_wire_reads_closed_until_mended(rig: Rig) -> None:
    rig.wire.cut()
    assert rig.wire.is_cut and rig.sense.contact_closed  # the pull-up wins
    assert not rig.hw.contact_closed()
    rig.wire.mend()
    assert not rig.sense.contact_closed
    rig.arm()
    rig.wire.cut()
    rig.relay.release()
    assert rig.sense.contact_closed and not rig.hw.contact_closed()


def test_a_welded_contact_stays_closed_whatever_the_coil_does(rig: Rig) -> None:
    t_press = rig.arm()
    rig.hw.weld_contact()
    rig.relay.release()
    rig.idle(1.0)
    assert not rig.hw.latched() and not rig.hw.driver_active()
    assert rig.hw.contact_closed() and rig.sense.contact_closed
    assert rig.hw.history == [(t_press, True)]  # it never opened


def test_a_contact_sticking_while_open_closes_now(rig: Rig) -> None:
    t_weld = rig.idle(0.25)
    rig.hw.weld_contact()
    assert rig.hw.contact_closed() and rig.sense.contact_closed
    assert rig.hw.history == [(t_weld, True)]


def test_a_dropped_latch_stays_open_until_the_next_press(rig: Rig) -> None:
    rig.arm()
    t_drop = rig.beat(2)
    rig.hw.drop_latch()
    rig.beat(40)  # edges keep the driver active, but the latch needs a person
    assert rig.hw.driver_active() and not rig.hw.contact_closed()
    assert not rig.sense.contact_closed
    assert rig.hw.history[-1] == (t_drop, False)
    rig.finger.down()
    t_press = rig.clock.monotonic()
    rig.beat(2)
    rig.finger.up()
    assert rig.hw.contact_closed() and rig.hw.history[-1] == (t_press, True)


def test_contact_sense_checks_its_times(rig: Rig) -> None:
    with pytest.raises(ValueError):
        ContactSense(rig.clock, rig.hw, operate_s=-P)


def test_the_read_hook_runs_on_device_reads_only() -> None:
    clock = SimClock(T0)
    factory = ClockedMockFactory(clock)
    sense = GpioRelaySense(SENSE, factory)
    pin = factory.observed_pin(SENSE)
    calls: list[float] = []
    pin.set_read_hook(lambda: calls.append(clock.monotonic()))
    assert sense.contact_closed  # nothing drives it: the pull-up reads "closed"
    assert pin.level is True and calls == [T0]  # .level is the model's view: no hook
    pin.set_read_hook(None)
    assert sense.contact_closed and calls == [T0]
    sense.close()
    factory.close()


# -- static wiring --------------------------------------------------------------------


@pytest.mark.parametrize("active_high", [True, False])
def test_static_hardware_follows_the_level(active_high: bool) -> None:
    clock = SimClock(T0)
    factory = ClockedMockFactory(clock)
    relay = GpioRelay(RELAY, factory, "static", active_high)
    hw = StaticRelayHardware(clock, active_high=active_high).attach(factory.observed_pin(RELAY))
    assert not hw.contact_closed()
    clock.advance(0.25)
    relay.hold()
    clock.advance(0.25)
    relay.hold()
    assert hw.contact_closed()
    clock.advance(0.25)
    relay.release()
    assert hw.history == [(T0 + 0.25, True), (T0 + 0.75, False)]
    assert hw.opened_after(T0) == T0 + 0.75
    hw.detach()
    relay.close()
    factory.close()


def test_static_hardware_faults() -> None:
    clock = SimClock(T0)
    factory = ClockedMockFactory(clock)
    relay = GpioRelay(RELAY, factory, "static")
    hw = StaticRelayHardware(clock).attach(factory.observed_pin(RELAY))
    sense = GpioRelaySense(SENSE, factory)
    wire = ContactSense(clock, hw).attach(factory.observed_pin(SENSE))
    relay.hold()
    clock.advance(0.25)
    hw.drop_latch()  # the coil lets go although the pin is active
    assert not hw.contact_closed() and not sense.contact_closed
    relay.hold()  # the level does not change: still dropped
    assert not hw.contact_closed()
    clock.advance(0.25)
    relay.release()
    relay.hold()
    assert hw.contact_closed() and sense.contact_closed
    hw.weld_contact()
    clock.advance(0.25)
    relay.release()
    assert hw.contact_closed() and sense.contact_closed
    assert hw.history == [(T0, True), (T0 + 0.25, False), (T0 + 0.5, True)]
    wire.detach()
    sense.close()
    hw.detach()
    relay.close()
    factory.close()


# -- the simulated finger -------------------------------------------------------------


def test_press_at_and_poll_arm_inside_the_stepping_loop(rig: Rig) -> None:
    """How the demo arms: the press is scheduled, the loop polls it each step."""
    rig.finger.press_at(T0 + 0.25, T0 + 0.5)
    assert rig.finger.pending == 2
    for _ in range(64):
        rig.clock.advance(P)
        rig.finger.poll()
        rig.relay.hold()
    assert rig.finger.pending == 0
    assert rig.hw.history == [(T0 + 0.25, True)]
    assert rig.button.take_presses() == [T0 + 0.25]
    assert not rig.finger.is_down


def test_press_at_checks_its_times(rig: Rig) -> None:
    with pytest.raises(ValueError):
        rig.finger.press_at(T0 + 1, T0 + 1)


def test_single_threaded_press_jumps_over_the_loop(rig: Rig) -> None:
    """press() on a SimClock advances time with no edges in between: no latch (documented)."""
    rig.beat(2)
    rig.finger.press(0.125)
    assert rig.clock.monotonic() == T0 + 2 * P + 0.125
    assert rig.button.take_presses() == [T0 + 2 * P]
    rig.beat(4)
    assert not rig.hw.contact_closed()


def test_open_gpio_arms_and_trips_end_to_end() -> None:
    clock = SimClock(T0)
    with open_gpio(GpioConfig(heartbeat_hold_s=HOLD), clock) as gpio:
        hw, finger = gpio.hardware, gpio.button_sim
        assert isinstance(hw, HeartbeatRelayHardware) and finger is not None
        finger.press_at(T0 + 0.25, T0 + 0.375)
        for _ in range(64):
            clock.advance(P)
            finger.poll()
            gpio.relay.hold()
        assert hw.contact_closed()
        t_detect = clock.monotonic()
        gpio.relay.release()
        assert hw.history == [(T0 + 0.25, True), (t_detect, False)]


# -- observed mock pins ----------------------------------------------------------------


def test_observed_pins_run_on_the_shared_clock() -> None:
    clock = SimClock(T0)
    factory = ClockedMockFactory(clock)
    assert factory.ticks() == T0
    relay = GpioRelay(RELAY, factory, "static")
    pin = factory.observed_pin(RELAY)
    pin.clear_states()
    seen: list[tuple[float, bool]] = []

    def listener(t: float, level: bool) -> None:
        seen.append((t, level))

    pin.add_listener(listener)
    clock.advance(0.5)
    relay.hold()
    clock.advance(0.25)
    relay.release()
    pin.remove_listener(listener)
    pin.remove_listener(listener)  # harmless
    clock.advance(0.25)
    relay.hold()
    assert seen == [(T0 + 0.5, True), (T0 + 0.75, False)]
    assert list(pin.transitions) == [*seen, (T0 + 1.0, True)]
    # gpiozero's own helper still works: timestamps are the gaps between changes.
    pin.assert_states_and_times([(0.0, False), (0.5, True), (0.25, False), (0.25, True)])
    relay.close()
    factory.close()


def test_observed_pin_history_can_be_bounded() -> None:
    clock = SimClock(T0)
    factory = ClockedMockFactory(clock, max_states=4)
    relay = GpioRelay(RELAY, factory, "heartbeat")
    for _ in range(10):
        clock.advance(P)
        relay.hold()
    pin = factory.observed_pin(RELAY)
    assert len(pin.transitions) == 4
    assert len(pin.states) == 4
    assert pin.transitions[-1][0] == T0 + 10 * P
    relay.close()
    factory.close()


def test_observed_pin_needs_a_clocked_factory() -> None:
    factory = MockFactory(pin_class=ObservedMockPin)
    with pytest.raises(TypeError, match="ClockedMockFactory"):
        factory.pin(RELAY)
    factory.close()
