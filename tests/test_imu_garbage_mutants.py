"""The MPU-6050 driver against garbage on its bus: checks that hand mutation (mut26) found no
test noticing.

Each test runs the real driver (:class:`hal.mpu6050.Mpu6050`) against the simulated
register-level chip on its fake bus, on a simulated clock (as :mod:`tests.test_mpu6050`),
and asserts what reaches the caller: true samples, or a named IMU error — never a plausible
sample the chip did not measure.
"""

from __future__ import annotations

import errno
import random

import pytest

from core.samples import ImuSample
from hal import mpu6050_registers as reg
from hal.config import ImuConfig
from hal.errors import ImuCorruptDataError, ImuFifoOverflowError
from hal.mpu6050 import Mpu6050
from sim.i2c_bus import FakeI2cBus
from sim.mpu6050_sim import SimulatedMpu6050
from tests.mpu_support import ADDRESS, ConstantMotion, HookClock, RampMotion, Rig, make_rig

PERIOD = 1 / 200


class LosesOneWrite(FakeI2cBus):
    """A bus on which one write is acknowledged and lost: the first write of ``value`` to
    ``register`` never reaches the chip (a glitch on SDA the chip took for another
    address, say). smbus2 reports nothing: the write returns as if it had landed."""

    def __init__(self, chip: SimulatedMpu6050, register: int, value: int) -> None:
        super().__init__({ADDRESS: chip})
        self.lose = (register, value)
        self.lost = 0

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        if not self.lost and (register, value) == self.lose:
            self.lost += 1
            return
        super().write_byte_data(i2c_addr, register, value, force)


def _started(register: int, value: int, config: ImuConfig) -> tuple[Mpu6050, LosesOneWrite]:
    clock = HookClock()
    chip = SimulatedMpu6050(ConstantMotion(TURNING), clock, seed=1)
    bus = LosesOneWrite(chip, register, value)
    imu = Mpu6050(bus, config, clock)
    imu.start()
    assert bus.lost == 1
    return imu, bus


SETTINGS = ImuConfig(accel_range_g=8, gyro_range_dps=1000, pacing="poll")
"""Ranges other than the chip's power-on ±2 g and ±250 deg/s, so a lost write shows."""
TURNING = (0.0, 0.0, 1.0, 0.0, 0.0, 100.0)
"""Gravity on +Z and a turn about it: both scales show in every sample."""


@pytest.mark.parametrize(
    ("register", "what"),
    [(reg.ACCEL_CONFIG, "accel range"), (reg.GYRO_CONFIG, "gyro range")],
    ids=["accel", "gyro"],
)
def test_a_configuration_write_lost_on_the_bus_is_written_again_before_any_sample(
    register: int, what: str
) -> None:
    """The configuration is read back at start: a range the chip did not take would scale
    every sample wrong — standing still read as 4 g with ±8 g asked and the chip left at its
    ±2 g, in range and plausible to every later check. The read-back finds it, the start is
    retried (a bus error, counted), and the samples are the chip's true ones (mutant: the
    read-back of the four configuration registers not compared)."""
    imu, _ = _started(register, _written(register), SETTINGS)
    assert imu.bus_errors >= 1, f"the lost {what} went unnoticed"
    _assert_true_samples(imu)


def test_a_lost_wake_up_write_is_written_again_and_the_samples_come() -> None:
    """PWR_MGMT_1 is read back too: the wake-up write lost, the chip sleeps on after its
    reset and makes no sample — a driver that believed it streaming read nothing for ever,
    an IMU silent that no re-initialisation would cure, since nothing failed. The read-back
    retries the start and the samples come (mutant: PWR_MGMT_1 not compared)."""
    imu, _ = _started(reg.PWR_MGMT_1, reg.CLKSEL_PLL_XGYRO, SETTINGS)
    assert imu.bus_errors >= 1
    _assert_true_samples(imu)


def _written(register: int) -> int:
    settings = Mpu6050(FakeI2cBus({}), SETTINGS, HookClock()).settings
    return {
        reg.ACCEL_CONFIG: settings.accel_fs_sel << reg.FS_SEL_SHIFT,
        reg.GYRO_CONFIG: settings.gyro_fs_sel << reg.FS_SEL_SHIFT,
    }[register]


