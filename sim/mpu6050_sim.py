"""A register-level MPU-6050 that the real driver talks to through :class:`FakeI2cBus`.

The model follows RM-MPU-6000A-00 rev 4.2 where it matters to a driver:

* 128-byte register file with the power-on defaults: every register is 0x00
  except PWR_MGMT_1 (0x40, asleep) and WHO_AM_I (0x68).
* ``PWR_MGMT_1.DEVICE_RESET`` puts every register back to its default. The
  bit then reads 1 for ``reset_duration_s`` and clears by itself. Writes in
  that window are ignored, so a driver that does not wait for the reset
  loses its configuration and the tests catch it.
* No samples while asleep (SLEEP) or with the clock stopped (CLKSEL 7).
* Sample rate = gyro output rate (8 kHz with DLPF_CFG 0 or 7, otherwise
  1 kHz) / (1 + SMPLRT_DIV). Full scales are decoded from GYRO_CONFIG and
  ACCEL_CONFIG.
* 1024-byte FIFO filled in register order with the sources chosen in FIFO_EN,
  and only while ``USER_CTRL.FIFO_EN`` is set. When the FIFO is full, new
  bytes overwrite the oldest ones, so frame alignment is lost (as on the
  chip), and ``INT_STATUS.FIFO_OFLOW_INT`` is set. ``USER_CTRL.FIFO_RESET``
  empties the FIFO, but only when written with ``FIFO_EN`` = 0, as the
  datasheet states.
* Reading FIFO_COUNTH latches both count bytes. A burst from FIFO_R_W keeps
  popping the FIFO. Reading an empty FIFO returns the last byte read from it,
  repeated (the register map, FIFO_R_W), so a frame popped from an empty FIFO
  is 14 copies of one byte.
* ``fifo_lag_s`` (default 0) delays each sample's FIFO write after its data
  registers and DATA_RDY. The register map says only that DATA_RDY fires once
  all sensor registers are written, not that the FIFO write has landed; with a
  lag, a read right after the pulse can find the data registers new and the
  FIFO still empty. Delayed writes land in order, only while ``USER_CTRL.FIFO_EN``
  is set; a FIFO reset or a chip reset discards them (the datasheet does not say;
  a write landing after the reset would only add an older true sample).
* Reading INT_STATUS clears it. A status bit latches only if its INT_ENABLE
  bit is set. The real part may be more lenient, so the model is the
  stricter of the two readings of the datasheet.
* The INT pin (:meth:`SimulatedMpu6050.connect_int`, a gpiozero mock pin)
  follows INT_PIN_CFG: each enabled interrupt (DATA_RDY per sample,
  FIFO_OFLOW per overflowing sample) gives one pulse (50 us on the chip,
  modelled as a rise and a fall at the same instant) with LATCH_INT_EN = 0;
  with LATCH_INT_EN = 1 the pin stays asserted until the status is cleared,
  by reading INT_STATUS or, with INT_RD_CLEAR = 1, by any read. INT_LEVEL = 1
  makes it active low; with INT_OPEN = 1 (open drain) a released pin goes to
  its pull. Once connected, the chip runs on its own sample clock
  (:mod:`sim.sample_clock`): timers on a :class:`core.clock.SimClock`, a
  thread on the real clock, so the pin moves at the sample instants whether
  or not anyone reads the bus.
* The data registers ACCEL_XOUT_H..GYRO_ZOUT_L hold the newest sample, and the
  FIFO is loaded from them, so a burst read of the registers equals that
  sample's FIFO frame byte for byte. TEMP_OUT follows the die temperature
  (``temperature_c``, constant or drifting, plus ``temperature_noise_c``).

Samples are made lazily. On every bus transaction the chip first produces
every sample due up to ``clock.monotonic()``, so a :class:`core.clock.SimClock`
drives it with no threads. Sample ``n`` of a run is taken at
``origin + n * period``. A run (re)starts on wake-up and when SMPLRT_DIV or
CONFIG changes. Motion time zero is the first wake-up, or the
``motion_origin`` you pass in. It does *not* restart on a later chip reset:
the wearer keeps moving while the driver re-initialises the chip.

Not modelled: cycle mode, standby bits, self-test, the auxiliary I2C master,
DMP, motion and FSYNC interrupts. The DLPF's effect on amplitude is not modelled
either; only its group delay is, as a shift of the motion time.
"""

