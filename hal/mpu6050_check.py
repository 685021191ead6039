"""Plausibility checks on MPU-6050 FIFO bursts, so that corrupted bytes never become samples.

The FIFO has no checksum. A burst damaged on the wire (treadmill-motor interference, a flaky
cable, a register pointer misread by the chip) or read out of frame alignment decodes into
int16 values that are all in range, and the detector would take them for motion. The driver's
count checks catch a torn FIFO; these two checks catch wrong content:

* **Register cross-check.** Right after the FIFO count, the driver reads INT_STATUS (0x3A)
  on through the 14 data registers (0x3B..0x48): the chip's newest sample, copied as one
  snapshot when the read starts, for 14 more bytes in a transaction the driver makes anyway.
  The chip loads its FIFO from those same registers, so the snapshot must equal the burst's
  last frame byte for byte. Corruption that reaches the end of a burst fails this: a shift,
  a bit slip, a stuck line, random bytes, a burst longer than the FIFO because the count was
  corrupted, a corrupted snapshot. When the chip took a sample between the count and the
  snapshot (a few percent of polls, counted in ``Mpu6050.follow_ups``), the driver reads
  on: the count again and the frames taken since, as many as the measured time allows; the
  snapshot must be one of them. The counted burst is then vouched for by the temperature
  alone. So is a burst read from the wrong register (a misread pointer byte) when it held one
  frame: the frame stays in the FIFO and is what the driver reads on to.
* **Temperature channel.** ``TEMP_FIFO_EN`` puts the die temperature into every frame, which
  then has the data registers' own 14-byte layout (accel, temperature, gyro). A die warms and
  cools over minutes, so every frame's temperature must lie within :data:`TEMP_NOISE_C` plus
  :data:`TEMP_SLEW_C_PER_S` per second of the last good frame, and inside the sensor's range.
  This covers every frame of a burst, not only the last, but only where the damage reaches
  the temperature word: a random word passes with a probability of about 0.5 %. Its blind
  spot is a die near 36.53 °C, where TEMP_OUT is zero and words near zero (a still gyro, the
  0x00 or 0xFF bytes of a stuck line) look like a temperature.

A third rule needs no measurement: **no frame of one repeated byte is delivered.** An empty
FIFO answers a read with the last byte read from it, repeated, so a frame popped from an empty
FIFO is 14 copies of one byte (:func:`uniform`). A real sample is that only if its three
accelerations, three rates and temperature are the same word: with any sensor noise, never in
practice, but possible, so such a frame makes the burst fail (a reported gap) rather than
being dropped quietly. The one exception is the driver's one-pulse read
(``Mpu6050._poll_one``): a popped frame that is the last byte read from the FIFO, repeated,
with a temperature word no real frame can have (:meth:`FifoPlausibility.could_be_sample`),
came from an empty FIFO and is dropped.

Neither catches a changed accelerometer or gyro byte, in a frame before the burst's last,
that leaves its temperature word alone. Nor can anything here tell a one-frame read whose
pointer the chip misread as ACCEL_XOUT_H from a true pop: it returns the data registers,
byte for byte the snapshot, while the FIFO keeps its frames, so that true sample comes early
and then again in its place (``tests/test_fifo_plausibility.py``, a strict xfail).

The monitor reads the FIFO about as often as the chip samples, so most bursts are one frame;
``benchmarks/imu_fifo.py`` measures what each check catches and what it costs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from hal import mpu6050_registers as reg

TEMP_NOISE_C: Final = 0.5
"""Allowed difference between two readings taken together: noise and quantisation. About ten
times the sample-to-sample scatter of the sensor, so a clean stream never trips."""
TEMP_SLEW_C_PER_S: Final = 0.5
"""Allowed drift per second since the last good frame. A die on a belt changes by a few
degrees over minutes (warm-up, body heat); this is generous on purpose."""
CLOCK_MARGIN: Final = 1.05
"""The chip's sample clock may be this much faster than nominal."""

_TEMP_LSB: Final = reg.TEMP_LSB_PER_C
_TEMP_MIN_RAW: Final = math.ceil((reg.TEMP_MIN_C - reg.TEMP_OFFSET_C) * _TEMP_LSB)
_TEMP_MAX_RAW: Final = math.floor((reg.TEMP_MAX_C - reg.TEMP_OFFSET_C) * _TEMP_LSB)
_TEMP_INDEX: Final = 3
_WORDS_WITH_TEMP: Final = reg.FIFO_FRAME_BYTES_WITH_TEMP // 2
"""The temperature is the fourth of a 14-byte frame's seven words."""


@dataclass(frozen=True, slots=True)
class FifoChecks:
    """Which plausibility checks the driver runs: both by default.

    Switching them off is for measurements (``benchmarks/imu_fifo.py``): with both off the
    driver's bus traffic is exactly that of a driver without the checks.
    """

    temperature: bool = True
    registers: bool = True

    @property
    def frame_bytes(self) -> int:
        return reg.FIFO_FRAME_BYTES_WITH_TEMP if self.temperature else reg.FIFO_FRAME_BYTES

    @property
    def fifo_sources(self) -> int:
        """The FIFO_EN value: accel and gyro XYZ, plus the temperature for its check."""
        return reg.SENSOR_FIFO_BITS | (reg.TEMP_FIFO_EN if self.temperature else 0)

    @property
    def status_read_bytes(self) -> int:
        """Bytes read from INT_STATUS on: the flags, then the data registers for the cross-check."""
        return 1 + reg.DATA_BYTES if self.registers else 1


