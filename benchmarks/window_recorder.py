"""What recording the IMU around trips costs the real-time loop (firmware/windows.py).

Per sample: :meth:`WindowRecorder.add` at 200 Hz, with no recording under way
(walking) and with one (after a trip). Once per recording: :meth:`finish`
(join and zlib, done while the relay is released) and, once per fall from a
detector that cannot say when its landing was, :meth:`impact_before` (the
monitor's own detector says: no search). Each is timed over many repetitions on one core and
the best of five runs is printed (the loop's period is 5,000 us at 200 Hz).

    .venv/bin/python benchmarks/window_recorder.py

Prints figures; asserts nothing.
"""

from __future__ import annotations

import math
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.protocol.events import Event, EventType  # noqa: E402
from core.samples import ImuSample  # noqa: E402
from firmware.windows import WindowRecorder  # noqa: E402

RATE = 200.0


def samples(seconds: float, start: float = 0.0) -> list[ImuSample]:
    out = []
    for i in range(int(seconds * RATE)):
        t = start + i / RATE
        out.append(ImuSample(t, 0.1 * math.sin(t), 0.02, 0.98, 3 * math.sin(5 * t), 1.0, -0.5))
    return out


def best_us(stmt: Callable[[], object], number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e6


def main() -> int:
    walk = iter(samples(60.0))
    recorder = WindowRecorder(RATE, 16.0, 2000.0)
    per_sample = best_us(lambda: recorder.add(next(walk)), 12_000, repeat=1)
    print(f"add(), no recording: {per_sample:.2f} us/sample")
    trip = Event.now(EventType.STUMBLE, "bench", 60.0, "TRIPPED", "bench")
    end = 60.0 - 1 / RATE
    recorder.start(trip, end, end, (0.0, 0.0, 1.0))
    after = iter(samples(10.0, start=60.0))
    per_sample = best_us(lambda: recorder.add(next(after)), 2_000, repeat=1)
    print(f"add(), recording: {per_sample:.2f} us/sample")
    (done,) = recorder.take_all()
    print(f"finish(): {best_us(lambda: recorder.finish(done), 50):.0f} us per recording")
    imu = recorder.finish(done)
    print(f"  {imu.count} rows from {imu.start_s:+.1f} s, {len(imu.samples):,} B compressed")
    t = 70.0 - 1 / RATE
    print(
        f"impact_before(): {best_us(lambda: recorder.impact_before(t, 9.99), 200):.0f} us per fall"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
