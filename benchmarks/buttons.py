"""What reading the reset button costs the loop per iteration, idle (the usual iteration).

"take_presses" is the read the loop made before press patterns (issue 15); "patterns" is
what it makes now: both queues of the button, the edges passed on to the session, the
recogniser of reset presses and help (:mod:`firmware.presses`). Mock pins, the real
monotonic clock (what the loop reads on a Pi), timeit best of 7.

    .venv/bin/python benchmarks/buttons.py

Prints figures; asserts nothing.
"""

from __future__ import annotations

import timeit

from core.clock import RealClock
from firmware.presses import EdgeFeed, ResetButtonPatterns
from hal.gpio import GpioButton
from sim.pins import ClockedMockFactory

CALLS = 200_000


def main() -> None:
    clock = RealClock()
    factory = ClockedMockFactory(clock)
    button = GpioButton(27, factory, clock)
    patterns, feed = ResetButtonPatterns(), EdgeFeed()

    def take_presses() -> None:
        for _ in button.take_presses():
            pass

    def with_patterns() -> None:
        button.take_presses()
        edges = button.take_edges()
        feed.publish(edges)
        patterns.feed(edges, clock.monotonic(), armable=True)

    for name, fn in (("take_presses", take_presses), ("patterns", with_patterns)):
        best = min(timeit.repeat(fn, number=CALLS, repeat=7)) / CALLS
        print(f"{name:>12}: {best * 1e6:.2f} us per iteration ({best * 200 * 100:.3f} % at 200 Hz)")
    button.close()
    factory.close()


if __name__ == "__main__":
    main()
