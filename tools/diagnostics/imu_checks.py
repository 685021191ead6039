"""IMU checks: the I2C bus, the chip's identity, its sample rate and its FIFO.

Why the identity is probed with a bare register read before the driver
starts: the driver retries bus errors for its stale-data budget and resets
the chip, which is right for the monitor but blurs the diagnosis. One
WHO_AM_I read, repeated a few times, separates "nothing answers at 0x68"
(wiring, power, address: AD0 strapped high moves the chip to 0x69) from
"something answers, but not an MPU-6050" (a wrong part, or another chip at the
address: AD0 changes the address, never WHO_AM_I) from "answers, but not every
time" (a flaky cable) — three different fixes.

The rate and FIFO are measured through the real driver, streaming for a
couple of seconds, because that is what the monitor will see: the rate is
counted against the doctor's clock (the host's, or a SimClock in tests),
and an overflow is the driver's :class:`~hal.errors.ImuFifoOverflowError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.clock import Clock
from hal import mpu6050_registers as reg
from hal.config import ImuConfig
from hal.errors import ImuError, ImuFifoOverflowError
from hal.imu_factory import open_imu
from hal.interfaces import Imu
from hal.mpu6050 import I2cBus
from sim.backends import SimulatedImuRig
from tools.diagnostics.result import CheckResult, blocked, failed, passed, skipped

BUS, IDENTITY, RATE, FIFO = "i2c-bus", "imu-id", "sample-rate", "fifo"

IDENTITY_READS = 5
"""WHO_AM_I reads; all must succeed: a bus that fails one in five with the treadmill off
will fail far more often with the motor running."""
RATE_TOLERANCE = 0.05
"""Allowed relative error of the measured rate. Far above the chip's clock error (a few
per cent at worst), far below the nearest wrong setting (at 200 Hz the neighbouring
dividers give 167 and 250 Hz, -17 % and +25 %)."""
READ_TIMEOUT_S = 0.025
"""How long one read waits for samples: the monitor's own figure (sample_timeout_s / 4)."""

KNOWN_IDS = {0x70: "an MPU-6500", 0x71: "an MPU-9250", 0x73: "an MPU-9255", 0x98: "a clone"}
"""WHO_AM_I values of parts that get sold as, or confused with, the MPU-6050."""

_WIRING_FIX = (
    "check VCC (3.3 V), GND, SDA and SCL, and imu.address (0x68, or 0x69 with AD0 high); "
    "`sudo i2cdetect -y {bus}` must show {addr:02x}"
)


def bus_name(config: ImuConfig, simulated: bool) -> str:
    return "the simulated I2C bus" if simulated else f"/dev/i2c-{config.i2c_bus}"


def _errno_text(exc: OSError) -> str:
    return f"[Errno {exc.errno}] {exc.strerror or exc}"


def check_bus_opens(
    config: ImuConfig, open_bus: Callable[[int], I2cBus]
) -> tuple[CheckResult, I2cBus | None]:
    """Open ``/dev/i2c-N``; the open bus is returned for the identity probe."""
    device = f"/dev/i2c-{config.i2c_bus}"
    try:
        bus = open_bus(config.i2c_bus)
    except FileNotFoundError:
        return (
            failed(
                BUS,
                f"{device} does not exist",
                "enable I2C (sudo raspi-config nonint do_i2c 0, or dtparam=i2c_arm=on in "
                "/boot/firmware/config.txt) and reboot; check imu.i2c_bus",
            ),
            None,
        )
    except PermissionError:
        return (
            failed(
                BUS,
                f"{device}: permission denied",
                "run as the service user (sudo -u retroguard ...), which is in the 'i2c' group",
            ),
            None,
        )
    except OSError as exc:
        return failed(
            BUS, f"cannot open {device}: {_errno_text(exc)}", "check the I2C driver"
        ), None
    return passed(BUS, f"{device} opens"), bus


