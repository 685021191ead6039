"""IMU samples at the sensor's rate in, analysis samples at about 100 Hz out.

The metrics need nothing above 25 Hz (the 20th harmonic of a 1.2 Hz stride),
so the sensor's 200 Hz (or whatever ``imu.sample_rate_hz`` is) is averaged
over ``k`` consecutive samples: half the work for everything downstream, and
the boxcar is a serviceable anti-alias filter for trunk accelerations, whose
power lies below 20 Hz. A gap in the samples (a paused session, a block the
worker could not take) is reported as such, never bridged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from core.samples import ImuSample

ANALYSIS_RATE_HZ = 100.0
GAP_PERIODS = 5.0
"""A step between samples longer than this many sample periods is a gap."""

AnalysisSample = tuple[float, float, float, float, float, float, float]
"""``(t, ax, ay, az, gx, gy, gz)``: seconds, g, deg/s, in the sensor frame."""


class Decimator:
    """Averages ``k`` consecutive samples; yields ``None`` where the input had a gap."""

    __slots__ = ("_acc", "_count", "_gap_s", "_last_t", "k", "rate_hz")

    def __init__(self, sample_rate_hz: float) -> None:
        if not sample_rate_hz > 0:
            raise ValueError("the sample rate must be positive")
        self.k = max(1, round(sample_rate_hz / ANALYSIS_RATE_HZ))
        self.rate_hz = sample_rate_hz / self.k
        self._gap_s = GAP_PERIODS / sample_rate_hz
        self._acc = [0.0] * 7
        self._count = 0
        self._last_t: float | None = None

    def feed(self, samples: Iterable[ImuSample]) -> Iterator[AnalysisSample | None]:
        k = self.k
        acc = self._acc
        for s in samples:
            last = self._last_t
            self._last_t = s.t
            if last is not None and not 0.0 < s.t - last <= self._gap_s:
                self._count = 0
                yield None
            if k == 1:
                yield (s.t, s.ax, s.ay, s.az, s.gx, s.gy, s.gz)
                continue
            if self._count == 0:
                acc[:] = s
            else:
                acc[0] += s.t
                acc[1] += s.ax
                acc[2] += s.ay
                acc[3] += s.az
                acc[4] += s.gx
                acc[5] += s.gy
                acc[6] += s.gz
            self._count += 1
            if self._count == k:
                self._count = 0
                inv = 1.0 / k
                yield (
                    acc[0] * inv,
                    acc[1] * inv,
                    acc[2] * inv,
                    acc[3] * inv,
                    acc[4] * inv,
                    acc[5] * inv,
                    acc[6] * inv,
                )
