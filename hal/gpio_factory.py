"""Open the relay, its contact sense, buzzer, button and status LED from a :class:`GpioConfig`.

The one place where the GPIO backend is chosen, once, at start-up:

* ``backend="gpiozero"``: a real pin factory by ``config.pin_factory``
  (:func:`hal.gpio.pin_factory_for`); no circuit model, the hardware is real.
* any other name is looked up in :data:`hal.backends.GPIO_BACKENDS`. The
  simulation registers ``"simulated"``: gpiozero mock pins on the shared
  clock under the very same device classes (:func:`open_gpio_on`), plus a
  model of the circuit outside the Pi.

The firmware sees only the :mod:`hal.interfaces` protocols.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from core.clock import Clock
from hal.backends import GPIO_BACKENDS, load_backend
from hal.config import GpioConfig
from hal.gpio import (
    GpioButton,
    GpioBuzzer,
    GpioRelay,
    GpioRelaySense,
    GpioStatusLed,
    pin_factory_for,
)
from hal.interfaces import Button, Buzzer, Relay, RelaySense

log = logging.getLogger(__name__)


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
    relay_sense: RelaySense | None = None
    """The relay's contact read back; None when ``gpio.relay_sense_wired`` is false."""
    help_button: Button | None = None
    """The dedicated help button; None when ``gpio.help_button_wired`` is false."""

    def close(self) -> None:
        """Release the relay first, then everything else. Idempotent; never raises."""
        self.relay.close()
        parts = (self.relay_sense, self.buzzer, self.status_led, self.button, self.help_button)
        for part in parts:
            if part is None:
                continue
            try:
                part.close()
            except Exception:
                log.exception("closing %r failed", part)
        self._close_models()
        try:
            self.factory.close()
        except Exception:
            log.exception("closing the pin factory failed")

    def _close_models(self) -> None:
        """Backends with models of the world outside the Pi detach them here."""

    def __enter__(self) -> GpioDevices:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_gpio(config: GpioConfig, clock: Clock) -> GpioDevices:
    """Open the GPIO devices ``config`` describes; :class:`hal.HalError` if they cannot be."""
    if config.backend == "gpiozero":
        return open_gpio_on(pin_factory_for(config.pin_factory), config, clock)
    return cast(GpioDevices, load_backend(GPIO_BACKENDS, config.backend)(config, clock))


def open_gpio_on(factory: Any, config: GpioConfig, clock: Clock) -> GpioDevices:
    """Open the devices on the gpiozero pin ``factory`` (which they then own).

    The relay is opened first, released, so that whatever fails afterwards
    leaves it in the safe state; on failure everything already opened is
    closed again, and the factory too, before the error propagates.
    """
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
        help_button: Button | None = None
        if config.help_button_wired:
            help_button = GpioButton(
                pins.help_button,
                factory,
                clock,
                pull_up=config.button_pull_up,
                bounce_s=config.button_bounce_s,
                what="help button",
            )
            opened.append(help_button)
        sense: RelaySense | None = None
        if config.relay_sense_wired:
            sense = GpioRelaySense(pins.relay_sense, factory)
            opened.append(sense)
    except BaseException:
        for part in opened:
            part.close()
        try:
            factory.close()
        except Exception:
            log.exception("closing the pin factory failed")
        raise
    return GpioDevices(
        relay=relay,
        buzzer=buzzer,
        button=button,
        status_led=led,
        factory=factory,
        relay_sense=sense,
        help_button=help_button,
    )


open_outputs = open_gpio
"""The name the GPIO issue asked for; :func:`open_gpio` is the one the firmware uses."""
