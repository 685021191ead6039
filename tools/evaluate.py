"""``retroguard evaluate PATH``: score the streaming detector on recordings.

Every recording (a SisFall directory, a directory of traces, or one file) is
streamed sample by sample through a detector built by the *same*
:func:`~firmware.detection.build_detector` call the monitor makes, at the
monitor's sample rate (recordings at other rates are resampled), with no
look-ahead and no whole-file normalisation. Files are spread over the cores.

What is measured
    * **fall output** (``FALL`` detections): sensitivity over fall recordings
      (any FALL anywhere in the file), specificity over ADL recordings (no
      FALL anywhere).
    * **trip output** (the relay: ``STUMBLE`` or ``FALL``): on falls that
      start while walking or jogging (SisFall F01-F07), the share tripped
      *before impact* and the lead time from the first trip to impact (median
      and 10th percentile over the falls tripped in time); trips per hour of
      walking and jogging (D01-D04); the share of D18 recordings (stumble
      without a fall) and of the other ADLs that trip.
    * **impact time**: the header's ``impact_t`` where a trace has one (KFall:
      the video-labelled impact), otherwise the documented rule
      (:func:`fall_impact_t`): the sample of peak acceleration magnitude
      among those after which the trunk lies within ``LANDING_TO_LYING_S``
      (SisFall has no impact labels).
    * **backward falls** (F02, F11, F14) as their own group.

The subject split
    Subjects split deterministically by id (:func:`tools.datasets.
    is_tuning_subject`): odd subject numbers form the *tuning* half (the only
    one thresholds were chosen on), even numbers the *held-out* half. The
    held-out figures are the ones that count; ``--split`` picks which half the
    top-level JSON figures describe (all three are always included).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from core.cliargs import finite_float, output_file
from core.errors import ConfigError
from core.samples import ImuSample
from firmware.detection import TRIPPING_KINDS, DetectionKind, Detector, DetectorConfig
from firmware.detection.factory import build_detector
from hal.config import ImuConfig
from tools.datasets import (
    Activity,
    DatasetFormatError,
    Recording,
    describe,
    discover,
    is_tuning_subject,
    open_samples,
)
from tools.datasets.resample import MAX_RATE_HZ, MIN_RATE_HZ
from tools.datasets.sisfall import ACCELEROMETERS

SPLITS = ("held-out", "tuning", "all")
HALVES = ("held-out", "tuning")
ONSET_TOLERANCE_S = 0.2
"""How far before a *video-labelled* onset a trip still counts as the same
fall in the tolerant onset figure (``tripped_near_onset``). The onset is a
person's judgement of the frame in which the fall began; the detector often
sees the body leave its course a few tens of ms sooner (KFall: most trips
before onset in slips and falls while sitting down come 5-200 ms before the
label), and its stumble refractory then keeps the fall from tripping again
inside [onset, impact). Reported beside the strict figure, never instead."""


LANDING_TO_LYING_S = 0.5
"""A fall's impact is followed by the trunk lying within this time (s): see
:func:`fall_impact_t`."""
LYING_DEG = 50.0
"""Tilt (degrees from upright, of the low-passed accelerometer) that counts
as lying for :func:`fall_impact_t` (the detector's ``lying_tilt_deg``)."""
_IMPACT_LOWPASS_S = 0.25
"""Width (s) of the centred moving mean of the accelerometer from which
:func:`fall_impact_t` takes the trunk's posture ..."""
_IMPACT_STILL_G = 0.2
"""... where that mean is within this of 1 g (the detector's ``accel_gate_g``)."""


def fall_impact_t(
    samples: Sequence[tuple[float, float, float, float]],
    up: tuple[float, float, float] | None,
) -> float:
    """The impact of an unlabelled fall recording: the sample of peak |a|
    among those followed within ``LANDING_TO_LYING_S`` by the trunk lying
    (the accelerometer's centred mean over ``_IMPACT_LOWPASS_S``, where it
    reads 1 g within ``_IMPACT_STILL_G``, more than ``LYING_DEG`` from ``up``; when
    ``up`` is unknown, from the mean direction of the first second); the
    peak of the whole recording if the trunk never lies (a fall that ends
    seated). ``samples``: ``(t, ax, ay, az)`` in g, in time order.

    Why not the peak of the whole recording: a fall's impact ends the fall,
    and the body lies right after it — a buttocks-first backward fall lies
    back within a few tenths of a second. A heel strike while walking, a
    stamp while jogging or a hand slapped on a table with the trunk still
    upright can exceed a soft landing (an elderly subject's 1.96 g step
    before her 1.9 g landing, F07_SE06_R04), and then the old rule put the
    "impact" seconds before the fall. On KFall, whose impacts are labelled
    from video, this rule moves six recordings from 0.4-0.8 s before the
    label to within 20 ms of it and no other (docs/detector.md)."""
    if not samples:
        raise ValueError("no samples")
    n = len(samples)
    peak_i = max(range(n), key=lambda i: _mag2(samples[i]))
    if up is None:
        first = [s for s in samples if s[0] - samples[0][0] < 1.0]
        up = _unit(
            (
                sum(s[1] for s in first),
                sum(s[2] for s in first),
                sum(s[3] for s in first),
            )
        )
        if up is None:
            return samples[peak_i][0]
    cos_lying = math.cos(math.radians(LYING_DEG))
    # Centred moving sums over _IMPACT_LOWPASS_S (prefix sums; look-ahead is
    # fine here, this is scoring, not detecting).
    px, py, pz = [0.0], [0.0], [0.0]
    for s in samples:
        px.append(px[-1] + s[1])
        py.append(py[-1] + s[2])
        pz.append(pz[-1] + s[3])
    half = _IMPACT_LOWPASS_S / 2.0
    lying = [False] * n
    lo = hi = 0
    for i, s in enumerate(samples):
        while samples[lo][0] < s[0] - half:
            lo += 1
        while hi < n and samples[hi][0] <= s[0] + half:
            hi += 1
        mx, my, mz = px[hi] - px[lo], py[hi] - py[lo], pz[hi] - pz[lo]
        norm = math.sqrt(mx * mx + my * my + mz * mz)
        # The mean shows gravity's direction only while the body is not
        # accelerating (it reads about 1 g): a body dropping reads less,
        # in any direction.
        if norm > 0.0 and abs(norm / (hi - lo) - 1.0) < _IMPACT_STILL_G:
            lying[i] = (mx * up[0] + my * up[1] + mz * up[2]) / norm < cos_lying
    best_i = None
    next_lying_t = math.inf
    for i in range(n - 1, -1, -1):
        t = samples[i][0]
        if lying[i]:
            next_lying_t = t
        if next_lying_t - t <= LANDING_TO_LYING_S and (
            best_i is None or _mag2(samples[i]) >= _mag2(samples[best_i])
        ):
            best_i = i
    return samples[peak_i if best_i is None else best_i][0]


def _mag2(s: tuple[float, float, float, float]) -> float:
    return s[1] * s[1] + s[2] * s[2] + s[3] * s[3]


def _unit(v: tuple[float, float, float]) -> tuple[float, float, float] | None:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    return None if n == 0.0 else (v[0] / n, v[1] / n, v[2] / n)


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
        up = _apply(rotation, up)
    return build_detector(config, sample_rate_hz, up=up)


# ----------------------------------------------------------------------------
# Other mountings: every sample's axes rotated by one proper rotation

Rotation = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]
"""Row-major 3x3 proper rotation matrix (sensor frame to the rotated sensor frame)."""

