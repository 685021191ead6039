"""gpiozero backends: pin factories by name, relay, buzzer, reset button, status LED.

Every device runs on a :class:`ClockedMockFactory` over a :class:`SimClock`:
pin histories carry simulated times, nothing sleeps, nothing is timed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from core.clock import SimClock
from core.protocol.messages import SilenceResult
from firmware.app import silence_alarm
from firmware.safety import SoundingAlarm
from hal.buzzer_patterns import PATTERNS
from hal.config import GpioConfig, PinConfig
from hal.errors import HalError
from hal.gpio import GpioButton, GpioBuzzer, GpioRelay, GpioStatusLed, pin_factory_for
from hal.gpio_factory import GpioDevices, open_gpio
from hal.interfaces import Button, Buzzer, Relay, RelaySense
from sim.pins import ClockedMockFactory, ObservedMockPin
from sim.relay_hardware import HeartbeatRelayHardware, SimulatedButton, StaticRelayHardware

RELAY, ENABLE, BUZZER, BUTTON, LED_PIN = 17, 23, 18, 27, 22
T0 = 10.0


@pytest.fixture(autouse=True)
def _global_pin_factory_untouched() -> Iterator[None]:
    """Every device gets its factory explicitly; gpiozero's global is never set by us."""
    before = Device.pin_factory
    yield
    assert Device.pin_factory is before


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


@pytest.fixture
def factory(clock: SimClock) -> Iterator[ClockedMockFactory]:
    f = ClockedMockFactory(clock)
    yield f
    f.close()


def at(clock: SimClock, t: float) -> float:
    """Move the simulated clock forward to ``t`` and return it."""
    clock.advance(t - clock.monotonic())
    return clock.monotonic()


# -- pin factories by name --------------------------------------------------------


def test_unknown_factory_name() -> None:
    with pytest.raises(HalError, match="choose one of lgpio, rpigpio, native, pigpio, mock"):
        pin_factory_for("wiringpi")


def test_mock_factory_by_name_is_not_installed_globally() -> None:
    f = pin_factory_for("mock")
    try:
        assert isinstance(f, MockFactory)
    finally:
        f.close()


