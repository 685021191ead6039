"""Open the relay, buzzer, reset button and status LED from a :class:`GpioConfig`.

The one place where the GPIO backend is chosen, once, at start-up:

* ``backend="gpiozero"``: a real pin factory by ``config.pin_factory``
  (:func:`hal.gpio.pin_factory_for`); no circuit model, the hardware is real.
* ``backend="simulated"``: a :class:`~hal.sim.pins.ClockedMockFactory` on
  the shared clock, the very same gpiozero-backed device classes, plus a model
  of the circuit outside the Pi — :class:`HeartbeatRelayHardware` or
  :class:`StaticRelayHardware` per ``config.relay_drive`` — and a
  :class:`SimulatedButton` to press the reset button with.

The firmware sees only the :mod:`hal.interfaces` protocols; tests and the
demo also read ``hardware`` to learn whether the treadmill would be running.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hal.clock import Clock
from hal.config import GpioConfig
from hal.gpio import GpioButton, GpioBuzzer, GpioRelay, GpioStatusLed, pin_factory_for
from hal.interfaces import Button, Buzzer, Relay
from hal.sim.pins import ClockedMockFactory
from hal.sim.relay_hardware import (
    HeartbeatRelayHardware,
    RelayHardware,
    SimulatedButton,
    StaticRelayHardware,
)

log = logging.getLogger(__name__)

SIM_MAX_PIN_STATES = 100_000
"""History kept per simulated pin: hours of heartbeat would otherwise grow without bound."""


@dataclass(slots=True)
class GpioDevices:
    """Everything :func:`open_gpio` opened.

    Close it (or use ``with``): the relay is released first.
    """

    relay: Relay
    buzzer: Buzzer
    button: Button
    status_led: GpioStatusLed
    factory: Any
    """The gpiozero pin factory the devices share."""
    hardware: RelayHardware | None = None
    """The simulated circuit outside the Pi; None on real hardware."""
    button_sim: SimulatedButton | None = None
    """A finger for the simulated reset button; None on real hardware."""

    def close(self) -> None:
        """Release the relay first, then everything else. Idempotent; never raises."""
        self.relay.close()
        for part in (self.buzzer, self.status_led, self.button):
            try:
                part.close()
            except Exception:
                log.exception("closing %r failed", part)
        if self.hardware is not None:
            self.hardware.detach()
        try:
            self.factory.close()
        except Exception:
            log.exception("closing the pin factory failed")

    def __enter__(self) -> GpioDevices:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_gpio(config: GpioConfig, clock: Clock) -> GpioDevices:
    """Open the GPIO devices ``config`` describes; :class:`hal.HalError` if they cannot be.

    The relay is opened first, released, so that whatever fails afterwards
    leaves it in the safe state; on failure everything already opened is
    closed again before the error propagates.
    """
    simulated = config.backend == "simulated"
    if simulated:
        factory: Any = ClockedMockFactory(clock, max_states=SIM_MAX_PIN_STATES)
    elif config.backend == "gpiozero":
        factory = pin_factory_for(config.pin_factory)
    else:
        raise ValueError(f"unknown GPIO backend {config.backend!r}")

    pins = config.pins
    opened: list[Any] = []
    try:
        heartbeat = config.relay_drive == "heartbeat"
        relay = GpioRelay(
            pins.relay,
            factory,
            config.relay_drive,
            config.relay_active_high,
            enable_pin=pins.relay_enable if heartbeat else None,
        )
        opened.append(relay)
        buzzer = GpioBuzzer(pins.buzzer, factory, config.buzzer_active_high)
        opened.append(buzzer)
        button = GpioButton(
            pins.reset_button,
            factory,
            clock,
            pull_up=config.button_pull_up,
            bounce_s=config.button_bounce_s,
        )
        opened.append(button)
        led = GpioStatusLed(pins.status_led, factory)
        opened.append(led)
    except BaseException:
        for part in opened:
            part.close()
        try:
            factory.close()
        except Exception:
            log.exception("closing the pin factory failed")
        raise

    outputs = GpioDevices(
        relay=relay, buzzer=buzzer, button=button, status_led=led, factory=factory
    )
    if simulated:
        # Attach the models after the devices exist: the button's pull-up is
        # configured by its device, and the model reads the levels it finds.
        relay_pin = factory.observed_pin(pins.relay)
        button_pin = factory.observed_pin(pins.reset_button)
        hardware: RelayHardware
        if heartbeat:
            hardware = HeartbeatRelayHardware(clock, hold_s=config.heartbeat_hold_s).attach(
                relay_pin,
                button_pin,
                enable_pin=factory.observed_pin(pins.relay_enable),
                button_active_low=config.button_pull_up,
            )
        else:
            hardware = StaticRelayHardware(clock, active_high=config.relay_active_high).attach(
                relay_pin
            )
        outputs.hardware = hardware
        outputs.button_sim = SimulatedButton(button_pin, clock, active_low=config.button_pull_up)
    return outputs


open_outputs = open_gpio
"""The name the GPIO issue asked for; :func:`open_gpio` is the one the firmware uses."""