ROTATION_PRESETS: dict[str, str] = {
    # SisFall's axes: x right, y down, z forward (core.mounting.SISFALL_MOUNTING).
    "upside-down": "z180",
    "hip": "y90",
    "tilted-30": "x30",
    "crooked": "x30,y90,z20",
}
"""Named mountings for ``--rotate``, as rotations about the *SisFall* sensor
axes: ``upside-down`` turns the clip over about the forward axis (y then points
up), ``hip`` turns it 90 deg about the vertical (the face points right, a belt
clip on the hip), ``tilted-30`` pitches it 30 deg about the lateral axis (a
clip leaning on the belly), ``crooked`` combines all three with odd angles."""


def parse_rotation(spec: str) -> Rotation:
    """``x30,y90,z-20`` (degrees about the sensor axes, applied left to right)
    or a name from :data:`ROTATION_PRESETS`, as a rotation matrix."""
    text = ROTATION_PRESETS.get(spec.strip(), spec)
    m: Rotation = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    for part in text.split(","):
        part = part.strip().lower()
        try:
            axis, deg = part[0], float(part[1:])
        except (IndexError, ValueError):
            axis, deg = "?", 0.0
        if axis not in "xyz":
            raise ValueError(
                f"rotation {spec!r}: expected e.g. x30,y90 or one of {', '.join(ROTATION_PRESETS)}"
            )
        c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        if axis == "x":
            r: Rotation = ((1.0, 0.0, 0.0), (0.0, c, -s), (0.0, s, c))
        elif axis == "y":
            r = ((c, 0.0, s), (0.0, 1.0, 0.0), (-s, 0.0, c))
        else:
            r = ((c, -s, 0.0), (s, c, 0.0), (0.0, 0.0, 1.0))
        m = _matmul(r, m)
    return m


def _matmul(a: Rotation, b: Rotation) -> Rotation:
    rows = [tuple(sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)) for i in range(3)]
    return (rows[0], rows[1], rows[2])  # type: ignore[return-value]


def _apply(m: Rotation, v: tuple[float, float, float]) -> tuple[float, float, float]:
    x, y, z = v
    return (
        m[0][0] * x + m[0][1] * y + m[0][2] * z,
        m[1][0] * x + m[1][1] * y + m[1][2] * z,
        m[2][0] * x + m[2][1] * y + m[2][2] * z,
    )


def rotated(samples: Iterable[ImuSample], m: Rotation) -> Iterator[ImuSample]:
    """The same motion seen by a sensor mounted differently: accelerometer and
    gyro vectors of every sample rotated by ``m``."""
    for s in samples:
        a = _apply(m, (s.ax, s.ay, s.az))
        g = _apply(m, (s.gx, s.gy, s.gz))
        yield ImuSample(s.t, a[0], a[1], a[2], g[0], g[1], g[2])


