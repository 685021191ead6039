"""What does the monitor cost at 200 Hz, polling the FIFO against waiting on the data-ready
interrupt? CPU (``/proc`` user + sys) and memory of the monitor process, side by side.

One monitor per mode runs *at the same time*, so both windows see the same
host load (the development machine is shared): each as ``retroguard run``
would (its own process, the courier as a child process, heartbeat relay
drive on simulated pins, the simulated MPU-6050 on a simulated I2C bus,
SCHED_FIFO reset-on-fork like the unit), armed by a simulated finger. After
a warm-up the parent reads each monitor's user + system time from
``/proc/<pid>/stat`` at the start and end of a window (default 60 s), and
its RSS from ``/proc/<pid>/status``. The courier is a separate process and
is not counted. ``--modes interrupt:2`` runs ``samples_per_wake = 2`` (the default since
issue 15), plain ``interrupt`` one read per pulse; by default the benchmark runs ``poll``
(the fallback, and how the monitor read before item 8) and ``interrupt:2`` (as shipped).

What batching costs is measured, not claimed: for every sample decided in the window, the
time from the chip taking it to the call that decides it (the heartbeat edge, and a trip's
release, come in that same call), as p50 / p99 / max (0.1 ms bins).

What this measures, honestly: the "hardware" runs inside the monitor
process. The chip model answers every bus transaction and computes every
sample in Python; with interrupt pacing a thread plays the chip's sample
clock and moves the mock INT pin, whose edge reaches the firmware's
callback through gpiozero's own dispatch. The process figure includes all
of that. The breakdown times the chip model itself (``thread_time`` around
its bus answers, and the sample-clock thread's CPU from ``/proc``) and the
"firmware estimate" subtracts it, keeping what a Pi would also pay: the
driver, the fake bus's per-transaction Python (a Pi pays smbus2, a system
call and the transfer instead — hence the transactions per second, which
carry over), the edge dispatch to the callback (lgpio's callback thread on
a Pi), the decision and everything else the loop does. So the figures
compare the pacings fairly on this machine; they are not a Pi's figures (a
Pi Zero 2 W core is several times slower).

The estimate also leaves out what only this benchmark runs, each timed and
shown on its own line: the models of the circuit outside the Pi (the relay's
hold circuit and latch hearing every heartbeat edge, the contact-sense wire
settled on every read of its pin: ``sim.relay_hardware``), the benchmark's
own hook (the simulated finger that arms once) and latency probe (below),
the chip's own clock looking for its next interrupt after it moved INT, and
the timing itself. Each timed call costs two ``thread_time()`` calls and a
wrapper (about 1.1-1.5 µs here in a warm loop); the child measures that cost on
the loop thread after the window and subtracts it per timed call. Only what the
estimate subtracts is timed by default (the chip's bus answers, the circuit's
models, the benchmark's hook and probe: some ten calls a wake); the decision
and the session runner, which the estimate keeps, are timed with
``--breakdown`` only, since timing them could only add the observer's cost to
the figure.

That correction is short, and the estimate errs against the firmware: in the
loop a timed call costs several times what the warm calibration loop says
(each ``thread_time()`` is a system call, and the code after it runs colder).
An untimed twin of the child (every wrapper taken out), side by side with the
timed one, ran its loop thread 0.96 % of a core lower for 14 timed calls a
wake, about 7 µs a call against the 1.8 µs subtracted: some 0.5-0.7 % of the
estimate is the benchmark's own timing. ``--breakdown`` times five parts
more (the wait for the wake, the IMU driver, the decision, the loop hooks, the
session runner, and shows the rest), which raises the estimate: use it to find
where the loop's time goes, not for the figure the target is checked on.

This machine's speed moves under the benchmark: the same tree's estimate read
1.4 % in one minute and 2.1 % in the next with the load average at 0.0, and
every part moved with it (the chip model's sample-clock thread, the same code
in every run, by as much). Load from the host's other tenants only ever adds,
so ``--repeat N`` measures N times, one run after another, and sums each mode
up by its lowest and median estimate; the target is read on the median of
runs at idle, and a comparison between trees on runs side by side (each run's
ratio), never on one run against another.

The RSS includes the simulation's own modules and state (``sim``: the chip,
bus and pin models), but not the pins' histories: ``sim.backends`` keeps thousands of
changes for tests, which nobody reads here (0.8 MB once filled; :data:`PIN_HISTORY`). Not
``importlib.metadata`` (with
``email``, ``zipfile``, ``csv``: 1.3 MB and more), which only the simulated
backends' entry-point lookup would load (:func:`hal.backends.load_backend`)
and a Pi's monitor, on the real drivers, never imports
(:mod:`hal.gpiozero_import`): the child hands the HAL the simulated backends
directly (:func:`load_simulation_without_metadata`). It loads what
``retroguard run`` has loaded besides the monitor (its command line read by the
launcher's own parser, with ``argparse``) and nothing of the parent's (``tempfile``, with
``shutil``, ``bz2`` and ``lzma``: 0.9 MB, is the parent's only). The child imports this
module from its bytecode (:data:`CHILD`), as the service imports its modules: run as a
script, compiled from source in the child, it left some 1.2 MB of the compiler's freed memory
in the heap.

Each monitor runs what ``retroguard run`` runs on the loop: the systemd
watchdog hook and the guided-session runner (its press patterns, its LED
interval, its gait measurement thread) as well as the monitor itself, with its log records
written by a thread of their own and, in a tree that does, the start-up's freed memory given
back before the loop (:func:`firmware.app.release_startup_memory`).

``--before TREE`` runs every mode a second time, at the same time, from
another checkout of the project (``git worktree add /tmp/before main``, say):
before and after side by side under the same host load, which a shared
machine's load average makes the only fair comparison. The trees share this
virtualenv; a tree without the compiled detector (``firmware/detection/compiled``)
runs the pure-Python one, so build it there or copy it in. A tree from before parts of item 8
runs without them, as it shipped: with no log writer thread, its start-up memory kept, and
from before interrupt pacing (the ``irq`` merge) polling whatever ``--modes`` says (its
column's "paced by" says poll).

    .venv/bin/python benchmarks/monitor_cpu.py [--seconds 60] [--modes poll interrupt:2]
        [--before /tmp/before] [--breakdown] [--repeat 5]

Prints figures; asserts nothing (speed is not a test).

Figures (issue 15 item 8, 2026-12-02, ``--seconds 60 --modes poll interrupt interrupt:2
--before`` main, six monitors side by side, load 1.8; compiled detector in both trees),
firmware estimate before → after the idle session runner's shortcut: poll 5.55 → 5.04 %,
interrupt 6.24 → 5.69 %, interrupt:2 3.95 → 3.70 %; the session runner hook 0.82 → 0.37 %
(interrupt) and 0.44 → 0.18 % (interrupt:2). The default went from ``interrupt`` (one read a
pulse) to ``interrupt:2``: 6.24 → 3.70 %, 0.59 times. Capture to decision, mean / p99 / max:
0.4 / 3.0 / 13.8 ms with a read a pulse, 2.9 / 5.7 / 16.1 ms with two (half the samples wait
one period more); heartbeat gaps p99 10.4 ms, max 20.6 ms, against the 50 ms hold. RSS
30.8-31.2 MB in both trees (±0.3 MB from run to run). The absolute figures depend on how
many monitors share the two cores: four side by side (two modes) gave interrupt:2 2.3-2.5 %
and interrupt 3.2-3.4 % under a heavier load average.

Figures (issue 15 item 8, the loop's unaccounted 2 %, 2026-12-02, ``--seconds 60 --modes
interrupt:2 --before`` main, compiled detector in both trees, one run each). Where a wake's
~200 µs outside the timed parts went (``--breakdown``, µs a wake at 100 wakes a second, main
→ this change): the wait for the wake 69 → 33 (a bare thread wake costs the woken thread
30-37 µs of CPU on this machine, 58 µs at SCHED_FIFO: that is the kernel's, not Python's),
the driver's own Python 68 → 59, the loop hooks 50 → 44, the rest (buttons, contact, the
loop, the outside of the timing wrappers) 50 → 48; and the benchmark's own: its latency probe
(about 13 µs, counted in the estimate until now), the chip model's reschedule after moving INT
(timed as the edge until now) and its timing (about 7 µs a timed call in the loop, 1.7
subtracted: the untimed twin above). Cut: the status LED and the buzzer write only when their
pattern's span ends (``hal.gpio._PatternOutput.update``), the data-ready wakeup without
``contextlib.suppress``, the driver's samples without ``ImuSample.__new__``'s frame. Firmware
estimate before → after: 5.42 → 5.18 % (0.96 times, load 3.0), 4.71 → 4.49 % (0.95, load
1.6), with ``--breakdown`` 5.09 → 4.16 % (0.82, load 1.9); ``interrupt:2`` on main with the
benchmark as it was, side by side with this one on this change: 5.51 → 5.13 % (0.93). RSS
31.2 MB in both trees; heartbeat gaps p99 10.5 ms, max 13.5-30 ms. Still short of 2 %: what
is left is spread thin (the decision about 100 µs a wake, half of it the detector; the edge
dispatch about 80 µs a wake, a second thread woken at every edge, lgpio's on a Pi).

Figures (issue 15 item 8, the monitor's RSS, 2026-12-03, ``--seconds 60 --modes interrupt:2
--before`` main, compiled detector in both trees, this benchmark in both). RSS main → this
change: 29.7 → 26.6 MB (peak 27.2; load 2.4), 29.6 → 26.6 MB (peak 27.1; load 2.5). The
benchmark as it was gave main 32.3 MB: 1.2 MB of that was its own source compiled in the
child, 0.8 MB the simulated pins' histories (both taken out above, in both trees). Cut from
the monitor: gpiozero's package ``__init__`` (every device it has, 1.1 MB) and ``colorzero``
(0.6 MB) until asked for (:mod:`hal.gpiozero_import`), ``logging.handlers`` with ``pickle``
(0.5 MB, :mod:`core.logsetup`), ``shutil`` with ``bz2`` and ``lzma`` (0.6 MB: the CLI's help
formatter, the voice's ``on_path``), the pure detector beside the compiled one, and the
start-up's freed heap given back (``malloc_trim``, 1.3 MB). Firmware estimate main → this
change, the same runs: 2.05 → 2.04 %, 2.71 → 2.85 % (load rising during the run: the two
trees differ by less than the machine's noise; main idle with the benchmark as it was:
2.14 %). Both trees' estimates lost the fake bus's timing, now only with ``--breakdown``
(three timed calls a wake whose cost the correction underestimates). The LED is stepped
every 25 ms (``firmware.status_light``), a few µs a wake; heartbeat gaps p99 10.1-10.3 ms,
max 10.4-11.0 ms.

Figures (issue 15 item 8, per-wake cuts, 2026-12-03, ``--seconds 60 --modes interrupt:2
--before`` main, compiled detector in both trees). The column run second pays for it: on an
idle machine (load 0.5-0.8) the second column's estimate was 0.28 % higher whichever tree
it was (main then this change 1.90 / 2.18 %, this change then main 2.06 / 2.34 %; the
sample-clock thread, the same code in both, 6 % higher too); under load 2.6-2.9 the two
orders gave main 2.41 / this change 2.28 % and this change 2.27 / main 2.15 %. Run both
orders (this script from the other tree, ``--before`` this one) and compare the two. Cut:
the idle session runner's tick with nothing due (hook 0.12-0.19 → 0.07-0.10 %), a wake's
samples recorded in one call (``WindowRecorder.add_batch``), the burst's snapshot compared
once, the reset button's patterns asked only while a press is under way. Net, both orders
together: within the noise (ratio 1.00, the session hook's ~0.06 % the one part that shows
in every run). One tree alone, sequentially: this change 2.08 %, main 2.51 % (the load
changing between runs). The three I2C transactions a wake stay (count, status with the data
registers, burst): the status read carries the overflow flag and the snapshot the burst is
checked against, and skipping the count rests on ``imu.uncounted_reads``' unmeasured chip
timing. RSS 25.7-25.8 MB; heartbeat gaps p99 10.1 ms, max 10.2-23.9 ms (under load).

Figures (issue 15 item 8, what the data-ready edge's dispatch is worth at most, 2026-12-04,
``--seconds 60 --modes poll interrupt:2 --before`` a scratch tree whose ``PollPacing`` slept
two sample periods on a monotonic timer and then read the FIFO: no INT edge, no callback, a
wake every two samples, the least any pacing can do). Firmware estimate, four monitors side
by side: timer 3.55 %, ``interrupt:2`` 4.47 / 4.26 % (0.81-0.83 times), the one-sample poll
5.78 %. So no rework of the edge's path — the loop reading the kernel's queued line events
itself, with no callback thread — can save more than about a fifth; capture to decision
grew from 3.0 to 4.9 ms mean. Not built. The same day, the tree of the stop before
(8d51817) and this one side by side: 4.44 and 4.29 % (0.97; load 0.9), where nearly the
same code read 1.9-2.2 % on 2026-12-03 (above): the machine moved, not the code.

Figures (issue 15, where the loop's Python goes, sampled, 2026-12-06). py-spy 0.4.3, kept out
of the project (``pip install --target /tmp/pyspy py-spy``), on the ``interrupt:2`` child of a
``--seconds 150`` run: ``chrt -f 30 py-spy record --pid PID --rate 1000 --idle --threads
--format raw --nonblocking --duration 130``. At normal priority on the loaded machine it fell
10 s behind and took some 30 samples a second instead of 1000; its idle test took the loop's
lock wait for work, so the wait's frames were dropped afterwards, not by ``--idle=false``.
Of 128 090 loop-thread samples, 1 905 (1.5 %) were outside the wait for the wake: the compiled
detector's ``update`` 12 % of them, this benchmark's timing wrappers and latency probe 20 %,
the simulation (fake bus, chip, relay and pin models) 14 %, and the firmware's and HAL's own
Python the other 53 %, spread over dozens of lines, none above 3.6 %: the hook calls
(``hook(self)``: each hook an instance's ``__call__``) 3.6, the courier link's ``poll(0)``
system call 2.6 (and its caller 1.4), the contact read and its clock 1.9 + 1.2, the call to
the controller 1.6, the detector-failure check 1.4, the session runner's tick 1.3, the worn
check 1.3, the state test 0.9, the pacing's wait and read 0.8 + 0.9, each of the rest 0.8 or
less. The edge's dispatch (76 samples on the chip's clock thread under gpiozero's
``_call_when_changed``): 56 of them the ``WeakMethod`` gpiozero keeps a bound method as, which
builds the method anew at every edge. Load 4-13 while sampling.

Two cuts from that list, behaviour-neutral, were measured and not kept (a ratio below 1 in
both runs was the rule; branch ``cpu26-rejected``): the edge callback handed to gpiozero as a
``functools.partial`` (kept by a plain weak reference, called in C): firmware estimate 3.27
→ 3.11 % (0.95, load 8.0) and 3.17 → 3.20 % (1.01, load 11.9), the other column order 3.86
→ 3.66 % (0.95, load 13.6), its edge line lower in all three (0.83-0.88 times), one pulse
through the mock pin 1.60-1.66 → 1.41-1.43 µs of CPU; and ``WindowRecorder.add_batch``'s
one-call path for a pair that starts half way through a row (the phase an odd first batch
leaves for good; the sampled run had it): 2.80 → 2.66 % (0.95, load 10.3) and 2.43 → 2.48 %
(1.02, load 5.6), the call alone 1.82 → 1.60 µs a misaligned wake and 0.07 µs slower an
aligned one. The same tree against itself (A/A, load 11.3): 3.00 and 3.98 %, 1.33 times: at
this machine's load a side-by-side run does not resolve what is left (cuts of a few tenths
of a µs a wake, a few hundredths of a per cent of a core). So the estimate at idle stays
where it was, 2.1-2.6 % (main under load 5-13 here: 2.43-3.27 %): 2 % is not reached by
trimming the loop's Python; what is left in one piece is the detector, the kernel's wake
and the link's one ``poll`` a wake.

Figures (issue 15, the observer and the machine, 2026-12-06, ``--seconds 60 --modes
interrupt:2``, compiled detector, the loop's code as at the stop before). Five runs one after
another at load 0.0-0.2: firmware estimate 1.50, 1.48, 1.54, 1.39, 2.05 % (process 3.0-3.3 %,
loop thread 1.5-1.6 %, RSS 26.1 MB, heartbeat gaps p99 10.2 ms, max 12.7 ms); the run after
them (``--breakdown``, load 0.0) read every part about twice as high, the sample-clock
thread 2.87 % against 1.48 %: the machine, not the code. Timing only what the estimate
subtracts (12 → 10 timed calls a wake), this benchmark against the one before it, same
firmware, started together, three pairs at load 4.7-8.9: 2.42 → 2.41, 3.26 → 3.22, 3.49 →
3.42 % (0.98-1.00): the two calls were worth a few hundredths of a per cent.

Figures (issue 15, fewer calls a wake, 2026-12-07). At load 17-24 this benchmark does not
resolve a change of a few per cent (the sample-clock thread, the same code in both columns,
5.40 against 6.10 %), so the change is counted as well: ``benchmarks/monitor_calls.py``
counts, on the loop thread over 2,000 ARMED wakes, every function call (cProfile) and every
bytecode run in the firmware's own frames, which the host's load does not move (the same
figures to the hundredth in two runs of each tree). Main → this change, each wake's pair
starting a row: firmware Python calls 62.79 → 56.21 a wake (0.90 times), all calls (with the
simulation's 117, gpiozero's 19 and C builtins') 315.6 → 312.0, firmware bytecodes 2,558 →
2,504 (0.98 times). Cut: the samples' range, time and frozen checks in one call a wake
(``SafetyController._check_batch``), the detector's failure flag an attribute, the heartbeat
edge and the burst's unpacker without a call of their own, the decode without a
comprehension's frame, the status LED's "not due" answered in its hook, the link's empty
poll without a call to receive. (The helper's first cut also inlined the plausibility
check's frame and temperature allowance and the idle session tick's voice and plans: 52.20
calls a wake, but each a formula or a step written twice for a gain the CPU cannot show, so
they stayed in their one place.) Firmware estimate, ``--seconds 20 --modes
interrupt:2 --before``, one run each order: main 5.04 / this change 5.18 % (load 21.7) and
this change 3.90 / main 4.02 % (load 24.4): the column run second pays, the change is within
the noise (loop thread 4.91 / 5.03 and 3.64 / 3.70 %, 491-503 and 364-370 µs a wake; those
runs had the first cut). What the counts say is left: 2,504 firmware bytecodes a wake, spread
as the driver 539 and its checks 201, the safety controller 480, the worn check 250, the
window recorder 221, the loop 187, the hooks some 330 (session runner 161, link 61, LED 50,
app 27, watchdog 25); no line above 49 (the hooks' loop).
A warm call of any hook costs 0.1-0.5 µs here, while the loop
thread spends some 300 µs of Python a wake: the loop runs cold (every cache refilled after
10 ms of other threads), so what a wake costs follows the code and data it touches more than
its bytecodes. Halving that is not a matter of trimming; what would is compiling the pure
per-wake parts as the detector is: the worn check's ``update_batch`` under mypyc (a scratch
build, not kept) ran a pair in 0.21 µs against 1.17 µs warm (5.6 times), and
``firmware/windows.py`` does not compile as it is (mypyc refuses its
``@runtime_checkable`` ``KnowsUpright`` protocol).

Figures (issue 15 item 8, the per-wake parts compiled, 2026-12-08; measured on a branch, not
kept). The sensor-worn check compiled by mypyc as the detector is (a table of compiled
modules, each stamped with its own sources' digest, the pure module where a copy is absent or
stale). ``monitor_calls.py``: firmware bytecodes a wake 2,504 → 2,254, Python calls 56.21 →
54.07. Firmware estimate, ``--seconds 20 --modes interrupt:2``, six runs side by side at load
11-19, compiled / main: with ``--before`` main 4.37 / 5.02 (0.87), 5.06 / 4.88 (1.04), 3.75 /
4.00 (0.94); main's benchmark with ``--before`` the branch 4.51 / 4.61 (0.98), 4.76 / 4.63
(1.03), 4.74 / 4.90 (0.97): median 0.975, within the noise (the sample-clock thread, the same
code in both columns, moved 0.87-1.10 times between them). RSS +0.3 MB (the larger compiled
library). Warm, a wake's pair (load 15): the worn check 1.07 → 0.09 µs, about a microsecond of
a wake the loop thread spends some 440 µs on at that load. The other candidates were built
and timed the same way: the window recorder (its protocols moved out, it compiles) 5.56 →
4.37 µs a pair, the driver's decode 1.27 → 3.57 µs (slower: mypyc calls ``tuple.__new__``
generically), the controller's per-sample range, time and frozen checks 2.24 → 1.49 µs. None
was kept: a second compiled unit (its build, its stale-copy refusal, its identity tests) for
no change the benchmark can see. The loop's time is not in its Python's arithmetic: warm, the
worn check ran its 250 bytecodes in about 1 µs, so the firmware's ~2,500 a wake are some tens
of µs, against the ~440 µs a wake measured; the rest is the wake-up (the edge's thread, the
GIL's hand-over) and, most likely, running cold after each 10 ms asleep.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import gc
import itertools
import json
import math
import os
import select
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REALTIME_PRIORITY = 20
"""The unit's CPUSchedulingPriority (SCHED_FIFO, reset on fork: the courier runs normally)."""
TARGET_CPU_PCT = 2.0
TARGET_RSS_MB = 30.0
TREE_VARIABLE = "RETROGUARD_BENCH_TREE"
"""Which checkout a monitor child imports (``--before``)."""
BREAKDOWN_VARIABLE = "RETROGUARD_BENCH_BREAKDOWN"
"""Set: the child also times the wait, the driver and the loop hooks (``--breakdown``)."""
TIMED_PARTS = (
    "pacing",
    "driver",
    "hooks",
    "decision",
    "chip_bus",
    "bus",
    "session",
    "circuit",
    "bench",
    "calibration",
)
"""What the child times on the loop thread (see :func:`rows` for what each is)."""
SILICON_PARTS = ("chip_bus", "circuit", "bench")
"""Timed parts a Pi does not run: the estimate subtracts them (and only their timing's outside)."""
CHILD = (
    "import sys; sys.path.insert(0, {folder!r}); import monitor_cpu; "
    "sys.exit(monitor_cpu.monitor_child(*sys.argv[1:3]))"
)
"""A monitor child's command (``python -c``; its arguments: the config and the result file)."""
WARM_UP_S = 3.0
"""After arming, before the window: start-up work (imports, the courier, arming) is not measured."""
PRESS_HELD_S = 0.6
"""How long the simulated finger holds reset: past the chirp (firmware.presses.ARM_HOLD_S)."""
PRESS_APART_S = 1.2
"""From letting go to the next press while the monitor has not armed: twice the press
patterns' gap (firmware.presses.PATTERN_GAP_S), so each press starts a sequence of its own."""

