"""Fourier coefficients of one stride at the harmonics of the stride frequency.

The harmonic ratio (Menz, Lord & Fitzpatrick 2003, *Gait Posture* 18:35;
methods compared by Bellanca et al. 2013, *Gait Posture* 38:1136) takes the
acceleration over exactly one stride, its discrete Fourier transform at the
stride frequency's first 20 harmonics, and compares the even harmonics (the
step rhythm, which repeats twice per stride) with the odd ones (whatever
differs between the left and the right step): ``Σ even / Σ odd`` amplitudes
for vertical and AP, ``Σ odd / Σ even`` for ML, whose natural rhythm is the
stride. A symmetric, smooth gait has a high ratio (healthy adults about 2-3
vertical and AP, Menz et al. 2003); it falls as steps differ.

The DFT of an ``n``-sample stride at harmonic ``k`` is a dot product with
``cos(2πkn/N)`` and ``sin(2πkn/N)``; the tables are cached per stride length
(strides of one walk differ by a few samples) and the dot products run as
``sum(map(mul, ...))``, which CPython executes without a Python-level loop.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from operator import mul

HARMONICS = 20
MIN_HARMONICS = 10
"""Fewer usable harmonics (a low sample rate for the stride) and no ratio is given."""
TABLE_CACHE = 32


class StrideDft:
    """DFT at the stride harmonics, with cos/sin tables cached per stride length."""

    def __init__(self, harmonics: int = HARMONICS) -> None:
        self.harmonics = harmonics
        self._tables: OrderedDict[int, list[tuple[array[float], array[float]]]] = OrderedDict()

    def usable(self, n: int) -> int:
        """Harmonics an ``n``-sample stride can carry below the Nyquist frequency."""
        return min(self.harmonics, (n - 1) // 2)

    def _table(self, n: int, k_max: int) -> list[tuple[array[float], array[float]]]:
        table = self._tables.get(n)
        if table is None or len(table) < k_max:
            w = 2.0 * math.pi / n
            table = [
                (
                    array("d", (math.cos(w * k * i) for i in range(n))),
                    array("d", (math.sin(w * k * i) for i in range(n))),
                )
                for k in range(1, k_max + 1)
            ]
            self._tables[n] = table
            if len(self._tables) > TABLE_CACHE:
                self._tables.popitem(last=False)
        else:
            self._tables.move_to_end(n)
        return table

    def coefficients(self, x: Sequence[float], k_max: int) -> list[complex]:
        """``X_k`` for ``k = 1 .. k_max`` of the stride ``x`` (``k_max`` ≤ :meth:`usable`)."""
        table = self._table(len(x), k_max)
        return [complex(sum(map(mul, x, c)), -sum(map(mul, x, s))) for c, s in table[:k_max]]


def harmonic_ratio(coefficients: Sequence[complex], *, odd_over_even: bool = False) -> float | None:
    """``Σ even / Σ odd`` harmonic amplitudes (``odd_over_even`` for ML); None if undefined."""
    even = sum(abs(c) for k, c in enumerate(coefficients, start=1) if k % 2 == 0)
    odd = sum(abs(c) for k, c in enumerate(coefficients, start=1) if k % 2 == 1)
    num, den = (odd, even) if odd_over_even else (even, odd)
    return num / den if den > 0.0 else None
