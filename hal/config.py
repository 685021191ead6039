"""Typed hardware settings.

These live in the HAL (not in the firmware's config module) so that the HAL
never imports the firmware; the firmware's TOML loader fills them in.
Defaults are the recommended wiring in ``wiring/README.md`` — a test keeps the
two in agreement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from hal.interfaces import RelayDrive

ImuBackend = Literal["mpu6050", "simulated"]
GpioBackend = Literal["gpiozero", "simulated"]
PinFactoryName = Literal["lgpio", "rpigpio", "mock", "native", "pigpio"]
ImuPacing = Literal["auto", "interrupt", "poll"]


GYRO_BIAS_MAX_DPS: Final = 40.0
"""The largest gyro bias a config may subtract, per axis: twice the MPU-6050's zero-rate output
tolerance (datasheet: ±20 °/s at 25 °C). A chip at rest that reads more is broken or was
moving while calibrated; a bias beyond it would make a still walker look like one spinning."""


I2C_BUS_MAX: Final = 2**20 - 1
"""The largest I2C bus number: a bus is the character device /dev/i2c-N, N its minor number,
which Linux's i2c-dev keeps below 2**20 (``I2C_MINORS = MINORMASK + 1``). A negative or larger
number names no device; the config loader refuses it at once rather than leave it to be found
only when the real sensor is opened."""


@dataclass(frozen=True, slots=True)
class ImuConfig:
    """MPU-6050 settings; the same fields drive the simulated chip."""

    backend: ImuBackend = "simulated"
    i2c_bus: int = 1
    """The I2C bus the chip is on: N of /dev/i2c-N (1 is the header's SDA/SCL on a Raspberry
    Pi), from 0 to 1048575 (I2C_BUS_MAX)."""
    address: int = 0x68
    sample_rate_hz: float = 200.0
    """Output data rate; must be 1000 / (1 + divider) (or 8000/... with DLPF off)."""
    dlpf_hz: int = 44
    """Digital low-pass bandwidth (260, 184, 94, 44, 21, 10 or 5 Hz)."""
    accel_range_g: int = 8
    """Accelerometer full scale: 2, 4, 8 or 16 g."""
    gyro_range_dps: int = 1000
    """Gyro full scale: 250, 500, 1000 or 2000 deg/s."""
    stale_timeout_s: float = 0.1
    """Budget for transient bus errors before the IMU counts as lost."""
    mounting: str = "unknown"
    """Which body direction each sensor axis points, e.g. "x=right y=down z=forward", or
    "unknown" to learn gravity online (``retroguard calibrate`` measures it)."""
    gyro_bias_dps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Subtracted from every gyro reading (``retroguard calibrate`` measures it); each axis at
    most 40 deg/s (GYRO_BIAS_MAX_DPS: a chip at rest that reads more is broken)."""
    pacing: ImuPacing = "auto"
    """What wakes the loop to read the FIFO (wiring/README.md, section 8). "auto" and
    "interrupt": the chip's data-ready pulse on gpio.pins.imu_int, one per sample; "poll": a
    timer, about once a sample period (about twice the I2C traffic and more CPU); use it when
    INT is not wired. The loop waits for a pulse at most a quarter of gpio.heartbeat_hold_s,
    then reads anyway, so the relay never depends on the line. A line that gives no pulse while
    samples arrive (a cut wire, the wrong pin) is given up for polling within 0.25 s and
    reported by the self-test: a note with "auto", a failed check with "interrupt"."""
    samples_per_wake: int | None = None
    """With interrupt pacing, the loop wakes every this many samples (one FIFO read each),
    like a FIFO-watermark interrupt. Unset (the default): 2 where two sample periods fit in a
    quarter of gpio.heartbeat_hold_s (200 Hz with the 50 ms hold), else 1. Each wake costs the
    loop the same whatever it reads, so 2 roughly halves that cost; the price is that a sample
    waits for the next one before it is decided: up to (this - 1) sample periods, 5 ms at
    200 Hz, against a detector that trips a median 300 ms or more before the impact
    (docs/safety.md, "Batched wakes"). Deciding and the relay stay in one iteration. The
    heartbeat edge comes once per wake: this many sample periods must stay within a quarter of
    gpio.heartbeat_hold_s (so at most 2 at 200 Hz with a 50 ms hold). 1 wakes at every
    sample."""
    uncounted_reads: bool = False
    """With interrupt pacing, read after a single data-ready pulse without asking the FIFO's
    count: the status and data registers, then one FIFO frame that must equal them (one I2C
    transaction a sample less: 410 a second at 200 Hz instead of 600). Off by default: it
    relies on two things the MPU-6050 register map states but no one here has measured on a
    chip — that the FIFO holds the frame when DATA_RDY rises, and that reading an empty FIFO
    returns its last byte repeated (hal/mpu6050.py; the simulated chip's ``fifo_lag_s``
    shows what happens if not: the driver faults, and a wearer standing still can hit that
    often). Turn it on only after the real chip has run with it and the driver's
    ``empty_reads`` stayed 0."""


@dataclass(frozen=True, slots=True)
class PinConfig:
    """BCM pin numbers (physical header pins in the comments)."""

    relay: int = 17  # physical 11
    """Static drive: the coil level. Heartbeat drive: the edges that retrigger the hold timer."""
    relay_enable: int = 23  # physical 16
    """Heartbeat drive only: the hold timer's clear input, so software drops the relay at once."""
    relay_sense: int = 24  # physical 18
    """The relay's mirror contact through an optocoupler: high = contact closed (or wire cut)."""
    buzzer: int = 18  # physical 12
    reset_button: int = 27  # physical 13
    help_button: int = 25  # physical 22
    """The optional help button (``gpio.help_button_wired``): any press asks for help."""
    status_led: int = 22  # physical 15
    imu_int: int = 4  # physical 7
    i2c_sda: int = 2  # physical 3
    i2c_scl: int = 3  # physical 5


@dataclass(frozen=True, slots=True)
class GpioConfig:
    backend: GpioBackend = "simulated"
    pin_factory: PinFactoryName = "mock"
    pins: PinConfig = field(default_factory=PinConfig)
    relay_drive: RelayDrive = "heartbeat"
    relay_active_high: bool = True
    buzzer_active_high: bool = True
    button_pull_up: bool = True
    button_bounce_s: float = 0.02
    heartbeat_hold_s: float = 0.05
    """Hold time of the external retriggerable driver (the simulation models it)."""
    bench_rig: bool = False
    """true only on a rig with no walker on it: allows relay_drive = "static", where a hung loop
    keeps the relay held (every start, doctor and the dashboard then say so)."""
    help_button_wired: bool = False
    """Whether a dedicated help button is wired to gpio.pins.help_button (wiring/README.md,
    section 6). Without it, three quick presses of the reset button ask for help (docs/safety.md,
    "Button press patterns")."""
    relay_sense_wired: bool = True
    """Whether the relay's contact is read back on gpio.pins.relay_sense (wiring/README.md,
    section 6). Without it the monitor still runs, but cannot see a welded contact or a
    latch that let go on its own, and `retroguard doctor` says so."""