CONFIG = """\
[device]
id = "cpu-1"
[imu]
backend = "simulated"
sample_rate_hz = 200
pacing = "{pacing}"
samples_per_wake = {per_wake}
[gpio]
backend = "simulated"
[storage]
database = "events.db"
[logging]
level = "warning"
"""


def snapshot(
    app: Any,
    rig: Any,
    edges: Sequence[float],
    costs: dict[str, float],
    timed_calls: dict[str, int],
) -> dict[str, Any]:
    """Counters of the monitor's own parts, taken on the loop thread."""
    stats = app.monitor.stats
    sample_clock = getattr(rig.chip, "sample_clock", None)  # none: a tree that only polls
    return {
        "t": time.monotonic(),
        "loop_cpu_s": time.thread_time(),
        "pacing_cpu_s": costs["pacing"],
        "driver_cpu_s": costs["driver"],
        "hooks_cpu_s": costs["hooks"],
        "decision_cpu_s": costs["decision"],
        "session_cpu_s": costs["session"],
        "bus_cpu_s": costs["bus"],
        "circuit_cpu_s": costs["circuit"],
        "bench_cpu_s": costs["bench"],
        "timed_calls": dict(timed_calls),
        "iterations": stats.iterations,
        "samples": stats.samples,
        "empty_reads": stats.empty_reads,
        "bus_transactions": sum(rig.bus.counts.values()),
        "chip_bus_cpu_s": costs["chip_bus"],
        "sim_thread_cpu_s": thread_cpu_s(getattr(sample_clock, "native_id", None)),
        "edge_cpu_s": getattr(sample_clock, "edge_cpu_s", 0.0),
        "edges": len(edges),
    }


