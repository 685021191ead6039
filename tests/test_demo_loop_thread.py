"""The demos' loop keeps safety rule 3 as `retroguard run` does: nothing slows the loop thread.

Traced with strace on `retroguard demo` (docs/safety.md, "What runs on the loop thread"): the
loop wrote each log record to stderr itself (a terminal or pipe that can stall), and the cue
printer ran at normal priority beside the real-time loop; preempted by a busy host while it held
the GIL, it kept the loop waiting 175 ms, and the relay's latch dropped (a FAULT, "DEMO
FAILED"). Here the demos run on a simulated clock and the test looks at who did the writing.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import SimClock
from core.realtime import SchedulingPolicy


class WhoWrites(logging.Handler):
    """Stands in for stderr: notes the thread that wrote each record."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.writers: dict[str, set[int]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.writers.setdefault(record.getMessage(), set()).add(threading.get_ident())


MONITOR_THREADS = frozenset(
    {
        "retroguard-gait",
        "retroguard-supervisor",
        "session-cues",
        "log-writer",
    }
)
"""The threads the demos start in the monitor's process beside the loop (on a simulated clock
the chip's samples are made by the loop's clock waits: no sample-clock thread)."""
LIVE_LINE_THREADS = frozenset({"demo-stderr", "demo-status"})
"""And with the live status line: the relay of what the demo's processes write to stderr
(made before the loop's real-time section: its children start first) and the status line's
redraws."""


def _policy_of(native_id: int) -> SchedulingPolicy:
    return SchedulingPolicy(
        os.sched_getscheduler(native_id) & ~os.SCHED_RESET_ON_FORK,
        os.sched_getparam(native_id).sched_priority,
    )


class PrintedBy(io.StringIO):
    """The demo's ``out``: notes the scheduling policy of each thread that printed a line,
    and, while the walk runs (a line printed off the loop's thread), that of every thread the
    demo started beside the loop: the last seen of each thread, by its id. A helper thread
    starts at normal priority (the loop's policy is reset on fork, threads included) and takes
    its own in the first line of its run: a look in between saw it SCHED_OTHER once, under
    load, which says nothing of how it runs."""

    def __init__(self, loop: int) -> None:
        super().__init__()
        self.loop = loop
        self.policies: dict[int, SchedulingPolicy | None] = {}
        self.seen: dict[tuple[str, int], SchedulingPolicy] = {}
        self.before = set(threading.enumerate())
        """Threads already running when the demo was given this output: another test's (a
        gait meter left running on the same pytest worker), not the demo's. The threads
        themselves, not their idents: a thread's ident is reused once it ends, and the demo's
        session-cues thread, taking the ident of another test's thread that ended meanwhile,
        was not looked at (CI, session 34)."""

    @property
    def threads(self) -> dict[str, set[SchedulingPolicy]]:
        """Each thread name's policies, one per thread of that name (the last seen)."""
        named: dict[str, set[SchedulingPolicy]] = {}
        for (name, _), policy in self.seen.items():
            named.setdefault(name, set()).add(policy)
        return named

    def write(self, text: str) -> int:
        self.policies.setdefault(threading.get_ident(), SchedulingPolicy.of_this_thread())
        if threading.get_ident() != self.loop:
            for thread in threading.enumerate():
                if (
                    thread.name in MONITOR_THREADS | LIVE_LINE_THREADS
                    and thread.native_id is not None
                    and thread not in self.before
                ):
                    with contextlib.suppress(OSError):  # it ended meanwhile
                        self.seen[thread.name, thread.native_id] = _policy_of(thread.native_id)
        return super().write(text)


class Terminal(PrintedBy):
    """The same, saying it is a terminal: the demo draws its live status line on it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def stderr() -> Iterator[WhoWrites]:
    root = logging.getLogger()
    before, level = root.handlers[:], root.level
    handler = WhoWrites()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.handlers[:] = before
        root.setLevel(level)


def _fifo_allowed() -> bool:
    """Whether this host lets a thread run SCHED_FIFO (asked on a thread of its own)."""
    allowed: list[bool] = []

    def ask() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except (PermissionError, AttributeError):
            allowed.append(False)
        else:
            allowed.append(True)

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join()
    return allowed[0]


def _loop_records_left_the_loop_thread(stderr: WhoWrites, loop: int, *messages: str) -> None:
    for message in messages:
        writers = stderr.writers.get(message)
        assert writers, f"no record {message!r}: {sorted(stderr.writers)[:20]}"
        assert loop not in writers, f"{message!r} was written by the loop thread itself"


def _threads_run_real_time_beside_the_loop(out: PrintedBy, *names: str) -> None:
    """The printer's thread, and every thread named, ran SCHED_FIFO one step below the loop."""
    others = {ident: p for ident, p in out.policies.items() if ident != out.loop}
    assert others, "nothing was printed from the printer's thread"
    if not _fifo_allowed():
        pytest.skip("this host does not allow SCHED_FIFO: every thread runs at normal priority")
    below = SchedulingPolicy(os.SCHED_FIFO, 19)
    assert set(others.values()) == {below}
    expected = {name: {below} for name in names}
    assert {name: out.threads.get(name) for name in names} == expected


def test_the_demo_loop_only_queues_its_records_and_its_printer_runs_below_it(
    tmp_path: Path, stderr: WhoWrites
) -> None:
    from launcher.demo import run_demo

    loop = threading.get_ident()  # run_demo runs the loop on its caller's thread
    out = PrintedBy(loop)
    code = run_demo(
        database=tmp_path / "d.db", live=False, out=out, broker_ok=False, clock=SimClock()
    )
    assert code == 0
    _loop_records_left_the_loop_thread(
        stderr,
        loop,
        "state ARMED: armed by local reset from STANDBY",
        "state TRIPPED: stumble: trunk rotated 13 deg in 0.3 s to 15 deg",
    )
    _threads_run_real_time_beside_the_loop(out, *MONITOR_THREADS)


def test_the_session_demo_loop_only_queues_its_records_and_every_thread_runs_below_it(
    tmp_path: Path, stderr: WhoWrites
) -> None:
    from tools.session_demo import run_guided_demo

    loop = threading.get_ident()
    out = PrintedBy(loop)
    code = run_guided_demo(time_scale=120.0, database=tmp_path / "s.db", out=out, clock=SimClock())
    assert code == 0
    _loop_records_left_the_loop_thread(
        stderr, loop, "state ARMED: armed by local reset from STANDBY"
    )
    _threads_run_real_time_beside_the_loop(out, *MONITOR_THREADS)


def test_with_the_live_line_its_stderr_relay_and_status_line_run_below_the_loop_too(
    tmp_path: Path, stderr: WhoWrites
) -> None:
    """The relay of what the demo's processes write to stderr is made before the real-time
    section (its children start first) and outlives it: made at normal priority, as it was,
    it relayed the courier's log lines beside the SCHED_FIFO loop (the 175 ms stall above).
    It writes above the status line (erasing it, on ``out``), so it is among the printers."""
    from launcher.demo import run_demo

    loop = threading.get_ident()
    out = Terminal(loop)
    code = run_demo(database=tmp_path / "d.db", out=out, broker_ok=False, clock=SimClock())
    assert code == 0
    assert "demo-stderr" in out.threads, "the relay was not running while the walk printed"
    _threads_run_real_time_beside_the_loop(out, *MONITOR_THREADS, *LIVE_LINE_THREADS)