def _assert_true_samples(imu: Mpu6050) -> None:
    """Samples within 50 ms of the start, each the chip's: 1 g on Z, 100 deg/s about it."""
    samples: list[ImuSample] = list(imu.read_batch(0.05))
    assert samples, "no sample within 50 ms of a started chip"
    for sample in samples:
        assert sample.az == pytest.approx(1.0, abs=0.05)
        assert sample.gz == pytest.approx(100.0, abs=1.0)


class StallsBeforeTheStatusRead(FakeI2cBus):
    """A bus whose caller is held up, once, between the FIFO count and the status read that
    follows it (the real-time thread preempted, a long clock stretch): ``stall_s`` of chip
    time passes before that read."""

    def __init__(self, chip: SimulatedMpu6050, clock: HookClock) -> None:
        super().__init__({ADDRESS: chip})
        self._clock = clock
        self.stall_s: float | None = None

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        if register == reg.INT_STATUS and self.stall_s is not None:
            self._clock.advance(self.stall_s)
            self.stall_s = None
        return super().read_i2c_block_data(i2c_addr, register, length, force)


def test_an_overflow_after_the_count_is_told_as_an_overflow_by_its_flag() -> None:
    """The FIFO count read, then a stall longer than the FIFO holds before the status read:
    the count is of whole frames and below the FIFO's size, and only FIFO_OFLOW_INT says the
    oldest bytes were overwritten. The driver raises the overflow (its count, "read it more
    often"), resets the FIFO, and reads on once the stream is back. Without the flag the
    stale count was read out of a FIFO that had lost its alignment: the snapshot check then
    threw the burst away as corrupt data, "interference or a flaky belt cable" — the same
    FAULT, told with the wrong cause, sending a technician to a cable that is fine (mutant:
    ``status & FIFO_OFLOW_INT`` dropped from the counted read's check)."""
    clock = HookClock()
    chip = SimulatedMpu6050(ConstantMotion(TURNING), clock, seed=1)
    bus = StallsBeforeTheStatusRead(chip, clock)
    imu = Mpu6050(bus, ImuConfig(pacing="poll"), clock)
    imu.start()
    clock.advance(0.05)
    assert imu.read_batch(0.0)
    clock.advance(0.05)  # frames waiting: the count will be of them
    bus.stall_s = 0.5  # the FIFO holds 0.365 s at 200 Hz
    with pytest.raises(ImuFifoOverflowError, match="FIFO_OFLOW_INT set") as raised:
        imu.read_batch(0.0)
    assert not isinstance(raised.value, ImuCorruptDataError)
    assert (imu.overflows, imu.corruptions) == (1, 0)
    clock.advance(0.05)
    _assert_true_samples(imu)


def _fifteen(raw: bytes, rng: random.Random) -> bytes:
    """FIFO_COUNTH/L read as 15: a byte more than a frame."""
    return bytes((0x00, 0x0F))


def _older_frame_waiting() -> Rig:
    """A chip streaming into one-pulse reads, then two samples and one pulse told: the next
    one-pulse read pops the older frame, not the snapshot, and counts the FIFO for the rest."""
    rig = make_rig(motion=RampMotion())
    rig.clock.advance(PERIOD / 2)  # reads fall between the chip's samples, never on one
    for _ in range(3):  # one-pulse reads (the first after start counts)
        rig.clock.advance(PERIOD)
        rig.imu.read_signalled(1)
    rig.clock.advance(2 * PERIOD)
    return rig


def test_a_garbage_count_after_a_one_pulse_pop_is_corrupt_data_never_a_crash() -> None:
    """A one-pulse read whose popped frame is not the snapshot counts the FIFO and reads the
    rest (:meth:`Mpu6050._read_rest`). A count damaged on the wire to bytes that are not
    whole frames is refused there: the burst is judged on the popped frame alone and thrown
    away as corrupt data (a named error, a FAULT in the monitor), the stream re-aligned.
    Read as it said, the odd bytes reached the decoder, whose unpack of whole frames raised
    ``struct.error`` out of the driver — a crash of the monitor loop, not an IMU fault
    (mutant: ``count % frame_bytes`` dropped from that check; the fuzz test seldom draws a
    pulse read that pops an older frame)."""
    rig = _older_frame_waiting()
    rig.bus.inject_garbage(1, register=reg.FIFO_COUNTH, corrupt=_fifteen)
    with pytest.raises(ImuCorruptDataError):
        rig.imu.read_signalled(1)
    assert rig.imu.corruptions == 1
    rig.clock.advance(PERIOD)
    assert rig.imu.read_batch(0.02)


