"""GPIO checks: the pin factory, each output pin, the reset button, the heartbeat, the sense.

Pins are claimed one at a time, through the HAL's own device classes and
each at its released level, so a pin held by another process is named on
its own line (the usual cause: the monitor service is still running).

The heartbeat check calls :meth:`~hal.gpio.GpioRelay.hold` the way the loop
does and reads the pin back after every call: with heartbeat wiring each
hold must be an edge, or the hold circuit lapses and the treadmill never
runs. On simulated pins the circuit outside the Pi is modelled too
(:class:`~sim.relay_hardware.HeartbeatRelayHardware`), so the check also
proves the safety argument end to end: edges alone never close the relay,
edges with the reset button held do, and the relay drops on its own within
the hold time when the edges stop — and at once when software releases it.

On real hardware with *static* wiring the drive is not exercised: there a
hold energises the coil, and the doctor never lets a treadmill run. Nor is
it with a reset button that reads pressed: edges with reset held close the
latch. Otherwise, with the contact sense wired, the edges are also the one
test of the latch a real rig allows: sent with nobody on reset, they must
leave the relay open. A relay that closes on them has its latch bypassed (S1a
shorted or in K2a's place, K2a welded, the coils wired straight to Q1): its
edges alone would start the belt, with no person's press — the hand reset the
latch is there for.

The relay-sense check reads the relay's contact back with the relay
released: it must read open. Closed means a welded contact, a cut sense wire
or a dead optocoupler — or no sense wired at all, which the config must then
say (``gpio.relay_sense_wired = false``; the check says "not wired" and what
the monitor cannot see without it). On simulated pins the modelled circuit
also closes it (reset held, edges) and the sense must follow both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from core.clock import Clock
from hal.config import GpioConfig
from hal.errors import HalError
from hal.gpio import (
    GpioButton,
    GpioBuzzer,
    GpioRelay,
    GpioRelaySense,
    GpioStatusLed,
    pin_factory_for,
)
from sim.pins import ClockedMockFactory
from sim.relay_hardware import (
    ContactSense,
    HeartbeatRelayHardware,
    RelayHardware,
    SimulatedButton,
    StaticRelayHardware,
)
from tools.diagnostics.result import CheckResult, blocked, failed, passed, skipped

FACTORY, BUTTON, HEARTBEAT, SENSE = "gpio", "reset-button", "heartbeat", "relay-sense"
HELP_BUTTON = "help-button"

EDGES = 8
"""Holds the drive check sends; each must change the pin's level."""

_HELD_FIX = (
    "another process holds it — usually the monitor: sudo systemctl stop retroguard; "
    "otherwise find it with `gpioinfo | grep -i used`"
)


class _DriveProblem(Exception):
    """A heartbeat finding; its message is the check's detail."""


def make_pin_factory(config: GpioConfig, clock: Clock) -> Any:
    """The factory the monitor would use: simulated pins on ``clock``, or a real one by name."""
    if config.backend == "simulated":
        return ClockedMockFactory(clock)
    return pin_factory_for(config.pin_factory)


def _pin_name(name: str) -> str:
    return f"pin-{name.replace('_', '-')}"


def output_pins(config: GpioConfig) -> list[tuple[str, int, Callable[[Any], Any]]]:
    """``(name, pin, open(factory))`` for each output, opened at its released level."""
    pins = config.pins
    lines: list[tuple[str, int, Callable[[Any], Any]]] = [
        (
            "relay",
            pins.relay,
            lambda f: GpioRelay(pins.relay, f, "static", config.relay_active_high),
        ),
    ]
    if config.relay_drive == "heartbeat":
        lines.append(
            ("relay_enable", pins.relay_enable, lambda f: GpioRelay(pins.relay_enable, f, "static"))
        )
    lines.append(
        ("buzzer", pins.buzzer, lambda f: GpioBuzzer(pins.buzzer, f, config.buzzer_active_high))
    )
    lines.append(("status_led", pins.status_led, lambda f: GpioStatusLed(pins.status_led, f)))
    return lines


def _reason(exc: Exception) -> str:
    cause = exc.__cause__ if isinstance(exc, HalError) and exc.__cause__ else exc
    return str(cause) or type(cause).__name__


def check_claims(config: GpioConfig, factory: Any) -> list[CheckResult]:
    results = []
    for name, pin, opener in output_pins(config):
        try:
            device = opener(factory)
        except Exception as exc:
            results.append(
                failed(_pin_name(name), f"GPIO{pin} cannot be claimed: {_reason(exc)}", _HELD_FIX)
            )
            continue
        device.close()
        results.append(passed(_pin_name(name), f"GPIO{pin} claimable"))
    return results


