"""Detector speed: samples per second per core, and per-sample decision latency.

1. Detector alone: ``update()`` over pre-built samples (a synthesised session:
   standing, backward walking, a turn, a stumble, a backward fall, lying).
   Target on the development machine: >= 300,000 samples/s per core. Also
   the batch path (``tools.batch.detect_block`` over the same
   samples as one NumPy block), when NumPy is installed.
2. Replay path: the whole ``evaluate``/``replay`` path — read the file, parse,
   resample to the monitor rate, detect — from a trace on disk (and from a
   SisFall file when ``../shared`` is present, resampled 200 -> 100 Hz too).
3. Latency: each ``update()`` timed on its own (sample in -> decision out),
   p50 and p99. Target: p99 < 50 us.
4. Against a yardstick, streaming *real* walking (SisFall D01, where heel
   strikes start a landing check on most samples; the synthetic session
   flatters the detector): the pure-Python detector, the compiled one (when
   built, ``setup.py``) and the plain orientation + vertical-velocity filter
   of ``benchmarks/reference_filter.py``, interleaved in one process, best
   of several runs each, and each detector's speed as a ratio of the
   filter's. Ratios measured in the same run are what to compare across
   machines and loads. Target: compiled >= 1.0x the filter.

Everything runs in one process on one core.

    .venv/bin/python benchmarks/detector.py [--seconds 120] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.reference_filter import VerticalVelocityFilter  # noqa: E402
from core.samples import ImuSample  # noqa: E402
from core.trace import write_trace  # noqa: E402
from firmware.detection import DetectorConfig, build_detector  # noqa: E402
from firmware.detection.factory import compiled_class  # noqa: E402
from firmware.detection.retro import FallDetector  # noqa: E402
from sim.scenarios import (  # noqa: E402
    BackwardFall,
    Sequence,
    Standing,
    StumbleRecovery,
    Turn,
    Walking,
)
from tools.datasets import describe, open_samples  # noqa: E402

RATE = 200.0


def session(seconds: float) -> list[ImuSample]:
    """A synthesised session about ``seconds`` long, mostly walking (the common case)."""
    walk = max(5.0, seconds - 30.0)
    seq = Sequence(
        [
            Standing(3.0),
            Walking(walk / 2, 0.6, "backward"),
            Turn(),
            StumbleRecovery(),
            Walking(walk / 2, 0.6, "backward"),
            BackwardFall(lie_s=12.0),
        ],
        seed=0,
    )
    n = int(seq.duration * RATE)
    return [ImuSample(i / RATE, *seq.at(i / RATE)) for i in range(n)]


def best_rate(run: Callable[[], int], repeats: int = 5) -> float:
    """Samples per second of the fastest of ``repeats`` runs (least disturbed)."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = run()
        dt = time.perf_counter() - t0
        best = max(best, n / dt)
    return best


def detector_alone(samples: list[ImuSample]) -> float:
    def run() -> int:
        det = build_detector(DetectorConfig(), RATE)
        update = det.update
        for s in samples:
            update(s)
        return len(samples)

    return best_rate(run)


def detector_batch(samples: list[ImuSample]) -> float | None:
    try:
        from firmware.detection.retro import FallDetector
        from tools.batch import as_block, detect_block
    except ImportError:  # NumPy absent: the batch path is optional
        return None
    block = as_block(samples)

    def run() -> int:
        detect_block(FallDetector(DetectorConfig(), RATE), block)
        return len(samples)

    return best_rate(run)


def replay(path: Path, rate: float) -> float:
    def run() -> int:
        rec = describe(path)
        det = build_detector(DetectorConfig(), rate, up=rec.up)
        update = det.update
        n = 0
        for s in open_samples(rec, rate):
            update(s)
            n += 1
        return n

    return best_rate(run, repeats=3)


def latency_us(samples: Iterable[ImuSample]) -> dict[str, float]:
    det = build_detector(DetectorConfig(), RATE)
    update = det.update
    clock = time.perf_counter_ns
    times: list[int] = []
    append = times.append
    for s in samples:
        t0 = clock()
        update(s)
        append(clock() - t0)
    # The cost of reading the clock itself, subtracted so the figure is the update's.
    overhead = min(_clock_overhead(clock) for _ in range(5))
    times.sort()

    def pct(q: float) -> float:
        return max(0, times[min(len(times) - 1, int(q * len(times)))] - overhead) / 1000.0

    return {"p50": pct(0.50), "p99": pct(0.99), "p99.9": pct(0.999), "max": pct(1.0)}


def _clock_overhead(clock: Callable[[], int]) -> int:
    best = 10**9
    for _ in range(1000):
        t0 = clock()
        best = min(best, clock() - t0)
    return best


