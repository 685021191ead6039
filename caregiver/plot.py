"""The series an event's plot draws, from the IMU recording of its incident.

A recording (:class:`~core.protocol.messages.ImuRecording`) runs from a few
seconds before the trip to ten seconds after it, so a caregiver sees both the
stumble and whether the walker moved afterwards. The plot shows:

* acceleration magnitude ``|a|`` in g;
* tilt in degrees from *upright*: the direction of gravity the monitor had
  learned before the trip (sent in the recording), measured against the
  acceleration averaged over 0.2 s so that footfalls do not make it jump.
  Older monitors sent no upright; for them it is the first second of the
  window, and the plot says so;
* angular rate ``|ω|`` in °/s;
* labelled marks: the trip (0 s, when the belt was stopped), the impact and
  the fall's confirmation when they fall inside the window.

:func:`after_the_fall` reads the same series to say, in words, whether the
walker got up or moved in the seconds the recording covers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeGuard

import msgspec

from core.protocol.messages import ImuRecording
from core.protocol.recording import decode_recording
from core.samples import ImuSample

SMOOTHING_S = 0.2
"""Tilt is measured on the acceleration averaged over this long (centred)."""
UPRIGHT_DEG = 35.0
"""Tilt below this is "upright again" for :func:`after_the_fall`."""
MOVING_DPS = 20.0
"""Angular rate above this, after the fall, is "moving"."""


class Mark(msgspec.Struct, frozen=True):
    t: float
    """Seconds from the trip."""
    label: str


class PlotSeries(msgspec.Struct, frozen=True):
    """What ``/api/events/<id>/plot`` answers and ``static/plot.js`` draws."""

    t: list[float]
    accel_g: list[float]
    tilt_deg: list[float | None]
    rate_dps: list[float]
    marks: list[Mark]
    upright: str
    """Where "upright" came from, for the plot's caption."""
    zero: str
    """What 0 s is, for the time axis ("seconds (0 = belt stopped)"): :data:`BELT_STOPPED` in
    a recording, :data:`DETECTION` in an older monitor's window, whose samples end at the
    detection (its axis said "0 = belt stopped" of a moment the window does not mark)."""


BELT_STOPPED = "belt stopped"
"""The mark at 0 s, and what the words after the fall count from ("upright again 4 s after the
belt stopped"): the moment the monitor stopped the belt, said as the timeline and the reports
say it (:data:`caregiver.story.COUNTED`'s "Belt stops"). A "trip" is the monitor's word for it,
which a caregiver reads as tripping over; the plot's data keys keep their names."""

DETECTION = "detection"
"""The 0 s of an older monitor's ``imu_window`` (:func:`window_series`): its one mark."""

UPRIGHT_LEARNED = f"the upright the monitor had learned before the {BELT_STOPPED}"
UPRIGHT_FIRST_SECOND = "the first second of the window (this monitor sent no upright)"


def recording_series(recording: ImuRecording) -> PlotSeries:
    """The plot of a recording. ValueError if the recording is inconsistent."""
    samples = decode_recording(recording)
    marks = [Mark(0.0, BELT_STOPPED)]
    if recording.marks.impact is not None:
        marks.append(Mark(recording.marks.impact, "impact"))
    if recording.marks.confirm is not None:
        marks.append(Mark(recording.marks.confirm, "fall confirmed"))
    marks.sort(key=lambda m: m.t)
    if recording.upright is not None and _norm(recording.upright) > 1e-6:
        return _series(samples, recording.upright, marks, UPRIGHT_LEARNED, BELT_STOPPED)
    return _series(samples, _first_second(samples), marks, UPRIGHT_FIRST_SECOND, BELT_STOPPED)


def window_series(window: dict[str, Any]) -> PlotSeries:
    """The plot of an older monitor's ``imu_window`` (samples up to the detection, no upright:
    the detection is the only mark)."""
    samples = [ImuSample(*(float(v) for v in row)) for row in window.get("rows", [])]
    marks = [Mark(0.0, "detected")]
    return _series(samples, _first_second(samples), marks, UPRIGHT_FIRST_SECOND, DETECTION)