def check_button(
    button: GpioButton, config: GpioConfig, finger: SimulatedButton | None
) -> CheckResult:
    """The button must read released now; a simulated finger also checks a press reads."""
    pin = config.pins.reset_button
    if button.is_pressed:
        pull = "pull-up" if config.button_pull_up else "pull-down"
        return failed(
            BUTTON,
            f"GPIO{pin} reads pressed while nobody presses it",
            f"let go of it; otherwise the button is stuck or shorted, or gpio.button_pull_up "
            f"is wrong (configured: {pull})",
        )
    if finger is None:
        return passed(BUTTON, f"GPIO{pin} reads released")
    button.take_presses()
    finger.down()
    pressed, presses = button.is_pressed, button.take_presses()
    finger.up()
    if not pressed or len(presses) != 1:
        return failed(
            BUTTON,
            f"GPIO{pin}: a simulated press read pressed={pressed}, {len(presses)} press(es)",
            "check gpio.button_pull_up against the wiring",
        )
    return passed(BUTTON, f"GPIO{pin} reads released; a simulated press reads pressed")


def check_help_button(config: GpioConfig, factory: Any, clock: Clock) -> CheckResult:
    """The optional help button (``gpio.help_button_wired``) must read released now: a stuck
    one calls for help once and then never again."""
    pin = config.pins.help_button
    try:
        button = GpioButton(
            pin,
            factory,
            clock,
            pull_up=config.button_pull_up,
            bounce_s=config.button_bounce_s,
            what="help button",
        )
    except HalError as exc:
        return failed(HELP_BUTTON, f"GPIO{pin} cannot be claimed: {_reason(exc)}", _HELD_FIX)
    try:
        if button.is_pressed:
            return failed(
                HELP_BUTTON,
                f"GPIO{pin} reads pressed while nobody presses it",
                "let go of it; otherwise the help button is stuck or shorted, or "
                "gpio.button_pull_up is wrong (wiring/README.md, section 6)",
            )
        return passed(HELP_BUTTON, f"GPIO{pin} reads released")
    finally:
        button.close()


def _toggle(relay: GpioRelay, clock: Clock, period: float, pin: int, edges: int = EDGES) -> None:
    for edge in range(1, edges + 1):
        before = relay.pin_active
        clock.sleep(period)
        relay.hold()
        if relay.pin_active == before:
            raise _DriveProblem(f"GPIO{pin} did not change level on hold() (edge {edge})")


def _exercise_circuit(
    hw: HeartbeatRelayHardware,
    relay: GpioRelay,
    finger: SimulatedButton,
    clock: Clock,
    period: float,
    pin: int,
) -> None:
    """Walk the simulated hold circuit through arm, latch, lapse and release."""
    _toggle(relay, clock, period, pin)
    if hw.contact_closed():
        raise _DriveProblem(
            "the simulated hold circuit closed on edges alone, without a reset press "
            "(a reset button that reads pressed bypasses the latch)"
        )
    finger.down()
    _toggle(relay, clock, period, pin, 3)
    finger.up()
    _toggle(relay, clock, period, pin, 3)
    if not hw.contact_closed():
        raise _DriveProblem("the simulated hold circuit did not close with reset held")
    clock.sleep(hw.hold_s + period)
    if hw.contact_closed():
        raise _DriveProblem(
            f"the simulated hold circuit still holds {(hw.hold_s + period) * 1000:.0f} ms "
            "after the last edge"
        )
    _toggle(relay, clock, period, pin, 3)
    if hw.contact_closed():
        raise _DriveProblem("the simulated hold circuit re-closed after a lapse without reset")
    finger.down()
    _toggle(relay, clock, period, pin, 3)
    finger.up()
    relay.release()
    if hw.contact_closed():
        raise _DriveProblem("the simulated hold circuit stayed closed after release()")


_LATCH_FIX = (
    "wire the latch as wiring/README.md, section 6 says: the coils through S1a in parallel "
    "with K2a to Q1, nothing across them; a K2 whose contact stays closed unpowered is welded: "
    "replace it"
)


