"""The fake I2C bus and the register-level MPU-6050 simulation, checked against the datasheet."""

from __future__ import annotations

import errno
import math
import random
import struct
from typing import Any

import pytest
from smbus2 import i2c_msg

from core.clock import SimClock
from hal import mpu6050_registers as reg
from sim.i2c_bus import (
    BusTiming,
    FakeI2cBus,
    bit_slip,
    flip_one_byte,
    shift_bytes,
    stuck_line,
    xor_every_byte,
)
from sim.mpu6050_sim import SimulatedMpu6050, WarmingDie
from tests.mpu_support import ADDRESS, ConstantMotion, RampMotion


def make_chip(
    motion: ConstantMotion | RampMotion | None = None, **options: Any
) -> tuple[SimClock, FakeI2cBus, SimulatedMpu6050]:
    clock = SimClock()
    chip = SimulatedMpu6050(motion or ConstantMotion(), clock, **options)
    return clock, FakeI2cBus({ADDRESS: chip}), chip


def wake_streaming(
    bus: FakeI2cBus, *, divider: int = 0, dlpf: int = 1, fifo_en: int = 0x78
) -> None:
    """Minimal bring-up, straight from the register map: wake, rate, FIFO on."""
    bus.write_byte_data(ADDRESS, reg.SMPLRT_DIV, divider)
    bus.write_byte_data(ADDRESS, reg.CONFIG, dlpf)
    bus.write_byte_data(ADDRESS, reg.INT_ENABLE, reg.FIFO_OFLOW_EN)
    bus.write_byte_data(ADDRESS, reg.FIFO_EN, fifo_en)
    bus.write_byte_data(ADDRESS, reg.USER_CTRL, reg.USER_FIFO_EN)
    bus.write_byte_data(ADDRESS, reg.PWR_MGMT_1, reg.CLKSEL_PLL_XGYRO)


def fifo_count(bus: FakeI2cBus) -> int:
    high, low = bus.read_i2c_block_data(ADDRESS, reg.FIFO_COUNTH, 2)
    return (high << 8) | low


def read_fifo(bus: FakeI2cBus, n: int) -> bytes:
    write = i2c_msg.write(ADDRESS, [reg.FIFO_R_W])
    read = i2c_msg.read(ADDRESS, n)
    bus.i2c_rdwr(write, read)
    return bytes(read)


# --- the bus ----------------------------------------------------------------------


def test_absent_address_is_errno_121() -> None:
    bus = FakeI2cBus()
    with pytest.raises(OSError) as info:
        bus.read_byte_data(0x68, reg.WHO_AM_I)
    assert info.value.errno == errno.EREMOTEIO


def test_block_read_is_limited_to_32_bytes_like_smbus2() -> None:
    _, bus, _ = make_chip()
    with pytest.raises(ValueError, match="32"):
        bus.read_i2c_block_data(ADDRESS, reg.ACCEL_XOUT_H, 33)


def test_i2c_rdwr_fills_real_smbus2_read_buffers() -> None:
    _, bus, _ = make_chip()
    write = i2c_msg.write(ADDRESS, [reg.WHO_AM_I])
    read = i2c_msg.read(ADDRESS, 1)
    bus.i2c_rdwr(write, read)
    assert list(read) == [0x68]
    assert bus.counts["i2c_rdwr"] == 1


def test_injected_errors_fail_whole_transactions_then_stop() -> None:
    _, bus, _ = make_chip()
    bus.inject_errors(2, errno=errno.EIO)
    for _ in range(2):
        with pytest.raises(OSError) as info:
            bus.read_byte_data(ADDRESS, reg.WHO_AM_I)
        assert info.value.errno == errno.EIO
    assert bus.read_byte_data(ADDRESS, reg.WHO_AM_I) == 0x68
    assert [op.ok for op in bus.log] == [False, False, True]


def test_injected_errors_can_target_one_register() -> None:
    _, bus, _ = make_chip()
    bus.inject_errors(1, register=reg.FIFO_COUNTH)
    assert bus.read_byte_data(ADDRESS, reg.WHO_AM_I) == 0x68  # not targeted: passes
    with pytest.raises(OSError):
        bus.read_i2c_block_data(ADDRESS, reg.FIFO_COUNTH, 2)
    assert bus.pending_faults == 0