@pytest.mark.parametrize("die_c", [-50.0, 100.0], ids=["colder", "hotter"])
def test_a_die_temperature_outside_the_sensors_range_is_refused_from_the_first_burst(
    die_c: float,
) -> None:
    """The first burst after a start has no earlier frame to be compared with: its frames
    need only agree with each other and with the data registers, and the sensor's own range
    (-40..85 °C) is what refuses a temperature word no working MPU-6050 gives — a part out
    of its rating, a clone that fills the word with something else. Refused as corrupt data
    (a named error), never delivered (mutants: the range check dropped, or either bound)."""
    rig = make_rig(motion=RampMotion(), temperature_c=die_c)
    rig.clock.advance(0.05)
    with pytest.raises(ImuCorruptDataError, match=r"outside the sensor's -40\.\.85 °C"):
        rig.imu.read_batch(0.0)


def test_a_bus_error_after_a_one_pulse_pop_is_reported_as_a_gap() -> None:
    """The popped frame is out of the FIFO when the count for the rest fails on the bus:
    that frame cannot be vouched for, so the read is retried as any bus error and the next
    read resets the FIFO and reports the gap (:class:`ImuFifoOverflowError`, a FAULT in the
    monitor) — data gaps are always reported. Without the reset flagged, the gap's words
    were kept and never raised, and the stream went on a sample short, unreported (mutant:
    ``_fifo_needs_reset`` not set in ``_read_rest``'s error path; the same path of the
    counted read's follow-up is tested in ``test_fifo_plausibility``)."""
    rig = _older_frame_waiting()
    rig.bus.inject_errors(1, errno.EIO, register=reg.FIFO_COUNTH)
    assert rig.imu.read_signalled(1) == []  # retried within the budget: nothing this read
    assert rig.imu.bus_errors == 1
    with pytest.raises(ImuFifoOverflowError, match="while checking a FIFO frame"):
        rig.imu.read_batch(0.0)
    rig.clock.advance(PERIOD)
    assert rig.imu.read_batch(0.02)


class GarblesTheCountAfterAStall(StallsBeforeTheStatusRead):
    """As :class:`StallsBeforeTheStatusRead`, and the FIFO count read after that stall (the
    counted read's follow-up for the frames the chip took meanwhile) comes back as 15."""

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        if register == reg.INT_STATUS and self.stall_s is not None:
            self.inject_garbage(register=reg.FIFO_COUNTH, corrupt=_fifteen)
        return super().read_i2c_block_data(i2c_addr, register, length, force)


def test_a_garbage_count_when_reading_on_to_the_snapshot_is_corrupt_data() -> None:
    """The chip samples between the FIFO count and the data registers' snapshot, so the
    driver counts again and reads on to the snapshot (:meth:`Mpu6050._read_on`). A count
    damaged on the wire to bytes that are not whole frames cannot say where the frames
    start: the read-on is refused and the burst, its snapshot not found, thrown away as
    corrupt data (a named error), as the counted read and the one-pulse read's rest do
    with such a count. Read as it said, a frame was popped on a count the driver knew to be
    wrong (mutant (mut26b): ``count % frame_bytes`` dropped from the read-on's check)."""
    clock = HookClock()
    chip = SimulatedMpu6050(RampMotion(), clock, seed=1)  # each sample differs from the last
    bus = GarblesTheCountAfterAStall(chip, clock)
    imu = Mpu6050(bus, ImuConfig(pacing="poll"), clock)
    imu.start()
    clock.advance(0.05)
    assert imu.read_batch(0.0)
    clock.advance(0.05)
    bus.stall_s = PERIOD  # one sample more in the snapshot than in the count
    with pytest.raises(ImuCorruptDataError, match="newest sample differs from the last FIFO frame"):
        imu.read_batch(0.0)
    assert (imu.corruptions, imu.follow_ups) == (1, 1) and bus.pending_faults == 0
    clock.advance(0.05)
    assert imu.read_batch(0.0)
