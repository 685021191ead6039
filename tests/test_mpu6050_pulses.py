"""The driver's one-pulse reads (:meth:`hal.mpu6050.Mpu6050.read_signalled`): told that one
data-ready pulse came, it skips the FIFO count, and still never loses, invents or misreads a
sample. Against the register-level chip, on a simulated clock."""

from __future__ import annotations

import itertools

import pytest

from hal import ImuFifoOverflowError, ImuSample
from hal import mpu6050_registers as reg
from hal.config import ImuConfig
from hal.errors import ImuCorruptDataError
from hal.mpu6050 import COUNTED_READ_EVERY
from sim.i2c_bus import BusOp
from tests.mpu_support import RampMotion, Rig, make_rig, untaken

PERIOD = 1 / 200


def assert_grid(samples: list[ImuSample], period: float) -> None:
    for earlier, later in itertools.pairwise(samples):
        assert later.t - earlier.t == pytest.approx(period, abs=1e-9)


def ops_since(rig: Rig, mark: int) -> list[BusOp]:
    """The transactions made since the bus log held ``mark`` of them."""
    return list(rig.bus.log)[mark:]


def fifo_reads(ops: list[BusOp]) -> list[BusOp]:
    return [op for op in ops if op.register == reg.FIFO_R_W]


def count_reads(ops: list[BusOp]) -> list[BusOp]:
    return [op for op in ops if op.register == reg.FIFO_COUNTH]


def between_samples(rig: Rig) -> Rig:
    """Reads from now on fall half a period after the chip's samples, never on one."""
    rig.clock.advance(PERIOD / 2)
    return rig


def steady(rig: Rig, reads: int = 3) -> list[ImuSample]:
    """A few one-pulse reads, a sample period apart (the first after start counts)."""
    samples: list[ImuSample] = []
    for _ in range(reads):
        rig.clock.advance(PERIOD)
        samples += rig.imu.read_signalled(1)
    return samples


def test_one_pulse_reads_skip_the_fifo_count_and_deliver_every_sample() -> None:
    rig = between_samples(make_rig(motion=RampMotion(), keep_samples=400))
    samples = steady(rig, 1)
    mark = len(rig.bus.log)
    for _ in range(200):
        rig.clock.advance(PERIOD)
        samples += rig.imu.read_signalled(1)
    ops = ops_since(rig, mark)
    assert len(samples) == 201 and rig.chip.samples_taken == 201
    assert_grid(samples, PERIOD)
    assert untaken(samples, rig.chip, rig.imu.settings) == 0
    # Status + snapshot and one frame a sample; the count only every COUNTED_READ_EVERY reads.
    assert len(count_reads(ops)) == 200 // COUNTED_READ_EVERY
    assert len(ops) == 2 * 200 + 200 // COUNTED_READ_EVERY
    assert rig.imu.follow_ups == 0


def test_without_the_pulse_count_every_read_still_counts() -> None:
    rig = between_samples(make_rig(motion=RampMotion()))
    steady(rig)
    mark = len(rig.bus.log)
    for _ in range(10):
        rig.clock.advance(PERIOD)
        assert len(rig.imu.read_batch(0.0)) == 1
    assert len(count_reads(ops_since(rig, mark))) == 10


def test_a_pulse_without_a_sample_pops_nothing() -> None:
    """A glitch on INT, or a pulse whose sample was already read: DATA_RDY_INT is clear, so
    the driver counts instead of reading a frame that is not there."""
    rig = between_samples(make_rig(motion=RampMotion(), keep_samples=10))
    before = steady(rig)
    mark = len(rig.bus.log)
    assert rig.imu.read_signalled(1) == []
    assert fifo_reads(ops_since(rig, mark)) == []
    after = steady(rig, 2)
    assert len(after) == 2
    assert_grid(before + after, PERIOD)


def test_a_pulse_missed_by_the_callback_is_caught_up() -> None:
    """Two samples behind one pulse: the frame read is older than the snapshot, so the
    driver counts and reads the rest; the next read counts again."""
    rig = between_samples(make_rig(motion=RampMotion(), keep_samples=10))
    before = steady(rig)
    rig.clock.advance(2 * PERIOD)
    both = list(rig.imu.read_signalled(1))
    assert len(both) == 2 and rig.imu.follow_ups == 1
    mark = len(rig.bus.log)
    after = steady(rig, 1)
    assert len(count_reads(ops_since(rig, mark))) == 1
    assert_grid(before + both + after, PERIOD)
    assert untaken(before + both + after, rig.chip, rig.imu.settings) == 0


def test_a_frame_popped_while_its_flag_is_still_set_is_not_read_twice() -> None:
    """A catch-up read (above) can pop a frame the chip took after the status read, whose
    DATA_RDY_INT is still set. The next read must count, not trust the flag: a frame read
    from an empty FIFO would be garbage, judged corrupt, and fault the monitor."""
    period = 1 / 100  # room for the transactions, which take their time on this bus
    rig = make_rig(ImuConfig(sample_rate_hz=100), RampMotion(), bus_hz=100_000, keep_samples=20)
    rig.clock.advance(period)
    rig.imu.read_batch(0.0)
    while rig.chip.fifo_level == 0:  # find a sample instant, to 10 µs
        rig.clock.advance(1e-5)
    sample_at = rig.clock.monotonic()
    # Two frames wait behind one pulse; the next sample lands while the first frame is read.
    rig.clock.advance(2 * period - 0.0025)
    caught_up = list(rig.imu.read_signalled(1))
    assert len(caught_up) == 3 and rig.imu.follow_ups == 1
    assert rig.clock.monotonic() < sample_at + 2.5 * period  # no sample due before the next
    assert rig.chip.peek(reg.INT_STATUS) & reg.DATA_RDY_INT  # the popped frame's flag
    mark = len(rig.bus.log)
    assert rig.imu.read_signalled(1) == []
    assert fifo_reads(ops_since(rig, mark)) == []
    assert untaken(caught_up, rig.chip, rig.imu.settings) == 0


def test_an_overflow_is_reported_by_a_one_pulse_read() -> None:
    rig = between_samples(make_rig(motion=RampMotion()))
    steady(rig)
    rig.clock.advance(0.5)  # the FIFO holds 365 ms
    with pytest.raises(ImuFifoOverflowError, match="FIFO_OFLOW_INT"):
        rig.imu.read_signalled(1)
    assert len(steady(rig, 2)) == 2  # fresh data after the reset


def test_a_corrupted_frame_is_caught_by_a_one_pulse_read() -> None:
    rig = between_samples(make_rig(motion=RampMotion(), keep_samples=10))
    steady(rig)
    rig.bus.inject_garbage(register=reg.FIFO_R_W)
    rig.clock.advance(PERIOD)
    with pytest.raises(ImuCorruptDataError):
        rig.imu.read_signalled(1)
    assert rig.imu.corruptions == 1
    assert untaken(steady(rig, 3), rig.chip, rig.imu.settings) == 0