def test_disconnect_fails_everything_until_reconnect() -> None:
    _, bus, _ = make_chip()
    bus.disconnect()
    for call in (
        lambda: bus.read_byte_data(ADDRESS, reg.WHO_AM_I),
        lambda: bus.write_byte_data(ADDRESS, reg.PWR_MGMT_1, 0),
        lambda: bus.read_i2c_block_data(ADDRESS, reg.ACCEL_XOUT_H, 6),
        lambda: bus.i2c_rdwr(i2c_msg.write(ADDRESS, [0x75]), i2c_msg.read(ADDRESS, 1)),
    ):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EREMOTEIO
    bus.reconnect()
    assert bus.read_byte_data(ADDRESS, reg.WHO_AM_I) == 0x68


def test_garbage_corrupts_the_bytes_but_the_device_still_acts() -> None:
    clock, bus, chip = make_chip()
    wake_streaming(bus)
    clock.advance(0.010)  # 10 samples at 1 kHz
    assert fifo_count(bus) == 120
    bus.inject_garbage(1)
    clean = struct.pack(">6h", 0, 0, 16384, 0, 0, 0)  # standing still, 2 g and 250 dps ranges
    garbage = read_fifo(bus, 12)
    assert all(g != c for g, c in zip(garbage, clean, strict=True))
    assert read_fifo(bus, 12) == clean  # only one read was corrupted
    assert fifo_count(bus) == 96  # the corrupted read still popped its 12 bytes
    assert bus.pending_faults == 0
    assert chip.samples_taken == 10


# --- registers -----------------------------------------------------------------------


def test_power_on_defaults() -> None:
    _, bus, chip = make_chip()
    assert bus.read_byte_data(ADDRESS, reg.PWR_MGMT_1) == 0x40
    assert bus.read_byte_data(ADDRESS, reg.WHO_AM_I) == 0x68
    others = [r for r in range(0x0D, 0x75) if r not in (reg.PWR_MGMT_1, reg.FIFO_R_W)]
    assert all(chip.peek(r) == 0 for r in others)


def test_asleep_means_no_samples() -> None:
    clock, bus, chip = make_chip()
    bus.write_byte_data(ADDRESS, reg.CONFIG, 1)  # DLPF on: 1 kHz
    bus.write_byte_data(ADDRESS, reg.FIFO_EN, 0x78)
    bus.write_byte_data(ADDRESS, reg.USER_CTRL, reg.USER_FIFO_EN)
    clock.advance(1.0)
    assert fifo_count(bus) == 0
    assert chip.samples_taken == 0
    bus.write_byte_data(ADDRESS, reg.PWR_MGMT_1, reg.CLKSEL_PLL_XGYRO)
    clock.advance(0.005)
    assert fifo_count(bus) == 5 * 12
    bus.write_byte_data(ADDRESS, reg.PWR_MGMT_1, reg.SLEEP | reg.CLKSEL_PLL_XGYRO)
    clock.advance(0.005)
    assert fifo_count(bus) == 5 * 12


def test_sample_rate_follows_divider_and_dlpf() -> None:
    for dlpf, divider, seconds, expected in (
        (3, 4, 1.0, 200),  # 1 kHz / 5
        (3, 0, 0.1, 100),  # 1 kHz
        (0, 7, 0.1, 100),  # DLPF off: 8 kHz / 8
        (7, 0, 0.01, 80),  # DLPF_CFG 7 is also "off": 8 kHz
        (6, 99, 1.0, 10),  # 1 kHz / 100
    ):
        clock, bus, chip = make_chip()
        wake_streaming(bus, divider=divider, dlpf=dlpf, fifo_en=0)
        clock.advance(seconds)
        bus.read_byte_data(ADDRESS, reg.WHO_AM_I)  # any access catches the chip up
        assert chip.samples_taken == expected, (dlpf, divider)


def test_fifo_frame_follows_fifo_en_in_register_order() -> None:
    motion = ConstantMotion((0.5, -0.25, 1.0, 10.0, -20.0, 30.0))
    clock, bus, _ = make_chip(motion)
    everything = reg.TEMP_FIFO_EN | reg.SENSOR_FIFO_BITS
    wake_streaming(bus, dlpf=1, fifo_en=everything)
    bus.write_byte_data(ADDRESS, reg.ACCEL_CONFIG, 0)  # 2 g: 16384 LSB/g
    bus.write_byte_data(ADDRESS, reg.GYRO_CONFIG, 0)  # 250 dps: 131 LSB/dps
    clock.advance(0.001)
    assert fifo_count(bus) == 14
    ax, ay, az, temp, gx, gy, gz = struct.unpack(">7h", read_fifo(bus, 14))
    assert (ax, ay, az) == (8192, -4096, 16384)
    assert (gx, gy, gz) == (1310, -2620, 3930)
    assert temp == round((25.0 - 36.53) * 340)


