"""The bounds of the demos' ``--speed`` (``retroguard demo``, ``retroguard session demo``) and
``--scale`` (``session demo``), in a module of their own: the command line states them in
``--help`` without importing the demos, and the demos refuse values outside them (exit 2,
naming the option and the bound) before anything starts.

Each bound is where the demo stops being one: a clock so slow, or a plan so stretched, that
the demo runs for hours or for ever (``--speed 1e-300`` was a traceback, ``--scale 1e-300``
ran for ever); a clock so fast the host cannot keep up with the simulated sensor; a plan so
compressed its intervals pass between loop iterations and its cue times come out wrong.
"""

from __future__ import annotations

MIN_SPEED = 0.1
"""The slowest ``--speed``: slower, and the demos' minutes crawl (``retroguard demo``'s 72 s of
walking take over 12 minutes); at 1e-300 a wait of the scaled clock is longer than the host's
timer holds (a traceback, not a demo)."""
MAX_SPEED = 10.0
"""The fastest ``--speed``: faster, and the host cannot keep up with the simulated sensor:
2,000 loop iterations a second of real time, and the FIFO's 425 ms of simulated time last
under 43 ms of real time."""
MIN_SCALE = 1.0
"""The smallest ``--scale``: the plan in real time (its 30 minutes last 30 minutes of the
demo's clock). Smaller stretches the plan beyond what it prescribes (a 180-minute plan at
0.1 lasts 30 hours); at 1e-300 the demo runs for ever."""
MAX_SCALE = 600.0
"""The largest ``--scale``: a 30-minute plan in 3 s, its shortest possible interval (10 s) in
17 ms, a few iterations of the monitor loop. Larger, intervals pass between iterations, no
step is measured in them, and at 1e9 the cue times printed are nonsense (``[168596:47]``)."""

SPEED_HELP = f"times faster than real time, {MIN_SPEED:g} to {MAX_SPEED:g} (default 1)"
SCALE_HELP = (
    f"demo: how many times faster the plan runs than written, {MIN_SCALE:g} (real time) to "
    f"{MAX_SCALE:g} (default 60: a plan minute a second)"
)


def speed_problem(speed: float) -> str | None:
    """Why ``--speed`` cannot be used, or None (NaN fails every comparison: refused too)."""
    if not speed > 0:
        return "--speed must be a positive number"
    if speed > MAX_SPEED:
        return f"--speed above {MAX_SPEED:g} outruns the monitor loop"
    if speed < MIN_SPEED:
        return f"--speed below {MIN_SPEED:g} is too slow to watch"
    return None


def scale_problem(scale: float) -> str | None:
    """Why ``--scale`` cannot be used, or None."""
    if not MIN_SCALE <= scale <= MAX_SCALE:  # NaN too
        return (
            f"--scale must be {MIN_SCALE:g} (the plan in real time) to {MAX_SCALE:g} "
            f"(a minute of plan in 0.1 s), not {scale:g}"
        )
    return None