from __future__ import annotations

import math
import random
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from core.clock import Clock
from core.samples import ImuSample
from hal import mpu6050_registers as reg
from sim.motion import MotionSource
from sim.pins import ObservedMockPin
from sim.sample_clock import SampleClock, sample_clock_for

_REGISTER_COUNT: Final = 128
_DATA_FIRST: Final = reg.ACCEL_XOUT_H
_DATA_LAST: Final = 0x60  # EXT_SENS_DATA_23
_READ_ONLY: Final = frozenset(
    {reg.INT_STATUS, reg.FIFO_COUNTH, reg.FIFO_COUNTL, reg.WHO_AM_I, 0x36}
    | set(range(_DATA_FIRST, _DATA_LAST + 1))
)
_DATA_STRUCT: Final = struct.Struct(">7h")
_INT16_MIN: Final = -32768
_INT16_MAX: Final = 32767

_DLPF_DELAY_S: Final = (0.0, 0.0020, 0.0030, 0.0049, 0.0085, 0.0138, 0.0190, 0.0)
"""Accelerometer group delay per DLPF_CFG (datasheet table). The gyro's is within 0.4 ms of it."""


@dataclass(frozen=True, slots=True)
class WarmingDie:
    """Die temperature after power-on: from ``start_c`` toward ``settled_c`` (first order).

    A belt-worn sensor warms from room temperature toward body warmth over minutes; pass an
    instance as ``temperature_c`` to exercise the driver's temperature check with drift.
    """

    start_c: float = 22.0
    settled_c: float = 33.0
    time_constant_s: float = 300.0

    def __call__(self, seconds: float) -> float:
        remaining = math.exp(-max(0.0, seconds) / self.time_constant_s)
        return self.settled_c + (self.start_c - self.settled_c) * remaining


def _quantise(value: float) -> int:
    """Round to the nearest LSB and saturate like the ADC does at full scale."""
    if math.isnan(value):
        return 0
    if value >= _INT16_MAX:
        return _INT16_MAX
    if value <= _INT16_MIN:
        return _INT16_MIN
    return round(value)


