"""Streaming fall and stumble detection.

The detector is pure: samples in, detections out, no I/O, no clock of its own.
The same object runs in the monitor, in ``retroguard replay`` and in
``retroguard evaluate`` — all of them build it with :func:`build_detector`.
"""

from firmware.detection.base import (
    NO_DETECTIONS,
    TRIPPING_KINDS,
    Detection,
    DetectionKind,
    Detector,
)
from firmware.detection.config import DetectorConfig
from firmware.detection.factory import build_detector

__all__ = [
    "NO_DETECTIONS",
    "TRIPPING_KINDS",
    "Detection",
    "DetectionKind",
    "Detector",
    "DetectorConfig",
    "build_detector",
]
