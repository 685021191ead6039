"""The demos at ``--speed``: their safety margins and the wall clock people read, one rule
for ``retroguard demo`` and ``retroguard session demo``."""

from __future__ import annotations

import dataclasses
import datetime as dt

from core.clock import Clock, RealClock
from core.wallclock import FakeWallClock
from firmware.config import Config


def at_speed(config: Config, speed: float) -> Config:
    """The hold circuit and the contact debounce in the host's real time, at ``--speed``.

    ``--speed N`` runs the walk, and the clock every component reads, N times
    faster; the host's own hiccups (the scheduler, a garbage collection) stay
    real milliseconds. The hold time and the contact debounce are margins
    against exactly those hiccups, so here they are N times longer in
    simulated time — the same real milliseconds as on a Pi. Otherwise a
    13 ms pause of the host at speed 4 is a 52 ms hang to the simulated hold
    circuit: the latch drops, and the contact feedback reports the fault it
    is, while the walk it is meant to show goes on. Slower than real time
    (N < 1) the simulated margins stay as they are: they are the wider ones.
    """
    factor = max(speed, 1.0)
    gpio = dataclasses.replace(config.gpio, heartbeat_hold_s=config.gpio.heartbeat_hold_s * factor)
    safety = dataclasses.replace(
        config.safety, contact_debounce_s=config.safety.contact_debounce_s * factor
    )
    return dataclasses.replace(config, gpio=gpio, safety=safety)


def demo_wall(clock: Clock) -> FakeWallClock:
    """The demos' wall clock, which stamps their events and sessions: the host's own time at
    any ``--speed``, marked synchronised (a simulated walk says nothing about this host's NTP).

    On the sped-up clock (:class:`~core.clock.RealClock` at ``--speed N``) the monitor's
    stamps ran ahead of the host's by N - 1 times the time elapsed, and what a person reads
    mixed the two: at ``--speed 4`` the dashboard's incident page said "Since 13:28:16" (the
    service's receipt, on the host's clock) over its first step at 13:28:57 (the monitor's
    stamp), and the courier's own events (a caregiver's acknowledgement, stamped on the host's
    clock) came before the fall they closed. Timing never reads this clock (the loop, the
    plan's intervals: the sped-up monotonic one); its offset from the host's monotonic clock
    is fixed, so a session sees no step of it. A simulated clock (tests) keeps the walk's time:
    it runs apart from the host's."""
    people = RealClock() if isinstance(clock, RealClock) else clock
    return FakeWallClock(people, dt.datetime.now(dt.UTC), synced=True)
