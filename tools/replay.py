"""``retroguard replay TRACE``: a recording through the monitor's detector, as fast as it goes.

The detector is built by the same :func:`build_detector` call as the monitor
with the configured rate; the recording is resampled to that rate when it
was made at another, exactly as ``evaluate`` does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from core.trace import TraceFormatError
from firmware.config import Config, load_config
from firmware.detection.base import TRIPPING_KINDS, Detection, DetectionKind
from firmware.detection.factory import build_detector
from tools.datasets import describe, open_samples
from tools.datasets.errors import DatasetFormatError


def replay_detections(path: Path, config: Config) -> tuple[list[Detection], int, float | None]:
    """Run ``path`` through the detector; return (detections, samples, labelled impact time)."""
    recording = describe(path)
    rate = config.imu.sample_rate_hz
    detector = build_detector(config.detector, rate)
    detections: list[Detection] = []
    count = 0
    for sample in open_samples(recording, rate):
        count += 1
        detections.extend(detector.update(sample))
    return detections, count, recording.impact_t


def replay(path: Path, *, config_path: Path | None = None, verbose: bool = False) -> int:
    config = Config() if config_path is None else load_config(config_path)
    try:
        detections, count, impact_t = replay_detections(path, config)
    except (DatasetFormatError, TraceFormatError) as exc:
        print(f"retroguard replay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"retroguard replay: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    rate = config.imu.sample_rate_hz
    print(f"{path}: {count} samples ({count / rate:.1f} s at {rate:g} Hz)")
    if not detections:
        print("no detections")
    for detection in detections:
        trip = "trips relay" if detection.kind in TRIPPING_KINDS else "alert"
        line = f"  t={detection.t:8.3f} s  {detection.kind.value:<12} {trip:<11} {detection.reason}"
        if impact_t is not None and detection.kind is DetectionKind.STUMBLE:
            line += f"  (lead {(impact_t - detection.t) * 1000:+.0f} ms before impact)"
        print(line)
    return 0