def _hide_module(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``import name`` fail as if the package were not installed."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def _forget_module(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)


def _unset_env(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # setenv first so that monkeypatch restores "unset" even if the code under test sets it.
    monkeypatch.setenv(name, "")
    monkeypatch.delenv(name)


def test_lgpio_missing_is_a_clear_hal_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _forget_module(monkeypatch, "gpiozero.pins.lgpio")
    _hide_module(monkeypatch, "lgpio")
    _unset_env(monkeypatch, "LG_WD")
    monkeypatch.setenv("RUNTIME_DIRECTORY", f"{tmp_path}:/elsewhere")
    cwd = os.getcwd()
    with pytest.raises(HalError, match=r"lgpio module is missing.*retroguard\[pi\]"):
        pin_factory_for("lgpio")
    # The FIFO directory was pointed at systemd's RuntimeDirectory (the first one).
    assert os.environ["LG_WD"] == str(tmp_path)
    assert os.getcwd() == cwd


def test_lgpio_workdir_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LG_WD", str(tmp_path / "missing"))
    with pytest.raises(HalError, match=r"LG_WD=.*not a directory"):
        pin_factory_for("lgpio")


def test_rpigpio_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget_module(monkeypatch, "gpiozero.pins.rpigpio")
    _hide_module(monkeypatch, "RPi", "RPi.GPIO")
    with pytest.raises(HalError, match=r"RPi\.GPIO module is missing"):
        pin_factory_for("rpigpio")


def test_rpigpio_off_a_pi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A stand-in for the real RPi.GPIO, which raises exactly this on import off a Pi.
    package = tmp_path / "RPi"
    (package / "GPIO").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "GPIO" / "__init__.py").write_text(
        "raise RuntimeError('This module can only be run on a Raspberry Pi!')\n"
    )
    _forget_module(monkeypatch, "gpiozero.pins.rpigpio", "RPi", "RPi.GPIO")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(HalError, match="only works on a Raspberry Pi"):
        pin_factory_for("rpigpio")


def test_pigpio_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget_module(monkeypatch, "gpiozero.pins.pigpio")
    _hide_module(monkeypatch, "pigpio")
    with pytest.raises(HalError, match="pigpio module is missing"):
        pin_factory_for("pigpio")


def _on_a_pi() -> bool:
    try:
        return "Raspberry Pi" in Path("/proc/device-tree/model").read_text(errors="replace")
    except OSError:
        return False


@pytest.mark.skipif(_on_a_pi(), reason="the native factory works on a Pi")
def test_native_off_a_pi() -> None:
    with pytest.raises(HalError, match="'native' unavailable"):
        pin_factory_for("native")


# -- relay ------------------------------------------------------------------------


@pytest.mark.parametrize("active_high", [True, False])
def test_relay_constructed_released(factory: ClockedMockFactory, active_high: bool) -> None:
    relay = GpioRelay(RELAY, factory, "static", active_high)
    pin = factory.observed_pin(RELAY)
    assert pin.function == "output"
    assert pin.level is (not active_high)  # released = inactive level
    assert not relay.holding
    assert not relay.pin_active
    relay.close()


@pytest.mark.parametrize("active_high", [True, False])
def test_static_hold_and_release(factory: ClockedMockFactory, active_high: bool) -> None:
    relay = GpioRelay(RELAY, factory, "static", active_high)
    pin = factory.observed_pin(RELAY)
    pin.clear_states()
    relay.hold()
    relay.hold()  # a level, not an edge: no second change
    assert pin.level is active_high
    assert relay.holding and relay.pin_active
    relay.release()
    relay.release()  # idempotent
    assert pin.level is (not active_high)
    assert not relay.holding
    assert [level for _, level in pin.transitions] == [active_high, not active_high]
    relay.close()


def test_heartbeat_each_hold_is_one_edge(factory: ClockedMockFactory, clock: SimClock) -> None:
    relay = GpioRelay(RELAY, factory, "heartbeat")
    pin = factory.observed_pin(RELAY)
    pin.clear_states()
    for i in range(7):
        at(clock, T0 + 0.01 * (i + 1))
        relay.hold()
    assert len(pin.transitions) == 7
    assert [t for t, _ in pin.transitions] == pytest.approx([T0 + 0.01 * i for i in range(1, 8)])
    assert relay.holding
    relay.close()


def test_heartbeat_enable_pin_cleared_until_hold_and_first_on_release(
    factory: ClockedMockFactory, clock: SimClock
) -> None:
    relay = GpioRelay(RELAY, factory, "heartbeat", active_high=False, enable_pin=ENABLE)
    pin, enable = factory.observed_pin(RELAY), factory.observed_pin(ENABLE)
    assert enable.level is False  # cleared: active-high whatever the relay polarity
    assert not relay.enabled
    order: list[str] = []
    pin.add_listener(lambda t, level: order.append("relay"))
    enable.add_listener(lambda t, level: order.append("enable"))
    relay.hold()
    assert order == ["enable", "relay"]  # enabled before the edge, so the edge counts
    relay.hold()
    assert order == ["enable", "relay", "relay"]  # enable only changes once
    assert relay.enabled
    order.clear()
    relay.release()
    assert order == ["enable"]  # pin was back at its released level: no edge
    assert enable.level is False
    relay.hold()
    order.clear()
    relay.release()
    assert order == ["enable", "relay"]  # timer cleared before the release edge
    relay.close()


def test_relay_argument_checks(factory: ClockedMockFactory) -> None:
    with pytest.raises(ValueError, match="static' or 'heartbeat"):
        GpioRelay(RELAY, factory, "pulse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="heartbeat drive only"):
        GpioRelay(RELAY, factory, "static", enable_pin=ENABLE)


def test_relay_release_never_raises(
    factory: ClockedMockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    relay = GpioRelay(RELAY, factory, "static")
    relay.hold()

    def broken(t: float, level: bool) -> None:
        raise OSError("pin write failed")

    factory.observed_pin(RELAY).add_listener(broken)
    relay.release()  # the write fails: logged, not raised
    assert not relay.holding
    assert "the hardware pull must drop it" in caplog.text
    relay.close()


def test_heartbeat_edge_after_a_failed_release_comes_from_the_pin(
    factory: ClockedMockFactory,
) -> None:
    """The edge is written from the level last written; after a write that raised, the level
    is unknown and the next edge is taken from the pin itself, so it is still an edge."""
    relay = GpioRelay(RELAY, factory, "heartbeat")
    pin = factory.observed_pin(RELAY)
    relay.hold()
    assert pin.level is True

    def broken(t: float, level: bool) -> None:
        raise OSError("pin write failed")

    pin.add_listener(broken)
    relay.release()  # the level changed, then the write raised: logged, not raised
    pin.remove_listener(broken)
    pin.clear_states()
    relay.hold()
    assert [level for _, level in pin.transitions] == [True]
    relay.hold()
    assert [level for _, level in pin.transitions] == [True, False]
    relay.close()


def test_relay_hold_failure_is_a_hal_error(factory: ClockedMockFactory) -> None:
    relay = GpioRelay(RELAY, factory, "heartbeat")

    def broken(t: float, level: bool) -> None:
        raise OSError("pin write failed")

    factory.observed_pin(RELAY).add_listener(broken)
    with pytest.raises(HalError, match="cannot drive the relay"):
        relay.hold()
    assert not relay.holding
    relay.close()


def test_relay_close_is_idempotent_and_final(factory: ClockedMockFactory) -> None:
    relay = GpioRelay(RELAY, factory, "heartbeat", enable_pin=ENABLE)
    relay.hold()
    relay.close()
    relay.close()
    relay.release()  # still never raises
    assert factory.observed_pin(RELAY).function == "input"
    assert factory.observed_pin(ENABLE).function == "input"
    with pytest.raises(HalError, match="closed"):
        relay.hold()


def test_heartbeat_edge_after_a_release_that_never_reached_the_pin_is_still_an_edge(
    factory: ClockedMockFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release whose write failed before the level changed leaves the pin active: the next
    hold reads the pin and drives it inactive, an edge, rather than assume it was released."""
    relay = GpioRelay(RELAY, factory, "heartbeat")
    pin = factory.observed_pin(RELAY)
    relay.hold()
    assert pin.level is True

    def refuse(value: object) -> bool:
        raise OSError("pin write failed")

    monkeypatch.setattr(pin, "_change_state", refuse)
    relay.release()  # logged, not raised; the pin is still high
    monkeypatch.undo()
    assert pin.level is True
    pin.clear_states()
    relay.hold()
    assert [level for _, level in pin.transitions] == [False]
    relay.close()


def test_a_failed_heartbeat_clears_the_timer_at_once(factory: ClockedMockFactory) -> None:
    """A hold whose edge cannot be written releases first: the enable pin goes low, so the
    timer is cleared now rather than at the end of its hold time."""
    relay = GpioRelay(RELAY, factory, "heartbeat", enable_pin=ENABLE)
    relay.hold()
    enable = factory.observed_pin(ENABLE)
    assert enable.level is True

    def broken(t: float, level: bool) -> None:
        raise OSError("pin write failed")

    factory.observed_pin(RELAY).add_listener(broken)
    with pytest.raises(HalError, match="cannot drive the relay"):
        relay.hold()
    assert enable.level is False and not relay.enabled and not relay.holding
    factory.observed_pin(RELAY).remove_listener(broken)
    relay.close()


@pytest.mark.parametrize("drive", ["static", "heartbeat"])
def test_relay_close_drives_the_released_levels_before_giving_the_pins_back(
    factory: ClockedMockFactory, clock: SimClock, drive: str
) -> None:
    """Back to an input, a pin floats: it is driven to its released level first, while it is
    still an output, so only the pull resistor holds it there afterwards."""
    enable_pin = ENABLE if drive == "heartbeat" else None
    relay = GpioRelay(RELAY, factory, drive, enable_pin=enable_pin)  # type: ignore[arg-type]
    pins = [factory.observed_pin(RELAY)] + ([factory.observed_pin(ENABLE)] if enable_pin else [])
    relay.hold()
    assert all(pin.level for pin in pins)
    seen: list[tuple[bool, str]] = []
    for pin in pins:
        pin.add_listener(lambda t, level, pin=pin: seen.append((level, pin.function)))
    relay.close()
    assert seen[: len(pins)] == [(False, "output")] * len(pins)
    assert not relay.pin_active and not relay.enabled  # read after close: False, no error


def test_a_relay_whose_pin_cannot_be_opened_gives_its_enable_pin_back(
    factory: ClockedMockFactory,
) -> None:
    first = GpioRelay(RELAY, factory, "static")
    with pytest.raises(HalError, match="GPIO 17") as failed:
        GpioRelay(RELAY, factory, "heartbeat", enable_pin=ENABLE)
    # The traceback keeps the half-built relay alive: its enable pin is freed by close(),
    # not by the garbage collector.
    assert failed.tb is not None
    GpioRelay(ENABLE, factory, "static").close()  # free again: this would raise if not
    first.close()


def test_a_relay_sense_that_cannot_be_read_reads_closed(factory: ClockedMockFactory) -> None:
    """A broken input must not say "released": closed is what the firmware cannot arm on."""
    from hal.gpio import GpioRelaySense

    sense = GpioRelaySense(24, factory)
    pin = factory.observed_pin(24)
    pin.drive_low()  # mirror contact closed: the relay is released
    assert sense.contact_closed is False

    def broken() -> None:
        raise OSError("read failed")

    pin.set_read_hook(broken)
    assert sense.contact_closed is True
    pin.set_read_hook(None)
    sense.close()


def test_relay_pin_in_use_is_a_hal_error(factory: ClockedMockFactory) -> None:
    first = GpioRelay(RELAY, factory, "static")
    with pytest.raises(HalError, match="GPIO 17"):
        GpioRelay(RELAY, factory, "static")
    first.close()


# -- buzzer -----------------------------------------------------------------------


def _play_and_step(
    buzzer: GpioBuzzer, clock: SimClock, name: str, until: float, step: float = 0.001
) -> None:
    buzzer.play(name, clock.monotonic())
    n = round((until - clock.monotonic()) / step)
    start = clock.monotonic()
    for i in range(1, n + 1):
        buzzer.update(at(clock, start + i * step))


def _assert_timeline(
    pin: ObservedMockPin, expected: list[tuple[float, bool]], step: float = 0.001
) -> None:
    """Each change happens at the first update at or after its documented time."""
    actual = list(pin.transitions)
    assert [level for _, level in actual] == [level for _, level in expected]
    for (t_actual, _), (t_expected, _) in zip(actual, expected, strict=True):
        assert t_expected - 1e-9 <= t_actual < t_expected + step + 1e-9


def test_chirp_timeline_on_the_pin(factory: ClockedMockFactory, clock: SimClock) -> None:
    buzzer = GpioBuzzer(BUZZER, factory)
    pin = factory.observed_pin(BUZZER)
    pin.clear_states()
    _play_and_step(buzzer, clock, "chirp", until=T0 + 0.3)
    _assert_timeline(pin, PATTERNS["chirp"].edges(start=T0))
    assert [level for _, level in pin.transitions] == [True, False, True, False]
    assert buzzer.pattern is None  # finished, silent
    assert not buzzer.is_on
    buzzer.close()


def test_alarm_repeats_until_stopped(factory: ClockedMockFactory, clock: SimClock) -> None:
    buzzer = GpioBuzzer(BUZZER, factory)
    pin = factory.observed_pin(BUZZER)
    pin.clear_states()
    _play_and_step(buzzer, clock, "alarm", until=T0 + 2.05)
    _assert_timeline(pin, PATTERNS["alarm"].edges(start=T0, until=T0 + 2.05))
    assert buzzer.pattern == "alarm"
    assert buzzer.is_on
    buzzer.stop()
    assert pin.level is False
    assert buzzer.pattern is None
    buzzer.update(at(clock, T0 + 2.1))
    assert pin.level is False  # stays silent
    buzzer.stop()  # idempotent
    buzzer.close()


def test_fault_timeline(factory: ClockedMockFactory, clock: SimClock) -> None:
    buzzer = GpioBuzzer(BUZZER, factory)
    pin = factory.observed_pin(BUZZER)
    pin.clear_states()
    _play_and_step(buzzer, clock, "fault", until=T0 + 6.5, step=0.005)
    _assert_timeline(pin, PATTERNS["fault"].edges(start=T0, until=T0 + 6.5), step=0.005)
    buzzer.close()


def test_alarm_not_replaced_by_chirp(factory: ClockedMockFactory, clock: SimClock) -> None:
    buzzer = GpioBuzzer(BUZZER, factory)
    pin = factory.observed_pin(BUZZER)
    buzzer.play("alarm", T0)
    buzzer.play("chirp", at(clock, T0 + 0.15))
    buzzer.play("fault", clock.monotonic())
    assert buzzer.pattern == "alarm"
    buzzer.update(at(clock, T0 + 0.25))
    assert pin.level is True  # alarm's phase: on from 0.2 to 0.3
    buzzer.play("chirp", clock.monotonic(), force=True)
    assert buzzer.pattern == "chirp"
    buzzer.close()


_CAREGIVER_SILENCES = {
    "alarm",
    "fault",
    "not_worn",
    "refused",
    "help_sent",
    "help_answered",
}
"""The alarms and safety signals a caregiver's ``silence`` stops; every other pattern (the
walker's cues, the balance check's, the walker number, the chirp) it leaves playing."""


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_a_caregivers_silence_stops_alarms_and_leaves_the_walkers_cues(
    factory: ClockedMockFactory, clock: SimClock, name: str
) -> None:
    """What the loop does with a caregiver's ``silence`` (:func:`firmware.app.silence_alarm`),
    pattern by pattern on the buzzer's pin: an alarm or safety signal is stopped and the pin
    goes low; a cue, which the session runner does not play again once stopped, plays on."""
    buzzer = GpioBuzzer(BUZZER, factory)
    pin = factory.observed_pin(BUZZER)
    buzzer.play(name, at(clock, T0))
    assert buzzer.pattern == name and pin.level is True  # every pattern opens with a beep
    said = silence_alarm(buzzer)
    if name in _CAREGIVER_SILENCES:
        assert said == SilenceResult(silence="stopped", pattern=name)
        assert buzzer.pattern is None and pin.level is False
        assert silence_alarm(buzzer) == SilenceResult(silence="nothing_sounding")
    else:
        assert said == SilenceResult(silence="cue_left_playing", pattern=name)
        assert buzzer.pattern == name and pin.level is True
        assert silence_alarm(buzzer) == said  # nothing (more) to silence: nothing changes
    buzzer.close()


def test_a_silence_for_another_alarm_is_logged_in_words(
    factory: ClockedMockFactory, clock: SimClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The demo's log read "caregiver's silence for event ed25… incident None: alarm sounding
    is another alarm (…): kept": a Python None for the incident it did not name."""
    buzzer = GpioBuzzer(BUZZER, factory)
    buzzer.play("alarm", at(clock, T0))
    fall = SoundingAlarm("alarm", "f" * 32, "c" * 32)
    with caplog.at_level(logging.INFO, logger="firmware.app"):
        said = silence_alarm(buzzer, fall, event_id="e" * 32)
    assert said == SilenceResult(
        silence="not_that_alarm", pattern="alarm", event_id="f" * 32, incident="c" * 32
    )
    assert caplog.messages[-1] == (
        f"caregiver's silence for event {'e' * 32}: the alarm sounding is another alarm "
        f"(event {'f' * 32}, incident {'c' * 32}): kept"
    )
    assert buzzer.pattern == "alarm"  # kept
    buzzer.close()


def test_alarm_replaces_chirp_and_repeat_play_keeps_phase(
    factory: ClockedMockFactory, clock: SimClock
) -> None:
    buzzer = GpioBuzzer(BUZZER, factory)
    pin = factory.observed_pin(BUZZER)
    buzzer.play("chirp", T0)
    buzzer.play("alarm", at(clock, T0 + 0.01))
    assert buzzer.pattern == "alarm"
    # The loop may ask for the alarm every iteration: it is not restarted.
    buzzer.play("alarm", at(clock, T0 + 0.16))
    assert pin.level is False  # alarm started at 0.01 is off from 0.11 to 0.21
    buzzer.close()


def test_alarm_over_a_long_cue_keeps_its_own_rhythm(
    factory: ClockedMockFactory, clock: SimClock
) -> None:
    """The alarm played in the middle of a long beep (a cue's 0.7 s on) goes off after its own
    0.1 s, not when the cue's beep would have ended: a new pattern is written at once and its
    own span ends are followed (the skip between span ends must forget the old pattern's)."""
    buzzer = GpioBuzzer(BUZZER, factory)
    pin = factory.observed_pin(BUZZER)
    buzzer.play("cue_forward", T0)
    buzzer.update(at(clock, T0 + 0.2))
    assert pin.level is True
    buzzer.play("alarm", at(clock, T0 + 0.25))
    assert buzzer.pattern == "alarm"
    buzzer.update(at(clock, T0 + 0.349))
    assert pin.level is True
    buzzer.update(at(clock, T0 + 0.351))
    assert pin.level is False  # the alarm's first off, long before the cue's beep would end
    buzzer.update(at(clock, T0 + 0.451))
    assert pin.level is True
    buzzer.close()


def test_stop_then_play_overrides_priority(factory: ClockedMockFactory, clock: SimClock) -> None:
    buzzer = GpioBuzzer(BUZZER, factory)
    buzzer.play("alarm", T0)
    buzzer.stop()
    buzzer.play("chirp", T0)
    assert buzzer.pattern == "chirp"
    buzzer.close()


def test_unknown_pattern(factory: ClockedMockFactory) -> None:
    buzzer = GpioBuzzer(BUZZER, factory)
    with pytest.raises(ValueError, match=r"known patterns: alarm, chirp, cue_backward, .*, fault"):
        buzzer.play("siren", T0)
    buzzer.close()


def test_active_low_buzzer_is_silent_high(factory: ClockedMockFactory) -> None:
    buzzer = GpioBuzzer(BUZZER, factory, active_high=False)
    pin = factory.observed_pin(BUZZER)
    assert pin.level is True
    buzzer.play("alarm", T0)
    assert pin.level is False
    buzzer.stop()
    assert pin.level is True
    buzzer.close()
    buzzer.close()


# -- status LED ---------------------------------------------------------------------


def test_status_led_on_off_blink(factory: ClockedMockFactory, clock: SimClock) -> None:
    led = GpioStatusLed(LED_PIN, factory)
    pin = factory.observed_pin(LED_PIN)
    led.on()
    assert pin.level is True and led.is_lit
    led.off()
    assert pin.level is False
    led.blink(0.5, 0.5, T0)
    assert pin.level is True
    led.update(at(clock, T0 + 0.6))
    assert pin.level is False
    led.blink(0.5, 0.5, clock.monotonic())  # same timing: phase kept
    assert pin.level is False
    led.update(at(clock, T0 + 1.1))
    assert pin.level is True
    led.close()
    led.close()


# -- reset button -------------------------------------------------------------------


@pytest.fixture
def button(factory: ClockedMockFactory, clock: SimClock) -> Iterator[GpioButton]:
    b = GpioButton(BUTTON, factory, clock, pull_up=True, bounce_s=0.02)
    yield b
    b.close()


@pytest.fixture
def finger(factory: ClockedMockFactory, clock: SimClock, button: GpioButton) -> SimulatedButton:
    return SimulatedButton(factory.observed_pin(BUTTON), clock, active_low=True)


def test_button_press_stamped_with_clock_and_drained(
    button: GpioButton, finger: SimulatedButton, clock: SimClock
) -> None:
    assert not button.is_pressed
    at(clock, T0 + 0.5)
    finger.down()
    assert button.is_pressed
    at(clock, T0 + 0.6)
    finger.up()
    assert not button.is_pressed
    assert button.take_presses() == [T0 + 0.5]
    assert button.take_presses() == []  # drained


def test_button_chatter_is_one_press(
    button: GpioButton, finger: SimulatedButton, clock: SimClock
) -> None:
    # Press chatter: down/up/down within 20 ms ...
    t = at(clock, T0 + 1.0)
    finger.down()
    for dt, down in [(0.002, False), (0.003, True), (0.002, False), (0.004, True)]:
        at(clock, t + dt)
        t = clock.monotonic()
        finger.down() if down else finger.up()
    # ... held for 200 ms, then release chatter: up/down/up within 20 ms.
    t = at(clock, T0 + 1.2)
    finger.up()
    for dt, down in [(0.003, True), (0.002, False)]:
        at(clock, t + dt)
        t = clock.monotonic()
        finger.down() if down else finger.up()
    assert button.take_presses() == [T0 + 1.0]
    assert button.rejected == 3


def test_a_release_the_factory_dropped_is_told_and_the_next_press_is_heard(
    button: GpioButton, finger: SimulatedButton, clock: SimClock, factory: ClockedMockFactory
) -> None:
    """The pin factory drops a release (the pin up, no callback): gpiozero, still hearing the
    button down, heard no change at the next press, which gave no press edge. Told the
    release was lost (by the loop, which let the press go already), the button hears the
    next press, with no release edge for the lost one."""
    pin = factory.observed_pin(BUTTON)
    at(clock, T0 + 1.0)
    finger.down()
    at(clock, T0 + 1.1)
    assert pin._change_state(True)  # up, its callback dropped
    assert button.take_edges() == [(T0 + 1.0, True)]
    assert button.heard_down and not button.is_pressed  # what the loop looks for
    at(clock, T0 + 1.2)
    button.release_lost()
    assert not button.heard_down  # told: the loop stops looking
    at(clock, T0 + 1.5)
    finger.down()
    at(clock, T0 + 1.6)
    finger.up()
    assert button.take_edges() == [(T0 + 1.5, True), (T0 + 1.6, False)]
    assert button.take_presses() == [T0 + 1.0, T0 + 1.5]
    assert button.rejected == 0 and not button.heard_down


def test_a_release_told_lost_that_comes_after_all_is_its_edge(
    button: GpioButton, finger: SimulatedButton, clock: SimClock
) -> None:
    """Told a release was lost while it was only late (or the press still held), the button
    keeps the press until its release comes, which is its edge; the next press is heard."""
    at(clock, T0 + 1.0)
    finger.down()
    button.release_lost()
    at(clock, T0 + 1.3)
    finger.up()
    at(clock, T0 + 1.6)
    finger.down()
    assert button.take_edges() == [(T0 + 1.0, True), (T0 + 1.3, False), (T0 + 1.6, True)]
    assert button.take_presses() == [T0 + 1.0, T0 + 1.6]


def test_presses_further_apart_than_bounce_each_count(
    button: GpioButton, finger: SimulatedButton, clock: SimClock
) -> None:
    times = [T0 + 1.0, T0 + 1.5, T0 + 2.0]
    for t in times:
        at(clock, t)
        finger.down()
        at(clock, t + 0.1)
        finger.up()
    assert button.take_presses() == pytest.approx(times)
    assert button.rejected == 0


def test_bounce_time_is_passed_to_gpiozero(button: GpioButton, factory: ClockedMockFactory) -> None:
    assert factory.observed_pin(BUTTON).bounce == pytest.approx(0.02)


def test_button_without_pull_up_is_active_high(
    factory: ClockedMockFactory, clock: SimClock
) -> None:
    button = GpioButton(BUTTON, factory, clock, pull_up=False, bounce_s=0.0)
    finger = SimulatedButton(factory.observed_pin(BUTTON), clock, active_low=False)
    finger.down()
    assert factory.observed_pin(BUTTON).level is True
    assert button.is_pressed
    finger.up()
    assert button.take_presses() == [T0]
    button.close()
    assert not button.is_pressed


def test_press_queue_is_bounded(
    button: GpioButton, finger: SimulatedButton, clock: SimClock
) -> None:
    for i in range(GpioButton.MAX_QUEUED + 6):
        at(clock, T0 + i)
        finger.down()
        at(clock, T0 + i + 0.1)
        finger.up()
    presses = button.take_presses()
    assert len(presses) == GpioButton.MAX_QUEUED
    assert presses[-1] == T0 + GpioButton.MAX_QUEUED + 5  # the newest are kept


def test_take_presses_while_another_thread_presses(
    button: GpioButton, finger: SimulatedButton, clock: SimClock
) -> None:
    """No press is lost or duplicated when draining races the callback thread."""
    n = 50
    done = threading.Event()

    def presser() -> None:
        for _ in range(n):
            clock.advance(0.1)
            finger.down()
            clock.advance(0.1)
            finger.up()
        done.set()

    seen: list[float] = []
    thread = threading.Thread(target=presser)
    thread.start()
    while not done.is_set():
        seen.extend(button.take_presses())
    thread.join()
    seen.extend(button.take_presses())
    assert len(seen) == n
    assert seen == sorted(seen)


# -- open_gpio ------------------------------------------------------------------------


def test_open_gpio_simulated_heartbeat(clock: SimClock) -> None:
    with open_gpio(GpioConfig(), clock) as gpio:
        assert isinstance(gpio, GpioDevices)
        assert isinstance(gpio.relay, Relay)
        assert isinstance(gpio.buzzer, Buzzer)
        assert isinstance(gpio.button, Button)
        assert gpio.relay.drive == "heartbeat"
        assert isinstance(gpio.hardware, HeartbeatRelayHardware)
        assert gpio.button_sim is not None
        assert isinstance(gpio.factory, ClockedMockFactory)
        assert isinstance(gpio.relay_sense, RelaySense)
        assert not gpio.relay_sense.contact_closed  # released: the mirror contact reads open
        relay_pin = gpio.factory.observed_pin(PinConfig().relay)
    assert relay_pin.function == "input"  # closed


def test_open_gpio_without_the_relay_sense(clock: SimClock) -> None:
    with open_gpio(GpioConfig(relay_sense_wired=False), clock) as gpio:
        assert gpio.relay_sense is None
        assert getattr(gpio, "contact_sense", "absent") is None
        sense_pin = gpio.factory.observed_pin(PinConfig().relay_sense)
        assert sense_pin.function == "input" and sense_pin.pull == "floating"  # never opened


def test_open_gpio_simulated_static(clock: SimClock) -> None:
    gpio = open_gpio(GpioConfig(relay_drive="static", relay_active_high=False), clock)
    try:
        hardware = gpio.hardware
        assert isinstance(hardware, StaticRelayHardware)
        assert not hardware.contact_closed()
        gpio.relay.hold()
        assert hardware.contact_closed()
        gpio.relay.release()
        assert not hardware.contact_closed()
    finally:
        gpio.close()
        gpio.close()


def test_open_gpio_real_backend_with_mock_factory(clock: SimClock) -> None:
    with open_gpio(GpioConfig(backend="gpiozero", pin_factory="mock"), clock) as gpio:
        assert getattr(gpio, "hardware", None) is None
        assert getattr(gpio, "button_sim", None) is None
        assert type(gpio.factory) is MockFactory
        gpio.relay.hold()
        assert gpio.relay.holding


def test_open_gpio_failure_closes_what_was_opened(
    clock: SimClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[ClockedMockFactory] = []

    class RecordingFactory(ClockedMockFactory):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr("sim.backends.ClockedMockFactory", RecordingFactory)
    config = GpioConfig(pins=PinConfig(buzzer=PinConfig().relay))
    with pytest.raises(HalError, match="buzzer on GPIO 17"):
        open_gpio(config, clock)
    (factory,) = made
    relay_pin = factory.observed_pin(PinConfig().relay)
    # The relay was opened (released), then given back: never driven, pins free again.
    assert [level for _, level in relay_pin.transitions] == []
    assert relay_pin.function == "input"
    for pin in (PinConfig().relay, PinConfig().relay_enable):
        GpioRelay(pin, factory, "static").close()  # free again: this would raise if not


def test_the_data_ready_wakeup_keeps_an_events_contract() -> None:
    """The data-ready line's event on a bare lock: set stays set until cleared, a set from
    another thread wakes the waiter, setting twice is harmless, a timeout says False."""
    import threading

    from hal.gpio import _Wakeup

    wakeup = _Wakeup()
    assert isinstance(wakeup, threading.Event)
    assert not wakeup.is_set() and wakeup.wait(0.0) is False
    wakeup.set()
    wakeup.set()
    assert wakeup.is_set() and wakeup.wait(0.0) and wakeup.wait(None) and wakeup.is_set()
    wakeup.clear()
    wakeup.clear()
    assert not wakeup.is_set() and wakeup.wait(0.001) is False
    setter = threading.Thread(target=wakeup.set)
    setter.start()
    assert wakeup.wait(10.0) is True  # returns as soon as the other thread sets it
    setter.join()
    assert wakeup.is_set()


def test_heartbeat_edges_are_written_from_the_level_last_written_never_read_back(
    factory: ClockedMockFactory, clock: SimClock
) -> None:
    """Each edge inverts the level this object last wrote: reading the pin back (a system
    call on a Pi) at every hold, 200 times a second, was half the cost of a hold. Only after a
    write that failed is the pin read (test_heartbeat_edge_after_a_failed_release_...)."""
    relay = GpioRelay(RELAY, factory, "heartbeat", enable_pin=ENABLE)
    pin = factory.observed_pin(RELAY)
    reads: list[float] = []
    pin.set_read_hook(lambda: reads.append(clock.monotonic()))
    pin.clear_states()
    for i in range(10):
        at(clock, T0 + 0.005 * (i + 1))
        relay.hold()
    relay.release()
    for i in range(10):
        at(clock, T0 + 0.1 + 0.005 * (i + 1))
        relay.hold()
    assert len(pin.transitions) == 20  # ten edges (back to released: no release edge), ten
    assert reads == []
    pin.set_read_hook(None)
    relay.close()