def check_heartbeat(
    config: GpioConfig,
    factory: Any,
    clock: Clock,
    finger: SimulatedButton | None,
    reset_pressed: bool = False,
) -> CheckResult:
    """Hold the relay the way the loop does and watch the pin (and, simulated, the circuit;
    real, the contact sense: the latch must keep the relay open without a reset press).

    ``reset_pressed``: the reset button read pressed; on real hardware the edges are then
    not sent, since with reset held they would close the latch and the treadmill's key loop.
    """
    pins = config.pins
    simulated = isinstance(factory, ClockedMockFactory)
    period = config.heartbeat_hold_s / 5  # five edges per hold time, as a 200 Hz loop sends
    if config.relay_drive == "static":
        if not simulated:
            return skipped(
                HEARTBEAT, "static wiring: a hold would energise the coil, so it is not exercised"
            )
        return _check_static(config, factory, clock)
    if reset_pressed and not simulated:
        return skipped(
            HEARTBEAT,
            f"not run: the reset button reads pressed (see {BUTTON}), and edges with reset "
            "held would close the relay",
        )
    try:
        relay = GpioRelay(
            pins.relay,
            factory,
            "heartbeat",
            config.relay_active_high,
            enable_pin=pins.relay_enable,
        )
    except HalError as exc:
        return failed(HEARTBEAT, f"cannot open the relay: {_reason(exc)}", _HELD_FIX)
    sense = None if simulated else _open_sense_quietly(config, factory)
    try:
        open_before = sense is not None and not sense.contact_closed
        _toggle(relay, clock, period, pins.relay)
        closed_on_edges = open_before and sense is not None and sense.contact_closed
        relay.release()
        if relay.enabled:
            raise _DriveProblem(f"relay_enable GPIO{pins.relay_enable} stays active on release()")
        detail = (
            f"GPIO{pins.relay} changes level on every hold(); relay_enable "
            f"GPIO{pins.relay_enable} clears on release()"
        )
        if closed_on_edges:
            return failed(
                HEARTBEAT,
                f"the relay closed on heartbeat edges alone, with nobody on reset "
                f"(GPIO{pins.relay_sense} read it closed): its latch is bypassed, so heartbeat "
                "edges alone would start the belt, with no hand on reset",
                _LATCH_FIX,
            )
        if open_before:
            detail += (
                f"; the relay stays open on edges without a reset press (GPIO{pins.relay_sense})"
            )
        if simulated and finger is not None:
            hw = HeartbeatRelayHardware(clock, hold_s=config.heartbeat_hold_s).attach(
                factory.observed_pin(pins.relay),
                factory.observed_pin(pins.reset_button),
                enable_pin=factory.observed_pin(pins.relay_enable),
                button_active_low=config.button_pull_up,
            )
            try:
                _exercise_circuit(hw, relay, finger, clock, period, pins.relay)
            finally:
                hw.detach()
            detail += (
                "; simulated hold circuit closes only with reset and drops "
                f"{config.heartbeat_hold_s * 1000:.0f} ms after the last edge"
            )
    except _DriveProblem as exc:
        return failed(
            HEARTBEAT,
            str(exc),
            "check gpio.relay_drive and the relay pins against wiring/README.md",
        )
    except HalError as exc:
        return failed(HEARTBEAT, f"cannot drive the relay: {_reason(exc)}", _HELD_FIX)
    finally:
        relay.close()
        if sense is not None:
            sense.close()
    return passed(HEARTBEAT, detail)


def _open_sense_quietly(config: GpioConfig, factory: Any) -> GpioRelaySense | None:
    """The contact sense for the latch test, or None: not wired, or not claimable (the
    relay-sense check, after this one, reports that)."""
    if not config.relay_sense_wired:
        return None
    try:
        return GpioRelaySense(config.pins.relay_sense, factory)
    except HalError:
        return None


def _check_static(config: GpioConfig, factory: Any, clock: Clock) -> CheckResult:
    pin = config.pins.relay
    relay = GpioRelay(pin, factory, "static", config.relay_active_high)
    hw = StaticRelayHardware(clock, active_high=config.relay_active_high).attach(
        factory.observed_pin(pin)
    )
    try:
        relay.hold()
        held = hw.contact_closed()
        relay.release()
        if not held or hw.contact_closed():
            return failed(
                HEARTBEAT,
                f"static relay GPIO{pin}: hold() closed={held}, release() left it "
                f"closed={hw.contact_closed()}",
                "check gpio.relay_active_high",
            )
    finally:
        hw.detach()
        relay.close()
    return passed(HEARTBEAT, f"static drive: GPIO{pin} holds and releases the simulated coil")


_SENSE_FIX = (
    "a welded relay contact, a cut sense wire or a dead optocoupler (wiring/README.md, "
    "section 6); an installation without the sense wiring must say gpio.relay_sense_wired = false"
)


def check_relay_sense(
    config: GpioConfig, factory: Any, clock: Clock, finger: SimulatedButton | None
) -> CheckResult:
    """The contact must read open with the relay released (and, simulated, follow it)."""
    pin = config.pins.relay_sense
    if not config.relay_sense_wired:
        return skipped(
            SENSE,
            "not wired (gpio.relay_sense_wired = false): the monitor cannot see a welded relay "
            "contact, nor a latch that let go on its own (wiring/README.md, section 6)",
        )
    try:
        sense = GpioRelaySense(pin, factory)
    except HalError as exc:
        return failed(SENSE, f"GPIO{pin} cannot be claimed: {_reason(exc)}", _HELD_FIX)
    try:
        if isinstance(factory, ClockedMockFactory):
            return _check_simulated_sense(config, factory, clock, finger, sense)
        if sense.contact_closed:
            return failed(
                SENSE,
                f"GPIO{pin} reads the relay contact closed with the relay released",
                _SENSE_FIX,
            )
        return passed(SENSE, f"GPIO{pin} reads the relay contact open with the relay released")
    finally:
        sense.close()


