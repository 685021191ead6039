"""One recording through one fresh detector, into a :class:`FileResult`.

The detector is the monitor's own :func:`~firmware.detection.factory.build_detector` call,
fed sample by sample at the monitor's rate with no look-ahead; the transforms asked for are
applied on the way in. This is the only place a recording meets a detector.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from core.samples import ImuSample
from firmware.detection import TRIPPING_KINDS, DetectionKind, Detector, DetectorConfig
from firmware.detection.factory import build_detector
from tools.datasets import (
    Activity,
    DatasetFormatError,
    Recording,
    describe,
    is_tuning_subject,
    open_samples,
)
from tools.evaluate.impact import fall_impact_t
from tools.evaluate.result import FileResult
from tools.evaluate.transforms import (
    Rotation,
    apply_rotation,
    gyro_scaled,
    rotated,
    time_reversed,
)


def detector_for(
    config: DetectorConfig,
    sample_rate_hz: float,
    recording: Recording | None,
    use_mounting: bool,
    rotation: Rotation | None = None,
) -> Detector:
    """The detector for one recording: exactly the monitor's :func:`build_detector`
    call, plus the recording's mounting when it declares one (carried through
    ``rotation`` when the recording's axes are rotated, see :func:`rotated`)."""
    up = recording.up if (recording is not None and use_mounting) else None
    if up is not None and rotation is not None:
        up = apply_rotation(rotation, up)
    return build_detector(config, sample_rate_hz, up=up)


def evaluate_file(
    path: str,
    rate_hz: float,
    config: DetectorConfig,
    use_mounting: bool = True,
    rotation: Rotation | None = None,
    sisfall_accelerometer: str = "adxl345",
    gyro_scale: float = 1.0,
    reverse: bool = False,
    start_before_onset: float | None = None,
) -> FileResult:
    """Stream one recording through a fresh detector. Never raises for bad data:
    a malformed file comes back with ``error`` set (and is counted as skipped).
    ``rotation``: rotate every sample's axes first (another mounting);
    ``sisfall_accelerometer``: which accelerometer of a SisFall file to read;
    ``gyro_scale``: multiply every gyro reading (another gyro calibration);
    ``reverse``: play the recording backward in time (:func:`time_reversed`;
    its labels, which describe the forward recording, are dropped);
    ``start_before_onset``: an onset-labelled recording starts this many
    seconds before its labelled onset, the samples before dropped (a
    detector started just before the fall; others are played whole)."""
    try:
        rec = describe(path)
    except (DatasetFormatError, OSError) as e:
        return _failed(path, str(e))
    det = detector_for(config, rate_hz, rec, use_mounting, rotation)
    update = det.update
    onset = None if reverse else rec.onset_t
    first_trip_t: float | None = None
    first_trip_kind: str | None = None
    first_trip_reason: str | None = None
    first_fall_t: float | None = None
    first_after_onset: float | None = None
    trips_before_onset = 0
    trips = 0
    no_recovery = False
    kept: list[tuple[float, float, float, float]] = []
    keep = rec.label == "fall" and (rec.impact_t is None or reverse)
    t0: float | None = None
    t = 0.0
    try:
        stream: Iterable[ImuSample] = open_samples(rec, rate_hz, sisfall_accelerometer)
        if reverse:
            stream = time_reversed(stream)
        if start_before_onset is not None and onset is not None:
            stream = _from(stream, onset - start_before_onset)
        if gyro_scale != 1.0:
            stream = gyro_scaled(stream, gyro_scale)
        if rotation is not None:
            stream = rotated(stream, rotation)
        for s in stream:
            t = s.t
            if t0 is None:
                t0 = t
            if keep:
                kept.append((t, s.ax, s.ay, s.az))
            for d in update(s):
                if d.kind in TRIPPING_KINDS:
                    trips += 1
                    if first_trip_t is None:
                        first_trip_t, first_trip_kind = d.t, d.kind.value
                        first_trip_reason = d.reason
                    if onset is not None:
                        if d.t < onset:
                            trips_before_onset += 1
                        elif first_after_onset is None:
                            first_after_onset = d.t
                if d.kind is DetectionKind.FALL and first_fall_t is None:
                    first_fall_t = d.t
                if d.kind is DetectionKind.NO_RECOVERY:
                    no_recovery = True
    except (DatasetFormatError, OSError) as e:
        return _failed(path, str(e), rec)
    if t0 is None:
        return _failed(path, f"{path}: no samples", rec)
    impact = rec.impact_t if (rec.impact_t is not None and not reverse) else None
    if impact is None and kept:
        up = rec.up
        if up is not None and rotation is not None:
            up = apply_rotation(rotation, up)
        impact = fall_impact_t(kept, up)
    task = rec.task
    return FileResult(
        path=str(path),
        code=rec.code or "?",
        subject=rec.subject,
        label=rec.label,
        tuning=is_tuning_subject(rec.subject, Path(path).name),
        duration_s=t - t0,
        impact_t=impact if rec.label == "fall" else None,
        first_trip_t=first_trip_t,
        first_trip_kind=first_trip_kind,
        first_trip_reason=first_trip_reason,
        first_fall_t=first_fall_t,
        trips=trips,
        no_recovery=no_recovery,
        dataset=rec.source,
        group=(task.group if task is not None else _unknown_group(rec.label)).value,
        backward=task.backward if task is not None else False,
        onset_t=onset,
        trips_before_onset=trips_before_onset,
        first_trip_after_onset_t=first_after_onset,
    )


def _from(samples: Iterable[ImuSample], start_t: float) -> Iterator[ImuSample]:
    """The samples at or after ``start_t``."""
    return (s for s in samples if s.t >= start_t)


def _unknown_group(label: str) -> Activity:
    return Activity.FALL if label == "fall" else Activity.OTHER_ADL


def _failed(path: str, error: str, rec: Recording | None = None) -> FileResult:
    return FileResult(
        path=str(path),
        code=(rec.code or "?") if rec else "?",
        subject=rec.subject if rec else None,
        label=rec.label if rec else "unknown",
        tuning=False,
        duration_s=0.0,
        impact_t=None,
        first_trip_t=None,
        first_trip_kind=None,
        first_fall_t=None,
        trips=0,
        no_recovery=False,
        error=error,
    )
