"""Streaming linear-interpolation resampler.

Recordings come at their own rate (SisFall at 200 Hz, other datasets anywhere
from 20 Hz to 1 kHz) but the detector must see what the monitor sees: samples
at the configured IMU rate. Resampling is done *streaming* — one input sample
in, zero or more output samples out — so it works on endless inputs and never
looks more than one input sample ahead, like the hardware would.

Downsampling first averages the input over one output period (a causal box
filter, :func:`average`), as the low-pass filter of a sensor running at the
lower rate would: picking instantaneous values instead lets the 20-40 ms gyro
spikes of heel strikes land or vanish at random between output samples, and
integrating those aliased rates tilts the orientation estimate by tens of
degrees (at 25 Hz it made jogging look like falling). Upsampling and equal
rates need no filter.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from core.samples import ImuSample

MIN_RATE_HZ = 20.0
MAX_RATE_HZ = 1000.0


def resample(samples: Iterable[ImuSample], rate_hz: float) -> Iterator[ImuSample]:
    """Yield samples at exactly ``rate_hz``, linearly interpolated.

    Output times are ``t0 + k / rate_hz`` where ``t0`` is the first input time,
    so a stream that is already at ``rate_hz`` comes out unchanged (up to
    floating-point rounding of the timestamps). Input timestamps must increase
    strictly; an input sample that does not is skipped (it cannot be placed).
    """
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be positive, not {rate_hz}")
    period = 1.0 / rate_hz
    prev: ImuSample | None = None
    t0 = 0.0
    k = 0
    for s in samples:
        if prev is None:
            prev = s
            t0 = s.t
            k = 1
            yield s
            continue
        if s.t <= prev.t:
            continue
        t_out = t0 + k * period
        span = s.t - prev.t
        while t_out <= s.t:
            f = (t_out - prev.t) / span
            g = 1.0 - f
            yield ImuSample(
                t_out,
                prev.ax * g + s.ax * f,
                prev.ay * g + s.ay * f,
                prev.az * g + s.az * f,
                prev.gx * g + s.gx * f,
                prev.gy * g + s.gy * f,
                prev.gz * g + s.gz * f,
            )
            k += 1
            t_out = t0 + k * period
        prev = s


def average(samples: Iterable[ImuSample], n: int) -> Iterator[ImuSample]:
    """Each sample replaced by the mean of the last ``n`` inputs (fewer at the start).

    Causal, like a sensor's own filter: output ``i`` is stamped with input
    ``i``'s time and depends on nothing later.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    window: deque[ImuSample] = deque()
    sums = [0.0] * 6
    for s in samples:
        window.append(s)
        for i in range(6):
            sums[i] += s[i + 1]
        if len(window) > n:
            old = window.popleft()
            for i in range(6):
                sums[i] -= old[i + 1]
        k = len(window)
        yield ImuSample(s.t, *(v / k for v in sums))


def at_rate(
    samples: Iterable[ImuSample], source_rate_hz: float, rate_hz: float
) -> Iterator[ImuSample]:
    """``samples`` at ``rate_hz``: passed through when the rates already agree."""
    if not MIN_RATE_HZ <= source_rate_hz <= MAX_RATE_HZ:
        raise ValueError(
            f"source rate {source_rate_hz:g} Hz is outside the supported "
            f"{MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz"
        )
    if abs(source_rate_hz - rate_hz) <= 1e-9 * rate_hz:
        return iter(samples)
    span = round(source_rate_hz / rate_hz)
    if span >= 2:
        samples = average(samples, span)
    return resample(samples, rate_hz)