def test_fifo_captures_only_with_user_ctrl_fifo_en() -> None:
    clock, bus, _ = make_chip()
    wake_streaming(bus, dlpf=1)
    bus.write_byte_data(ADDRESS, reg.USER_CTRL, 0)
    clock.advance(0.01)
    assert fifo_count(bus) == 0


def test_data_registers_are_readable_and_saturate() -> None:
    motion = ConstantMotion((3.0, -3.0, 1.0, 300.0, -300.0, 0.0))  # beyond 2 g and 250 dps
    clock, bus, _ = make_chip(motion)
    wake_streaming(bus, dlpf=1, fifo_en=0)
    clock.advance(0.001)
    ax, ay, az, _temp, gx, gy, gz = struct.unpack(
        ">7h", bytes(bus.read_i2c_block_data(ADDRESS, reg.ACCEL_XOUT_H, 14))
    )
    assert (ax, ay, az) == (32767, -32768, 16384)
    assert (gx, gy, gz) == (32767, -32768, 0)


def test_device_reset_restores_defaults_and_self_clears() -> None:
    clock, bus, chip = make_chip(reset_duration_s=0.01)
    wake_streaming(bus)
    bus.write_byte_data(ADDRESS, reg.PWR_MGMT_1, reg.DEVICE_RESET)
    assert bus.read_byte_data(ADDRESS, reg.PWR_MGMT_1) == 0xC0
    bus.write_byte_data(ADDRESS, reg.SMPLRT_DIV, 9)  # ignored: still resetting
    clock.advance(0.01)
    assert bus.read_byte_data(ADDRESS, reg.PWR_MGMT_1) == 0x40
    assert chip.peek(reg.SMPLRT_DIV) == 0
    assert chip.peek(reg.USER_CTRL) == 0
    assert fifo_count(bus) == 0


def test_reset_stuck_knob_keeps_device_reset_set() -> None:
    clock, bus, chip = make_chip()
    chip.reset_stuck = True
    bus.write_byte_data(ADDRESS, reg.PWR_MGMT_1, reg.DEVICE_RESET)
    clock.advance(10.0)
    assert bus.read_byte_data(ADDRESS, reg.PWR_MGMT_1) & reg.DEVICE_RESET


def test_fifo_overflow_overwrites_oldest_bytes_and_loses_alignment() -> None:
    clock, bus, chip = make_chip(RampMotion(slope=1.0))
    wake_streaming(bus, dlpf=1)  # 1 kHz (CONFIG 1), accel + gyro: 12-byte frames
    bus.write_byte_data(ADDRESS, reg.ACCEL_CONFIG, 0x18)  # 16 g, 2048 LSB/g
    clock.advance(0.2)  # 200 samples = 2400 bytes into a 1024-byte FIFO
    assert fifo_count(bus) == 1024
    assert bus.read_byte_data(ADDRESS, reg.INT_STATUS) & reg.FIFO_OFLOW_INT
    assert bus.read_byte_data(ADDRESS, reg.INT_STATUS) == 0  # cleared by the read
    # 2400 - 1024 = 1376 bytes were dropped: 1376 % 12 = 8, so the FIFO now starts
    # at byte 8 of a frame (GYRO_YOUT_H), not at ACCEL_XOUT_H.
    data = read_fifo(bus, 1024)
    newest_ax = struct.unpack(">h", data[-12:-10])[0]
    # The newest frame is intact at the end; DLPF_CFG 1 delays the motion by 2 ms.
    assert newest_ax == round((0.200 - 0.002) * 2048)
    oldest_word = struct.unpack(">h", data[:2])[0]
    assert oldest_word == 0  # GYRO_YOUT of a frame, where ACCEL_XOUT would have been > 0
    assert chip.fifo_overflows > 0


