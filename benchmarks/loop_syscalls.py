"""Which system calls does the monitor loop's thread make? Safety rule 3, checked from outside.

Runs ``retroguard demo --speed 1 --no-live`` (the whole monitor on simulated hardware: a
guided session, a stumble, a re-arm, a fall, the courier, Mosquitto and the caregiver
dashboard), attaches ``strace`` to the loop's thread alone (the demo's main thread) at
SCHED_FIFO 30, above the loop's 20 — a tracer at normal priority, starved by a busy host,
stalls every system call of the thread it traces and makes stalls of its own — and pauses
Mosquitto (SIGSTOP) for ``--pause`` seconds mid-walk (a broker outage). Then it counts the
loop thread's calls by call and target over the walk, and says which are not expected on
the loop: a file opened, a write to stderr or a file, an fsync, a connect, memory mapped.

    .venv/bin/python benchmarks/loop_syscalls.py [--pause-at 23] [--pause 12] [--keep DIR]

Needs root (ptrace, SCHED_FIFO) and strace (``apt-get install -y strace``). Prints figures;
asserts nothing. Figures are in docs/safety.md, "What the loop thread calls".
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRACER_PRIORITY = 30
LINE = re.compile(r"^(\d+\.\d+) (\w+)\((.*)$")
EXPECTED = {
    "futex": "waits on the data-ready wake event; GIL hand-overs; wakes of queue readers",
    "poll": "poll(fd, 0): has the courier written? (never waits)",
    "recvfrom": "the courier link's non-blocking socket",
    "sendmsg": "the courier link's non-blocking socket",
    "sendto": "systemd's notify socket (non-blocking), WATCHDOG=1",
    "getrandom": "an event id (uuid4): the kernel's pool, never blocks once seeded",
    "getpid": "a log record's process id (queued)",
    "restart_syscall": "a wait resumed after a signal (SIGCHLD: the broker paused or resumed)",
}
"""The calls the loop thread is expected to make, and why (anything else is listed apart)."""


def count(trace: Path, start: float, end: float) -> tuple[collections.Counter[str], list[str]]:
    """Calls by name and target (a futex by address and operation, a socket call by fd)
    between ``start`` and ``end`` (``strace -ttt`` times); and every unexpected line."""
    by_target: collections.Counter[str] = collections.Counter()
    unexpected: list[str] = []
    for raw in trace.read_text().splitlines():
        m = LINE.match(raw)
        if not m or not start <= float(m.group(1)) < end:
            continue
        name, rest = m.group(2), m.group(3)
        if name == "futex":
            address, operation = rest.split(", ")[:2]
            by_target[f"futex {address} {operation.split('|')[0]}"] += 1
        elif name in ("poll", "recvfrom", "sendmsg", "sendto", "write", "read", "close"):
            fd = re.match(r"\[?\{?(?:fd=)?(\d+)", rest)
            by_target[f"{name} fd={fd.group(1) if fd else '?'}"] += 1
        else:
            by_target[name] += 1
        if name not in EXPECTED:
            unexpected.append(raw[:200])
    return by_target, unexpected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pause-at", type=float, default=23.0, help="s into the walk")
    parser.add_argument("--pause", type=float, default=12.0, help="broker outage, s")
    parser.add_argument("--keep", type=Path, help="keep the trace and the demo's output here")
    args = parser.parse_args()
    out = args.keep or Path(tempfile.mkdtemp(prefix="loop-syscalls-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    stdout, stderr = (out / "stdout").open("w"), (out / "stderr").open("w")
    demo = subprocess.Popen(
        [str(ROOT / ".venv/bin/retroguard"), "demo", "--speed", "1", "--no-live"],
        stdout=stdout,
        stderr=stderr,
        env=env,
        cwd=ROOT,
    )
    while "LED starting" not in (out / "stdout").read_text():  # the loop's first iteration
        if demo.poll() is not None:
            print("the demo ended before its loop started", file=sys.stderr)
            return 1
        time.sleep(0.02)
    trace = out / "loop.trace"
    tracer = subprocess.Popen(
        [
            "chrt",
            "-f",
            str(TRACER_PRIORITY),
            "strace",
            "-ttt",
            "-T",
            "-o",
            str(trace),
            "-p",
            str(demo.pid),
        ]
    )
    started = time.time()
    broker = subprocess.run(
        ["pgrep", "-P", str(demo.pid), "-x", "mosquitto"], capture_output=True, text=True
    ).stdout.split()
    time.sleep(args.pause_at)
    for pid in broker:
        os.kill(int(pid), signal.SIGSTOP)
    time.sleep(args.pause)
    for pid in broker:
        os.kill(int(pid), signal.SIGCONT)
    demo.wait()
    tracer.wait()
    lines = trace.read_text().splitlines()
    # the walk ends where the loop returns: the first select() of the shutdown's flush
    ended = next(
        (float(line.split()[0]) for line in lines if " pselect6(" in line),
        float(lines[-1].split()[0]),
    )
    by_target, unexpected = count(trace, started, ended)
    result = (out / "stdout").read_text().strip().splitlines()[-1]
    print(f"loop thread traced {ended - started:.1f} s ({result}); broker paused {args.pause:g} s")
    for key, n in by_target.most_common():
        print(f"{n:8d}  {key}")
    print(f"not expected on the loop thread: {len(unexpected)}")
    for line in unexpected:
        print("   ", line)
    print(f"(trace and output in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
