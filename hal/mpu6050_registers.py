"""MPU-6000/MPU-6050 register addresses, bit masks and scale tables.

Names and values follow InvenSense's *MPU-6000 and MPU-6050 Register Map and
Descriptions*, RM-MPU-6000A-00 rev 4.2, so each constant can be checked
against the datasheet by name. The driver (:mod:`hal.mpu6050`) and the
register-level simulation (:mod:`sim.mpu6050_sim`) both import this
module. That way they cannot disagree about an address, but a wrong value
here would be wrong in both of them, and the tests would not notice. That is
why every value is copied as printed in the datasheet.
"""

from __future__ import annotations

from typing import Final

# --- Register addresses (datasheet section 3) -------------------------------
SMPLRT_DIV: Final = 0x19
"""Sample rate = gyro output rate / (1 + SMPLRT_DIV)."""
CONFIG: Final = 0x1A
"""EXT_SYNC_SET[5:3], DLPF_CFG[2:0]."""
GYRO_CONFIG: Final = 0x1B
"""Self-test bits [7:5], FS_SEL[4:3]."""
ACCEL_CONFIG: Final = 0x1C
"""Self-test bits [7:5], AFS_SEL[4:3]."""
FIFO_EN: Final = 0x23
INT_PIN_CFG: Final = 0x37
INT_ENABLE: Final = 0x38
INT_STATUS: Final = 0x3A
"""Interrupt status; every bit clears when the register is read."""
ACCEL_XOUT_H: Final = 0x3B
"""First of 14 data registers: accel XYZ, temperature, gyro XYZ, big-endian int16."""
TEMP_OUT_H: Final = 0x41
GYRO_XOUT_H: Final = 0x43
SIGNAL_PATH_RESET: Final = 0x68
USER_CTRL: Final = 0x6A
PWR_MGMT_1: Final = 0x6B
PWR_MGMT_2: Final = 0x6C
FIFO_COUNTH: Final = 0x72
"""Reading FIFO_COUNTH latches both count bytes; always read H then L."""
FIFO_COUNTL: Final = 0x73
FIFO_R_W: Final = 0x74
"""Burst reads from here keep popping the FIFO (the address does not advance)."""
WHO_AM_I: Final = 0x75

WHO_AM_I_VALUE: Final = 0x68
"""Bits [6:1] of the 7-bit address. The AD0 pin does not change this value."""

# --- FIFO_EN (0x23) bits -----------------------------------------------------
TEMP_FIFO_EN: Final = 1 << 7
XG_FIFO_EN: Final = 1 << 6
YG_FIFO_EN: Final = 1 << 5
ZG_FIFO_EN: Final = 1 << 4
ACCEL_FIFO_EN: Final = 1 << 3

# --- INT_PIN_CFG (0x37) bits ----------------------------------------------------
INT_LEVEL: Final = 1 << 7
"""1: the INT pin is active low; 0: active high."""
INT_OPEN: Final = 1 << 6
"""1: open drain; 0: push-pull."""
LATCH_INT_EN: Final = 1 << 5
"""1: the INT pin is held until the interrupt is cleared; 0: it emits a 50 us pulse."""
INT_RD_CLEAR: Final = 1 << 4
"""1: interrupt status bits are cleared on any read operation; 0: only by reading INT_STATUS."""
INT_PULSE_S: Final = 50e-6
"""Width of the INT pulse when LATCH_INT_EN is 0."""

# --- INT_ENABLE (0x38) / INT_STATUS (0x3A) bits -------------------------------
FIFO_OFLOW_EN: Final = 1 << 4
DATA_RDY_EN: Final = 1 << 0
FIFO_OFLOW_INT: Final = 1 << 4
DATA_RDY_INT: Final = 1 << 0

# --- USER_CTRL (0x6A) bits ---------------------------------------------------
USER_FIFO_EN: Final = 1 << 6
"""USER_CTRL.FIFO_EN: the FIFO captures samples only while this bit is set."""
FIFO_RESET: Final = 1 << 2
"""Self-clearing. The datasheet says it resets the FIFO when set while FIFO_EN is 0."""
SIG_COND_RESET: Final = 1 << 0