def test_overflow_flag_needs_its_interrupt_enable() -> None:
    clock, bus, _ = make_chip()
    wake_streaming(bus, dlpf=1)
    bus.write_byte_data(ADDRESS, reg.INT_ENABLE, 0)
    clock.advance(0.2)
    assert fifo_count(bus) == 1024
    assert bus.read_byte_data(ADDRESS, reg.INT_STATUS) == 0


def test_fifo_reset_only_with_fifo_en_clear() -> None:
    clock, bus, _ = make_chip()
    wake_streaming(bus, dlpf=1)
    clock.advance(0.005)
    bus.write_byte_data(ADDRESS, reg.USER_CTRL, reg.USER_FIFO_EN | reg.FIFO_RESET)
    assert fifo_count(bus) == 60  # ignored: FIFO_EN was 1
    bus.write_byte_data(ADDRESS, reg.USER_CTRL, reg.FIFO_RESET)
    assert fifo_count(bus) == 0
    assert bus.read_byte_data(ADDRESS, reg.USER_CTRL) == 0  # FIFO_RESET self-clears


def test_empty_fifo_read_returns_the_last_byte() -> None:
    clock, bus, _ = make_chip()
    wake_streaming(bus, dlpf=1)
    clock.advance(0.001)
    frame = read_fifo(bus, 12)
    assert read_fifo(bus, 3) == bytes([frame[-1]] * 3)


def test_a_fifo_write_trailing_data_ready_leaves_the_fifo_empty_until_it_lands() -> None:
    # fifo_lag_s: the data registers and DATA_RDY at the sample, the FIFO frame later.
    frame = reg.FIFO_FRAME_BYTES_WITH_TEMP
    clock, bus, chip = make_chip(RampMotion(slope=1.0), fifo_lag_s=0.0004, keep_samples=8)
    wake_streaming(bus, fifo_en=reg.TEMP_FIFO_EN | reg.SENSOR_FIFO_BITS)
    bus.write_byte_data(ADDRESS, reg.INT_ENABLE, reg.DATA_RDY_EN)
    clock.advance(0.0011)  # samples at 1.0 ms (landed at 1.4) ... not yet
    assert fifo_count(bus) == 0
    clock.advance(0.0004)  # 1.5 ms: the first frame has landed
    first = read_fifo(bus, frame)
    clock.advance(0.0006)  # 2.1 ms: the second sample is in the registers, not the FIFO
    assert bus.read_byte_data(ADDRESS, reg.INT_STATUS) & reg.DATA_RDY_INT
    registers = bytes(bus.read_i2c_block_data(ADDRESS, reg.ACCEL_XOUT_H, reg.DATA_BYTES))
    assert struct.unpack(">7h", registers) == chip.history[-1]
    empty = read_fifo(bus, frame)
    assert empty == bytes([first[-1]] * frame)  # an empty FIFO: its last byte, repeated
    assert chip.empty_fifo_reads == frame
    clock.advance(0.0004)  # 2.5 ms: it lands, in order, and pops as the registers said
    assert fifo_count(bus) == frame
    assert read_fifo(bus, frame) == registers
    clock.advance(0.0007)  # 3.2 ms: a write in flight when the FIFO is reset is dropped
    bus.write_byte_data(ADDRESS, reg.USER_CTRL, reg.FIFO_RESET)
    bus.write_byte_data(ADDRESS, reg.USER_CTRL, reg.USER_FIFO_EN)
    clock.advance(0.0005)
    assert fifo_count(bus) == 0
    with pytest.raises(ValueError, match="fifo_lag_s"):
        make_chip(fifo_lag_s=-0.001)


def test_fifo_count_low_byte_is_latched_by_the_high_byte() -> None:
    clock, bus, _ = make_chip()
    wake_streaming(bus, dlpf=1)
    clock.advance(0.002)
    assert bus.read_byte_data(ADDRESS, reg.FIFO_COUNTH) == 0
    clock.advance(0.003)
    assert bus.read_byte_data(ADDRESS, reg.FIFO_COUNTL) == 24  # still the latched count
    assert fifo_count(bus) == 60


def test_noise_is_deterministic_for_a_seed() -> None:
    def first_frames(seed: int) -> bytes:
        clock, bus, _ = make_chip(accel_noise_g=0.01, gyro_noise_dps=0.5, seed=seed)
        wake_streaming(bus, dlpf=1)
        clock.advance(0.01)
        return read_fifo(bus, 120)

    assert first_frames(7) == first_frames(7)
    assert first_frames(7) != first_frames(8)


