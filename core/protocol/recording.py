"""Writing and reading :class:`~core.protocol.messages.ImuRecording`: int16 counts, zlib.

Why not JSON floats: a 14-second window at 200 Hz is 16,800 numbers; as
JSON floats it was 30 kB an alert, stored twice on the device and parsed
number by number on ingest (45 % of the caregiver's ingest CPU). As int16
counts at the sensor's own resolution, compressed, it is about a third of
that, stored once, and read with one ``array`` call.
"""

from __future__ import annotations

import math
import sys
import zlib
from array import array
from collections.abc import Sequence

from core.protocol.messages import ImuMarks, ImuRecording
from core.samples import ImuSample

_COUNT_MAX = 32767
MAX_SAMPLES = 100_000
"""The most samples a recording read here may claim: a monitor's holds at most 60 s before
the trip and some 10 s after at 100 Hz (``firmware.windows``), about 7,000. The claim sized
the buffer unpacked into, and the samples unpacked as far as they went: ``count`` = 2**60 was
a MemoryError, 10**8 a 1.2 GB buffer on the caregiver's server for each view of the plot, and
a few kB of zlib can unpack to gigabytes."""


def encode_recording(
    samples: Sequence[ImuSample],
    *,
    trip_t: float,
    accel_range_g: float,
    gyro_range_dps: float,
    upright: tuple[float, float, float] | None = None,
    marks: ImuMarks | None = None,
) -> ImuRecording:
    """``samples`` (evenly spaced, oldest first) around a trip at monotonic ``trip_t``."""
    accel_scale = accel_range_g / _COUNT_MAX
    gyro_scale = gyro_range_dps / _COUNT_MAX
    counts = array("h")
    for s in samples:
        counts.extend(
            (
                _count(s.ax, accel_scale),
                _count(s.ay, accel_scale),
                _count(s.az, accel_scale),
                _count(s.gx, gyro_scale),
                _count(s.gy, gyro_scale),
                _count(s.gz, gyro_scale),
            )
        )
    if sys.byteorder != "little":
        counts.byteswap()
    period = (samples[-1].t - samples[0].t) / (len(samples) - 1) if len(samples) > 1 else 0.005
    return ImuRecording(
        start_s=round(samples[0].t - trip_t, 6) if samples else 0.0,
        period_s=round(period, 9),
        accel_g_per_count=accel_scale,
        gyro_dps_per_count=gyro_scale,
        count=len(samples),
        samples=zlib.compress(counts.tobytes(), 6),
        upright=upright,
        marks=marks or ImuMarks(),
    )


def _count(value: float, scale: float) -> int:
    if not math.isfinite(value):
        return 0
    return max(-_COUNT_MAX, min(_COUNT_MAX, round(value / scale)))


def decode_recording(recording: ImuRecording) -> list[ImuSample]:
    """The samples, with ``t`` in seconds from the trip. ValueError if it is inconsistent."""
    if recording.count > MAX_SAMPLES:
        raise ValueError(
            f"recording claims {recording.count:,} samples, over the {MAX_SAMPLES:,} one holds"
        )
    expected = recording.count * 12
    try:  # no further than the claim (and a byte, to tell a longer stream): a bomb stops there
        raw = zlib.decompressobj().decompress(recording.samples, expected + 1)
    except zlib.error as exc:
        raise ValueError(f"recording samples are not zlib data: {exc}") from None
    if len(raw) != expected:
        held = f"more than {expected}" if len(raw) > expected else f"{len(raw)}"
        raise ValueError(f"recording holds {held} bytes, not 12 (6 x int16) x {recording.count}")
    counts = array("h")
    counts.frombytes(raw)
    if sys.byteorder != "little":
        counts.byteswap()
    a, g = recording.accel_g_per_count, recording.gyro_dps_per_count
    start, period = recording.start_s, recording.period_s
    return [
        ImuSample(
            start + i * period,
            counts[6 * i] * a,
            counts[6 * i + 1] * a,
            counts[6 * i + 2] * a,
            counts[6 * i + 3] * g,
            counts[6 * i + 4] * g,
            counts[6 * i + 5] * g,
        )
        for i in range(recording.count)
    ]
