"""MPU-6050 driver: FIFO streaming over I2C, for the belt IMU.

Why the FIFO: the chip samples on its own clock and buffers up to 1024 bytes,
so the samples stay evenly spaced however late the Pi's real-time thread
reads them. Each read is one short count/status exchange plus one burst.

A frame is 14 bytes: accel XYZ, the die temperature, gyro XYZ, the same
layout as the data registers. The temperature is there to check the data
(below); the FIFO holds 73 frames, 365 ms at 200 Hz.

How a read works (:meth:`Mpu6050.read_batch`):

1. Read FIFO_COUNTH/L in one 2-byte block, because reading the H byte
   latches the count. Then read 15 bytes from INT_STATUS on, which clears
   the flags: INT_STATUS and the 14 data registers, a snapshot of the
   chip's newest sample.
2. If FIFO_OFLOW_INT is set, or the count is >= 1024, or the count is not a
   whole number of frames, the stream has lost data or alignment.
   The driver resets the FIFO and raises :class:`hal.ImuFifoOverflowError`.
   It never skips the bad data silently. The next read gets fresh data.
3. Otherwise read the whole frames. Up to 32 bytes go through
   ``read_i2c_block_data``, which works on every adapter; longer bursts use
   ``i2c_rdwr`` (a register-pointer write, then one read). Each burst is
   decoded with a single ``struct`` unpack.
4. Check the burst (:mod:`hal.mpu6050_check`): the snapshot must equal the
   last frame, and every frame's die temperature must be near the last good
   one. A noisy line, a slipped bit or a misread register pointer gives
   in-range values that would pass for motion; these checks catch them. If
   the chip sampled between the count and the snapshot, the driver first
   reads on to the frames taken since (``follow_ups`` counts this). A burst
   that fails is discarded, the FIFO is reset so the stream re-aligns, and
   :class:`hal.ImuCorruptDataError` is raised: an
   :class:`hal.ImuFifoOverflowError`, so the safety controller faults as
   for any gap. ``benchmarks/imu_fifo.py`` measures what is caught and what
   it costs.

With interrupt pacing and ``imu.uncounted_reads`` on (off by default: what
follows rests on chip timing no one here has measured on hardware) the caller
counts the data-ready pulses and says how many came since its last read
(:meth:`Mpu6050.read_signalled`). For exactly one, the usual case, the driver
skips the count: it reads INT_STATUS and the
data registers (step 1's second read) and, when DATA_RDY_INT says a sample
came since the last status read, pops one frame, which must equal the
snapshot. Two transactions a sample instead of three. A set DATA_RDY_INT
has an unread frame behind it, because a burst only ever pops frames taken
before the last status read, except the follow-up reads of step 4, after
which the next read counts again (its status read clears the flag of a frame
already popped) — provided the chip's FIFO write has landed by the pop. The
register map promises only that DATA_RDY follows the data registers, so the
pop may find the FIFO empty and read its last byte repeated: such a frame is
never delivered (:meth:`Mpu6050._poll_one` gives the rule and why it neither
makes up nor silently loses a sample; ``empty_reads`` counts these). Anything else — two
pulses or none, the flag clear, the first read after a FIFO reset, every
:data:`COUNTED_READ_EVERY`-th read — takes the counted read above, so its
count checks keep running. An overflow flag raises as in step 2; a snapshot
that is not the frame makes the driver count and read the rest, as in step 4.

Bus errors (``OSError``; errno 121 when the chip does not ACK, 5 for a
generic I/O error) become :class:`hal.ImuBusError` and are retried inside
the stale-data budget ``ImuConfig.stale_timeout_s``. The budget runs from
the first failed attempt since the last good read. When the failures have
lasted half the budget, the chip is re-initialised once. When the whole
budget is spent, :class:`hal.ImuDisconnectedError` is raised, and every
later read tries to re-initialise the chip, at most once per budget. In
between, the read waits out its timeout and raises
:class:`hal.ImuDisconnectedError` again. A failed :meth:`Mpu6050.start` leaves
the driver in the same state. So a caller that keeps calling ``read_batch``
never busy-loops, and it gets its samples back once the sensor answers
again (re-plugged cable, motor interference gone). The safety controller
has already faulted by then, and re-arming still needs the local reset.

Data gaps are always reported. A re-initialisation resets the FIFO, and a
FIFO burst that fails with an errno other than 121 may already have popped
some bytes (a NACK, errno 121, happens before any data byte, so that one is
harmless). In both cases samples are lost, so the next call raises
:class:`hal.ImuFifoOverflowError` ("samples were lost, the stream has a gap").
The timestamps of the next samples are re-anchored to the read time, so
the gap also shows in time (see :class:`FifoTimestamper`).

The driver is not thread-safe. The real-time thread owns it and its bus,
which is also smbus2's advice.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as errno_codes
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from smbus2 import i2c_msg

from core.clock import Clock
from core.samples import ImuSample
from hal import mpu6050_registers as reg
from hal.config import ImuConfig
from hal.errors import (
    ImuBusError,
    ImuCorruptDataError,
    ImuDisconnectedError,
    ImuError,
    ImuFifoOverflowError,
    ImuIdentityError,
    ImuTimeoutError,
)
from hal.mpu6050_check import (
    BOTH_CHECKS,
    FifoChecks,
    FifoPlausibility,
    samples_between,
    uniform,
)

RESET_TIMEOUT_S: Final = 0.1
"""Deadline for DEVICE_RESET to clear. InvenSense's Linux driver allows 100 ms after reset."""
RESET_POLL_S: Final = 0.002
REANCHOR_PERIODS: Final = 2.0
"""How many periods the timestamp grid may fall behind before it jumps forward."""
COUNTED_READ_EVERY: Final = 20
"""With one-pulse reads (:meth:`Mpu6050.read_signalled`), every this many reads still count
the FIFO (10 times a second at 200 Hz): its level and alignment checked as in a polled read,
whatever the pulses said."""
MIN_PULLBACK_SPACING: Final = 0.5
"""When a fast sensor clock is pulled back, spacing never drops below this fraction of a period."""