# --- SIGNAL_PATH_RESET (0x68) bits ---------------------------------------------
GYRO_RESET: Final = 1 << 2
ACCEL_RESET: Final = 1 << 1
TEMP_RESET: Final = 1 << 0

# --- PWR_MGMT_1 (0x6B) bits ----------------------------------------------------
DEVICE_RESET: Final = 1 << 7
"""Self-clearing: all registers return to their defaults, then the bit reads 0."""
SLEEP: Final = 1 << 6
CYCLE: Final = 1 << 5
TEMP_DIS: Final = 1 << 3
CLKSEL_MASK: Final = 0x07
CLKSEL_INTERNAL_8MHZ: Final = 0
CLKSEL_PLL_XGYRO: Final = 1
"""The datasheet recommends a gyro PLL clock; it is more stable than the internal oscillator."""
CLKSEL_STOP: Final = 7

PWR_MGMT_1_RESET_VALUE: Final = SLEEP
"""Power-on value 0x40: the chip starts asleep and gives no samples until it is woken."""

# --- Configuration fields --------------------------------------------------------
FS_SEL_SHIFT: Final = 3
FS_SEL_MASK: Final = 0x18
DLPF_CFG_MASK: Final = 0x07

DLPF_CFG_BY_HZ: Final[dict[int, int]] = {260: 0, 184: 1, 94: 2, 44: 3, 21: 4, 10: 5, 5: 6}
"""Accelerometer bandwidth (Hz) -> DLPF_CFG. The gyro bandwidth is close to it (256/188/98/...)."""

ACCEL_FS_SEL_BY_G: Final[dict[int, int]] = {2: 0, 4: 1, 8: 2, 16: 3}
GYRO_FS_SEL_BY_DPS: Final[dict[int, int]] = {250: 0, 500: 1, 1000: 2, 2000: 3}

ACCEL_LSB_PER_G: Final[tuple[float, ...]] = (16384.0, 8192.0, 4096.0, 2048.0)
"""Sensitivity indexed by AFS_SEL."""
GYRO_LSB_PER_DPS: Final[tuple[float, ...]] = (131.0, 65.5, 32.8, 16.4)
"""Sensitivity indexed by FS_SEL (the datasheet's rounded values, which drivers use)."""

TEMP_LSB_PER_C: Final = 340.0
TEMP_OFFSET_C: Final = 36.53
"""Temperature in degrees C = TEMP_OUT / 340 + 36.53."""
TEMP_MIN_C: Final = -40.0
TEMP_MAX_C: Final = 85.0
"""The temperature sensor's range (product specification, section 6.4): the die cannot read
outside it."""

# --- FIFO geometry -------------------------------------------------------------
FIFO_SIZE: Final = 1024
FIFO_FRAME_BYTES: Final = 12
"""Accel XYZ then gyro XYZ (register order), big-endian int16, without the temperature."""
SENSOR_FIFO_BITS: Final = ACCEL_FIFO_EN | XG_FIFO_EN | YG_FIFO_EN | ZG_FIFO_EN
FIFO_FRAME_BYTES_WITH_TEMP: Final = 14
"""Accel XYZ, TEMP, gyro XYZ: with TEMP_FIFO_EN a frame has exactly the layout of the
14 data registers ACCEL_XOUT_H..GYRO_ZOUT_L."""
DATA_BYTES: Final = 14
"""ACCEL_XOUT_H..GYRO_ZOUT_L: one burst read gives the accel, temperature and gyro of one
sampling instant (the chip copies them to the user-facing registers while the bus is idle)."""
SMBUS_BLOCK_MAX: Final = 32
"""read_i2c_block_data returns at most 32 bytes. Longer reads need i2c_rdwr."""


def gyro_output_rate_hz(dlpf_cfg: int) -> float:
    """Base rate that SMPLRT_DIV divides: 8 kHz with the DLPF off (0 or 7), 1 kHz with it on."""
    return 8000.0 if dlpf_cfg in (0, 7) else 1000.0