def time_reversed(samples: Iterable[ImuSample]) -> Iterator[ImuSample]:
    """The recording played backward in time: the same path through the same
    postures in reverse order. Sample ``i`` of the output is input sample
    ``n-1-i`` at time ``t_first + t_last - t`` (so time still increases with
    the same spacing); acceleration is kept and angular rate negated, which is
    exactly what a sensor sees when a motion runs the other way (position
    reversed in time keeps its second derivative and flips its first).
    Forward walking reversed is close to backward walking: the proxy for the
    gait RetroGuard is built for. Needs the whole recording in memory."""
    buffered = list(samples)
    if not buffered:
        return
    span = buffered[0].t + buffered[-1].t
    for s in reversed(buffered):
        yield ImuSample(span - s.t, s.ax, s.ay, s.az, -s.gx, -s.gy, -s.gz)


def gyro_scaled(samples: Iterable[ImuSample], scale: float) -> Iterator[ImuSample]:
    """The same motion seen by a gyro whose sensitivity is off by ``scale``
    (a dataset converted with another counts-per-deg/s factor)."""
    for s in samples:
        yield s._replace(gx=s.gx * scale, gy=s.gy * scale, gz=s.gz * scale)


# ----------------------------------------------------------------------------
# One file


@dataclass(frozen=True, slots=True)
class FileResult:
    """Everything the summary needs from one recording (picklable, small)."""

    path: str
    code: str
    subject: str | None
    label: str
    tuning: bool
    duration_s: float
    impact_t: float | None
    first_trip_t: float | None
    first_trip_kind: str | None
    first_fall_t: float | None
    trips: int
    no_recovery: bool
    error: str | None = None
    dataset: str = "trace"
    """Where the recording comes from: ``sisfall``, ``kfall`` or ``trace``."""
    group: str = Activity.OTHER_ADL.value
    """Its :class:`~tools.datasets.Activity` group (from the task table)."""
    backward: bool = False
    """A backward fall."""
    onset_t: float | None = None
    """Labelled fall onset, when the recording has one."""
    trips_before_onset: int = 0
    """Trips (STUMBLE or FALL) before the labelled onset: while the person was
    still doing whatever preceded the fall (the pre-impact literature counts
    those as false alarms, not as detections)."""
    first_trip_after_onset_t: float | None = None
    """The first trip at or after the labelled onset."""

    @property
    def lead_ms(self) -> float | None:
        """Trip-to-impact time, when the first trip came before the impact."""
        if self.first_trip_t is None or self.impact_t is None:
            return None
        lead = self.impact_t - self.first_trip_t
        return lead * 1000.0 if lead > 0 else None

    @property
    def tripped_in_fall(self) -> bool:
        """A trip between the labelled onset and the impact (onset-labelled falls)."""
        t = self.first_trip_after_onset_t
        return t is not None and self.impact_t is not None and t < self.impact_t

    @property
    def tripped_near_onset(self) -> bool:
        """Tripped in the fall, or first tripped at most ``ONSET_TOLERANCE_S``
        before its labelled onset (and not earlier): the same fall seen a
        little before the video label."""
        if self.tripped_in_fall:
            return True
        t, onset = self.first_trip_t, self.onset_t
        return t is not None and onset is not None and onset - ONSET_TOLERANCE_S <= t < onset

    @property
    def onset_lead_ms(self) -> float | None:
        """Impact minus the first trip after onset, when that trip came before impact."""
        if not self.tripped_in_fall:
            return None
        assert self.impact_t is not None and self.first_trip_after_onset_t is not None
        return (self.impact_t - self.first_trip_after_onset_t) * 1000.0

    @property
    def onset_delay_ms(self) -> float | None:
        """The first trip after onset minus the onset, when it came before impact."""
        if not self.tripped_in_fall:
            return None
        assert self.onset_t is not None and self.first_trip_after_onset_t is not None
        return (self.first_trip_after_onset_t - self.onset_t) * 1000.0


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
            up = _apply(rotation, up)
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


def _evaluate_job(
    job: tuple[str, float, DetectorConfig, bool, Rotation | None, str, float, bool, float | None],
) -> FileResult:
    return evaluate_file(*job)


# ----------------------------------------------------------------------------
# Running many files