_State = Literal["idle", "streaming", "lost", "closed"]

_ERRNO_HINTS: Final = {
    errno_codes.EREMOTEIO: "no ACK from the chip: check wiring, power and the address (AD0)",
    errno_codes.EIO: "I/O error: check wiring, pull-ups and cable length",
    errno_codes.ETIMEDOUT: "bus timeout: SDA or SCL may be held low",
}


class I2cBus(Protocol):
    """The part of ``smbus2.SMBus`` this driver uses. ``FakeI2cBus`` has the same methods."""

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int: ...

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None: ...

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]: ...

    def i2c_rdwr(self, *i2c_msgs: i2c_msg) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RegisterSettings:
    """Register values for an :class:`ImuConfig`. Computing them checks the config."""

    smplrt_div: int
    dlpf_cfg: int
    gyro_fs_sel: int
    accel_fs_sel: int
    sample_rate_hz: float

    @property
    def accel_g_per_lsb(self) -> float:
        return 1.0 / reg.ACCEL_LSB_PER_G[self.accel_fs_sel]

    @property
    def gyro_dps_per_lsb(self) -> float:
        return 1.0 / reg.GYRO_LSB_PER_DPS[self.gyro_fs_sel]


def register_settings(config: ImuConfig) -> RegisterSettings:
    """Translate ``config`` into register values.

    Raises ``ValueError`` with the allowed choices when the chip cannot do
    exactly what ``config`` asks. Rounding the sample rate silently would
    change the detector's timing without telling anyone.
    """
    dlpf_cfg = _choice("dlpf_hz", config.dlpf_hz, reg.DLPF_CFG_BY_HZ)
    accel_fs = _choice("accel_range_g", config.accel_range_g, reg.ACCEL_FS_SEL_BY_G)
    gyro_fs = _choice("gyro_range_dps", config.gyro_range_dps, reg.GYRO_FS_SEL_BY_DPS)
    base = reg.gyro_output_rate_hz(dlpf_cfg)
    rate = config.sample_rate_hz
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"sample_rate_hz must be a positive number, got {rate!r}")
    ratio = base / rate
    divider = round(ratio) - 1
    if not 0 <= divider <= 255 or abs(ratio - round(ratio)) > 1e-9 * ratio:
        low = min(max(math.floor(ratio) - 1, 0), 255)
        high = min(max(math.ceil(ratio) - 1, 0), 255)
        options = sorted({base / (1 + low), base / (1 + high)}, reverse=True)
        nearest = " or ".join(f"{r:g} Hz" for r in options)
        dlpf_note = " (dlpf_hz=260 turns the DLPF off)" if base == 8000.0 else ""
        raise ValueError(
            f"sample_rate_hz={rate:g} cannot be made exactly: the MPU-6050 gives "
            f"{base:g} Hz{dlpf_note} / (1 + divider), divider 0..255. Nearest: {nearest}."
        )
    return RegisterSettings(divider, dlpf_cfg, gyro_fs, accel_fs, base / (1 + divider))


def _choice(name: str, value: int, table: dict[int, int]) -> int:
    try:
        return table[value]
    except KeyError:
        allowed = ", ".join(str(k) for k in table)
        raise ValueError(
            f"{name}={value!r} is not an MPU-6050 setting; choose one of {allowed}"
        ) from None


