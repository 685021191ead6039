"""Threads of the monitor process keep the loop's real-time policy, one step below it.

systemd's reset-on-fork starts every new thread at normal priority; a helper
thread holding the GIL at normal priority can be preempted by a busy machine while
the real-time loop waits for the GIL (the supervisor restarting the courier, the
gait meter, the session socket).
"""

from __future__ import annotations

import os
import threading

import pytest

from core.realtime import LoopHelperThread, SchedulingPolicy


def _policy_of_a_helper_made_by(loop_priority: int | None) -> SchedulingPolicy | None:
    """Start a LoopHelperThread from a thread at SCHED_FIFO ``loop_priority`` (or normal)."""
    seen: list[SchedulingPolicy | None] = []

    def loop() -> None:
        if loop_priority is not None:
            try:
                os.sched_setscheduler(
                    0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(loop_priority)
                )
            except PermissionError:
                pytest.skip("this host does not allow SCHED_FIFO")
        helper = LoopHelperThread(lambda: seen.append(SchedulingPolicy.of_this_thread()), "t")
        helper.start()
        helper.join()

    failure: list[BaseException] = []

    def guarded() -> None:
        try:
            loop()
        except BaseException as exc:  # a skip raised in the thread is re-raised below
            failure.append(exc)

    thread = threading.Thread(target=guarded)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return seen[0]


def test_a_helper_of_a_realtime_loop_runs_one_step_below_it() -> None:
    assert _policy_of_a_helper_made_by(20) == SchedulingPolicy(os.SCHED_FIFO, 19)


def test_a_helper_of_the_lowest_realtime_priority_stays_realtime() -> None:
    assert _policy_of_a_helper_made_by(1) == SchedulingPolicy(os.SCHED_FIFO, 1)


def test_a_helper_of_a_normal_thread_stays_normal() -> None:
    policy = _policy_of_a_helper_made_by(None)
    assert policy is not None and not policy.realtime


def test_a_realtime_section_restores_the_policy_after_it() -> None:
    """The demo's loop runs real-time inside the section; the test process after it does not."""
    from core.realtime import realtime_section

    seen: list[tuple[bool, SchedulingPolicy | None, SchedulingPolicy | None]] = []

    def caller() -> None:
        with realtime_section(20, "a test loop") as applied:
            inside = SchedulingPolicy.of_this_thread()
        seen.append((applied, inside, SchedulingPolicy.of_this_thread()))

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join()
    applied, inside, after = seen[0]
    if not applied:
        pytest.skip("this host does not allow SCHED_FIFO")
    assert inside == SchedulingPolicy(os.SCHED_FIFO, 20)
    assert after is not None and not after.realtime


def test_the_demo_loop_runs_at_the_units_priority() -> None:
    from pathlib import Path

    from launcher.demo import DEMO_LOOP_PRIORITY

    unit = (Path(__file__).resolve().parent.parent / "systemd" / "retroguard.service").read_text()
    assert f"CPUSchedulingPriority={DEMO_LOOP_PRIORITY}" in unit.splitlines()


def test_a_helper_made_before_the_loops_realtime_section_runs_below_the_loop_it_is_given() -> None:
    """The demo's stderr relay is made on a thread at normal priority (before the loop's
    real-time section, which it outlives): given the loop's policy, it runs one step below."""
    seen: list[SchedulingPolicy | None] = []
    helper = LoopHelperThread(
        lambda: seen.append(SchedulingPolicy.of_this_thread()),
        "t",
        beside=SchedulingPolicy(os.SCHED_FIFO, 20),
    )
    helper.start()
    helper.join()
    policy = seen[0]
    assert policy is not None
    if not policy.realtime:
        pytest.skip("this host does not allow SCHED_FIFO")
    assert policy == SchedulingPolicy(os.SCHED_FIFO, 19)