def load_simulation_without_metadata() -> None:
    """Give the HAL the simulated backends without the entry-point scan that finds them.

    ``hal.backends.load_backend`` looks backends up with ``importlib.metadata``, which brings
    ``email``, ``zipfile`` and ``csv`` (1.3 MB and more of RSS): only the simulation asks for
    a backend by name, a Pi's monitor on the real drivers never does. The same functions as
    the ``simulated`` entry points (``pyproject.toml``), so the RSS is the monitor's."""
    import hal.backends
    import hal.gpio_factory
    import hal.imu_factory
    from sim.backends import open_simulated_gpio, open_simulated_imu

    simulated = {
        (hal.backends.IMU_BACKENDS, "simulated"): open_simulated_imu,
        (hal.backends.GPIO_BACKENDS, "simulated"): open_simulated_gpio,
    }
    scan = hal.backends.load_backend

    def load_backend(group: str, name: str) -> Any:
        return simulated.get((group, name)) or scan(group, name)

    for module in (hal.backends, hal.gpio_factory, hal.imu_factory):
        module.load_backend = load_backend  # type: ignore[attr-defined]


PIN_HISTORY = 16
"""Changes each simulated pin keeps here. ``sim.backends`` keeps thousands for the tests that
look at a pin's last seconds (4,000 for the heartbeat's, 2,000 for INT's): nothing here reads
them (the benchmark records the heartbeat's edges itself), and filled they hold 0.8 MB that a
Pi's monitor does not have."""

