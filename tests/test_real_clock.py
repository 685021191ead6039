"""The real clock: the host's monotonic clock at full speed, a scaled one for the demo."""

from __future__ import annotations

import threading
import time

from core.clock import Clock, RealClock


def test_at_full_speed_it_is_the_hosts_monotonic_clock() -> None:
    clock = RealClock()
    before = time.monotonic()
    now = clock.monotonic()
    after = time.monotonic()
    assert before <= now <= after
    assert isinstance(clock, Clock)


def test_a_faster_clock_counts_scaled_seconds() -> None:
    clock = RealClock(speed=1000.0)
    first = clock.monotonic()
    assert not clock.wait(threading.Event(), 5.0)  # 5 ms of the host's time
    assert clock.monotonic() - first >= 5.0
