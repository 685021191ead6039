"""The MPU-6050 driver's FIFO plausibility checks, register-level on the simulated bus.

Corruption is injected on the fake bus the way a noisy line does it (random
bytes, one changed byte, lost or doubled bytes, a bit slip, a stuck data
line, a misread register pointer). A corrupted sample that reaches the caller
is one whose raw values the simulated chip never produced.
"""

from __future__ import annotations

import errno
import itertools
import random
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.samples import ImuSample
from firmware.detection.base import NO_DETECTIONS, Detection
from hal import mpu6050_registers as reg
from hal.config import ImuConfig
from hal.errors import ImuBusError, ImuCorruptDataError, ImuError, ImuFifoOverflowError
from hal.mpu6050 import Mpu6050
from hal.mpu6050_check import TEMP_NOISE_C, FifoChecks
from sim.i2c_bus import (
    Corruption,
    FakeI2cBus,
    bit_slip,
    flip_one_byte,
    shift_bytes,
    stuck_line,
    xor_every_byte,
)
from sim.mpu6050_sim import WarmingDie
from tests.app_support import close_rigs
from tests.app_support import make_rig as make_monitor
from tests.mpu_support import ConstantMotion, RampMotion, Rig, history_positions, make_rig, untaken

PERIOD = 1 / 200
POLL = 1 / 189
"""The monitor's loop reads the FIFO about 189 times a second at 200 Hz."""
FRAME = reg.FIFO_FRAME_BYTES_WITH_TEMP

DAMAGES: dict[str, Corruption] = {
    "random bytes": xor_every_byte,
    "one changed byte": flip_one_byte,
    "one byte lost": shift_bytes(1),
    "two bytes lost": shift_bytes(2),
    "one byte doubled": shift_bytes(-1),
    "bit slip": bit_slip,
    "stuck low": stuck_line(0x00),
    "stuck high": stuck_line(0xFF),
}


def noisy_rig(
    config: ImuConfig | None = None,
    *,
    die_c: Any = 30.0,
    bus_hz: float | None = None,
    keep_samples: int = 1024,
    motion: ConstantMotion | RampMotion | None = None,
) -> Rig:
    """A chip with sensor noise (no two samples alike, as on a real part) and a history.
    Give it a :class:`RampMotion` where a test tells samples apart by their values."""
    return make_rig(
        config,
        motion or ConstantMotion(),
        bus_hz=bus_hz,
        accel_noise_g=0.003,
        gyro_noise_dps=0.05,
        temperature_c=die_c,
        temperature_noise_c=0.05,
        keep_samples=keep_samples,
    )


def wrong_samples(rig: Rig, samples: list[ImuSample]) -> int:
    return untaken(samples, rig.chip, rig.imu.settings)


def wait_for_frames(rig: Rig, frames: int) -> list[ImuSample]:
    """Read what is in the FIFO (returned), then let exactly ``frames`` new samples come in."""
    samples = rig.read(timeout=0.0)
    while rig.chip.fifo_level < frames * FRAME:
        rig.clock.advance(PERIOD / 10)
    return samples


def positions(rig: Rig, samples: list[ImuSample]) -> list[int | None]:
    return history_positions(samples, rig.chip, rig.imu.settings)


def assert_chip_order(rig: Rig, runs: list[list[ImuSample]]) -> None:
    """Every sample delivered is one the chip took, in the chip's order, none twice, and none
    skipped within a run (``runs`` split the stream where the driver reported a gap). Needs a
    motion whose samples all differ (a ramp) and a history that holds the whole test."""
    assert len(rig.chip.history) == rig.chip.samples_taken  # no sample fell out of it
    where = [positions(rig, run) for run in runs]
    assert all(None not in run for run in where), "a sample the chip never took"
    for run in where:
        for a, b in itertools.pairwise(run):
            assert a is not None and b is not None
            assert b == a + 1, f"not the chip's next sample: {a} then {b}"
    everything = [p for run in where for p in run if p is not None]
    assert everything == sorted(set(everything)), "a sample twice, or out of order"


