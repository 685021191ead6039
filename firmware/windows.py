"""IMU recordings around trips, made on the real-time thread and cheap there.

A caregiver's plot of a trip needs the seconds before it (how the walker lost
balance) and after it (the impact, and whether they moved afterwards): from
:data:`BEFORE_S` before to :data:`AFTER_S` after, at up to
:data:`MAX_RATE_HZ`. The alert itself must not wait for that, so the trip
event goes out at once and a ``window`` event follows when the recording is
complete (docs/incidents.md).

Why it is cheap on the loop: each sample is appended to a list, and every
``factor`` samples (2 at 200 Hz: the pair is averaged, which is causal and
costs one addition per value) one row of six int16 counts is packed with one
``struct`` call, kept in a ring of the last :data:`BEFORE_S` seconds and
appended to the recordings under way. Completing a recording joins its rows
and compresses them once (:func:`finish`); nothing is converted twice and
nothing waits on a lock or the disk. Counts are scaled to the controller's
sensor limits, which every sample that reaches here has passed, so no value
needs clamping.
"""

from __future__ import annotations

import math
import struct
import zlib
from array import array
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Protocol, runtime_checkable

from core.protocol.events import Event
from core.protocol.messages import ImuMarks, ImuRecording
from core.samples import ImuSample

BEFORE_S = 4.0
"""Seconds of IMU kept before each trip."""
AFTER_S = 10.0
"""Seconds recorded after each trip before its ``window`` event is sent."""
MAX_RATE_HZ = 100.0
"""The recording's highest sample rate: faster IMU rates are averaged down to it."""
IMPACT_SEARCH_S = 8.0
"""How far before a fall's confirmation its landing is looked for (the detector confirms a
firm landing 2 s after it, a soft one 6 s after, with its default settings)."""
SILENT_GRACE_S = 1.0
"""A recording whose samples stopped (the IMU was lost) is sent this long after its end is
due on the loop's clock, with what it has."""
ZLIB_LEVEL = 1
"""zlib's fastest level: it runs on the loop (relay released). On the demo's fall it takes
half the time of level 6 (0.9 ms against 2.1 ms here) for 2.5 % more bytes (11.0 kB, 10.7 kB)."""
_COUNT_MAX = 32767
_ROW = struct.Struct("<6h")
_RAW_FIELDS = 4
"""Kept of each raw sample for the impact search: ``t, ax, ay, az``."""


@runtime_checkable
class KnowsUpright(Protocol):
    """A detector that can say which way is up for the walker (the recording's reference)."""

    @property
    def upright(self) -> tuple[float, float, float] | None: ...


@runtime_checkable
class KnowsImpact(Protocol):
    """A detector that can say when the landing of the fall it confirmed was."""

    @property
    def impact_t(self) -> float | None: ...


@dataclass(slots=True)
class Recording:
    """One recording under way: the trip it is about and the rows so far."""

    trip: Event
    """The event the recording is about (its ``of``)."""
    trip_t: float
    """Sample time of the trip (the detection's), the recording's zero."""
    ends_at: float
    """Sample time at which it is complete."""
    deadline: float
    """Loop time after which it is sent even if no sample came (IMU lost)."""
    upright: tuple[float, float, float] | None
    first_t: float
    last_t: float
    rows: list[bytes] = field(default_factory=list)
    impact: float | None = None
    confirm: float | None = None
    complete: bool = False


