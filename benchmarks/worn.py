"""The sensor-worn check: signatures, margin and cost (docs/safety.md, "Sensor-worn check").

1. Simulated sensors (sim.scenarios, MPU-6050 datasheet noise density, quantised at the
   default 1000 deg/s range): resting, vibrating on a console (a grid of frequencies and
   amplitudes), standing and walking. Each: the smallest and largest block reading, and of
   the last-2-s reading (every 0.25 s).
2. Recordings: every activity-of-daily-living recording of SisFall (D01-D19, 200 Hz,
   ITG3200 gyro) and KFall (D01-D21, task ids 1-19 and 35-36, 100 Hz), when ``../shared``
   (or RETROGUARD_SISFALL, RETROGUARD_KFALL) has them. Per activity: recordings, recordings
   with a block below the threshold (a false "not worn"), smallest block reading and where;
   and the same for the last 2 s (``WornCheck.recent_dps``, what a reset press is also judged
   on), read every 0.25 s.
3. Cost on the loop: ``WornCheck.update`` per sample, and the controller's
   ``on_samples`` with the check on and off (one-sample batches of standing, as the loop
   reads them at 200 Hz).

Every reading is the check's own: ``firmware.detection.worn.WornCheck`` with the
configured block, on the samples as they come.

    .venv/bin/python benchmarks/worn.py [--no-datasets] [--threshold 0.05]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.samples import ImuSample  # noqa: E402
from firmware.config import SafetyConfig  # noqa: E402
from firmware.detection.worn import WornCheck  # noqa: E402
from sim import scenarios as sc  # noqa: E402
from sim.motion import MotionSource  # noqa: E402

RATE = 200.0
GYRO_LSB_DPS = 1.0 / 32.8
"""The MPU-6050's gyro resolution at the default 1000 deg/s range."""


def block_readings(
    samples: Iterable[ImuSample], rate_hz: float, block_s: float
) -> tuple[list[float], list[float]]:
    """Every block's reading, and the last-2-s reading every 0.25 s, after the check is
    ready (deg/s)."""
    check = WornCheck(rate_hz, threshold_dps=1.0, block_s=block_s)
    out: list[float] = []
    recent: list[float] = []
    seen = 0
    chunk = max(1, int(rate_hz / 4))  # shorter than a block: at most one closes per chunk
    listed = list(samples)
    for i in range(0, len(listed), chunk):
        check.update_batch(listed[i : i + chunk])
        if check.ready:
            recent.append(check.recent_dps)
            if check.blocks != seen:
                seen = check.blocks
                out.append(check.rotation_dps)
    return out, recent


def sampled(motion: MotionSource, seconds: float) -> Iterable[ImuSample]:
    """The motion as the MPU-6050 would give it at 200 Hz (gyro quantised)."""
    for i in range(int(seconds * RATE)):
        t = i / RATE
        ax, ay, az, gx, gy, gz = motion.at(t)
        q = GYRO_LSB_DPS
        yield ImuSample(t, ax, ay, az, round(gx / q) * q, round(gy / q) * q, round(gz / q) * q)


def simulated(block_s: float, threshold: float) -> None:
    print(f"1. Simulated sensors (block {block_s:g} s, threshold {threshold:g} deg/s)")
    cases: list[tuple[str, sc.Segment]] = [("resting on the console", sc.Resting(60.0))]
    for f in (10.0, 15.0, 25.0, 50.0, 100.0):
        for a in (0.05, 0.2):
            v = sc.Vibrating(60.0, freq_hz=f, accel_g=a)
            cases.append((f"vibrating {f:g} Hz {a:g} g ({v.rocking_dps:.2f} deg/s rocking)", v))
    cases += [("standing (sway)", sc.Standing(60.0)), ("walking backward", sc.Walking(60.0))]
    for name, segment in cases:
        lows, highs, recent_lows, recent_highs = [], [], [], []
        for seed in range(3):
            r, recent = block_readings(
                sampled(sc.scenario(segment, seed=seed), 60.0), RATE, block_s
            )
            lows.append(min(r))
            highs.append(max(r))
            recent_lows.append(min(recent))
            recent_highs.append(max(recent))
        print(
            f"   {name:<45} min {min(lows):7.3f}  max {max(highs):7.3f} deg/s; last 2 s "
            f"{min(recent_lows):7.3f} to {max(recent_highs):7.3f}"
        )


def _unpack(script: str) -> Path | None:
    unpack = ROOT.parent / "shared" / "datasets" / script
    if not unpack.exists():
        return None
    out = subprocess.run([str(unpack)], check=True, capture_output=True, text=True).stdout
    return Path(out.strip().splitlines()[-1])


