"""The session's side of gait and sway measurement: what to measure, and taking the figures.

Gait and sway are computed on a measurement thread (:mod:`firmware.gait.worker`): the loop
hands it references to the samples it read and collects the figures a later iteration.
These functions are the session's rules for it, called by the session runner on the loop
thread: which samples go (:func:`feed_samples`: a walking interval's, a balance check's only
while the monitor is in STANDBY), which job runs (:func:`follow_interval`: the current
interval's, none for a rest), and where the answers go (:func:`take_figures`: into the
session's tally, a balance check the walker moved in marked so). No wait, no copy of the
data: a put of references, and a take of what the thread has answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.protocol.messages import BalanceFigures
from firmware.gait.worker import BalanceResult, GaitJob, GaitResult, Measurements
from firmware.safety import SafetyState
from firmware.session.plan import Plan
from firmware.session.recording import SessionTally
from firmware.session.states import SessionState


def feed_samples(
    m: Measurements, batch: Sequence[Any], state: SessionState, safety: SafetyState
) -> None:
    """Hand this iteration's samples to the measurement thread (references, no copy of
    the data): a balance check's only while the monitor is in STANDBY."""
    if m.job is None or not batch:
        return
    if state is SessionState.RUNNING or (
        state is SessionState.BALANCE and safety is SafetyState.STANDBY
    ):
        m.feed(batch)


def follow_interval(m: Measurements, s: SessionTally, plan: Plan) -> None:
    """The measurement job follows the current interval (none for a rest)."""
    job = m.job
    if plan.intervals[s.current].direction == "rest":
        if job is not None:
            m.end()
        return
    if not (isinstance(job, GaitJob) and job.session == s.id and job.interval == s.current):
        m.begin(GaitJob(s.id, s.current))


def take_figures(m: Measurements, s: SessionTally | None) -> bool:
    """The figures the measurement thread has answered, into ``s`` (those of another session
    are dropped); True when ``s`` changed."""
    changed = False
    for result in m.take():
        if s is None or result.session != s.id:
            continue
        if isinstance(result, GaitResult):
            if 0 <= result.interval < len(s.intervals):
                s.intervals[result.interval].gait = result.figures
                changed = True
        elif isinstance(result, BalanceResult):
            figures = result.figures
            if result.index in s.moved_in_check and figures.status == "measured":
                figures = BalanceFigures(
                    condition=figures.condition, status="moved", duration_s=figures.duration_s
                )
            s.balance[result.index] = figures
            changed = True
    return changed
