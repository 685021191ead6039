"""Helpers for the MPU-6050 driver and simulation tests: trivial motion sources, a hook clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.clock import SimClock
from sim.motion import Vector6

ADDRESS = 0x68
STANDING: Vector6 = (0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
"""At rest with the sensor's +Z up: 1 g on Z, no rotation."""


@dataclass
class ConstantMotion:
    """The same reading forever (by default standing still, gravity on +Z)."""

    value: Vector6 = STANDING
    duration: float = 1e9

    def at(self, t: float) -> Vector6:
        return self.value


@dataclass
class RampMotion:
    """ax grows with time (g per second), so each sample's value tells when it was taken."""

    slope: float = 0.1
    duration: float = 1e9

    def at(self, t: float) -> Vector6:
        return (self.slope * t, 0.0, 1.0, 0.0, 0.0, 0.0)


class HookClock(SimClock):
    """A SimClock that runs callbacks once the time reaches given instants.

    It plays the outside world: a cable that comes back at t = 0.3 s, say.
    The code under test only ever sleeps on the clock.
    """

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self._hooks: list[tuple[float, Callable[[], None]]] = []

    def at(self, when: float, action: Callable[[], None]) -> None:
        self._hooks.append((when, action))
        self._hooks.sort(key=lambda hook: hook[0])

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        now = self.monotonic()
        while self._hooks and self._hooks[0][0] <= now:
            _, action = self._hooks.pop(0)
            action()
