"""The driver's one-pulse reads (:meth:`hal.mpu6050.Mpu6050.read_signalled`): told that one
data-ready pulse came, it skips the FIFO count, and still never loses, invents or misreads a
sample. Against the register-level chip, on a simulated clock."""

from __future__ import annotations

import itertools
import random

import pytest

from hal import ImuFifoOverflowError, ImuSample
from hal import mpu6050_registers as reg
from hal.config import ImuConfig
from hal.errors import ImuCorruptDataError
from hal.mpu6050 import COUNTED_READ_EVERY
from sim.i2c_bus import BusOp
from tests.mpu_support import RampMotion, Rig, history_positions, make_rig, untaken

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


# --- the FIFO write trailing DATA_RDY --------------------------------------------------------

FIFO_LAG_S = 0.0008
"""The simulated chip's FIFO write trails its data registers and DATA_RDY by this much. On
the 400 kHz bus below, a one-pulse read that starts within about 0.1 ms of the sample pops
the FIFO before the frame lands; the follow-up count comes after it has."""


def lagging_rig(die_c: float, gyro_slope: float = 6.5, **options: object) -> Rig:
    """A chip whose FIFO write trails DATA_RDY, on a bus that takes its time. ax ramps, so
    every sample differs; gz ramps (by default about 1 LSB a sample, so the FIFO's last byte,
    gz's low byte, what an empty FIFO repeats, runs through every value)."""
    return make_rig(
        motion=RampMotion(slope=0.2, gyro_slope=gyro_slope),
        bus_hz=400_000,
        fifo_lag_s=FIFO_LAG_S,
        temperature_c=die_c,
        **options,
    )


def read_after_next_sample(rig: Rig, delay: float) -> list[ImuSample]:
    """A one-pulse read ``delay`` after the chip's next sample (as an INT callback does)."""
    rig.chip.make_due_samples()
    due = rig.chip.next_interrupt_at()
    assert due is not None
    rig.clock.advance(due + delay - rig.clock.monotonic())
    return list(rig.imu.read_signalled(1))


def test_a_pop_that_finds_the_fifo_empty_is_dropped_and_the_sample_read_after_it() -> None:
    """The pop comes before the frame lands: an empty FIFO answers with its last byte (0x00,
    gz's low byte) 14 times. That frame's temperature word (36.53 °C) is not the die's
    (25 °C), so it cannot be a sample: it is dropped, and the frame that lands is read."""
    rig = lagging_rig(25.0, gyro_slope=0.0, keep_samples=50)
    before = [s for _ in range(3) for s in read_after_next_sample(rig, PERIOD / 2)]
    assert rig.chip.empty_fifo_reads == 0
    racing = read_after_next_sample(rig, 0.00005)
    assert rig.chip.empty_fifo_reads == reg.FIFO_FRAME_BYTES_WITH_TEMP  # it did pop nothing
    assert rig.imu.empty_reads == 1 and rig.imu.corruptions == 0
    after = read_after_next_sample(rig, PERIOD / 2)
    stream = before + racing + after
    positions = history_positions(stream, rig.chip, rig.imu.settings)
    assert len(racing) == 1 and None not in positions
    assert positions == list(range(positions[0], positions[0] + len(stream)))
    assert_grid(stream, PERIOD)


def test_an_empty_pop_whose_count_for_the_rest_is_garbage_is_corrupt_data_never_a_crash() -> None:
    """The pop finds the FIFO empty (dropped, as above) and the count for the rest is
    damaged on the wire to bytes that are not whole frames, so it is refused: no frame is
    left after DATA_RDY. That is corrupt data, named, and the stream goes on after it; the
    check of an empty burst took ``min()`` of no temperatures and raised ``ValueError`` out
    of the driver, a crash of the monitor loop (mutant (mut26b): the ``frames == 0`` check
    in the one-pulse read dropped)."""
    rig = lagging_rig(25.0, gyro_slope=0.0, keep_samples=50)
    for _ in range(3):
        read_after_next_sample(rig, PERIOD / 2)
    rig.bus.inject_garbage(register=reg.FIFO_COUNTH, corrupt=lambda _data, _rng: b"\x00\x0f")
    with pytest.raises(ImuCorruptDataError, match="no FIFO frame could be read"):
        read_after_next_sample(rig, 0.00005)
    assert rig.imu.empty_reads == 1 and rig.imu.corruptions == 1
    assert len(read_after_next_sample(rig, PERIOD / 2)) == 1


def test_an_empty_pop_that_could_be_a_sample_is_a_reported_gap() -> None:
    """At 36.53 °C TEMP_OUT is 0, so fourteen 0x00 bytes could be a true sample (all seven
    words zero): the driver cannot tell, so it neither delivers nor silently drops the frame."""
    rig = lagging_rig(reg.TEMP_OFFSET_C, gyro_slope=0.0, keep_samples=50)
    before = [s for _ in range(3) for s in read_after_next_sample(rig, PERIOD / 2)]
    with pytest.raises(ImuCorruptDataError, match="one byte repeated"):
        read_after_next_sample(rig, 0.00005)
    assert rig.imu.empty_reads == 0
    after = [s for _ in range(3) for s in read_after_next_sample(rig, PERIOD / 2)]
    assert untaken(before + after, rig.chip, rig.imu.settings) == 0
    assert len(after) == 3