BOTH_CHECKS: Final = FifoChecks()
"""What the driver runs unless told otherwise."""


def uniform(frame: bytes) -> bool:
    """True when ``frame`` is one byte repeated: what a read of an empty FIFO returns."""
    return frame == frame[:1] * len(frame)


def celsius(raw: int) -> float:
    return raw / _TEMP_LSB + reg.TEMP_OFFSET_C


def samples_between(seconds: float, period: float) -> int:
    """The most samples a chip, up to :data:`CLOCK_MARGIN` fast, can take in ``seconds``."""
    return int(max(0.0, seconds) * CLOCK_MARGIN / period) + 1


class FifoPlausibility:
    """The checks' state along the stream: the last good die temperature."""

    def __init__(self, checks: FifoChecks, period: float) -> None:
        self.checks = checks
        self._period = period
        self._frame_bytes = checks.frame_bytes
        self._temp_ref: int | None = None
        self._temp_ref_at = 0.0

    def snapshot_is_last(self, data: bytes, snapshot: bytes) -> bool:
        """True when the data registers equal the burst's last frame: the usual case."""
        return data[-self._frame_bytes :] == self._as_frame(snapshot)

    def could_be_sample(self, frame: bytes, read_time: float) -> bool:
        """False only when ``frame``'s die temperature is one no true frame read at
        ``read_time`` can have (the temperature check passes every true frame; without the
        temperature in the frame, nothing rules a frame out)."""
        if not self.checks.temperature:
            return True
        temp = int.from_bytes(frame[6:8], "big", signed=True)
        return self._judge_temperature((temp,), 1, read_time) is None

    def check(
        self,
        data: bytes,
        values: Sequence[int],
        frames: int,
        snapshot: bytes | None,
        counted: int,
        newer: int,
        read_time: float,
    ) -> str | None:
        """Why this burst cannot be true, or ``None`` when it passes (and becomes the reference).

        ``data`` is the burst of ``frames`` frames and ``values`` its int16 words, read at
        ``read_time``. ``snapshot`` is the data registers read just after the first
        ``counted`` frames were counted (``None`` when the cross-check is off, or when the
        caller found it as the burst's last frame with :meth:`snapshot_is_last`); when the
        burst has more, they are a follow-up read, and the snapshot must be one of the first
        ``newer`` of them.
        """
        size = self._frame_bytes
        for start in range(0, frames * size, size):
            frame = data[start : start + size]
            if frame == frame[:1] * size:  # uniform(frame), without a call a frame
                return (
                    f"frame {start // size + 1} of {frames} is one byte repeated "
                    f"(0x{data[start]:02x}), as read from an empty FIFO"
                )
        temps: Sequence[int] = ()
        if self.checks.temperature:
            temps = values[_TEMP_INDEX::_WORDS_WITH_TEMP]
            problem = self._judge_temperature(temps, frames, read_time)
            if problem is not None:
                return problem
        if snapshot is not None:
            problem = self._judge_snapshot(data, frames, snapshot, counted, newer)
            if problem is not None:
                return problem
        if temps:
            self._temp_ref = temps[-1]
            self._temp_ref_at = read_time
        return None

    def _judge_temperature(self, temps: Sequence[int], frames: int, read_time: float) -> str | None:
        lo, hi = min(temps), max(temps)
        if lo < _TEMP_MIN_RAW or hi > _TEMP_MAX_RAW:
            outside = lo if lo < _TEMP_MIN_RAW else hi
            return (
                f"die temperature {celsius(outside):.1f} °C is outside the sensor's "
                f"{reg.TEMP_MIN_C:g}..{reg.TEMP_MAX_C:g} °C"
            )
        span = frames * self._period
        ref = self._temp_ref
        if ref is None:
            # The first frames since start-up: they can only agree with each other.
            if hi - lo > _allowed_lsb(span):
                return (
                    f"die temperature jumps by {(hi - lo) / _TEMP_LSB:.2f} °C within "
                    f"{span * 1000:.0f} ms"
                )
            return None
        allowed = _allowed_lsb(max(0.0, read_time - self._temp_ref_at) + span)
        worst = hi if hi - ref >= ref - lo else lo
        if abs(worst - ref) > allowed:
            return (
                f"die temperature jumps from {celsius(ref):.2f} °C to {celsius(worst):.2f} °C "
                f"(at most {allowed / _TEMP_LSB:.2f} °C since the last good reading)"
            )
        return None

    def _judge_snapshot(
        self, data: bytes, frames: int, snapshot: bytes, counted: int, newer: int
    ) -> str | None:
        size = self._frame_bytes
        expected = self._as_frame(snapshot)
        if counted == frames:
            if data[-size:] == expected:
                return None
            return "the data registers' newest sample differs from the last FIFO frame"
        for index in range(counted, min(frames, counted + newer)):
            if data[index * size : (index + 1) * size] == expected:
                return None
        return (
            f"the data registers' newest sample is neither the last counted FIFO frame nor "
            f"one of the {frames - counted} frames taken since"
        )

    def _as_frame(self, registers: bytes) -> bytes:
        """The data registers as the FIFO frame of the same sample."""
        if self._frame_bytes == reg.DATA_BYTES:
            return registers
        return registers[:6] + registers[8:]  # no temperature in the FIFO


def _allowed_lsb(elapsed_s: float) -> float:
    return (TEMP_NOISE_C + TEMP_SLEW_C_PER_S * elapsed_s) * _TEMP_LSB