def read_early(rig: Rig, early: list[ImuSample], runs: list[list[ImuSample]]) -> int:
    """How many samples read through a FIFO pointer misread onto the data registers came
    again in their place in the stream. Those reads return the chip's newest sample, a true
    one, while the FIFO keeps its frames: a known limit, kept out of :func:`assert_chip_order`
    (``test_a_pointer_misread_onto_the_data_registers_repeats_a_sample``)."""
    assert wrong_samples(rig, early) == 0
    stream = {p for run in runs for p in positions(rig, run)}
    return sum(p in stream for p in positions(rig, early))


# --- what the checks catch ------------------------------------------------------------------


@pytest.mark.parametrize("die_c", [22.0, 36.5])
@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_no_damaged_one_frame_burst_reaches_the_caller(damage: Corruption, die_c: float) -> None:
    # One frame per read, as in the monitor's loop; the bus takes no time, so the data
    # registers always hold the burst's sample. 36.5 °C is the temperature check's blind spot.
    rig = noisy_rig(die_c=die_c)
    changed: list[bool] = []

    def recorded(data: bytes, rng: random.Random) -> bytes:
        damaged = damage(data, rng)
        changed.append(damaged != data)
        return damaged

    for _ in range(200):
        wait_for_frames(rig, 1)
        rig.bus.inject_garbage(register=reg.FIFO_R_W, corrupt=recorded)
        try:
            batch = rig.read(timeout=0.0)
        except ImuCorruptDataError:
            assert changed[-1]
            continue
        assert len(batch) == 1
        assert not changed[-1]  # e.g. a bit slip in a run of equal bits
        assert wrong_samples(rig, batch) == 0
    assert rig.imu.corruptions == sum(changed) >= 150


def test_a_changed_byte_passes_only_in_an_older_frames_motion_words() -> None:
    rig = noisy_rig()
    rng = random.Random(5)
    hits: list[tuple[int, int]] = []

    def change_one_byte(data: bytes, bus_rng: random.Random) -> bytes:
        at = bus_rng.randrange(len(data))
        hits.append((at, len(data)))
        return data[:at] + bytes((data[at] ^ bus_rng.randint(1, 255),)) + data[at + 1 :]

    passed = caught = 0
    for _ in range(400):
        wait_for_frames(rig, rng.randint(1, 8))
        rig.bus.inject_garbage(register=reg.FIFO_R_W, corrupt=change_one_byte)
        try:
            batch = rig.read(timeout=0.0)
        except ImuCorruptDataError:
            caught += 1
            continue
        at, length = hits[-1]
        in_last_frame = at >= length - FRAME
        in_temperature = at % FRAME in (6, 7)  # TEMP_OUT_H, TEMP_OUT_L
        assert not in_last_frame, "the last frame is checked against the data registers"
        wrong = wrong_samples(rig, batch)
        if in_temperature:
            assert wrong == 0  # a temperature within tolerance; no motion value changed
        else:
            assert wrong == 1  # the known limit: one older frame's accel or gyro word
            passed += 1
    assert caught > 100 and passed > 100


def test_a_misread_register_pointer_is_caught() -> None:
    rig = noisy_rig(die_c=25.0, motion=RampMotion(slope=0.2), keep_samples=5000)
    targets = (reg.GYRO_XOUT_H, reg.FIFO_COUNTH, 0x00, reg.SMPLRT_DIV, reg.ACCEL_XOUT_H)
    caught = 0
    runs: list[list[ImuSample]] = [[]]
    early: list[ImuSample] = []
    for trial in range(100):
        runs[-1] += wait_for_frames(rig, 1 + trial % 4)
        target = targets[trial % len(targets)]
        rig.bus.inject_misread(register=reg.FIFO_R_W, read_from=target)
        try:
            batch = rig.read(timeout=0.0)
        except ImuCorruptDataError:
            caught += 1
            runs.append([])
            continue
        # From ACCEL_XOUT_H the chip answers with its newest sample: a true one.
        assert target == reg.ACCEL_XOUT_H
        assert wrong_samples(rig, batch) == 0
        early += batch
    assert caught >= 80
    assert_chip_order(rig, runs)
    assert read_early(rig, early, runs) == len(early) > 0


