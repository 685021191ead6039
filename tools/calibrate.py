"""``retroguard calibrate``: measure the gyro bias and how the IMU is mounted, and save them.

Why: the detector reasons about the body (upright, pitched backward), the
sensor reports in its own axes, and the belt box can be clipped on in any
square orientation. A known mounting gives the detector its "up" from the
first sample; the gyro bias (an MPU-6050 can read several °/s at rest) would
otherwise be integrated as a slow phantom rotation.

The procedure (printed to the person running it — the wearer needs a helper
at the keyboard, or a countdown they can follow):

1. Stop the service (it owns the sensor): ``sudo systemctl stop retroguard``.
2. The wearer puts the belt on and stands upright and still on the stopped
   treadmill, arms relaxed, looking ahead.
3. ``retroguard calibrate -c /etc/retroguard/config.toml``: after a short
   settling time it records ``--seconds`` (5) of standing still — gravity
   gives the vertical axis, the mean gyro the bias.
4. When told, the wearer bends forward from the hips by about 30°, holds
   it for a second and straightens up — this gives the forward axis.
5. Check the result, then run again with ``--write`` to save
   ``imu.mounting`` and ``imu.gyro_bias_dps`` (comments and everything else
   in the file are kept), and restart the service.

The recording is rejected, and nothing is written, when the wearer was not
still, the lean was too small or not forward, or the box is mounted at an
angle (then ``mounting = "unknown"`` is suggested: the detector learns
gravity online). The maths is in :mod:`tools.mounting_estimate`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.cliargs import finite_float
from core.clock import Clock, RealClock
from core.mounting import Mounting
from core.samples import ImuSample
from firmware.config import Config
from hal.config import GYRO_BIAS_MAX_DPS
from hal.errors import ImuError, ImuFifoOverflowError
from hal.interfaces import Imu
from tools.mounting_estimate import (
    AxisFit,
    CalibrationError,
    LeanResult,
    StillResult,
    analyse_lean,
    analyse_still,
    mounting_from,
    snap,
)

SETTLE_S = 2.0
"""Discarded at the start: the wearer settles after the command is started."""
LEAN_S = 8.0
"""Recorded after the lean prompt: time to bend, hold a second and straighten up."""
READ_TIMEOUT_S = 0.05

SIM_GYRO_BIAS_DPS = (1.5, -0.8, 0.4)
"""The zero-rate offset the simulated chip has, so a simulated calibration measures something."""

PROCEDURE = """\
Calibration: gyro bias and mounting of the belt IMU.
  - Stop the monitor first (sudo systemctl stop retroguard): it owns the sensor.
  - The wearer stands upright and still on the stopped treadmill, arms relaxed, looking ahead.
  - When told, the wearer bends FORWARD from the hips by about 30 degrees, holds it for a
    second and straightens up. Forward, not sideways or backward: the lean says which way
    the wearer faces.