LATENCY_BIN_S = 0.0001
LATENCY_BINS = 1000
"""Capture-to-decision latency histogram: 0.1 ms bins up to 100 ms (the last bin: more)."""


def latency_of_batch(batch: Sequence[Any], now: float, chip: Any, bins: array.array[int]) -> None:
    """Count each sample's wait from its capture by the chip to ``now`` into ``bins``.

    The chip took sample ``n`` of its run at ``origin + n * period`` (sim.mpu6050_sim); the
    driver's timestamp is later than that by less than a period (its grid is anchored to a
    read time: hal.mpu6050.FifoTimestamper), so the grid point at or below it is the capture."""
    origin, period = getattr(chip, "_run_origin", None), getattr(chip, "_run_period", 0.0)
    if origin is None:
        return
    last = len(bins) - 1
    for sample in batch:
        taken = origin + period * math.floor((sample.t - origin) / period + 1e-6)
        bins[min(last, max(0, int((now - taken) / LATENCY_BIN_S)))] += 1


def latency_figures(bins: Sequence[int]) -> tuple[float, float, float, float]:
    """(p50, p99, max, mean) in seconds (the quantiles: the upper edge of their bin; the mean
    of bin middles). With two samples a wake half the samples wait a period longer than the
    other half, so the median sits between the two groups: the mean says more there."""
    total = sum(bins)
    if not total:
        return 0.0, 0.0, 0.0, 0.0

    def quantile(q: float) -> float:
        seen = 0
        for n, count in enumerate(bins):
            seen += count
            if seen >= q * total:
                return (n + 1) * LATENCY_BIN_S
        return len(bins) * LATENCY_BIN_S

    top = max(n for n, count in enumerate(bins) if count)
    mean = sum((n + 0.5) * count for n, count in enumerate(bins)) * LATENCY_BIN_S / total
    return quantile(0.5), quantile(0.99), (top + 1) * LATENCY_BIN_S, mean


