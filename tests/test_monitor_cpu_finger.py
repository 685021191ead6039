"""``benchmarks/monitor_cpu.py``'s simulated finger presses reset until the monitor arms: each
press must start a sequence of its own, as a person's would. Pressed a second apart and held
0.6 s, a press was let go 0.4 s before the next, under the press patterns' 0.6 s gap: once the
loop missed one press's hold (a stall on a loaded machine, the press then taken as let go
before the chirp), every later press joined its sequence ("pressed twice", then a call for
help), none was a reset press again, and the benchmark's monitor never armed (its 120 s
timeout, in a CI run)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from firmware.presses import ResetButtonPatterns, ResetPress

ROOT = Path(__file__).resolve().parent.parent
LOOK_S = 0.01
"""The loop looks at the button every wake (100 a second at 200 Hz, two samples a wake)."""


def benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "monitor_cpu_finger", ROOT / "benchmarks" / "monitor_cpu.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_after_a_press_whose_hold_the_loop_missed_the_next_presses_are_reset_presses() -> None:
    bench = benchmark()
    held, apart = bench.PRESS_HELD_S, bench.PRESS_APART_S
    patterns = ResetButtonPatterns()
    presses = [n * (held + apart) for n in range(4)]  # while the worn check still refuses
    edges = sorted([(t, True) for t in presses] + [(t + held, False) for t in presses])
    end = presses[-1] + held + apart
    stalled = (LOOK_S, held + LOOK_S)  # no look while the first press is down
    looks = [n * LOOK_S for n in range(round(end / LOOK_S))]
    outcomes = []
    for now in looks:
        if stalled[0] <= now < stalled[1]:
            continue
        due = [edge for edge in edges if edge[0] <= now]
        del edges[: len(due)]
        outcomes += patterns.feed(due, now, armable=True)
    assert outcomes == [ResetPress(pressed_at=presses[0], held=False)] + [
        ResetPress(pressed_at=t, held=True) for t in presses[1:]
    ]
