"""Calling for help (issue 15, item 2): press patterns, the help button, and the alert's way out.

Patterns are read on gpiozero MockFactory pins driven by a simulated finger on a
SimClock; the app tests run the whole monitor on simulated hardware; the last one
sends a help alert through a real Mosquitto to the real caregiver service.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.clock import SimClock
from core.protocol.events import Event, EventType
from firmware.presses import (
    ARM_HOLD_S,
    EdgeFeed,
    HelpPattern,
    PressOutcome,
    ResetButtonPatterns,
    ResetPress,
)
from firmware.safety import HELP_REPEAT_S
from firmware.session.config import SessionConfig
from hal.config import GpioConfig
from hal.gpio import GpioButton
from sim.pins import ClockedMockFactory
from sim.relay_hardware import SimulatedButton
from tests.app_support import Rig, TripAt, close_rigs, make_rig
from tests.caregiver_support import Receiver
from tests.mqtt_helpers import WAIT, config_for
from tests.test_caregiver_service import _fake_clock_service
from tools.broker import Mosquitto
from tools.diagnostics.gpio_checks import HELP_BUTTON, run_gpio_checks
from tools.diagnostics.result import Status

__all__ = ["close_rigs"]

T0 = 100.0
STEP = 0.005
"""The loop's period at 200 Hz: the finger and the recogniser are polled this often."""
PIN = 27


class Pins:
    """The reset button on mock pins, a finger on it, and the recogniser the loop runs."""

    def __init__(self) -> None:
        self.clock = SimClock(T0)
        self.factory = ClockedMockFactory(self.clock)
        self.button = GpioButton(PIN, self.factory, self.clock)
        self.finger = SimulatedButton(self.factory.observed_pin(PIN), self.clock)
        self.patterns = ResetButtonPatterns()
        self.outcomes: list[tuple[float, PressOutcome, bool]] = []
        """(when, what, was the finger still down then)."""

    def run(self, seconds: float, armable: bool = True, standby: bool = False) -> None:
        """``standby``: a double press is the session's here (the loop's STANDBY)."""
        end = self.clock.monotonic() + seconds
        while self.clock.monotonic() < end - 1e-9:
            self.clock.advance(STEP)
            self.finger.poll()
            now = self.clock.monotonic()
            edges = self.button.take_edges()
            after = float("-inf") if standby else None  # STANDBY from long before
            found = self.patterns.feed(edges, now, armable=armable, sessions_double_after=after)
            for outcome in found:
                self.outcomes.append((now, outcome, self.finger.is_down))

    def taps(self, *spans: tuple[float, float]) -> None:
        """Presses at (down, up) offsets from now."""
        now = self.clock.monotonic()
        for down, up in spans:
            self.finger.press_at(now + down, now + up)

    def what(self) -> list[PressOutcome]:
        return [outcome for _, outcome, _ in self.outcomes]

    def close(self) -> None:
        self.button.close()
        self.factory.close()


@pytest.fixture
def pins() -> Iterator[Pins]:
    p = Pins()
    yield p
    p.close()


# -- the patterns, on mock pins -----------------------------------------------------------


def test_a_held_press_is_a_reset_press_reported_while_still_held(pins: Pins) -> None:
    pins.taps((0.1, 0.7))
    pins.run(2.0)
    ((at, outcome, still_down),) = pins.outcomes
    assert isinstance(outcome, ResetPress)
    assert outcome.pressed_at == pytest.approx(T0 + 0.1, abs=STEP * 1.01)
    assert still_down, "the latch closes only while the button is down: arm before the release"
    assert at == pytest.approx(T0 + 0.1 + ARM_HOLD_S, abs=2 * STEP)


def test_three_quick_presses_ask_for_help_and_are_no_reset_press(pins: Pins) -> None:
    pins.taps((0.1, 0.25), (0.45, 0.6), (0.8, 0.95))
    pins.run(3.0)
    ((at, outcome, _),) = pins.outcomes
    assert isinstance(outcome, HelpPattern) and outcome.at == at
    assert outcome.first_press == pytest.approx(T0 + 0.1, abs=STEP * 1.01)
    assert at == pytest.approx(T0 + 0.8, abs=2 * STEP)  # the third press, not later


