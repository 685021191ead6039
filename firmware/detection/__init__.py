"""Streaming fall and stumble detection.

The detector is pure: samples in, detections out, no I/O, no clock of its own.
The same object runs in the monitor, in ``retroguard replay`` and in
``retroguard evaluate`` — all of them build it with :func:`build_detector`.
"""

from firmware.detection.base import Detection, DetectionKind, Detector

__all__ = ["Detection", "DetectionKind", "Detector"]
