"""The status LED, driven from the loop: which pattern shows the monitor's state now.

An ``on_iteration`` hook (:class:`StatusLight`) reads the safety controller's
state and reason and, when a guided session is attached, which interval is
running; it picks a pattern of :data:`hal.led_patterns.LED_PATTERNS` and lets
the LED's pattern stepper set the pin. No thread and no timer: the pin changes
only inside :meth:`StatusLight.tick`, at the loop's clock, like the buzzer's, every
:data:`STEP_S` (25 ms): one wake in four at the default 100 wakes a second, one
comparison on the others, and an LED that fails to switch is logged once and never
stops it.

Precedence (first match wins):

1. a reason that starts "sensor not worn" outside ARMED (a refused arming in
   STANDBY, the FAULT of a sensor that fell off): ``not_worn`` — but a press refused
   because the check is still measuring (the first seconds after a start or a fault, the
   sensor perhaps worn) shows ``starting``, as its words say to wait;
2. FAULT: ``fault``; TRIPPED: ``tripped``; STARTING: ``starting``; STANDBY: ``standby``,
   but ``starting`` while the sensor-worn check has no verdict yet (``measuring``: the
   first 4 s after a start or a fault, when a press is refused as still measuring; the
   ``standby`` "press reset to arm" showed from 0.5 s after a start);
3. ARMED: for 3 s after a session interval began ``interval_change``, then the
   interval's pattern (``walk_backward``, ``walk_forward``, ``rest``); without a
   running session ``armed`` (steady).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from core.protocol.messages import SENSOR_NOT_WORN, Direction
from firmware.safety import STILL_MEASURING_REASON, SafetyState
from hal.buzzer_patterns import Pattern
from hal.led_patterns import LED_PATTERNS

if TYPE_CHECKING:
    from firmware.monitor import Monitor

log = logging.getLogger(__name__)

IntervalNow = Callable[[], tuple[int, Direction] | None]
"""The running session interval as ``(index, direction)``, None when no interval runs."""

STEP_S = 0.025
"""The LED is stepped every 25 ms, not every loop iteration (10 ms at the default 100 wakes a
second, 5 ms at 200): its patterns change on a 50 ms grid from their start, which the steps
(on a 25 ms grid from the same start) meet, so an edge still shows at the first iteration
after it; a new state shows within 25 ms, which an eye does not see. The loop touches the LED
on one wake in four (it was every wake at 10 ms and 100 wakes a second)."""

_INTERVAL_PATTERN: dict[str, str] = {
    "backward": "walk_backward",
    "forward": "walk_forward",
    "rest": "rest",
}


class Led(Protocol):
    """What the light needs of the LED (:class:`hal.gpio.GpioStatusLed`)."""

    def show(self, pattern: Pattern, now: float) -> None: ...


class SafetyView(Protocol):
    @property
    def state(self) -> SafetyState: ...

    @property
    def reason(self) -> str: ...

    @property
    def measuring(self) -> bool:
        """The sensor-worn check has no verdict yet (read in STANDBY only)."""
        ...


_STATE_PATTERN: dict[SafetyState, str] = {
    SafetyState.FAULT: "fault",
    SafetyState.TRIPPED: "tripped",
    SafetyState.STARTING: "starting",
    SafetyState.STANDBY: "standby",
}


def safety_pattern(state: SafetyState, reason: str, measuring: bool = False) -> str | None:
    """The pattern the safety state alone asks for; None in ARMED (the session decides).
    ``measuring``: the sensor-worn check has no verdict yet (STANDBY shows ``starting``)."""
    if state is SafetyState.ARMED:
        return None
    if reason.startswith(SENSOR_NOT_WORN):
        return "starting" if reason == STILL_MEASURING_REASON else "not_worn"
    if measuring and state is SafetyState.STANDBY:
        return "starting"
    return _STATE_PATTERN.get(state)


class StatusLight:
    """Shows the monitor's state on the status LED; add it to ``monitor.on_iteration``.

    ``interval_now`` is set by :func:`firmware.session.runner.attach_session`
    (None: no session, ARMED shows steady). :attr:`shown` keeps the last 256 changes of
    pattern, ``(time, name)``, for the demo and the tests; each at a later time than the one
    before (a change starts a :data:`STEP_S` wait), which is how a reader finds the new ones.
    """

    FLASH_S = LED_PATTERNS["interval_change"].period

    def __init__(self, led: Led, safety: SafetyView) -> None:
        self._led = led
        self._safety = safety
        self.interval_now: IntervalNow | None = None
        self.flash_s = self.FLASH_S
        """How long a new interval flickers (a time-compressed demo shortens it)."""
        self.shown: deque[tuple[float, str]] = deque(maxlen=256)
        self._interval: tuple[int, Direction] | None = None
        self._flash_until = float("-inf")
        self._due = float("-inf")
        self._failed = False
        self._name: str | None = None
        """The pattern shown now (:attr:`pattern`, without reading :attr:`shown`)."""

    @property
    def pattern(self) -> str | None:
        """The pattern shown now (None before the first tick)."""
        return self._name

    def __call__(self, monitor: Monitor) -> None:
        """The ``on_iteration`` hook: :meth:`tick`, whose "not due yet" (three wakes in four)
        is answered here without the call."""
        now = monitor.clock.monotonic()
        if now >= self._due:
            self.tick(now)

    def choose(self, now: float) -> str:
        """The pattern for ``now`` (and note a new session interval, for its flash)."""
        interval = self.interval_now() if self.interval_now is not None else None
        if interval is not None and interval != self._interval:
            self._flash_until = now + self.flash_s
        self._interval = interval
        safety = self._safety
        state = safety.state
        # ``measuring`` read in STANDBY only: one more read there, none in ARMED.
        by_safety = safety_pattern(
            state, safety.reason, state is SafetyState.STANDBY and safety.measuring
        )
        if by_safety is not None:
            return by_safety
        if interval is None:
            return "armed"
        if now < self._flash_until:
            return "interval_change"
        return _INTERVAL_PATTERN[interval[1]]

    def tick(self, now: float) -> None:
        """One loop iteration: every :data:`STEP_S`, choose and step the LED's pattern to
        ``now``; in between, one comparison. Never raises."""
        if now < self._due:
            return
        name = self.choose(now)
        if name != self._name:
            self._name = name
            self.shown.append((now, name))
            self._due = now + STEP_S  # a new pattern starts now: its steps count from here
        else:
            # From the last due time, not from now: the steps stay on their grid however the
            # loop's iterations fall, so an edge is shown at most one step late.
            self._due = max(self._due + STEP_S, now - STEP_S)
        try:
            self._led.show(LED_PATTERNS[name], now)
        except Exception:  # an LED problem must never stop the loop
            if not self._failed:
                log.exception("status LED failed (the monitor goes on without it)")
                self._failed = True
