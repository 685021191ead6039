"""``retroguard safe-outputs``: drive the relay lines and the buzzer to their released levels.

systemd runs this as the unit's ``ExecStopPost=``, which it does however the
main process ended — a clean stop, a crash, a watchdog ``SIGABRT`` or a
``SIGKILL``. By then the kernel has taken the dead process's GPIO lines
back, so this short-lived process can claim them and drive:

1. ``relay_enable`` (heartbeat wiring only) low first — the 74HC123's
   active-low CLR — so the hold timer is cleared before anything else
   happens, and no edge written in step 2 can retrigger it;
2. ``relay`` to its released level (``not relay_active_high``): no edges,
   and with static wiring the coil driver off;
3. ``buzzer`` silent.

It then exits and the pins are handed back. This is belt and braces, not the
guarantee: released pins float, and what holds the relay open from then on
is the pull-down resistors of ``wiring/README.md`` (and, with heartbeat
wiring, the monostable lapsing and the latch needing a person's press). What
this command adds is an active, logged "outputs are safe" at every stop, and
a non-zero exit — visible in the journal and in the unit's result — when a
line could not be claimed (someone else still holds it).

It goes through the HAL's own device classes and pin factories (the firmware
never imports a GPIO library), from the same config file the service runs.
A config that does not load is reported and nothing is driven: without it we
do not know which pins are ours, and the main process could not have run
with it either.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hal.config import GpioConfig

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/retroguard/config.toml")


@dataclass(frozen=True, slots=True)
class SafeLine:
    """One output line and the electrical level that makes it safe."""

    name: str
    pin: int
    level: bool
    """True = high. The released level, whatever the line's polarity."""


def released_lines(gpio: GpioConfig) -> list[SafeLine]:
    """The lines to force, in the order they must be forced (see the module docstring)."""
    pins = gpio.pins
    lines = []
    if gpio.relay_drive == "heartbeat":
        lines.append(SafeLine("relay_enable", pins.relay_enable, False))
    lines.append(SafeLine("relay", pins.relay, not gpio.relay_active_high))
    lines.append(SafeLine("buzzer", pins.buzzer, not gpio.buzzer_active_high))
    return lines


def _open_line(gpio: GpioConfig, line: SafeLine, factory: Any) -> Any:
    """Open ``line`` with the HAL device that owns it; each opens at its released level.

    The enable line is a plain level output whose active level (high) lets
    the hold timer run, i.e. a statically driven, active-high relay line.
    """
    from hal.gpio import GpioBuzzer, GpioRelay

    if line.name == "relay":
        return GpioRelay(line.pin, factory, "static", gpio.relay_active_high)
    if line.name == "relay_enable":
        return GpioRelay(line.pin, factory, "static", True)
    return GpioBuzzer(line.pin, factory, gpio.buzzer_active_high)


def force_released(gpio: GpioConfig, factory: Any) -> list[tuple[SafeLine, str | None]]:
    """Drive every line of :func:`released_lines` with the pin factory ``factory``.

    Returns each line with None (driven) or the reason it could not be. A
    failure does not stop the lines after it.
    """
    results: list[tuple[SafeLine, str | None]] = []
    for line in released_lines(gpio):
        try:
            device = _open_line(gpio, line, factory)
        except Exception as exc:
            results.append((line, str(exc) or type(exc).__name__))
            continue
        device.close()
        results.append((line, None))
    return results


def _real_factory(gpio: GpioConfig) -> Any:
    from hal.gpio import pin_factory_for

    return pin_factory_for(gpio.pin_factory)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``safe-outputs`` on the CLI's subparsers (``run`` is its handler)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "safe-outputs",
        help="drive the relay lines and buzzer to their released levels (systemd ExecStopPost)",
        description=(
            "Drive relay_enable (heartbeat wiring) low, the relay pin and the buzzer to their "
            "released levels, then exit. Run by systemd after the monitor stops, however it "
            "stopped. Exit 0 when every line was driven, 1 when one could not be claimed, "
            "2 when the config does not load."
        ),
    )
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"TOML config file naming the pins (default: {DEFAULT_CONFIG})",
    )
    parser.set_defaults(func=run)
    return parser


def run(
    args: argparse.Namespace,
    *,
    make_factory: Callable[[GpioConfig], Any] = _real_factory,
) -> int:
    """Load the config, force the lines, print one line per pin; exit status as documented."""
    from core.errors import ConfigError
    from firmware.config import load_config

    try:
        gpio = load_config(args.config).gpio
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"safe-outputs: {problem}", file=sys.stderr)
        print("safe-outputs: no pins driven (the hardware pull-downs hold them)", file=sys.stderr)
        return 2
    if gpio.backend == "simulated":
        print("safe-outputs: gpio backend is 'simulated'; no real pins to drive")
        return 0
    try:
        factory = make_factory(gpio)
    except Exception as exc:
        print(f"safe-outputs: cannot open the GPIO pin factory: {exc}", file=sys.stderr)
        return 1
    try:
        results = force_released(gpio, factory)
    finally:
        try:
            factory.close()
        except Exception:
            log.exception("closing the pin factory failed")
    failed = 0
    for line, why_not in results:
        level = "high" if line.level else "low"
        if why_not is None:
            print(f"safe-outputs: {line.name} GPIO{line.pin} driven {level} (released)")
        else:
            failed += 1
            print(
                f"safe-outputs: {line.name} GPIO{line.pin} NOT driven: {why_not}",
                file=sys.stderr,
            )
    return 1 if failed else 0
