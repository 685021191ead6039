"""The one place a detector is built.

The monitor, ``retroguard replay`` and ``retroguard evaluate`` all call
:func:`build_detector`, so the figures ``evaluate`` reports are the figures of
the object that runs on the belt — not of a look-alike.
"""

from __future__ import annotations

from firmware.detection.base import Detector
from firmware.detection.config import DetectorConfig
from firmware.detection.retro import FallDetector


def build_detector(
    config: DetectorConfig,
    sample_rate_hz: float,
    up: tuple[float, float, float] | None = None,
) -> Detector:
    """A fresh streaming detector for samples arriving at ``sample_rate_hz``.

    ``up`` is optional: the sensor-frame direction that points up when the
    wearer stands (from a known mounting, e.g. ``core.mounting``). Without it
    the detector learns gravity online during its warm-up, which is what makes
    it work for a belt clipped in any orientation and for datasets with other
    axes.
    """
    return FallDetector(config, sample_rate_hz, up=up)