@pytest.mark.xfail(
    strict=True,
    reason="known limit: a FIFO read whose pointer the chip misreads as ACCEL_XOUT_H returns "
    "the newest sample, byte for byte the snapshot, while the FIFO keeps its frames; found by "
    "the order check in the fuzz below, not fixed (the driver cannot tell it from a true pop)",
)
@pytest.mark.parametrize("waiting", [1, 2])
def test_a_pointer_misread_onto_the_data_registers_repeats_a_sample(waiting: int) -> None:
    rig = noisy_rig(motion=RampMotion(slope=0.2), keep_samples=100)
    stream = wait_for_frames(rig, waiting)
    rig.bus.inject_misread(register=reg.FIFO_R_W, read_from=reg.ACCEL_XOUT_H)
    stream += rig.imu.read_signalled(1)  # the newest sample, read from the registers
    stream += wait_for_frames(rig, 1)  # the FIFO's frames: the newest one again
    stream += rig.read(timeout=0.0)
    assert_chip_order(rig, [stream])


def test_garbage_in_any_read_of_a_poll_never_becomes_samples() -> None:
    rig = noisy_rig(motion=RampMotion(slope=0.2), keep_samples=5000)
    rng = random.Random(8)
    errors = 0
    runs: list[list[ImuSample]] = [[]]
    for _ in range(300):
        runs[-1] += wait_for_frames(rig, rng.randint(1, 6))
        register = rng.choice([reg.FIFO_COUNTH, reg.INT_STATUS, reg.FIFO_R_W])
        rig.bus.inject_garbage(register=register)
        try:
            batch = rig.read(timeout=0.0)
        except ImuError:
            errors += 1
            runs.append([])
        else:
            assert wrong_samples(rig, batch) == 0
            runs[-1] += batch
        rig.bus.clear_faults()
    assert errors > 250
    assert_chip_order(rig, runs)


def test_garbage_in_a_one_pulse_read_never_becomes_samples() -> None:
    """The reads that skip the FIFO count (after one data-ready pulse) check the same way:
    garbage in the status, the frame, a catch-up count, or a misread pointer never becomes a
    sample, with one frame or two (an uncounted pulse) waiting; and what is delivered comes in
    the chip's order, none twice, none skipped without a reported gap."""
    rig = noisy_rig(motion=RampMotion(slope=0.2), keep_samples=5000)
    rng = random.Random(9)
    errors = fast = 0
    runs: list[list[ImuSample]] = [[]]
    early: list[ImuSample] = []
    for _ in range(300):
        runs[-1] += wait_for_frames(rig, rng.choice([1, 1, 2]))
        counts_before = rig.bus.counts["read_i2c_block_data"]
        onto_data = False
        if rng.random() < 0.25:
            register = rng.choice([reg.INT_STATUS, reg.FIFO_R_W])
            read_from = rng.choice([0x00, reg.ACCEL_XOUT_H, reg.FIFO_COUNTH])
            rig.bus.inject_misread(register=register, read_from=read_from)
            onto_data = (register, read_from) == (reg.FIFO_R_W, reg.ACCEL_XOUT_H)
        else:
            register = rng.choice([reg.FIFO_COUNTH, reg.INT_STATUS, reg.FIFO_R_W])
            rig.bus.inject_garbage(register=register)
        try:
            batch = list(rig.imu.read_signalled(1))
        except ImuError:
            errors += 1
            runs.append([])
        else:
            assert wrong_samples(rig, batch) == 0
            if onto_data and rig.bus.pending_faults == 0:
                early += batch
            else:
                runs[-1] += batch
        fast += (
            rig.bus.log[-1].register == reg.FIFO_R_W
            and counts_before + 2 == (rig.bus.counts["read_i2c_block_data"])
        )
        rig.bus.clear_faults()
    assert errors > 150 and fast > 50
    assert_chip_order(rig, runs)
    assert read_early(rig, early, runs) == len(early) > 0


def test_without_the_checks_the_same_garbage_passes() -> None:
    # What the checks are for: the driver with them off delivers the damaged samples.
    clock_rig = noisy_rig()
    imu = Mpu6050(clock_rig.bus, ImuConfig(), clock_rig.clock, checks=FifoChecks(False, False))
    imu.start()
    passed = 0
    for _ in range(50):
        clock_rig.clock.advance(PERIOD)
        clock_rig.bus.inject_garbage(register=reg.FIFO_R_W)
        passed += untaken(imu.read_batch(0.0), clock_rig.chip, imu.settings)
    assert passed == 50


# --- after a detection ------------------------------------------------------------------------