def timing_overhead(timed: Any, costs: dict[str, float], calls: int = 50_000) -> dict[str, float]:
    """What one timed call costs the loop thread: ``total`` seconds in all, ``inside`` of them
    within its own timing (already counted in the part it times)."""

    def nothing() -> None:
        pass

    wrapped = timed("calibration", nothing)
    started = time.thread_time()
    for _ in range(calls):
        nothing()
    bare = time.thread_time() - started
    started = time.thread_time()
    for _ in range(calls):
        wrapped()
    total = max(0.0, time.thread_time() - started - bare) / calls
    return {"total": total, "inside": costs["calibration"] / calls}


def thread_cpu_s(native_id: int | None) -> float:
    """User + system CPU seconds of one thread of this process (0 without one)."""
    if native_id is None:
        return 0.0
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def monitor_child(config_path: str, out_path: str) -> int:
    """The service's monitor, armed at STANDBY. SIGUSR1 starts the window, SIGUSR2 ends it
    (every monitor's, before any stops: one stopping at real-time priority would otherwise
    hold up the loops of those still in their window), SIGTERM stops the monitor.

    Runs the tree named by ``RETROGUARD_BENCH_TREE`` (this one by default)."""
    tree = Path(os.environ.get(TREE_VARIABLE, str(ROOT))).resolve()
    sys.path.insert(0, str(tree))
    from core import logsetup
    from core.clock import RealClock
    from core.logsetup import setup_logging
    from firmware import app as firmware_app
    from firmware.app import build_app, favour_realtime_thread
    from firmware.config import load_config
    from firmware.monitor import Monitor
    from firmware.safety import SafetyState
    from firmware.session.runner import attach_session, detach_session
    from firmware.watchdog import ServiceWatchdog
    from launcher.cli import build_parser
    from sim import backends as sim_backends
    from sim.backends import SimulatedGpio
    from sim.pins import ObservedMockPin

    if not Path(sys.modules["firmware"].__file__ or "").is_relative_to(tree):
        raise RuntimeError(f"firmware was not imported from {tree}")
    # What a tree from before some of issue 15 item 8's changes lacks (``--before`` an older
    # commit), it runs without, as that tree's own service did: its loop logging on the loop
    # thread, its start-up memory kept (below), its pins' full histories.
    logging_off_this_thread = getattr(logsetup, "logging_off_this_thread", contextlib.nullcontext)
    # As the service starts: `retroguard run --config FILE` read by the CLI's own parser (what
    # that loads, the service has loaded), not by this benchmark's.
    build_parser(["run"]).parse_args(["run", "--config", config_path])
    setup_logging()
    load_simulation_without_metadata()
    polls_only = without_unknown_pacing(config_path)
    config = load_config(config_path)
    favour_realtime_thread()
    clock = RealClock()
    app = build_app(config, clock)
    # As run_forever (firmware/app.py): the watchdog hook, then the session runner.
    watchdog = ServiceWatchdog.from_env()
    app.monitor.on_iteration.append(watchdog)
    runner = attach_session(app, control_socket=str(Path("session.sock").resolve()))
    gpio = app.gpio
    rig = imu_rig(sim_backends, app.imu)
    assert isinstance(gpio, SimulatedGpio) and gpio.button_sim is not None and rig is not None
    finger = gpio.button_sim
    for pin in gpio.factory.pins.values():
        if isinstance(pin, ObservedMockPin) and hasattr(pin, "limit_history"):
            pin.limit_history(PIN_HISTORY)
    stop = threading.Event()
    edges = array.array("d")  # 8 bytes an edge: the benchmark's own memory stays out of RSS
    marks: dict[str, dict[str, Any]] = {}
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    hold = gpio.relay.hold
    pressed = announced = False
    next_press = 0.0
    gc_pauses: list[float] = []
    gc_started = [0.0]
    costs = dict.fromkeys(TIMED_PARTS, 0.0)
    """Thread CPU seconds of parts of the loop (each timing costs two thread_time() calls)."""
    timed_calls = dict.fromkeys(TIMED_PARTS, 0)

    def timed(part: str, method: Any) -> Any:
        def run(*args: Any) -> Any:
            started = time.thread_time()
            try:
                return method(*args)
            finally:
                costs[part] += time.thread_time() - started
                timed_calls[part] += 1

        return run

    chip = rig.chip
    latency = array.array("q", bytes(8 * LATENCY_BINS))  # allocated before the window
    breakdown = bool(os.environ.get(BREAKDOWN_VARIABLE))
    # Only what the estimate subtracts is timed by default: each timed call costs the loop
    # several times what the correction takes off (see the docstring), so timing a part the
    # estimate keeps (the decision, the session runner) only adds the observer to the figure.
    decide = (
        timed("decision", app.controller.on_samples) if breakdown else app.controller.on_samples
    )

    measure_latency = timed("bench", latency_of_batch)  # the benchmark's own: not on a Pi

    def decide_and_time(batch: Sequence[Any], now: float) -> None:
        # Before deciding: how long each sample of the batch has waited since the chip took
        # it (the heartbeat edge and a trip's release come in this same call).
        if "start" in marks and "end" not in marks:
            # The app's clock, the one the chip and the driver stamp samples on (an older
            # tree's RealClock counts from its creation, not the host's origin).
            measure_latency(batch, clock.monotonic(), chip, latency)
        decide(batch, now)

    app.controller.on_samples = decide_and_time  # type: ignore[method-assign]
    # The chip model answering the bus (it computes lazily due samples too): silicon's work.
    chip.i2c_read = timed("chip_bus", chip.i2c_read)
    chip.i2c_write = timed("chip_bus", chip.i2c_write)
    hooks = app.monitor.on_iteration
    if breakdown:
        # The fake bus around the chip: its own Python is what smbus2 and the ioctl cost on a
        # Pi. Kept in the estimate: timed only here (three calls a wake whose timing the
        # correction underestimates, see the docstring).
        bus = rig.bus
        for name in ("read_byte_data", "write_byte_data", "read_i2c_block_data", "i2c_rdwr"):
            setattr(bus, name, timed("bus", getattr(bus, name)))
        # The loop's own hooks (the courier link, its requests, the status LED, the health
        # reports, the systemd watchdog) each timed as "hooks", the session runner as
        # "session", in the order the app set them (the runner goes before the link's poll).
        hooks[:] = [
            timed("session", hook) if hook is runner else timed("hooks", hook) for hook in hooks
        ]
        # The wait for the wake and the read after it; the driver's read on its own (the
        # bus under it is timed apart, so the driver's own Python is what is left of it).
        paced = getattr(app.monitor, "pacing", None)  # none: a tree that only polls
        if paced is not None:
            paced.read = timed("pacing", paced.read)
        imu = app.imu
        for name in ("read_batch", "read_signalled"):
            if hasattr(imu, name):
                setattr(imu, name, timed("driver", getattr(imu, name)))
    # The circuit outside the Pi: the models listening to the pins and settling on reads.
    for pin in gpio.factory.pins.values():
        if isinstance(pin, ObservedMockPin):
            pin._listeners[:] = [timed("circuit", listener) for listener in pin._listeners]
            if pin._read_hook is not None:
                pin.set_read_hook(timed("circuit", pin._read_hook))

    def time_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif "start" in marks:
            gc_pauses.append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(time_gc)

    def start_window(*_: object) -> None:
        marks.setdefault("start", snapshot(app, rig, edges, costs, timed_calls))

    signal.signal(signal.SIGUSR1, start_window)

    def end_window(*_: object) -> None:
        if "start" in marks:
            marks.setdefault("end", snapshot(app, rig, edges, costs, timed_calls))

    signal.signal(signal.SIGUSR2, end_window)

    def hold_and_record() -> None:
        edges.append(time.monotonic())  # each hold() is one heartbeat edge on the pin
        hold()

    gpio.relay.hold = hold_and_record  # type: ignore[method-assign]

    def arm_once(monitor: Monitor) -> None:
        # Press at STANDBY, again while the sensor-worn check still waits for a body; never
        # again once armed. Each press is let go more than the press patterns' gap
        # (firmware.presses.PATTERN_GAP_S, 0.6 s) before the next: closer, the presses were
        # one sequence, whose second and third are never reset presses ("pressed twice",
        # then a call for help under load), and the monitor never armed (120 s timeout).
        nonlocal pressed, announced, next_press
        finger.poll()
        state = monitor.controller.state
        now = clock.monotonic()
        if state is SafetyState.ARMED:
            pressed = True
        elif state is SafetyState.STANDBY and not pressed and now >= next_press:
            next_press = now + PRESS_HELD_S + PRESS_APART_S
            finger.press_at(now, now + PRESS_HELD_S)
        if state is SafetyState.ARMED and not announced:
            announced = True
            print("armed", flush=True)

    app.monitor.on_iteration.append(timed("bench", arm_once))
    # As run_forever: the loop's records written by a thread of their own, the start-up's
    # freed memory given back before the loop (in a tree that does).
    release = getattr(firmware_app, "release_startup_memory", lambda: None)
    with logging_off_this_thread():
        try:
            app.start()
            release()
            app.monitor.run(stop=stop)
            marks.setdefault("end", snapshot(app, rig, edges, costs, timed_calls))
            timing_cost = timing_overhead(timed, costs)
            if polls_only:
                pacing, pacing_check = "poll", f"{tree} has no interrupt pacing: polled the FIFO"
            else:
                pacing, (_, pacing_check) = app.monitor.pacing.mode, app.monitor.pacing.check()
        finally:
            runner.stop(clock.monotonic())
            detach_session(app, runner)
            app.close()
    start = marks.get("start", {}).get("edges", 0)
    window = edges[start : marks["end"]["edges"]]
    gaps = sorted(b - a for a, b in itertools.pairwise(window))
    result = {
        "marks": marks,
        "state": app.controller.state.value,
        "pacing": pacing,
        "pacing_check": pacing_check,
        "p99_gap_s": gaps[int(0.99 * (len(gaps) - 1))] if gaps else 0.0,
        "max_gap_s": gaps[-1] if gaps else 0.0,
        "gc_max_s": max(gc_pauses, default=0.0),
        "gc_count": len(gc_pauses),
        "timing_cost": timing_cost,
        "latency_s": latency_figures(latency),
        "detector": type(app.controller._detector).__module__,
        "breakdown": breakdown,
    }
    Path(out_path).write_text(json.dumps(result))
    return 0


