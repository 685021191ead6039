"""The standing balance check before the walk: its steps, its timing, its measurement job.

A session started in STANDBY with ``session.balance_check`` begins with it: the walker
stands still, feet together, for :data:`BALANCE_SETTLE_S` to settle and
:data:`BALANCE_MEASURE_S` measured, optionally once more with the eyes closed. The sway is
computed on the measurement thread (:class:`~firmware.gait.worker.BalanceJob`); a check
during which the step counter counted steps is marked so its figures are not taken for
sway, and one cut short (the walker armed, a pause, a fault) is recorded as interrupted
with the seconds it measured. It measures, it never decides: the session runner owns one,
moves the session's state and plays the cues; this keeps the step under way and its job.
On the loop thread; no wait, no I/O (the job is a put to the measurement thread).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.protocol.messages import BalanceCondition
from firmware.gait import figures as gait_figures
from firmware.gait.worker import BalanceJob, Measurements
from firmware.session.cues import Cue
from firmware.session.recording import SessionTally

log = logging.getLogger(__name__)

BALANCE_SETTLE_S = 5.0
"""After the balance check's cue, seconds for the walker to settle (and the prompt to end)."""
BALANCE_MEASURE_S = 30.0
"""Seconds of standing measured per condition (Mancini et al. 2012: 30 s)."""


@dataclass(slots=True)
class CheckStep:
    """The balance check in progress: which condition, when its cue played, when it ends."""

    index: int
    condition: BalanceCondition
    started: float
    ends: float
    steps_before: int


class BalanceCheck:
    """The step of the balance check under way (:attr:`step`), begun and ended by the
    session runner."""

    def __init__(self, measurements: Measurements | None) -> None:
        self._measurements = measurements
        self.step: CheckStep | None = None
        """The check in progress (None: none)."""

    def begin(self, now: float, index: int, s: SessionTally, steps: int) -> Cue:
        """Begin step ``index`` (0 eyes open, 1 eyes closed) of ``s``'s check, with the step
        counter at ``steps``; the cue that asks for it is returned for the runner to play."""
        condition: BalanceCondition = "eyes open" if index == 0 else "eyes closed"
        self.step = CheckStep(
            index,
            condition,
            now,
            now + BALANCE_SETTLE_S + BALANCE_MEASURE_S,
            steps,
        )
        if self._measurements is not None:
            self._measurements.begin(BalanceJob(s.id, index, condition, BALANCE_SETTLE_S))
        log.info("balance check (%s) for %.0f s", condition, BALANCE_MEASURE_S)
        return Cue.BALANCE if index == 0 else Cue.BALANCE_EYES_CLOSED

    def end(self, now: float, s: SessionTally | None, steps: int, *, complete: bool) -> None:
        """The check in progress ends: measured to its end, or cut short (no figures)."""
        check, self.step = self.step, None
        if check is None or s is None:
            return
        if steps > check.steps_before:
            s.moved_in_check.add(check.index)
        m = self._measurements
        if complete:
            if m is not None:
                m.end()
            return
        measured = max(0.0, now - check.started - BALANCE_SETTLE_S)
        s.balance[check.index] = gait_figures.interrupted(check.condition, measured)
        if m is not None:
            m.end(discard=True)
        log.info("balance check (%s) interrupted after %.0f s", check.condition, measured)