def against_the_filter(
    samples: list[ImuSample], up: tuple[float, float, float] | None
) -> dict[str, float | None]:
    """Samples/s of the pure and compiled detectors and of the reference
    filter on the same samples, interleaved (best of 7 each), and the ratios."""
    compiled = compiled_class()
    classes: dict[str, type[FallDetector] | None] = {"pure": FallDetector, "compiled": compiled}

    def detector(cls: type[FallDetector]) -> Callable[[], int]:
        def run() -> int:
            update = cls(DetectorConfig(), RATE, up=up).update
            for s in samples:
                update(s)
            return len(samples)

        return run

    def reference() -> int:
        update = VerticalVelocityFilter(RATE).update
        for s in samples:
            update(s)
        return len(samples)

    runs: dict[str, Callable[[], int]] = {"filter": reference}
    runs |= {name: detector(cls) for name, cls in classes.items() if cls is not None}
    best = dict.fromkeys(runs, 0.0)
    for _ in range(7):
        for name, run in runs.items():
            best[name] = max(best[name], best_rate(run, repeats=1))
    out: dict[str, float | None] = {f"{name}_samples_per_s": rate for name, rate in best.items()}
    for name in classes:
        out[f"{name}_vs_filter"] = best[name] / best["filter"] if name in best else None
    if "compiled" not in best:
        out["compiled_samples_per_s"] = None
    return out


def sisfall_file() -> Path | None:
    """SisFall D01_SA01_R01 (walking slowly, 100 s): from ``RETROGUARD_SISFALL``
    or ``../shared/datasets/unpack``."""
    override = os.environ.get("RETROGUARD_SISFALL")
    unpack = ROOT.parent / "shared" / "datasets" / "unpack"
    if override:
        root = Path(override)
    elif unpack.exists():
        out = subprocess.run([str(unpack)], check=True, capture_output=True, text=True).stdout
        root = Path(out.strip().splitlines()[-1])
    else:
        return None
    p = root / "SA01" / "D01_SA01_R01.txt"
    return p if p.exists() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="length of the session")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()

    samples = session(args.seconds)
    figures: dict[str, Any] = {"samples": len(samples), "rate_hz": RATE}
    figures["detector_samples_per_s"] = detector_alone(samples)
    figures["detector_batch_samples_per_s"] = detector_batch(samples)
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "session.csv"
        seq_header = Sequence([Standing(1.0)]).trace_header(RATE)
        write_trace(trace, seq_header, samples)
        figures["replay_trace_samples_per_s"] = replay(trace, RATE)
    sis = sisfall_file()
    if sis is not None:
        figures["replay_sisfall_samples_per_s"] = replay(sis, RATE)
        figures["replay_sisfall_resampled_100hz_samples_per_s"] = replay(sis, 100.0)
    figures["latency_us"] = latency_us(samples)
    if sis is not None:
        rec = describe(sis)
        walking = list(open_samples(rec, RATE))
        figures["real_walking"] = against_the_filter(walking, rec.up)
    figures["synthetic_session"] = against_the_filter(samples, None)

    print(f"session: {len(samples)} samples at {RATE:g} Hz ({len(samples) / RATE:.0f} s)")
    print(f"detector alone        {figures['detector_samples_per_s']:>12,.0f} samples/s per core")
    batch = figures["detector_batch_samples_per_s"]
    if batch is not None:
        print(f"detector, batch path  {batch:>12,.0f} samples/s per core (one NumPy block)")
    print(
        f"replay (trace file)   {figures['replay_trace_samples_per_s']:>12,.0f} samples/s per core"
    )
    if sis is not None:
        print(
            f"replay (SisFall file) {figures['replay_sisfall_samples_per_s']:>12,.0f} samples/s "
            f"per core (resampled to 100 Hz: "
            f"{figures['replay_sisfall_resampled_100hz_samples_per_s']:,.0f} output samples/s)"
        )
    lat = figures["latency_us"]
    print(
        f"latency per sample    p50 {lat['p50']:.1f} us   p99 {lat['p99']:.1f} us   "
        f"p99.9 {lat['p99.9']:.1f} us   max {lat['max']:.1f} us"
    )
    budget = 1e6 / RATE
    print(f"budget at {RATE:g} Hz: {budget:.0f} us per sample; p99 uses {lat['p99'] / budget:.2%}")
    for key, what in (
        ("real_walking", "real walking (SisFall D01)"),
        ("synthetic_session", "synthetic session"),
    ):
        f = figures.get(key)
        if f is None:
            continue
        print(
            f"{what}, same run, samples/s and ratio to the orientation + vertical-velocity filter:"
        )
        print(f"  filter    {f['filter_samples_per_s']:>12,.0f}")
        print(f"  pure      {f['pure_samples_per_s']:>12,.0f}   {f['pure_vs_filter']:.2f}x")
        if f["compiled_samples_per_s"] is None:
            print(
                "  compiled  not built (no C compiler, RETROGUARD_PURE, or stale: pip install -e .)"
            )
        else:
            rate, ratio = f["compiled_samples_per_s"], f["compiled_vs_filter"]
            print(f"  compiled  {rate:>12,.0f}   {ratio:.2f}x")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
