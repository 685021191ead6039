"""The MPU-6050 driver against the register-level simulation, on a simulated clock."""

from __future__ import annotations

import errno
import itertools
import random
from dataclasses import replace

import pytest

from hal import (
    ImuBusError,
    ImuDisconnectedError,
    ImuError,
    ImuFifoOverflowError,
    ImuIdentityError,
    ImuSample,
    ImuTimeoutError,
)
from hal import mpu6050_registers as reg
from hal.config import ImuConfig
from hal.interfaces import Imu
from hal.mpu6050 import FifoTimestamper, Mpu6050, register_settings
from sim.i2c_bus import FakeI2cBus
from sim.mpu6050_sim import SimulatedMpu6050
from tests.mpu_support import ADDRESS, ConstantMotion, HookClock, RampMotion, make_rig

PERIOD = 1 / 200


def assert_grid(samples: list[ImuSample], period: float) -> None:
    """Strictly increasing and exactly one period apart."""
    for earlier, later in itertools.pairwise(samples):
        assert later.t - earlier.t == pytest.approx(period, abs=1e-9)


# --- configuration ----------------------------------------------------------------


def test_it_is_an_imu() -> None:
    assert isinstance(make_rig(start=False).imu, Imu)


@pytest.mark.parametrize(
    ("rate", "dlpf", "divider", "dlpf_cfg"),
    [
        (200.0, 44, 4, 3),
        (1000.0, 94, 0, 2),
        (100.0, 5, 9, 6),
        (8000.0, 260, 0, 0),
        (4.0, 10, 249, 5),
    ],
)
def test_register_settings(rate: float, dlpf: int, divider: int, dlpf_cfg: int) -> None:
    settings = register_settings(ImuConfig(sample_rate_hz=rate, dlpf_hz=dlpf))
    assert (settings.smplrt_div, settings.dlpf_cfg) == (divider, dlpf_cfg)
    assert settings.sample_rate_hz == rate


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ImuConfig(sample_rate_hz=300), "Nearest: 333.333 Hz or 250 Hz"),
        (ImuConfig(sample_rate_hz=3), "cannot be made exactly"),
        (ImuConfig(sample_rate_hz=2000), "cannot be made exactly"),
        (ImuConfig(sample_rate_hz=0), "positive"),
        (ImuConfig(dlpf_hz=50), "dlpf_hz=50 is not an MPU-6050 setting; choose one of 260"),
        (ImuConfig(accel_range_g=3), "accel_range_g=3"),
        (ImuConfig(gyro_range_dps=300), "gyro_range_dps=300"),
    ],
)
def test_impossible_configs_are_rejected_clearly(config: ImuConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        make_rig(config, start=False)


def test_start_writes_the_configuration() -> None:
    rig = make_rig(
        ImuConfig(
            sample_rate_hz=200, dlpf_hz=44, accel_range_g=8, gyro_range_dps=1000, pacing="poll"
        )
    )
    chip = rig.chip
    assert chip.device_resets == 1
    assert chip.peek(reg.PWR_MGMT_1) == reg.CLKSEL_PLL_XGYRO  # awake, PLL on gyro X
    assert chip.peek(reg.SMPLRT_DIV) == 4
    assert chip.peek(reg.CONFIG) == 3
    assert chip.peek(reg.GYRO_CONFIG) == 2 << 3
    assert chip.peek(reg.ACCEL_CONFIG) == 2 << 3
    assert chip.peek(reg.FIFO_EN) == 0xF8  # accel + gyro XYZ, and the temperature for its check
    assert chip.peek(reg.USER_CTRL) == reg.USER_FIFO_EN
    assert chip.peek(reg.INT_ENABLE) == reg.FIFO_OFLOW_EN
    assert rig.imu.sample_rate_hz == 200.0
    assert rig.imu.streaming


def test_the_fifo_is_reset_after_configuration() -> None:
    rig = make_rig()
    writes = [(op.register, op.kind) for op in rig.bus.log if op.kind == "write_byte_data"]
    registers = [register for register, _ in writes]
    assert registers[0] == reg.PWR_MGMT_1  # DEVICE_RESET first
    assert registers[-3:] == [reg.USER_CTRL] * 3  # stop, FIFO_RESET, enable: after the config
    assert rig.chip.fifo_level == 0


# --- scaling -----------------------------------------------------------------------------


@pytest.mark.parametrize("accel_range", [2, 4, 8, 16])
def test_accel_scaling_for_every_range(accel_range: int) -> None:
    lsb = 1 / reg.ACCEL_LSB_PER_G[reg.ACCEL_FS_SEL_BY_G[accel_range]]
    value = (0.37 * accel_range, -0.81 * accel_range, 0.999 * accel_range, 0.0, 0.0, 0.0)
    rig = make_rig(ImuConfig(accel_range_g=accel_range), ConstantMotion(value))
    sample = rig.read()[0]
    for got, want in zip((sample.ax, sample.ay, sample.az), value[:3], strict=True):
        assert abs(got - want) <= lsb


@pytest.mark.parametrize("gyro_range", [250, 500, 1000, 2000])
def test_gyro_scaling_for_every_range(gyro_range: int) -> None:
    lsb = 1 / reg.GYRO_LSB_PER_DPS[reg.GYRO_FS_SEL_BY_DPS[gyro_range]]
    value = (0.0, 0.0, 1.0, 0.41 * gyro_range, -0.93 * gyro_range, 0.05 * gyro_range)
    rig = make_rig(ImuConfig(gyro_range_dps=gyro_range), ConstantMotion(value))
    sample = rig.read()[0]
    for got, want in zip((sample.gx, sample.gy, sample.gz), value[3:], strict=True):
        assert abs(got - want) <= lsb


def test_beyond_full_scale_reads_as_full_scale() -> None:
    rig = make_rig(
        ImuConfig(accel_range_g=2, gyro_range_dps=250), ConstantMotion((5, -5, 1, 900, 0, 0))
    )
    sample = rig.read()[0]
    assert sample.ax == pytest.approx(32767 / 16384)
    assert sample.ay == -2.0
    assert sample.gx == pytest.approx(32767 / 131)


def test_gyro_bias_is_subtracted() -> None:
    config = ImuConfig(gyro_bias_dps=(1.0, -2.0, 0.5))
    rig = make_rig(config, ConstantMotion((0.0, 0.0, 1.0, 1.0, -2.0, 0.5)))
    sample = rig.read()[0]
    assert (sample.gx, sample.gy, sample.gz) == pytest.approx((0.0, 0.0, 0.0), abs=1 / 32.8)


# --- FIFO bursts -------------------------------------------------------------------------


def test_small_reads_use_block_reads_and_long_bursts_use_i2c_rdwr() -> None:
    rig = make_rig()
    rig.clock.advance(2 * PERIOD)
    assert len(rig.read()) == 2  # 28 bytes: one SMBus block read
    assert rig.bus.counts["i2c_rdwr"] == 0
    rig.clock.advance(10 * PERIOD)
    before = rig.bus.counts.copy()
    assert len(rig.read()) == 10  # 140 bytes: one combined write + read
    after = rig.bus.counts - before
    assert after["i2c_rdwr"] == 1
    assert after["read_i2c_block_data"] == 2  # only INT_STATUS + data registers, FIFO_COUNT
    assert after["read_byte_data"] == 0


def test_a_full_fifo_is_read_in_one_burst() -> None:
    rig = make_rig()
    rig.clock.advance(73 * PERIOD)  # 73 frames of 14 bytes: as many as fit in 1024 bytes
    samples = rig.read()
    assert len(samples) == 73
    assert rig.bus.log[-1].kind == "i2c_rdwr" and rig.bus.log[-1].length == 1022


def test_read_batch_waits_on_the_clock_and_times_out_empty() -> None:
    rig = make_rig()
    rig.chip.stalled = True
    t0 = rig.clock.monotonic()
    assert rig.read(timeout=0.037) == []
    assert rig.clock.monotonic() - t0 == pytest.approx(0.037)


def test_read_batch_returns_as_soon_as_a_sample_is_there() -> None:
    rig = make_rig()
    t0 = rig.clock.monotonic()
    samples = rig.read(timeout=1.0)
    assert len(samples) == 1
    assert rig.clock.monotonic() - t0 <= PERIOD + 1e-9


# --- timestamps ------------------------------------------------------------------------------


def test_timestamps_are_monotonic_and_equally_spaced_across_batches() -> None:
    rig = make_rig(ImuConfig(sample_rate_hz=1000, dlpf_hz=94))
    rng = random.Random(3)
    samples: list[ImuSample] = []
    for _ in range(300):
        rig.clock.advance(rng.choice([0.0, 0.0003, 0.001, 0.004, 0.02, 0.06]))
        samples += rig.read(timeout=0.01)
        # Less than a period after the read, and at most a period (the wait step) before it.
        assert samples[-1].t < rig.clock.monotonic() + 1 / 1000
        assert samples[-1].t >= rig.clock.monotonic() - 1 / 1000 - 1e-9
    assert_grid(samples, 1 / 1000)
    assert rig.imu.timestamp_reanchors == 0
    assert rig.imu.samples_read == len(samples) == rig.chip.samples_taken


def test_newest_sample_of_a_burst_is_anchored_at_the_read_time() -> None:
    rig = make_rig(motion=RampMotion(slope=0.01))
    rig.clock.advance(0.2)
    samples = rig.read()
    assert samples[-1].t == pytest.approx(rig.clock.monotonic())
    assert_grid(samples, PERIOD)


@pytest.mark.parametrize("skew", [0.02, -0.02])
def test_a_chip_clock_a_few_percent_off_stays_near_real_time(skew: float) -> None:
    rig = make_rig(clock_skew=skew)
    samples: list[ImuSample] = []
    biggest = 0
    for _ in range(2000):
        rig.clock.advance(0.01)
        batch = rig.read(timeout=0.0)
        samples += batch
        biggest = max(biggest, len(batch))
        if batch:
            assert abs(batch[-1].t - rig.clock.monotonic()) <= 3 * PERIOD
    gaps = [b.t - a.t for a, b in itertools.pairwise(samples)]
    assert min(gaps) > 0
    off_grid = sum(1 for gap in gaps if abs(gap - PERIOD) > 1e-9)
    assert rig.imu.timestamp_reanchors > 0
    # Only re-anchored batches leave the grid (their inner gaps and the gap before them).
    assert off_grid <= biggest * rig.imu.timestamp_reanchors
    assert rig.imu.timestamp_reanchors < 2000 / 10
    assert min(gaps) >= 0.5 * PERIOD - 1e-12


def test_timestamper_rules() -> None:
    p = 0.01
    stamps = FifoTimestamper(p)
    # Anchored: the newest sample at the read time, older ones a period apart.
    assert stamps.place(3, 1.0) == pytest.approx((0.98, p))
    # Continues the grid, wherever the read falls.
    assert stamps.place(2, 1.025) == pytest.approx((1.01, p))
    # Grid far behind (it would end at 1.03, the read is at 1.5): jump forward.
    assert stamps.place(1, 1.5) == pytest.approx((1.5, p))
    # Less than a period after the read is possible with an exact clock: left alone.
    assert stamps.place(2, 1.519) == pytest.approx((1.51, p))
    assert stamps.reanchors == 1
    # Grid would end at 1.56, over a period after the read at 1.545: squeezed to end there.
    first, step = stamps.place(4, 1.545)
    assert (first, step) == pytest.approx((1.52625, 0.00625))
    assert stamps.last == pytest.approx(1.545)
    # Never squeezed below half a period, even if that leaves the grid late.
    assert stamps.place(3, 1.546) == pytest.approx((1.55, p / 2))
    assert stamps.reanchors == 3
    # After a reset the next batch is anchored again, but never before the last stamp.
    stamps.reset()
    first, _ = stamps.place(5, 1.56)
    assert first == pytest.approx(1.56 + p)


# --- FIFO overflow ---------------------------------------------------------------------------


def test_overflow_is_raised_never_silent_and_reads_resume() -> None:
    rig = make_rig(ImuConfig(sample_rate_hz=1000, dlpf_hz=94))
    before = rig.read()
    rig.clock.advance(2.0)  # 2000 samples into a FIFO that holds 85
    with pytest.raises(ImuFifoOverflowError) as info:
        rig.read()
    assert info.value.samples_lost_at_least >= 2000 * 0.9 - 85
    assert "overflow" in str(info.value)
    assert rig.imu.overflows == 1
    after = rig.read()
    assert after, "reads work again after the overflow"
    assert after[0].t - before[-1].t > 1.9  # the gap is visible in time
    assert rig.clock.monotonic() - after[-1].t < 2e-3  # fresh data, not the stale FIFO
    rig.clock.advance(0.01)
    assert_grid(after + rig.read(), 1 / 1000)


def test_an_overflow_whose_fifo_reset_the_bus_refuses_is_counted_and_reset_next_read() -> None:
    """The reset after an overflow fails on the bus: counted as a bus error (the health
    figures see a sick bus), never a second exception hiding the overflow, and the next
    read resets the FIFO before it trusts a frame, so no stale or misaligned sample comes out."""
    rig = make_rig(ImuConfig(sample_rate_hz=1000, dlpf_hz=94))
    before = rig.read()
    rig.clock.advance(2.0)
    rig.bus.inject_errors(1, errno=errno.EIO, kind="write_byte_data", register=reg.USER_CTRL)
    with pytest.raises(ImuFifoOverflowError):
        rig.read()
    assert rig.imu.bus_errors == 1
    assert rig.imu.overflows == 1
    after = rig.read()
    assert after, "reads work again once the bus takes the reset"
    assert after[0].t - before[-1].t > 1.9
    assert rig.clock.monotonic() - after[-1].t < 2e-3  # fresh data, not the stale FIFO


def test_overflow_is_caught_from_the_count_when_the_flag_is_missed() -> None:
    rig = make_rig()
    rig.bus.write_byte_data(ADDRESS, reg.INT_ENABLE, 0)  # no FIFO_OFLOW_INT any more
    rig.clock.advance(1.0)
    with pytest.raises(ImuFifoOverflowError, match="count 1024"):
        rig.read()
    assert rig.read()


def test_a_count_that_is_not_whole_frames_means_lost_alignment() -> None:
    rig = make_rig()
    rig.bus.write_byte_data(ADDRESS, reg.FIFO_R_W, 0x55)  # one stray byte in the FIFO
    rig.clock.advance(3 * PERIOD)
    with pytest.raises(ImuFifoOverflowError, match="whole number"):
        rig.read()
    assert rig.read()


# --- bus errors --------------------------------------------------------------------------------


def test_a_short_burst_of_errno_121_is_retried_transparently() -> None:
    rig = make_rig(motion=RampMotion(slope=0.1))
    first = rig.read()
    rig.bus.inject_errors(3, errno=errno.EREMOTEIO)
    rig.clock.advance(PERIOD)
    samples = rig.read(timeout=0.1)
    assert samples
    assert rig.imu.bus_errors == 3
    assert rig.imu.reinits == 0
    assert_grid(first + samples, PERIOD)  # nothing lost, nothing re-anchored


@pytest.mark.parametrize("code", [errno.EIO, errno.ETIMEDOUT])
def test_other_errnos_on_register_reads_are_also_transient(code: int) -> None:
    rig = make_rig()
    first = rig.read()
    rig.bus.inject_errors(2, errno=code, register=reg.INT_STATUS)
    rig.bus.inject_errors(1, errno=code, register=reg.FIFO_COUNTH)
    rig.clock.advance(PERIOD)
    assert_grid(first + rig.read(), PERIOD)
    assert rig.imu.bus_errors == 3


def test_a_nack_on_the_fifo_burst_is_harmless() -> None:
    rig = make_rig()
    first = rig.read()
    rig.clock.advance(5 * PERIOD)
    rig.bus.inject_errors(1, errno=errno.EREMOTEIO, register=reg.FIFO_R_W)
    assert_grid(first + rig.read(), PERIOD)


def test_an_eio_in_the_middle_of_a_fifo_burst_is_reported_as_a_gap() -> None:
    # An EIO may come after bytes were popped: the driver cannot know the alignment.
    rig = make_rig()
    rig.read()
    rig.clock.advance(5 * PERIOD)
    rig.bus.inject_errors(1, errno=errno.EIO, register=reg.FIFO_R_W)
    with pytest.raises(ImuFifoOverflowError, match="mid-transfer"):
        rig.read()
    assert rig.chip.fifo_level == 0  # the FIFO was reset
    assert rig.read()


def test_errors_past_half_the_budget_reinitialise_and_report_the_gap() -> None:
    config = ImuConfig(stale_timeout_s=0.1)
    rig = make_rig(config)
    last = rig.read()[-1]
    # FIFO_COUNTH reads keep failing, but the re-initialisation never reads it.
    rig.bus.inject_errors(1000, register=reg.FIFO_COUNTH)
    failing_from = rig.clock.monotonic()
    with pytest.raises(ImuFifoOverflowError, match="re-initialised") as info:
        rig.read(timeout=1.0)
    assert rig.imu.reinits == 1
    assert rig.chip.device_resets == 2
    assert rig.clock.monotonic() - failing_from >= config.stale_timeout_s / 2
    assert info.value.samples_lost_at_least >= 1
    rig.bus.clear_faults()
    resumed = rig.read()
    assert resumed[0].t - last.t > config.stale_timeout_s / 2  # the gap shows in the timestamps


def test_persistent_errors_try_one_reinit_then_disconnect_at_the_budget() -> None:
    config = ImuConfig(stale_timeout_s=0.1)
    rig = make_rig(config)
    rig.read()
    rig.bus.disconnect()
    failing_from = rig.clock.monotonic()
    with pytest.raises(ImuDisconnectedError, match="no good read") as info:
        while True:  # the monitor's loop: keep reading
            rig.read(timeout=0.025)
    elapsed = rig.clock.monotonic() - failing_from
    assert config.stale_timeout_s <= elapsed <= config.stale_timeout_s + 2 * PERIOD
    assert isinstance(info.value.__cause__, ImuBusError)
    assert info.value.__cause__.errno == errno.EREMOTEIO
    reinit_attempts = [op for op in rig.bus.log if op.register == reg.WHO_AM_I]
    assert len(reinit_attempts) == 2  # start(), then one re-init attempt
    assert not reinit_attempts[-1].ok
    assert "re-init failed" in str(info.value)
    assert not rig.imu.streaming


def test_after_a_disconnect_start_works_again_once_reconnected() -> None:
    rig = make_rig()
    rig.bus.disconnect()
    with pytest.raises(ImuDisconnectedError):
        while True:
            rig.read()
    rig.bus.reconnect()
    rig.imu.start()
    rig.clock.advance(PERIOD)
    assert rig.read()


def test_a_lost_imu_does_not_let_the_caller_spin_and_recovers_by_itself() -> None:
    config = ImuConfig(stale_timeout_s=0.1)
    rig = make_rig(config)
    rig.bus.disconnect()
    with pytest.raises(ImuDisconnectedError):
        while True:
            rig.read()
    rig.clock.at(rig.clock.monotonic() + 0.3, rig.bus.reconnect)
    errors = 0
    while True:
        t0 = rig.clock.monotonic()
        try:
            samples = rig.read(timeout=0.025)
        except ImuDisconnectedError:
            errors += 1
            assert rig.clock.monotonic() - t0 == pytest.approx(0.025)  # it waited
            continue
        if samples:
            break
    assert 8 <= errors <= 16
    assert rig.imu.streaming
    assert rig.imu.reinits == 1


def test_absent_chip_at_start_is_a_clear_disconnected_error() -> None:
    clock = HookClock()
    imu = Mpu6050(FakeI2cBus(), ImuConfig(), clock)
    with pytest.raises(ImuDisconnectedError, match=r"0x68 on I2C bus 1 does not answer.*Errno 121"):
        imu.start()
    assert clock.monotonic() >= ImuConfig().stale_timeout_s


def test_a_glitch_during_start_is_retried() -> None:
    clock = HookClock()
    chip = SimulatedMpu6050(ConstantMotion(), clock)
    bus = FakeI2cBus({ADDRESS: chip})
    bus.inject_errors(2, errno=errno.EIO)
    imu = Mpu6050(bus, ImuConfig(), clock)
    imu.start()
    assert imu.bus_errors == 2
    clock.advance(PERIOD)
    assert imu.read_batch(0.01)


# --- identity, reset deadline ---------------------------------------------------------------


def test_wrong_who_am_i_is_a_clear_identity_error() -> None:
    rig = make_rig(start=False, who_am_i=0x70)
    with pytest.raises(ImuIdentityError) as info:
        rig.imu.start()
    message = str(info.value)
    assert "expected 0x68, got 0x70" in message
    assert "AD0" in message and "wrong chip" in message.lower()
    assert rig.chip.device_resets == 0  # nothing written to a chip we do not know


def test_reset_that_never_clears_hits_the_deadline() -> None:
    rig = make_rig(start=False)
    rig.chip.reset_stuck = True
    t0 = rig.clock.monotonic()
    with pytest.raises(ImuTimeoutError, match="DEVICE_RESET did not clear within 100 ms"):
        rig.imu.start()
    waited = rig.clock.monotonic() - t0
    assert 0.1 <= waited <= 0.1 + 0.01


# --- garbage ----------------------------------------------------------------------------------


def test_garbage_on_the_bus_is_detected_or_decodes_within_range() -> None:
    config = ImuConfig(accel_range_g=4, gyro_range_dps=500)
    rig = make_rig(config)
    rng = random.Random(11)
    samples: list[ImuSample] = []
    detected = 0
    for _ in range(400):
        rig.clock.advance(rng.choice([PERIOD, 3 * PERIOD, 12 * PERIOD]))
        if rng.random() < 0.3:
            rig.bus.inject_garbage(1)
        try:
            samples += rig.read(timeout=0.01)
        except ImuFifoOverflowError:
            detected += 1
    assert detected > 0
    assert len(samples) > 400
    for s in samples:
        assert max(abs(s.ax), abs(s.ay), abs(s.az)) <= 4.0
        assert max(abs(s.gx), abs(s.gy), abs(s.gz)) <= 500.0 * 1.001
    assert all(b.t > a.t for a, b in itertools.pairwise(samples))


# --- close ----------------------------------------------------------------------------------------


def test_close_puts_the_chip_to_sleep_and_is_idempotent() -> None:
    rig = make_rig()
    rig.imu.close()
    assert rig.chip.sleeping
    rig.imu.close()
    with pytest.raises(ImuError, match="after close"):
        rig.read()
    with pytest.raises(ImuError, match="closed"):
        rig.imu.start()


def test_close_swallows_bus_errors_and_closes_an_owned_bus() -> None:
    clock = HookClock()
    bus = FakeI2cBus({ADDRESS: SimulatedMpu6050(ConstantMotion(), clock)})
    imu = Mpu6050(bus, ImuConfig(), clock, owns_bus=True)
    imu.start()
    bus.disconnect()
    imu.close()
    assert bus.closed


def test_read_before_start_is_an_error() -> None:
    rig = make_rig(start=False)
    with pytest.raises(ImuError, match="before start"):
        rig.read()


def test_config_changes_apply_to_a_fresh_driver() -> None:
    rig = make_rig()
    faster = Mpu6050(rig.bus, replace(rig.config, sample_rate_hz=500, dlpf_hz=184), rig.clock)
    faster.start()
    assert rig.chip.peek(reg.SMPLRT_DIV) == 1
    rig.clock.advance(0.01)
    assert_grid(list(faster.read_batch(0.01)), 1 / 500)
