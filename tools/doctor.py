"""``retroguard doctor``: check the whole rig, one PASS/FAIL line per check, with what to do.

Run it after wiring, after installing, and whenever the monitor will not
arm. It examines exactly what the monitor will use, through the same HAL
classes and the same config file: the I2C bus, the MPU-6050 (identity, a
couple of seconds of streaming for the sample rate and the FIFO), every
output pin, the reset button, the heartbeat drive, the MQTT broker, the
event store, the clocks, the spoken prompts (a test prompt rendered and
played), and last the IMU's data-ready line (INT on ``gpio.pins.imu_int``
pulsing for every sample, when ``imu.pacing`` uses it). Exit status 0 when
nothing failed (skipped checks are fine), 1 when something did, 2 when the
config does not load.

Run it with the service stopped and as the service user
(``sudo systemctl stop retroguard``, then ``sudo -u retroguard env
LG_WD=/var/lib/retroguard retroguard doctor -c /etc/retroguard/config.toml``:
lgpio creates its FIFO in ``$LG_WD``, else in the current directory, where
the service user usually may not write, and its import then fails):
the service holds the pins and drives the sensor, and only the service
user's own permissions (groups ``gpio``, ``i2c`` and ``audio``, the state directory)
are the ones that matter. The doctor never closes the treadmill's relay of a
rig built right: the heartbeat wiring needs a person on the reset button for
that (no edge is sent while it reads pressed, and a relay that closes on the
edges anyway has its latch bypassed: the heartbeat line fails), and with
static wiring the drive is not exercised at all.

Every check takes the clock and the hardware as arguments
(:class:`Bench`), so the tests run it on a ``SimClock`` against the
simulated bus, chip and pins, with faults injected, and compare whole lines.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.clock import Clock, RealClock
from firmware.config import Config
from hal.i2c_probe import open_i2c_bus
from hal.mpu6050 import I2cBus
from sim import scenarios
from sim.backends import SimulatedImuRig, build_simulated_imu
from tools.diagnostics import gpio_checks, imu_checks, system_checks
from tools.diagnostics.audio_checks import AudioBench, check_audio
from tools.diagnostics.audio_pins import check_audio_pins
from tools.diagnostics.boot_config import BOOT_CONFIG
from tools.diagnostics.int_checks import INT_SECONDS, check_int_line
from tools.diagnostics.result import CheckResult

DEFAULT_CONFIG = Path("/etc/retroguard/config.toml")

STREAM_SECONDS = 2.0
"""How long the IMU streams for the rate and FIFO checks."""
BROKER_TIMEOUT_S = 5.0
"""Longest wait for the broker's answer (TCP connect, TLS handshake, then CONNACK)."""


@dataclass
class Bench:
    """What the doctor examines and with which clock; the defaults are the real thing.

    Tests replace parts: a ``SimClock``, a simulated IMU rig with a fault
    injected, a pin factory with a pin already taken, fake clocks for the
    clock check.
    """

    clock: Clock = field(default_factory=RealClock)
    sim_imu: SimulatedImuRig | None = None
    """The simulated IMU (simulated backend); None builds one with a person standing still."""
    pin_factory: Any = None
    """gpiozero pin factory; None builds the one the config names."""
    open_bus: Callable[[int], I2cBus] = open_i2c_bus
    stream_seconds: float = STREAM_SECONDS
    broker_timeout_s: float = BROKER_TIMEOUT_S
    wall_time: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    audio: AudioBench = field(default_factory=AudioBench)
    """The spoken prompts' engine, devices and player (tests replace the commands)."""
    sim_int_wired: bool = True
    """Simulated hardware: the chip's INT reaches ``gpio.pins.imu_int`` (tests cut it)."""
    boot_config: Path = BOOT_CONFIG
    """The Pi's boot config: its audio overlays' pins (``audio-pins``), and read when the INT
    line cannot be opened (an overlay holding it)."""


