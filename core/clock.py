"""Clocks: the real monotonic clock and a simulated one for tests.

Every timing decision in RetroGuard reads a :class:`Clock`, never
``time.time()``. Simulated backends and the real-time loop share one clock
object, so tests run hours of simulated walking in milliseconds with no real
sleeps, and the demo runs the very same code on the real clock.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Monotonic time source that can also wait."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (returns at once if <= 0)."""
        ...


class RealClock:
    """The host's monotonic clock, optionally scaled to run faster.

    ``speed`` > 1 makes sleeps shorter and time pass faster, so the demo's
    ``--speed`` runs the whole monitor faster than real time without touching
    any component's logic.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin = time.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)


class SimClock:
    """A clock that only moves when someone sleeps on it or advances it.

    ``sleep`` advances time instantly, so single-threaded simulations are
    deterministic. Thread-safe: other threads may read it at any time.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go backwards")
        with self._lock:
            self._now += seconds
