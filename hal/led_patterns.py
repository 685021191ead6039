"""Status-LED patterns as data: what the walker and a technician read off the one LED.

The same :class:`~hal.buzzer_patterns.Pattern` timeline as the buzzer (so tests
compare a pin's history with :meth:`Pattern.edges`), but a separate vocabulary:
the LED shows a *state*, for as long as it lasts, where the buzzer plays
*events*. The patterns differ in rhythm, not only in speed, so they can be told
apart at a glance from the treadmill; the slow ones repeat every 2 s.

One table, :data:`LEDS`: each pattern with what it looks like and what it means,
in words. :data:`LED_PATTERNS` (what the LED drives) and :data:`LOOKS` (what the
demo prints) are read from it, so the words cannot be those of another pattern;
a test reads each ``looks`` against its pattern's timeline (the flashes and dark
blips it counts, its rate, its period) and against the Status LED table of
docs/sessions.md, the one the walker's and the wiring docs point to. (The words
and the docs once said "even 1 Hz blink: starting" while the same blink also
showed STANDBY with the sensor-worn check still measuring: wait, a press is refused.)

"Lit" means "the belt is protected": every pattern shown while ARMED is lit at least two
thirds of the time (steady, or broken by dark blips or, for ``rest``, one longer dark gap),
every other at most half. No two patterns are alike to a glance: not the same rhythm with
flashes and gaps within a factor 2 of each other, nor the same share lit at a period at most
twice the other's (tests/test_led_patterns.py). ``rest`` was an even 1 s on, 1 s off blink:
half dark during a rest, and ``starting``'s blink at half speed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hal.buzzer_patterns import Pattern


@dataclass(frozen=True, slots=True)
class LedPattern:
    """One status-LED pattern, with its words."""

    pattern: Pattern
    looks: str
    """What the LED does, in the few words a test reads against :attr:`pattern`'s timeline
    (``tests/test_led_patterns.py``): "steady on", "even 1 Hz blink", "one short flash every
    2 s", "on, two short dark blips every 2 s", "on, dark 0.6 s every 2 s"..."""
    means: str
    """What the walker (or a technician) should take from it."""

    def __str__(self) -> str:
        return f"{self.looks}: {self.means}"


LEDS: Mapping[str, LedPattern] = MappingProxyType(
    {
        led.pattern.name: led
        for led in (
            LedPattern(
                Pattern("starting", ((0.5, 0.5),), repeat=True, priority=0),
                "even 1 Hz blink",
                # Not only STARTING: STANDBY while the sensor-worn check has no verdict, and a
                # press refused as still measuring (firmware/status_light.py).
                "starting, or still checking the sensor: wait, then press reset",
            ),
            LedPattern(
                Pattern("standby", ((0.1, 1.9),), repeat=True, priority=0),
                "one short flash every 2 s",
                "press reset to arm",
            ),
            LedPattern(
                Pattern(
                    "not_worn",
                    ((0.15, 0.15), (0.15, 0.15), (0.15, 1.25)),
                    repeat=True,
                    priority=0,
                ),
                "three short flashes every 2 s",
                "the sensor shows no body",
            ),
            LedPattern(
                Pattern("armed", ((2.0, 0.0),), repeat=True, priority=0),
                "steady on",
                "the belt is protected",
            ),
            LedPattern(
                Pattern("walk_backward", ((1.6, 0.1), (0.1, 0.2)), repeat=True, priority=0),
                "on, two short dark blips every 2 s",
                "walk backward",
            ),
            LedPattern(
                Pattern("walk_forward", ((1.8, 0.2),), repeat=True, priority=0),
                "on, one short dark blip every 2 s",
                "walk forward",
            ),
            # Lit, as ARMED is during a rest, with a dark gap three times a forward blip's.
            # It was an even 1 s on, 1 s off blink: half dark, the ``starting`` blink at half
            # speed, where "lit" is the walker's sign that the belt is protected.
            LedPattern(
                Pattern("rest", ((1.4, 0.6),), repeat=True, priority=0),
                "on, dark 0.6 s every 2 s",
                "rest, the belt is protected",
            ),
            # Lit with a dark blip three times a second: mostly lit, as every ARMED pattern is.
            # It was the 5 Hz 0.1/0.1 flashing of ``tripped``: for 3 s after every interval
            # change the LED said "tripped, the belt stopped" to anyone looking at it.
            LedPattern(
                Pattern("interval_change", ((0.2, 0.1),) * 10, repeat=False, priority=0),
                "on, a short dark blip every 0.3 s, for 3 s",
                "a new interval",
            ),
            LedPattern(
                Pattern("tripped", ((0.1, 0.1),), repeat=True, priority=0),
                "fast 5 Hz flashing",
                "tripped, the belt stopped",
            ),
            LedPattern(
                Pattern("fault", ((0.2, 0.2), (0.2, 1.4)), repeat=True, priority=0),
                "double flash every 2 s",
                "fault, the monitor cannot watch",
            ),
        )
    }
)
"""Every pattern the status LED shows, by name, with its words."""

LED_PATTERNS: Mapping[str, Pattern] = MappingProxyType(
    {name: led.pattern for name, led in LEDS.items()}
)
"""Every pattern the status LED shows, by name."""

LOOKS: Mapping[str, str] = MappingProxyType({name: str(led) for name, led in LEDS.items()})
"""What each pattern looks like and means, in words (the demo prints these)."""