def test_slow_presses_of_an_older_walker_still_ask_for_help(pins: Pins) -> None:
    # Presses held 0.35 s (short of the chirp), let go for 0.45 s: the third at 1.6 s.
    pins.taps((0.0, 0.35), (0.8, 1.15), (1.6, 1.95))
    pins.run(3.0)
    assert [type(o) for o in pins.what()] == [HelpPattern]


def test_contact_bounce_does_not_make_one_press_three(pins: Pins) -> None:
    # One arming press with 2 ms chatter as it closes and as it opens.
    for _ in range(4):
        pins.finger.down()
        pins.run(0.002)
        pins.finger.up()
        pins.run(0.002)
    pins.finger.down()
    pins.run(0.6)
    for _ in range(4):
        pins.finger.up()
        pins.run(0.002)
        pins.finger.down()
        pins.run(0.002)
    pins.finger.up()
    pins.run(2.0)
    assert pins.button.rejected > 0  # the chatter reached the debounce
    assert [type(o) for o in pins.what()] == [ResetPress]


def test_a_double_press_and_four_slow_presses_are_neither(pins: Pins) -> None:
    pins.taps((0.0, 0.15), (0.35, 0.5))
    pins.run(2.0, standby=True)  # the session's (the next walker): nothing for the loop
    assert pins.what() == []
    # Presses 1.1 s apart (each let go for more than the gap): separate lone presses, no help.
    pins.taps((0.0, 0.2), (1.1, 1.3), (2.2, 2.4))
    pins.run(4.0, armable=False)
    assert [type(o) for o in pins.what()] == [ResetPress, ResetPress, ResetPress]


def approx(t: float) -> Any:
    """A time as the loop sees it: the finger and the recogniser are polled every STEP."""
    return pytest.approx(t, abs=2 * STEP)


def test_two_presses_where_they_choose_no_walker_are_a_refused_reset_press(pins: Pins) -> None:
    """TRIPPED: a double press, and a tap then a press held for the chirp, used to be nothing at
    all — the alarm sounding on, no refusal, no words, under a walker holding for a chirp that
    never came. Each is a reset press now, never held (the controller refuses it), reported
    once: the double press when its sequence is over, the tapped-then-held one while still held
    at the chirp's time. STANDBY: a tap then a hold too (the session takes only a double press
    of presses let go before the chirp); ARMED: nothing."""
    pins.taps((0.0, 0.15), (0.35, 0.5))
    pins.run(2.0)
    assert pins.outcomes == [(approx(T0 + 1.1), ResetPress(approx(T0), False, 2), False)]
    for standby in (False, True):
        pins.outcomes.clear()
        start = pins.clock.monotonic()
        pins.taps((0.0, 0.15), (0.35, 1.5))
        pins.run(3.0, standby=standby)
        assert pins.outcomes == [
            (approx(start + 0.75), ResetPress(approx(start), False, 2), True)  # still held
        ]
    pins.outcomes.clear()
    pins.taps((0.0, 0.15), (0.35, 1.5))
    pins.taps((2.5, 2.65), (2.85, 3.0))
    pins.run(5.0, armable=False)
    assert pins.what() == []


def test_a_call_for_help_with_its_second_press_held_is_still_help(pins: Pins) -> None:
    """The tapped-then-held refusal does not end the sequence: a third press still calls for
    help, and the sequence reports nothing more."""
    pins.taps((0.0, 0.1), (0.3, 0.8), (1.1, 1.2))
    pins.run(3.0)
    assert pins.what() == [
        ResetPress(approx(T0), False, 2),
        HelpPattern(approx(T0), approx(T0 + 1.1)),
    ]


def test_in_armed_a_long_first_press_is_no_reset_press_and_help_still_works(pins: Pins) -> None:
    pins.taps((0.0, 0.5), (0.8, 0.95), (1.2, 1.35))
    pins.run(3.0, armable=False)
    assert [type(o) for o in pins.what()] == [HelpPattern]


# -- the patterns, edge by edge (the recogniser's own rules) --------------------------------


def _edges(*spans: tuple[float, float]) -> list[tuple[float, bool]]:
    """(down, up) presses as the edges the button reports."""
    return [edge for down, up in spans for edge in ((down, True), (up, False))]


@pytest.mark.parametrize("field", ["arm_hold_s", "gap_s", "help_window_s"])
@pytest.mark.parametrize("value", [0.0, -0.5])
def test_timings_that_are_not_positive_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        ResetButtonPatterns(**{field: value})