def recordings(block_s: float, threshold: float) -> None:
    from tools.datasets.kfall import KFALL_TASKS, find_kfall, iter_kfall, parse_name
    from tools.datasets.sisfall import find_sisfall, iter_sisfall
    from tools.datasets.sisfall import parse_name as sisfall_name

    env_s = os.environ.get("RETROGUARD_SISFALL")
    env_k = os.environ.get("RETROGUARD_KFALL")
    sisfall = Path(env_s) if env_s else _unpack("unpack")
    kfall = Path(env_k) if env_k else _unpack("unpack-kfall")
    print(f"2. Recordings (block {block_s:g} s, threshold {threshold:g} deg/s)")
    groups: dict[str, list[tuple[float, str]]] = {}
    recent_groups: dict[str, list[tuple[float, str]]] = {}
    if sisfall is not None and sisfall.is_dir():
        for path in find_sisfall(sisfall):
            name = sisfall_name(path)
            if name is None or name.is_fall:
                continue
            r, recent = block_readings(iter_sisfall(path), 200.0, block_s)
            if r:
                groups.setdefault(f"SisFall {name.code}", []).append((min(r), path.name))
                recent_groups.setdefault(f"SisFall {name.code}", []).append(
                    (min(recent), path.name)
                )
    else:
        print("   SisFall: not available")
    if kfall is not None and kfall.is_dir():
        # The activities of daily living by the task table: ids 20-34 are the falls, and
        # D20-D21 (stairs) are ids 35-36.
        adl = frozenset(i for i, task in KFALL_TASKS.items() if task.code.startswith("D"))
        for path in find_kfall(kfall, adl):
            kname = parse_name(path)
            assert kname is not None
            r, recent = block_readings(iter_kfall(path), 100.0, block_s)
            if r:
                group = f"KFall {KFALL_TASKS[kname.task_id].code}"
                groups.setdefault(group, []).append((min(r), path.name))
                recent_groups.setdefault(group, []).append((min(recent), path.name))
    else:
        print("   KFall: not available")
    total = below = 0
    smallest = (float("inf"), "")
    for group, found in sorted(groups.items()):
        found.sort()
        n_below = sum(1 for m, _ in found if m < threshold)
        total += len(found)
        below += n_below
        smallest = min(smallest, found[0])
        print(
            f"   {group:<12} {len(found):4d} recordings, {n_below:3d} with a block below: "
            f"smallest {found[0][0]:7.3f} deg/s ({found[0][1]}), "
            f"median of minima {found[len(found) // 2][0]:7.3f}"
        )
    if total:
        print(
            f"   all: {total} recordings, {below} with a false 'not worn'; smallest block "
            f"{smallest[0]:.3f} deg/s ({smallest[1]}): margin x{smallest[0] / threshold:.2f}"
        )
    print("   The last 2 s (a reset press's second question), read every 0.25 s once ready:")
    for group, found in sorted(recent_groups.items()):
        found.sort()
        n_below = sum(1 for m, _ in found if m < threshold)
        print(
            f"   {group:<12} {len(found):4d} recordings, {n_below:3d} with a reading below: "
            f"smallest {found[0][0]:7.3f} deg/s ({found[0][1]})"
        )


def cost(block_s: float, threshold: float) -> None:
    from core.clock import SimClock
    from firmware.detection.base import NO_DETECTIONS, Detection
    from firmware.safety import SafetyController, SensorLimits
    from hal.config import GpioConfig
    from sim.backends import open_simulated_gpio

    print("3. Cost on the loop (this machine, one core; best of 5 runs over 60 s of samples)")
    samples = list(sampled(sc.scenario(sc.Standing(60.0)), 60.0))
    check = WornCheck(RATE, threshold_dps=threshold, block_s=block_s)
    # The loop reads about one sample per FIFO poll at 200 Hz (189 polls/s, issue 15).
    batches = [samples[i : i + 1] for i in range(len(samples))]
    fastest = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for batch in batches:
            check.update_batch(batch)
        fastest = min(fastest, time.perf_counter() - start)
    per = fastest / len(samples)
    print(
        f"   WornCheck.update_batch, one sample per batch: {per * 1e9:5.0f} ns/sample = "
        f"{per * RATE * 100:.3f} % of a core at {RATE:g} Hz"
    )

    class Quiet:
        def update(self, sample: ImuSample) -> Sequence[Detection]:
            return NO_DETECTIONS

        def reset(self) -> None:
            pass

    runs = 7
    shifted = [[x._replace(t=x.t + 60.0 * r) for x in samples] for r in range(runs)]
    best: dict[bool, float] = {}
    controllers: dict[bool, SafetyController] = {}
    gpios = []
    for on in (False, True):
        gpio = open_simulated_gpio(GpioConfig(), SimClock())
        gpios.append(gpio)
        controllers[on] = SafetyController(
            relay=gpio.relay,
            buzzer=gpio.buzzer,
            detector=Quiet(),
            emit=lambda event: None,
            config=SafetyConfig(worn_check=on),
            limits=SensorLimits(8.0, 1000.0),
            sample_rate_hz=RATE,
            device_id="bench",
        )
        controllers[on].start(0.0)
        best[on] = float("inf")
    for run in shifted:  # interleaved, so a busy moment of the host hits both alike
        for on in (False, True):
            on_samples = controllers[on].on_samples
            start = time.perf_counter()
            for x in run:
                on_samples((x,), x.t)
            best[on] = min(best[on], time.perf_counter() - start)
    for on in (False, True):
        print(
            f"   SafetyController.on_samples, worn check {'on ' if on else 'off'}: "
            f"{best[on] / len(samples) * 1e9:6.0f} ns/sample"
        )
    extra = (best[True] - best[False]) / len(samples)
    print(
        f"   added by the check: {extra * 1e9:.0f} ns/sample = {extra * RATE * 100:.3f} % of a core"
    )
    for gpio in gpios:
        gpio.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=SafetyConfig().worn_min_rotation_dps)
    parser.add_argument("--block", type=float, default=SafetyConfig().worn_block_s)
    parser.add_argument("--no-datasets", action="store_true")
    args = parser.parse_args()
    simulated(args.block, args.threshold)
    if not args.no_datasets:
        recordings(args.block, args.threshold)
    cost(args.block, args.threshold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