def _check_simulated_sense(
    config: GpioConfig,
    factory: ClockedMockFactory,
    clock: Clock,
    finger: SimulatedButton | None,
    sense: GpioRelaySense,
) -> CheckResult:
    pins = config.pins
    heartbeat = config.relay_drive == "heartbeat"
    try:
        relay = GpioRelay(
            pins.relay,
            factory,
            config.relay_drive,
            config.relay_active_high,
            enable_pin=pins.relay_enable if heartbeat else None,
        )
    except HalError as exc:
        return failed(SENSE, f"cannot open the relay to close it: {_reason(exc)}", _HELD_FIX)
    hw: RelayHardware
    if heartbeat:
        hw = HeartbeatRelayHardware(clock, hold_s=config.heartbeat_hold_s).attach(
            factory.observed_pin(pins.relay),
            factory.observed_pin(pins.reset_button),
            enable_pin=factory.observed_pin(pins.relay_enable),
            button_active_low=config.button_pull_up,
        )
    else:
        hw = StaticRelayHardware(clock, active_high=config.relay_active_high).attach(
            factory.observed_pin(pins.relay)
        )
    wire = ContactSense(clock, hw).attach(factory.observed_pin(pins.relay_sense))
    try:
        released = sense.contact_closed
        if finger is not None and heartbeat:
            finger.down()
        for _ in range(3):
            clock.sleep(config.heartbeat_hold_s / 5)
            relay.hold()
        if finger is not None and heartbeat:
            finger.up()
        held = sense.contact_closed
        relay.release()
        after = sense.contact_closed
    finally:
        wire.detach()
        hw.detach()
        relay.close()
    if released or not held or after:
        return failed(
            SENSE,
            f"GPIO{pins.relay_sense} read closed={released} released, closed={held} held, "
            f"closed={after} released again",
            _SENSE_FIX,
        )
    return passed(
        SENSE,
        f"GPIO{pins.relay_sense} reads the relay contact open with the relay released; "
        "follows the simulated contact when it closes and opens",
    )


@contextmanager
def _open_button(config: GpioConfig, factory: Any, clock: Clock) -> Iterator[GpioButton]:
    button = GpioButton(
        config.pins.reset_button,
        factory,
        clock,
        pull_up=config.button_pull_up,
        bounce_s=config.button_bounce_s,
    )
    try:
        yield button
    finally:
        button.close()


def run_gpio_checks(config: GpioConfig, clock: Clock, *, factory: Any | None) -> list[CheckResult]:
    """Factory, each output pin, the reset button (and the help button, when wired), the
    heartbeat drive and the contact sense.

    ``factory`` is the gpiozero pin factory to examine; None builds the one
    the config names (tests pass one with pins already taken). The doctor
    closes a factory it built itself.
    """
    own_factory = factory is None
    try:
        if factory is None:
            factory = make_pin_factory(config, clock)
    except HalError as exc:
        result = failed(FACTORY, str(exc), "see docs/deployment.md, Troubleshooting")
        names = [_pin_name(n) for n, _, _ in output_pins(config)] + [BUTTON, HEARTBEAT, SENSE]
        if config.help_button_wired:
            names.append(HELP_BUTTON)
        return [result, *(blocked(name, FACTORY) for name in names)]
    kind = "simulated pins" if isinstance(factory, ClockedMockFactory) else config.pin_factory
    results = [passed(FACTORY, f"pin factory: {kind}")]
    with ExitStack() as stack:
        if own_factory:
            stack.callback(factory.close)
        results.extend(check_claims(config, factory))
        finger: SimulatedButton | None = None
        if isinstance(factory, ClockedMockFactory):
            finger = SimulatedButton(
                factory.observed_pin(config.pins.reset_button),
                clock,
                active_low=config.button_pull_up,
            )
        try:
            button = stack.enter_context(_open_button(config, factory, clock))
        except HalError as exc:
            pin = config.pins.reset_button
            results.append(
                failed(BUTTON, f"GPIO{pin} cannot be claimed: {_reason(exc)}", _HELD_FIX)
            )
            results.append(blocked(HEARTBEAT, BUTTON))
            results.append(blocked(SENSE, BUTTON))
            return results
        results.append(check_button(button, config, finger))
        if config.help_button_wired:
            results.append(check_help_button(config, factory, clock))
        results.append(
            check_heartbeat(config, factory, clock, finger, reset_pressed=button.is_pressed)
        )
        results.append(check_relay_sense(config, factory, clock, finger))
    return results