def test_a_corrupt_burst_is_an_overflow_error_and_the_stream_realigns() -> None:
    rig = noisy_rig()
    rig.clock.advance(0.05)
    before = rig.read()
    wait_for_frames(rig, 4)
    rig.bus.inject_garbage(register=reg.FIFO_R_W)
    with pytest.raises(ImuFifoOverflowError, match="corrupted FIFO data") as info:
        rig.read()
    assert isinstance(info.value, ImuCorruptDataError)
    assert info.value.samples_lost_at_least == 4
    assert rig.chip.fifo_level == 0  # reset, as after an overflow
    wait_for_frames(rig, 3)
    after = rig.read()
    assert len(after) == 3 and wrong_samples(rig, after) == 0
    assert after[0].t - before[-1].t > 4 * PERIOD  # the discarded samples show as a gap


def test_a_bus_error_while_reading_on_is_reported_as_a_gap() -> None:
    class FailsTheSecondCount(FakeI2cBus):
        counts_read = 0

        def read_i2c_block_data(
            self, i2c_addr: int, register: int, length: int, force: bool | None = None
        ) -> list[int]:
            if register == reg.FIFO_COUNTH:
                self.counts_read += 1
                if self.counts_read == 2:
                    raise OSError(errno.EIO, "Input/output error")
            return super().read_i2c_block_data(i2c_addr, register, length, force)

    rig = noisy_rig()
    bus = FailsTheSecondCount({0x68: rig.chip})
    imu = Mpu6050(bus, ImuConfig(), rig.clock)
    imu.start()
    bus.counts_read = 0
    rig.clock.advance(2 * PERIOD)
    # A misread burst makes the driver read on; that read fails after the burst was popped.
    bus.inject_misread(register=reg.FIFO_R_W, read_from=0x00)
    with pytest.raises(ImuFifoOverflowError, match="checking a FIFO burst"):
        imu.read_batch(0.01)
    assert imu.bus_errors == 1
    rig.clock.advance(PERIOD)
    assert imu.read_batch(0.01)


# --- no false alarms --------------------------------------------------------------------------

RATES = [(4.0, 10), (100.0, 5), (200.0, 44), (1000.0, 94), (8000.0, 260)]
RANGES = [(2, 250), (4, 500), (8, 1000), (16, 2000)]


def stream(rig: Rig, seconds: float, poll_s: float) -> Iterator[list[ImuSample]]:
    end = rig.clock.monotonic() + seconds
    next_poll = rig.clock.monotonic()
    while rig.clock.monotonic() < end:
        next_poll += poll_s
        rig.clock.advance(max(0.0, next_poll - rig.clock.monotonic()))
        yield rig.read(timeout=0.0)


@pytest.mark.parametrize(("rate", "dlpf"), RATES)
@pytest.mark.parametrize(("accel", "gyro"), RANGES)
def test_clean_streams_never_trip_the_checks(rate: float, dlpf: int, accel: int, gyro: int) -> None:
    config = ImuConfig(sample_rate_hz=rate, dlpf_hz=dlpf, accel_range_g=accel, gyro_range_dps=gyro)
    # Warming fast (0.2 °C/s at first), with noise: harder than a real belt.
    rig = noisy_rig(config, die_c=WarmingDie(22.0, 33.0, 55.0))
    seconds = min(30.0, 6000 / rate)
    samples = sum(len(batch) for batch in stream(rig, seconds, min(POLL, 20 / rate)))
    assert samples == rig.chip.samples_taken
    assert rig.imu.corruptions == 0 and rig.imu.overflows == 0


@pytest.mark.parametrize(
    ("rate", "dlpf", "bus_hz"),
    [(200.0, 44, 100_000.0), (1000.0, 94, 400_000.0)],
)
def test_clean_streams_on_a_bus_that_takes_time_never_trip(
    rate: float, dlpf: int, bus_hz: float
) -> None:
    # Transactions take their wire time: samples land between the count and the snapshot,
    # and the driver has to read on (at a rate above the loop's 189 polls/s).
    rig = noisy_rig(ImuConfig(sample_rate_hz=rate, dlpf_hz=dlpf), bus_hz=bus_hz)
    samples = sum(len(batch) for batch in stream(rig, 20.0, POLL))
    assert rig.imu.follow_ups > 0
    assert rig.imu.corruptions == 0 and rig.imu.overflows == 0
    assert samples >= rig.chip.samples_taken - 3  # the last few are still in the FIFO


