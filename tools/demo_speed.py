"""The demos' safety margins at ``--speed``: one rule for ``retroguard demo`` and
``retroguard session demo``."""

from __future__ import annotations

import dataclasses

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