def check_identity(bus: I2cBus, config: ImuConfig, where: str) -> CheckResult:
    """Read WHO_AM_I :data:`IDENTITY_READS` times; every read must answer 0x68."""
    address = config.address
    values: list[int] = []
    errors: list[OSError] = []
    for _ in range(IDENTITY_READS):
        try:
            values.append(bus.read_byte_data(address, reg.WHO_AM_I))
        except OSError as exc:
            errors.append(exc)
    fix = _WIRING_FIX.format(bus=config.i2c_bus, addr=address)
    if not values:
        return failed(
            IDENTITY, f"no answer at 0x{address:02x} on {where} ({_errno_text(errors[0])})", fix
        )
    if errors:
        return failed(
            IDENTITY,
            f"{len(errors)} of {IDENTITY_READS} WHO_AM_I reads at 0x{address:02x} failed "
            f"({_errno_text(errors[0])}): the bus is unreliable",
            "check the belt cable, connectors and pull-ups (docs/deployment.md, Troubleshooting)",
        )
    wrong = [v for v in values if v != reg.WHO_AM_I_VALUE]
    if wrong:
        what = KNOWN_IDS.get(wrong[0], "not an MPU-6050")
        return failed(
            IDENTITY,
            f"WHO_AM_I at 0x{address:02x} reads 0x{wrong[0]:02x}, expected "
            f"0x{reg.WHO_AM_I_VALUE:02x} ({what})",
            _wrong_chip_fix(address),
        )
    return passed(
        IDENTITY, f"MPU-6050 at 0x{address:02x} on {where} (WHO_AM_I 0x{reg.WHO_AM_I_VALUE:02x})"
    )


def _wrong_chip_fix(address: int) -> str:
    """What to do when the chip at ``address`` is no MPU-6050: fit one, or, when one is
    fitted, it is at the other address, with another chip at this one (AD0 moves an MPU-6050
    between 0x68 and 0x69; its WHO_AM_I reads 0x68 at either: the driver's words too,
    :class:`hal.errors.ImuIdentityError`)."""
    other, ad0 = (0x69, "high") if address == 0x68 else (0x68, "low")
    # the usual other chip: clock modules answer at 0x68 only
    usual = " (a DS3231 or DS1307 clock module sits at 0x68)" if address == 0x68 else ""
    return (
        f"fit an MPU-6050; if one is fitted, it is at 0x{other:02x} (AD0 {ad0}) and another "
        f"chip answers at 0x{address:02x}{usual}: set imu.address = 0x{other:02x} (AD0 "
        f"changes the address, never WHO_AM_I)"
    )


def check_start(imu: Imu) -> CheckResult | None:
    """Start the driver (reset, configure, FIFO on); a failure result, or None when it runs."""
    try:
        imu.start()
    except ImuError as exc:
        return failed(
            IDENTITY,
            f"answers WHO_AM_I but does not start: {exc}",
            "power-cycle the sensor; if that does not help, replace it",
        )
    return None


@dataclass(slots=True)
class StreamStats:
    """What streaming for a while gave.

    The rate is counted only over stretches without a gap: the samples of
    the first batch after a (re)start are not counted (they were made before
    the stretch began), so an overflow spoils the FIFO check, not the rate.
    """

    seconds: float
    counted: int = 0
    counted_s: float = 0.0
    samples: int = 0
    overflows: list[ImuFifoOverflowError] = field(default_factory=list)
    errors: list[ImuError] = field(default_factory=list)

    @property
    def rate_hz(self) -> float | None:
        return self.counted / self.counted_s if self.counted_s > 0 else None


def measure_stream(imu: Imu, clock: Clock, seconds: float) -> StreamStats:
    """Read ``imu`` for ``seconds`` of ``clock`` time the way the monitor does."""
    stats = StreamStats(seconds)
    end = clock.monotonic() + seconds
    stretch_start: float | None = None
    stretch_end = 0.0
    stretch_samples = 0

    def close_stretch() -> None:
        nonlocal stretch_start
        if stretch_start is not None:
            stats.counted += stretch_samples
            stats.counted_s += stretch_end - stretch_start
        stretch_start = None

    while (now := clock.monotonic()) < end:
        try:
            batch = imu.read_batch(min(READ_TIMEOUT_S, end - now))
        except ImuFifoOverflowError as exc:
            stats.overflows.append(exc)
            close_stretch()
            continue
        except ImuError as exc:
            stats.errors.append(exc)
            close_stretch()
            continue
        if not batch:
            continue
        stats.samples += len(batch)
        read_at = clock.monotonic()
        if stretch_start is None:
            stretch_start, stretch_end, stretch_samples = read_at, read_at, 0
        else:
            stretch_end = read_at
            stretch_samples += len(batch)
    close_stretch()
    return stats