def test_a_long_run_with_a_warming_die_never_trips() -> None:
    # Five minutes at 200 Hz, the first of a power-on warm-up from 20 °C toward 34 °C,
    # on a bus that takes time.
    rig = noisy_rig(die_c=WarmingDie(20.0, 34.0, 300.0), bus_hz=100_000.0, keep_samples=0)
    samples = sum(len(batch) for batch in stream(rig, 300.0, POLL))
    assert rig.imu.corruptions == 0 and rig.imu.overflows == 0
    assert samples >= rig.chip.samples_taken - 3
    assert rig.imu.follow_ups > 100


def test_a_temperature_step_beyond_the_tolerance_is_refused() -> None:
    # The reverse of the no-false-alarm tests: the check is not vacuous for real frames.
    rig = noisy_rig(die_c=30.0)
    rig.clock.advance(0.05)
    rig.read()
    rig.chip.temperature_c = 30.0 + 3 * TEMP_NOISE_C
    rig.clock.advance(PERIOD)
    with pytest.raises(ImuCorruptDataError, match="die temperature jumps"):
        rig.read()


# --- the monitor ------------------------------------------------------------------------------


class Recorder:
    """A detector that decides nothing and remembers every sample it was given."""

    def __init__(self) -> None:
        self.samples: list[ImuSample] = []

    def update(self, sample: ImuSample) -> tuple[Detection, ...]:
        self.samples.append(sample)
        return NO_DETECTIONS

    def reset(self) -> None:
        pass


@pytest.mark.usefixtures(close_rigs.__name__)
@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_the_monitor_faults_and_releases_the_relay_on_corrupt_data(
    tmp_path: Path, damage: Corruption
) -> None:
    detector = Recorder()
    monitor = make_monitor(tmp_path, detector=detector)
    assert monitor.sim_imu is not None
    chip, bus = monitor.sim_imu.chip, monitor.sim_imu.bus
    chip.history = deque(maxlen=100_000)
    monitor.run_for(1.0)
    monitor.press_reset()
    assert monitor.state == "ARMED" and monitor.hardware.contact_closed()
    bus.inject_garbage(register=reg.FIFO_R_W, corrupt=damage)
    monitor.run_for(0.05)
    assert monitor.state == "FAULT"
    assert "corrupted FIFO data" in monitor.app.controller.reason
    assert not monitor.hardware.contact_closed()
    taken = [s for s in detector.samples if s.t > monitor.clock.monotonic() - 1.0]
    assert untaken(taken, chip, monitor.sim_imu.imu.settings) == 0


def test_corrupt_data_is_a_gap_not_a_transient_bus_error() -> None:
    # The safety controller faults at once on an ImuFifoOverflowError; bus errors wait.
    assert issubclass(ImuCorruptDataError, ImuFifoOverflowError)
    assert not issubclass(ImuCorruptDataError, ImuBusError)


def test_each_burst_is_compared_with_the_data_registers_once() -> None:
    """The driver finds the snapshot as the burst's last frame (the usual read) and the burst
    check then does not compare them again; a burst read on past the snapshot (the chip
    sampled between the count and the snapshot) is still judged by the burst check. Every
    sample arrives, none refused."""
    from hal.mpu6050_check import FifoPlausibility

    rig = noisy_rig(ImuConfig(sample_rate_hz=200.0, dlpf_hz=44), bus_hz=100_000.0)
    compared: list[str] = []
    plausibility: FifoPlausibility = rig.imu._plausibility
    for name in ("snapshot_is_last", "_judge_snapshot"):
        method = getattr(plausibility, name)

        def spy(*args: Any, _name: str = name, _method: Any = method) -> Any:
            compared.append(_name)
            return _method(*args)

        setattr(plausibility, name, spy)
    batches = [batch for batch in stream(rig, 10.0, POLL) if batch]
    reads = len(batches)  # every read that gave samples counted the FIFO (poll pacing)
    assert rig.imu.follow_ups > 0 and rig.imu.corruptions == 0
    assert compared.count("snapshot_is_last") == reads
    assert compared.count("_judge_snapshot") == rig.imu.follow_ups  # only after reading on