def test_each_limit_counts_when_met_exactly() -> None:
    """Held for the arming time, let go for the gap, three presses within the window: each
    limit is inclusive (the derived limits in firmware/presses.py rely on it). The times are
    exact in binary, so the limits are met exactly."""
    patterns = ResetButtonPatterns(arm_hold_s=0.5, gap_s=0.5, help_window_s=1.5)
    assert patterns.feed([(10.0, True)], 10.5, armable=True) == [ResetPress(10.0)]
    assert patterns.feed([(10.75, False)], 20.0, armable=True) == []
    # Let go 0.5 s before the next press (the gap), the third 1.5 s after the first.
    calls = _edges((30.0, 30.25), (30.75, 31.0), (31.5, 31.75))
    assert patterns.feed(calls, 40.0, armable=True) == [HelpPattern(30.0, 31.5)]


def test_any_three_presses_of_a_sequence_within_the_window_ask_for_help() -> None:
    # ARMED: a first press held 1.5 s (no reset press there), then three quick taps. The first
    # three are too far apart; the last three are within the window: help, at the fourth.
    presses = _edges((0.0, 1.5), (2.0, 2.1), (2.3, 2.4), (2.6, 2.7))
    found = ResetButtonPatterns().feed(presses, 5.0, armable=False)
    assert found == [HelpPattern(first_press=0.0, at=2.6)]  # the sequence's first press


def test_a_later_call_for_help_is_heard_again() -> None:
    patterns = ResetButtonPatterns()
    call = _edges((0.0, 0.1), (0.3, 0.4), (0.6, 0.7))
    assert patterns.feed(call, 5.0, armable=False) == [HelpPattern(0.0, 0.6)]
    again = _edges((10.0, 10.1), (10.3, 10.4), (10.6, 10.7))
    assert patterns.feed(again, 15.0, armable=False) == [HelpPattern(10.0, 10.6)]


def test_more_quick_presses_in_one_sequence_are_still_one_call_for_help() -> None:
    # A frightened walker keeps pressing: five presses of one sequence, each three of them
    # within the window. One call for help, at the third press, not one per press after it.
    presses = _edges((0.0, 0.1), (0.3, 0.4), (0.6, 0.7), (0.9, 1.0), (1.2, 1.3))
    assert ResetButtonPatterns().feed(presses, 5.0, armable=True) == [HelpPattern(0.0, 0.6)]


def test_the_default_gap_is_the_sessions_so_both_read_the_same_sequences() -> None:
    # Presses let go for a little less than the session's double-press gap are one sequence
    # to the session; the loop's recogniser, built with its defaults, must read them so too:
    # three of them are a call for help, not three lone reset presses.
    gap = SessionConfig().double_press_gap_s - 0.05
    downs = [0.0, 0.1 + gap, 0.2 + 2 * gap]
    presses = _edges(*((down, down + 0.1) for down in downs))
    found = ResetButtonPatterns().feed(presses, 5.0, armable=True)
    assert found == [HelpPattern(0.0, downs[2])]


def test_unpaired_edges_change_nothing() -> None:
    """A press reported twice without a release between, or a release with no press, as a
    dropped edge would leave them: one press is still one press, and a stray release does
    not stretch a sequence."""
    twice = ResetButtonPatterns()  # STANDBY: a lone press, its down edge reported twice
    found = twice.feed([(0.0, True), (0.1, True)], 0.5, armable=True)
    assert found == [ResetPress(0.0)]  # the first press of its sequence, held: arms
    # ... and a repeated down in a quick double press does not make it three (help).
    doubled = [(0.0, True), (0.05, True), (0.1, False), (0.3, True), (0.4, False)]
    assert ResetButtonPatterns().feed(doubled, 5.0, armable=False) == []
    # A tap, a stray release 0.4 s after it, a tap 0.9 s after the first let go: two lone
    # presses (two sequences, each let go before the chirp), not one double press.
    stray = [(0.0, True), (0.1, False), (0.5, False), (1.0, True), (1.1, False)]
    assert ResetButtonPatterns().feed(stray, 5.0, armable=True) == [
        ResetPress(0.0, held=False),
        ResetPress(1.0, held=False),
    ]
    # The button held at start-up: its release alone is no press.
    assert ResetButtonPatterns().feed([(0.2, False)], 5.0, armable=True) == []