def test_clock_skew_changes_the_real_rate() -> None:
    clock, bus, chip = make_chip(clock_skew=0.02)
    wake_streaming(bus, dlpf=1, fifo_en=0)
    clock.advance(1.0)
    bus.read_byte_data(ADDRESS, reg.WHO_AM_I)
    assert chip.samples_taken == 1020


def test_stalled_chip_answers_but_makes_no_samples() -> None:
    clock, bus, chip = make_chip()
    wake_streaming(bus, dlpf=1)
    chip.stalled = True
    clock.advance(0.05)
    assert fifo_count(bus) == 0
    chip.stalled = False
    clock.advance(0.002)
    assert fifo_count(bus) == 24  # no backlog from the stall


def test_long_unread_stretch_is_cheap_and_exact() -> None:
    # An hour at 1 kHz must not generate 3.6 million samples, yet look the same from outside.
    clock, bus, chip = make_chip(RampMotion(slope=0.001))
    wake_streaming(bus, dlpf=1)
    bus.write_byte_data(ADDRESS, reg.ACCEL_CONFIG, 0x18)
    clock.advance(3600.0)
    assert fifo_count(bus) == 1024
    assert chip.samples_computed < 200
    assert chip.samples_taken == 3_600_000
    tail = read_fifo(bus, 1024)[-12:]
    assert struct.unpack(">h", tail[:2])[0] == round((3600.0 - 0.002) * 0.001 * 2048)


def test_motion_time_starts_at_first_wake_and_survives_reset() -> None:
    clock, bus, _ = make_chip(RampMotion(slope=1.0), reset_duration_s=0.005)

    def wake_and_read_ax_after(seconds: float) -> int:
        wake_streaming(bus, dlpf=1, fifo_en=0)
        bus.write_byte_data(ADDRESS, reg.ACCEL_CONFIG, 0x18)  # 16 g: 2048 LSB/g
        clock.advance(seconds)
        raw = bytes(bus.read_i2c_block_data(ADDRESS, reg.ACCEL_XOUT_H, 2))
        value: int = struct.unpack(">h", raw)[0]
        return value

    clock.advance(5.0)  # asleep: motion time has not started
    # DLPF_CFG 1 delays by 2 ms: the sample 0.5 s after waking shows the motion at 0.498 s.
    assert wake_and_read_ax_after(0.5) == round(0.498 * 2048)
    bus.write_byte_data(ADDRESS, reg.PWR_MGMT_1, reg.DEVICE_RESET)
    clock.advance(0.005)
    # The wearer kept moving during the reset: motion time did not restart.
    assert wake_and_read_ax_after(0.1) == round((0.605 - 0.002) * 2048)


# --- corruption and timing on the bus ----------------------------------------------------

CLEAN = bytes(range(40, 68))


@pytest.mark.parametrize("seed", range(20))
def test_corruptions_damage_the_bytes_as_described(seed: int) -> None:
    rng = random.Random(seed)
    garbage = xor_every_byte(CLEAN, rng)
    assert all(g != c for g, c in zip(garbage, CLEAN, strict=True))
    one = flip_one_byte(CLEAN, rng)
    assert sum(o != c for o, c in zip(one, CLEAN, strict=True)) == 1
    lost = shift_bytes(2)(CLEAN, rng)
    at = next(i for i, (a, c) in enumerate(zip(lost, CLEAN, strict=True)) if a != c)
    assert lost == (CLEAN[:at] + CLEAN[at + 2 :] + CLEAN[-1:] * 2)  # the rest came early
    doubled = shift_bytes(-1)(CLEAN, rng)
    at = next(i for i, (d, c) in enumerate(zip(doubled, CLEAN, strict=True)) if d != c)
    assert doubled == CLEAN[:at] + CLEAN[at - 1 : -1]  # one byte seen twice, the rest late
    for level in (0x00, 0xFF):
        stuck = stuck_line(level)(CLEAN, rng)
        at = next(i for i, s in enumerate(stuck) if s == level)
        assert stuck == CLEAN[:at] + bytes((level,)) * (len(CLEAN) - at)
    for damaged in (garbage, one, lost, doubled, stuck):
        assert len(damaged) == len(CLEAN)


