"""How much Python does the monitor loop run a wake? Calls and bytecodes, counted, not timed.

``benchmarks/monitor_cpu.py`` measures CPU, which this shared machine's load moves by a
third from one minute to the next (the same code's sample-clock thread read 5.4 and 6.1 %
side by side at load 21). This counts instead, on the loop thread alone, which does not
move with the load: the monitor as that benchmark's child builds it (``interrupt:2`` at
200 Hz, the watchdog hook, the session runner, the simulated chip and bus), armed by a
simulated finger, then over ``--wakes`` loop iterations once ARMED:

* every function call (cProfile), by where its code lives: the firmware (``firmware``,
  ``hal``, ``core``), the simulation (``sim``: what a Pi's smbus2 and lgpio replace),
  gpiozero, the rest of Python, and C builtins from anywhere;
* then, over as many more wakes, every bytecode run in the firmware's own frames
  (``sys.settrace`` with opcode events, only in those frames), by file.

Neither counts what compiled code does (the mypyc detector, ``struct``, the kernel), nor
what the chip's sample-clock thread runs (the data-ready edge's dispatch): those stay the
CPU benchmark's. The counters slow the loop, so the monitor runs at SCHED_FIFO as the unit
does (as root: ``chrt``), and a count whose loop left ARMED (a heartbeat gap on a starved
host) is refused. ``--tree`` counts another checkout with this script (``git worktree add
/tmp/before main``: before and after, each counted alone).

The window recorder packs two samples a row; a wake's pair starts a row, or (after an odd
batch) straddles two, which costs two calls more (``WindowRecorder.add``): the phase is
printed, and counts are compared between runs in the same phase.

    chrt --fifo --reset-on-fork 20 .venv/bin/python benchmarks/monitor_calls.py \\
        [--wakes 2000] [--tree /tmp/before] [--lines]

Prints figures; asserts nothing. Figures are in ``benchmarks/monitor_cpu.py``'s docstring.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
WARM_S = 3.0
"""Seconds ARMED before counting: the arming's own work is not counted."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wakes", type=int, default=2000, help="wakes counted (each count)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to count")
    parser.add_argument("--lines", action="store_true", help="also the 40 busiest lines")
    args = parser.parse_args()
    tree: Path = args.tree.resolve()
    sys.path[:0] = [str(tree), str(ROOT / "benchmarks")]
    if TYPE_CHECKING:  # the same file, under the name the type check gives it
        from benchmarks import monitor_cpu
    else:
        import monitor_cpu  # this tree's: the same child setup for any --tree

    from core.clock import RealClock
    from core.logsetup import logging_off_this_thread, setup_logging
    from firmware.app import build_app, favour_realtime_thread
    from firmware.config import load_config
    from firmware.monitor import Monitor
    from firmware.safety import SafetyState
    from firmware.session.runner import attach_session, detach_session
    from firmware.watchdog import ServiceWatchdog
    from sim import backends as sim_backends

    if not Path(sys.modules["firmware"].__file__ or "").is_relative_to(tree):
        raise RuntimeError(f"firmware was not imported from {tree}")
    folder = Path(tempfile.mkdtemp(prefix="retroguard-calls-"))
    os.chdir(folder)
    Path("config.toml").write_text(monitor_cpu.CONFIG.format(pacing="interrupt", per_wake="2"))
    setup_logging()
    monitor_cpu.load_simulation_without_metadata()
    favour_realtime_thread()
    clock = RealClock()
    app = build_app(load_config("config.toml"), clock)
    app.monitor.on_iteration.append(ServiceWatchdog.from_env())
    runner = attach_session(app, control_socket=str(folder / "session.sock"))
    finger = app.gpio.button_sim  # type: ignore[attr-defined]
    rig = monitor_cpu.imu_rig(sim_backends, app.imu)
    assert finger is not None and rig is not None
    firmware_roots = tuple(str(tree / name) + os.sep for name in ("firmware", "hal", "core"))
    ops: collections.Counter[str] = collections.Counter()
    lines: collections.Counter[tuple[str, int]] = collections.Counter()

    def opcode(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            ops[frame.f_code.co_filename] += 1
            lines[(frame.f_code.co_filename, frame.f_lineno)] += 1
        return opcode

    def enter(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename.startswith(firmware_roots):
            frame.f_trace_opcodes = True
            return opcode
        return None

    profile = cProfile.Profile()
    stop = threading.Event()
    phases = ["warm", "calls", "bytecodes", "done"]
    armed_at, next_press, wakes = -1.0, 0.0, 0
    left = ""
    recorder = app.controller._recorder
    straddling: dict[str, set[bool]] = {"calls": set(), "bytecodes": set()}

    def count(monitor: Monitor) -> None:
        # Press at STANDBY each second (the worn check measures first), as monitor_cpu does.
        nonlocal armed_at, next_press, wakes, left
        finger.poll()
        state = monitor.controller.state
        now = clock.monotonic()
        if state is not SafetyState.ARMED:
            if phases[0] != "warm":
                left = f"{state.value}: {monitor.controller.reason}"
                stop.set()
            elif state is SafetyState.STANDBY and now >= next_press:
                next_press = now + 1.0
                finger.press_at(now, now + 0.6)
            return
        if armed_at < 0:
            armed_at = now
        if phases[0] == "warm":
            if now - armed_at >= WARM_S:
                phases.pop(0)
                profile.enable()
            return
        straddling[phases[0]].add(bool(recorder._group))
        wakes += 1
        if wakes < args.wakes:
            return
        wakes = 0
        if phases.pop(0) == "calls":
            profile.disable()
            sys.settrace(enter)
        else:
            sys.settrace(None)
            stop.set()

    app.monitor.on_iteration.append(count)
    with logging_off_this_thread():
        try:
            app.start()
            app.monitor.run(stop=stop)
        finally:
            sys.settrace(None)
            profile.disable()
            runner.stop(clock.monotonic())
            detach_session(app, runner)
            app.close()
    if left:
        print(f"refused: the loop left ARMED while counting ({left})", file=sys.stderr)
        return 1
    report(tree, args.wakes, profile, ops, lines if args.lines else None)
    for name, seen in straddling.items():
        phase = " and ".join(
            "straddling two rows" if each else "starting a row" for each in sorted(seen)
        )
        print(f"window recorder, the {name} count: each wake's pair {phase}")
    return 0


def report(
    tree: Path,
    wakes: int,
    profile: cProfile.Profile,
    ops: collections.Counter[str],
    lines: collections.Counter[tuple[str, int]] | None,
) -> None:
    def area(filename: str) -> str:
        if filename == "~":
            return "C builtins (any area)"
        for name in ("firmware", "hal", "core"):
            if filename.startswith(str(tree / name) + os.sep):
                return "firmware (firmware, hal, core)"
        if filename.startswith(str(tree / "sim") + os.sep):
            return "simulation (sim)"
        if filename.startswith(str(ROOT / "benchmarks")):
            return "this benchmark"
        return "gpiozero" if "gpiozero" in filename else "rest of Python"

    calls: collections.Counter[str] = collections.Counter()
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (filename, _, _), figures in stats.items():
        calls[area(filename)] += figures[1]
    print(f"{tree}: the loop thread, ARMED, interrupt:2 at 200 Hz, {wakes} wakes a count")
    print("function calls a wake:")
    for name, n in sorted(calls.items()):
        print(f"  {n / wakes:8.2f}  {name}")
    print(f"  {sum(calls.values()) / wakes:8.2f}  in all")
    print("firmware bytecodes a wake, by file:")
    for filename, n in ops.most_common():
        print(f"  {n / wakes:8.1f}  {Path(filename).relative_to(tree)}")
    print(f"  {sum(ops.values()) / wakes:8.1f}  in all")
    if lines is not None:
        print("the busiest lines, bytecodes a wake:")
        for (filename, line), n in lines.most_common(40):
            print(f"  {n / wakes:8.1f}  {Path(filename).relative_to(tree)}:{line}")


if __name__ == "__main__":
    sys.exit(main())
