"""Bridges between traces and motion sources.

:class:`TraceMotion` replays a recorded trace (a SisFall fall, a session
recorded on the treadmill) through the simulated MPU-6050, so the whole
monitor — driver, FIFO, detector, relay — can be tested on real motion.
:func:`sample_motion` goes the other way: it samples any motion source at a
fixed rate, e.g. to write a synthesised scenario as a trace.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

from core.samples import ImuSample
from core.trace import Trace
from sim.motion import MotionSource, Vector6


class TraceMotion:
    """A :class:`MotionSource` that replays samples with linear interpolation.

    Time is relative to the first sample; before it the first sample holds,
    after the last the last one holds (as the protocol asks). Values are the
    trace's sensor-frame readings as they are: replaying a trace recorded in
    another mounting replays that mounting.

    ``at`` is O(1) for the usual monotonically advancing calls (it remembers
    the last interval) and O(log n) for random access.
    """

    __slots__ = ("_i", "_t", "_v", "trace")

    def __init__(self, trace: Trace | Sequence[ImuSample]) -> None:
        samples = trace.samples if isinstance(trace, Trace) else trace
        if not samples:
            raise ValueError("cannot replay an empty trace")
        self.trace = trace if isinstance(trace, Trace) else None
        t0 = samples[0].t
        self._t = [s.t - t0 for s in samples]
        self._v: list[Vector6] = [(s.ax, s.ay, s.az, s.gx, s.gy, s.gz) for s in samples]
        if any(b <= a for a, b in itertools.pairwise(self._t)):
            raise ValueError("sample times must strictly increase")
        self._i = 0

    @property
    def duration(self) -> float:
        return self._t[-1]

    def at(self, t: float) -> Vector6:
        ts = self._t
        if t <= 0.0:
            return self._v[0]
        if t >= ts[-1]:
            return self._v[-1]
        i = self._i
        if not ts[i] <= t < ts[i + 1]:
            i = self._i + 1
            if not (i + 1 < len(ts) and ts[i] <= t < ts[i + 1]):
                i = bisect.bisect_right(ts, t) - 1
            self._i = i
        a, b = self._v[i], self._v[i + 1]
        w = (t - ts[i]) / (ts[i + 1] - ts[i])
        return (
            a[0] + w * (b[0] - a[0]),
            a[1] + w * (b[1] - a[1]),
            a[2] + w * (b[2] - a[2]),
            a[3] + w * (b[3] - a[3]),
            a[4] + w * (b[4] - a[4]),
            a[5] + w * (b[5] - a[5]),
        )


def sample_motion(
    source: MotionSource, rate_hz: float, duration: float | None = None
) -> list[ImuSample]:
    """Sample ``source`` at ``rate_hz`` from t = 0 through ``duration`` (default: all of it).

    Times are ``i / rate_hz`` exactly (no accumulated rounding), so a
    trace written from the result has exactly the nominal rate.
    """
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be positive, not {rate_hz}")
    end = source.duration if duration is None else duration
    n = int(end * rate_hz + 1e-9) + 1
    out = []
    for i in range(n):
        t = i / rate_hz
        out.append(ImuSample(t, *source.at(t)))
    return out
