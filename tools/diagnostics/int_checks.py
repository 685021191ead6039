"""The IMU's data-ready line: does INT pulse on ``gpio.pins.imu_int`` for every sample?

With ``imu.pacing`` "auto" or "interrupt" the monitor waits on that line
(:mod:`firmware.pacing`); a dead one costs nothing in safety (the loop reads
anyway after a bounded wait and then polls, until the line pulses again, for good
the third time it goes quiet) but twice the I2C traffic
and more CPU, and the monitor only says so in its log and self-test. The
doctor streams the IMU through the real driver (which sets the chip to pulse
INT) while :class:`hal.gpio.GpioDataReady` counts the rising edges, as the
monitor does. Edges for about every sample pass; none while samples arrive is a
dead line: a WARN with "auto" (the monitor polls instead), a FAIL with
"interrupt" (the monitor's self-test fails too). It runs after the IMU and pin
checks because it needs both; on simulated hardware the simulated chip drives
the pin (``int_wired=False`` cuts the wire, for tests).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from core.clock import Clock
from firmware.config import Config
from hal.errors import HalError, ImuError
from hal.gpio import GpioDataReady
from hal.imu_factory import open_imu
from hal.interfaces import Imu
from sim.backends import SimulatedImuRig
from sim.pins import ClockedMockFactory
from tools.diagnostics.boot_config import BOOT_CONFIG, read_overlays
from tools.diagnostics.gpio_checks import make_pin_factory
from tools.diagnostics.result import CheckResult, failed, passed, skipped, warned

INT = "imu-int"
INT_SECONDS = 0.5
"""How long the IMU streams while the edges are counted (100 samples at 200 Hz)."""
MISSED_SHARE = 0.1
"""More samples than this share without an edge: pulses are being lost (a marginal wire)."""
READ_TIMEOUT_S = 0.025
SDMODE_DEFAULT_PIN = 4
"""The max98357a overlay's ``sdmode-pin`` when the line gives none (and no ``no-sdmode``)."""


def _sdmode_overlay(boot_config: Path, pin: int) -> str | None:
    """The line of ``boot_config`` that makes the kernel take GPIO``pin`` as a MAX98357A's
    SD_MODE output (``dtoverlay=max98357a`` without ``no-sdmode``, its ``sdmode-pin`` that
    pin), or None (no such line, or the file cannot be read)."""
    for overlay in read_overlays(boot_config) or []:
        if overlay.name != "max98357a" or "no-sdmode" in overlay.params:
            continue
        number = overlay.param("sdmode-pin")
        sdmode = int(number) if number is not None and number.isdigit() else SDMODE_DEFAULT_PIN
        if sdmode == pin:
            return overlay.line
    return None


def _wiring(pin: int) -> str:
    header = " (header pin 7)" if pin == 4 else ""
    return (
        f"check the wire from the MPU-6050's INT pad to GPIO{pin}{header} in the belt cable and "
        "its connector, and that gpio.pins.imu_int names the pin it is on (wiring/README.md, "
        'section 8); if INT is not wired, set imu.pacing = "poll"'
    )


def check_int_line(
    config: Config,
    clock: Clock,
    *,
    make_sim_rig: Callable[[], SimulatedImuRig] | None,
    factory: Any | None,
    seconds: float = INT_SECONDS,
    int_wired: bool = True,
    boot_config: Path = BOOT_CONFIG,
) -> CheckResult:
    """Stream the IMU for ``seconds`` and count INT's edges.

    ``make_sim_rig`` builds a fresh simulated IMU (simulated backend; the IMU
    checks closed theirs), None opens the real one; ``factory`` is the pin
    factory to use (None: the one the config names, closed again here);
    ``boot_config``: the Pi's boot config, read when the line cannot be opened, for
    the overlay that gives it to the kernel (wiring/README.md, section 11).
    """
    imu_config, pin = config.imu, config.gpio.pins.imu_int
    if imu_config.pacing == "poll":
        return skipped(INT, 'imu.pacing = "poll": the monitor does not use the INT line')
    required = imu_config.pacing == "interrupt"
    with ExitStack() as stack:
        try:
            if factory is None:
                factory = make_pin_factory(config.gpio, clock)
                stack.callback(factory.close)
            line = GpioDataReady(pin, factory, clock)
        except HalError as exc:
            detail = f"GPIO{pin} cannot be opened for the data-ready line: {exc}"
            fix = "stop the monitor (sudo systemctl stop retroguard) and run the doctor again"
            overlay = _sdmode_overlay(boot_config, pin)
            if overlay is not None:
                # The guide's "never the plain dtoverlay=max98357a": the kernel holds the
                # line, and stopping the monitor (the only fix said before) changes nothing.
                fix = (
                    f"{boot_config} has '{overlay}': the kernel takes GPIO{pin} as the "
                    "amplifier's SD_MODE output; write it as 'dtoverlay=max98357a,no-sdmode' "
                    "(wiring/README.md, section 11) and reboot"
                )
            return failed(INT, detail, fix) if required else warned(INT, f"{detail}; {fix}")
        stack.callback(line.close)
        imu: Imu
        try:
            if make_sim_rig is not None:
                rig = make_sim_rig()
                imu = rig.imu
                if int_wired and isinstance(factory, ClockedMockFactory):
                    rig.chip.connect_int(factory.observed_pin(pin))
                    stack.callback(rig.chip.disconnect_int)
            else:
                imu = open_imu(imu_config, clock)
            stack.callback(imu.close)
            imu.start()
            samples = _stream(imu, clock, seconds)
        except (ImuError, ValueError) as exc:
            return skipped(INT, f"not judged: the IMU does not stream ({exc}; see imu-id)")
        edges = line.edges
    return _judge(edges, samples, seconds, pin, required)


def _stream(imu: Imu, clock: Clock, seconds: float) -> int:
    samples = 0
    end = clock.monotonic() + seconds
    while (now := clock.monotonic()) < end:
        samples += len(imu.read_batch(min(READ_TIMEOUT_S, end - now)))
    return samples


def _judge(edges: int, samples: int, seconds: float, pin: int, required: bool) -> CheckResult:
    if samples == 0:
        return skipped(INT, f"not judged: no samples in {seconds:g} s (see sample-rate)")
    seen = f"{edges} rising edge(s) on GPIO{pin} for {samples} samples in {seconds:g} s"
    if edges >= samples * (1 - MISSED_SHARE):
        return passed(INT, f"{seen}: the data-ready interrupt paces the loop")
    if edges == 0:
        problem = f"no data-ready pulse: {seen}"
        then = "the monitor falls back to polling (more I2C traffic and CPU)"
    else:
        problem = f"pulses lost: {seen}"
        then = "a marginal wire: the monitor may fall back to polling"
    fix = _wiring(pin)
    if required:
        return failed(INT, f'{problem}; with imu.pacing = "interrupt" {then}', fix)
    return warned(INT, f"{problem}; {then}; {fix}")
