"""Press patterns on the one local button: double press and long press.

The button is the safety controller's reset button first: the loop reads it
(:mod:`firmware.presses`) for reset presses — a sequence's first press held
until the chirp — and calls for help (three quick presses), then passes its
edges on. Double and long presses only ever mean something to the session:
made entirely while ARMED they steer it, and a double press in STANDBY with
no session under way chooses the next walker (see
:func:`firmware.session.runner.SessionRunner`); the one table of every
pattern is in docs/safety.md, "Button press patterns":

* **double press** — two short presses (each shorter than
  :data:`SHORT_PRESS_S`, the second starting within ``double_gap_s`` of
  letting go of the first, and no third press after it): start, pause or
  resume the session;
* **long press** — held for ``long_press_s`` (2 s by default): stop the
  session. It fires while still held, so the walker feels the "session done"
  cue as confirmation.

A single press while ARMED does nothing for the session. Three or more quick
presses (a call for help, handled by the loop) or a press between short and
long are ignored here, so a fumble does nothing to the session.

This module is pure: edges ``(t, pressed)`` in, :class:`Gesture` out, time
from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SHORT_PRESS_S = 0.6
"""A press held longer than this is not part of a double press."""


class GestureKind(StrEnum):
    DOUBLE = "double"
    LONG = "long"


@dataclass(frozen=True, slots=True)
class Gesture:
    kind: GestureKind
    first_press: float
    """When the first press of the pattern went down (monotonic)."""
    at: float
    """When the pattern was recognised."""
    longest_s: float = 0.0
    """A double press: its longer press (one held to the arming chirp was a reset press)."""


class GestureRecognizer:
    """Turns debounced button edges into double and long presses."""

    def __init__(self, *, double_gap_s: float = 0.6, long_press_s: float = 2.0) -> None:
        if not (double_gap_s > 0 and long_press_s > SHORT_PRESS_S):
            raise ValueError("double_gap_s must be > 0 and long_press_s > the short press")
        self.double_gap_s = double_gap_s
        self.long_press_s = long_press_s
        self._down_at: float | None = None
        self._long_fired = False
        self._strokes: list[tuple[float, float]] = []
        self._spoilt = False
        self._last_up = 0.0

    @property
    def idle(self) -> bool:
        """No press held and no pattern open: :meth:`feed` without edges completes nothing."""
        return self._down_at is None and not self._strokes and not self._spoilt

    def feed(self, edges: list[tuple[float, bool]], now: float) -> list[Gesture]:
        """Take the edges since the last call (oldest first); return what they completed."""
        out: list[Gesture] = []
        for t, pressed in edges:
            self._settle(t, out)
            if pressed:
                self._press(t)
            else:
                self._release(t, out)
        self._settle(now, out)
        return out

    def _press(self, t: float) -> None:
        if self._down_at is not None:
            return  # two presses without a release: keep the first
        self._down_at = t
        self._long_fired = False

    def _release(self, t: float, out: list[Gesture]) -> None:
        down = self._down_at
        if down is None:
            return
        self._down_at = None
        self._last_up = t
        held = t - down
        if self._long_fired:
            return
        if held >= self.long_press_s:
            self._long_fired = True
            self._strokes.clear()
            out.append(Gesture(GestureKind.LONG, down, t))
        elif held <= SHORT_PRESS_S:
            self._strokes.append((down, t))
        else:
            self._spoilt = True  # a press between short and long: ignore the whole pattern

    def _settle(self, now: float, out: list[Gesture]) -> None:
        """Finish a long press still held, and a pattern whose pause has run out."""
        down = self._down_at
        if down is not None and not self._long_fired and now - down >= self.long_press_s:
            self._long_fired = True
            self._strokes.clear()
            self._spoilt = False
            out.append(Gesture(GestureKind.LONG, down, now))
            return
        if down is not None or not (self._strokes or self._spoilt):
            return
        if now - self._last_up <= self.double_gap_s:
            return  # the pattern may still go on
        if len(self._strokes) == 2 and not self._spoilt:
            (first, first_up), (second, second_up) = self._strokes
            if second - first_up <= self.double_gap_s:
                longest = max(first_up - first, second_up - second)
                out.append(Gesture(GestureKind.DOUBLE, first, now, longest))
        self._strokes.clear()
        self._spoilt = False