def _first_second(samples: Sequence[ImuSample]) -> tuple[float, float, float]:
    if not samples:
        return (0.0, 0.0, 1.0)
    first = [s for s in samples if s.t <= samples[0].t + 1.0]
    n = len(first)
    return (
        sum(s.ax for s in first) / n,
        sum(s.ay for s in first) / n,
        sum(s.az for s in first) / n,
    )


def _norm(v: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def _series(
    samples: Sequence[ImuSample],
    upright: Sequence[float],
    marks: list[Mark],
    upright_source: str,
    zero: str,
) -> PlotSeries:
    up_norm = _norm(upright)
    ux, uy, uz = (c / up_norm for c in upright) if up_norm > 1e-6 else (0.0, 0.0, 1.0)
    n = len(samples)
    period = (samples[-1].t - samples[0].t) / (n - 1) if n > 1 else 0.01
    half = max(0, round(SMOOTHING_S / period / 2)) if period > 0 else 0
    # running sums make the centred average O(n) whatever its length
    sx, sy, sz = [0.0], [0.0], [0.0]
    for s in samples:
        sx.append(sx[-1] + s.ax)
        sy.append(sy[-1] + s.ay)
        sz.append(sz[-1] + s.az)
    t: list[float] = []
    accel: list[float] = []
    tilt: list[float | None] = []
    rate: list[float] = []
    for i, s in enumerate(samples):
        t.append(round(s.t, 4))
        accel.append(round(math.sqrt(s.ax * s.ax + s.ay * s.ay + s.az * s.az), 3))
        rate.append(round(math.sqrt(s.gx * s.gx + s.gy * s.gy + s.gz * s.gz), 1))
        lo, hi = max(0, i - half), min(n, i + half + 1)
        k = hi - lo
        mx, my, mz = (sx[hi] - sx[lo]) / k, (sy[hi] - sy[lo]) / k, (sz[hi] - sz[lo]) / k
        m = math.sqrt(mx * mx + my * my + mz * mz)
        if m < 0.3:  # falling freely: gravity has no direction to measure against
            tilt.append(None)
            continue
        cos = (mx * ux + my * uy + mz * uz) / m
        tilt.append(round(math.degrees(math.acos(max(-1.0, min(1.0, cos)))), 1))
    return PlotSeries(t, accel, tilt, rate, marks, upright_source, zero)


class AfterTheTrip(msgspec.Struct, frozen=True):
    """What the recording shows of the walker after its last mark."""

    upright: bool
    """Upright again (tilt under :data:`UPRIGHT_DEG`) at some point."""
    text: str
    """For "the recording shows them ...": "upright again 4 s after the belt stopped"."""


def after_the_fall(series: PlotSeries) -> AfterTheTrip | None:
    """What the recording shows after its last mark (the fall's confirmation, or the trip):
    upright again, down and moving, or down and still. None if nothing was recorded after."""
    last_mark = max((m.t for m in series.marks), default=0.0)
    after = [i for i, t in enumerate(series.t) if t > last_mark + 0.5]
    if not after:
        return None
    end = series.t[-1]
    upright_at = next(
        (series.t[i] for i in after if (v := series.tilt_deg[i]) is not None and v < UPRIGHT_DEG),
        None,
    )
    if upright_at is not None:
        return AfterTheTrip(True, f"upright again {upright_at:.0f} s after the {BELT_STOPPED}")
    tail = [i for i in after if series.t[i] >= end - 3.0]
    if any(series.rate_dps[i] > MOVING_DPS for i in tail):
        return AfterTheTrip(False, f"still down but moving {end:.0f} s after the {BELT_STOPPED}")
    return AfterTheTrip(False, f"still down and not moving {end:.0f} s after the {BELT_STOPPED}")


def valid_window(window: object) -> TypeGuard[dict[str, Any]]:
    """An older monitor's ``imu_window`` as docs/mqtt.md describes it (columns dt, ax..gz;
    rows of 7 numbers)."""
    if not isinstance(window, dict):
        return False
    rows = window.get("rows")
    return (
        window.get("columns") == ["dt", "ax", "ay", "az", "gx", "gy", "gz"]
        and isinstance(rows, list)
        and all(
            isinstance(r, list)
            and len(r) == 7
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in r)
            for r in rows
        )
    )
