"""``retroguard record OUT``: the configured IMU to a trace file.

On real hardware it records in real time for ``--seconds``. With the
simulated IMU the walker does ``--scenario`` and the recording runs on a
simulated clock, as fast as the machine goes — the register-level chip and
the real driver still sit between the motion and the file, so the trace has
the quantisation, timing and FIFO behaviour of the hardware path.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable
from pathlib import Path

from core.clock import Clock, RealClock, SimClock
from core.mounting import UNKNOWN_MOUNTING
from core.trace import Label, TraceHeader, TraceWriter
from firmware.config import Config, load_config
from hal.errors import HalError, ImuError
from hal.imu_factory import open_imu
from hal.interfaces import Imu
from sim import scenarios
from sim.backends import build_simulated_imu
from sim.scenarios import BackwardFall, Sequence, StumbleRecovery, Turn, Walking


def _walk(direction: scenarios.Direction, speed: float) -> Callable[[float], Sequence]:
    return lambda s: scenarios.scenario(Walking(s, speed, direction))


SCENARIOS: dict[str, Callable[[float], Sequence]] = {
    "standing": lambda s: scenarios.scenario(scenarios.Standing(s)),
    "walk-forward": _walk("forward", 1.0),
    "walk-backward": _walk("backward", 0.6),
    "turn": lambda s: Sequence([Walking(max(s - 5.0, 1.0), 0.6, "backward"), Turn()]),
    "stumble": lambda s: Sequence(
        [Walking(3.0, 0.6, "backward"), StumbleRecovery(), Walking(max(s - 8, 1.0), 0.6)],
        name="stumble",
    ),
    "backward-fall": lambda s: Sequence(
        [Walking(3.0, 0.6, "backward"), BackwardFall(lie_s=max(s - 5.0, 5.0))],
        name="backward_fall",
    ),
    "lying": lambda s: scenarios.scenario(scenarios.Lying(s)),
    "demo": lambda s: scenarios.demo_session(),
}
"""What the simulated walker can do for ``--scenario``."""


def labelled_after(header: TraceHeader, seconds: float) -> str | None:
    """Why a recording of ``seconds`` would not hold what its scenario's header labels (the
    fall's onset or impact, the scenario's own times), or None when it does. ``--scenario
    backward-fall --seconds 3`` wrote a trace labelled a fall, impact at 4.95 s, that ends at
    3 s in the walk before it: replay said the stumble came "before impact", and evaluate
    counted a fall the file does not hold."""
    times = {"onset": header.onset_t, "impact": header.impact_t}
    labelled = {what: t for what, t in times.items() if t is not None}
    if not labelled or max(labelled.values()) < seconds:
        return None
    said = ", ".join(f"{what} at {t:g} s" for what, t in labelled.items())
    return (
        f"ends before the scenario's fall ({said}), which its header would label all the "
        f"same: give --seconds {math.ceil(max(labelled.values())) + 2} or more"
    )


def record(
    out: Path,
    *,
    config_path: Path | None = None,
    seconds: float = 10.0,
    scenario: str | None = None,
    label: Label | str = "unknown",
    activity: str | None = None,
    description: str | None = None,
) -> int:
    config = Config() if config_path is None else load_config(config_path)
    if scenario == "list":
        print("\n".join(SCENARIOS))
        return 0
    if seconds <= 0:
        print("retroguard record: --seconds must be positive", file=sys.stderr)
        return 2
    simulated = config.imu.backend == "simulated"
    clock: Clock
    if simulated:
        name = scenario or "walk-backward"
        if name not in SCENARIOS:
            known = ", ".join(SCENARIOS)
            print(f"retroguard record: unknown scenario {name!r} (known: {known})", file=sys.stderr)
            return 2
        motion = SCENARIOS[name](seconds)
        if name == "demo":
            seconds = motion.duration
        header = motion.trace_header(config.imu.sample_rate_hz)
        cut = labelled_after(header, seconds)
        if cut is not None:
            print(f"retroguard record: --seconds {seconds:g} {cut}", file=sys.stderr)
            return 2
        clock = SimClock()
    else:
        if scenario is not None:
            print("retroguard record: --scenario needs imu.backend = 'simulated'", file=sys.stderr)
            return 2
        motion = None
        header = TraceHeader(
            sample_rate_hz=config.imu.sample_rate_hz,
            sensor="MPU-6050",
            mounting=UNKNOWN_MOUNTING,
            source=f"retroguard record, device {config.device.id}",
        )
        clock = RealClock()
    header = dataclasses.replace(
        header,
        label=label if label != "unknown" else header.label,  # type: ignore[arg-type]
        activity=activity or header.activity,
        description=description or header.description,
    )
    try:
        if motion is not None:
            imu: Imu = build_simulated_imu(config.imu, clock, motion).imu
        else:
            imu = open_imu(config.imu, clock)
    except HalError as exc:  # no sensor on the bus, a backend not installed
        print(f"retroguard record: IMU: {exc}", file=sys.stderr)
        return 1
    try:
        try:  # the file first: a path that cannot be written is said before any recording
            writer = TraceWriter(out, header)
        except OSError as exc:
            print(f"retroguard record: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        with writer:
            imu.start()
            end = clock.monotonic() + seconds
            t0: float | None = None
            while clock.monotonic() < end:
                batch = imu.read_batch(0.1)
                if batch and t0 is None:
                    t0 = batch[0].t
                assert t0 is not None or not batch
                try:
                    writer.write_many(s._replace(t=s.t - t0) for s in batch if t0 is not None)
                except ValueError as exc:  # what no reader would take, e.g. a huge gyro bias
                    print(f"retroguard record: IMU sample not a reading: {exc}", file=sys.stderr)
                    return 1
    except ImuError as exc:
        print(f"retroguard record: IMU: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the disk filled during the recording
        print(f"retroguard record: writing {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        imu.close()
    print(f"{out}: {writer.rows_written} samples at {config.imu.sample_rate_hz:g} Hz")
    return 0