"""


@dataclass(frozen=True, slots=True)
class Calibration:
    mounting: Mounting
    still: StillResult
    lean: LeanResult
    up: AxisFit
    forward: AxisFit

    @property
    def gyro_bias_dps(self) -> tuple[float, float, float]:
        b = self.still.gyro_bias_dps
        return (round(b[0], 3), round(b[1], 3), round(b[2], 3))


def collect(imu: Imu, clock: Clock, seconds: float) -> list[ImuSample]:
    """Every sample for ``seconds`` of ``clock`` time; a gap in the data rejects the run."""
    samples: list[ImuSample] = []
    end = clock.monotonic() + seconds
    while (now := clock.monotonic()) < end:
        try:
            samples.extend(imu.read_batch(min(READ_TIMEOUT_S, end - now)))
        except ImuFifoOverflowError as exc:
            raise CalibrationError(
                f"samples were lost while recording ({exc}): stop other busy programs "
                "and run it again"
            ) from exc
        except ImuError as exc:
            raise CalibrationError(
                f"the IMU failed while recording ({exc}): run `retroguard doctor`"
            ) from exc
    return samples


def calibrate(
    imu: Imu,
    clock: Clock,
    *,
    seconds: float = 5.0,
    settle_s: float = SETTLE_S,
    lean_s: float = LEAN_S,
    say: Callable[[str], None] = print,
) -> Calibration:
    """Run the procedure on a started-here ``imu`` (configured with zero gyro bias).

    :class:`CalibrationError` says why a recording was rejected.
    """
    try:
        imu.start()
    except ImuError as exc:
        raise CalibrationError(f"the IMU does not start ({exc}): run `retroguard doctor`") from exc
    say(f"Stand upright and still... (settling {settle_s:g} s)")
    collect(imu, clock, settle_s)
    say(f"Recording {seconds:g} s of standing still. Do not move.")
    still = analyse_still(collect(imu, clock, seconds))
    worst = max(abs(axis) for axis in still.gyro_bias_dps)
    if worst > GYRO_BIAS_MAX_DPS:
        raise CalibrationError(
            f"the gyro reads {worst:.1f} deg/s standing still, beyond the ±{GYRO_BIAS_MAX_DPS:g} "
            "deg/s a working MPU-6050 may (twice its zero-rate tolerance): keep the sensor still "
            "and run it again, or replace the chip"
        )
    up = snap(still.gravity, "the vertical (gravity)")
    say(
        f"Now BEND FORWARD from the hips by about 30 degrees, hold a second, straighten up. "
        f"(recording {lean_s:g} s)"
    )
    lean = analyse_lean(
        collect(imu, clock, lean_s), still.gravity, still.gyro_bias_dps, imu.sample_rate_hz
    )
    forward = snap(lean.forward, "forward", exclude=up.axis)
    return Calibration(mounting_from(up, forward), still, lean, up, forward)


def summary(result: Calibration) -> list[str]:
    """What was measured, in the terms the config uses."""
    s = result.still
    bias = result.gyro_bias_dps
    return [
        f"standing still: {s.samples} samples over {s.seconds:.1f} s; gravity {s.gravity_g:.3f} g "
        f"along {result.up.name} ({result.up.off_deg:.1f}° off the axis); gyro spread "
        f"{max(s.gyro_std_dps):.2f} °/s",
        f"lean: {result.lean.lean_deg:.0f}° (gyro {result.lean.gyro_lean_deg:.0f}°); forward "
        f"along {result.forward.name} ({result.forward.off_deg:.1f}° off the axis)",
        f'mounting = "{result.mounting}"',
        f"gyro_bias_dps = [{bias[0]:.3f}, {bias[1]:.3f}, {bias[2]:.3f}]",
    ]


def simulated_wearer(config: Config, seconds: float) -> Any:
    """The simulated person: stands through the settling and still phases, then leans.

    Mounted as the config says (or the default belt-buckle mounting when it
    says "unknown"), with :data:`SIM_GYRO_BIAS_DPS` on the chip.
    """
    from sim import scenarios
    from sim.lean import Lean

    mounting = Mounting.parse(config.imu.mounting)
    if not mounting.is_known:
        mounting = scenarios.DEFAULT_MOUNTING
    return scenarios.Sequence(
        [scenarios.Standing(SETTLE_S + seconds + 0.5), Lean(duration=LEAN_S + 600.0)],
        seed=3,
        mounting=mounting,
        gyro_bias_dps=SIM_GYRO_BIAS_DPS,
    )


def open_raw_imu(config: Config, clock: Clock, seconds: float) -> Imu:
    """The configured IMU with no bias subtracted: the bias is what is being measured."""
    from hal.imu_factory import open_imu
    from sim.backends import build_simulated_imu

    raw = dataclasses.replace(config.imu, gyro_bias_dps=(0.0, 0.0, 0.0))
    if raw.backend == "simulated":
        return build_simulated_imu(raw, clock, simulated_wearer(config, seconds)).imu
    return open_imu(raw, clock)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``calibrate`` on the CLI's subparsers (``run`` is its handler)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "calibrate",
        help="measure the gyro bias and the IMU mounting (stand still, then lean forward)",
        description=PROCEDURE
        + "Exit 0 when calibrated, 1 when the recording was rejected, 2 for a bad config.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-c", "--config", type=Path, default=None, help="TOML config file")
    parser.add_argument(
        "--seconds", type=finite_float, default=5.0, help="standing-still recording (default 5)"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="save imu.mounting and imu.gyro_bias_dps to the config file (kept otherwise as is)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace, *, clock: Clock | None = None) -> int:
    from firmware.config import load_config
    from tools.config_edit import update_imu_values

    if args.write and args.config is None:
        print("calibrate: --write needs -c CONFIG (the file to update)", file=sys.stderr)
        return 2
    if args.seconds < 2.0:
        print("calibrate: --seconds must be at least 2", file=sys.stderr)
        return 2
    config = load_config(args.config) if args.config is not None else Config()
    clock = clock or RealClock()
    print(PROCEDURE)
    try:
        imu = open_raw_imu(config, clock, args.seconds)
    except (ImuError, ValueError) as exc:
        print(f"calibrate: cannot open the IMU: {exc}", file=sys.stderr)
        return 1
    try:
        result = calibrate(imu, clock, seconds=args.seconds)
    except CalibrationError as exc:
        print(f"calibrate: REJECTED: {exc}", file=sys.stderr)
        print("calibrate: nothing written", file=sys.stderr)
        return 1
    finally:
        imu.close()
    for line in summary(result):
        print(line)
    if not args.write:
        print("not written: run again with --write to save these to the config's [imu] section")
        return 0
    old = config.imu
    update_imu_values(
        args.config,
        {"mounting": str(result.mounting), "gyro_bias_dps": list(result.gyro_bias_dps)},
    )
    print(
        f"wrote {args.config} [imu] (was: mounting = {old.mounting!r}, gyro_bias_dps = "
        f"{list(old.gyro_bias_dps)}); restart the monitor: sudo systemctl restart retroguard"
    )
    return 0