class WindowRecorder:
    """Keeps the recent IMU as packed rows and records around each trip."""

    def __init__(
        self,
        sample_rate_hz: float,
        accel_limit_g: float,
        gyro_limit_dps: float,
        *,
        before_s: float = BEFORE_S,
        after_s: float = AFTER_S,
        max_rate_hz: float = MAX_RATE_HZ,
    ) -> None:
        self.factor = max(1, round(sample_rate_hz / max_rate_hz))
        """Samples averaged into one row (2 at 200 Hz)."""
        self.before_s = before_s
        self.after_s = after_s
        self.accel_g_per_count = accel_limit_g / _COUNT_MAX
        self.gyro_dps_per_count = gyro_limit_dps / _COUNT_MAX
        self._ka = 1.0 / (self.accel_g_per_count * self.factor)
        self._kg = 1.0 / (self.gyro_dps_per_count * self.factor)
        row_rate = sample_rate_hz / self.factor
        self._row_period = 1.0 / row_rate
        self._ring: deque[tuple[float, bytes]] = deque(maxlen=math.ceil(before_s * row_rate) + 2)
        size = max(1, int(IMPACT_SEARCH_S * sample_rate_hz))
        self._raw = array("d", (-math.inf,)) * (_RAW_FIELDS * size)
        """The last :data:`IMPACT_SEARCH_S` of samples' ``t, ax, ay, az``, a ring of doubles
        (for :meth:`impact_before`; an unused slot's time is -inf): 50 kB at 200 Hz where
        the samples themselves took 450."""
        self._raw_at = 0
        """Where the next sample's ``t`` goes in :attr:`_raw`."""
        self._group: list[ImuSample] = []
        self._active: list[Recording] = []

    # ------------------------------------------------------------ per sample

    def add(self, sample: ImuSample) -> None:
        """One good sample (in order). A list append; a ``struct`` pack every ``factor``."""
        raw, at = self._raw, self._raw_at
        raw[at], raw[at + 1], raw[at + 2], raw[at + 3] = sample[:_RAW_FIELDS]
        at += _RAW_FIELDS
        self._raw_at = 0 if at == len(raw) else at
        group = self._group
        group.append(sample)
        if len(group) < self.factor:
            return
        self._group = []
        ka, kg = self._ka, self._kg
        if self.factor == 1:
            t, ax, ay, az, gx, gy, gz = sample
        elif self.factor == 2:
            a, b = group
            t = (a.t + b.t) * 0.5
            ax, ay, az = a.ax + b.ax, a.ay + b.ay, a.az + b.az
            gx, gy, gz = a.gx + b.gx, a.gy + b.gy, a.gz + b.gz
        else:
            ts, axs, ays, azs, gxs, gys, gzs = zip(*group, strict=True)
            t = sum(ts) / self.factor
            ax, ay, az, gx, gy, gz = sum(axs), sum(ays), sum(azs), sum(gxs), sum(gys), sum(gzs)
        row = _ROW.pack(
            round(ax * ka), round(ay * ka), round(az * ka), round(gx * kg), round(gy * kg),
            round(gz * kg),
        )  # fmt: skip
        self._append_row(t, row)

    def add_batch(self, batch: Sequence[ImuSample]) -> None:
        """A wake's good samples, in order: exactly :meth:`add` for each, in one call.

        The loop's usual batch at 200 Hz (two samples a wake, starting a row) is one row:
        both kept for the impact search, averaged and packed, without a second call and
        without the group list. Any other batch goes through :meth:`add` sample by sample."""
        if self.factor != 2 or len(batch) != 2 or self._group:
            for sample in batch:
                self.add(sample)
            return
        a, b = batch
        raw, at = self._raw, self._raw_at
        raw[at], raw[at + 1], raw[at + 2], raw[at + 3] = a[:_RAW_FIELDS]
        at += _RAW_FIELDS
        if at == len(raw):
            at = 0
        raw[at], raw[at + 1], raw[at + 2], raw[at + 3] = b[:_RAW_FIELDS]
        at += _RAW_FIELDS
        self._raw_at = 0 if at == len(raw) else at
        ka, kg = self._ka, self._kg
        t = (a[0] + b[0]) * 0.5
        row = _ROW.pack(
            round((a[1] + b[1]) * ka), round((a[2] + b[2]) * ka), round((a[3] + b[3]) * ka),
            round((a[4] + b[4]) * kg), round((a[5] + b[5]) * kg), round((a[6] + b[6]) * kg),
        )  # fmt: skip
        self._append_row(t, row)

    def _append_row(self, t: float, row: bytes) -> None:
        """A packed row at time ``t``: into the ring and every recording still filling."""
        self._ring.append((t, row))
        for recording in self._active:
            if not recording.complete:
                recording.rows.append(row)
                recording.last_t = t
                if t >= recording.ends_at:
                    recording.complete = True

    # ---------------------------------------------------------- around trips

    @property
    def recording(self) -> bool:
        """A recording is under way."""
        return bool(self._active)

    def start(
        self, trip: Event, trip_t: float, now: float, upright: tuple[float, float, float] | None
    ) -> Recording:
        """Record around ``trip``, detected at sample time ``trip_t`` (loop time ``now``)."""
        since = trip_t - self.before_s
        rows = [row for t, row in self._ring if t >= since]
        first_t = next((t for t, _ in self._ring if t >= since), trip_t)
        recording = Recording(
            trip=trip,
            trip_t=trip_t,
            ends_at=trip_t + self.after_s,
            deadline=now + self.after_s + SILENT_GRACE_S,
            upright=upright,
            first_t=first_t,
            last_t=self._ring[-1][0] if rows else first_t,
            rows=rows,
        )
        self._active.append(recording)
        return recording

    def covering(self, t: float) -> list[Recording]:
        """The recordings under way whose span holds sample time ``t``."""
        return [r for r in self._active if r.trip_t <= t <= r.ends_at]

    def impact_before(self, t: float, impact_g: float) -> float | None:
        """Sample time of the landing a fall confirmed at ``t`` names (its ``impact_g``), if kept.

        The detector reports the landing's peak, rounded to 0.01 g; the
        latest sample at or before ``t`` whose magnitude rounds to it is
        that peak. Squares are compared, newest first: a few hundred
        multiplications, once per fall.
        """
        low, high = (impact_g - 0.005) ** 2, (impact_g + 0.005) ** 2
        horizon = t - IMPACT_SEARCH_S
        raw, newest = self._raw, self._raw_at - _RAW_FIELDS
        for at in chain(
            range(newest, -1, -_RAW_FIELDS),
            range(len(raw) - _RAW_FIELDS, newest, -_RAW_FIELDS),
        ):
            st = raw[at]
            if st > t:
                continue
            if st < horizon:  # also an unused slot (-inf): nothing older is kept
                break
            ax, ay, az = raw[at + 1], raw[at + 2], raw[at + 3]
            squared = ax * ax + ay * ay + az * az
            if low <= squared <= high:
                return st
        return None

    def take_done(self, now: float) -> list[Recording]:
        """The recordings complete by sample time, or overdue on the loop's clock (no samples)."""
        if not self._active:
            return []
        done = [r for r in self._active if r.complete or now >= r.deadline]
        if done:
            self._active = [r for r in self._active if not (r.complete or now >= r.deadline)]
        return done

    def take_all(self) -> list[Recording]:
        """Every recording under way, complete or not (re-armed or stopping: what there is)."""
        done, self._active = self._active, []
        return done

    def finish(self, recording: Recording) -> ImuRecording:
        """The recording's payload: rows joined and compressed once."""
        count = len(recording.rows)
        span = recording.last_t - recording.first_t
        period = span / (count - 1) if count > 1 and span > 0 else self._row_period
        inside = recording.first_t - recording.trip_t, recording.last_t - recording.trip_t
        return ImuRecording(
            start_s=round(inside[0], 6),
            period_s=round(period, 9),
            accel_g_per_count=self.accel_g_per_count,
            gyro_dps_per_count=self.gyro_dps_per_count,
            count=count,
            samples=zlib.compress(b"".join(recording.rows), ZLIB_LEVEL),
            upright=recording.upright,
            marks=ImuMarks(
                trip=0.0,
                impact=_inside(recording.impact, inside),
                confirm=_inside(recording.confirm, inside),
            ),
        )


def _inside(mark: float | None, span: tuple[float, float]) -> float | None:
    if mark is None or not span[0] <= mark <= span[1]:
        return None
    return round(mark, 4)