def test_a_true_frame_damaged_into_one_repeated_byte_is_a_gap_not_an_empty_read() -> None:
    """Two frames behind one pulse, and a stuck line turns the first into fourteen 0x55
    bytes: one repeated byte, with an impossible temperature, but not the last byte read from
    the FIFO, so not what an empty FIFO returns. Dropping it would lose a true sample
    unreported; the read fails instead."""
    rig = between_samples(make_rig(motion=RampMotion(), keep_samples=20))
    steady(rig)
    rig.clock.advance(2 * PERIOD)
    rig.bus.inject_garbage(register=reg.FIFO_R_W, corrupt=lambda data, _: b"\x55" * len(data))
    with pytest.raises(ImuCorruptDataError, match="one byte repeated"):
        rig.imu.read_signalled(1)
    assert rig.imu.empty_reads == 0


def test_the_last_byte_read_before_a_fifo_reset_does_not_make_a_damaged_frame_an_empty_read() -> (
    None
):
    """The driver forgets the FIFO's last byte when it resets the FIFO: what an empty FIFO
    repeats after FIFO_RESET is the chip's business. Two frames behind a pulse after an
    overflow's reset, and a stuck line turns the first into fourteen copies of the byte last
    read before the reset: kept, so a reported gap (as above). Remembered, that frame passed
    for an empty read and was dropped, and the true sample was lost unreported (mutant
    (mut26b): ``_empty_fifo_byte`` not cleared in ``_reset_fifo``)."""
    rig = between_samples(make_rig(motion=RampMotion(), keep_samples=400))
    steady(rig)
    last: list[int] = []
    rig.bus.inject_garbage(
        register=reg.FIFO_R_W, corrupt=lambda data, _: last.append(data[-1]) or data
    )
    rig.clock.advance(PERIOD)
    assert len(rig.imu.read_signalled(1)) == 1 and len(last) == 1
    rig.clock.advance(0.5)  # more than the FIFO holds
    with pytest.raises(ImuFifoOverflowError):
        rig.imu.read_signalled(1)
    assert rig.imu.read_signalled(1) == []  # counted at once: nothing since the reset
    rig.clock.advance(2 * PERIOD)
    stuck = bytes(last) * reg.FIFO_FRAME_BYTES_WITH_TEMP
    rig.bus.inject_garbage(register=reg.FIFO_R_W, corrupt=lambda data, _: stuck)
    with pytest.raises(ImuCorruptDataError, match="one byte repeated"):
        rig.imu.read_signalled(1)
    assert rig.imu.empty_reads == 0


@pytest.mark.parametrize("paced", [True, False], ids=["pulses", "polled"])
def test_with_the_fifo_write_trailing_data_ready_no_sample_is_made_up_lost_or_repeated(
    paced: bool,
) -> None:
    """Many die temperatures, every last-byte value, reads racing the FIFO write, pulses lost
    or spurious now and then: every sample delivered is one the chip took, in the chip's
    order, none twice, none skipped except across a reported gap. Paced by pulses, the only
    gaps are the empty pops that could have been a sample (their repeated byte makes the
    die's temperature); polled, the counted reads never read past the count at all."""
    rng = random.Random(11)
    die_temperatures = [reg.TEMP_OFFSET_C] + [round(rng.uniform(10.0, 45.0), 2) for _ in range(9)]
    empty_pops = 0
    gaps: list[str] = []
    for die_c in die_temperatures:
        rig = lagging_rig(die_c, keep_samples=5000)
        runs: list[list[ImuSample]] = [[]]
        taken = rig.chip.samples_taken
        for _ in range(1200):
            two = rng.choice([0.0, 0.0, 0.0, PERIOD])  # sometimes two samples since the last read
            delay = rng.choice([rng.uniform(0.0, 0.00015), PERIOD / 2])
            rig.chip.make_due_samples()
            due = rig.chip.next_interrupt_at()
            assert due is not None
            rig.clock.advance(due + two + delay - rig.clock.monotonic())
            rig.chip.make_due_samples()
            pulses, taken = rig.chip.samples_taken - taken, rig.chip.samples_taken
            told = rng.choice([pulses, pulses, pulses, 1])  # a pulse lost, or one spurious
            try:
                runs[-1] += rig.imu.read_signalled(told) if paced else rig.imu.read_batch(0.0)
            except ImuFifoOverflowError as exc:
                gaps.append(str(exc))
                runs.append([])
        positions = [history_positions(run, rig.chip, rig.imu.settings) for run in runs]
        assert all(None not in run for run in positions), f"a made-up sample at {die_c} °C"
        for run in positions:
            assert run == list(range(run[0], run[0] + len(run))) if run else True
        flat = [p for run in positions for p in run]
        assert flat == sorted(set(flat))  # in order, none twice, across the gaps too
        assert rig.chip.samples_taken - len(flat) < 3 * len(runs) + 2  # lost only at gaps
        empty_pops += rig.imu.empty_reads
        if not paced:
            assert rig.chip.empty_fifo_reads == 0
    if paced:
        assert empty_pops > 1000  # the race happened, and cost nothing
        assert all("one byte repeated" in gap for gap in gaps)
        assert 3 <= len(gaps) < empty_pops / 100  # could-be samples: ~1 in 200
    else:
        assert gaps == []
