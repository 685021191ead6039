"""The batch path: a block of samples through the streaming detector at once.

For offline work on whole recordings (analysis, plots, benchmarks) where the
samples already sit in a NumPy array. Vectorising the detector itself would
change it: almost everything it computes carries state from one sample to the
next (orientation, velocity, windows, timers). So only what depends on one
sample alone is computed for the whole block — the acceleration magnitude —
and every sample then goes through :meth:`FallDetector.step`, the same code
:meth:`~FallDetector.update` runs. The detections are therefore identical, bit
for bit, to feeding the same samples one at a time, whatever the block sizes
(``tests/test_detector_batch.py`` holds that on real recordings); the
detector's state carries over from one block to the next.

NumPy is needed here only (``pip install -e '.[batch]'``); the monitor never
imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from core.samples import ImuSample
from firmware.detection.base import Detection
from firmware.detection.retro import FallDetector

COLUMNS = ("t", "ax", "ay", "az", "gx", "gy", "gz")
"""A block's columns, as :class:`core.samples.ImuSample`: seconds, g, deg/s."""

Block = npt.NDArray[np.float64]


def as_block(samples: Iterable[ImuSample]) -> Block:
    """Samples as an ``(N, 7)`` float64 array with :data:`COLUMNS`."""
    block = np.array(list(samples), dtype=np.float64)
    return block.reshape(-1, len(COLUMNS))


def detect_block(detector: FallDetector, block: npt.ArrayLike) -> list[Detection]:
    """Feed every row of ``block`` (``(N, 7)``, :data:`COLUMNS`) to ``detector``
    in order; return the detections, as the same rows fed to ``update()``
    one by one would."""
    rows = np.asarray(block, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != len(COLUMNS):
        raise ValueError(
            f"a block is an (N, {len(COLUMNS)}) array of {', '.join(COLUMNS)}; "
            f"got shape {rows.shape}"
        )
    ax = rows[:, 1]
    ay = rows[:, 2]
    az = rows[:, 3]
    # Same operations in the same order as update(): IEEE-754 makes the
    # element-wise results equal to the scalar ones.
    amag = np.sqrt(ax * ax + ay * ay + az * az)
    step = detector.step
    found: list[Detection] = []
    for (t, x, y, z, gx, gy, gz), m in zip(rows.tolist(), amag.tolist(), strict=True):
        out = step(t, x, y, z, gx, gy, gz, m)
        if out:
            found.extend(out)
    return found