def without_unknown_pacing(config_path: str) -> bool:
    """In a tree from before interrupt pacing (``--before`` an older commit, whose config
    refuses ``imu.pacing``), take the pacing keys out of the config: that tree's monitor polls,
    as it shipped. True when it did (the result says so)."""
    import dataclasses

    from hal.config import ImuConfig

    if "pacing" in {f.name for f in dataclasses.fields(ImuConfig)}:
        return False
    path = Path(config_path)
    kept = [
        line
        for line in path.read_text().splitlines(keepends=True)
        if not line.startswith(("pacing =", "samples_per_wake ="))
    ]
    path.write_text("".join(kept))
    return True


def imu_rig(sim_backends: Any, imu: Any) -> Any:
    """The simulated IMU's bus and chip: ``sim.backends.simulated_imu_rig`` where the tree
    has it, else found through the driver (a tree from before interrupt pacing)."""
    find = getattr(sim_backends, "simulated_imu_rig", None)
    if find is not None:
        return find(imu)
    bus = imu._bus
    (chip,) = bus._devices.values()
    return sim_backends.SimulatedImuRig(imu, bus, chip)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB: resident now, and the peak."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


def wait_for_line(process: subprocess.Popen[str], expected: str, timeout: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready and process.stdout.readline().strip() == expected:
            return
        if process.poll() is not None:
            raise RuntimeError(f"the monitor exited ({process.returncode}) before {expected!r}")
    raise RuntimeError(f"the monitor never said {expected!r}")


def measure(
    modes: list[str],
    seconds: float,
    realtime: bool,
    before: Path | None = None,
    breakdown: bool = False,
) -> dict[str, dict[str, Any]]:
    """Run one monitor per mode (and per tree) at the same time, so each window sees the same
    host load. With ``before``, mode ``m`` of that tree is reported as ``m before``."""
    import py_compile  # here, not at the top: the monitor children import this module
    import tempfile  # (tempfile, with shutil, bz2 and lzma: 0.9 MB)

    # The children import this module (its bytecode, written here once) rather than run it as
    # a script: compiled from source in the monitor's process, its 700 lines would leave some
    # 1.2 MB of the compiler's freed memory in the heap the service, which imports its modules
    # from bytecode, does not have.
    py_compile.compile(__file__, doraise=True)
    results: dict[str, dict[str, Any]] = {}
    runs = [(mode, ROOT) for mode in modes]
    if before is not None:
        runs = [run for mode in modes for run in ((f"{mode} before", before), (mode, ROOT))]
    with tempfile.TemporaryDirectory(prefix="retroguard-cpu-") as tmp:
        monitors: dict[str, subprocess.Popen[str]] = {}
        try:
            for label, tree in runs:
                mode = label.removesuffix(" before")
                env = dict(os.environ, PYTHONPATH=str(tree), **{TREE_VARIABLE: str(tree)})
                env.pop(BREAKDOWN_VARIABLE, None)
                if breakdown:
                    env[BREAKDOWN_VARIABLE] = "1"
                folder = Path(tmp) / label.replace(":", "-").replace(" ", "-")
                folder.mkdir()
                pacing, _, per_wake = mode.partition(":")
                (folder / "config.toml").write_text(
                    CONFIG.format(pacing=pacing, per_wake=per_wake or "1")
                )
                argv = [sys.executable, "-c", CHILD.format(folder=str(ROOT / "benchmarks"))]
                argv += ["config.toml", "result.json"]
                if realtime:  # as systemd/retroguard.service runs it
                    argv = ["chrt", "--fifo", "--reset-on-fork", str(REALTIME_PRIORITY), *argv]
                monitors[label] = subprocess.Popen(
                    argv, cwd=folder, env=env, stdout=subprocess.PIPE, text=True
                )
            for monitor in monitors.values():
                wait_for_line(monitor, "armed", 120.0)
            time.sleep(WARM_UP_S)
            start: dict[str, tuple[float, float]] = {}
            for mode, monitor in monitors.items():
                monitor.send_signal(signal.SIGUSR1)
                start[mode] = cpu_seconds(monitor.pid)
            t0 = time.monotonic()
            time.sleep(seconds)
            wall = time.monotonic() - t0
            for mode, monitor in monitors.items():
                user, system = cpu_seconds(monitor.pid)
                rss, peak = memory_mb(monitor.pid)
                results[mode] = {
                    "wall_s": wall,
                    "user_s": user - start[mode][0],
                    "sys_s": system - start[mode][1],
                    "rss_mb": rss,
                    "peak_mb": peak,
                }
                monitor.send_signal(signal.SIGUSR2)
            for monitor in monitors.values():
                monitor.send_signal(signal.SIGTERM)
            for mode, monitor in monitors.items():
                monitor.wait(60)
                result = Path(tmp) / mode.replace(":", "-").replace(" ", "-") / "result.json"
                results[mode].update(json.loads(result.read_text()))
        finally:
            for monitor in monitors.values():
                if monitor.poll() is None:
                    monitor.kill()
    return results


def shares(result: dict[str, Any]) -> dict[str, float]:
    """Each measured part as a share of one core over the window, and the firmware estimate:
    the process's CPU less what a Pi does not run (the chip model, the circuit's models, the
    benchmark's hook, probe and timing)."""
    wall = result["wall_s"]
    start, end = result["marks"]["start"], result["marks"]["end"]
    span = float(end["t"] - start["t"])

    def rate(key: str) -> float:
        return float(end[key] - start[key]) / span

    measured = (
        "chip_bus sim_thread edge circuit bench bus driver loop pacing hooks decision session"
    )
    part = {name: rate(f"{name}_cpu_s") for name in measured.split()}
    part["user"], part["system"] = result["user_s"] / wall, result["sys_s"] / wall
    part["total"] = part["user"] + part["system"]
    part["silicon"] = part["chip_bus"] + max(0.0, part["sim_thread"] - part["edge"])
    # The timings' own cost: all of it for a part the estimate keeps, the part outside the
    # timed window for one it subtracts (the inside is subtracted with the part).
    cost = result["timing_cost"]
    calls = {
        name: (end["timed_calls"][name] - start["timed_calls"][name]) / span
        for name in end["timed_calls"]
    }
    part["timing"] = sum(
        n * (cost["total"] - (cost["inside"] if name in SILICON_PARTS else 0.0))
        for name, n in calls.items()
    )
    part["timed_calls_a_wake"] = sum(calls.values()) / max(1.0, rate("iterations"))
    part["timed_call_s"] = cost["total"]
    for name in ("iterations", "bus_transactions", "empty_reads", "samples"):
        part[name] = rate(name)
    not_on_a_pi = part["silicon"] + part["circuit"] + part["bench"] + part["timing"]
    part["estimate"] = part["total"] - not_on_a_pi
    return part


def rows(result: dict[str, Any]) -> dict[str, str]:
    part = shares(result)
    user, system, total = part["user"], part["system"], part["total"]
    chip_bus, sim_thread, edge = part["chip_bus"], part["sim_thread"], part["edge"]
    silicon, circuit, bench, bus = part["silicon"], part["circuit"], part["bench"], part["bus"]
    fake_bus = bus - chip_bus
    driver, loop, pacing, hooks = part["driver"], part["loop"], part["pacing"], part["hooks"]
    deciding, session, timing = part["decision"], part["session"], part["timing"]

    def broken(share: float) -> str:
        return f"{100 * share:.2f}" if result.get("breakdown") else "(--breakdown)"

    # Polling sleeps inside the driver's read_batch: its wait is in the driver's row there.
    polled = result["pacing"] == "poll"

    return {
        "paced by": result["pacing"],
        "monitor process CPU, % of one core": f"{100 * total:.2f}",
        "  user / sys, %": f"{100 * user:.2f} / {100 * system:.2f}",
        "  loop thread, %": f"{100 * loop:.2f}",
        "    waiting for the wake (lock, kernel, GIL), %": (
            "(in the driver's row)" if polled else broken(pacing - driver)
        ),
        "    IMU driver's own Python (decode, checks), %": broken(driver - bus)
        + (" (with the poll's sleep)" if polled and result.get("breakdown") else ""),
        "    sim I2C bus (smbus2 on a Pi), %": broken(fake_bus),
        "    sim chip answering the bus, %": f"{100 * chip_bus:.2f}",
        "    deciding (safety + detector), %": broken(deciding),
        "    loop hooks (link, LED, health, watchdog), %": broken(hooks),
        "    session runner hook, %": broken(session),
        "    the rest (buttons, contact, the loop), %": broken(
            loop - pacing - deciding - hooks - session - bench
        ),
        "  sim chip's sample-clock thread, %": f"{100 * sim_thread:.2f}",
        "    of which INT edge to callback, %": f"{100 * edge:.2f}",
        "  relay circuit models (sim), %": f"{100 * circuit:.2f}",
        "  benchmark's finger hook and latency probe, %": f"{100 * bench:.2f}",
        "  benchmark's timing, %": (
            f"{100 * timing:.2f} ({part['timed_calls_a_wake']:.0f} "
            f"calls a wake, {1e6 * part['timed_call_s']:.2f} µs each)"
        ),
        "firmware estimate (minus all the above), %": f"{100 * part['estimate']:.2f}",
        "  as before this change (minus the chip), %": f"{100 * (total - silicon):.2f}",
        "RSS / peak, MB": f"{result['rss_mb']:.1f} / {result['peak_mb']:.1f}",
        "I2C transactions / s": f"{part['bus_transactions']:.0f}",
        "loop wakes / s": f"{part['iterations']:.0f}",
        "empty reads / s": f"{part['empty_reads']:.0f}",
        "samples / s": f"{part['samples']:.1f}",
        "heartbeat gap p99 / max, ms": (
            f"{1000 * result['p99_gap_s']:.1f} / {1000 * result['max_gap_s']:.1f}"
        ),
        "GC runs / longest pause, ms": (f"{result['gc_count']} / {1000 * result['gc_max_s']:.1f}"),
        "state at the end": result["state"],
        "detector": "compiled" if ".compiled." in result["detector"] else "pure Python",
        "capture to decision p50/p99/max/mean, ms": "{:.1f} / {:.1f} / {:.1f} / {:.1f}".format(
            *(1000 * v for v in result["latency_s"])
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per mode")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["poll", "interrupt:2"],
        help='imu.pacing values, run side by side; "interrupt:2" sets imu.samples_per_wake = 2 '
        '(the shipped mode: pacing auto, two samples a wake at 200 Hz), plain "interrupt" 1 '
        "(default: poll interrupt:2)",
    )
    parser.add_argument(
        "--no-realtime",
        dest="realtime",
        action="store_false",
        help="run the monitor at normal priority instead of the unit's SCHED_FIFO",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="TREE",
        help="also run every mode from this checkout, side by side (before / after)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the wait for the wake, the IMU driver, the decision, the loop hooks "
        "and the session runner (more timed calls a wake, which raise the estimate: see the "
        "docstring)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        metavar="N",
        help="measure N times, one run after another, and sum up each mode's estimate over "
        "the runs (lowest and median): the host's own load only ever adds (default 1)",
    )
    args = parser.parse_args()

    estimates: dict[str, list[float]] = {}
    for run in range(1, args.repeat + 1):
        if args.repeat > 1:
            print(f"run {run} of {args.repeat}")
        results = measure(args.modes, args.seconds, args.realtime, args.before, args.breakdown)
        print_table(results, args)
        for mode, result in results.items():
            estimates.setdefault(mode, []).append(shares(result)["estimate"])
    if args.repeat > 1:
        print(f"firmware estimate, % of one core, over {args.repeat} runs one after another:")
        for mode, values in estimates.items():
            listed = ", ".join(f"{100 * v:.2f}" for v in values)
            print(
                f"  {mode}: {listed}; lowest {100 * min(values):.2f}, "
                f"median {100 * statistics.median(values):.2f}"
            )
    print(
        f"targets: <= {TARGET_CPU_PCT:g} % of one core, <= {TARGET_RSS_MB:g} MB RSS "
        "(see the docstring for what the simulation adds)"
    )
    return 0


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    table = {mode: rows(result) for mode, result in results.items()}
    load = os.getloadavg()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load[0]:.1f}, "
        f"monitor {f'SCHED_FIFO {REALTIME_PRIORITY}' if args.realtime else 'normal priority'}, "
        f"200 Hz, {args.seconds:g} s, the modes side by side at the same time"
        + (f"; 'before': {args.before}" if args.before else "")
    )
    names = list(next(iter(table.values())))
    width = max(map(len, names))
    column = max(12, *map(len, table))
    print(f"{'':{width}}  " + "  ".join(f"{mode:>{column}}" for mode in table))
    for name in names:
        print(f"{name:{width}}  " + "  ".join(f"{table[m][name]:>{column}}" for m in table))
    for mode, result in results.items():
        print(f"{mode}: {result['pacing_check']}")
        if ".compiled." not in result["detector"]:
            print(
                f"{mode}: ran the pure-Python detector, not the compiled one a Pi's install "
                "builds (about three times the decision's cost): build it in that tree "
                "(pip install -e .) or copy firmware/detection/compiled in"
            )


if __name__ == "__main__":
    sys.exit(main())
