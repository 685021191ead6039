"""Gait and balance meters: CPU cost of each metric per minute of walking (and per check).

The meters run on the monitor's measurement thread (:mod:`firmware.gait.worker`), beside
the real-time loop; what they cost is CPU the Pi's other work does not get. Measured with
``time.process_time`` (CPU seconds of this process), over a synthesised walk with known
step times (:class:`sim.gait_motion.SteppedWalking`, 200 Hz, 100 steps/min, some jitter
and asymmetry), split by where the work is done:

* ``decimate``: 200 Hz sensor samples to 100 Hz analysis samples (:mod:`firmware.gait.stream`);
* ``steps``: the body frame, the step signal, steady-walking runs, step time, its CV,
  asymmetry and cadence: the per-sample path of :class:`~firmware.gait.walking.GaitMeter`
  (the total less the two below);
* ``regularity``: the unbiased autocorrelation (step/stride regularity, symmetry) and the
  walking trunk RMS (``GaitMeter._chunk``);
* ``harmonics``: the per-stride DFT and harmonic ratios (``GaitMeter._stride``);
* ``walking, unknown mounting``: the whole meter when AP/ML must be learned;
* ``balance check``: one 30 s standing trial (5 s settling), from samples to ISway figures.

A last column scales to a Raspberry Pi Zero 2 W by ``--pi-factor`` (default 7, the middle of
the 6-8x that ``benchmarks/imu_fifo.py`` assumes for pure Python there: an estimate, not a
measurement on a Pi).

    .venv/bin/python benchmarks/gait.py [--minutes 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.mounting import SISFALL_MOUNTING, UNKNOWN_MOUNTING, Mounting  # noqa: E402
from core.samples import ImuSample  # noqa: E402
from firmware.gait.balance import BalanceMeter  # noqa: E402
from firmware.gait.frame import AxisLearner  # noqa: E402
from firmware.gait.stream import AnalysisSample, Decimator  # noqa: E402
from firmware.gait.walking import GaitMeter  # noqa: E402
from sim.gait_motion import SteppedWalking, SwayingStance, Wave, step_times  # noqa: E402

RATE = 200.0


def sampled(source: Any, rate: float = RATE) -> list[ImuSample]:
    return [ImuSample(i / rate, *source.at(i / rate)) for i in range(int(source.duration * rate))]


class Timed:
    """Wraps a bound method, adding the CPU time of each call to :attr:`seconds`."""

    def __init__(self, method: Callable[..., None]) -> None:
        self.method = method
        self.seconds = 0.0

    def __call__(self, *args: Any) -> None:
        t0 = time.process_time()
        self.method(*args)
        self.seconds += time.process_time() - t0


def run_gait(analysis: list[AnalysisSample], mounting: Mounting) -> dict[str, float]:
    meter = GaitMeter(100.0, mounting, AxisLearner())
    chunk = Timed(meter._chunk)
    stride = Timed(meter._stride)
    setattr(meter, "_chunk", chunk)  # noqa: B010 (instance attribute over the method)
    setattr(meter, "_stride", stride)  # noqa: B010
    add = meter.add
    t0 = time.process_time()
    for a in analysis:
        add(*a)
    got = meter.finish()
    total = time.process_time() - t0
    if got.step_regularity is None or got.harmonic_ratio_v is None:
        raise SystemExit("benchmark walk gave no regularity/harmonics: the benchmark is broken")
    return {"total": total, "regularity": chunk.seconds, "harmonics": stride.seconds}


def best_of(repeats: int, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    runs = [fn() for _ in range(repeats)]
    return min(runs, key=lambda r: r["total"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="minutes of walking")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--pi-factor", type=float, default=7.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()

    walk = SteppedWalking(
        step_times(int(args.minutes * 100), 0.6, asymmetry=0.03, jitter_sd_s=0.015, seed=1)
    )
    samples = sampled(walk)
    minutes = len(samples) / RATE / 60.0

    def decimate() -> dict[str, float]:
        t0 = time.process_time()
        out = list(Decimator(RATE).feed(samples))
        return {"total": time.process_time() - t0, "n": float(len(out))}

    dec = best_of(args.repeats, decimate)
    analysis = [a for a in Decimator(RATE).feed(samples) if a is not None]
    known = best_of(args.repeats, lambda: run_gait(analysis, SISFALL_MOUNTING))
    unknown = best_of(args.repeats, lambda: run_gait(analysis, UNKNOWN_MOUNTING))

    stance = sampled(SwayingStance(35.0, [Wave(0.05, 0.3)], [Wave(0.04, 0.25)], noise_g=0.002))

    def balance() -> dict[str, float]:
        t0 = time.process_time()
        decimator = Decimator(RATE)
        meter = BalanceMeter(decimator.rate_hz, SISFALL_MOUNTING, settle_s=5.0, averaged=2)
        for a in decimator.feed(stance):
            if a is not None:
                meter.add(a[0], a[1], a[2], a[3])
        meter.signal().metrics()
        return {"total": time.process_time() - t0}

    check = best_of(args.repeats, balance)

    per_min = {
        "decimate": dec["total"] / minutes,
        "steps (frame, step time, CV, asymmetry, cadence, steady share)": (
            known["total"] - known["regularity"] - known["harmonics"]
        )
        / minutes,
        "regularity (autocorrelation: step/stride regularity, symmetry; trunk RMS)": known[
            "regularity"
        ]
        / minutes,
        "harmonics (harmonic ratio V/AP/ML)": known["harmonics"] / minutes,
        "walking, all of the above (known mounting)": (dec["total"] + known["total"]) / minutes,
        "walking, all of the above (unknown mounting, AP/ML learned)": (
            dec["total"] + unknown["total"]
        )
        / minutes,
    }
    print(f"Gait meters over {minutes:.1f} min of synthesised walking at {RATE:.0f} Hz")
    print(f"(best of {args.repeats}; CPU seconds via time.process_time)\n")
    print(f"{'metric':<76} {'ms CPU/min':>10} {'% core':>7} {'Pi est. ms':>10}")
    for name, seconds in per_min.items():
        ms = 1000.0 * seconds
        print(f"{name:<76} {ms:>10.1f} {100 * seconds / 60:>7.2f} {ms * args.pi_factor:>10.0f}")
    ms = 1000.0 * check["total"]
    print(f"{'balance check (one 30 s trial + 5 s settling, ISway figures)':<76} {ms:>10.1f}")
    print(f"{'':<76} {'ms/check':>10} {'':>7} {ms * args.pi_factor:>10.0f}")
    if args.json is not None:
        figures = {
            "minutes": minutes,
            "ms_cpu_per_minute": {k: 1000.0 * v for k, v in per_min.items()},
            "balance_check_ms": ms,
            "pi_factor": args.pi_factor,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