def judge_rate(stats: StreamStats, configured_hz: float) -> CheckResult:
    if stats.errors:
        return failed(
            RATE,
            f"{len(stats.errors)} read error(s) while streaming: {stats.errors[0]}",
            "check the belt cable, connectors and pull-ups; keep the I2C cable away from the "
            "motor leads",
        )
    rate = stats.rate_hz
    if rate is None:
        return failed(
            RATE,
            f"no samples in {stats.seconds:g} s: the chip answers but does not sample",
            "power-cycle the sensor; if it stays silent, replace it",
        )
    deviation = rate / configured_hz - 1.0
    percent = round(deviation * 100, 1) + 0.0  # + 0.0 turns a -0.0 into 0.0
    figures = (
        f"{rate:.1f} Hz over {stats.counted_s:.1f} s (configured {configured_hz:g} Hz, "
        f"{percent:+.1f} %, tolerance ±{RATE_TOLERANCE * 100:g} %)"
    )
    if abs(deviation) > RATE_TOLERANCE:
        return failed(
            RATE,
            figures,
            "a chip clock this far off is faulty: replace the sensor; if the rate is low and "
            "the CPU is busy, the host is not keeping up",
        )
    return passed(RATE, figures)


def judge_fifo(stats: StreamStats, configured_hz: float) -> CheckResult:
    if not stats.samples and not stats.overflows:
        return skipped(FIFO, f"not judged: no samples in {stats.seconds:g} s (see {RATE})")
    if stats.overflows:
        lost = sum(max(1, o.samples_lost_at_least) for o in stats.overflows)
        # The driver's frames carry the temperature for its plausibility check: 14 bytes.
        capacity_ms = reg.FIFO_SIZE // reg.FIFO_FRAME_BYTES_WITH_TEMP / configured_hz * 1000
        return failed(
            FIFO,
            f"{len(stats.overflows)} overflow(s) in {stats.seconds:g} s, at least {lost} "
            f"samples lost",
            f"the host did not read for over {capacity_ms:.0f} ms (the FIFO's depth at "
            f"{configured_hz:g} Hz): stop other busy programs, and run the doctor with the "
            "service stopped",
        )
    return passed(FIFO, f"no overflow in {stats.seconds:g} s ({stats.samples} samples read)")


def run_imu_checks(
    config: ImuConfig,
    clock: Clock,
    *,
    sim_rig: SimulatedImuRig | None,
    open_bus: Callable[[int], I2cBus],
    seconds: float,
) -> list[CheckResult]:
    """Bus, identity, rate and FIFO, in that order; later ones are skipped when one fails.

    ``sim_rig`` is the simulated IMU (simulated backend); otherwise the bus
    is opened with ``open_bus`` and the driver with :func:`hal.imu_factory.open_imu`.
    """
    results: list[CheckResult] = []
    where = bus_name(config, simulated=sim_rig is not None)
    probe_bus: I2cBus | None
    if sim_rig is not None:
        probe_bus = sim_rig.bus
        if sim_rig.bus.closed:
            results.append(failed(BUS, "the simulated I2C bus is closed", "build a new rig"))
        else:
            results.append(passed(BUS, f"{where} is open"))
    else:
        bus_result, probe_bus = check_bus_opens(config, open_bus)
        results.append(bus_result)
    if probe_bus is None or results[-1].failed:
        return [*results, blocked(IDENTITY, BUS), blocked(RATE, BUS), blocked(FIFO, BUS)]

    identity = check_identity(probe_bus, config, where)
    if sim_rig is None:
        probe_bus.close()  # the driver opens its own: one SMBus object per user of the bus
    if identity.failed:
        return [*results, identity, blocked(RATE, IDENTITY), blocked(FIFO, IDENTITY)]

    imu: Imu | None = None
    try:
        imu = sim_rig.imu if sim_rig is not None else open_imu(config, clock)
        start_failure = check_start(imu)
        if start_failure is not None:
            return [*results, start_failure, blocked(RATE, IDENTITY), blocked(FIFO, IDENTITY)]
        results.append(identity)
        stats = measure_stream(imu, clock, seconds)
    except (ImuError, ValueError) as exc:
        return [
            *results,
            failed(IDENTITY, f"the driver cannot open the IMU: {exc}", "check the [imu] section"),
            blocked(RATE, IDENTITY),
            blocked(FIFO, IDENTITY),
        ]
    finally:
        if imu is not None:
            imu.close()
    rate = imu.sample_rate_hz
    return [*results, judge_rate(stats, rate), judge_fifo(stats, rate)]