class FifoTimestamper:
    """Gives FIFO samples monotonic timestamps on a fixed grid.

    The FIFO does not store times, so they are reconstructed from the read
    time ``R``, the moment just after FIFO_COUNT was read. The newest sample
    counted was taken in ``(R - p)..R``, where ``p`` is the sample period.

    * After a (re)start or a FIFO reset, the batch is anchored so that its
      newest sample is at ``R``. That is the latest it can have been taken,
      so a timestamp is later than the true instant by less than one
      period. Detection latency measured from a sample's timestamp is
      therefore never overstated by more than that. Older samples go one
      period earlier each.
    * After that, each sample is one period after the previous one, even
      across batches. This keeps the chip's own even spacing, which is
      steadier than the host's read times.
    * The chip's clock can be a few percent off, so the grid is checked on
      every batch. If the newest sample would fall more than
      :data:`REANCHOR_PERIODS` periods before ``R`` (slow chip, or a long
      read), the grid jumps forward to ``R``; that shows as one step longer
      than a period. If it would fall more than one period after ``R``,
      which an exact clock cannot produce (fast chip), the batch is squeezed
      between the previous timestamp and ``R``. The spacing is then below
      one period, but never below :data:`MIN_PULLBACK_SPACING` periods, and
      timestamps never go back.

    Timestamps are therefore strictly increasing, exactly one period apart
    except in a re-anchored batch, and less than a period after the read
    time (with an exact clock; a squeezed batch may trail that).
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self.reanchors = 0
        """Times the grid was corrected for drift (not counting anchors after resets)."""
        self._last: float | None = None
        self._anchored = False

    @property
    def last(self) -> float | None:
        """The newest timestamp given out so far."""
        return self._last

    def reset(self) -> None:
        """Anchor the next batch to its read time. Call this after data was lost."""
        self._anchored = False

    def place(self, count: int, read_time: float) -> tuple[float, float]:
        """Return ``(first, step)``: sample ``i`` of the batch is at ``first + i * step``."""
        p = self.period
        last = self._last
        span = (count - 1) * p
        if not self._anchored or last is None:
            first, step = read_time - span, p
            if last is not None and first <= last:
                first = last + p  # never go back in time, even after a reset
            self._anchored = True
        else:
            first, step = last + p, p
            newest = first + span
            if newest < read_time - REANCHOR_PERIODS * p:
                first = read_time - span
                self.reanchors += 1
            elif newest > read_time + p:
                step = max(MIN_PULLBACK_SPACING * p, (read_time - last) / count)
                first = last + step
                self.reanchors += 1
        self._last = first + (count - 1) * step
        return first, step


class Mpu6050:
    """MPU-6050 on an I2C bus, streaming accel + gyro through its FIFO.

    Implements :class:`hal.interfaces.Imu`. ``bus`` can be any object with
    the :class:`I2cBus` methods: ``smbus2.SMBus`` on a Pi, ``FakeI2cBus`` in
    the simulation. Constructing the driver checks the config (raising
    ``ValueError``) but does not touch the bus; :meth:`start` does.

    The health counters ``bus_errors``, ``reinits``, ``overflows``,
    ``corruptions``, ``follow_ups``, ``empty_reads``, ``samples_read`` and
    ``timestamp_reanchors``
    are plain attributes, cheap enough for telemetry to read on every loop pass.

    ``checks`` chooses the FIFO plausibility checks; leave the default (both)
    outside measurements.
    """

    def __init__(
        self,
        bus: I2cBus,
        config: ImuConfig,
        clock: Clock,
        *,
        owns_bus: bool = False,
        reset_timeout_s: float = RESET_TIMEOUT_S,
        checks: FifoChecks = BOTH_CHECKS,
    ) -> None:
        self._settings = register_settings(config)
        self._bus = bus
        self._config = config
        self._clock = clock
        self._address = config.address
        self._owns_bus = owns_bus
        self._reset_timeout_s = reset_timeout_s
        self._period = 1.0 / self._settings.sample_rate_hz
        self._accel_scale = self._settings.accel_g_per_lsb
        self._gyro_scale = self._settings.gyro_dps_per_lsb
        self._bias = config.gyro_bias_dps
        self._timestamps = FifoTimestamper(self._period)
        self._checks = checks
        self._plausibility = FifoPlausibility(checks, self._period)
        self._frame_bytes = checks.frame_bytes
        self._status_bytes = checks.status_read_bytes
        self._frame_words = self._frame_bytes // 2
        self._gyro_word = self._frame_words - 3
        self._capacity_frames = reg.FIFO_SIZE // self._frame_bytes
        self._unpackers: dict[int, struct.Struct] = {}

        self._state: _State = "idle"
        self._next_recovery = 0.0
        self._last_failure: ImuError | None = None
        self._reinit_failure: ImuError | None = None
        self._failing_since: float | None = None
        self._reinit_tried = False
        self._last_bus_error: ImuBusError | None = None
        self._fifo_needs_reset = False
        self._pending_gap: str | None = None
        self._stream_start = 0.0
        self._uncounted_left = 0
        """One-pulse reads allowed before the next counted read (0: the next one counts)."""
        self._empty_fifo_byte: int | None = None
        """What a read of the empty FIFO returns (the last byte read from it), repeated; None
        after a FIFO reset, when the register map does not say."""

        self.bus_errors = 0
        self.reinits = 0
        self.overflows = 0
        self.corruptions = 0
        self.follow_ups = 0
        self.empty_reads = 0
        """One-pulse pops that found the FIFO empty (its write trailing DATA_RDY), dropped."""
        self.samples_read = 0

    # --- Imu protocol -----------------------------------------------------------
    @property
    def sample_rate_hz(self) -> float:
        return self._settings.sample_rate_hz

    @property
    def settings(self) -> RegisterSettings:
        return self._settings

    @property
    def timestamp_reanchors(self) -> int:
        return self._timestamps.reanchors

    @property
    def streaming(self) -> bool:
        """True while the chip is configured and its FIFO is being read."""
        return self._state == "streaming"

    def start(self) -> None:
        """Identify, reset and configure the chip, and start the FIFO.

        Transient bus errors are retried for ``stale_timeout_s``. If the chip
        still does not answer, this raises :class:`hal.ImuDisconnectedError`.
        A wrong chip raises :class:`hal.ImuIdentityError` and a reset that
        never finishes raises :class:`hal.ImuTimeoutError`; both are raised
        at once, without retrying. After a failure the driver is "lost":
        ``read_batch`` keeps trying to bring the chip up (see the module
        docstring).
        """
        if self._state == "closed":
            raise ImuError(f"{self._where()}: driver is closed; open a new one")
        budget = self._config.stale_timeout_s
        began = self._clock.monotonic()
        while True:
            try:
                self._initialise()
                break
            except ImuBusError as exc:
                self.bus_errors += 1
                waited = self._clock.monotonic() - began
                if waited >= budget:
                    error = ImuDisconnectedError(
                        f"{self._where()} does not answer after {waited * 1000:.0f} ms: {exc}"
                    )
                    self._become_lost(error)
                    raise error from exc
                self._clock.sleep(self._period)
            except ImuError as exc:
                self._become_lost(exc)
                raise
        self._state = "streaming"
        self._failing_since = None
        self._reinit_tried = False

    def read_batch(self, timeout: float) -> Sequence[ImuSample]:
        """Return every sample now in the FIFO, waiting up to ``timeout`` for the first one.

        See the module docstring for the error rules. Waiting is done with
        ``clock.sleep``, about one sample period at a time, and never past
        the timeout. A re-initialisation after persistent bus errors can
        take longer than the timeout, by up to the reset deadline.
        """
        return self._read(timeout, 0)

    def read_signalled(self, pulses: int) -> Sequence[ImuSample]:
        """``read_batch(0.0)`` for a caller that counted the data-ready pulses since its last
        read (:class:`firmware.pacing.InterruptPacing`): after exactly one, the driver reads
        without asking the FIFO's count when the chip's flags allow it (module docstring).

        Same samples, same errors; the pulses only choose how the FIFO is read."""
        return self._read(0.0, pulses)

    def _read(self, timeout: float, pulses: int) -> Sequence[ImuSample]:
        clock = self._clock
        deadline = clock.monotonic() + max(0.0, timeout)
        if self._state != "streaming":
            self._recover_or_raise(deadline)
        while True:
            attempt_start = clock.monotonic()
            try:
                samples = self._poll(pulses)
            except ImuBusError as exc:
                self._on_bus_error(exc, attempt_start)
            except ImuFifoOverflowError:
                self._failing_since = None  # the bus works; the data had a gap
                self._reinit_tried = False
                raise
            else:
                self._failing_since = None
                self._reinit_tried = False
                if samples:
                    return samples
            pulses = 0  # a retry counts
            now = clock.monotonic()
            if now >= deadline:
                return []
            clock.sleep(min(self._period, deadline - now))

    def close(self) -> None:
        """Put the chip to sleep (if it answers) and release an owned bus. Never raises."""
        if self._state == "closed":
            return
        self._state = "closed"
        # Errors are swallowed: an unreachable chip or a closed bus leaves nothing to do.
        with contextlib.suppress(Exception):
            self._bus.write_byte_data(
                self._address, reg.PWR_MGMT_1, reg.SLEEP | reg.CLKSEL_PLL_XGYRO
            )
        if self._owns_bus:
            with contextlib.suppress(Exception):
                self._bus.close()

    # --- initialisation ------------------------------------------------------------
    def _initialise(self) -> None:
        who = self._read_byte(reg.WHO_AM_I)
        if who != reg.WHO_AM_I_VALUE:
            raise ImuIdentityError(
                f"{self._where()}: WHO_AM_I expected 0x{reg.WHO_AM_I_VALUE:02x}, got 0x{who:02x}. "
                "Wrong chip? (0x70 is an MPU-6500, 0x71 an MPU-9250, 0x98 a common clone.) "
                "Is AD0 high? Then the MPU-6050 is at 0x69 and something else (a DS3231 RTC, "
                "say) answers here: set imu.address."
            )
        self._write(reg.PWR_MGMT_1, reg.DEVICE_RESET)
        self._wait_for_reset()
        self._write(reg.PWR_MGMT_1, reg.CLKSEL_PLL_XGYRO)  # SLEEP = 0: wake up
        s = self._settings
        config_values = [
            s.smplrt_div,
            s.dlpf_cfg,
            s.gyro_fs_sel << reg.FS_SEL_SHIFT,
            s.accel_fs_sel << reg.FS_SEL_SHIFT,
        ]
        for offset, value in enumerate(config_values):
            self._write(reg.SMPLRT_DIV + offset, value)
        # Read the configuration back: a write lost to a glitch would otherwise go unnoticed.
        readback = self._read_block(reg.SMPLRT_DIV, len(config_values))
        power = self._read_byte(reg.PWR_MGMT_1)
        if readback != config_values or power != reg.CLKSEL_PLL_XGYRO:
            raise ImuBusError(
                f"{self._where()}: configuration did not stick (wrote {config_values} and "
                f"PWR_MGMT_1=0x{reg.CLKSEL_PLL_XGYRO:02x}, read {readback} and 0x{power:02x})"
            )
        if self._config.pacing == "poll":
            self._write(reg.INT_ENABLE, reg.FIFO_OFLOW_EN)
        else:
            # INT: active high, push-pull, one 50 us pulse per sample (counted by the GPIO
            # callback, see firmware/pacing.py); the flags still clear when INT_STATUS is read.
            self._write(reg.INT_PIN_CFG, 0)
            self._write(reg.INT_ENABLE, reg.FIFO_OFLOW_EN | reg.DATA_RDY_EN)
        self._write(reg.FIFO_EN, self._checks.fifo_sources)
        self._reset_fifo()

    def _wait_for_reset(self) -> None:
        """Poll DEVICE_RESET until it clears, on the clock, up to the reset deadline."""
        deadline = self._clock.monotonic() + self._reset_timeout_s
        last_error: ImuBusError | None = None
        value: int | None = None
        while True:
            try:
                value = self._read_byte(reg.PWR_MGMT_1)
                last_error = None
                if not value & reg.DEVICE_RESET:
                    return
            except ImuBusError as exc:  # some parts do not ACK while resetting
                last_error = exc
            if self._clock.monotonic() >= deadline:
                if last_error is not None and value is None:
                    raise last_error
                shown = "no answer" if value is None else f"PWR_MGMT_1=0x{value:02x}"
                raise ImuTimeoutError(
                    f"{self._where()}: DEVICE_RESET did not clear within "
                    f"{self._reset_timeout_s * 1000:.0f} ms ({shown})"
                )
            self._clock.sleep(RESET_POLL_S)

    def _reset_fifo(self) -> None:
        """Empty the FIFO as the datasheet says: FIFO_RESET with FIFO_EN = 0, then re-enable."""
        self._write(reg.USER_CTRL, 0)
        self._write(reg.USER_CTRL, reg.FIFO_RESET)
        self._write(reg.USER_CTRL, reg.USER_FIFO_EN)
        self._read_byte(reg.INT_STATUS)  # clears an overflow flag from before the reset
        self._fifo_needs_reset = False
        self._pending_gap = None  # whoever reset the FIFO reports the gap
        self._uncounted_left = 0  # the first read after a reset counts
        self._empty_fifo_byte = None
        self._stream_start = self._clock.monotonic()
        self._timestamps.reset()

    # --- lost / recovery -----------------------------------------------------------------
    def _become_lost(self, cause: ImuError) -> None:
        self._state = "lost"
        self._last_failure = cause
        self._next_recovery = self._clock.monotonic() + self._config.stale_timeout_s
        self._failing_since = None
        self._reinit_tried = False

    def _recover_or_raise(self, deadline: float) -> None:
        """Outside streaming: try one re-initialisation when it is due, else wait and raise."""
        if self._state == "closed":
            raise ImuError(f"{self._where()}: read_batch() after close()")
        if self._state == "idle":
            raise ImuError(f"{self._where()}: read_batch() before start()")
        now = self._clock.monotonic()
        if now >= self._next_recovery:
            self._next_recovery = now + self._config.stale_timeout_s
            try:
                self._initialise()
            except ImuError as exc:
                if isinstance(exc, ImuBusError):
                    self.bus_errors += 1
                self._last_failure = exc
            else:
                self._state = "streaming"
                self.reinits += 1
                return
        # Wait out the caller's timeout so a loop that keeps calling read_batch does not spin.
        self._clock.sleep(deadline - self._clock.monotonic())
        raise ImuDisconnectedError(
            f"{self._where()} is not streaming; it is re-initialised every "
            f"{self._config.stale_timeout_s * 1000:.0f} ms. Last failure: {self._last_failure}"
        )

    # --- streaming ---------------------------------------------------------------------

    def _poll(self, pulses: int = 0) -> list[ImuSample]:
        """One exchange with the chip: count, status and snapshot, then the whole frames;
        after one data-ready pulse, when the flags allow, status and snapshot then one frame."""
        if self._fifo_needs_reset:
            gap = self._pending_gap
            self._reset_fifo()
            if gap is not None:
                raise ImuFifoOverflowError(gap)
        if pulses == 1 and self._uncounted_left > 0:
            self._uncounted_left -= 1
            one = self._poll_one()
            if one is not None:
                return one
        self._uncounted_left = COUNTED_READ_EVERY - 1 if self._checks.registers else 0
        checks = self._checks
        size = self._frame_bytes
        if not checks.registers:
            status = self._read_byte(reg.INT_STATUS)
        count_at = self._clock.monotonic()
        high, low = self._read_block(reg.FIFO_COUNTH, 2)
        read_time = self._clock.monotonic()
        count = (high << 8) | low
        snapshot: bytes | None = None
        newer = 0
        if checks.registers:
            # After the count, INT_STATUS and on through the data registers in one read: the
            # flags, and a snapshot of the newest sample, which should be the last one counted.
            head = self._read_block(reg.INT_STATUS, self._status_bytes)
            status, snapshot = head[0], bytes(head[1:])
            newer = samples_between(self._clock.monotonic() - count_at, self._period)
        if status & reg.FIFO_OFLOW_INT or count >= reg.FIFO_SIZE or count % size:
            self._overflow(status, count, read_time)
        counted = frames = count // size
        if frames == 0:
            return []
        data = self._read_fifo(frames * size)
        if snapshot is None or self._plausibility.snapshot_is_last(data, snapshot):
            # The snapshot is the last frame counted and read (the usual case): the cross-check
            # has passed, and the burst check does not compare them a second time.
            return self._checked(data, frames, None, counted, newer, read_time)
        # Usually the chip sampled between the count and the snapshot: read on to it.
        data, frames, read_time = self._read_on(data, frames, newer, read_time)
        return self._checked(data, frames, snapshot, counted, newer, read_time)

    def _poll_one(self) -> list[ImuSample] | None:
        """Status and snapshot, then one frame, delivered alone only when it is the snapshot;
        None when the flags say nothing new (a spurious pulse, a flag already read): count.

        The rule for the popped frame, and why it never delivers a made-up sample nor loses
        a true one unreported:

        * It is delivered alone only when it equals the snapshot and is not one byte
          repeated. An empty FIFO returns its last byte repeated, so such a frame came out of
          a FIFO that held data, and its bytes are those of the data registers just read: the
          snapshot's sample. (The pop cannot return a sample older than the previous status
          read's: those were all popped before a one-pulse read is allowed.)
        * Otherwise the driver counts the FIFO and reads all of it (:meth:`_read_rest`), and
          the snapshot must be one of the frames read, else the whole read is a fault. Two
          things make the pop differ from the snapshot: frames older than the snapshot were
          waiting (an uncounted pulse: the popped frame is a true sample, older than the
          snapshot, and is delivered first, in order), or the FIFO was still empty because the
          chip writes it after DATA_RDY (``fifo_lag_s`` in the simulation): the popped frame
          is one byte repeated, and the snapshot's frame is among those that follow.
        * A popped frame is dropped as an empty read only when it is the last byte read from
          the FIFO (tracked since the last FIFO reset), repeated, and its temperature word is one
          no true frame can have (:meth:`FifoPlausibility.could_be_sample`): then it is not a
          sample, and dropping it loses nothing. If it could be one (a sample whose seven words
          are equal cannot be told from an empty read; about one empty read in 200, when the
          repeated byte makes the die's temperature), or its byte is not the last one read (a
          stuck data line, say, over a true frame), it is kept, and the burst check refuses
          every frame of one repeated byte: a reported gap (fail-safe), never a guess.

        So on a clean bus every frame popped is delivered in FIFO order or the read raises;
        the only frame dropped quietly is one that cannot be a sample. Frames read after the
        pop are vouched for as in a counted read (temperature, and the snapshot among them).
        Damage on the wire could lose a true frame quietly only by turning it into exactly
        the empty read (the last byte, fourteen times) while a pulse went uncounted.
        """
        size = self._frame_bytes
        snapshot_at = self._clock.monotonic()  # the chip copies its registers as the read starts
        head = self._read_block(reg.INT_STATUS, self._status_bytes)
        read_time = self._clock.monotonic()
        status = head[0]
        if status & reg.FIFO_OFLOW_INT:
            self._overflow(status, 0, read_time)
        if not status & reg.DATA_RDY_INT:
            return None
        snapshot = bytes(head[1:])
        empty_byte = self._empty_fifo_byte
        popped = self._read_fifo(size)
        if not uniform(popped) and self._plausibility.snapshot_is_last(popped, snapshot):
            return self._checked(popped, 1, None, 1, 1, read_time)  # cross-checked just now
        rest, read_on_at = self._read_rest()
        data = popped + rest
        if (
            uniform(popped)
            and popped[0] == empty_byte
            and not self._plausibility.could_be_sample(popped, read_on_at)
        ):
            self.empty_reads += 1  # the FIFO was empty: nothing was popped
            data = rest
        frames = len(data) // size
        if frames == 0:
            self._discard_corrupt("DATA_RDY was set but no FIFO frame could be read after it", 1)
        # The snapshot is one of the frames read; the chip took at most `newer` - 1 after it.
        newer = samples_between(read_on_at - snapshot_at, self._period) + 1
        counted = max(0, frames - newer)
        return self._checked(data, frames, snapshot, counted, newer, read_on_at)

    def _read_rest(self) -> tuple[bytes, float]:
        """Count the FIFO and read all of it (after a one-pulse read found older frames)."""
        self.follow_ups += 1
        self._uncounted_left = 0  # these frames' flags may still be set: count next time
        try:
            high, low = self._read_block(reg.FIFO_COUNTH, 2)
            count_at = self._clock.monotonic()
            count = (high << 8) | low
            if count % self._frame_bytes or count >= reg.FIFO_SIZE or count == 0:
                return b"", count_at  # the check fails; it resets the FIFO
            return self._read_fifo(count), count_at
        except ImuBusError:
            self._fifo_needs_reset = True
            self._pending_gap = (
                f"{self._where()}: I2C error while checking a FIFO frame against the data "
                "registers; frame discarded, FIFO reset"
            )
            raise

    def _checked(
        self,
        data: bytes,
        frames: int,
        snapshot: bytes | None,
        counted: int,
        newer: int,
        read_time: float,
    ) -> list[ImuSample]:
        """The burst decoded, once the plausibility checks pass (else discarded, raising).

        ``snapshot``: the data registers to find among the frames; None when the caller has
        already found them as the burst's last frame (or the cross-check is off)."""
        unpacker = self._unpackers.get(frames) or self._unpacker(frames)  # a call only once
        values = unpacker.unpack(data)
        problem = self._plausibility.check(
            data, values, frames, snapshot, counted, newer, read_time
        )
        if problem is not None:
            self._discard_corrupt(problem, frames)
        return self._decode(values, frames, read_time)

    def _read_on(
        self, data: bytes, frames: int, newer: int, read_time: float
    ) -> tuple[bytes, int, float]:
        """Append the frames the chip took between the count and the snapshot (at most
        ``newer``): the snapshot should be the last of them. Later ones stay in the FIFO."""
        self.follow_ups += 1
        self._uncounted_left = 0  # a frame read here may have come after the status read
        try:
            high, low = self._read_block(reg.FIFO_COUNTH, 2)
            more_at = self._clock.monotonic()
            count = (high << 8) | low
            more = min(count // self._frame_bytes, newer)
            if count % self._frame_bytes or count >= reg.FIFO_SIZE or more == 0:
                return data, frames, read_time  # the check fails; it resets the FIFO
            return data + self._read_fifo(more * self._frame_bytes), frames + more, more_at
        except ImuBusError:
            # The burst is already out of the FIFO and cannot be vouched for: report the gap.
            self._fifo_needs_reset = True
            self._pending_gap = (
                f"{self._where()}: I2C error while checking a FIFO burst against the data "
                "registers; burst discarded, FIFO reset"
            )
            raise

    def _overflow(self, status: int, count: int, read_time: float) -> None:
        self.overflows += 1
        since = self._timestamps.last if self._timestamps.last is not None else self._stream_start
        # Lower bound: samples made since the last one delivered (allowing the chip clock
        # to be 5 % slow), minus what the FIFO could hold.
        made = int((read_time - max(since, self._stream_start)) / (self._period * 1.05))
        lost = max(1, made - self._capacity_frames - 1)
        if status & reg.FIFO_OFLOW_INT:
            why = "FIFO_OFLOW_INT set"
        elif count >= reg.FIFO_SIZE:
            why = f"FIFO count {count} (full)"
        else:
            why = f"FIFO count {count} is not a whole number of {self._frame_bytes}-byte frames"
        self._restart_fifo()
        raise ImuFifoOverflowError(
            f"{self._where()}: FIFO overflow ({why}); at least {lost} samples lost, FIFO reset. "
            f"It holds {self._capacity_frames * self._period * 1000:.0f} ms at "
            f"{self.sample_rate_hz:g} Hz: read it more often.",
            samples_lost_at_least=lost,
        )

    def _restart_fifo(self) -> None:
        """Reset the FIFO after frames that cannot be trusted (an overflow, a corrupt burst),
        before raising about them. A reset the bus refuses is counted and left to the next
        :meth:`_poll`, which resets the FIFO first."""
        self._fifo_needs_reset = True
        self._timestamps.reset()
        try:
            self._reset_fifo()
        except ImuBusError:
            self.bus_errors += 1

    def _discard_corrupt(self, problem: str, frames: int) -> None:
        """Drop a burst that failed the plausibility check, reset the FIFO to re-align, raise."""
        self.corruptions += 1
        self._restart_fifo()
        raise ImuCorruptDataError(
            f"{self._where()}: corrupted FIFO data ({problem}); {frames} samples discarded, "
            "FIFO reset. Repeated, this is interference or a flaky belt cable.",
            samples_lost_at_least=frames,
        )

    def _read_fifo(self, nbytes: int) -> bytes:
        try:
            if nbytes <= reg.SMBUS_BLOCK_MAX:
                data = bytes(self._bus.read_i2c_block_data(self._address, reg.FIFO_R_W, nbytes))
            else:
                pointer = i2c_msg.write(self._address, [reg.FIFO_R_W])
                burst = i2c_msg.read(self._address, nbytes)
                self._bus.i2c_rdwr(pointer, burst)
                data = ctypes.string_at(burst.buf, nbytes)
            self._empty_fifo_byte = data[-1]
            return data
        except OSError as exc:
            error = self._bus_error(exc, f"reading {nbytes} FIFO bytes")
            if exc.errno != errno_codes.EREMOTEIO:
                # The transfer may have failed after bytes were popped: frame alignment is unknown.
                self._fifo_needs_reset = True
                self._pending_gap = (
                    f"{self._where()}: FIFO burst failed mid-transfer ({exc}); "
                    "FIFO reset, samples lost"
                )
            raise error from exc

    def _unpacker(self, frames: int) -> struct.Struct:
        unpacker = self._unpackers.get(frames)
        if unpacker is None:
            unpacker = self._unpackers[frames] = struct.Struct(f">{self._frame_words * frames}h")
        return unpacker

    def _decode(self, values: Sequence[int], frames: int, read_time: float) -> list[ImuSample]:
        first, step = self._timestamps.place(frames, read_time)
        a = self._accel_scale
        g = self._gyro_scale
        bx, by, bz = self._bias
        words = self._frame_words
        gx = self._gyro_word  # after the temperature word, when the FIFO carries it
        self.samples_read += frames
        # tuple.__new__ rather than ImuSample(...): the same NamedTuple, without the Python
        # frame of its generated __new__ for every sample (a fifth of the decode); a loop
        # rather than a comprehension, without the comprehension's own frame every read.
        new = tuple.__new__
        samples: list[ImuSample] = []
        append = samples.append
        for i, j in enumerate(range(0, words * frames, words)):
            append(
                new(
                    ImuSample,
                    (
                        first + i * step,
                        values[j] * a,
                        values[j + 1] * a,
                        values[j + 2] * a,
                        values[j + gx] * g - bx,
                        values[j + gx + 1] * g - by,
                        values[j + gx + 2] * g - bz,
                    ),
                )
            )
        return samples

    # --- error budget ---------------------------------------------------------------------
    def _on_bus_error(self, exc: ImuBusError, attempt_start: float) -> None:
        """Count the error, re-initialise once at half the budget, give up at the full budget."""
        self.bus_errors += 1
        self._last_bus_error = exc
        if self._failing_since is None:
            self._failing_since = attempt_start
        budget = self._config.stale_timeout_s
        failing_for = self._clock.monotonic() - self._failing_since
        if failing_for >= budget:
            reinit = f"; re-init failed: {self._reinit_failure}" if self._reinit_failure else ""
            error = ImuDisconnectedError(
                f"{self._where()}: no good read for {failing_for * 1000:.0f} ms "
                f"(budget {budget * 1000:.0f} ms, {self.bus_errors} bus errors so far); "
                f"last error: {exc}{reinit}"
            )
            self._become_lost(error)
            raise error from exc
        if failing_for >= budget / 2 and not self._reinit_tried:
            self._reinit_tried = True
            self._reinitialise(failing_for)

    def _reinitialise(self, failing_for: float) -> None:
        """Reset and configure the chip again. On success, report the gap this causes."""
        self._reinit_failure = None
        try:
            self._initialise()
        except ImuError as exc:
            # Bus errors, or identity/timeout during a glitch: reads are retried until
            # the budget runs out, and the disconnect message says why this failed.
            if isinstance(exc, ImuBusError):
                self.bus_errors += 1
            self._reinit_failure = exc
            return
        self.reinits += 1
        since = self._timestamps.last
        elapsed = 0.0 if since is None else self._clock.monotonic() - since
        lost = max(1, int(elapsed / (self._period * 1.05)))
        raise ImuFifoOverflowError(
            f"{self._where()}: re-initialised after {failing_for * 1000:.0f} ms of I2C errors "
            f"({self._last_bus_error}); FIFO reset, samples lost",
            samples_lost_at_least=lost,
        )

    # --- register access --------------------------------------------------------------------
    def _read_byte(self, register: int) -> int:
        try:
            return self._bus.read_byte_data(self._address, register)
        except OSError as exc:
            raise self._bus_error(exc, f"reading register 0x{register:02x}") from exc

    def _read_block(self, register: int, length: int) -> list[int]:
        try:
            return self._bus.read_i2c_block_data(self._address, register, length)
        except OSError as exc:
            raise self._bus_error(exc, f"reading {length} bytes at 0x{register:02x}") from exc

    def _write(self, register: int, value: int) -> None:
        try:
            self._bus.write_byte_data(self._address, register, value)
        except OSError as exc:
            raise self._bus_error(exc, f"writing 0x{value:02x} to 0x{register:02x}") from exc

    def _bus_error(self, exc: OSError, action: str) -> ImuBusError:
        hint = _ERRNO_HINTS.get(exc.errno or 0, "")
        detail = f"[Errno {exc.errno}] {exc.strerror or exc}"
        return ImuBusError(
            f"{self._where()}: I2C error {action}: {detail}" + (f" ({hint})" if hint else ""),
            errno=exc.errno,
        )

    def _where(self) -> str:
        return f"MPU-6050 at 0x{self._address:02x} on I2C bus {self._config.i2c_bus}"