def _simulated_rig(config: Config, clock: Clock) -> SimulatedImuRig:
    motion = scenarios.Sequence([scenarios.Standing(3600.0)], seed=1)
    return build_simulated_imu(config.imu, clock, motion)


def diagnose(config: Config, bench: Bench) -> Iterator[CheckResult]:
    """Run every check, yielding each result as soon as it is known (the IMU stream takes
    ``bench.stream_seconds``; the broker up to ``bench.broker_timeout_s``)."""
    sim_imu = bench.sim_imu
    if config.imu.backend == "simulated" and sim_imu is None:
        sim_imu = _simulated_rig(config, bench.clock)
    yield from imu_checks.run_imu_checks(
        config.imu,
        bench.clock,
        sim_rig=sim_imu if config.imu.backend == "simulated" else None,
        open_bus=bench.open_bus,
        seconds=bench.stream_seconds,
    )
    yield from gpio_checks.run_gpio_checks(config.gpio, bench.clock, factory=bench.pin_factory)
    yield system_checks.check_broker(config, bench.broker_timeout_s)
    yield system_checks.check_store(config)
    yield system_checks.check_clock(bench.wall_time, bench.monotonic)
    yield system_checks.check_config(config)
    yield check_audio(config, bench.audio)
    yield check_audio_pins(config, bench.boot_config)
    # last: it needs the IMU and the pins, each checked above
    yield check_int_line(
        config,
        bench.clock,
        make_sim_rig=(
            (lambda: _simulated_rig(config, bench.clock))
            if config.imu.backend == "simulated"
            else None
        ),
        factory=bench.pin_factory,
        seconds=min(INT_SECONDS, bench.stream_seconds),
        int_wired=bench.sim_int_wired,
        boot_config=bench.boot_config,
    )


def describe(config: Config, source: Path | None) -> str:
    """The header line: which config, which backends."""
    imu = config.imu
    gpio = config.gpio
    where = "built-in defaults" if source is None else str(source)
    imu_text = (
        "simulated IMU"
        if imu.backend == "simulated"
        else f"MPU-6050 at 0x{imu.address:02x} on /dev/i2c-{imu.i2c_bus}"
    )
    gpio_text = "simulated pins" if gpio.backend == "simulated" else f"gpiozero/{gpio.pin_factory}"
    return (
        f"retroguard doctor: {where} ({imu_text}, {imu.sample_rate_hz:g} Hz; {gpio_text}, "
        f"{gpio.relay_drive} relay drive)"
    )


def report(config: Config, bench: Bench, source: Path | None, out: Any = None) -> int:
    """Print the header, one line per check as it completes, and a summary; return the status."""
    out = out or sys.stdout
    print(describe(config, source), file=out, flush=True)
    results = []
    for result in diagnose(config, bench):
        results.append(result)
        print(result.line(), file=out, flush=True)
    failures = [r.name for r in results if r.failed]
    if failures:
        print(
            f"{len(failures)} of {len(results)} checks FAILED: {', '.join(failures)}",
            file=out,
        )
        return 1
    print(f"all checks passed ({len(results)} run or skipped)", file=out)
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``doctor`` on the CLI's subparsers (``run`` is its handler)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "doctor",
        help="check the wiring, sensor, pins, broker, store, clock and audio; one line per check",
        description=(
            "Check everything the monitor needs, one PASS/FAIL/SKIP line per check with what "
            "to do on failure. Run with the service stopped, as the service user. Exit 0 when "
            "nothing failed, 1 when a check failed, 2 when the config does not load."
        ),
    )
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help=f"TOML config file (default: {DEFAULT_CONFIG} if it exists, else built-in defaults "
        "on simulated hardware)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Load the config (a :class:`ConfigError` becomes exit 2 in the CLI) and report."""
    from firmware.config import load_config

    source: Path | None = args.config
    if source is None and DEFAULT_CONFIG.exists():
        source = DEFAULT_CONFIG
    config = load_config(source) if source is not None else Config()
    return report(config, Bench(), source)
