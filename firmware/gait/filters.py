"""Small streaming filters for the gait and balance meters: scalar arithmetic, no NumPy.

Each filter holds a few floats of state and costs a handful of
multiplications per sample, so the meters stay cheap on a Pi Zero 2 W.
"""

from __future__ import annotations

import cmath
import math


class Biquad:
    """A second-order IIR section (transposed direct form II), one float in, one out."""

    __slots__ = ("a1", "a2", "b0", "b1", "b2", "z1", "z2")

    def __init__(self, b0: float, b1: float, b2: float, a1: float, a2: float) -> None:
        self.b0, self.b1, self.b2, self.a1, self.a2 = b0, b1, b2, a1, a2
        self.z1 = 0.0
        self.z2 = 0.0

    def __call__(self, x: float) -> float:
        y = self.b0 * x + self.z1
        self.z1 = self.b1 * x - self.a1 * y + self.z2
        self.z2 = self.b2 * x - self.a2 * y
        return y

    def settle(self, x: float) -> None:
        """Start as if ``x`` had always been the input (no start-up transient)."""
        gain = (self.b0 + self.b1 + self.b2) / (1.0 + self.a1 + self.a2)
        y = gain * x
        self.z1 = y - self.b0 * x
        self.z2 = self.b2 * x - self.a2 * y

    def response(self, f_hz: float, fs_hz: float) -> complex:
        """The complex frequency response at ``f_hz``."""
        z = cmath.exp(-2j * math.pi * f_hz / fs_hz)
        return (self.b0 + self.b1 * z + self.b2 * z * z) / (1.0 + self.a1 * z + self.a2 * z * z)


def butter_lowpass(fc_hz: float, fs_hz: float) -> Biquad:
    """Second-order Butterworth low-pass (bilinear transform, pre-warped cut-off)."""
    if not 0.0 < fc_hz < fs_hz / 2.0:
        raise ValueError(f"cut-off {fc_hz:g} Hz must lie between 0 and half of {fs_hz:g} Hz")
    k = math.tan(math.pi * fc_hz / fs_hz)
    q = math.sqrt(0.5)
    norm = 1.0 / (1.0 + k / q + k * k)
    b0 = k * k * norm
    return Biquad(b0, 2.0 * b0, b0, 2.0 * (k * k - 1.0) * norm, (1.0 - k / q + k * k) * norm)


def boxcar_power(f_hz: float, source_hz: float, k: int) -> float:
    """Power response at ``f_hz`` of averaging ``k`` samples taken at ``source_hz``."""
    if k <= 1:
        return 1.0
    x = math.pi * f_hz / source_hz
    return (math.sin(k * x) / (k * math.sin(x))) ** 2 if x > 0.0 else 1.0


def noise_bandwidth(
    biquad: Biquad,
    fs_hz: float,
    top_hz: float,
    *,
    complement: bool = False,
    averaged: int = 1,
) -> float:
    """Equivalent noise bandwidth (Hz) of ``biquad`` for white noise flat up to ``top_hz``.

    ``complement``: of ``1 - H`` instead (what ``x - lowpass(x)`` keeps);
    ``averaged``: the samples at ``fs_hz`` are means of that many sensor
    samples (:mod:`firmware.gait.stream`), which shapes the noise too. A
    numerical integral of ``|H|^2`` (400 points), computed once per meter.
    """
    steps = 400
    width = top_hz / steps
    total = 0.0
    for i in range(steps):
        f = (i + 0.5) * width
        h = biquad.response(f, fs_hz)
        total += (
            abs(1.0 - h if complement else h) ** 2
            * boxcar_power(f, fs_hz * averaged, averaged)
            * width
        )
    return total
