"""Clocks: the real monotonic clock and a simulated one for tests.

Every timing decision in RetroGuard reads a :class:`Clock`, never
``time.time()``. Simulated backends and the real-time loop share one clock
object, so tests run hours of simulated walking in milliseconds with no real
sleeps, and the demo runs the very same code on the real clock.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
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

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait up to ``timeout`` of this clock's seconds for ``event``; True if it is set.

        Another thread (a GPIO edge callback) sets the event; the waiter
        blocks without spinning.
        """
        ...


class RealClock:
    """The host's monotonic clock, optionally scaled to run faster.

    ``speed`` > 1 makes sleeps shorter and time pass faster, so the demo's
    ``--speed`` runs the whole monitor faster than real time without touching
    any component's logic. At full speed :meth:`monotonic` *is* the host's
    ``time.monotonic`` (its origin, not this clock's creation): the loop, the
    IMU driver and the hooks read the clock some twenty times a wake, and a C
    function costs half a Python method that subtracts and scales.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin = time.monotonic()
        if speed == 1.0:
            self.monotonic = time.monotonic  # type: ignore[method-assign]

    def monotonic(self) -> float:
        return (time.monotonic() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if timeout <= 0:
            return event.is_set()
        return event.wait(timeout / self.speed)


class SimClock:
    """A clock that only moves when someone sleeps on it or advances it.

    ``sleep`` advances time instantly, so single-threaded simulations are
    deterministic. Thread-safe: other threads may read it at any time.

    Simulated hardware that acts on its own schedule (a sensor raising its
    data-ready line every sample period) registers actions with
    :meth:`call_at`; advancing the clock runs each one at its own instant,
    in time order, in the advancing thread. :meth:`wait` advances from one
    such instant to the next until the event is set, so a loop waiting for
    an edge is woken exactly when the simulated chip makes it.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

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
            target = self._now + seconds
        self._run_until(target)

    def call_at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action()`` when the clock reaches ``when`` (at once on the next advance if
        ``when`` has passed). Actions run in the thread that advances the clock."""
        with self._lock:
            heapq.heappush(self._timers, (when, next(self._order), action))

    def wait(self, event: threading.Event, timeout: float) -> bool:
        with self._lock:
            deadline = self._now + max(0.0, timeout)
        while not event.is_set():
            with self._lock:
                due = self._timers[0][0] if self._timers else None
                now = self._now
            last = due is None or due > deadline
            target = deadline if due is None or last else max(due, now)
            if target > now:
                self.advance(target - now)  # through advance(): subclasses that hook it see it
            self._run_until(target)  # exactly there, whatever the float sum above gave
            if last:
                return event.is_set()
        return True

    def _run_until(self, target: float) -> None:
        """Move to ``target``, stopping at each timer on the way to run it."""
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > target:
                    self._now = max(self._now, target)
                    return
                when, _, action = heapq.heappop(self._timers)
                self._now = max(self._now, when)
            action()


def since_boot() -> float:
    """Seconds since boot, counting the time the machine was suspended (Linux's
    ``CLOCK_BOOTTIME``; the monotonic clock elsewhere).

    What a step of the wall clock is measured against (:class:`WallSteps`). The monotonic
    clock stops while the machine sleeps (a laptop serving a household, a VM paused) and the
    wall clock does not, so against it a sleep of an hour read as the wall clock stepped an
    hour forward, and the timers due during the sleep were moved an hour on instead of going
    out on waking."""
    return time.clock_gettime(_BOOT_CLOCK)


_BOOT_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)

CLOCK_STEP_S = 2.0
"""A change this large of the wall clock against the time since boot between two looks (a
second or so apart) is a step — NTP correcting a wrong clock, ``date -s`` — not its slewing
(at most 0.5 ms a second)."""


class WallSteps:
    """Measures steps of a wall clock against a clock that does not step (:func:`since_boot`).

    For deadlines that must be wall times (stored, shared by processes or machines, read after
    a restart): whoever keeps them moves them by each step it measures, so a clock stepped
    back an hour holds nothing for an hour more, and one stepped forward fires nothing early.
    """

    def __init__(self, wall: Callable[[], float], boot: Callable[[], float] = since_boot) -> None:
        self.wall = wall
        self.boot = boot
        self._offset: float | None = None

    def look(self) -> tuple[float, float, float]:
        """``(now, offset, step)``: the wall time, the wall clock minus ``boot``, and the step
        since the offset last adopted (0.0 below :data:`CLOCK_STEP_S`, or with none adopted).
        Call :meth:`adopt` with ``offset`` once the step has been applied."""
        now = self.wall()
        offset = now - self.boot()
        if self._offset is None or abs(offset - self._offset) < CLOCK_STEP_S:
            return now, offset, 0.0
        return now, offset, offset - self._offset

    def adopt(self, offset: float) -> None:
        """``offset`` (from :meth:`look`) is the frame the deadlines are in now."""
        self._offset = offset

    @property
    def adopted(self) -> bool:
        """Whether an offset is adopted: a step can be measured at the next :meth:`look`."""
        return self._offset is not None

    def forget(self) -> None:
        """Someone else keeps the deadlines meanwhile: a step seen next is not ours to apply."""
        self._offset = None
