"""Trips on the synthesised treadmill sessions: the figure docs/detector.md reports.

Streams every session of ``sim/treadmill.py`` (belt starts at 0.3 and 1.5 mph
backward and forward, speed steps 0.3 -> 1.5 mph both ways, the 2/2 plan's
turn-arounds, a whole guided session) through the detector for several
random seeds (the walker's sway, cadence and turn direction change with the
seed) and prints each session's hours and trips. ``tests/test_treadmill.py``
asserts zero trips for seeds 0-2; this covers more of them.

    .venv/bin/python scripts/treadmill_trips.py [--seeds 10] [--rate 200]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.mounting import up_vector  # noqa: E402
from core.samples import ImuSample  # noqa: E402
from firmware.detection import TRIPPING_KINDS, DetectorConfig  # noqa: E402
from firmware.detection.factory import build_detector  # noqa: E402
from sim import treadmill  # noqa: E402
from sim.scenarios import Sequence  # noqa: E402

SESSIONS: dict[str, Callable[[int], Sequence]] = {
    "belt start backward 0.3 mph": lambda s: treadmill.belt_start_session(seed=s, speed_mph=0.3),
    "belt start backward 1.5 mph": lambda s: treadmill.belt_start_session(seed=s, speed_mph=1.5),
    "belt start forward 1.5 mph": lambda s: treadmill.belt_start_session(
        seed=s, direction="forward", speed_mph=1.5
    ),
    "speed steps backward": lambda s: treadmill.speed_steps_session(seed=s),
    "speed steps forward": lambda s: treadmill.speed_steps_session(seed=s, direction="forward"),
    "2/2 turn-arounds": lambda s: treadmill.turnaround_session(seed=s),
    "whole session": lambda s: treadmill.treadmill_session(seed=s),
}


def trips(seq: Sequence, rate: float) -> list[str]:
    det = build_detector(DetectorConfig(), rate, up=up_vector(seq.mounting))
    found: list[str] = []
    for i in range(int(seq.duration * rate)):
        t = i / rate
        for d in det.update(ImuSample(t, *seq.at(t))):
            if d.kind in TRIPPING_KINDS:
                found.append(f"{d.t:.2f} s {d.reason}")
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per session")
    ap.add_argument("--rate", type=float, default=200.0, help="sample rate (Hz)")
    args = ap.parse_args()
    total_h = 0.0
    total_trips = 0
    print(f"{'session':<30}{'runs':>6}{'hours':>8}{'trips':>7}")
    for name, make in SESSIONS.items():
        hours = 0.0
        n = 0
        for seed in range(args.seeds):
            seq = make(seed)
            hours += seq.duration / 3600.0
            found = trips(seq, args.rate)
            n += len(found)
            for f in found:
                print(f"  {name} seed {seed}: {f}")
        print(f"{name:<30}{args.seeds:>6}{hours:>8.2f}{n:>7}")
        total_h += hours
        total_trips += n
    print(f"{'all':<30}{args.seeds * len(SESSIONS):>6}{total_h:>8.2f}{total_trips:>7}")
    return 1 if total_trips else 0


if __name__ == "__main__":
    sys.exit(main())