def test_the_edge_feed_drops_the_oldest_edges_nobody_read() -> None:
    feed = EdgeFeed()
    edges = [(float(k), k % 2 == 0) for k in range(EdgeFeed.MAX_EDGES + 10)]
    feed.publish(edges)
    assert feed.take_edges() == edges[10:]  # bounded: the newest MAX_EDGES kept, in order
    assert feed.take_edges() == []


def test_the_doctor_checks_the_help_button_only_when_it_is_wired() -> None:
    clock = SimClock(T0)
    wired = run_gpio_checks(GpioConfig(help_button_wired=True), clock, factory=None)
    (check,) = [r for r in wired if r.name == HELP_BUTTON]
    assert check.status is Status.PASS and check.detail == "GPIO25 reads released"
    plain = run_gpio_checks(GpioConfig(), clock, factory=None)
    assert HELP_BUTTON not in {r.name for r in plain}


# -- the monitor: help changes nothing on the belt, and nothing arms ------------------------


def _help_presses(rig: Rig) -> None:
    now = rig.clock.monotonic()
    for k in range(3):
        rig.button.press_at(now + 0.35 * k, now + 0.35 * k + 0.15)


def _events(rig: Rig, kind: EventType) -> list[Event]:
    return [s.event for s in rig.app.stored_events() if s.event.type is kind]


def _armed(rig: Rig) -> Rig:
    rig.run_for(1.0)
    rig.press_reset()
    rig.run_for(1.0)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    return rig


@pytest.mark.usefixtures(close_rigs.__name__)
def test_help_while_armed_keeps_the_relay_held_and_the_state_armed(tmp_path: Path) -> None:
    rig = _armed(make_rig(tmp_path))
    history = list(rig.hardware.history)
    transitions = len(rig.app.controller.transitions)
    _help_presses(rig)
    rig.run_for(0.75)
    assert rig.app.gpio.buzzer.pattern == "help_sent"  # the walker hears it was sent
    rig.run_for(5.0)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert rig.hardware.history == history  # the contact never opened
    assert rig.app.gpio.relay.holding
    assert len(rig.app.controller.transitions) == transitions
    (help_event,) = _events(rig, EventType.HELP)
    assert help_event.state == "ARMED"
    assert help_event.incident
    assert help_event.reason == ("the walker asked for help with three presses of the reset button")


@pytest.mark.usefixtures(close_rigs.__name__)
def test_help_while_tripped_joins_the_trip_incident_and_never_arms(tmp_path: Path) -> None:
    rig = _armed(make_rig(tmp_path, detector=TripAt(4.0)))
    rig.run_for(2.0)
    assert rig.state == "TRIPPED"
    _help_presses(rig)
    rig.run_for(3.0)
    assert rig.state == "TRIPPED" and not rig.hardware.contact_closed()
    (trip,) = _events(rig, EventType.STUMBLE)
    (help_event,) = _events(rig, EventType.HELP)
    assert help_event.incident == trip.incident
    assert _events(rig, EventType.OK) == []  # no "I'm OK": the walker did not re-arm
    assert len(_events(rig, EventType.RESET)) == 1  # the first arming only


@pytest.mark.usefixtures(close_rigs.__name__)
def test_no_press_pattern_and_no_help_button_press_arms(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, help_button_wired=True)
    rig.run_for(1.5)
    assert rig.state == "STANDBY"
    assert rig.help_button is not None
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.15)  # double press
    rig.button.press_at(now + 0.35, now + 0.5)
    rig.run_for(1.5)
    _help_presses(rig)  # three presses, the first short of the chirp
    rig.run_for(1.5)
    now = rig.clock.monotonic()
    rig.button.press_at(now, now + 0.3)  # three presses, the later ones held past the
    rig.button.press_at(now + 0.5, now + 1.2)  # chirp: only a sequence's first press can arm
    rig.button.press_at(now + 1.4, now + 2.1)
    rig.run_for(3.5)
    rig.help_button.press_at(rig.clock.monotonic(), rig.clock.monotonic() + 3.0)
    rig.run_for(4.0)
    assert rig.state == "STANDBY" and not rig.hardware.contact_closed()
    assert rig.hardware.history == []
    assert _events(rig, EventType.RESET) == []
    assert len(_events(rig, EventType.HELP)) == 1  # the later calls came within HELP_REPEAT_S
    # ... and the one arming press still arms.
    rig.press_reset()
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


