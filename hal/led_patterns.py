"""Status-LED patterns as data: what the walker and a technician read off the one LED.

The same :class:`~hal.buzzer_patterns.Pattern` timeline as the buzzer (so tests
compare a pin's history with :meth:`Pattern.edges`), but a separate vocabulary:
the LED shows a *state*, for as long as it lasts, where the buzzer plays
*events*. All patterns repeat every 2 s (except ``interval_change``, a 3 s
flash) and differ in rhythm, not only in speed, so they can be told apart at
a glance from the treadmill:

=================  ==========================================  ===========================
name               looks like                                  shown when
=================  ==========================================  ===========================
``starting``       even 1 Hz blink                             starting, or checking the sensor
``standby``        one short flash every 2 s                   STANDBY: press reset to arm
``not_worn``       three short flashes every 2 s               the sensor shows no body
``armed``          steady on                                   ARMED (no session running)
``walk_backward``  on, two short dark blips every 2 s          ARMED, backward interval
``walk_forward``   on, one short dark blip every 2 s           ARMED, forward interval
``rest``           slow blink, 1 s on 1 s off                  ARMED, rest interval
``interval_change`` on, dark blips three times a second, 3 s    a session interval began
``tripped``        fast 5 Hz flashing (the buzzer's alarm)     TRIPPED: a fall was caught
``fault``          double flash every 2 s                      FAULT: the monitor cannot watch
=================  ==========================================  ===========================

Dark-blip patterns keep the LED mostly lit while armed, so "lit" always means
"the belt is protected"; every other state is mostly dark.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from hal.buzzer_patterns import Pattern

LED_PATTERNS: Mapping[str, Pattern] = MappingProxyType(
    {
        p.name: p
        for p in (
            Pattern("starting", ((0.5, 0.5),), repeat=True, priority=0),
            Pattern("standby", ((0.1, 1.9),), repeat=True, priority=0),
            Pattern(
                "not_worn", ((0.15, 0.15), (0.15, 0.15), (0.15, 1.25)), repeat=True, priority=0
            ),
            Pattern("armed", ((2.0, 0.0),), repeat=True, priority=0),
            Pattern("walk_backward", ((1.6, 0.1), (0.1, 0.2)), repeat=True, priority=0),
            Pattern("walk_forward", ((1.8, 0.2),), repeat=True, priority=0),
            Pattern("rest", ((1.0, 1.0),), repeat=True, priority=0),
            # Lit with a dark blip three times a second: mostly lit, as every ARMED pattern is.
            # It was the 5 Hz 0.1/0.1 flashing of ``tripped``: for 3 s after every interval
            # change the LED said "tripped, the belt stopped" to anyone looking at it.
            Pattern("interval_change", ((0.2, 0.1),) * 10, repeat=False, priority=0),
            Pattern("tripped", ((0.1, 0.1),), repeat=True, priority=0),
            Pattern("fault", ((0.2, 0.2), (0.2, 1.4)), repeat=True, priority=0),
        )
    }
)
"""Every pattern the status LED shows, by name."""

LOOKS: Mapping[str, str] = MappingProxyType(
    {
        "starting": "even 1 Hz blink: starting",
        "standby": "one short flash every 2 s: press reset to arm",
        "not_worn": "three short flashes every 2 s: the sensor is not worn",
        "armed": "steady on: the belt is protected",
        "walk_backward": "on, two dark blips every 2 s: walk backward",
        "walk_forward": "on, one dark blip every 2 s: walk forward",
        "rest": "slow blink: rest",
        "interval_change": "on, three dark blips a second: a new interval",
        "tripped": "fast flashing: tripped, the belt stopped",
        "fault": "double flash every 2 s: fault, the monitor cannot watch",
    }
)
"""What each pattern looks like and means, in words (the demo prints these)."""