def test_a_bit_slip_delays_the_rest_of_the_bits_by_one() -> None:
    rng = random.Random(3)
    slipped = bit_slip(CLEAN, rng)
    bits = len(CLEAN) * 8
    clean = format(int.from_bytes(CLEAN, "big"), f"0{bits}b")
    got = format(int.from_bytes(slipped, "big"), f"0{bits}b")
    at = next(i for i, (g, c) in enumerate(zip(got, clean, strict=True)) if g != c)
    # From the first changed bit on, every bit is its predecessor's: one clock late.
    assert got[at:] == clean[at - 1 : -1]


def test_garbage_can_target_one_register() -> None:
    clock, bus, _ = make_chip()
    wake_streaming(bus)
    clock.advance(0.002)
    bus.inject_garbage(register=reg.FIFO_R_W, corrupt=stuck_line(0xFF))
    assert bus.read_byte_data(ADDRESS, reg.WHO_AM_I) == 0x68  # not targeted: intact
    assert fifo_count(bus) == 24
    assert bus.pending_faults == 1
    data = read_fifo(bus, 24)
    assert data.endswith(b"\xff") and data != bytes(24)
    assert bus.pending_faults == 0


def test_a_misread_pointer_answers_from_another_register_and_pops_nothing() -> None:
    clock, bus, _ = make_chip()
    wake_streaming(bus)
    clock.advance(0.001)
    bus.inject_misread(register=reg.FIFO_R_W, read_from=reg.WHO_AM_I)
    assert read_fifo(bus, 1) == b"\x68"
    assert fifo_count(bus) == 12  # the frame is still there
    assert bus.pending_faults == 0


def test_bus_timing_spends_wire_time_on_the_clock() -> None:
    clock = SimClock()
    chip = SimulatedMpu6050(ConstantMotion(), clock)
    bus = FakeI2cBus({ADDRESS: chip}, timing=BusTiming(clock, 100_000.0, overhead_s=1e-4))
    bus.read_i2c_block_data(ADDRESS, reg.INT_STATUS, 15)
    # Overhead, then 3 header bytes and 15 data bytes of 9 clocks, and 3 for START/Sr/STOP.
    assert clock.monotonic() == pytest.approx(1e-4 + (9 * 18 + 3) / 100_000.0)


# --- the temperature and the data registers ----------------------------------------------


def test_the_fifo_frame_with_temperature_equals_the_data_registers() -> None:
    clock, bus, chip = make_chip(accel_noise_g=0.01, gyro_noise_dps=0.5, keep_samples=8)
    wake_streaming(bus, fifo_en=reg.TEMP_FIFO_EN | reg.SENSOR_FIFO_BITS)
    clock.advance(0.003)
    registers = bytes(bus.read_i2c_block_data(ADDRESS, reg.ACCEL_XOUT_H, reg.DATA_BYTES))
    frames = read_fifo(bus, 3 * reg.FIFO_FRAME_BYTES_WITH_TEMP)
    assert frames[-reg.DATA_BYTES :] == registers  # the FIFO is loaded from the registers
    assert [struct.unpack(">7h", frames[i : i + 14]) for i in range(0, 42, 14)] == list(
        chip.history
    )[-3:]


def test_the_die_temperature_can_drift_and_be_noisy() -> None:
    die = WarmingDie(start_c=20.0, settled_c=34.0, time_constant_s=100.0)
    assert die(0.0) == 20.0 and die(100.0) == pytest.approx(34.0 - 14.0 / math.e)
    clock, bus, _ = make_chip(temperature_c=die, temperature_noise_c=0.05, keep_samples=4)
    wake_streaming(bus, fifo_en=0)

    def temp_c() -> float:
        raw = bytes(bus.read_i2c_block_data(ADDRESS, reg.TEMP_OUT_H, 2))
        value: int = struct.unpack(">h", raw)[0]
        return value / reg.TEMP_LSB_PER_C + reg.TEMP_OFFSET_C

    clock.advance(0.001)
    assert temp_c() == pytest.approx(20.0, abs=0.3)
    clock.advance(100.0)
    assert temp_c() == pytest.approx(die(100.0), abs=0.3)
    readings = set()
    for _ in range(20):
        clock.advance(0.001)
        readings.add(temp_c())
    assert len(readings) > 5  # noise: not the same LSB every sample