@pytest.mark.usefixtures(close_rigs.__name__)
def test_the_help_button_asks_for_help_in_any_state(tmp_path: Path) -> None:
    rig = _armed(make_rig(tmp_path, help_button_wired=True))
    finger = rig.help_button
    assert finger is not None
    now = rig.clock.monotonic()
    finger.press_at(now, now + 0.2)
    rig.run_for(1.0)
    assert rig.state == "ARMED" and rig.hardware.contact_closed()
    assert rig.app.gpio.relay.holding
    (help_event,) = _events(rig, EventType.HELP)
    assert help_event.reason == "the walker asked for help with the help button"
    # Again, after the repeat window: a second alert.
    rig.run_for(HELP_REPEAT_S)
    now = rig.clock.monotonic()
    finger.press_at(now, now + 0.2)
    rig.run_for(1.0)
    assert len(_events(rig, EventType.HELP)) == 2
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


def test_after_a_help_press_whose_release_the_pin_factory_dropped_the_next_is_heard(
    tmp_path: Path,
) -> None:
    """The help button's release is dropped by the pin factory (its bounce filter): gpiozero,
    still hearing the button down, heard no change at the next press, and the walker's second
    call for help, nobody having come, went out as nothing: no event, no sound. The loop finds
    the button up with no release, tells it, and the next press is heard."""
    rig = _armed(make_rig(tmp_path, help_button_wired=True))
    finger = rig.help_button
    assert finger is not None
    finger.down()
    rig.run_for(0.2)
    assert len(_events(rig, EventType.HELP)) == 1
    assert finger.pin._change_state(finger.active_low)  # up, its callback dropped
    rig.run_for(HELP_REPEAT_S)
    now = rig.clock.monotonic()
    finger.press_at(now, now + 0.2)
    rig.run_for(1.0)
    assert len(_events(rig, EventType.HELP)) == 2
    assert rig.state == "ARMED" and rig.hardware.contact_closed()


# -- over a real broker, to the caregivers -------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_a_help_pattern_reaches_the_caregiver_service_and_pages(
    tmp_path: Path, mosquitto: Mosquitto, receiver: Receiver
) -> None:
    service, _ = _fake_clock_service(mosquitto, tmp_path / "caregiver", receiver)
    try:
        (tmp_path / "device").mkdir()
        rig = _armed(make_rig(tmp_path / "device", mqtt=config_for(mosquitto)))
        _help_presses(rig)
        rig.run_for(2.0)
        (help_event,) = _events(rig, EventType.HELP)
        device = rig.app.config.device.id
        assert service.ingestor.wait_for(lambda: service.store.event(help_event.id) is not None)
        assert service.notifier.deliver_due() == 1  # paged at once
        assert receiver.messages[0]["title"].startswith("RetroGuard: HELP requested")
        (alert,) = service.store.alerts(device)
        assert alert.kind == "help"
        (incident,) = service.store.incidents_for(device)
        assert incident.id == help_event.incident and incident.severity == "help"
        assert rig.state == "ARMED" and rig.hardware.contact_closed()
        # A caregiver answers: the ack travels back over the broker, the walker hears it.
        service.acknowledge(device, help_event.id, "Ann")
        assert _loop_until(rig, lambda: rig.app.gpio.buzzer.pattern == "help_answered")
        assert rig.state == "ARMED" and rig.hardware.contact_closed()
    finally:
        service.stop()


def _loop_until(rig: Rig, done: Callable[[], bool]) -> bool:
    """Run the loop in short steps until ``done()``; the real-time bound is a safety net for
    the broker's round trip, not a timing assertion."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        rig.run_for(0.02)
        if done():
            return True
    return False


@pytest.mark.usefixtures(close_rigs.__name__)
def test_an_answer_to_an_incident_without_help_is_silent(tmp_path: Path) -> None:
    rig = _armed(make_rig(tmp_path, detector=TripAt(4.0)))
    rig.run_for(2.0)
    (trip,) = _events(rig, EventType.STUMBLE)
    controller = rig.app.controller
    rig.app.gpio.buzzer.stop()
    assert trip.incident is not None
    controller.on_incident_closed(trip.incident, rig.clock.monotonic())
    assert rig.app.gpio.buzzer.pattern is None  # no one called: nothing to answer
    _help_presses(rig)
    rig.run_for(3.0)
    controller.on_incident_closed(trip.incident, rig.clock.monotonic())
    assert rig.app.gpio.buzzer.pattern == "help_answered"