def run_files(
    paths: Sequence[Path],
    rate_hz: float,
    config: DetectorConfig,
    *,
    use_mounting: bool = True,
    rotation: Rotation | None = None,
    sisfall_accelerometer: str = "adxl345",
    gyro_scale: float = 1.0,
    reverse: bool = False,
    start_before_onset: float | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[FileResult]:
    """Evaluate every file, over ``jobs`` processes (default: all cores).

    Results come back in the order of ``paths`` whatever order the workers
    finish in, so summaries are deterministic. Longest files are submitted
    first (by size) so that one 100 s walk does not finish last alone.
    """
    jobs = jobs or os.cpu_count() or 1
    options = (
        use_mounting,
        rotation,
        sisfall_accelerometer,
        gyro_scale,
        reverse,
        start_before_onset,
    )
    work = [(str(p), rate_hz, config, *options) for p in paths]
    total = len(work)
    if progress:
        progress(0, total)
    if jobs == 1 or total <= 1:
        results = []
        for i, job in enumerate(work, start=1):
            results.append(_evaluate_job(job))
            if progress:
                progress(i, total)
        return results
    order = sorted(range(total), key=lambda i: -_size(paths[i]))
    out: list[FileResult | None] = [None] * total
    done = 0
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        futures: dict[Future[FileResult], int] = {
            ex.submit(_evaluate_job, work[i]): i for i in order
        }
        for fut in as_completed(futures):
            out[futures[fut]] = fut.result()
            done += 1
            if progress:
                progress(done, total)
    return [r for r in out if r is not None]


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


class Progress:
    """A one-line progress bar on a terminal; sparse plain lines otherwise (CI logs)."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self._last_pct = -1

    def __call__(self, done: int, total: int) -> None:
        frac = done / total if total else 1.0
        elapsed = time.monotonic() - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        if self.tty:
            bar = "#" * int(frac * self.width)
            self.stream.write(
                f"\r[{bar:<{self.width}}] {done}/{total} files  {elapsed:5.1f} s  eta {eta:5.1f} s"
            )
            if done == total:
                self.stream.write("\n")
        else:
            pct = int(frac * 10) * 10
            if pct == self._last_pct and done != total:
                return
            self._last_pct = pct
            self.stream.write(f"evaluate: {done}/{total} files ({pct}%) {elapsed:.1f} s\n")
        self.stream.flush()


# ----------------------------------------------------------------------------
# Figures


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (q in 0-100) of ``values``; None if empty."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _leads(results: Iterable[FileResult]) -> list[float]:
    return [r.lead_ms for r in results if r.lead_ms is not None]


def group_figures(results: Sequence[FileResult]) -> dict[str, Any]:
    """Counts and rates for one set of recordings (a code, a group, a split)."""
    falls = [r for r in results if r.label == "fall"]
    adls = [r for r in results if r.label == "adl"]
    leads = _leads(falls)
    out: dict[str, Any] = {"files": len(results)}
    if falls:
        out |= {
            "falls": len(falls),
            "sensitivity": _ratio(sum(r.first_fall_t is not None for r in falls), len(falls)),
            "tripped_before_impact": _ratio(len(leads), len(falls)),
            "lead_time_ms_median": percentile(leads, 50),
            "lead_time_ms_p10": percentile(leads, 10),
        }
        labelled = [r for r in falls if r.onset_t is not None]
        if labelled:
            out["onset"] = onset_figures(labelled)
    if adls:
        hours = sum(r.duration_s for r in adls) / 3600.0
        trips = sum(r.trips for r in adls)
        out |= {
            "adls": len(adls),
            "specificity": _ratio(sum(r.first_fall_t is None for r in adls), len(adls)),
            "trip_rate": _ratio(sum(r.trips > 0 for r in adls), len(adls)),
            "trips": trips,
            "trips_per_hour": trips / hours if hours > 0 else None,
            "hours": hours,
        }
    return out


def onset_figures(falls: Sequence[FileResult]) -> dict[str, Any]:
    """Falls with a labelled onset, scored as the pre-impact literature does.

    A fall is *tripped in time* when a trip comes between its onset and its
    impact; ``lead_to_impact`` is impact minus that trip, ``delay_after_onset``
    the trip minus the onset. A trip before the onset (during whatever the
    person did before falling) is counted apart, as the false alarm it is in
    that literature; the first trip after the onset is still scored.
    """
    labelled = [r for r in falls if r.onset_t is not None]
    n = len(labelled)
    leads = [r.onset_lead_ms for r in labelled if r.onset_lead_ms is not None]
    delays = [r.onset_delay_ms for r in labelled if r.onset_delay_ms is not None]
    late = [r for r in labelled if not r.tripped_in_fall and r.first_trip_after_onset_t is not None]
    return {
        "falls": n,
        "tripped_between_onset_and_impact": _ratio(len(leads), n),
        "lead_to_impact_ms_median": percentile(leads, 50),
        "lead_to_impact_ms_p10": percentile(leads, 10),
        "delay_after_onset_ms_median": percentile(delays, 50),
        "delay_after_onset_ms_p90": percentile(delays, 90),
        "tripped_near_onset": _ratio(sum(r.tripped_near_onset for r in labelled), n),
        "tripped_before_onset": _ratio(sum(r.trips_before_onset > 0 for r in labelled), n),
        "tripped_only_after_impact": _ratio(len(late), n),
        "never_tripped_after_onset": _ratio(
            sum(r.first_trip_after_onset_t is None for r in labelled), n
        ),
    }


def _in(results: Iterable[FileResult], *groups: Activity) -> list[FileResult]:
    names = {g.value for g in groups}
    return [r for r in results if r.group in names]


def _hours(results: Iterable[FileResult]) -> float:
    return sum(r.duration_s for r in results) / 3600.0


def split_figures(results: Sequence[FileResult]) -> dict[str, Any]:
    """The headline figures (the issue's JSON schema) for one split."""
    falls = [r for r in results if r.label == "fall"]
    adls = [r for r in results if r.label == "adl"]
    walking_falls = _in(falls, Activity.WALKING_FALL)
    walking = _in(adls, Activity.WALKING)
    jogging = _in(adls, Activity.JOGGING)
    gait = walking + jogging
    stumble = _in(adls, Activity.STUMBLE)
    lying = _in(adls, Activity.LYING_DOWN)
    other = _in(adls, Activity.STAIRS, Activity.LYING_DOWN, Activity.OTHER_ADL)
    backward = [r for r in falls if r.backward]
    leads = _leads(walking_falls)
    walk_hours, jog_hours = _hours(walking), _hours(jogging)
    walk_trips = sum(r.trips for r in walking)
    jog_trips = sum(r.trips for r in jogging)
    codes = sorted({r.code for r in results})
    labelled = [r for r in falls if r.onset_t is not None]
    return {
        "fall": {
            "sensitivity": _ratio(sum(r.first_fall_t is not None for r in falls), len(falls)),
            "specificity": _ratio(sum(r.first_fall_t is None for r in adls), len(adls)),
            "falls": len(falls),
            "adls": len(adls),
        },
        "trip": {
            "walking_falls": len(walking_falls),
            "walking_falls_tripped_before_impact": _ratio(len(leads), len(walking_falls)),
            "lead_time_ms_median": percentile(leads, 50),
            "lead_time_ms_p10": percentile(leads, 10),
            "walking_jogging_trips": walk_trips + jog_trips,
            "walking_jogging_hours": walk_hours + jog_hours,
            "walking_jogging_trips_per_hour": (
                (walk_trips + jog_trips) / (walk_hours + jog_hours) if gait else None
            ),
            "walking_trips": walk_trips,
            "walking_recordings_tripped": sum(r.trips > 0 for r in walking),
            "walking_hours": walk_hours,
            "jogging_trips": jog_trips,
            "jogging_hours": jog_hours,
            "jogging_trips_per_hour": jog_trips / jog_hours if jog_hours else None,
            "d18_trip_rate": _ratio(sum(r.trips > 0 for r in stumble), len(stumble)),
            "other_adl_trip_rate": _ratio(sum(r.trips > 0 for r in other), len(other)),
            "falls_tripped_before_impact": _ratio(len(_leads(falls)), len(falls)),
        },
        "lying_down": group_figures(lying),
        "backward_falls": group_figures(backward),
        "onset": {
            "all_falls": onset_figures(labelled),
            "walking_falls": onset_figures([r for r in walking_falls if r.onset_t is not None]),
            "backward_falls": onset_figures([r for r in backward if r.onset_t is not None]),
        }
        if labelled
        else None,
        "groups": {g.value: group_figures(_in(results, g)) for g in Activity if _in(results, g)},
        "per_code": {c: group_figures([r for r in results if r.code == c]) for c in codes},
    }


def summarise(
    results: Sequence[FileResult], split: str = "held-out", config: DetectorConfig | None = None
) -> dict[str, Any]:
    """The JSON document: top-level figures for ``split``, every split below,
    and the same per dataset (``datasets``: SisFall, KFall, traces) so two
    datasets evaluated together are reported side by side."""
    ok = [r for r in results if r.error is None]
    datasets = sorted({r.dataset for r in ok})
    if len(datasets) > 1:
        # The same code means different things in two datasets (SisFall's D01
        # is walking, KFall's standing): qualify them.
        ok = [_qualified(r) for r in ok]
    doc: dict[str, Any] = split_figures(_halves(ok)[split])
    doc["split"] = split
    doc["files"] = {
        "read": len(ok),
        "skipped": len(results) - len(ok),
        "errors": [r.error for r in results if r.error is not None],
    }
    halves = _halves(ok)
    doc["splits"] = {name: split_figures(rs) | {"files": len(rs)} for name, rs in halves.items()}
    doc["datasets"] = {
        ds: {
            name: split_figures(rs) | {"files": len(rs)}
            for name, rs in _halves([r for r in ok if r.dataset == ds]).items()
        }
        for ds in datasets
    }
    doc["split_rule"] = (
        "by subject id: odd subject number = tuning half, even = held-out "
        "(ids without digits: CRC-32 parity; no subject: file name)"
    )
    doc["impact_rule"] = (
        "labelled impact (KFall, a trace's impact_t) if present, else the sample of peak "
        f"|acceleration| among those followed within {LANDING_TO_LYING_S:g} s by the trunk "
        f"lying (> {LYING_DEG:g} deg); onset-labelled falls also scored between onset and impact"
    )
    if config is not None:
        doc["detector_config"] = asdict(config)
    return doc


def _halves(ok: Sequence[FileResult]) -> dict[str, list[FileResult]]:
    return {
        "held-out": [r for r in ok if not r.tuning],
        "tuning": [r for r in ok if r.tuning],
        "all": list(ok),
    }


def _qualified(r: FileResult) -> FileResult:
    from dataclasses import replace

    return replace(r, code=f"{r.dataset}:{r.code}")


# ----------------------------------------------------------------------------
# Printing


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def _ms(x: float | None) -> str:
    return "   - " if x is None else f"{x:5.0f}"


_DATASET_NAMES = {"sisfall": "SisFall", "kfall": "KFall", "trace": "traces"}


def _per_code_table(splits: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    per = {name: splits[name]["per_code"] for name in HALVES}
    codes = sorted(set(per["held-out"]) | set(per["tuning"]))
    head = "        n  fall/FP  trip  lead50  lead10"
    lines.append(f"{'code':<10}|{'held-out':^40}|{'tuning':^40}")
    lines.append(f"{'':<10}|{head:<40}|{head:<40}")
    for c in codes:
        cells = []
        for name in HALVES:
            g = per[name].get(c)
            if g is None:
                cells.append(f"{'':<40}")
                continue
            if "falls" in g:
                cell = (
                    f"{g['files']:>5}  {_pct(g['sensitivity'])} {_pct(g['tripped_before_impact'])}"
                    f"  {_ms(g['lead_time_ms_median'])}   {_ms(g['lead_time_ms_p10'])}"
                )
            else:
                fp = None if g["specificity"] is None else 1 - g["specificity"]
                cell = f"{g['files']:>5}  {_pct(fp)} {_pct(g['trip_rate'])}"
            cells.append(f"{cell:<40}")
        lines.append(f"{c:<10}|{cells[0]}|{cells[1]}".rstrip())
    return lines


def _onset(key: str, field: str) -> Callable[[dict[str, Any]], Any]:
    def get(s: dict[str, Any]) -> Any:
        onset = s.get("onset")
        return None if not onset else onset[key].get(field)

    return get


_ROWS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("recordings", lambda s: s["files"], "n"),
    ("fall sensitivity (FALL on falls)", lambda s: s["fall"]["sensitivity"], "%"),
    ("fall specificity (no FALL on ADLs)", lambda s: s["fall"]["specificity"], "%"),
    (
        "walking falls tripped before impact",
        lambda s: s["trip"]["walking_falls_tripped_before_impact"],
        "%",
    ),
    ("  lead time median (ms)", lambda s: s["trip"]["lead_time_ms_median"], "ms"),
    ("  lead time 10th percentile (ms)", lambda s: s["trip"]["lead_time_ms_p10"], "ms"),
    ("walking/jogging trips", lambda s: s["trip"]["walking_jogging_trips"], "n"),
    ("  walking trips", lambda s: s["trip"]["walking_trips"], "n"),
    ("  jogging trips per hour", lambda s: s["trip"]["jogging_trips_per_hour"], "x"),
    ("  per hour of walking/jogging", lambda s: s["trip"]["walking_jogging_trips_per_hour"], "x"),
    ("stumble without fall: trip rate", lambda s: s["trip"]["d18_trip_rate"], "%"),
    ("lying down: false FALL rate", lambda s: _fp(s["lying_down"]), "%"),
    ("other ADL trip rate", lambda s: s["trip"]["other_adl_trip_rate"], "%"),
    ("backward falls detected", lambda s: s["backward_falls"].get("sensitivity"), "%"),
    (
        "  tripped before impact",
        lambda s: s["backward_falls"].get("tripped_before_impact"),
        "%",
    ),
    ("  lead median (ms)", lambda s: s["backward_falls"].get("lead_time_ms_median"), "ms"),
    ("onset-labelled falls", _onset("all_falls", "falls"), "n"),
    (
        "  tripped between onset and impact",
        _onset("all_falls", "tripped_between_onset_and_impact"),
        "%",
    ),
    ("    lead to impact median (ms)", _onset("all_falls", "lead_to_impact_ms_median"), "ms"),
    ("    lead to impact p10 (ms)", _onset("all_falls", "lead_to_impact_ms_p10"), "ms"),
    ("    delay after onset median (ms)", _onset("all_falls", "delay_after_onset_ms_median"), "ms"),
    (
        f"  tripped in [onset - {ONSET_TOLERANCE_S:g} s, impact)",
        _onset("all_falls", "tripped_near_onset"),
        "%",
    ),
    ("  tripped before onset", _onset("all_falls", "tripped_before_onset"), "%"),
    ("  tripped only after impact", _onset("all_falls", "tripped_only_after_impact"), "%"),
    (
        "  walking falls in [onset, impact)",
        _onset("walking_falls", "tripped_between_onset_and_impact"),
        "%",
    ),
    (
        "  backward falls in [onset, impact)",
        _onset("backward_falls", "tripped_between_onset_and_impact"),
        "%",
    ),
]


def _fp(group: dict[str, Any]) -> float | None:
    spec = group.get("specificity")
    return None if spec is None else 1.0 - spec


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "%":
        return f"{100 * value:.1f}%"
    if kind == "ms":
        return f"{value:.0f}"
    if kind == "x":
        return f"{value:.2f}"
    return str(value)


def format_report(doc: dict[str, Any]) -> str:
    """The human table: per code (held-out | tuning) for each dataset, then the
    headline figures, the datasets side by side."""
    lines: list[str] = []
    datasets = doc["datasets"]
    for ds, splits in datasets.items():
        if len(datasets) > 1:
            lines.append(f"== {_DATASET_NAMES.get(ds, ds)}")
        lines.extend(_per_code_table(splits))
    lines.append(
        "fall/FP: falls detected (F codes) or ADL recordings with a false FALL (D codes); "
        "trip: tripped before impact (F) or any trip (D); lead in ms (median, 10th pct)"
    )
    lines.append("")
    columns: list[tuple[str, dict[str, Any]]]
    if len(datasets) > 1:
        columns = [
            (f"{_DATASET_NAMES.get(ds, ds)} {half}", splits[half])
            for ds, splits in datasets.items()
            for half in HALVES
        ]
    else:
        columns = [(name, doc["splits"][name]) for name in SPLITS]
    width = max(10, *(len(name) + 2 for name, _ in columns))
    lines.append(f"{'overall':<40}" + "".join(f"{name:>{width}}" for name, _ in columns))
    for label, get, kind in _ROWS:
        values = [get(s) for _, s in columns]
        if kind != "n" and all(v is None for v in values):
            continue
        lines.append(f"{label:<40}" + "".join(f"{_cell(v, kind):>{width}}" for v in values))
    f = doc["files"]
    lines.append(f"files read {f['read']}, skipped {f['skipped']}")
    for err in f["errors"][:10]:
        lines.append(f"  skipped: {err}")
    lines.append(f"split: {doc['split_rule']}")
    lines.append(f"impact: {doc['impact_rule']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# Command line


DESCRIPTION = (
    "Score the streaming fall detector on recordings: a SisFall or KFall dataset directory, a "
    "directory of traces, or one file. Every recording is streamed sample by sample through "
    "the detector the monitor builds, at the monitor's sample rate. Held-out subjects (even "
    "numbers) are the figures that count (docs/detector.md)."
)


def add_parser(subparsers: Any) -> None:
    """Add ``evaluate`` to the ``retroguard`` command's subparsers."""
    p = subparsers.add_parser(
        "evaluate",
        help="score the detector on SisFall, KFall or a directory of traces",
        description=DESCRIPTION,
    )
    configure_parser(p)
    p.set_defaults(func=run)


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path",
        type=Path,
        nargs="+",
        help="SisFall_dataset or KFall directory, trace directory or a file (several: "
        "reported side by side)",
    )
    p.add_argument(
        "--config", type=Path, default=None, help="TOML config ([detector] and imu rate)"
    )
    p.add_argument(
        "--rate",
        type=float,  # nan and inf too are refused by the range check, naming the range
        default=None,
        help=f"monitor sample rate in Hz, {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} (default: config)",
    )
    p.add_argument(
        "--json", type=output_file, default=None, metavar="FILE", help="write figures as JSON"
    )
    p.add_argument(
        "--per-file",
        type=output_file,
        default=None,
        metavar="FILE",
        help="write every recording's result as CSV (what the figures are made of)",
    )
    p.add_argument("-j", "--jobs", type=int, default=None, help="worker processes (default: cores)")
    p.add_argument(
        "--split", choices=SPLITS, default="held-out", help="which half the JSON headline is"
    )
    p.add_argument(
        "--no-mounting", action="store_true", help="ignore mountings declared by the recordings"
    )
    p.add_argument(
        "--rotate",
        default=None,
        metavar="SPEC",
        help="rotate every sample's axes (another mounting): x30,y90,... degrees about the "
        f"sensor axes, or one of {', '.join(ROTATION_PRESETS)}",
    )
    p.add_argument(
        "--sisfall-accel",
        choices=tuple(ACCELEROMETERS),
        default="adxl345",
        help="which of SisFall's two accelerometers to read (another sensor, same motion)",
    )
    p.add_argument(
        "--gyro-scale",
        type=finite_float,
        default=1.0,
        metavar="K",
        help="multiply every gyro reading by K (another gyro calibration; SisFall's readme "
        "factor against the ITG3200 datasheet's is K = 1.1428)",
    )
    p.add_argument(
        "--reverse",
        action="store_true",
        help="play every ADL recording backward in time (acceleration kept, angular rate "
        "negated: forward walking becomes a backward-walking proxy); falls are left out",
    )
    p.add_argument(
        "--start-before-onset",
        type=finite_float,
        default=None,
        metavar="S",
        help="start every onset-labelled recording S seconds before its labelled fall onset "
        "(a detector started just before the fall: its warm-up meets the fall)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one [detector] setting, checked as the config's are (for exploring; "
        "repeatable)",
    )


def _config_from_args(args: argparse.Namespace) -> tuple[DetectorConfig, float]:
    """The detector settings and the monitor's sample rate: the config's (or the defaults),
    with ``--rate`` and every ``--set``; :class:`ConfigError` for a value the monitor's config
    would refuse, with the words its check uses."""
    detector = DetectorConfig()
    rate = ImuConfig().sample_rate_hz
    if args.config is not None:
        from firmware.config import load_config

        cfg = load_config(args.config)
        detector = cfg.detector
        rate = cfg.imu.sample_rate_hz
    if args.rate is not None:
        if not MIN_RATE_HZ <= args.rate <= MAX_RATE_HZ:  # also refuses nan
            raise ConfigError(
                [
                    f"evaluate: --rate {args.rate:g}: must be between {MIN_RATE_HZ:g} and "
                    f"{MAX_RATE_HZ:g} Hz (the rates recordings are resampled between)"
                ]
            )
        rate = args.rate
    if args.set:
        detector = _with_settings(detector, args.set)
    return detector, rate


def _with_settings(detector: DetectorConfig, items: Sequence[str]) -> DetectorConfig:
    """``detector`` with ``FIELD=VALUE`` settings (TOML values, a bare word a string),
    checked as a config file's ``[detector]`` table is, with the same words (``--set ...``
    where a file's name would be). An unknown name or a wrong type is refused; a value the
    monitor's config would refuse for its range or against another setting is taken, with a
    warning for each, because ``--set`` is for exploring: the ablations in docs/detector.md
    switch rules off with values no monitor may run (``lying_rise_deg=0``,
    ``hard_descent_mps=-100``)."""
    import tomllib

    from core import tomlschema
    from firmware.config import parse_config

    table: dict[str, Any] = asdict(detector)
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError([f"evaluate: --set {item!r}: expected FIELD=VALUE"])
        try:
            value = tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError:
            value = text  # not a TOML value: the type check names it
        table[name.strip()] = value
    source = "--set " + " ".join(items)
    try:
        return parse_config({"detector": table}, source).detector
    except ConfigError as refused:
        problems: list[str] = []
        built: DetectorConfig = tomlschema.build(DetectorConfig, table, problems, None, "detector.")
        if problems:  # names and types: nothing to explore
            raise ConfigError([f"{source}: {p}" for p in problems]) from None
        for line in refused.problems:
            print(
                f"warning: {line} (taken for this evaluation: a monitor's config refuses it)",
                file=sys.stderr,
            )
        return built


def _runnable(config: DetectorConfig, rate_hz: float, source: str) -> None:
    """:class:`ConfigError` if the detector cannot run with ``config`` at all (a time constant
    of 0 that ``--set`` took with a warning divides by zero): tried on 2 s of standing still,
    here, rather than as a traceback from every worker."""
    from core.samples import ImuSample

    try:
        detector = build_detector(config, rate_hz)
        for n in range(int(2 * rate_hz)):
            detector.update(ImuSample(n / rate_hz, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0))
    except (ArithmeticError, ValueError) as exc:
        raise ConfigError(
            [f"{source}: the detector cannot run with these settings ({exc})"]
        ) from None


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, optionally write JSON; 0 on success, 2 on bad input
    (settings, a path with no recordings, or none that could be read)."""
    try:
        config, rate = _config_from_args(args)
        if args.set:
            _runnable(config, rate, "--set " + " ".join(args.set))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    paths: list[Path] = []
    for root in args.path:
        if not root.exists():
            print(f"evaluate: {root}: no such file or directory", file=sys.stderr)
            return 2
        found = discover(root)
        if not found:
            print(
                f"evaluate: no recordings found in {root} (SisFall or KFall files, or traces)",
                file=sys.stderr,
            )
            return 2
        paths.extend(found)
    if not (math.isfinite(args.gyro_scale) and args.gyro_scale > 0):
        print(
            f"evaluate: --gyro-scale {args.gyro_scale}: must be a positive number", file=sys.stderr
        )
        return 2
    try:
        rotation = parse_rotation(args.rotate) if args.rotate else None
    except ValueError as e:
        print(f"evaluate: {e}", file=sys.stderr)
        return 2
    if args.start_before_onset is not None and not (
        math.isfinite(args.start_before_onset) and args.start_before_onset >= 0
    ):
        print(
            f"evaluate: --start-before-onset {args.start_before_onset}: must be a number >= 0",
            file=sys.stderr,
        )
        return 2
    if args.reverse:
        paths = [p for p in paths if not _is_fall(p)]
        if not paths:
            print("evaluate: --reverse: no ADL recordings to play backward", file=sys.stderr)
            return 2
    progress = None if args.no_progress else Progress(sys.stderr)
    results = run_files(
        paths,
        rate,
        config,
        use_mounting=not args.no_mounting,
        rotation=rotation,
        sisfall_accelerometer=args.sisfall_accel,
        gyro_scale=args.gyro_scale,
        reverse=args.reverse,
        start_before_onset=args.start_before_onset,
        jobs=args.jobs,
        progress=progress,
    )
    if not any(r.error is None for r in results):
        print(
            f"evaluate: no recording in {', '.join(map(str, args.path))} could be read "
            f"({len(results)} skipped; first: {results[0].error})",
            file=sys.stderr,
        )
        return 2
    if args.start_before_onset is not None:
        unlabelled = sorted(
            {_DATASET_NAMES.get(r.dataset, r.dataset) for r in results if r.error is None}
            - {_DATASET_NAMES.get(r.dataset, r.dataset) for r in results if r.onset_t is not None}
        )
        if unlabelled:
            print(
                f"evaluate: --start-before-onset: {' and '.join(unlabelled)} recordings have no "
                "labelled onset: they are played whole",
                file=sys.stderr,
            )
    doc = summarise(results, args.split, config)
    doc["sample_rate_hz"] = rate
    if args.rotate:
        doc["rotation"] = {"spec": args.rotate, "matrix": rotation}
    if args.sisfall_accel != "adxl345":
        doc["sisfall_accelerometer"] = args.sisfall_accel
    if args.gyro_scale != 1.0:
        doc["gyro_scale"] = args.gyro_scale
    if args.reverse:
        doc["time_reversed"] = True
    if args.start_before_onset is not None:
        doc["start_before_onset_s"] = args.start_before_onset
    print(format_report(doc))
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    if args.per_file is not None:
        write_per_file(args.per_file, results)
    return 0


def write_per_file(path: Path, results: Sequence[FileResult]) -> None:
    """One CSV row per recording, every :class:`FileResult` field."""
    import csv

    names = [f.name for f in fields(FileResult)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for r in results:
            w.writerow(["" if getattr(r, n) is None else getattr(r, n) for n in names])


def _is_fall(path: Path) -> bool:
    """Whether a recording is a fall (a file that cannot be described is kept:
    evaluate reports it as skipped)."""
    try:
        return describe(path).label == "fall"
    except (DatasetFormatError, OSError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.evaluate PATH`` (the same as ``retroguard evaluate``)."""
    parser = argparse.ArgumentParser(prog="retroguard evaluate", description=DESCRIPTION)
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