class SimulatedMpu6050:
    """An MPU-6050 at register level, driven by a :class:`MotionSource` and a shared clock.

    Fault knobs, for tests:

    * ``who_am_i``: the chip id returned, e.g. 0x70 to act as an MPU-6500.
    * ``reset_stuck``: DEVICE_RESET never clears, for the driver's deadline.
    * ``stalled``: the chip answers but makes no samples (a frozen sensor).
    * ``clock_skew``: relative error of the chip's sample clock. ``+0.01``
      runs 1 % fast, as a real part may across temperature.
    * ``fifo_lag_s``: each sample's FIFO write lands this long after its data registers
      and DATA_RDY (see the module docstring).

    ``temperature_c`` is the die temperature: a constant, or a function of the seconds since
    motion time zero (e.g. :class:`WarmingDie`). ``keep_samples`` keeps that many of the
    newest samples' register values in :attr:`history`, so a test can tell a true sample
    from garbage.
    """

    def __init__(
        self,
        motion: MotionSource,
        clock: Clock,
        *,
        who_am_i: int = reg.WHO_AM_I_VALUE,
        accel_noise_g: float = 0.0,
        gyro_noise_dps: float = 0.0,
        seed: int = 0,
        reset_duration_s: float = 0.005,
        clock_skew: float = 0.0,
        motion_origin: float | None = None,
        temperature_c: float | Callable[[float], float] = 25.0,
        temperature_noise_c: float = 0.0,
        keep_samples: int = 0,
        fifo_lag_s: float = 0.0,
    ) -> None:
        if clock_skew <= -1.0:
            raise ValueError("clock_skew must be greater than -1")
        if not fifo_lag_s >= 0.0:
            raise ValueError(f"fifo_lag_s must be zero or more, got {fifo_lag_s!r}")
        self.fifo_lag_s = fifo_lag_s
        self.motion = motion
        self._clock = clock
        self.who_am_i = who_am_i
        self.accel_noise_g = accel_noise_g
        self.gyro_noise_dps = gyro_noise_dps
        self.reset_duration_s = reset_duration_s
        self.clock_skew = clock_skew
        self.temperature_c = temperature_c
        self.temperature_noise_c = temperature_noise_c
        self.reset_stuck = False
        self.stalled = False
        self._rng = random.Random(seed)
        self._temperature_rng = random.Random(f"temperature {seed}")
        self._motion_origin = motion_origin

        self._regs = bytearray(_REGISTER_COUNT)
        self._pointer = 0
        self._fifo = bytearray()
        self._fifo_writes: deque[tuple[float, bytes]] = deque()
        """FIFO frames not yet written (``fifo_lag_s``): when each lands, and its bytes."""
        self._last_fifo_byte = 0
        self._count_latch = 0
        self._reset_done_at: float | None = None
        self._run_origin: float | None = None
        self._run_period = 0.0
        self._run_emitted = 0

        self.samples_taken = 0
        """Samples the chip has taken since power-on, including those never observable."""
        self.samples_computed = 0
        """Samples actually computed; old, unobservable ones are skipped (see ``_catch_up``)."""
        self.device_resets = 0
        self.fifo_overflows = 0
        """Times the FIFO overwrote data (once per overflowing sample)."""
        self.history: deque[tuple[int, ...]] = deque(maxlen=keep_samples)
        """The newest samples as raw register values (ax, ay, az, temp, gx, gy, gz)."""
        self.interrupts = 0
        """Enabled interrupts raised (DATA_RDY, FIFO_OFLOW), whether or not INT is wired."""
        self.empty_fifo_reads = 0
        """Bytes read from FIFO_R_W while the FIFO was empty (each the last byte again)."""
        self._lock = threading.RLock()
        """The bus and the chip's own sample clock (a thread on the real clock) both drive it."""
        self._int_pin: ObservedMockPin | None = None
        self._int_asserted = False
        self._int_moves: list[bool] = []
        """Levels to put on the INT pin once the current operation has finished."""
        self._sample_clock: SampleClock | None = None
        self._load_defaults()

    # --- inspection (no side effects, unlike a bus read) -------------------------
    def taken_motions(self) -> list[tuple[int, int, int, int, int, int]]:
        """:attr:`history` as raw (ax, ay, az, gx, gy, gz): what :func:`raw_motion` of a
        delivered sample is compared with (the temperature is not in a sample)."""
        return [(r[0], r[1], r[2], r[4], r[5], r[6]) for r in self.history]

    def peek(self, register: int) -> int:
        """Register value as stored, without the read side effects (clear, pop, latch)."""
        if register == reg.WHO_AM_I:
            return self.who_am_i & 0xFF
        return self._regs[register]

    @property
    def fifo_level(self) -> int:
        """Bytes in the FIFO now (after catching up with the clock)."""
        with self._lock:
            self._catch_up(self._clock.monotonic())
            self._move_int_pin()
            return len(self._fifo)

    # --- the INT pin ---------------------------------------------------------------------
    def connect_int(self, pin: ObservedMockPin) -> None:
        """Wire the chip's INT output to ``pin`` and start the chip's own sample clock."""
        with self._lock:
            self.disconnect_int()
            self._int_pin = pin
            self._int_moves.append(self._int_level(self._int_asserted))
            self._move_int_pin()
            self._sample_clock = sample_clock_for(self._clock, self)
            self._sample_clock.reschedule()

    def disconnect_int(self) -> None:
        """Cut the INT wire: the pin goes to its pull, the chip's sample clock stops.

        Samples are still made lazily, at the next bus access, as without a wire."""
        with self._lock:
            sample_clock, self._sample_clock = self._sample_clock, None
            pin, self._int_pin = self._int_pin, None
        if sample_clock is not None:
            sample_clock.stop()
        if pin is not None and pin.function == "input" and pin.pull in ("up", "down"):
            (pin.drive_high if pin.pull == "up" else pin.drive_low)()

    @property
    def int_connected(self) -> bool:
        return self._int_pin is not None

    def next_interrupt_at(self) -> float | None:
        """Clock time of the next interrupt the chip will raise by itself (None: none due).

        DATA_RDY: the next sample. FIFO_OFLOW alone: the sample that overflows the FIFO.
        """
        with self._lock:
            origin = self._run_origin
            enabled = self._regs[reg.INT_ENABLE]
            if origin is None or self.stalled or self._reset_done_at is not None:
                return None
            if enabled & reg.DATA_RDY_EN:
                ahead = 1
            elif enabled & reg.FIFO_OFLOW_EN and (frame := self._fifo_frame_bytes()):
                ahead = (reg.FIFO_SIZE - len(self._fifo)) // frame + 1
            else:
                return None
            return origin + (self._run_emitted + ahead) * self._run_period

    @property
    def sample_clock(self) -> SampleClock | None:
        """The chip's own sample clock while INT is wired (see :mod:`sim.sample_clock`)."""
        return self._sample_clock

    def make_due_samples(self) -> None:
        """Make the samples due by now; their INT moves wait for :meth:`update_int_pin`."""
        with self._lock:
            self._catch_up(self._clock.monotonic())

    def update_int_pin(self) -> None:
        """Move INT as the samples made so far say, then look for the next interrupt."""
        with self._lock:
            self._move_int_pin()
            if self._sample_clock is not None:
                self._sample_clock.reschedule()

    @property
    def sleeping(self) -> bool:
        return bool(self._regs[reg.PWR_MGMT_1] & reg.SLEEP)

    @property
    def sample_period(self) -> float:
        """Configured sample period in seconds (nominal, before ``clock_skew``)."""
        dlpf = self._regs[reg.CONFIG] & reg.DLPF_CFG_MASK
        return (1 + self._regs[reg.SMPLRT_DIV]) / reg.gyro_output_rate_hz(dlpf)

    # --- I2cDevice -------------------------------------------------------------------
    def i2c_write(self, data: bytes) -> None:
        with self._lock:
            now = self._clock.monotonic()
            self._catch_up(now)
            if data:
                self._pointer = data[0] % _REGISTER_COUNT
                for value in data[1:]:
                    self._write_register(self._pointer, value, now)
                    self._advance_pointer()
            self._move_int_pin()
            if self._sample_clock is not None:
                self._sample_clock.reschedule()

    def i2c_read(self, length: int) -> bytes:
        with self._lock:
            self._catch_up(self._clock.monotonic())
            if self._pointer == reg.FIFO_R_W:
                out = self._pop_fifo(length)
            else:
                data = bytearray()
                for _ in range(length):
                    data.append(self._read_register(self._pointer))
                    self._advance_pointer()
                out = bytes(data)
            if self._regs[reg.INT_PIN_CFG] & reg.INT_RD_CLEAR:
                self._clear_interrupts()
            self._move_int_pin()
            if self._sample_clock is not None:
                self._sample_clock.reschedule()  # e.g. the FIFO now overflows later
            return out

    # --- registers ---------------------------------------------------------------------
    def _load_defaults(self) -> None:
        self._regs[:] = bytes(_REGISTER_COUNT)
        self._regs[reg.PWR_MGMT_1] = reg.PWR_MGMT_1_RESET_VALUE
        self._fifo.clear()
        self._fifo_writes.clear()
        self._run_origin = None
        self._set_int(False)

    def _advance_pointer(self) -> None:
        # FIFO_R_W does not auto-increment: that is what makes burst FIFO reads work.
        if self._pointer != reg.FIFO_R_W:
            self._pointer = (self._pointer + 1) % _REGISTER_COUNT

    def _read_register(self, register: int) -> int:
        if register == reg.WHO_AM_I:
            return self.who_am_i & 0xFF
        if register == reg.INT_STATUS:
            value = self._regs[reg.INT_STATUS]
            self._clear_interrupts()
            return value
        if register == reg.FIFO_COUNTH:
            self._count_latch = len(self._fifo)
            return self._count_latch >> 8
        if register == reg.FIFO_COUNTL:
            return self._count_latch & 0xFF
        return self._regs[register]

    def _write_register(self, register: int, value: int, now: float) -> None:
        if self._reset_done_at is not None:
            return  # still resetting: the chip ignores writes
        if register == reg.PWR_MGMT_1:
            self._write_pwr_mgmt_1(value, now)
        elif register in (reg.SMPLRT_DIV, reg.CONFIG):
            self._regs[register] = value
            if self._run_origin is not None:
                self._start_run(now)
        elif register == reg.USER_CTRL:
            self._write_user_ctrl(value)
        elif register == reg.SIGNAL_PATH_RESET:
            self._reset_signal_paths(value)
        elif register == reg.FIFO_R_W:
            self._push_fifo(bytes((value,)))
        elif register == reg.INT_PIN_CFG:
            self._regs[register] = value
            self._set_int(self._int_asserted)  # the idle level may have changed
        elif register not in _READ_ONLY:
            self._regs[register] = value

    def _write_pwr_mgmt_1(self, value: int, now: float) -> None:
        if value & reg.DEVICE_RESET:
            self._load_defaults()
            self._regs[reg.PWR_MGMT_1] = reg.DEVICE_RESET | reg.PWR_MGMT_1_RESET_VALUE
            self._reset_done_at = now + self.reset_duration_s
            self.device_resets += 1
            return
        was_running = self._running()
        self._regs[reg.PWR_MGMT_1] = value
        if self._running() and not was_running:
            if self._motion_origin is None:
                self._motion_origin = now
            self._start_run(now)
        elif not self._running():
            self._run_origin = None

    def _write_user_ctrl(self, value: int) -> None:
        if value & reg.FIFO_RESET and not value & reg.USER_FIFO_EN:
            self._fifo.clear()
            self._fifo_writes.clear()
        if value & reg.SIG_COND_RESET:
            self._regs[_DATA_FIRST : reg.GYRO_XOUT_H + 6] = bytes(reg.GYRO_XOUT_H + 6 - _DATA_FIRST)
        # The reset bits clear themselves (bit 1 is I2C_MST_RESET).
        self._regs[reg.USER_CTRL] = value & ~(reg.FIFO_RESET | reg.SIG_COND_RESET | 0x02)

    def _reset_signal_paths(self, value: int) -> None:
        if value & reg.ACCEL_RESET:
            self._regs[reg.ACCEL_XOUT_H : reg.ACCEL_XOUT_H + 6] = bytes(6)
        if value & reg.TEMP_RESET:
            self._regs[reg.TEMP_OUT_H : reg.TEMP_OUT_H + 2] = bytes(2)
        if value & reg.GYRO_RESET:
            self._regs[reg.GYRO_XOUT_H : reg.GYRO_XOUT_H + 6] = bytes(6)

    # --- FIFO ----------------------------------------------------------------------------
    def _push_fifo(self, data: bytes) -> None:
        self._fifo += data
        excess = len(self._fifo) - reg.FIFO_SIZE
        if excess > 0:
            del self._fifo[:excess]  # the oldest bytes go, whatever frame they belonged to
            self.fifo_overflows += 1
            if self._regs[reg.INT_ENABLE] & reg.FIFO_OFLOW_EN:
                self._regs[reg.INT_STATUS] |= reg.FIFO_OFLOW_INT
                self._interrupt()

    def _pop_fifo(self, length: int) -> bytes:
        take = min(length, len(self._fifo))
        out = bytes(self._fifo[:take])
        del self._fifo[:take]
        if take:
            self._last_fifo_byte = out[-1]
        self.empty_fifo_reads += length - take
        return out + bytes((self._last_fifo_byte,)) * (length - take)

    # --- sampling ----------------------------------------------------------------------------
    def _running(self) -> bool:
        pwr = self._regs[reg.PWR_MGMT_1]
        return (
            self._reset_done_at is None
            and not pwr & reg.SLEEP
            and (pwr & reg.CLKSEL_MASK) != reg.CLKSEL_STOP
        )

    def _start_run(self, now: float) -> None:
        self._run_origin = now
        self._run_period = self.sample_period / (1.0 + self.clock_skew)
        self._run_emitted = 0

    def _catch_up(self, now: float) -> None:
        """Produce every sample due up to ``now`` (and finish a reset whose time has come),
        then land the FIFO writes due by ``now``."""
        self._make_samples(now)
        writes = self._fifo_writes
        while writes and writes[0][0] <= now:
            _, frame = writes.popleft()
            if self._regs[reg.USER_CTRL] & reg.USER_FIFO_EN:
                self._push_fifo(frame)

    def _make_samples(self, now: float) -> None:
        if self._reset_done_at is not None:
            if self.reset_stuck or now < self._reset_done_at:
                return
            self._reset_done_at = None
            self._regs[reg.PWR_MGMT_1] &= ~reg.DEVICE_RESET
        origin = self._run_origin
        if origin is None:
            return
        period = self._run_period
        due = int((now - origin) / period)
        # Guard the float division so that sample n is due exactly when origin + n*period <= now.
        while origin + (due + 1) * period <= now:
            due += 1
        while due > 0 and origin + due * period > now:
            due -= 1
        if due <= self._run_emitted:
            return
        first = self._run_emitted + 1
        if self.stalled:
            self._run_emitted = due
            return
        self.samples_taken += due - self._run_emitted
        # Samples older than what the FIFO can hold cannot be observed any more: skip them.
        # The kept ones still overflow the FIFO, so its bytes and flags match a full replay.
        frame = self._fifo_frame_bytes()
        keep = reg.FIFO_SIZE // frame + 2 if frame else 1
        if due - keep + 1 > first and self._regs[reg.INT_ENABLE] & reg.DATA_RDY_EN:
            for _ in range(due - keep + 1 - first):
                self._interrupt()  # the skipped samples pulsed INT all the same
        first = max(first, due - keep + 1)
        for n in range(first, due + 1):
            self._emit(origin + n * period)
        self._run_emitted = due

    def _fifo_frame_bytes(self) -> int:
        """Bytes one sample adds to the FIFO now (0 when the FIFO is not capturing)."""
        if not self._regs[reg.USER_CTRL] & reg.USER_FIFO_EN:
            return 0
        sources = self._regs[reg.FIFO_EN]
        size = 6 if sources & reg.ACCEL_FIFO_EN else 0
        size += 2 if sources & reg.TEMP_FIFO_EN else 0
        for bit in (reg.XG_FIFO_EN, reg.YG_FIFO_EN, reg.ZG_FIFO_EN):
            size += 2 if sources & bit else 0
        return size

    def _emit(self, t: float) -> None:
        """Take one sample at chip time ``t``: data registers, FIFO, DATA_RDY."""
        regs = self._regs
        dlpf = regs[reg.CONFIG] & reg.DLPF_CFG_MASK
        origin = self._motion_origin if self._motion_origin is not None else t
        ax, ay, az, gx, gy, gz = self.motion.at(max(0.0, t - origin - _DLPF_DELAY_S[dlpf]))
        a_lsb = reg.ACCEL_LSB_PER_G[(regs[reg.ACCEL_CONFIG] & reg.FS_SEL_MASK) >> reg.FS_SEL_SHIFT]
        g_lsb = reg.GYRO_LSB_PER_DPS[(regs[reg.GYRO_CONFIG] & reg.FS_SEL_MASK) >> reg.FS_SEL_SHIFT]
        if self.accel_noise_g > 0.0:
            sigma = self.accel_noise_g
            ax, ay, az = (v + self._rng.gauss(0.0, sigma) for v in (ax, ay, az))
        if self.gyro_noise_dps > 0.0:
            sigma = self.gyro_noise_dps
            gx, gy, gz = (v + self._rng.gauss(0.0, sigma) for v in (gx, gy, gz))
        celsius = self.temperature_c
        if callable(celsius):
            celsius = celsius(max(0.0, t - origin))
        if self.temperature_noise_c > 0.0:
            celsius += self._temperature_rng.gauss(0.0, self.temperature_noise_c)
        temp = (celsius - reg.TEMP_OFFSET_C) * reg.TEMP_LSB_PER_C
        raw = (
            _quantise(ax * a_lsb),
            _quantise(ay * a_lsb),
            _quantise(az * a_lsb),
            _quantise(temp),
            _quantise(gx * g_lsb),
            _quantise(gy * g_lsb),
            _quantise(gz * g_lsb),
        )
        _DATA_STRUCT.pack_into(regs, _DATA_FIRST, *raw)
        self.samples_computed += 1
        if self.history.maxlen:
            self.history.append(raw)
        if regs[reg.USER_CTRL] & reg.USER_FIFO_EN and regs[reg.FIFO_EN]:
            if self.fifo_lag_s > 0.0:
                self._fifo_writes.append((t + self.fifo_lag_s, self._fifo_frame(raw)))
            else:
                self._push_fifo(self._fifo_frame(raw))
        if regs[reg.INT_ENABLE] & reg.DATA_RDY_EN:
            regs[reg.INT_STATUS] |= reg.DATA_RDY_INT
            self._interrupt()

    def _fifo_frame(self, raw: tuple[int, ...]) -> bytes:
        """The enabled data registers of one sample, in register order, as the FIFO gets them."""
        sources = self._regs[reg.FIFO_EN]
        values: list[int] = []
        if sources & reg.ACCEL_FIFO_EN:
            values += raw[0:3]
        if sources & reg.TEMP_FIFO_EN:
            values.append(raw[3])
        for index, bit in ((4, reg.XG_FIFO_EN), (5, reg.YG_FIFO_EN), (6, reg.ZG_FIFO_EN)):
            if sources & bit:
                values.append(raw[index])
        return struct.pack(f">{len(values)}h", *values)

    # --- INT pin logic (datasheet: INT_PIN_CFG, INT_ENABLE, INT_STATUS) ---------------------
    def _interrupt(self) -> None:
        """An enabled status bit was raised: pulse INT, or assert it until cleared (latched)."""
        self.interrupts += 1
        if self._regs[reg.INT_PIN_CFG] & reg.LATCH_INT_EN:
            self._set_int(True)
        else:
            self._set_int(True)
            self._set_int(False)

    def _clear_interrupts(self) -> None:
        self._regs[reg.INT_STATUS] = 0
        self._set_int(False)

    def _set_int(self, asserted: bool) -> None:
        self._int_asserted = asserted
        if self._int_pin is not None:
            self._int_moves.append(self._int_level(asserted))

    def _int_level(self, asserted: bool) -> bool:
        """The electrical level of INT: asserted or not, through INT_LEVEL and INT_OPEN."""
        config = self._regs[reg.INT_PIN_CFG]
        active = not config & reg.INT_LEVEL
        if asserted:
            return active
        if config & reg.INT_OPEN and self._int_pin is not None:
            return bool(self._int_pin.pull == "up")  # released: the pull resistor decides
        return not active

    def _move_int_pin(self) -> None:
        """Put the levels this operation produced on the pin, in order (under the lock, so two
        threads never interleave a pulse)."""
        moves, self._int_moves = self._int_moves, []
        pin = self._int_pin
        if pin is None or pin.function != "input":
            return
        for level in moves:
            if level:
                pin.drive_high()
            else:
                pin.drive_low()


def raw_motion(
    sample: ImuSample, accel_g_per_lsb: float, gyro_dps_per_lsb: float
) -> tuple[int, int, int, int, int, int]:
    """A delivered sample back in the chip's raw units (needs a zero gyro bias), to find it in
    :meth:`SimulatedMpu6050.taken_motions`."""
    a, g = accel_g_per_lsb, gyro_dps_per_lsb
    return (
        round(sample.ax / a),
        round(sample.ay / a),
        round(sample.az / a),
        round(sample.gx / g),
        round(sample.gy / g),
        round(sample.gz / g),
    )
